package admin

import (
	"net/http"
	"testing"

	"selfserve/internal/store"
)

// TestTenantVerification: the tenant's verification (sms by default) is
// shown and changed by super and primary only, and audited.
func TestTenantVerification(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, b *bundle) {
		helpdesk, super := b.a.tokens[store.RoleHelpdesk], b.a.tokens[store.RoleSuper]
		if r := b.do("GET", "/v1/tenant", helpdesk, nil); r.body["verification"] != "sms" {
			t.Errorf("default verification: %s", r.raw)
		}
		if r := b.do("PATCH", "/v1/tenant", helpdesk, map[string]any{"verification": "sms+email"}); r.status != http.StatusForbidden {
			t.Errorf("helpdesk changing verification: %d", r.status)
		}
		if r := b.do("PATCH", "/v1/tenant", super, map[string]any{"verification": "sms+email"}); r.status != http.StatusOK || r.body["verification"] != "sms+email" {
			t.Fatalf("verification sms+email: %d %s", r.status, r.raw)
		}
		if n := b.auditCount(b.a, "tenant.updated"); n != 1 {
			t.Errorf("audited %d times", n)
		}
	})
}
