package selfserve_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"selfserve/internal/rules"
	"selfserve/internal/store"
)

// TestPrivilegedEndUser: a privileged end user's challenge (tenant policy
// deny, the default) sends no code and answers like an unknown login; with
// two_factors both an SMS and an email code are required, whatever the
// tenant's general verification.
func TestPrivilegedEndUser(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		h := newHarness(t, harnessOptions{st: st})
		alice := h.users["alice"]
		changes, err := st.ReconcilePrivileged(ctx, store.PageTarget{TenantID: h.tenant.ID, ConnectionID: *alice.ConnectionID},
			map[string]string{"alice": "member of Domain Admins"})
		if err != nil || len(changes) != 1 {
			t.Fatalf("flagging alice: %v, %+v", err, changes)
		}

		r, d := h.challenge("alice", "reset"), h.challenge("nobody", "reset")
		if r.status != d.status || shape(r) != shape(d) {
			t.Fatalf("privileged alice %s, unknown login %s", r.raw, d.raw)
		}
		time.Sleep(200 * time.Millisecond) // the background sender
		if files := h.codeFiles(); len(files) != 0 {
			t.Fatalf("codes sent for a privileged end user under deny: %v", files)
		}

		tn := h.tenant
		tn.PrivilegedSelfServe = rules.PrivilegedTwoFactors
		must(t, st.UpdateTenant(ctx, tn))
		r = h.challenge("alice", "reset")
		if len(r.body["factors"].([]any)) != 2 {
			t.Fatalf("two_factors: %s", r.raw)
		}
		id := r.body["challenge_id"].(string)
		sms, _ := h.code(id, "sms")
		if v := h.verify(id, "sms", sms); v.status != 200 || v.body["grant"] != nil || fmt.Sprint(v.body["remaining"]) != "[email]" {
			t.Fatalf("after the SMS code: %d %s", v.status, v.raw)
		}
		email, _ := h.code(id, "email")
		if v := h.verify(id, "email", email); v.status != 200 || v.body["grant"] == nil {
			t.Fatalf("after the email code: %d %s", v.status, v.raw)
		}
	})
}
