package admin

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestServeMountsAndShutdown runs the API on a loopback listener with ops
// mounts: /healthz open, /metrics behind the ops token; a request in flight
// when the context ends finishes before Serve returns.
func TestServeMountsAndShutdown(t *testing.T) {
	t.Parallel()
	b := sqliteOnly(t)
	started := make(chan struct{})
	h, err := New(Options{Store: b.st, Registry: registry(), OpsToken: "ops-token-0123456789",
		Mounts: []Mount{
			{Pattern: "GET /healthz", Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })},
			{Pattern: "GET /metrics", OpsOnly: true, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "metrics") })},
			{Pattern: "GET /slow", Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				close(started)
				time.Sleep(300 * time.Millisecond)
				io.WriteString(w, "done")
			})},
		}})
	must(t, err)
	if _, err := New(Options{Store: b.st, Registry: registry(), Mounts: []Mount{{Pattern: "GET /v1/tenant", Handler: http.NotFoundHandler()}}}); err == nil {
		t.Error("a mount colliding with a route was accepted")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	srv := NewServer(ln.Addr().String(), h)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, srv, ln) }()
	base := "http://" + ln.Addr().String()
	get := func(path, token string) (int, string) {
		req, _ := http.NewRequest("GET", base+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, body := get("/healthz", ""); code != 200 || body != "ok" {
		t.Errorf("/healthz: %d %q", code, body)
	}
	if code, _ := get("/metrics", ""); code != http.StatusUnauthorized {
		t.Errorf("/metrics without the ops token: %d", code)
	}
	if code, _ := get("/metrics", b.a.tokens["super"]); code != http.StatusUnauthorized {
		t.Errorf("/metrics with a login token: %d", code)
	}
	if code, body := get("/metrics", "ops-token-0123456789"); code != 200 || body != "metrics" {
		t.Errorf("/metrics with the ops token: %d %q", code, body)
	}
	if code, body := get("/v1/tenant", b.a.tokens["super"]); code != 200 || !strings.Contains(body, `"name":"acme"`) {
		t.Errorf("/v1/tenant over HTTP: %d %s", code, body)
	}
	slow := make(chan string, 1)
	go func() { _, body := get("/slow", ""); slow <- body }()
	<-started
	cancel()
	if body := <-slow; body != "done" {
		t.Errorf("in-flight request got %q", body)
	}
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}
}
