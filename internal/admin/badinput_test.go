package admin

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"selfserve/internal/store"
)

// TestBadInput: malformed JSON, wrong types, unknown fields, oversized
// bodies, bad phones and emails, unknown ids: 4xx naming the field, never a
// 500, nothing changed.
func TestBadInput(t *testing.T) {
	t.Parallel()
	b := sqliteOnly(t)
	tok := b.a.tokens[store.RoleSuper]
	bob := b.a.users[1]
	edit := fmt.Sprintf("/v1/end-users/%d", bob.ID)
	big := `{"email":"` + strings.Repeat("a", DefaultMaxBodyBytes) + `@x.example"}`
	cases := []struct {
		name, method, path string
		body               any
		status             int
		field, code        string
	}{
		{"malformed", "PATCH", edit, `{"email":`, 400, "", "invalid_json"},
		{"syntax", "PATCH", edit, `{"email" "x"}`, 400, "", "invalid_json"},
		{"not an object", "PATCH", edit, `["x"]`, 400, "", "invalid_json"},
		{"null", "PATCH", edit, `null`, 400, "", "invalid_json"},
		{"empty", "PATCH", edit, ``, 400, "", "invalid_json"},
		{"two values", "PATCH", edit, `{"email":"a@b.example"}{}`, 400, "", "invalid_json"},
		{"not utf-8", "PATCH", edit, "{\"email\":\"\xff@b.example\"}", 400, "", "invalid_json"},
		{"wrong type", "PATCH", edit, `{"email":5}`, 400, "email", "invalid_field"},
		{"wrong type bool", "PUT", edit + "/self-serve", `{"enabled":"yes"}`, 400, "enabled", "invalid_field"},
		{"wrong type ids", "POST", "/v1/end-users/self-serve", `{"ids":[1,"2"],"enabled":true}`, 400, "ids", "invalid_field"},
		{"float id", "POST", "/v1/end-users/self-serve", `{"ids":[1.5],"enabled":true}`, 400, "ids", "invalid_field"},
		{"huge id", "POST", "/v1/end-users/self-serve", `{"ids":[1e40],"enabled":true}`, 400, "ids", "invalid_field"},
		{"unknown field", "PATCH", edit, `{"email":"a@b.example","admin":true}`, 400, "admin", "unknown_field"},
		{"repeated key", "PUT", edit + "/self-serve", `{"enabled":true,"enabled":false}`, 400, "enabled", "duplicate_key"},
		{"repeated key differently escaped", "PATCH", edit, `{"email":"a@b.example","\u0065mail":"c@d.example"}`, 400, "email", "duplicate_key"},
		{"repeated nested key", "POST", "/v1/connections", `{"name":"n","kind":"file","settings":{"path":"a.csv","path":"b.csv"}}`, 400, "settings.path", "duplicate_key"},
		{"unknown tenant field", "PATCH", "/v1/tenant", `{"subscription":"bundle"}`, 400, "subscription", "unknown_field"},
		{"oversized", "PATCH", edit, big, 413, "", "body_too_large"},
		{"invalid email", "PATCH", edit, `{"email":"bob at example"}`, 400, "email", "invalid_field"},
		{"email with name", "PATCH", edit, `{"email":"Bob <bob@contoso.example>"}`, 400, "email", "invalid_field"},
		{"invalid phone", "PATCH", edit, `{"mobile":"12"}`, 400, "mobile", "invalid_field"},
		{"phone letters", "PATCH", edit, `{"mobile":"0800-FLOWERS"}`, 400, "mobile", "invalid_field"},
		{"phone country", "PATCH", edit, `{"mobile":"+999 1234 5678"}`, 400, "mobile", "invalid_field"},
		{"nothing", "PATCH", edit, `{}`, 400, "", "invalid_field"},
		{"unknown id", "PATCH", "/v1/end-users/987654", `{"email":"a@b.example"}`, 404, "", "not_found"},
		{"bad id", "PATCH", "/v1/end-users/abc", `{"email":"a@b.example"}`, 400, "id", "invalid_field"},
		{"zero id", "GET", "/v1/runs/0", nil, 400, "id", "invalid_field"},
		{"unknown run", "GET", "/v1/runs/987654", nil, 404, "", "not_found"},
		{"unknown customer", "GET", "/v1/customers/987654/end-users", nil, 404, "", "not_found"},
		{"unknown connection", "POST", "/v1/customers/import", `{"connection_id":987654}`, 404, "", "not_found"},
		{"unknown query", "GET", "/v1/audit?actionn=x", nil, 400, "actionn", "unknown_field"},
		{"bad status", "GET", fmt.Sprintf("/v1/customers/%d/end-users?status=locked", b.a.customer.ID), nil, 400, "status", "invalid_field"},
		{"bad limit", "GET", fmt.Sprintf("/v1/customers/%d/end-users?limit=0", b.a.customer.ID), nil, 400, "limit", "invalid_field"},
		{"send hour", "PATCH", "/v1/tenant", `{"send_hour":24}`, 400, "send_hour", "invalid_field"},
		{"reminder days", "PATCH", "/v1/tenant", `{"reminder_days":0}`, 400, "reminder_days", "invalid_field"},
		{"time zone", "PATCH", "/v1/tenant", `{"timezone":"Mars/Olympus"}`, 400, "timezone", "invalid_field"},
		{"verification", "PATCH", "/v1/tenant", `{"verification":"fax"}`, 400, "verification", "invalid_field"},
		{"time zone path", "POST", "/v1/customers", `{"name":"X","timezone":"../../etc/passwd"}`, 400, "timezone", "invalid_field"},
		{"region", "POST", "/v1/customers", `{"name":"X","default_region":"UK"}`, 400, "default_region", "invalid_field"},
		{"duplicate customer", "POST", "/v1/customers", `{"name":"Contoso"}`, 409, "", "conflict"},
		{"sync mode", "POST", fmt.Sprintf("/v1/connections/%d/sync", b.a.conn.ID), `{"mode":"fast"}`, 400, "mode", "invalid_field"},
		{"media type", "PATCH", edit, "email=a", 415, "", "unsupported_media_type"},
		{"method", "DELETE", "/v1/tenant", nil, 405, "", "method_not_allowed"},
		{"no route", "GET", "/v1/nothing", nil, 404, "", "not_found"},
	}
	before := b.snapshot(b.a)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := b.doRaw(c.method, c.path, tok, c.body, c.name == "media type")
			field, code := r.errField()
			if r.status != c.status || field != c.field || code != c.code {
				t.Errorf("%d field=%q code=%q, want %d %q %q: %s", r.status, field, code, c.status, c.field, c.code, truncate(string(r.raw), 300))
			}
		})
	}
	if after := b.snapshot(b.a); after != before {
		t.Errorf("bad input changed something:\nbefore %s\nafter  %s", before, after)
	}
}

// doRaw is do with an optional form content type.
func (b *bundle) doRaw(method, path, token string, body any, form bool) response {
	if !form {
		return b.do(method, path, token, body)
	}
	req := strings.NewReader(body.(string))
	r := httptestRequest(method, path, token, req, "application/x-www-form-urlencoded")
	return b.serve(r)
}

// metachars are SQL and LDAP metacharacter payloads.
var metachars = []string{
	`' OR '1'='1`,
	`x'; DROP TABLE end_users; --`,
	`*)(uid=*))(|(uid=*`,
	`admin)(&)`,
	`\2a\28\29`,
	"nul\x00byte",
	`"; SELECT pg_sleep(5); --`,
	`%' UNION SELECT token_hash FROM api_tokens --`,
	"line\nbreak",
	`${jndi:ldap://127.0.0.1/a}`,
}

// stringFields lists every string field of every request body, with a valid
// body to put the payload in.
func (b *bundle) stringFields() []struct {
	method, path, token, field string
	body                       map[string]any
} {
	bob, alice := b.a.users[1], b.a.users[0]
	super := b.a.tokens[store.RoleSuper]
	cu, err := b.st.CreateCustomer(context.Background(), store.Customer{TenantID: b.a.tenant.ID, Name: "Linkable"})
	must(b.t, err)
	type sf = struct {
		method, path, token, field string
		body                       map[string]any
	}
	return []sf{
		{"PATCH", "/v1/tenant", super, "timezone", map[string]any{}},
		{"POST", "/v1/tokens", super, "expires_at", map[string]any{}},
		{"POST", "/v1/app-clients", super, "name", map[string]any{}},
		{"POST", "/v1/customers", super, "name", map[string]any{}},
		{"POST", "/v1/customers", super, "timezone", map[string]any{"name": "Meta"}},
		{"POST", "/v1/customers", super, "default_region", map[string]any{"name": "Meta"}},
		{"POST", fmt.Sprintf("/v1/customers/%d/link", cu.ID), super, "source", map[string]any{"external_id": "1"}},
		{"POST", fmt.Sprintf("/v1/customers/%d/link", cu.ID), super, "external_id", map[string]any{"source": "itglue"}},
		{"POST", "/v1/connections", super, "name", map[string]any{"kind": "itglue"}},
		{"POST", "/v1/connections", super, "kind", map[string]any{"name": "meta"}},
		{"POST", fmt.Sprintf("/v1/connections/%d/sync", b.a.conn.ID), super, "mode", map[string]any{}},
		{"PATCH", fmt.Sprintf("/v1/end-users/%d", bob.ID), super, "email", map[string]any{}},
		{"PATCH", fmt.Sprintf("/v1/end-users/%d", bob.ID), super, "mobile", map[string]any{}},
		{"POST", fmt.Sprintf("/v1/app/end-users/%d/first-access", alice.ID), b.a.app, "at", map[string]any{}},
	}
}

// TestMetacharacters puts SQL and LDAP metacharacters in every string field
// of every request (and in the string query parameters): 4xx naming the
// field, nothing changed.
func TestMetacharacters(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, b *bundle) {
		fields := b.stringFields()
		before := b.snapshot(b.a)
		for _, f := range fields {
			for _, payload := range metachars {
				body := map[string]any{f.field: payload}
				for k, v := range f.body {
					body[k] = v
				}
				r := b.do(f.method, f.path, f.token, body)
				field, _ := r.errField()
				if r.status < 400 || r.status >= 500 || field != f.field {
					t.Errorf("%s %s %s=%q: %d %s, want 4xx naming %s", f.method, f.path, f.field, payload, r.status, truncate(string(r.raw), 200), f.field)
				}
			}
		}
		queries := []struct{ path, param string }{
			{fmt.Sprintf("/v1/customers/%d/end-users", b.a.customer.ID), "status"},
			{fmt.Sprintf("/v1/customers/%d/end-users", b.a.customer.ID), "source"},
			{fmt.Sprintf("/v1/customers/%d/end-users", b.a.customer.ID), "after"},
			{"/v1/audit", "action"},
			{"/v1/audit", "object_type"},
			{"/v1/audit", "object_id"},
			{"/v1/audit", "since"},
			{"/v1/notices/preview", "at"},
		}
		for _, q := range queries {
			for _, payload := range metachars {
				r := b.do("GET", q.path+"?"+q.param+"="+urlQueryEscape(payload), b.a.tokens[store.RoleSuper], nil)
				if field, _ := r.errField(); r.status != http.StatusBadRequest || field != q.param {
					t.Errorf("GET %s?%s=%q: %d %s", q.path, q.param, payload, r.status, truncate(string(r.raw), 200))
				}
			}
		}
		for _, payload := range metachars {
			r := b.do("GET", "/v1/end-users/"+urlPathEscape(payload), b.a.tokens[store.RoleSuper], nil)
			if r.status != http.StatusBadRequest && r.status != http.StatusNotFound {
				t.Errorf("GET /v1/end-users/%q: %d", payload, r.status)
			}
		}
		if after := b.snapshot(b.a); after != before {
			t.Errorf("metacharacters changed something:\nbefore %s\nafter  %s", before, after)
		}
	})
}

func urlQueryEscape(s string) string { return url.QueryEscape(s) }

func urlPathEscape(s string) string { return url.PathEscape(s) }

// httptestRequest builds a request with a body of the given content type.
func httptestRequest(method, path, token string, body io.Reader, contentType string) *http.Request {
	req := httptest.NewRequest(method, path, body)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", contentType)
	return req
}

// TestFileConnectionsStayInTheImportDir: a technician cannot point a file
// connection (or a ca_file) at a server file outside the tenant's own
// import folder: not another tenant's folder, not through a symlink.
func TestFileConnectionsStayInTheImportDir(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, b *bundle) {
		acme := filepath.Join(b.importDir, "acme")
		must(t, os.Symlink(b.csvPath("globex"), filepath.Join(acme, "link.csv")))
		must(t, os.Symlink(filepath.Join(b.importDir, "globex"), filepath.Join(acme, "globex-dir")))
		super := b.a.tokens[store.RoleSuper]
		for _, path := range []string{
			"/etc/passwd",
			filepath.Join(b.importDir, "..", "x.csv"),
			"../../etc/shadow",
			"../globex/accounts.csv",
			b.csvPath("globex"),
			filepath.Join(b.importDir, "accounts.csv"),
			"link.csv",
			"globex-dir/accounts.csv",
			"globex-dir/new.csv",
		} {
			before := b.snapshot(b.a)
			res := b.do("POST", "/v1/connections", super, map[string]any{"name": "peek", "kind": "file", "customer_id": b.a.customer.ID, "settings": map[string]any{"path": path}})
			if field, _ := res.errField(); res.status != 400 || field != "settings.path" || !strings.Contains(res.errMessage(), "import folder") {
				t.Errorf("path %s: %d %s, want 400 naming settings.path", path, res.status, res.raw)
			}
			res = b.do("PATCH", fmt.Sprintf("/v1/connections/%d", b.a.conn.ID), super, map[string]any{"settings": map[string]any{"path": path}})
			if field, _ := res.errField(); res.status != 400 || field != "settings.path" {
				t.Errorf("PATCH path %s: %d %s, want 400 naming settings.path", path, res.status, res.raw)
			}
			if after := b.snapshot(b.a); after != before {
				t.Errorf("path %s: a refused request changed the tenant", path)
			}
		}
		// Inside the tenant's folder: relative paths are read there and
		// stored absolute.
		res := b.do("POST", "/v1/connections", super, map[string]any{"name": "inside", "kind": "file", "customer_id": b.a.customer.ID, "settings": map[string]any{"path": "accounts.csv"}})
		if settings, _ := res.body["settings"].(map[string]any); res.status != http.StatusCreated || settings["path"] != b.csvPath("acme") {
			t.Fatalf("a path inside the tenant's folder: %d %s", res.status, res.raw)
		}
		id := int64(res.body["id"].(float64))
		if res := b.do("POST", fmt.Sprintf("/v1/connections/%d/test", id), super, nil); res.body["ok"] != true {
			t.Errorf("test of the file connection: %s", res.raw)
		}
		// ca_file is confined the same way.
		for path, ok := range map[string]bool{"../globex/accounts.csv": false, "/etc/ssl/certs/ca-certificates.crt": false, "accounts.csv": true} {
			res := b.do("POST", "/v1/connections", super, map[string]any{"name": fmt.Sprintf("dc-%d", seq.Add(1)), "kind": "ad", "customer_id": b.a.customer.ID,
				"settings": map[string]any{"url": "ldaps://dc1.corp.example", "base_dn": "DC=corp,DC=example", "ca_file": path},
				"secrets":  map[string]any{"bind_dn": "svc@corp.example", "bind_password": "s3cret-value"}})
			field, _ := res.errField()
			switch {
			case ok && res.status != http.StatusCreated:
				t.Errorf("ca_file %s: %d %s", path, res.status, res.raw)
			case !ok && (res.status != 400 || field != "settings.ca_file"):
				t.Errorf("ca_file %s: %d %s, want 400 naming settings.ca_file", path, res.status, res.raw)
			}
		}
	})
}
