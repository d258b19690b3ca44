package admin

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"selfserve/internal/store"
)

// TestLoginRoles: a token never changes a role, and only a super login
// makes tokens for another login; a role changes only through PATCH
// /v1/logins/{id} (super only), audited with before and after, and the
// login's tokens carry the new role at once.
func TestLoginRoles(t *testing.T) {
	t.Parallel()
	b := sqliteOnly(t)
	ctx := context.Background()
	super, primary := b.a.tokens[store.RoleSuper], b.a.tokens[store.RolePrimary]
	desk, err := b.st.LoginByEmail(ctx, b.a.tenant.ID, "helpdesk@acme.example")
	must(t, err)
	deskToken := b.a.tokens[store.RoleHelpdesk]

	// A primary may not mint a token for another login (it could then act as
	// that login); a super may.
	if r := b.do("POST", "/v1/tokens", primary, map[string]any{"login_id": desk.ID}); r.status != http.StatusForbidden {
		t.Errorf("primary making a token for helpdesk: %d %s", r.status, r.raw)
	}
	r := b.do("POST", "/v1/tokens", super, map[string]any{"login_id": desk.ID})
	if r.status != http.StatusCreated {
		t.Fatalf("super making a token for helpdesk: %d %s", r.status, r.raw)
	}
	if l, _ := b.st.Login(ctx, b.a.tenant.ID, desk.ID); l.Role != store.RoleHelpdesk {
		t.Fatalf("a token changed the role to %s", l.Role)
	}

	path := fmt.Sprintf("/v1/logins/%d", desk.ID)
	for _, role := range []store.Role{store.RolePrimary, store.RoleManager, store.RoleEngineer, store.RoleHelpdesk} {
		if r := b.do("PATCH", path, b.a.tokens[role], map[string]any{"role": "super"}); r.status != http.StatusForbidden {
			t.Errorf("%s changing a role: %d %s", role, r.status, r.raw)
		}
	}
	bad := []struct {
		body        any
		status      int
		field, code string
	}{
		{map[string]any{"role": "root"}, 400, "role", "invalid_field"},
		{map[string]any{}, 400, "role", "invalid_field"},
		{map[string]any{"role": "engineer", "email": "x@y.example"}, 400, "email", "unknown_field"},
		{`{"role":"engineer","role":"super"}`, 400, "role", "duplicate_key"},
	}
	for _, c := range bad {
		r := b.do("PATCH", path, super, c.body)
		if field, code := r.errField(); r.status != c.status || field != c.field || code != c.code {
			t.Errorf("%v: %d %s, want %d %s %s", c.body, r.status, r.raw, c.status, c.field, c.code)
		}
	}
	if r := b.do("PATCH", fmt.Sprintf("/v1/logins/%d", b.b.tokenIDs[store.RoleSuper]+1000), super, map[string]any{"role": "engineer"}); r.status != http.StatusNotFound {
		t.Errorf("unknown login: %d", r.status)
	}
	other, err := b.st.LoginByEmail(ctx, b.b.tenant.ID, "helpdesk@globex.example")
	must(t, err)
	if r := b.do("PATCH", fmt.Sprintf("/v1/logins/%d", other.ID), super, map[string]any{"role": "super"}); r.status != http.StatusNotFound {
		t.Errorf("another tenant's login: %d %s", r.status, r.raw)
	}
	if b.auditCount(b.a, "login.role_changed") != 0 {
		t.Fatal("refused role changes were audited")
	}

	r = b.do("PATCH", path, super, map[string]any{"role": "primary"})
	if r.status != http.StatusOK || r.body["role"] != "primary" {
		t.Fatalf("role change: %d %s", r.status, r.raw)
	}
	es, err := b.st.AuditLog(ctx, b.a.tenant.ID, store.AuditFilter{Action: "login.role_changed", Limit: 10})
	must(t, err)
	if len(es) != 1 || es[0].Before != `{"role":"helpdesk"}` || es[0].After != `{"role":"primary"}` || es[0].ObjectID != fmt.Sprint(desk.ID) {
		t.Fatalf("audit: %+v", es)
	}
	// The login's existing token now has the new role's rights.
	if r := b.do("PATCH", "/v1/tenant", deskToken, map[string]any{"send_hour": 7}); r.status != http.StatusOK {
		t.Errorf("promoted login's old token on a settings route: %d %s", r.status, r.raw)
	}
	// The last super keeps its role.
	lead, err := b.st.LoginByEmail(ctx, b.a.tenant.ID, "super@acme.example")
	must(t, err)
	r = b.do("PATCH", fmt.Sprintf("/v1/logins/%d", lead.ID), super, map[string]any{"role": "primary"})
	if _, code := r.errField(); r.status != http.StatusConflict || code != "last_super" || !strings.Contains(r.errMessage(), "last super") {
		t.Errorf("demoting the last super: %d %s", r.status, r.raw)
	}
}
