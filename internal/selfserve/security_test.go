package selfserve_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"selfserve/internal/rules"
	"selfserve/internal/store"
)

// shape is a reply reduced to what an observer can compare: status, the
// body's keys and each factor's channel and masked form.
func shape(r reply) string {
	var keys []string
	for k := range r.body {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := fmt.Sprintf("%d %v", r.status, keys)
	fs, _ := r.body["factors"].([]any)
	digit, letter := regexp.MustCompile(`[0-9]`), regexp.MustCompile(`[a-z]`)
	for _, f := range fs {
		m := f.(map[string]any)
		out += fmt.Sprintf(" %s:%s", m["channel"], letter.ReplaceAllString(digit.ReplaceAllString(m["to"].(string), "9"), "x"))
	}
	return out
}

// TestEnumeration: an unknown login, an inactive end user (switch off), a
// disabled account, a login with LDAP filter characters and a real active
// end user get the same status and body shape, no faster than the floor;
// asking twice shows the same made-up destinations; only the active end
// user's phone gets a code.
func TestEnumeration(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, st *store.Store) {
		const floor = 60 * time.Millisecond
		h := newHarness(t, harnessOptions{st: st, floor: floor})
		logins := []string{"alice@contoso.example", "nobody@contoso.example", "carol@contoso.example", "dave@contoso.example", `*)(uid=*))(|(uid=*`, `CONTOSO\alice`, "nobody"}
		var want string
		for _, l := range logins {
			start := time.Now()
			r := h.challenge(l, "reset")
			took := time.Since(start)
			if took < floor {
				t.Errorf("%q answered in %s, under the floor %s", l, took, floor)
			}
			got := shape(r)
			if want == "" {
				want = got
			}
			if got != want {
				t.Errorf("%q: %s, want %s (%s)", l, got, want, r.raw)
			}
		}
		// Stable decoys.
		a, b := h.challenge("nobody@contoso.example", "unlock"), h.challenge("nobody@contoso.example", "unlock")
		if !reflect.DeepEqual(a.body["factors"], b.body["factors"]) {
			t.Errorf("decoy destinations differ between asks: %v / %v", a.body["factors"], b.body["factors"])
		}
		if f := a.body["factors"].([]any)[0].(map[string]any); !strings.HasPrefix(f["to"].(string), "+•• •••• ••") {
			t.Errorf("decoy mobile %q", f["to"])
		}
		// Codes went to alice only (twice: email login and DOMAIN\user).
		time.Sleep(200 * time.Millisecond) // the background sender
		files := h.codeFiles()
		if len(files) != 2 {
			t.Fatalf("%d code messages, want 2 (alice's): %v", len(files), files)
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			must(t, err)
			if !strings.Contains(string(b), "To: +447700900101") {
				t.Errorf("a code went elsewhere than alice's mobile:\n%s", b)
			}
		}
	})
}

// TestAttempts: five wrong codes void the challenge; the sixth attempt
// fails even with the right code. A code with letters is a 400 naming the
// field and does not count.
func TestAttempts(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, st *store.Store) {
		h := newHarness(t, harnessOptions{st: st})
		r := h.challenge("alice", "reset")
		id := r.body["challenge_id"].(string)
		code, to := h.code(id, "sms")
		if to != "+447700900101" {
			t.Errorf("code sent to %q", to)
		}
		if v := h.verify(id, "sms", "12a456"); v.status != 400 || v.errField() != "code" {
			t.Errorf("code with letters: %d %s", v.status, v.raw)
		}
		wrong := "000000"
		if code == wrong {
			wrong = "000001"
		}
		for i := range 5 {
			v := h.verify(id, "sms", wrong)
			left, _ := v.body["error"].(map[string]any)["attempts_left"].(float64)
			if v.status != 400 || v.errCode() != "wrong_code" || int(left) != 4-i {
				t.Fatalf("wrong code %d: %d %s", i+1, v.status, v.raw)
			}
		}
		if v := h.verify(id, "sms", code); v.status != http.StatusGone {
			t.Fatalf("right code after five wrong ones: %d %s", v.status, v.raw)
		}
		// A decoy behaves the same: wrong codes count, then 410.
		d := h.challenge("nobody@contoso.example", "reset")
		did := d.body["challenge_id"].(string)
		for i := range 5 {
			if v := h.verify(did, "sms", fmt.Sprintf("%06d", i)); v.status != 400 || v.errCode() != "wrong_code" {
				t.Fatalf("decoy attempt %d: %d %s", i+1, v.status, v.raw)
			}
		}
		if v := h.verify(did, "sms", "123456"); v.status != http.StatusGone {
			t.Fatalf("decoy after five: %d %s", v.status, v.raw)
		}
		if v := h.verify("AAAAAAAAAAAAAAAAAAAAAA", "sms", "123456"); v.status != http.StatusGone {
			t.Fatalf("unknown challenge: %d %s", v.status, v.raw)
		}
	})
}

// TestSingleUse: a code and a grant each work once; a refused password
// leaves the grant usable; the write-back is a job with its audit entry and
// the end user is told once, by email and SMS; the first verification marks
// Accessed Self-Serve.
func TestSingleUse(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, st *store.Store) {
		h := newHarness(t, harnessOptions{st: st, demo: true})
		ctx := context.Background()
		r := h.challenge("alice@contoso.example", "reset")
		id := r.body["challenge_id"].(string)
		code, _ := h.code(id, "sms")
		v := h.verify(id, "sms", code)
		grant, _ := v.body["grant"].(string)
		if v.status != 200 || grant == "" || v.body["expires_at"] == nil {
			t.Fatalf("verify: %d %s", v.status, v.raw)
		}
		if again := h.verify(id, "sms", code); again.status != http.StatusGone {
			t.Errorf("code used twice: %d %s", again.status, again.raw)
		}
		u, err := st.EndUser(ctx, h.tenant.ID, h.users["alice"].ID)
		must(t, err)
		if rules.StatusOf(u.Rules()) != rules.StatusAccessedSelfServe {
			t.Errorf("status after the first verification: %s", rules.StatusOf(u.Rules()))
		}

		if p := h.post(nil, api("/unlock"), map[string]any{"grant": grant}); p.status != http.StatusForbidden || p.errCode() != "wrong_purpose" {
			t.Errorf("reset grant used to unlock: %d %s", p.status, p.raw)
		}
		for _, bad := range []struct{ pw, rule string }{{"short", "min_length"}, {"password123", "common_password"}, {"Alice-2026-spring", "contains_name"}} {
			p := h.post(nil, api("/password"), map[string]any{"grant": grant, "new_password": bad.pw})
			rule, _ := p.body["error"].(map[string]any)["rule"].(string)
			if p.status != 422 || p.errCode() != "password_policy" || rule != bad.rule {
				t.Errorf("password %q: %d %s, want 422 %s", bad.pw, p.status, p.raw, bad.rule)
			}
		}
		const newPassword = "Tangerine-Orbit-4417"
		p := h.post(nil, api("/password"), map[string]any{"grant": grant, "new_password": newPassword})
		if p.status != 200 || p.body["status"] != "done" {
			t.Fatalf("password: %d %s", p.status, p.raw)
		}
		if p := h.post(nil, api("/password"), map[string]any{"grant": grant, "new_password": newPassword + "x"}); p.status != http.StatusUnauthorized || p.errCode() != "invalid_grant" {
			t.Errorf("grant used twice: %d %s", p.status, p.raw)
		}
		jobs, err := st.PasswordJobs(ctx, h.tenant.ID, u.ID, 0)
		must(t, err)
		if len(jobs) != 1 || jobs[0].State != store.JobDone || jobs[0].Target != store.TargetOutbox || jobs[0].ClientIP != h.ip || jobs[0].Action != store.PurposeReset {
			t.Errorf("jobs: %+v", jobs)
		}
		entries, err := st.AuditLog(ctx, h.tenant.ID, store.AuditFilter{Action: "end_user.password_reset"})
		must(t, err)
		if len(entries) != 1 || !strings.Contains(entries[0].After, `"result":"done"`) || !strings.Contains(entries[0].After, h.ip) {
			t.Errorf("audit: %+v", entries)
		}
		ns, err := st.NoticesOfEndUser(ctx, h.tenant.ID, u.ID, 0)
		must(t, err)
		told := map[store.Channel]int{}
		for _, n := range ns {
			if n.Kind == rules.KindPasswordChanged {
				told[n.Channel]++
			}
		}
		if told[store.ChannelEmail] != 1 || told[store.ChannelSMS] != 1 {
			t.Errorf("change notices: %v", told)
		}
		rec, err := filepath.Glob(filepath.Join(h.outbox, "writeback-*.txt"))
		must(t, err)
		if len(rec) != 1 {
			t.Fatalf("demo outbox records: %v", rec)
		}
		b, _ := os.ReadFile(rec[0])
		if !strings.Contains(string(b), "no directory to write to") || strings.Contains(string(b), newPassword) {
			t.Errorf("demo record:\n%s", b)
		}

		// An unlock grant works once too.
		ug, _ := h.grant("alice", "unlock")
		if p := h.post(nil, api("/unlock"), map[string]any{"grant": ug}); p.status != 200 {
			t.Errorf("unlock: %d %s", p.status, p.raw)
		}
		if p := h.post(nil, api("/unlock"), map[string]any{"grant": ug}); p.status != http.StatusUnauthorized {
			t.Errorf("unlock grant used twice: %d %s", p.status, p.raw)
		}
	})
}

// TestGrantExpires: a grant past its ten minutes is refused and nothing is
// written.
func TestGrantExpires(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, st *store.Store) {
		var offset time.Duration
		h := newHarness(t, harnessOptions{st: st, demo: true, now: func() time.Time { return time.Now().Add(offset) }})
		grant, _ := h.grant("alice", "reset")
		offset = 11 * time.Minute
		if p := h.post(nil, api("/password"), map[string]any{"grant": grant, "new_password": "Tangerine-Orbit-4417"}); p.status != http.StatusUnauthorized {
			t.Errorf("expired grant: %d %s", p.status, p.raw)
		}
		jobs, err := st.PasswordJobs(context.Background(), h.tenant.ID, h.users["alice"].ID, 0)
		must(t, err)
		if len(jobs) != 0 {
			t.Errorf("an expired grant wrote jobs: %+v", jobs)
		}
	})
}

// TestRefusedRoutes: without the demo, a local account's reset is refused
// with a plain reason, recorded as a failed job.
func TestRefusedRoutes(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, st *store.Store) {
		h := newHarness(t, harnessOptions{st: st})
		grant, _ := h.grant("alice", "reset")
		p := h.post(nil, api("/password"), map[string]any{"grant": grant, "new_password": "Tangerine-Orbit-4417"})
		if p.status != http.StatusConflict || p.errCode() != "not_supported" || !strings.Contains(p.raw, "own network") {
			t.Errorf("local reset: %d %s", p.status, p.raw)
		}
		jobs, err := st.PasswordJobs(context.Background(), h.tenant.ID, h.users["alice"].ID, 0)
		must(t, err)
		if len(jobs) != 1 || jobs[0].State != store.JobFailed || jobs[0].Target != store.TargetLocal || !strings.Contains(jobs[0].Reason, "own network") {
			t.Errorf("jobs: %+v", jobs)
		}
	})
}

// TestTwoFactors: with verification sms+email, the SMS code alone yields
// no grant; the email code completes it.
func TestTwoFactors(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, st *store.Store) {
		h := newHarness(t, harnessOptions{st: st})
		tn := h.tenant
		tn.Verification = rules.VerifySMSEmail
		must(t, st.UpdateTenant(context.Background(), tn))
		r := h.challenge("alice", "reset")
		d := h.challenge("nobody", "reset")
		if shape(r) != shape(d) || len(r.body["factors"].([]any)) != 2 {
			t.Fatalf("two factors: %s / %s", r.raw, d.raw)
		}
		id := r.body["challenge_id"].(string)
		sms, _ := h.code(id, "sms")
		v := h.verify(id, "sms", sms)
		if v.status != 200 || v.body["grant"] != nil || fmt.Sprint(v.body["remaining"]) != "[email]" {
			t.Fatalf("after the SMS code: %d %s", v.status, v.raw)
		}
		email, to := h.code(id, "email")
		if to != "alice@contoso.example" {
			t.Errorf("email code went to %q", to)
		}
		if v := h.verify(id, "email", email); v.status != 200 || v.body["grant"] == nil {
			t.Fatalf("after the email code: %d %s", v.status, v.raw)
		}
		if pol := h.request(nil, "GET", api("/policy"), nil, nil); pol.body["verification"] != "sms+email" {
			t.Errorf("policy: %s", pol.raw)
		}
	})
}
