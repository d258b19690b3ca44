package ops_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"

	"selfserve/internal/ops"
)

type pinger struct{ err error }

func (p *pinger) Ping(context.Context) error { return p.err }

func get(t *testing.T, srv *httptest.Server, path string, header ...string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestOpsEndpoints(t *testing.T) {
	t.Parallel()
	mr := miniredis.RunT(t)
	opt := asynq.RedisClientOpt{Addr: mr.Addr()}
	// A queue with a task, for the dashboard and the queue metrics.
	c := asynq.NewClient(opt)
	if _, err := c.Enqueue(asynq.NewTask("notice:send", []byte(`{}`)), asynq.Queue("notify")); err != nil {
		t.Fatal(err)
	}
	c.Close()
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "selfserve_test_total", Help: "test"}))
	st, rd := &pinger{}, &pinger{}
	h := ops.New(ops.Options{Store: st, Redis: rd, Gatherer: reg, RedisConnOpt: opt, OpsToken: "0123456789abcdef-ops"})
	defer h.Close()
	srv := httptest.NewServer(h)
	defer srv.Close()

	if code, _ := get(t, srv, "/healthz"); code != 200 {
		t.Fatalf("/healthz %d", code)
	}
	if code, body := get(t, srv, "/readyz"); code != 200 || !strings.Contains(body, `"redis":"ok"`) {
		t.Fatalf("/readyz %d %s", code, body)
	}
	rd.err = errors.New("dial tcp 10.0.0.5:6379: connection refused")
	if code, body := get(t, srv, "/readyz"); code != 503 || strings.Contains(body, "10.0.0.5") {
		t.Fatalf("/readyz with Redis down: %d %s (want 503 without details)", code, body)
	}
	for _, path := range []string{"/metrics", "/monitoring/", "/monitoring/api/queues"} {
		if code, _ := get(t, srv, path); code != 401 {
			t.Fatalf("%s without the token: %d", path, code)
		}
		if code, _ := get(t, srv, path, "Authorization", "Bearer wrong-token-000000"); code != 401 {
			t.Fatalf("%s with a wrong token: %d", path, code)
		}
	}
	code, body := get(t, srv, "/metrics", "Authorization", "Bearer 0123456789abcdef-ops")
	if code != 200 || !strings.Contains(body, "selfserve_test_total") {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	code, body = get(t, srv, "/monitoring/", "Authorization", "Bearer 0123456789abcdef-ops")
	if code != 200 || !strings.Contains(strings.ToLower(body), "<html") {
		t.Fatalf("/monitoring/: %d %.200s", code, body)
	}
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/monitoring/api/queues", nil)
	req.SetBasicAuth("ops", "0123456789abcdef-ops")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"notify"`) {
		t.Fatalf("/monitoring/api/queues with basic auth: %d %s", resp.StatusCode, b)
	}
}

func TestOpsClosedWithoutToken(t *testing.T) {
	t.Parallel()
	mr := miniredis.RunT(t)
	h := ops.New(ops.Options{RedisConnOpt: asynq.RedisClientOpt{Addr: mr.Addr()}})
	defer h.Close()
	srv := httptest.NewServer(h)
	defer srv.Close()
	for _, path := range []string{"/metrics", "/monitoring/"} {
		if code, _ := get(t, srv, path, "Authorization", "Bearer "); code != 404 {
			t.Fatalf("%s with no ops token configured: %d, want 404", path, code)
		}
	}
	if code, _ := get(t, srv, "/healthz"); code != 200 {
		t.Fatalf("/healthz %d", code)
	}
}

type schema struct{ err error }

func (s *schema) CheckSchema(context.Context) error { return s.err }

// TestReadyChecksTheSchema: /readyz is 503 while the database lacks a
// migration of this build, even though it answers.
func TestReadyChecksTheSchema(t *testing.T) {
	t.Parallel()
	sc := &schema{}
	h := ops.New(ops.Options{Store: &pinger{}, Schema: sc})
	srv := httptest.NewServer(h)
	defer srv.Close()
	if code, body := get(t, srv, "/readyz"); code != 200 || !strings.Contains(body, `"schema":"ok"`) {
		t.Fatalf("/readyz migrated: %d %s", code, body)
	}
	sc.err = errors.New("migrations 6 are not applied")
	if code, body := get(t, srv, "/readyz"); code != 503 || !strings.Contains(body, `"schema":"not migrated"`) || !strings.Contains(body, `"store":"ok"`) {
		t.Fatalf("/readyz behind: %d %s", code, body)
	}
}

// TestScanNowNeedsTheOpsToken: POST /v1/ops/scan runs the scan and answers
// its result, with the ops token only.
func TestScanNowNeedsTheOpsToken(t *testing.T) {
	t.Parallel()
	scans := 0
	h := ops.New(ops.Options{OpsToken: "0123456789abcdef-ops", Scan: func(context.Context) (any, error) {
		scans++
		return map[string]int{"created": 4}, nil
	}})
	srv := httptest.NewServer(h)
	defer srv.Close()
	post := func(token string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/ops/scan", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := post(""); code != 401 || scans != 0 {
		t.Fatalf("without the token: %d, %d scans", code, scans)
	}
	if code, _ := post("wrong"); code != 401 || scans != 0 {
		t.Fatalf("wrong token: %d, %d scans", code, scans)
	}
	if code, body := post("0123456789abcdef-ops"); code != 200 || !strings.Contains(body, `"created":4`) || scans != 1 {
		t.Fatalf("with the token: %d %s, %d scans", code, body, scans)
	}
	if code, _ := get(t, srv, "/v1/ops/scan", "Authorization", "Bearer 0123456789abcdef-ops"); code != 405 || scans != 1 {
		t.Fatalf("GET: %d", code)
	}
}
