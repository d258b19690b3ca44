package restclient

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"selfserve/connectors"
)

// newClient starts a server answering with h and returns a client for it.
func newClient(t *testing.T, h http.HandlerFunc, opts Options) *Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	base, err := url.Parse(srv.URL + "/api")
	if err != nil {
		t.Fatal(err)
	}
	opts.Vendor = "Acme API"
	opts.Base = base
	if opts.Header == nil {
		opts.Header = http.Header{"X-Api-Key": {"s3cr3t-key"}}
	}
	c := New(opts)
	t.Cleanup(c.Close)
	return c
}

func TestGetSendsHeadersAndQuery(t *testing.T) {
	t.Parallel()
	var got *http.Request
	c := newClient(t, func(w http.ResponseWriter, r *http.Request) {
		got = r
		_, _ = w.Write([]byte(`{"data":[{"id":"1"}]}`))
	}, Options{})
	q := url.Values{"page[size]": {"1000"}, "conditions": {`name="A B" AND x+y`}}
	resp, err := c.Get(context.Background(), "/things", q, http.Header{"Extra": {"yes"}})
	if err != nil {
		t.Fatal(err)
	}
	if got.URL.Path != "/api/things" {
		t.Errorf("path %q", got.URL.Path)
	}
	if got.Header.Get("X-Api-Key") != "s3cr3t-key" || got.Header.Get("Extra") != "yes" {
		t.Errorf("headers %v", got.Header)
	}
	if strings.Contains(got.URL.RawQuery, "+") {
		t.Errorf("raw query %q encodes spaces as +", got.URL.RawQuery)
	}
	if v := got.URL.Query().Get("conditions"); v != `name="A B" AND x+y` {
		t.Errorf("conditions arrived as %q", v)
	}
	records, err := resp.List("data")
	if err != nil || len(records) != 1 {
		t.Fatalf("List: %v %v", records, err)
	}
}

func TestStatusMapping(t *testing.T) {
	t.Parallel()
	cases := []struct {
		status int
		body   string
		want   error
		text   string
	}{
		{401, `{"errors":[{"title":"Unauthorized","detail":"bad key"}]}`, connectors.ErrUnauthorized, "Unauthorized bad key"},
		{403, `{"error":"Forbidden"}`, connectors.ErrUnauthorized, "check the key"},
		{404, `{"code":"NotFound","message":"Not found"}`, connectors.ErrNotFound, "Not found"},
		{400, `{"message":"unknown field foo in conditions"}`, connectors.ErrInvalidConfig, "unknown field foo"},
		{500, `oops`, connectors.ErrUnavailable, "oops"},
		{503, `<html><title>Maintenance</title></html>`, connectors.ErrUnavailable, "Maintenance"},
		{418, ``, connectors.ErrBadResponse, "HTTP 418"},
		{302, ``, connectors.ErrBadResponse, "check base_url"},
	}
	for _, tc := range cases {
		c := newClient(t, func(w http.ResponseWriter, r *http.Request) {
			if tc.status == 302 {
				w.Header().Set("Location", "https://user:pw@login.example/sso?token=abc")
			}
			w.WriteHeader(tc.status)
			_, _ = w.Write([]byte(tc.body))
		}, Options{StatusHints: map[int]string{403: "check the key"}})
		_, err := c.Get(context.Background(), "/x", nil, nil)
		if !errors.Is(err, tc.want) {
			t.Errorf("status %d: error %v, want %v", tc.status, err, tc.want)
			continue
		}
		if !strings.Contains(err.Error(), tc.text) {
			t.Errorf("status %d: error %q does not say %q", tc.status, err, tc.text)
		}
		if strings.Contains(err.Error(), "s3cr3t") || strings.Contains(err.Error(), "pw@") || strings.Contains(err.Error(), "token=abc") {
			t.Errorf("status %d: error leaks a secret: %q", tc.status, err)
		}
	}
}

func TestThrottleWaitedInline(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	c := newClient(t, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		_, _ = w.Write([]byte(`[]`))
	}, Options{})
	start := time.Now()
	if _, err := c.Get(context.Background(), "/x", nil, nil); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < time.Second {
		t.Errorf("retried after %s, want the 1s Retry-After", d)
	}
	if n.Load() != 2 {
		t.Errorf("%d requests, want 2", n.Load())
	}
}

func TestThrottleReturned(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		retryAfter string
		status     int
		body       string
		want       time.Duration
		requests   int32
	}{
		{"no header uses the default", "", 429, `{"message":"slow down"}`, 45 * time.Second, 1},
		{"longer than the inline limit", "120", 429, "", 120 * time.Second, 1},
		{"throttle text on another status", "", 503, "Retry later\n", 45 * time.Second, 1},
		{"retries exhausted", "0", 429, "", 0, 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var n atomic.Int32
			c := newClient(t, func(w http.ResponseWriter, r *http.Request) {
				n.Add(1)
				if tc.retryAfter != "" {
					w.Header().Set("Retry-After", tc.retryAfter)
				}
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			}, Options{DefaultRetryAfter: 45 * time.Second, ThrottleText: "Retry later", MaxRetries: 2})
			_, err := c.Get(context.Background(), "/x", nil, nil)
			wait, ok := connectors.RetryAfter(err)
			if !ok {
				t.Fatalf("error %v is not a rate limit", err)
			}
			if wait != tc.want {
				t.Errorf("retry after %s, want %s", wait, tc.want)
			}
			if n.Load() != tc.requests {
				t.Errorf("%d requests, want %d", n.Load(), tc.requests)
			}
		})
	}
}

func TestThrottleWaitHonoursContext(t *testing.T) {
	t.Parallel()
	c := newClient(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "30")
		w.WriteHeader(http.StatusTooManyRequests)
	}, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Get(ctx, "/x", nil, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v, want the context's", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("returned after %s", d)
	}
}

// recordingBudget is a run's throttle budget whose waits are recorded
// instead of slept.
func recordingBudget(max time.Duration) (*connectors.ThrottleBudget, *[]time.Duration) {
	var waits []time.Duration
	return &connectors.ThrottleBudget{Max: max, Sleep: func(ctx context.Context, d time.Duration) error {
		waits = append(waits, d)
		return ctx.Err()
	}}, &waits
}

// An inline run (a ThrottleWaiter in the context) waits every throttle out
// and asks for the same page again: the vendor's Retry-After, or waits that
// start short and grow up to the documented window.
func TestThrottleWaitedByTheRun(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		status     int
		retryAfter string
		body       string
		throttles  int
		want       []time.Duration
	}{
		{"Retry-After", 429, "7", "", 2, []time.Duration{7 * time.Second, 7 * time.Second}},
		{"no Retry-After", 429, "", "", 6, []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 32 * time.Second, 45 * time.Second}},
		{"plain-text throttle", 500, "", "Retry later\n", 1, []time.Duration{2 * time.Second}},
		{"Retry-After 0", 429, "0", "", 1, []time.Duration{time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var calls atomic.Int32
			c := newClient(t, func(w http.ResponseWriter, r *http.Request) {
				if calls.Add(1) <= int32(tc.throttles) {
					if tc.retryAfter != "" {
						w.Header().Set("Retry-After", tc.retryAfter)
					}
					w.WriteHeader(tc.status)
					_, _ = w.Write([]byte(tc.body))
					return
				}
				_, _ = w.Write([]byte(`{"data":[]}`))
			}, Options{DefaultRetryAfter: 45 * time.Second, ThrottleText: "Retry later"})
			budget, waits := recordingBudget(10 * time.Minute)
			var seen []connectors.Throttle
			budget.Report = func(_ context.Context, th connectors.Throttle) { seen = append(seen, th) }
			ctx := connectors.WithThrottleWaiter(context.Background(), budget)
			if _, err := c.GetPage(ctx, 3, "/things", nil, nil); err != nil {
				t.Fatalf("GetPage: %v", err)
			}
			if !slices.Equal(*waits, tc.want) {
				t.Errorf("waits %v, want %v", *waits, tc.want)
			}
			if len(seen) != tc.throttles || seen[0].Page != 3 || seen[0].Vendor != "Acme API" || seen[0].Stated != (tc.retryAfter != "") {
				t.Errorf("throttles reported: %+v", seen)
			}
		})
	}
}

// Past the run's budget the throttle ends the listing as a RateLimitError
// naming the budget; a cancelled wait ends it with the context's error.
func TestThrottleBudgetAndCancel(t *testing.T) {
	t.Parallel()
	c := newClient(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "60")
		w.WriteHeader(http.StatusTooManyRequests)
	}, Options{})
	budget, waits := recordingBudget(150 * time.Second)
	_, err := c.Get(connectors.WithThrottleWaiter(context.Background(), budget), "/things", nil, nil)
	if _, ok := connectors.RetryAfter(err); !ok || !strings.Contains(err.Error(), "throttle_wait_max") || len(*waits) != 2 {
		t.Errorf("error %v after waits %v; want a rate limit naming throttle_wait_max after two waits", err, *waits)
	}

	ctx, cancel := context.WithCancel(context.Background())
	budget = &connectors.ThrottleBudget{Max: time.Hour, Report: func(context.Context, connectors.Throttle) { cancel() }}
	start := time.Now()
	_, err = c.Get(connectors.WithThrottleWaiter(ctx, budget), "/things", nil, nil)
	if !errors.Is(err, context.Canceled) || time.Since(start) > 10*time.Second {
		t.Errorf("cancelled during the wait: %v after %s", err, time.Since(start))
	}
}

func TestCancelledContext(t *testing.T) {
	t.Parallel()
	c := newClient(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`[]`))
	}, Options{Limiter: rate.NewLimiter(rate.Every(time.Hour), 1)})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Get(ctx, "/x", nil, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v does not wrap context.Canceled", err)
	}
}

func TestUnreachable(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	base, _ := url.Parse(srv.URL)
	srv.Close()
	c := New(Options{Vendor: "Acme API", Base: base})
	if _, err := c.Get(context.Background(), "/x", nil, nil); !errors.Is(err, connectors.ErrUnavailable) {
		t.Fatalf("error %v, want ErrUnavailable", err)
	}
}

func TestBadBodies(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name        string
		contentType string
		body        string
		declared    int // Content-Length announced, 0 for the real one
		decode      func(*Response) error
		text        string
	}{
		{"html page", "text/html", "<!doctype html><html><head><title>Sign in</title></head></html>", 0, list, `HTML page instead of JSON (title "Sign in")`},
		{"html without content type", "", "  <html><body>hi</body></html>", 0, array, "HTML page"},
		{"empty", "application/json", "", 0, list, "empty body"},
		{"truncated json", "application/json", `{"data":[{"id":"1"},{"id"`, 0, list, "truncated JSON"},
		{"dropped connection", "application/json", `{"data":[]`, 500, list, "truncated after"},
		{"invalid json", "application/json", `{"data":[} ]}`, 0, list, "invalid JSON at byte"},
		{"missing envelope", "application/json", `{"meta":{},"errors":[{"title":"Oops"}]}`, 0, list, `no "data" list (members: errors, meta); the API says "Oops"`},
		{"envelope not a list", "application/json", `{"data":{"id":"1"}}`, 0, list, `"data" is a JSON object, not a list`},
		{"envelope null", "application/json", `{"data":null}`, 0, list, `"data" is null`},
		{"array expected", "application/json", `{"value":[]}`, 0, array, "the body is a JSON object, not a list"},
		{"object expected", "application/json", `[1,2]`, 0, list, "the body is a JSON array, not the documented object"},
		{"too large", "application/json", `[` + strings.Repeat(`"x",`, 300) + `"x"]`, 0, array, "larger than the"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := newClient(t, func(w http.ResponseWriter, r *http.Request) {
				if tc.contentType != "" {
					w.Header().Set("Content-Type", tc.contentType)
				}
				if tc.declared > 0 {
					w.Header().Set("Content-Length", "500")
				}
				_, _ = w.Write([]byte(tc.body))
			}, Options{MaxBody: 1000})
			resp, err := c.Get(context.Background(), "/x", nil, nil)
			if err == nil {
				err = tc.decode(resp)
			}
			if !errors.Is(err, connectors.ErrBadResponse) {
				t.Fatalf("error %v, want ErrBadResponse", err)
			}
			if !strings.Contains(err.Error(), tc.text) {
				t.Errorf("error %q does not say %q", err, tc.text)
			}
		})
	}
}

func list(r *Response) error  { _, err := r.List("data"); return err }
func array(r *Response) error { _, err := r.Array(); return err }

func TestLimiterPaces(t *testing.T) {
	t.Parallel()
	c := newClient(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`[]`))
	}, Options{Limiter: rate.NewLimiter(rate.Every(10*time.Millisecond), 1)}) // one per 10ms
	start := time.Now()
	for range 21 {
		if _, err := c.Get(context.Background(), "/x", nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("21 requests at 100/s took %s, want at least 200ms", d)
	}
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	cases := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"1", time.Second, true},
		{" 30 ", 30 * time.Second, true},
		{"0", 0, true},
		{"-5", 0, false},
		{"soon", 0, false},
		{"Thu, 02 Jan 2025 03:05:05 GMT", time.Minute, true},
		{"Thu, 02 Jan 2025 03:00:00 GMT", 0, true},
		{"99999999999", 24 * time.Hour, true},
	}
	for _, tc := range cases {
		got, ok := ParseRetryAfter(tc.in, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("ParseRetryAfter(%q) = %s, %v; want %s, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestSleep(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	if err := Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("Sleep: %v", err)
	}
	if time.Since(start) > time.Second {
		t.Fatal("Sleep ignored the context")
	}
	if err := Sleep(context.Background(), time.Millisecond); err != nil {
		t.Fatal(err)
	}
}

func TestParseBaseURL(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in, want, problem string
	}{
		{"https://acme.huducloud.com", "https://acme.huducloud.com/api/v1", ""},
		{"https://acme.huducloud.com/", "https://acme.huducloud.com/api/v1", ""},
		{"https://cw.example.com/v2024_1/apis/3.0/", "https://cw.example.com/v2024_1/apis/3.0", ""},
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080/api/v1", ""},
		{"http://localhost:1", "http://localhost:1/api/v1", ""},
		{"http://[::1]:1", "http://[::1]:1/api/v1", ""},
		{"http://acme.huducloud.com", "", "must use https"},
		{"ftp://acme", "", "must use https"},
		{"acme.huducloud.com", "", "absolute URL"},
		{"https://user:pw@acme.example", "", "credentials"},
		{"https://acme.example?x=1", "", "query"},
		{"https://acme.example/%zz", "", "not a URL"},
	}
	for _, tc := range cases {
		u, err := ParseBaseURL(tc.in, "/api/v1")
		switch {
		case tc.problem == "" && err != nil:
			t.Errorf("%q: %v", tc.in, err)
		case tc.problem == "" && u.String() != tc.want:
			t.Errorf("%q: got %q, want %q", tc.in, u, tc.want)
		case tc.problem != "" && (err == nil || !strings.Contains(err.Error(), tc.problem)):
			t.Errorf("%q: error %v, want one saying %q", tc.in, err, tc.problem)
		}
		if err != nil && strings.Contains(err.Error(), "pw") {
			t.Errorf("%q: error leaks the password: %v", tc.in, err)
		}
	}
}

func TestIDAndDecodeRecord(t *testing.T) {
	t.Parallel()
	type rec struct {
		ID    ID     `json:"id"`
		Name  string `json:"name"`
		Attrs struct {
			First string `json:"first-name"`
		} `json:"attributes"`
	}
	cases := []struct {
		in, id, reason string
	}{
		{`{"id":"72","name":"a"}`, "72", ""},
		{`{"id":72,"name":"a"}`, "72", ""},
		{`{"id":null}`, "", ""},
		{`{"name":"a"}`, "", ""},
		{`{"id":7.5}`, "", "id 7.5 is not a string or a whole number"},
		{`{"id":true}`, "", "id true is not"},
		{`{"id":""}`, "", "empty id"},
		{`{"id":"1","name":12}`, "", "field name is a JSON number, want a string"},
		{`{"id":"1","attributes":{"first-name":["x"]}}`, "", "field attributes.first-name is a JSON array, want a string"},
		{`[1]`, "", "the record is a JSON array, not an object"},
	}
	for _, tc := range cases {
		var r rec
		err := DecodeRecord(json.RawMessage(tc.in), &r)
		switch {
		case tc.reason == "" && err != nil:
			t.Errorf("%s: %v", tc.in, err)
		case tc.reason == "" && string(r.ID) != tc.id:
			t.Errorf("%s: id %q, want %q", tc.in, r.ID, tc.id)
		case tc.reason != "" && (err == nil || !strings.Contains(err.Error(), tc.reason)):
			t.Errorf("%s: error %v, want one saying %q", tc.in, err, tc.reason)
		}
	}
	if n, ok := ID("42").Int(); !ok || n != 42 {
		t.Errorf("Int: %d %v", n, ok)
	}
	if _, ok := ID("abc").Int(); ok {
		t.Error("Int accepted abc")
	}
}

func TestDedupAndParseTime(t *testing.T) {
	t.Parallel()
	var d Dedup
	if d.Seen("1") || !d.Seen("1") || d.Seen("2") {
		t.Fatal("Dedup")
	}
	tm, err := ParseTime("2016-09-12T19:10:26.000Z")
	if err != nil || !tm.Equal(time.Date(2016, 9, 12, 19, 10, 26, 0, time.UTC)) || tm.Location() != time.UTC {
		t.Fatalf("ParseTime: %v %v", tm, err)
	}
	if tm, err := ParseTime("2024-05-01T14:00:00+02:00"); err != nil || tm.Hour() != 12 {
		t.Fatalf("ParseTime offset: %v %v", tm, err)
	}
	if _, err := ParseTime("yesterday"); err == nil {
		t.Fatal("ParseTime accepted garbage")
	}
	if tm, err := ParseTime(""); err != nil || !tm.IsZero() {
		t.Fatal("ParseTime empty")
	}
}
