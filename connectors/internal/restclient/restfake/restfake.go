// Package restfake holds what the fake vendor servers of the REST connectors
// (fakeitglue, fakehudu, fakeconnectwise) share: an httptest server that
// counts and records requests, injects request-level faults (throttling with
// or without Retry-After, HTML pages, truncated bodies, missing envelopes,
// error statuses) on the Nth request, and a deterministic generator of
// names, companies and phone numbers.
//
// The vendor fakes write the vendor's wire format; this package only wraps
// them.
package restfake

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"sync"
)

// Faults are request-level failures, each keyed by the 1-based number of the
// request as the server counts them (every request counts, rejected or not).
type Faults struct {
	// Throttle answers request n with 429 Too Many Requests. The value is
	// the Retry-After header sent with it; "" sends none.
	Throttle map[int]string
	// Status answers request n with this HTTP status and the vendor's error
	// envelope.
	Status map[int]int
	// HTML answers these requests with 200 and an HTML page, as a proxy's
	// login page or the web interface would.
	HTML []int
	// Truncate cuts the body of these requests' answers in half while
	// announcing the full Content-Length: the connection drops mid-body.
	Truncate []int
	// NoEnvelope drops the vendor's envelope from these requests' answers.
	NoEnvelope []int
}

// Vendor is what the fault injection needs to write a vendor's answers.
type Vendor struct {
	// Error writes the vendor's error envelope with status and message.
	Error func(w http.ResponseWriter, status int, message string)
	// Throttle writes the vendor's 429 answer. The Retry-After header, if
	// any, is already set.
	Throttle func(w http.ResponseWriter)
	// StripEnvelope returns a successful JSON body without its envelope.
	StripEnvelope func(body []byte) []byte
}

// Request is a request as a fake server received it.
type Request struct {
	// N is the request's 1-based number.
	N      int
	Method string
	Path   string
	Query  url.Values
	Header http.Header
}

// Server is an httptest.Server that records requests and injects faults.
type Server struct {
	*httptest.Server
	vendor  Vendor
	handler http.Handler

	mu       sync.Mutex
	faults   Faults
	requests []Request
}

// NewServer starts a server answering with handler, wrapped in fault
// injection. Close it when done.
func NewServer(faults Faults, vendor Vendor, handler http.Handler) *Server {
	s := &Server{vendor: vendor, handler: handler, faults: faults}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// SetFaults replaces the faults; request numbering goes on.
func (s *Server) SetFaults(f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = f
}

// Requests returns the requests received so far, oldest first.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// RequestCount returns how many requests the server received.
func (s *Server) RequestCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.requests)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	n := len(s.requests) + 1
	s.requests = append(s.requests, Request{N: n, Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Header: r.Header.Clone()})
	f := s.faults
	s.mu.Unlock()

	if retryAfter, ok := f.Throttle[n]; ok {
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		s.vendor.Throttle(w)
		return
	}
	if status, ok := f.Status[n]; ok {
		s.vendor.Error(w, status, "injected failure on request "+strconv.Itoa(n))
		return
	}
	if slices.Contains(f.HTML, n) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(loginPage))
		return
	}
	truncate, strip := slices.Contains(f.Truncate, n), slices.Contains(f.NoEnvelope, n)
	if !truncate && !strip {
		s.handler.ServeHTTP(w, r)
		return
	}
	rec := httptest.NewRecorder()
	s.handler.ServeHTTP(rec, r)
	body := rec.Body.Bytes()
	if strip && rec.Code < 300 {
		body = s.vendor.StripEnvelope(body)
	}
	for k, vs := range rec.Header() {
		w.Header()[k] = vs
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	if truncate {
		body = body[:len(body)/2]
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(body)
	if truncate {
		// Drop the connection so the client sees the short body.
		if h, ok := w.(http.Hijacker); ok {
			if conn, _, err := h.Hijack(); err == nil {
				_ = conn.Close()
			}
		}
	}
}

const loginPage = `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Sign in &ndash; Company Portal</title></head>
<body><form method="post" action="/login"><input name="user"><input name="password" type="password"></form></body></html>
`

// WriteJSON writes status and body as JSON of the given content type.
func WriteJSON(w http.ResponseWriter, status int, contentType string, body []byte) {
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// PageBounds returns the half-open range of a 1-based page of size over n
// items, clamped to [0, n].
func PageBounds(page, size, n int) (start, end int) {
	if page < 1 || size < 1 {
		return 0, 0
	}
	start = min((page-1)*size, n)
	end = min(start+size, n)
	return start, end
}
