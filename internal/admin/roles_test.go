package admin

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"selfserve/internal/apitoken"
	"selfserve/internal/store"
)

// call is one request.
type call struct {
	method, path string
	body         any
	// token overrides the caller's token (app routes).
	token string
}

var seq atomic.Int64

// validCalls returns, for every route ("METHOD /pattern"), a valid request
// on tenant f's objects made for role. Requests that use something up (a
// token to revoke) get a fresh one.
func (b *bundle) validCalls(f tenantFixture, role store.Role) map[string]call {
	t := b.t
	ctx := context.Background()
	n := seq.Add(1)
	login, err := b.st.LoginByEmail(ctx, f.tenant.ID, string(role)+"@"+f.tenant.Name+".example")
	must(t, err)
	_, hash, prefix := apitoken.Login.New()
	tok, err := b.st.CreateAPIToken(ctx, f.tenant.ID, login.ID, hash, prefix, time.Time{})
	must(t, err)
	_, ahash, aprefix := apitoken.AppClient.New()
	app, err := b.st.CreateAppClient(ctx, f.tenant.ID, fmt.Sprintf("app-%d", n), ahash, aprefix)
	must(t, err)
	cu, err := b.st.CreateCustomer(ctx, store.Customer{TenantID: f.tenant.ID, Name: fmt.Sprintf("Manual %d", n)})
	must(t, err)
	alice, bob := f.users[0], f.users[1]
	other, _, err := b.st.UpsertLogin(ctx, f.tenant.ID, fmt.Sprintf("temp-%d@%s.example", n, f.tenant.Name), store.RoleHelpdesk)
	must(t, err)
	u := func(format string, args ...any) string { return fmt.Sprintf(format, args...) }
	// An enrolled agent to revoke.
	code := []byte(u("install-%d", n))
	must(t, b.st.CreateAgentInstallCode(ctx, f.tenant.ID, f.agent.ID, code, time.Now().Add(time.Hour)))
	_, err = b.st.EnrolAgent(ctx, code, make([]byte, 32), make([]byte, 32), "dc1", "test")
	must(t, err)
	return map[string]call{
		"GET /openapi.json":                            {"GET", "/openapi.json", nil, ""},
		"GET /v1/tenant":                               {"GET", "/v1/tenant", nil, ""},
		"PATCH /v1/tenant":                             {"PATCH", "/v1/tenant", map[string]any{"send_hour": 8 + n%3}, ""},
		"GET /v1/tokens":                               {"GET", "/v1/tokens", nil, ""},
		"POST /v1/tokens":                              {"POST", "/v1/tokens", map[string]any{}, ""},
		"DELETE /v1/tokens/{id}":                       {"DELETE", u("/v1/tokens/%d", tok.ID), nil, ""},
		"PATCH /v1/logins/{id}":                        {"PATCH", u("/v1/logins/%d", other.ID), map[string]any{"role": "engineer"}, ""},
		"GET /v1/app-clients":                          {"GET", "/v1/app-clients", nil, ""},
		"POST /v1/app-clients":                         {"POST", "/v1/app-clients", map[string]any{"name": u("kiosk-%d", n)}, ""},
		"DELETE /v1/app-clients/{id}":                  {"DELETE", u("/v1/app-clients/%d", app.ID), nil, ""},
		"GET /v1/customers":                            {"GET", "/v1/customers", nil, ""},
		"POST /v1/customers":                           {"POST", "/v1/customers", map[string]any{"name": u("Fabrikam %d", n), "timezone": "America/New_York", "default_region": "us"}, ""},
		"GET /v1/customers/{id}":                       {"GET", u("/v1/customers/%d", f.customer.ID), nil, ""},
		"POST /v1/customers/{id}/link":                 {"POST", u("/v1/customers/%d/link", cu.ID), map[string]any{"source": "itglue", "external_id": u("org-%d", n)}, ""},
		"POST /v1/customers/import":                    {"POST", "/v1/customers/import", map[string]any{"connection_id": f.psa.ID}, ""},
		"GET /v1/customers/{id}/end-users":             {"GET", u("/v1/customers/%d/end-users?limit=2", f.customer.ID), nil, ""},
		"GET /v1/connections":                          {"GET", "/v1/connections", nil, ""},
		"POST /v1/connections":                         {"POST", "/v1/connections", map[string]any{"name": u("itglue-%d", n), "kind": "itglue", "settings": map[string]any{"region": "eu"}, "secrets": map[string]any{"api_key": "k-1"}}, ""},
		"GET /v1/connections/{id}":                     {"GET", u("/v1/connections/%d", f.conn.ID), nil, ""},
		"PATCH /v1/connections/{id}":                   {"PATCH", u("/v1/connections/%d", f.conn.ID), map[string]any{"schedule_seconds": 3600 + n}, ""},
		"POST /v1/connections/{id}/test":               {"POST", u("/v1/connections/%d/test", f.conn.ID), nil, ""},
		"POST /v1/connections/{id}/sync":               {"POST", u("/v1/connections/%d/sync", f.conn.ID), map[string]any{"mode": "full"}, ""},
		"GET /v1/connections/{id}/runs":                {"GET", u("/v1/connections/%d/runs", f.conn.ID), nil, ""},
		"GET /v1/runs/{id}":                            {"GET", u("/v1/runs/%d", b.lastRun(f)), nil, ""},
		"GET /v1/agents":                               {"GET", "/v1/agents", nil, ""},
		"GET /v1/connections/{id}/agent":               {"GET", u("/v1/connections/%d/agent", f.agent.ID), nil, ""},
		"POST /v1/connections/{id}/agent/install-code": {"POST", u("/v1/connections/%d/agent/install-code", f.agent.ID), nil, ""},
		"DELETE /v1/connections/{id}/agent":            {"DELETE", u("/v1/connections/%d/agent", f.agent.ID), nil, ""},
		"GET /v1/end-users/{id}":                       {"GET", u("/v1/end-users/%d", alice.ID), nil, ""},
		"PATCH /v1/end-users/{id}":                     {"PATCH", u("/v1/end-users/%d", bob.ID), map[string]any{"mobile": u("07400 1%05d", n)}, ""},
		"PUT /v1/end-users/{id}/self-serve":            {"PUT", u("/v1/end-users/%d/self-serve", alice.ID), map[string]any{"enabled": n%2 == 0}, ""},
		"POST /v1/end-users/self-serve":                {"POST", "/v1/end-users/self-serve", map[string]any{"ids": []int64{alice.ID, bob.ID}, "enabled": n%2 == 1}, ""},
		"POST /v1/end-users/{id}/welcome":              {"POST", u("/v1/end-users/%d/welcome", bob.ID), nil, ""},
		"GET /v1/end-users/{id}/notices":               {"GET", u("/v1/end-users/%d/notices", alice.ID), nil, ""},
		"GET /v1/notices/preview":                      {"GET", "/v1/notices/preview?at=2026-12-01T09:00:00Z", nil, ""},
		"GET /v1/audit":                                {"GET", "/v1/audit?limit=5", nil, ""},
		"POST /v1/app/end-users/{id}/first-access":     {"POST", u("/v1/app/end-users/%d/first-access", alice.ID), nil, f.app},
	}
}

// lastRun returns the id of the latest run of f's file connection.
func (b *bundle) lastRun(f tenantFixture) int64 {
	runs, err := b.st.Runs(context.Background(), f.tenant.ID, f.conn.ID, 1)
	must(b.t, err)
	if len(runs) == 0 {
		b.t.Fatal("no run")
	}
	return runs[0].ID
}

// finishActiveRuns lets the next sync start.
func (b *bundle) finishActiveRuns(f tenantFixture) {
	ctx := context.Background()
	if run, err := b.st.ActiveRun(ctx, f.tenant.ID, f.conn.ID); err == nil {
		run.Status = store.RunSucceeded
		must(b.t, b.st.FinishRun(ctx, &run))
	}
	if run, err := b.st.ActiveRun(ctx, f.tenant.ID, f.psa.ID); err == nil {
		run.Status = store.RunSucceeded
		must(b.t, b.st.FinishRun(ctx, &run))
	}
}

func routeKey(rt route) string { return rt.method + " " + rt.path }

// TestRoleMatrix calls every route as every role: tenant settings (and the
// app clients, which are tenant configuration) are for super and primary
// only, logins' roles for super only (403 for the others); everything else
// is open to every role.
func TestRoleMatrix(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, b *bundle) {
		a := &api{}
		for _, rt := range a.routes() {
			key := routeKey(rt)
			for _, role := range store.Roles {
				b.finishActiveRuns(b.a)
				b.queue.forgetWelcomes()
				b.switchOn(b.a, b.a.users[0].ID, b.a.users[1].ID) // served: welcome and first access go through
				c, ok := b.validCalls(b.a, role)[key]
				if !ok {
					t.Fatalf("route %s has no call in validCalls", key)
				}
				token := b.a.tokens[role]
				if c.token != "" || rt.access == accessPublic {
					token = c.token
				}
				res := b.do(c.method, c.path, token, c.body)
				allowed := role == store.RoleSuper ||
					(rt.access != accessSettings && rt.access != accessSuper) ||
					(rt.access == accessSettings && role == store.RolePrimary)
				switch {
				case allowed && (res.status == http.StatusForbidden || res.status == http.StatusUnauthorized || res.status >= 400):
					t.Errorf("%s as %s: %d %s, want success", key, role, res.status, res.raw)
				case !allowed && res.status != http.StatusForbidden:
					t.Errorf("%s as %s: %d %s, want 403", key, role, res.status, res.raw)
				}
				if rt.access == accessApp || rt.access == accessPublic {
					break // not a login's route: one call is enough
				}
			}
		}
		// A login's token does not open the app route, nor an app's token a
		// login's route.
		alice := b.a.users[0]
		if res := b.do("POST", fmt.Sprintf("/v1/app/end-users/%d/first-access", alice.ID), b.a.tokens[store.RoleSuper], nil); res.status != http.StatusUnauthorized {
			t.Errorf("login token on the app route: %d, want 401", res.status)
		}
		if res := b.do("GET", "/v1/tenant", b.a.app, nil); res.status != http.StatusUnauthorized {
			t.Errorf("app token on a login route: %d, want 401", res.status)
		}
	})
}

// TestCrossTenant sends tenant B's credentials at tenant A's objects on
// every object route: 404 each time, and tenant A unchanged.
func TestCrossTenant(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, b *bundle) {
		a := &api{}
		calls := b.validCalls(b.a, store.RoleSuper)
		before := b.snapshot(b.a)
		objectRoutes := 0
		for _, rt := range a.routes() {
			key := routeKey(rt)
			c := calls[key]
			refersToObject := strings.Contains(rt.path, "{id}") || key == "POST /v1/customers/import" || key == "POST /v1/end-users/self-serve"
			if !refersToObject {
				continue
			}
			objectRoutes++
			token := b.b.tokens[store.RoleSuper]
			if rt.access == accessApp {
				token = b.b.app
			}
			res := b.do(c.method, c.path, token, c.body)
			if res.status != http.StatusNotFound {
				t.Errorf("%s on tenant A's object with tenant B's token: %d %s, want 404", key, res.status, res.raw)
			}
		}
		// A directory connection for another tenant's customer.
		res := b.do("POST", "/v1/connections", b.b.tokens[store.RoleSuper], map[string]any{"name": "steal", "kind": "file", "customer_id": b.a.customer.ID, "settings": map[string]any{"path": b.csvPath("globex")}})
		if field, _ := res.errField(); res.status != http.StatusNotFound || field != "customer_id" {
			t.Errorf("connection for another tenant's customer: %d %s, want 404 naming customer_id", res.status, res.raw)
		}
		if objectRoutes < 19 {
			t.Errorf("only %d object routes checked", objectRoutes)
		}
		// The validCalls set-up itself made objects (a token, an app
		// client, a customer): compare from after it.
		if after := b.snapshot(b.a); after != before {
			t.Errorf("tenant A changed by tenant B's requests:\nbefore %s\nafter  %s", before, after)
		}
	})
}

// TestTokens: a revoked or expired token is 401; tokens are shown once and
// listed without their secret.
func TestTokens(t *testing.T) {
	t.Parallel()
	b := sqliteOnly(t)
	res := b.do("POST", "/v1/tokens", b.a.tokens[store.RoleHelpdesk], map[string]any{"expires_at": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)})
	if res.status != http.StatusCreated {
		t.Fatalf("create token: %d %s", res.status, res.raw)
	}
	tok, _ := res.body["token"].(string)
	if !apitoken.Login.LooksValid(tok) {
		t.Fatalf("token %q", tok)
	}
	if r := b.do("GET", "/v1/tenant", tok, nil); r.status != http.StatusOK {
		t.Fatalf("new token: %d", r.status)
	}
	list := b.do("GET", "/v1/tokens", tok, nil)
	if strings.Contains(string(list.raw), tok) || strings.Contains(string(list.raw), "hash") {
		t.Errorf("listing shows the token: %s", list.raw)
	}
	tokID := int64(res.body["id"].(float64))
	// helpdesk may not revoke another login's token, nor make one for it.
	if r := b.do("DELETE", fmt.Sprintf("/v1/tokens/%d", b.a.tokenIDs[store.RoleSuper]), tok, nil); r.status != http.StatusForbidden {
		t.Errorf("helpdesk revoking super's token: %d", r.status)
	}
	if r := b.do("POST", "/v1/tokens", tok, map[string]any{"login_id": 1}); r.status != http.StatusForbidden {
		t.Errorf("helpdesk making a token for another login: %d", r.status)
	}
	if r := b.do("DELETE", fmt.Sprintf("/v1/tokens/%d", tokID), b.a.tokens[store.RolePrimary], nil); r.status != http.StatusOK {
		t.Fatalf("primary revoking: %d %s", r.status, r.raw)
	}
	if r := b.do("GET", "/v1/tenant", tok, nil); r.status != http.StatusUnauthorized || r.header.Get("WWW-Authenticate") == "" {
		t.Errorf("revoked token: %d, want 401 with WWW-Authenticate", r.status)
	}
	if r := b.do("DELETE", fmt.Sprintf("/v1/tokens/%d", tokID), b.a.tokens[store.RolePrimary], nil); r.status != http.StatusConflict {
		t.Errorf("revoking twice: %d", r.status)
	}
	// Expired: a token whose expiry has passed.
	ctx := context.Background()
	login, err := b.st.LoginByEmail(ctx, b.a.tenant.ID, "engineer@acme.example")
	must(t, err)
	expired, hash, prefix := apitoken.Login.New()
	_, err = b.st.CreateAPIToken(ctx, b.a.tenant.ID, login.ID, hash, prefix, time.Now().Add(-time.Second))
	must(t, err)
	if r := b.do("GET", "/v1/tenant", expired, nil); r.status != http.StatusUnauthorized {
		t.Errorf("expired token: %d, want 401", r.status)
	}
	for _, bad := range []string{"", "ss_short", "Basic abc", string(apitoken.Login) + strings.Repeat("A", 43)} {
		req := b.do("GET", "/v1/tenant", bad, nil)
		if req.status != http.StatusUnauthorized {
			t.Errorf("token %q: %d, want 401", bad, req.status)
		}
	}
	// Audit: created and revoked once each.
	if n := b.auditCount(b.a, "token.created"); n != 1 {
		t.Errorf("token.created audited %d times", n)
	}
	if n := b.auditCount(b.a, "token.revoked"); n != 1 {
		t.Errorf("token.revoked audited %d times", n)
	}
	// App clients: a revoked client's token is refused.
	if r := b.do("DELETE", fmt.Sprintf("/v1/app-clients/%d", b.a.appID), b.a.tokens[store.RoleSuper], nil); r.status != http.StatusOK {
		t.Fatalf("revoke app client: %d %s", r.status, r.raw)
	}
	if r := b.do("POST", fmt.Sprintf("/v1/app/end-users/%d/first-access", b.a.users[0].ID), b.a.app, nil); r.status != http.StatusUnauthorized {
		t.Errorf("revoked app client: %d, want 401", r.status)
	}
}
