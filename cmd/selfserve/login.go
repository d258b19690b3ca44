package main

import (
	"context"
	"flag"
	"fmt"
	"strings"

	"selfserve/internal/service"
	"selfserve/internal/store"
)

// runLoginInvite is `login invite`: it prints a single-use link that lets a
// login set its console password.
func runLoginInvite(ctx context.Context, c *cli, args []string) error {
	fs := flags(c, "login invite", "--tenant NAME --email EMAIL [--role ROLE] [--url URL]")
	login := addLoginFlags(fs, "the login's `email`", "`role` of a new login: super, primary, manager, engineer or helpdesk (an existing login keeps its role)")
	base := fs.String("url", "", "the console's `URL` (default: api_url, else http://admin_addr)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := login.check(false); err != nil {
		return err
	}
	cfg, err := c.config()
	if err != nil {
		return err
	}
	st, err := c.store(ctx)
	if err != nil {
		return err
	}
	tenant, err := st.TenantByName(ctx, *login.tenant)
	if err != nil {
		return err
	}
	svc := &service.Service{Store: st}
	token, invited, err := svc.Invite(ctx, service.Actor{Tenant: tenant, System: "cli:login"}, *login.email, store.Role(*login.role))
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
	fmt.Fprintf(c.stderr, "invite for %s (%s) of tenant %s: good once, for %s\n", invited.Email, invited.Role, tenant.Name, service.InviteTTL)
	return nil
}

// loginFlags are the flags that name a tenant's login: --tenant, --email
// and --role.
type loginFlags struct {
	tenant, email, role *string
}

// addLoginFlags adds --tenant, --email and --role to fs.
func addLoginFlags(fs *flag.FlagSet, emailUsage, roleUsage string) loginFlags {
	return loginFlags{
		tenant: fs.String("tenant", "", "tenant `name`"),
		email:  fs.String("email", "", emailUsage),
		role:   fs.String("role", "", roleUsage),
	}
}

// check is the usage error of missing or bad login flags, or nil: --tenant
// and --email are required, --role too when roleRequired; a given role must
// be one.
func (l loginFlags) check(roleRequired bool, more ...string) error {
	var problems []string
	if *l.tenant == "" {
		problems = append(problems, "--tenant is required")
	}
	if *l.email == "" {
		problems = append(problems, "--email is required")
	}
	if (*l.role != "" || roleRequired) && !store.Role(*l.role).Valid() {
		problems = append(problems, fmt.Sprintf("--role %q: want super, primary, manager, engineer or helpdesk", *l.role))
	}
	problems = append(problems, more...)
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", errUsage, strings.Join(problems, "; "))
	}
	return nil
}
