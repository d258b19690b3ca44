package selfserve_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"selfserve/internal/admin/link"
	"selfserve/internal/rules"
	"selfserve/internal/store"
)

// TestNoSecretsLeak runs a whole flow (challenges, wrong and right codes,
// refused and accepted passwords, an unlock, an enrolment) and then
// searches the captured log, every audit row, the challenges and jobs
// tables and Redis for any code, grant or password used: none may appear.
func TestNoSecretsLeak(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, st *store.Store) {
		h := newHarness(t, harnessOptions{st: st, demo: true})
		ctx := context.Background()
		var secrets []string
		grant, codes := h.grant("alice@contoso.example", "reset")
		secrets = append(secrets, append(codes, grant)...)
		for _, pw := range []string{"short", "Zebra-Quantum-Lamp-88"} {
			secrets = append(secrets, pw)
			h.post(nil, api("/password"), map[string]any{"grant": grant, "new_password": pw})
		}
		ug, ucodes := h.grant("alice", "unlock")
		secrets = append(secrets, append(ucodes, ug)...)
		h.post(nil, api("/unlock"), map[string]any{"grant": ug})
		r := h.challenge("alice", "reset")
		h.verify(r.body["challenge_id"].(string), "sms", "999999")
		token := h.links.Sign(h.tenant.ID, h.users["erin"].ID, link.PurposeConfirmMobile, time.Now().Add(time.Hour))
		e := h.post(nil, api("/enrolment"), map[string]any{"token": token, "mobile": "07400 123105"})
		if e.status != http.StatusAccepted {
			t.Fatalf("enrolment: %d %s", e.status, e.raw)
		}
		ecode, _ := h.code(e.body["challenge_id"].(string), "sms")
		h.verify(e.body["challenge_id"].(string), "sms", ecode)
		secrets = append(secrets, ecode, token)

		var haystack []string
		haystack = append(haystack, h.log.String())
		entries, err := st.AuditLog(ctx, h.tenant.ID, store.AuditFilter{Limit: 1000})
		must(t, err)
		if len(entries) < 3 {
			t.Fatalf("only %d audit rows", len(entries))
		}
		for _, a := range entries {
			haystack = append(haystack, a.Action+a.Before+a.After+a.Actor+a.ObjectID)
		}
		var rows []string
		must(t, st.DB().Select(&rows, st.DB().Rebind(`SELECT id || factors || mobile || link_nonce FROM challenges`)))
		haystack = append(haystack, rows...)
		var jobs []string
		must(t, st.DB().Select(&jobs, st.DB().Rebind(`SELECT challenge_id || target || external_id || state || reason || client_ip FROM password_jobs`)))
		haystack = append(haystack, jobs...)
		keys, err := h.rd.Keys(ctx, "*").Result()
		must(t, err)
		haystack = append(haystack, keys...)
		all := strings.Join(haystack, "\n")
		for _, s := range secrets {
			if strings.Contains(all, s) {
				t.Errorf("%q appears in the log, audit, tables or Redis", s)
			}
		}
	})
}

// TestEnrolment: the welcome link's page shows the number on file; a code
// to the number given proves it; only then is it stored as the end user's
// own, making them Registration Complete (not Accessed Self-Serve); the
// link works once.
func TestEnrolment(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, st *store.Store) {
		h := newHarness(t, harnessOptions{st: st})
		ctx := context.Background()
		erin := h.users["erin"]
		token := h.links.Sign(h.tenant.ID, erin.ID, link.PurposeConfirmMobile, time.Now().Add(time.Hour))
		if r := h.request(nil, "GET", "/acme/enrol?t="+token, nil, nil); r.status != 200 || !strings.Contains(r.raw, "Confirm your mobile number") {
			t.Fatalf("enrol page: %d %.300s", r.status, r.raw)
		}
		if r := h.post(nil, api("/enrolment"), map[string]any{"token": token, "mobile": "not a number"}); r.status != 400 || r.errField() != "mobile" {
			t.Errorf("bad number: %d %s", r.status, r.raw)
		}
		r := h.post(nil, api("/enrolment"), map[string]any{"token": token, "mobile": "07400 123105"})
		if r.status != http.StatusAccepted {
			t.Fatalf("enrolment: %d %s", r.status, r.raw)
		}
		id := r.body["challenge_id"].(string)
		code, to := h.code(id, "sms")
		if to != "+447400123105" {
			t.Errorf("code sent to %q", to)
		}
		if u, _ := st.EndUser(ctx, h.tenant.ID, erin.ID); u.Mobile != "" {
			t.Fatalf("stored before the proof: %q", u.Mobile)
		}
		if v := h.verify(id, "sms", code); v.status != 200 || v.body["enrolled"] != true {
			t.Fatalf("verify: %d %s", v.status, v.raw)
		}
		u, err := st.EndUser(ctx, h.tenant.ID, erin.ID)
		must(t, err)
		if u.Mobile != "+447400123105" || u.MobileSource != rules.ProvenanceEndUser || rules.StatusOf(u.Rules()) != rules.StatusRegistrationComplete {
			t.Errorf("after enrolment: %q %q %s", u.Mobile, u.MobileSource, rules.StatusOf(u.Rules()))
		}
		if r := h.post(nil, api("/enrolment"), map[string]any{"token": token}); r.status != http.StatusGone || r.errCode() != "link_used" {
			t.Errorf("link used twice: %d %s", r.status, r.raw)
		}
		expired := h.links.Sign(h.tenant.ID, erin.ID, link.PurposeConfirmMobile, time.Now().Add(-time.Minute))
		if r := h.post(nil, api("/enrolment"), map[string]any{"token": expired}); r.status != http.StatusGone || r.errCode() != "link_expired" {
			t.Errorf("expired link: %d %s", r.status, r.raw)
		}
		if r := h.post(nil, api("/enrolment"), map[string]any{"token": token[:len(token)-2] + "AA"}); r.status != http.StatusUnauthorized {
			t.Errorf("tampered link: %d %s", r.status, r.raw)
		}
		entries, err := st.AuditLog(ctx, h.tenant.ID, store.AuditFilter{Action: "end_user.mobile_confirmed"})
		must(t, err)
		if len(entries) != 1 {
			t.Errorf("enrolment audited %d times", len(entries))
		}
		files, _ := filepath.Glob(filepath.Join(h.outbox, "code-*-sms.txt"))
		for _, f := range files {
			b, _ := os.ReadFile(f)
			if !strings.Contains(string(b), "confirm your mobile number") {
				t.Errorf("enrolment SMS:\n%s", b)
			}
		}
	})
}
