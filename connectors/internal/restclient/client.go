// Package restclient is the HTTP client the REST connectors (itglue, hudu,
// connectwise) share. It does what every vendor API needs and nothing vendor
// specific:
//
//   - paces requests with a client-side limiter per connection
//     (connectors.Limiters) at the vendor's documented rate;
//   - waits out short throttles (429 with a Retry-After, seconds or HTTP date)
//     inline, honouring the context, and otherwise returns
//     *connectors.RateLimitError so the worker reschedules without burning a
//     retry; a listing whose context carries a connectors.ThrottleWaiter (an
//     inline run) hands it every throttle instead and asks for the same page
//     again, the waits growing from 2 s up to DefaultRetryAfter when the
//     vendor does not say how long;
//   - maps HTTP statuses to the typed errors of package connectors, with a
//     hint a technician can act on;
//   - limits response sizes and turns HTML pages, truncated bodies and
//     missing envelopes into connectors.ErrBadResponse with a precise message;
//   - decodes single records leniently where APIs disagree with themselves
//     (ids as strings or numbers) and reports the rest as invalid records.
//
// Secrets travel only in the headers given in Options.Header; they never
// appear in URLs, errors or logs.
package restclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"selfserve/connectors"
)

// Defaults of Options.
const (
	DefaultMaxBody       = 32 << 20
	DefaultTimeout       = 60 * time.Second
	DefaultMaxInlineWait = 60 * time.Second
	DefaultMaxRetries    = 3
)

// Options configures a Client. Vendor and Base are required.
type Options struct {
	// Vendor names the API in errors and logs ("IT Glue").
	Vendor string
	// Base is the API root that request paths are joined to, for example
	// https://api.itglue.com or https://acme.huducloud.com/api/v1.
	Base *url.URL
	// Header is set on every request: credentials, Accept, clientId.
	Header http.Header
	// Limiter paces requests (see connectors.Limiters). Nil means no pacing.
	Limiter *rate.Limiter
	// DefaultRetryAfter is the wait reported in a RateLimitError when the
	// vendor throttles without a usable Retry-After header: its documented
	// window, which also caps the growing waits of a ThrottleWaiter.
	DefaultRetryAfter time.Duration
	// MaxInlineWait is the longest Retry-After waited out inside a request
	// (default 60s). A longer one ends the request with a RateLimitError.
	MaxInlineWait time.Duration
	// MaxRetries is how many times one request is retried after a throttle
	// it waited out (default 3).
	MaxRetries int
	// ThrottleText, when set, marks any error response whose body contains
	// it as a throttle, whatever its status (Hudu's "Retry later").
	ThrottleText string
	// MaxBody is the largest response body read, in bytes (default 32 MiB).
	MaxBody int64
	// Timeout bounds one HTTP exchange, body included (default 60s).
	Timeout time.Duration
	// StatusHints adds a sentence a technician can act on to the error of a
	// given HTTP status ("check api_key").
	StatusHints map[int]string
	// Logger receives one debug line per request and a warning per throttle.
	// Nil discards.
	Logger *slog.Logger
}

// Client performs GET requests against one vendor API. It is safe for
// concurrent use.
type Client struct {
	opts Options
	http *http.Client
	log  *slog.Logger
}

// New returns a Client for opts, filling defaults.
func New(opts Options) *Client {
	if opts.MaxBody <= 0 {
		opts.MaxBody = DefaultMaxBody
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.MaxInlineWait <= 0 {
		opts.MaxInlineWait = DefaultMaxInlineWait
	}
	if opts.MaxRetries <= 0 {
		opts.MaxRetries = DefaultMaxRetries
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	return &Client{
		opts: opts,
		http: &http.Client{
			Transport: transport,
			Timeout:   opts.Timeout,
			// An API answering with a redirect is misconfigured (http to
			// https, a login page): report it rather than follow it with
			// our credentials.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		log: log,
	}
}

// Close releases idle connections.
func (c *Client) Close() {
	c.http.CloseIdleConnections()
}

// Get requests path (relative to Options.Base) with query and returns the
// response of a 2xx status. header, if not nil, adds headers to this request
// only. Errors wrap the sentinels of package connectors, the context's error,
// or are a *connectors.RateLimitError.
func (c *Client) Get(ctx context.Context, path string, query url.Values, header http.Header) (*Response, error) {
	return c.GetPage(ctx, 0, path, query, header)
}

// GetPage is Get for page number page of a listing (0 when unknown), which
// a ThrottleWaiter names in its messages.
func (c *Client) GetPage(ctx context.Context, page int, path string, query url.Values, header http.Header) (*Response, error) {
	u := c.opts.Base.JoinPath(path)
	if !strings.HasPrefix(u.Path, "/") {
		u.Path = "/" + u.Path
	}
	// Encode spaces as %20: '+' means a space only in forms, and some APIs
	// (ConnectWise conditions) read it literally.
	u.RawQuery = strings.ReplaceAll(query.Encode(), "+", "%20")
	what := describeRequest(u)

	for attempt := 0; ; attempt++ {
		resp, err := c.do(ctx, u, header, what)
		if err != nil {
			return nil, err
		}
		if resp.isOK() {
			return resp, nil
		}
		if !c.isThrottle(resp) {
			return nil, c.statusError(resp)
		}
		wait, stated := ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
		msg := resp.message()
		if w, ok := connectors.ThrottleWaiterFrom(ctx); ok {
			if !stated {
				wait = Backoff(attempt, c.opts.DefaultRetryAfter)
			}
			// At least a second, so that "Retry-After: 0" cannot spin.
			t := connectors.Throttle{Vendor: c.opts.Vendor, Request: what, Page: page, Wait: max(wait, time.Second), Stated: stated, Message: msg}
			c.log.Warn("throttled by the API, waiting", "vendor", c.opts.Vendor, "request", what, "retry_after", t.Wait, "stated", stated, "attempt", attempt+1)
			if err := w.WaitThrottle(ctx, t); err != nil {
				return nil, fmt.Errorf("%s %s: %w", c.opts.Vendor, what, err)
			}
			continue
		}
		if !stated || wait > c.opts.MaxInlineWait || attempt >= c.opts.MaxRetries {
			if !stated {
				wait = c.opts.DefaultRetryAfter
			}
			c.log.Warn("throttled by the API, giving the run back", "vendor", c.opts.Vendor, "request", what, "retry_after", wait, "attempts", attempt+1)
			return nil, fmt.Errorf("%s %s: %w", c.opts.Vendor, what, &connectors.RateLimitError{RetryAfter: wait, Message: msg})
		}
		c.log.Warn("throttled by the API, waiting", "vendor", c.opts.Vendor, "request", what, "retry_after", wait, "attempt", attempt+1)
		if err := Sleep(ctx, wait); err != nil {
			return nil, fmt.Errorf("%s %s: waiting %s after a throttle: %w", c.opts.Vendor, what, wait, err)
		}
	}
}

// do performs one exchange: pacing, request, bounded body read.
func (c *Client) do(ctx context.Context, u *url.URL, header http.Header, what string) (*Response, error) {
	if err := c.wait(ctx); err != nil {
		return nil, fmt.Errorf("%s %s: %w", c.opts.Vendor, what, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w: cannot build the request: %v", c.opts.Vendor, what, connectors.ErrInvalidConfig, err)
	}
	for k, vs := range c.opts.Header {
		req.Header[k] = vs
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	start := time.Now()
	httpResp, err := c.http.Do(req)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, fmt.Errorf("%s %s: %w", c.opts.Vendor, what, ctxErr)
		}
		var urlErr *url.Error
		if errors.As(err, &urlErr) && urlErr.Timeout() {
			return nil, fmt.Errorf("%s %s: %w: no answer within %s", c.opts.Vendor, what, connectors.ErrUnavailable, c.opts.Timeout)
		}
		return nil, fmt.Errorf("%s %s: %w: %v", c.opts.Vendor, what, connectors.ErrUnavailable, unwrapURLError(err))
	}
	defer httpResp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(httpResp.Body, c.opts.MaxBody+1))
	c.log.Debug("api request", "vendor", c.opts.Vendor, "request", what, "status", httpResp.StatusCode, "bytes", len(body), "duration", time.Since(start))
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, fmt.Errorf("%s %s: reading the body: %w", c.opts.Vendor, what, ctxErr)
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("%s %s: %w: body truncated after %d bytes (the connection closed early)", c.opts.Vendor, what, connectors.ErrBadResponse, len(body))
		}
		return nil, fmt.Errorf("%s %s: %w: reading the body: %v", c.opts.Vendor, what, connectors.ErrUnavailable, err)
	}
	if int64(len(body)) > c.opts.MaxBody {
		return nil, fmt.Errorf("%s %s: %w: body larger than the %s limit; lower page_size", c.opts.Vendor, what, connectors.ErrBadResponse, byteSize(c.opts.MaxBody))
	}
	return &Response{
		Vendor:  c.opts.Vendor,
		Request: what,
		Status:  httpResp.StatusCode,
		Header:  httpResp.Header,
		Body:    body,
	}, nil
}

// wait blocks until the limiter allows a request or ctx ends.
func (c *Client) wait(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if c.opts.Limiter == nil {
		return nil
	}
	if err := c.opts.Limiter.Wait(ctx); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return ctxErr
		}
		// The limiter refuses a wait that would outlast the deadline.
		return fmt.Errorf("client-side rate limit: the next request slot is past the deadline: %w", context.DeadlineExceeded)
	}
	return nil
}

func (c *Client) isThrottle(r *Response) bool {
	if r.Status == http.StatusTooManyRequests {
		return true
	}
	return c.opts.ThrottleText != "" && r.Status >= 400 && strings.Contains(string(r.Body), c.opts.ThrottleText)
}

// statusError maps a non-2xx, non-throttle response to a typed error.
func (c *Client) statusError(r *Response) error {
	var kind error
	switch {
	case r.Status == http.StatusUnauthorized || r.Status == http.StatusForbidden:
		kind = connectors.ErrUnauthorized
	case r.Status == http.StatusNotFound:
		kind = connectors.ErrNotFound
	case r.Status == http.StatusBadRequest || r.Status == http.StatusUnprocessableEntity:
		// The API refused what we asked: a filter from the settings, an
		// unsupported API version. Retrying the same request cannot help.
		kind = connectors.ErrInvalidConfig
	case r.Status == http.StatusRequestTimeout || r.Status >= 500:
		kind = connectors.ErrUnavailable
	default:
		// 3xx (redirects are not followed) and other 4xx.
		kind = connectors.ErrBadResponse
	}
	var detail strings.Builder
	if msg := r.message(); msg != "" {
		fmt.Fprintf(&detail, " %q", msg)
	}
	if loc := r.Header.Get("Location"); loc != "" && r.Status >= 300 && r.Status < 400 {
		fmt.Fprintf(&detail, " redirecting to %s; check base_url", redactURL(loc))
	}
	if hint := c.opts.StatusHints[r.Status]; hint != "" {
		detail.WriteString("; " + hint)
	}
	return fmt.Errorf("%s %s: %w: HTTP %d%s", c.opts.Vendor, r.Request, kind, r.Status, detail.String())
}

// describeRequest renders a request for messages: path and decoded query.
func describeRequest(u *url.URL) string {
	s := "GET " + u.EscapedPath()
	if u.RawQuery != "" {
		q, err := url.QueryUnescape(u.RawQuery)
		if err != nil {
			q = u.RawQuery
		}
		s += "?" + q
	}
	return s
}

// unwrapURLError drops the *url.Error prefix ("Get \"https://...\": ") that
// repeats what our message already says.
func unwrapURLError(err error) error {
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		return urlErr.Err
	}
	return err
}

// redactURL drops user info and query from a URL before it goes in a message.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	u.User = nil
	u.RawQuery = ""
	u.Fragment = ""
	return u.String()
}

// byteSize renders a size limit for messages.
func byteSize(n int64) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}

// BaseURL returns the API root requests are sent to.
func (c *Client) BaseURL() string { return c.opts.Base.String() }
