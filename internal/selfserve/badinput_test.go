package selfserve_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"selfserve/internal/notify"
	"selfserve/internal/selfserve"
	"selfserve/internal/store"
	"selfserve/internal/store/storetest"
)

// TestBadInput: each malformed request gets a precise 4xx naming what is
// wrong, never a 500, and writes nothing; anything that could reveal an
// account answers as an unknown login does.
func TestBadInput(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, st *store.Store) {
		h := newHarness(t, harnessOptions{st: st, demo: true})
		grant, _ := h.grant("alice", "reset")
		forged := "ssg_" + strings.Repeat("A", 43)
		big := strings.Repeat("a", 1<<20)
		cases := []struct {
			name, path string
			body       any
			status     int
			code       string
			field      string
		}{
			{"malformed JSON", api("/challenges"), `{"login":`, 400, "invalid_json", ""},
			{"not an object", api("/challenges"), `[1,2]`, 400, "invalid_field", ""},
			{"empty body", api("/challenges"), ``, 400, "invalid_json", ""},
			{"two values", api("/challenges"), `{"login":"a","purpose":"reset"} {}`, 400, "invalid_json", ""},
			{"unknown field", api("/challenges"), `{"login":"a","purpose":"reset","admin":true}`, 400, "invalid_field", "admin"},
			{"wrong type", api("/challenges"), `{"login":5,"purpose":"reset"}`, 400, "invalid_field", "login"},
			{"oversized body", api("/challenges"), `{"login":"` + big + `","purpose":"reset"}`, 413, "too_large", ""},
			{"no login", api("/challenges"), `{"purpose":"reset"}`, 400, "invalid_field", "login"},
			{"login too long", api("/challenges"), map[string]any{"login": strings.Repeat("x", 300), "purpose": "reset"}, 400, "invalid_field", "login"},
			{"control character", api("/challenges"), map[string]any{"login": "al\x00ice", "purpose": "reset"}, 400, "invalid_field", "login"},
			{"bad purpose", api("/challenges"), map[string]any{"login": "alice", "purpose": "delete"}, 400, "invalid_field", "purpose"},
			{"code with letters", api("/challenges/AAAAAAAAAAAAAAAAAAAAAA/verify"), map[string]any{"channel": "sms", "code": "12ab56"}, 400, "invalid_field", "code"},
			{"code too long", api("/challenges/AAAAAAAAAAAAAAAAAAAAAA/verify"), map[string]any{"channel": "sms", "code": "1234567"}, 400, "invalid_field", "code"},
			{"bad channel", api("/challenges/AAAAAAAAAAAAAAAAAAAAAA/verify"), map[string]any{"channel": "fax", "code": "123456"}, 400, "invalid_field", "channel"},
			{"malformed challenge id", api("/challenges/..%2F..%2Fx/verify"), map[string]any{"channel": "sms", "code": "123456"}, 410, "challenge_expired", ""},
			{"forged grant", api("/password"), map[string]any{"grant": forged, "new_password": "Tangerine-Orbit-4417"}, 401, "invalid_grant", "grant"},
			{"not a grant", api("/unlock"), map[string]any{"grant": "x"}, 401, "invalid_grant", "grant"},
			{"no password", api("/password"), map[string]any{"grant": grant}, 400, "invalid_field", "new_password"},
			{"password 1 MB", api("/password"), map[string]any{"grant": grant, "new_password": big}, 413, "too_large", ""},
			{"password too long", api("/password"), map[string]any{"grant": grant, "new_password": strings.Repeat("Ab1!", 100)}, 400, "invalid_field", "new_password"},
			{"unknown tenant", "/self-serve/v1/nobody/challenges", map[string]any{"login": "alice", "purpose": "reset"}, 404, "not_found", ""},
			{"unknown endpoint", "/self-serve/v1/acme/users", map[string]any{}, 404, "not_found", ""},
		}
		for _, c := range cases {
			r := h.post(nil, c.path, c.body)
			if r.status != c.status || r.errCode() != c.code || r.errField() != c.field {
				t.Errorf("%s: %d %s %q, want %d %s %q (%.200s)", c.name, r.status, r.errCode(), r.errField(), c.status, c.code, c.field, r.raw)
			}
		}
		// The service refuses invalid UTF-8 itself (JSON decoding would
		// replace it; a form post would not).
		if _, err := h.svc.SetPassword(context.Background(), "acme", grant, "Tangerine\xff-Orbit-4417", h.ip); err == nil || !strings.Contains(err.Error(), "UTF-8") {
			t.Errorf("invalid UTF-8 password: %v", err)
		}
		// Nothing was written by any of them; the grant still works.
		jobs, err := st.PasswordJobs(context.Background(), h.tenant.ID, h.users["alice"].ID, 0)
		must(t, err)
		if len(jobs) != 0 {
			t.Errorf("bad input wrote jobs: %+v", jobs)
		}
		if r := h.post(nil, api("/password"), map[string]any{"grant": grant, "new_password": "Tangerine-Orbit-4417"}); r.status != 200 {
			t.Errorf("the grant after bad input: %d %s", r.status, r.raw)
		}

		// A tenant with self-serve off answers as an unknown tenant.
		off := h.tenant
		off.SelfServe = false
		must(t, st.UpdateTenant(context.Background(), off))
		a := h.post(nil, api("/challenges"), map[string]any{"login": "alice", "purpose": "reset"})
		b := h.post(nil, "/self-serve/v1/nobody/challenges", map[string]any{"login": "alice", "purpose": "reset"})
		if a.status != 404 || a.raw != b.raw {
			t.Errorf("self-serve off: %d %s; unknown tenant: %s", a.status, a.raw, b.raw)
		}
	})
}

// TestPublicListenerHidesAdmin: nothing of the admin API, the ops
// endpoints or the console answers on the public listener; the OpenAPI
// document lists exactly the routes.
func TestPublicListenerHidesAdmin(t *testing.T) {
	t.Parallel()
	st := storeForTest(t)
	h := newHarness(t, harnessOptions{st: st})
	for _, p := range []string{"/v1/tenant", "/v1/end-users/1", "/openapi.json", "/metrics", "/healthz", "/monitoring/", "/", "/console", "/login"} {
		if r := h.request(nil, "GET", p, nil, nil); r.status != 404 {
			t.Errorf("GET %s: %d", p, r.status)
		}
	}
	r := h.request(nil, "GET", "/self-serve/openapi.json", nil, nil)
	if r.status != 200 {
		t.Fatalf("openapi: %d", r.status)
	}
	var doc struct {
		Paths map[string]map[string]any `json:"paths"`
	}
	must(t, json.Unmarshal(selfserve.OpenAPI, &doc))
	var got []string
	for p, ops := range doc.Paths {
		for m := range ops {
			got = append(got, strings.ToUpper(m)+" "+p)
		}
	}
	want := selfserve.Routes()
	if fmt.Sprint(sorted(got)) != fmt.Sprint(sorted(want)) {
		t.Errorf("OpenAPI paths %v, routes %v", sorted(got), sorted(want))
	}
	if r := h.request(nil, "GET", "/acme/change", nil, nil); r.status != 200 || r.header.Get("Referrer-Policy") != "no-referrer" || !strings.Contains(r.raw, "acme") {
		t.Errorf("change page: %d %v", r.status, r.header)
	}
	// A cross-site form post is refused before any handler.
	req := httptest.NewRequest("POST", "/acme/change", strings.NewReader("login=alice"))
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	rec := httptest.NewRecorder()
	h.svc.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusForbidden {
		t.Errorf("cross-site post: %d", rec.Code)
	}
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// storeForTest is the first backend's store (SQLite).
func storeForTest(t *testing.T) *store.Store {
	t.Helper()
	return storetest.Backends()[0].Open(t)
}

// TestRateLimitsAcrossServers: two services (two serve processes) sharing
// one Redis hold one count: the sixth challenge for a login within the
// hour is 429 with Retry-After, whichever server it reaches; so is the
// 31st from one address in ten minutes.
func TestRateLimitsAcrossServers(t *testing.T) {
	t.Parallel()
	rd := realRedis(t)
	st := storeForTest(t)
	h := newHarness(t, harnessOptions{st: st, rd: rd})
	second := httptest.NewServer(h.service(harnessOptions{floor: time.Millisecond}).Handler())
	t.Cleanup(second.Close)
	// Addresses and logins of this run only: the test Redis is shared.
	h.ip = fmt.Sprintf("198.51.%d.%d", rand.IntN(256), rand.IntN(256))
	login := fmt.Sprintf("ghost-%d@contoso.example", rand.Int64())
	servers := []*httptest.Server{h.srv, second}
	for i := range 5 {
		if r := h.post(servers[i%2], api("/challenges"), map[string]any{"login": login, "purpose": "reset"}); r.status != 202 {
			t.Fatalf("challenge %d: %d %s", i+1, r.status, r.raw)
		}
	}
	r := h.post(servers[1], api("/challenges"), map[string]any{"login": login, "purpose": "reset"})
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" || r.errCode() != "rate_limited" {
		t.Fatalf("sixth challenge for one login: %d %v %s", r.status, r.header, r.raw)
	}
	// Per address: 30 in ten minutes (6 used above, one of them refused).
	n := 6
	for ; n < 40; n++ {
		r = h.post(servers[n%2], api("/challenges"), map[string]any{"login": fmt.Sprintf("other-%d-%d", rand.Int64(), n), "purpose": "unlock"})
		if r.status == http.StatusTooManyRequests {
			break
		}
	}
	if n != 30 || r.header.Get("Retry-After") == "" {
		t.Errorf("the address was stopped at request %d (want 31): %d %s", n+1, r.status, r.raw)
	}
}

// TestTenantChangesWithinTTL: a tenant read is reused for the TTL, so a
// change to its settings (self-serve turned off) reaches the public
// listener once the TTL has passed; a tenant that did not exist is never
// remembered.
func TestTenantChangesWithinTTL(t *testing.T) {
	t.Parallel()
	st := storeForTest(t)
	var skew atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	h := newHarness(t, harnessOptions{st: st, now: now, tenantTTL: 2 * time.Second})
	if r := h.challenge("alice", "reset"); r.status != 202 {
		t.Fatalf("challenge: %d %s", r.status, r.raw)
	}
	off := h.tenant
	off.SelfServe = false
	must(t, st.UpdateTenant(context.Background(), off))
	if r := h.challenge("alice", "reset"); r.status != 202 {
		t.Errorf("within the TTL: %d %s, want the tenant as read", r.status, r.raw)
	}
	skew.Store(int64(2 * time.Second))
	if r := h.challenge("alice", "reset"); r.status != 404 {
		t.Errorf("after the TTL: %d %s, want self-serve off", r.status, r.raw)
	}

	newco := "/self-serve/v1/newco/challenges"
	if r := h.post(nil, newco, map[string]any{"login": "alice", "purpose": "reset"}); r.status != 404 {
		t.Fatalf("a tenant that does not exist: %d %s", r.status, r.raw)
	}
	n := h.tenant
	n.ID, n.Name = 0, "newco"
	_, _, err := st.UpsertTenant(context.Background(), n)
	must(t, err)
	if r := h.post(nil, newco, map[string]any{"login": "alice", "purpose": "reset"}); r.status != 202 {
		t.Errorf("a tenant created after a 404: %d %s, want served at once", r.status, r.raw)
	}
}

// panickingSMS is an SMS provider that panics on every message.
type panickingSMS struct{}

func (panickingSMS) Send(context.Context, notify.Message) error { panic("provider bug") }

// TestCodeProviderPanics: an SMS provider panicking while it sends a code
// (in the service's own background sender) is logged as a code not sent,
// without the code; the process and the next challenges go on.
func TestCodeProviderPanics(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{st: storeForTest(t), sms: panickingSMS{}})
	for range 2 {
		if r := h.challenge("alice", "reset"); r.status != 202 {
			t.Fatalf("challenge: %d %s", r.status, r.raw)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for strings.Count(h.log.String(), "the provider panicked") < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the panics were not logged: %s", h.log.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if logged := h.log.String(); !strings.Contains(logged, "provider bug") || codeRE.MatchString(logged) {
		t.Errorf("the log should name the panic and hold no code: %s", logged)
	}
}
