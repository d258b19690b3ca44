package admin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"selfserve/internal/rules"
	"selfserve/internal/store"
)

// fuzzReply sends body to method path and checks what every reply must be:
// never a 5xx, always JSON, errors with a code.
func fuzzReply(t *testing.T, b *bundle, method, path string, body []byte) response {
	b.t = t
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+b.a.tokens[store.RoleEngineer])
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	b.h.ServeHTTP(rec, req)
	r := response{status: rec.Code, raw: rec.Body.Bytes()}
	if r.status >= 500 {
		t.Fatalf("%s %s %q: %d %s", method, path, body, r.status, r.raw)
	}
	if err := json.Unmarshal(r.raw, &r.body); err != nil {
		t.Fatalf("reply is not JSON: %q", r.raw)
	}
	if r.status >= 400 {
		if _, code := r.errField(); code == "" {
			t.Fatalf("error without a code: %s", r.raw)
		}
	}
	return r
}

// FuzzEndUserEdit feeds arbitrary bodies to the end-user edit: the reply is
// a 2xx with normalised values stored, or a 4xx that changed nothing.
func FuzzEndUserEdit(f *testing.F) {
	for _, seed := range []string{
		`{"email":"a@b.example"}`, `{"mobile":"07400 123456"}`, `{"mobile":"+1 202 555 0100","email":""}`,
		`{"email":null}`, `{"email":5}`, `{"mobile":"0800-FLOWERS"}`, `{"x":1}`, `{`, `[]`, `{"email":"a@b.example"}{}`,
		`{"email":"' OR '1'='1"}`, `{"mobile":"*)(uid=*"}`, "{\"email\":\"\x00\"}", `{"email":"a@b.example","email":"c@d.example"}`,
	} {
		f.Add([]byte(seed))
	}
	b := sqliteOnly(f)
	bob := b.a.users[1]
	path := fmt.Sprintf("/v1/end-users/%d", bob.ID)
	f.Fuzz(func(t *testing.T, body []byte) {
		b.t = t
		before := b.snapshot(b.a)
		r := fuzzReply(t, b, "PATCH", path, body)
		u := b.endUser(b.a, bob.ID)
		if r.status == http.StatusOK {
			if e, err := rules.NormalizeEmail(u.Email); err != nil || e != u.Email {
				t.Fatalf("stored email %q is not normalised", u.Email)
			}
			if u.Mobile != "" && !strings.HasPrefix(u.Mobile, "+") {
				t.Fatalf("stored mobile %q is not E.164", u.Mobile)
			}
			return
		}
		if after := b.snapshot(b.a); after != before {
			t.Fatalf("refused edit (%d) changed something", r.status)
		}
	})
}

// FuzzBulkSwitch feeds arbitrary bodies to the bulk switch: all or nothing.
func FuzzBulkSwitch(f *testing.F) {
	b := sqliteOnly(f)
	ids := fmt.Sprintf("%d,%d", b.a.users[0].ID, b.a.users[1].ID)
	for _, seed := range []string{
		`{"ids":[` + ids + `],"enabled":true}`, `{"ids":[` + ids + `,987654],"enabled":true}`, `{"ids":[],"enabled":false}`,
		`{"ids":[1,1],"enabled":true}`, `{"ids":[-1],"enabled":true}`, `{"ids":"1","enabled":true}`, `{"ids":[1.5]}`,
		`{"ids":[` + ids + `]}`, `{"enabled":true}`, `{"ids":[1e99],"enabled":true}`, `null`, ``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		b.t = t
		before := b.snapshot(b.a)
		r := fuzzReply(t, b, "POST", "/v1/end-users/self-serve", body)
		if r.status == http.StatusOK {
			return
		}
		if after := b.snapshot(b.a); after != before {
			t.Fatalf("refused bulk request (%d) changed something", r.status)
		}
	})
}
