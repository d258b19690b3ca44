package main

import (
	"context"
	"fmt"
	"strings"

	"selfserve/internal/service"
	"selfserve/internal/store"
)

// runLogin handles `login invite` (print a single-use link that lets a
// login set its console password) and `login set-role` (runLoginSetRole).
func runLogin(ctx context.Context, c *cli, args []string) error {
	if len(args) > 0 && args[0] == "set-role" {
		return runLoginSetRole(ctx, c, args)
	}
	if len(args) == 0 || args[0] != "invite" {
		return fmt.Errorf("%w: login invite --tenant NAME --email EMAIL [--role ROLE] | login set-role --tenant NAME --email EMAIL --role ROLE", errUsage)
	}
	fs := flags(c, "login invite", "--tenant NAME --email EMAIL [--role ROLE] [--url URL]")
	tenantName := fs.String("tenant", "", "tenant `name`")
	email := fs.String("email", "", "the login's `email`")
	role := fs.String("role", "", "`role` of a new login: super, primary, manager, engineer or helpdesk (an existing login keeps its role)")
	base := fs.String("url", "", "the console's `URL` (default: api_url, else http://admin_addr)")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	var problems []string
	if *tenantName == "" {
		problems = append(problems, "--tenant is required")
	}
	if *email == "" {
		problems = append(problems, "--email is required")
	}
	if *role != "" && !store.Role(*role).Valid() {
		problems = append(problems, fmt.Sprintf("--role %q: want super, primary, manager, engineer or helpdesk", *role))
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", errUsage, strings.Join(problems, "; "))
	}
	cfg, err := c.config()
	if err != nil {
		return err
	}
	st, err := c.store(ctx)
	if err != nil {
		return err
	}
	tenant, err := st.TenantByName(ctx, *tenantName)
	if err != nil {
		return err
	}
	svc := &service.Service{Store: st}
	token, login, err := svc.Invite(ctx, service.Actor{Tenant: tenant, System: "cli:login"}, *email, store.Role(*role))
	if err != nil {
		return err
	}
	url := *base
	if url == "" {
		url = cfg.APIURL
	}
	if url == "" {
		url = "http://" + cfg.AdminAddr
	}
	fmt.Fprintf(c.stdout, "%s/invite/%s\n", strings.TrimRight(url, "/"), token)
	fmt.Fprintf(c.stderr, "invite for %s (%s) of tenant %s: good once, for %s\n", login.Email, login.Role, tenant.Name, service.InviteTTL)
	return nil
}
