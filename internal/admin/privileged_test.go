package admin

import (
	"context"
	"fmt"
	"net/http"
	"selfserve/internal/importer"
	"strings"
	"testing"

	"selfserve/connectors"
	"selfserve/internal/rules"
	"selfserve/internal/store"
)

// makePrivileged imports alice again as a privileged account.
func (b *bundle) makePrivileged(f tenantFixture, reason string) {
	b.t.Helper()
	ctx := context.Background()
	run, err := b.st.CreateRun(ctx, f.tenant.ID, f.conn.ID, store.ModeIncremental, "test", store.RunRunning, false, 0)
	must(b.t, err)
	rec := store.UserRecord{User: connectors.User{ExternalID: "alice", Username: "alice", Email: "alice@contoso.example", Mobile: "+447400123001",
		Enabled: true, Privileged: true, PrivilegedReason: reason}}
	_, err = importer.ApplyPage(ctx, b.st, store.PageTarget{TenantID: f.tenant.ID, CustomerID: f.customer.ID, ConnectionID: f.conn.ID, RunID: run.ID,
		Source: rules.SourceLocal}, []store.UserRecord{rec}, nil)
	must(b.t, err)
	run.Status = store.RunSucceeded
	must(b.t, b.st.FinishRun(ctx, &run))
}

// TestPrivilegedEndUsers: the flag and reason are shown and filtered on;
// only super and primary may change a privileged end user's contact fields
// or switch (single and bulk), others get 403 with the reason and nothing
// changes; the tenant's privileged_self_serve decides whether the end user
// is active, while notices go to it either way.
func TestPrivilegedEndUsers(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, b *bundle) {
		b.makePrivileged(b.a, "member of Domain Admins")
		alice, bob := b.a.users[0], b.a.users[1]
		helpdesk, super := b.a.tokens[store.RoleHelpdesk], b.a.tokens[store.RoleSuper]
		list := fmt.Sprintf("/v1/customers/%d/end-users", b.a.customer.ID)

		r := b.do("GET", list+"?privileged=true", helpdesk, nil)
		rows, _ := r.body["end_users"].([]any)
		if r.status != http.StatusOK || len(rows) != 1 {
			t.Fatalf("privileged=true: %d %s", r.status, r.raw)
		}
		if row := rows[0].(map[string]any); row["id"] != float64(alice.ID) || row["privileged"] != true || row["privileged_reason"] != "member of Domain Admins" {
			t.Errorf("privileged row: %v", row)
		}
		if r := b.do("GET", list+"?privileged=false", helpdesk, nil); len(r.body["end_users"].([]any)) != 2 {
			t.Errorf("privileged=false: %s", r.raw)
		}
		if r := b.do("GET", list+"?privileged=maybe", helpdesk, nil); r.status != http.StatusBadRequest {
			t.Errorf("privileged=maybe: %d", r.status)
		}

		before := b.snapshot(b.a)
		for _, c := range []call{
			{"PATCH", fmt.Sprintf("/v1/end-users/%d", alice.ID), map[string]any{"mobile": "+447400999999"}, ""},
			{"PUT", fmt.Sprintf("/v1/end-users/%d/self-serve", alice.ID), map[string]any{"enabled": true}, ""},
			{"POST", "/v1/end-users/self-serve", map[string]any{"ids": []int64{bob.ID, alice.ID}, "enabled": true}, ""},
		} {
			for _, role := range []store.Role{store.RoleHelpdesk, store.RoleEngineer, store.RoleManager} {
				r := b.do(c.method, c.path, b.a.tokens[role], c.body)
				if _, code := r.errField(); r.status != http.StatusForbidden || code != "privileged_end_user" || !strings.Contains(string(r.raw), "privileged account") {
					t.Errorf("%s %s as %s: %d %s", c.method, c.path, role, r.status, r.raw)
				}
			}
		}
		if after := b.snapshot(b.a); after != before {
			t.Error("refused changes of a privileged end user changed something")
		}
		// A helpdesk login may still edit an ordinary end user.
		if r := b.do("PATCH", fmt.Sprintf("/v1/end-users/%d", bob.ID), helpdesk, map[string]any{"mobile": "+447400123002"}); r.status != http.StatusOK {
			t.Errorf("helpdesk editing bob: %d %s", r.status, r.raw)
		}
		// super and primary may.
		if r := b.do("PATCH", fmt.Sprintf("/v1/end-users/%d", alice.ID), super, map[string]any{"mobile": "+447400123009"}); r.status != http.StatusOK {
			t.Errorf("super editing alice: %d %s", r.status, r.raw)
		}
		r = b.do("PUT", fmt.Sprintf("/v1/end-users/%d/self-serve", alice.ID), b.a.tokens[store.RolePrimary], map[string]any{"enabled": true})
		if r.status != http.StatusOK || r.body["active"] != false || r.body["inactive_reason"] != string(rules.ReasonPrivileged) || r.body["notices"] != true {
			t.Fatalf("primary switching alice on: %d %s", r.status, r.raw)
		}

		// The tenant setting: bad value, then two_factors makes alice active.
		r = b.do("PATCH", "/v1/tenant", super, map[string]any{"privileged_self_serve": "allow"})
		if field, _ := r.errField(); r.status != http.StatusBadRequest || field != "privileged_self_serve" {
			t.Errorf("privileged_self_serve allow: %d %s", r.status, r.raw)
		}
		if r := b.do("PATCH", "/v1/tenant", helpdesk, map[string]any{"privileged_self_serve": "two_factors"}); r.status != http.StatusForbidden {
			t.Errorf("helpdesk changing privileged_self_serve: %d", r.status)
		}
		if r := b.do("GET", "/v1/tenant", helpdesk, nil); r.body["privileged_self_serve"] != "deny" {
			t.Errorf("default policy: %s", r.raw)
		}
		r = b.do("PATCH", "/v1/tenant", super, map[string]any{"privileged_self_serve": "two_factors"})
		if r.status != http.StatusOK || r.body["privileged_self_serve"] != "two_factors" {
			t.Fatalf("two_factors: %d %s", r.status, r.raw)
		}
		if r := b.do("GET", fmt.Sprintf("/v1/end-users/%d", alice.ID), helpdesk, nil); r.body["active"] != true || r.body["privileged"] != true {
			t.Errorf("alice under two_factors: %s", r.raw)
		}
		if n := b.auditCount(b.a, "tenant.updated"); n != 1 {
			t.Errorf("tenant.updated audited %d times", n)
		}
	})
}
