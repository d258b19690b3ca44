package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"selfserve/internal/admin"
	"selfserve/internal/apitoken"
	"selfserve/internal/ops"
	"selfserve/internal/redact"
	"selfserve/internal/service"
	"selfserve/internal/store"
	"selfserve/worker"
)

// demoCredentials are the demo's generated, demo-only credentials, kept in
// the demo directory so that a second run prints the same ones.
type demoCredentials struct {
	apiToken string // a super login's API token
	login    store.Login
	tenant   store.Tenant
	opsToken string // opens /metrics and /monitoring/
}

// demoAdmin serves, on the admin address (127.0.0.1 unless configured
// otherwise), what `serve` serves there: the admin API, the console, and
// /healthz, /readyz, /metrics and /monitoring/ behind the ops token. It
// prints each address with a ready-to-use demo credential. The returned
// function stops it.
func (c *cli) demoAdmin(ctx context.Context, dir string, sender *demoSender) (func(), error) {
	creds, err := c.demoCredentials(ctx, dir)
	if err != nil {
		return nil, err
	}
	c.cfg.OpsToken = redact.Secret(creds.opsToken)
	if c.cfg.OpsTenant == "" {
		c.cfg.OpsTenant = creds.tenant.Name // the demo's super opens the Ops link from the console
	}
	log := c.log()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	closeMetrics := func() {}
	if insp, err := worker.RegisterQueueMetrics(reg, sender.rd.Opt); err == nil {
		closeMetrics = func() { insp.Close() }
	}
	h := ops.New(ops.Options{Store: c.st, Redis: sender.rd, Gatherer: reg, RedisConnOpt: sender.rd.Opt, OpsToken: creds.opsToken, Logger: log})
	stopOps := func() {
		h.Close()
		closeMetrics()
	}
	api, err := c.adminAPI(c.cfg, c.st, sender.n.client, sender.n.agents, h, log)
	if err != nil {
		stopOps()
		return nil, err
	}
	ln, err := net.Listen("tcp", c.cfg.AdminAddr)
	if err != nil {
		stopOps()
		return nil, fmt.Errorf("demo: listen on %s: %w", c.cfg.AdminAddr, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv := admin.NewServer(ln.Addr().String(), api)
		srv.ErrorLog = slog.NewLogLogger(log.Handler(), slog.LevelWarn)
		if err := admin.Serve(ctx, srv, ln); err != nil {
			log.Error("demo admin listener stopped", "err", err)
		}
	}()
	base := "http://" + ln.Addr().String()
	invite, _, err := (&service.Service{Store: c.st}).Invite(ctx, service.Actor{Tenant: creds.tenant, System: "demo"}, creds.login.Email, creds.login.Role)
	if err != nil {
		cancel()
		<-done
		stopOps()
		return nil, err
	}
	w := c.stdout
	fmt.Fprintf(w, "\nadmin API, console and ops endpoints on %s (demo-only credentials, kept in %s):\n", base, dir)
	fmt.Fprintf(w, "  admin API   curl -H 'Authorization: Bearer %s' %s/v1/customers\n", creds.apiToken, base)
	fmt.Fprintf(w, "              (a super token of %s in tenant %s; every route: %s/openapi.json)\n", creds.login.Email, creds.tenant.Name, base)
	fmt.Fprintf(w, "  console     %s/invite/%s   (sets %s's console password; single use)\n", base, invite, creds.login.Email)
	fmt.Fprintf(w, "  monitoring  %s%s/   (user ops, password %s)\n", base, ops.MonitoringPath, creds.opsToken)
	fmt.Fprintf(w, "  metrics     curl -H 'Authorization: Bearer %s' %s/metrics\n", creds.opsToken, base)
	fmt.Fprintf(w, "  health      %s/healthz  %s/readyz\n", base, base)
	return func() {
		cancel()
		<-done
		stopOps()
	}, nil
}

// demoCredentials returns the demo's API token and ops token, reading them
// from dir when an earlier run left them there (and they still work), or
// generating them: the API token belongs to the first tenant's first super
// login.
func (c *cli) demoCredentials(ctx context.Context, dir string) (demoCredentials, error) {
	var creds demoCredentials
	opsFile, apiFile := filepath.Join(dir, "ops-token"), filepath.Join(dir, "api-token")
	ops, err := readOrCreate(opsFile, func() (string, error) {
		raw := make([]byte, 32)
		_, _ = rand.Read(raw) // crypto/rand.Read never returns an error
		return base64.RawURLEncoding.EncodeToString(raw), nil
	})
	if err != nil {
		return creds, err
	}
	creds.opsToken = ops
	if tok, err := os.ReadFile(apiFile); err == nil {
		if login, _, err := c.st.Authenticate(ctx, apitoken.Hash(strings.TrimSpace(string(tok)))); err == nil && login.Role == store.RoleSuper {
			tenant, err := c.st.Tenant(ctx, login.TenantID)
			if err != nil {
				return creds, err
			}
			creds.apiToken, creds.login, creds.tenant = strings.TrimSpace(string(tok)), login, tenant
			return creds, nil
		}
	}
	tenants, err := c.st.Tenants(ctx)
	if err != nil {
		return creds, err
	}
	if len(tenants) == 0 {
		return creds, errors.New("demo: the sample data made no tenant")
	}
	creds.tenant = tenants[0]
	logins, err := c.st.Logins(ctx, creds.tenant.ID)
	if err != nil {
		return creds, err
	}
	for _, l := range logins {
		if l.Role == store.RoleSuper && l.DisabledAt == nil {
			creds.login = l
			break
		}
	}
	if creds.login.ID == 0 {
		if creds.login, _, err = c.st.UpsertLogin(ctx, creds.tenant.ID, "demo@"+creds.tenant.Name+".example", store.RoleSuper); err != nil {
			return creds, err
		}
	}
	token, hash, prefix := apitoken.Login.New()
	if _, err := c.st.CreateAPIToken(ctx, creds.tenant.ID, creds.login.ID, hash, prefix, time.Time{}); err != nil {
		return creds, err
	}
	if err := os.WriteFile(apiFile, []byte(token+"\n"), 0o600); err != nil {
		return creds, err
	}
	creds.apiToken = token
	return creds, nil
}

// readOrCreate returns the trimmed content of file, writing generate's
// result there (mode 0600) when it does not exist.
func readOrCreate(file string, generate func() (string, error)) (string, error) {
	text, err := os.ReadFile(file)
	if err == nil {
		return strings.TrimSpace(string(text)), nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	v, err := generate()
	if err != nil {
		return "", err
	}
	return v, os.WriteFile(file, []byte(v+"\n"), 0o600)
}
