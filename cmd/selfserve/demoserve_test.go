package main

import (
	"bytes"
	"context"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var (
	urlPattern      = regexp.MustCompile(`http://[^\s)'"]+`)
	bearerPattern   = regexp.MustCompile(`Bearer ([^\s']+)`)
	passwordPattern = regexp.MustCompile(`password (\S+)\)`)
)

// TestDemoServes: `selfserve demo` serves on 127.0.0.1 what it prints, and
// every printed address answers with the printed demo credential: the admin
// API, the console's sign-in, /monitoring, /metrics, health and the
// self-serve pages (the bare address may send a browser to sign in).
func TestDemoServes(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("SELFSERVE_DATABASE_URL", "")
	t.Setenv("SELFSERVE_ENCRYPTION_KEY", "")
	t.Setenv("SELFSERVE_ADMIN_ADDR", "127.0.0.1:0")
	t.Setenv("SELFSERVE_PUBLIC_ADDR", "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"demo", "--dir", dir, "--examples", "../../examples"}, &out, &errOut)
	}()
	defer func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("demo exited %d: %s", code, errOut.String())
		}
	}()
	deadline := time.Now().Add(2 * time.Minute)
	for !strings.Contains(out.String(), "press Ctrl-C to stop") {
		select {
		case code := <-done:
			done <- code
			t.Fatalf("demo exited %d before serving:\n%s%s", code, out.String(), errOut.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("demo not serving after 2 minutes:\n%s%s", out.String(), errOut.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	text := out.String()
	t.Logf("demo output:\n%s", text)
	client := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	seen := map[string]bool{}
	for line := range strings.Lines(text) {
		for _, u := range urlPattern.FindAllString(line, -1) {
			if !strings.HasPrefix(u, "http://127.0.0.1:") {
				t.Errorf("%s is not on 127.0.0.1", u)
				continue
			}
			req, err := http.NewRequest(http.MethodGet, u, nil)
			if err != nil {
				t.Fatal(err)
			}
			if m := bearerPattern.FindStringSubmatch(line); m != nil {
				req.Header.Set("Authorization", "Bearer "+m[1])
			}
			if m := passwordPattern.FindStringSubmatch(line); m != nil {
				req.SetBasicAuth("ops", m[1])
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Errorf("%s: %v", u, err)
				continue
			}
			resp.Body.Close()
			bare := !strings.Contains(strings.TrimPrefix(u, "http://"), "/")
			if resp.StatusCode != http.StatusOK && !(bare && resp.StatusCode == http.StatusSeeOther) {
				t.Errorf("%s answered %d, want 200 (line: %s)", u, resp.StatusCode, strings.TrimSpace(line))
			}
			for _, what := range []string{"/v1/customers", "/invite/", "/monitoring/", "/metrics", "/healthz", "/openapi.json", "/change"} {
				if strings.Contains(u, what) {
					seen[what] = true
				}
			}
		}
	}
	for _, what := range []string{"/v1/customers", "/invite/", "/monitoring/", "/metrics", "/healthz", "/openapi.json", "/change"} {
		if !seen[what] {
			t.Errorf("the demo printed no %s address:\n%s", what, text)
		}
	}
	// Without the printed credentials the API and the ops endpoints are closed.
	api := urlPattern.FindString(text[strings.Index(text, "admin API"):])
	for _, u := range []string{api + "/v1/customers", api + "/metrics"} {
		if resp, err := client.Get(u); err != nil || resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s without a token: %v %v, want 401", u, resp.StatusCode, err)
		}
	}
}
