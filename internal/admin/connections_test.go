package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"selfserve/connectors"
	"selfserve/connectors/itglue/fakeitglue"
	"selfserve/internal/connection"
	"selfserve/internal/store"
)

// listener is what an attacker would run: it records every HTTP request
// and counts raw TCP connections.
type listener struct {
	http    *httptest.Server
	mu      sync.Mutex
	headers []http.Header
	tcp     net.Listener
	conns   atomic.Int64
}

func newListener(t *testing.T) *listener {
	l := &listener{}
	l.http = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.mu.Lock()
		l.headers = append(l.headers, r.Header.Clone())
		l.mu.Unlock()
		http.Error(w, "nope", http.StatusForbidden)
	}))
	t.Cleanup(l.http.Close)
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	t.Cleanup(func() { tcp.Close() })
	l.tcp = tcp
	go func() {
		for {
			c, err := tcp.Accept()
			if err != nil {
				return
			}
			l.conns.Add(1)
			c.Close()
		}
	}()
	return l
}

func (l *listener) sawKey(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, h := range l.headers {
		for _, vs := range h {
			for _, v := range vs {
				if strings.Contains(v, key) {
					return true
				}
			}
		}
	}
	return false
}

// adConnection stores an AD connection of f's customer with sealed bind
// credentials, as an operator would have set it up.
func (b *bundle) adConnection(f tenantFixture, name string) store.Connection {
	t := b.t
	sealed, err := connection.Opener{Box: b.box}.SealSecrets(json.RawMessage(`{"bind_dn":"svc@corp.example","bind_password":"bind-s3cret"}`))
	must(t, err)
	c, _, err := b.st.UpsertConnection(context.Background(), store.Connection{TenantID: f.tenant.ID, CustomerID: &f.customer.ID, Name: name, Kind: connectors.KindAD,
		Settings: json.RawMessage(`{"url":"ldaps://dc1.corp.example","base_dn":"DC=corp,DC=example"}`), SealedSecrets: sealed}, false)
	must(t, err)
	return c
}

// TestConnectionSecretsCannotBeExfiltrated: the attack of issue 11 — point
// a connection at one's own listener, then test it — fails both ways: the
// roles below primary may not change or test connections (403), and a
// super who changes where a connection connects loses its secrets, so the
// test asks for credentials and nothing reaches the listener.
func TestConnectionSecretsCannotBeExfiltrated(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, b *bundle) {
		evil := newListener(t)
		ad := b.adConnection(b.a, "acme-ad")
		ldapURL := "ldap://" + evil.tcp.Addr().String()
		attacks := []struct {
			conn     store.Connection
			settings map[string]any
		}{
			{b.a.psa, map[string]any{"base_url": evil.http.URL}},
			{ad, map[string]any{"url": ldapURL, "allow_insecure": true, "base_dn": "DC=corp,DC=example"}},
		}
		before := b.snapshot(b.a)
		for _, role := range []store.Role{store.RoleHelpdesk, store.RoleEngineer, store.RoleManager} {
			tok := b.a.tokens[role]
			for _, at := range attacks {
				if r := b.do("PATCH", fmt.Sprintf("/v1/connections/%d", at.conn.ID), tok, map[string]any{"settings": at.settings}); r.status != http.StatusForbidden {
					t.Errorf("PATCH %s as %s: %d %s, want 403", at.conn.Kind, role, r.status, r.raw)
				}
				if r := b.do("POST", fmt.Sprintf("/v1/connections/%d/test", at.conn.ID), tok, nil); r.status != http.StatusForbidden {
					t.Errorf("test %s as %s: %d %s, want 403", at.conn.Kind, role, r.status, r.raw)
				}
			}
			if r := b.do("POST", "/v1/connections", tok, map[string]any{"name": "mine", "kind": "itglue", "settings": map[string]any{"region": "eu"}}); r.status != http.StatusForbidden {
				t.Errorf("create as %s: %d, want 403", role, r.status)
			}
		}
		if after := b.snapshot(b.a); after != before {
			t.Errorf("refused requests changed the tenant:\n%s\n%s", before, after)
		}

		super := b.a.tokens[store.RoleSuper]
		for _, at := range attacks {
			r := b.do("PATCH", fmt.Sprintf("/v1/connections/%d", at.conn.ID), super, map[string]any{"settings": at.settings})
			if r.status != http.StatusOK || r.body["has_secrets"] != false || r.body["secrets_dropped"] != true {
				t.Fatalf("PATCH %s as super: %d %s, want the secrets dropped", at.conn.Kind, r.status, r.raw)
			}
			stored, err := b.st.Connection(context.Background(), b.a.tenant.ID, at.conn.ID)
			must(t, err)
			if len(stored.SealedSecrets) != 0 {
				t.Errorf("%s: secrets still stored", at.conn.Kind)
			}
			r = b.do("POST", fmt.Sprintf("/v1/connections/%d/test", at.conn.ID), super, nil)
			if r.body["ok"] != false || r.body["category"] != "credentials_required" || !strings.Contains(r.body["message"].(string), "credentials required") {
				t.Errorf("test %s after the URL changed: %s, want credentials required", at.conn.Kind, r.raw)
			}
			es, err := b.st.AuditLog(context.Background(), b.a.tenant.ID, store.AuditFilter{Action: "connection.updated", ObjectID: id(at.conn.ID), Limit: 1})
			must(t, err)
			if len(es) != 1 || !strings.Contains(es[0].After, `"secrets_dropped":true`) || !strings.Contains(es[0].After, `"endpoint_changed":[`) {
				t.Errorf("%s: audit %+v, want it to say the secrets were dropped", at.conn.Kind, es)
			}
		}
		if evil.sawKey(fakeitglue.DefaultAPIKey) || len(evil.headers) > 0 || evil.conns.Load() > 0 {
			t.Errorf("the listener was contacted: %d HTTP requests, %d TCP connections", len(evil.headers), evil.conns.Load())
		}
		// Secrets sent with the change are kept: the operator's own move.
		r := b.do("PATCH", fmt.Sprintf("/v1/connections/%d", b.a.psa.ID), super, map[string]any{
			"settings": map[string]any{"base_url": b.itglue.URL}, "secrets": map[string]any{"api_key": fakeitglue.DefaultAPIKey}})
		if r.status != http.StatusOK || r.body["has_secrets"] != true || r.body["secrets_dropped"] != false {
			t.Errorf("PATCH with secrets: %d %s", r.status, r.raw)
		}
		if r := b.do("POST", fmt.Sprintf("/v1/connections/%d/test", b.a.psa.ID), super, nil); r.body["ok"] != true {
			t.Errorf("test with new secrets: %s", r.raw)
		}
		// A change that moves nothing keeps the secrets.
		ad2 := b.adConnection(b.a, "acme-ad-2")
		r = b.do("PATCH", fmt.Sprintf("/v1/connections/%d", ad2.ID), super, map[string]any{"settings": map[string]any{"url": "ldaps://dc1.corp.example", "base_dn": "OU=Staff,DC=corp,DC=example"}})
		if r.status != http.StatusOK || r.body["has_secrets"] != true || r.body["secrets_dropped"] != false {
			t.Errorf("PATCH base_dn: %d %s, want the secrets kept", r.status, r.raw)
		}
		// Every role may still start a sync.
		b.finishActiveRuns(b.a)
		if r := b.do("POST", fmt.Sprintf("/v1/connections/%d/sync", b.a.conn.ID), b.a.tokens[store.RoleHelpdesk], nil); r.status != http.StatusAccepted {
			t.Errorf("sync as helpdesk: %d %s", r.status, r.raw)
		}
	})
}

// TestPSAHostsAreTheVendorsOrAllowed: a PSA base URL must be the vendor's
// cloud or a host the operator allows.
func TestPSAHostsAreTheVendorsOrAllowed(t *testing.T) {
	t.Parallel()
	b := sqliteOnly(t)
	super := b.a.tokens[store.RoleSuper]
	for _, base := range []string{"https://api.itglue.com.evil.example", "https://10.1.2.3", "https://api.eu.itglue.com:8443"} {
		r := b.do("POST", "/v1/connections", super, map[string]any{"name": "x", "kind": "itglue", "settings": map[string]any{"base_url": base}, "secrets": map[string]any{"api_key": "s3cret-value"}})
		if field, _ := r.errField(); r.status != 400 || field != "settings.base_url" || !strings.Contains(r.errMessage(), "SELFSERVE_ALLOWED_PSA_HOSTS") {
			t.Errorf("base_url %s: %d %s, want 400 naming settings.base_url", base, r.status, r.raw)
		}
		r = b.do("PATCH", fmt.Sprintf("/v1/connections/%d", b.a.psa.ID), super, map[string]any{"settings": map[string]any{"base_url": base}})
		if field, _ := r.errField(); r.status != 400 || field != "settings.base_url" {
			t.Errorf("PATCH base_url %s: %d %s", base, r.status, r.raw)
		}
	}
	for i, settings := range []map[string]any{{"region": "au"}, {"base_url": "https://api.eu.itglue.com"}, {"base_url": b.itglue.URL}} {
		r := b.do("POST", "/v1/connections", super, map[string]any{"name": fmt.Sprintf("ok-%d", i), "kind": "itglue", "settings": settings, "secrets": map[string]any{"api_key": "k"}})
		if r.status != http.StatusCreated {
			t.Errorf("settings %v: %d %s", settings, r.status, r.raw)
		}
	}
}

// TestSecretsNeverUnderSettings: a secret written under settings is
// refused (API), and one stored there before this rule is never shown by
// the API or the audit log.
func TestSecretsNeverUnderSettings(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, b *bundle) {
		super := b.a.tokens[store.RoleSuper]
		for _, c := range []struct {
			kind     string
			settings map[string]any
			field    string
			says     string
		}{
			{"ad", map[string]any{"url": "ldaps://dc1.corp.example", "base_dn": "DC=corp,DC=example", "bind_password": "s3cret-value"}, "settings.bind_password", "put bind_password under secrets"},
			{"ad", map[string]any{"url": "ldaps://dc1.corp.example", "bind_dn": "s3cret-value"}, "settings.bind_dn", "put bind_dn under secrets"},
			{"itglue", map[string]any{"region": "eu", "api_key": "s3cret-value"}, "settings.api_key", "put api_key under secrets"},
		} {
			body := map[string]any{"name": "leaky", "kind": c.kind, "settings": c.settings}
			if c.kind == "ad" {
				body["customer_id"] = b.a.customer.ID
			}
			r := b.do("POST", "/v1/connections", super, body)
			if field, _ := r.errField(); r.status != 400 || field != c.field || !strings.Contains(r.errMessage(), c.says) || bytes.Contains(r.raw, []byte("s3cret-value")) {
				t.Errorf("create %s %v: %d %s, want 400 naming %s", c.kind, c.settings, r.status, r.raw, c.field)
			}
		}
		r := b.do("PATCH", fmt.Sprintf("/v1/connections/%d", b.a.psa.ID), super, map[string]any{"settings": map[string]any{"base_url": b.itglue.URL, "api_key": "s3cret-value"}})
		if field, _ := r.errField(); r.status != 400 || field != "settings.api_key" || bytes.Contains(r.raw, []byte("s3cret-value")) {
			t.Errorf("PATCH api_key under settings: %d %s", r.status, r.raw)
		}
		r = b.do("POST", "/v1/connections", super, map[string]any{"name": "typo", "kind": "itglue", "secrets": map[string]any{"api_kee": "s3cret-value"}})
		if field, _ := r.errField(); r.status != 400 || field != "secrets.api_kee" || !strings.Contains(r.errMessage(), "known secrets: api_key") || bytes.Contains(r.raw, []byte("s3cret-value")) {
			t.Errorf("unknown secret: %d %s", r.status, r.raw)
		}
		r = b.do("POST", "/v1/connections", super, map[string]any{"name": "typo", "kind": "itglue", "settings": map[string]any{"regoin": "eu"}})
		if field, _ := r.errField(); r.status != 400 || field != "settings.regoin" || !strings.Contains(r.errMessage(), "known settings: base_url,") {
			t.Errorf("unknown setting: %d %s", r.status, r.raw)
		}

		// A connection stored with its key under settings, and its audit
		// entry, as an older version wrote them.
		ctx := context.Background()
		legacy, _, err := b.st.UpsertConnection(ctx, store.Connection{TenantID: b.a.tenant.ID, Name: "legacy-itglue", Kind: connectors.KindITGlue,
			Settings: json.RawMessage(`{"base_url":"` + b.itglue.URL + `","api_key":"` + fakeitglue.DefaultAPIKey + `"}`)}, false)
		must(t, err)
		must(t, b.st.Audit(ctx, store.AuditRecord{
			TenantID:   b.a.tenant.ID,
			Actor:      "old-version",
			Action:     "connection.created",
			ObjectType: "connection",
			ObjectID:   id(legacy.ID),
			After:      map[string]any{"kind": "itglue", "name": "legacy-itglue", "settings": map[string]any{"api_key": fakeitglue.DefaultAPIKey}},
		}))
		for _, role := range store.Roles {
			for _, path := range []string{"/v1/connections", fmt.Sprintf("/v1/connections/%d", legacy.ID), "/v1/audit?object_type=connection"} {
				r := b.do("GET", path, b.a.tokens[role], nil)
				if r.status != http.StatusOK || strings.Contains(string(r.raw), fakeitglue.DefaultAPIKey) {
					t.Errorf("GET %s as %s: %d, shows the key: %s", path, role, r.status, r.raw)
				}
			}
		}
		if r := b.do("GET", fmt.Sprintf("/v1/connections/%d", legacy.ID), super, nil); !strings.Contains(string(r.raw), `"api_key":"[redacted]"`) {
			t.Errorf("the legacy key should show as redacted: %s", r.raw)
		}
		// Its test says to move the key (syncs still read it), without
		// showing it; a schedule change is not refused over it.
		if r := b.do("POST", fmt.Sprintf("/v1/connections/%d/test", legacy.ID), super, nil); r.body["category"] != "invalid_config" ||
			!strings.Contains(string(r.raw), "put api_key under secrets") || strings.Contains(string(r.raw), fakeitglue.DefaultAPIKey) {
			t.Errorf("test of the legacy connection: %s", r.raw)
		}
		if r := b.do("PATCH", fmt.Sprintf("/v1/connections/%d", legacy.ID), super, map[string]any{"schedule_seconds": 3600}); r.status != http.StatusOK {
			t.Errorf("schedule change of the legacy connection: %d %s", r.status, r.raw)
		}
	})
}

// TestConnectionTestHidesTheNetwork: a refused port, a server that hangs
// up and a server that speaks something else read the same to the caller;
// the server log has the detail.
func TestConnectionTestHidesTheNetwork(t *testing.T) {
	t.Parallel()
	b := sqliteOnly(t)
	var logs bytes.Buffer
	var logMu sync.Mutex
	h, err := New(Options{Store: b.st, Registry: registry(), Secrets: b.box, Enqueuer: b.queue, FileImportDir: b.importDir,
		AllowedPSAHosts: []string{"127.0.0.1"}, Logger: slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &logMu}, nil))})
	must(t, err)
	b.h = h
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	refusedURL := "http://" + closed.Addr().String()
	closed.Close()
	hangup := newListener(t) // accepts and closes at once: EOF
	garbage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, "<html>hello</html>")
	}))
	t.Cleanup(garbage.Close)
	super := b.a.tokens[store.RoleSuper]
	var messages []string
	for _, base := range []string{refusedURL, "http://" + hangup.tcp.Addr().String(), garbage.URL} {
		r := b.do("PATCH", fmt.Sprintf("/v1/connections/%d", b.a.psa.ID), super, map[string]any{"settings": map[string]any{"base_url": base}, "secrets": map[string]any{"api_key": "k-1"}})
		if r.status != http.StatusOK {
			t.Fatalf("PATCH: %d %s", r.status, r.raw)
		}
		r = b.do("POST", fmt.Sprintf("/v1/connections/%d/test", b.a.psa.ID), super, nil)
		if r.body["ok"] != false || r.body["category"] != "unavailable" {
			t.Errorf("%s: %s, want unavailable", base, r.raw)
		}
		msg, _ := r.body["message"].(string)
		for _, leak := range []string{"refused", "EOF", "timeout", "html", "127.0.0.1"} {
			if strings.Contains(msg, leak) {
				t.Errorf("%s: the message tells %q: %s", base, leak, msg)
			}
		}
		messages = append(messages, msg)
	}
	if messages[0] != messages[1] || messages[1] != messages[2] {
		t.Errorf("messages differ: %q", messages)
	}
	logMu.Lock()
	defer logMu.Unlock()
	if !strings.Contains(logs.String(), "connection test failed") || !strings.Contains(logs.String(), "refused") {
		t.Errorf("the server log lacks the detail:\n%s", logs.String())
	}
}

// lockedWriter serialises writes to w.
type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
