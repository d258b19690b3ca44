package admin

import (
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"sync"
	"testing"

	"selfserve/internal/store"
	"selfserve/internal/store/storetest"
)

// cutProxy forwards TCP connections to a server until cut: then it closes
// every connection and refuses new ones, as a database host that went away.
type cutProxy struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func startCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	p := &cutProxy{ln: ln}
	t.Cleanup(p.cut)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			go func() { io.Copy(s, c); s.Close() }()
			go func() { io.Copy(c, s); c.Close() }()
		}
	}()
	return p
}

func (p *cutProxy) cut() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// TestDatabaseDownIs503: while the database cannot be reached the API
// answers 503 "unavailable" (not 500), on reads, writes and token checks.
func TestDatabaseDownIs503(t *testing.T) {
	t.Parallel()
	base := os.Getenv("TEST_DATABASE_URL")
	if base == "" {
		t.Skip("TEST_DATABASE_URL is not set: this test cuts the connection to a real PostgreSQL (make test sets it)")
	}
	u, err := url.Parse(storetest.FreshPostgresSchema(t, base))
	must(t, err)
	proxy := startCutProxy(t, u.Host)
	u.Host = proxy.ln.Addr().String()
	b := setup(t, storetest.OpenMigrated(t, u.String()))
	tok := b.a.tokens[store.RoleManager]
	if r := b.do("GET", "/v1/customers", tok, nil); r.status != http.StatusOK {
		t.Fatalf("before the cut: %d %s", r.status, r.raw)
	}
	proxy.cut()
	for _, req := range []struct{ method, path string }{
		{"GET", "/v1/customers"},
		{"PATCH", "/v1/tenant"},
		{"POST", "/v1/connections/" + id(b.a.conn.ID) + "/sync"},
	} {
		var body any
		if req.method == "PATCH" {
			body = map[string]any{"self_serve": false}
		}
		r := b.do(req.method, req.path, tok, body)
		if _, code := r.errField(); r.status != http.StatusServiceUnavailable || code != "unavailable" {
			t.Errorf("%s %s with the database down: %d %s, want 503 unavailable", req.method, req.path, r.status, r.raw)
		}
	}
}
