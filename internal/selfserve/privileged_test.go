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
// tenant's general verification, and the challenge's answer still names
// only the tenant policy's factors, as for an unknown login (the email is
// asked for once the SMS code is proven), so it does not reveal which
// accounts are privileged.
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

		// two_factors on a tenant whose policy is sms: the challenge names
		// the SMS alone, as for anyone; the email is asked for once the
		// SMS code is proven
		tn := h.tenant
		tn.PrivilegedSelfServe = rules.PrivilegedTwoFactors
		must(t, st.UpdateTenant(ctx, tn))
		r, d = h.challenge("alice", "reset"), h.challenge("nobody", "reset")
		if shape(r) != shape(d) || len(r.body["factors"].([]any)) != 1 {
			t.Fatalf("two_factors: privileged alice %s, unknown login %s", r.raw, d.raw)
		}
		id := r.body["challenge_id"].(string)
		// trying the email first answers as on a challenge that never named it
		e, de := h.verify(id, "email", "123456"), h.verify(d.body["challenge_id"].(string), "email", "123456")
		if e.status != de.status || e.errCode() != de.errCode() || e.errField() != de.errField() {
			t.Fatalf("email before the SMS: privileged %d %s, unknown %d %s", e.status, e.raw, de.status, de.raw)
		}
		sms, _ := h.code(id, "sms")
		if files := h.codeFiles(); len(files) != 1 {
			t.Fatalf("codes before the SMS is proven: %v, want alice's SMS alone", files)
		}
		v := h.verify(id, "sms", sms)
		if v.status != 200 || v.body["grant"] != nil || fmt.Sprint(v.body["remaining"]) != "[email]" {
			t.Fatalf("after the SMS code: %d %s", v.status, v.raw)
		}
		sent, _ := v.body["factors"].([]any)
		if len(sent) != 1 || sent[0].(map[string]any)["channel"] != "email" || sent[0].(map[string]any)["to"] == alice.Email {
			t.Fatalf("after the SMS code, the email factor with its masked address: %s", v.raw)
		}
		email, to := h.code(id, "email")
		if to != alice.Email {
			t.Fatalf("email code sent to %q, want %q", to, alice.Email)
		}
		if v := h.verify(id, "email", email); v.status != 200 || v.body["grant"] == nil {
			t.Fatalf("after the email code: %d %s", v.status, v.raw)
		}

		// a tenant whose policy is sms+email names both up front, for all
		tn.Verification = rules.VerifySMSEmail
		must(t, st.UpdateTenant(ctx, tn))
		r, d = h.challenge("alice", "reset"), h.challenge("nobody", "reset")
		if shape(r) != shape(d) || len(r.body["factors"].([]any)) != 2 {
			t.Fatalf("sms+email: privileged alice %s, unknown login %s", r.raw, d.raw)
		}
		if g, _ := h.grant("alice", "unlock"); g == "" {
			t.Fatal("no grant for privileged alice under sms+email")
		}
	})
}
