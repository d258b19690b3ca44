package graph

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	abs "github.com/microsoft/kiota-abstractions-go"
	"golang.org/x/time/rate"

	"selfserve/connectors"
)

const (
	// maxRetries is how often the SDK's retry handler retries a throttled
	// (429), unavailable (503) or timed-out (504) request.
	maxRetries = 3
	// maxRetryWait is the longest single wait the retry handler rides
	// out. A longer Retry-After surfaces as *connectors.RateLimitError, so
	// the worker waits without holding a slot or burning a retry.
	maxRetryWait = 10 * time.Second
	// maxTotalRetryWait caps the waits of one request's retries.
	maxTotalRetryWait = 30 * time.Second
	// maxBackoff caps the growing waits of an inline run when Graph
	// throttles without a Retry-After (Graph documents no window).
	maxBackoff = time.Minute
	// requestTimeout bounds one request, its retries and reading its body.
	requestTimeout = 3 * time.Minute
	// maxBodyBytes bounds a response body (a 999-user page is about 1 MB).
	maxBodyBytes = 64 << 20
)

// limitedTransport spends the connection's request budget before each
// request, retries included.
type limitedTransport struct {
	next    http.RoundTripper
	limiter *rate.Limiter
}

// RoundTrip implements http.RoundTripper.
func (t *limitedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := t.limiter.Wait(req.Context()); err != nil {
		if ctxErr := req.Context().Err(); ctxErr != nil {
			return nil, ctxErr
		}
		return nil, err
	}
	return t.next.RoundTrip(req)
}

// shouldRetry is the SDK retry handler's policy: ride out short waits, let
// long ones surface as a RateLimitError.
func (s *source) shouldRetry(cumulative time.Duration, attempt int, req *http.Request, resp *http.Response) bool {
	if _, inline := connectors.ThrottleWaiterFrom(req.Context()); inline && resp.StatusCode == http.StatusTooManyRequests {
		return false // get hands it to the run's waiter, which shows it
	}
	wait, ok := retryAfter(resp.Header)
	if !ok {
		wait = time.Duration(1<<attempt) * time.Second // the handler's backoff with DelaySeconds 1
	}
	if wait > maxRetryWait || cumulative+wait > maxTotalRetryWait {
		return false
	}
	s.logger.Warn("Graph asked to slow down; retrying", "status", resp.StatusCode, "path", req.URL.Path, "wait", wait, "retry", attempt+1)
	return true
}

// retryAfter parses a Retry-After header: seconds or an HTTP date.
func retryAfter(h http.Header) (time.Duration, bool) {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil && secs >= 0 {
		return time.Duration(secs * float64(time.Second)), true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(0, time.Until(t)), true
	}
	return 0, false
}

// get sends a GET request built by the SDK's request builders through the
// SDK's request adapter (authentication, retry handler, request budget) and
// decodes the JSON body into out.
//
// The body is decoded here rather than by the SDK's generated models: the
// models' deserializer fails a whole page when one user carries a malformed
// date (kiota's GetTimeValue error aborts GetObjectValue), where this
// connector reports that user alone; and it is about 6 times slower than
// encoding/json (BenchmarkUsers100k, sub-benchmark sdk-models).
func (s *source) get(ctx context.Context, what string, info *abs.RequestInformation, out any) error {
	return s.getPage(ctx, 0, what, info, out)
}

// getPage is get for page number page of a listing (0 when unknown). When
// ctx carries a connectors.ThrottleWaiter (an inline run), a throttle is
// handed to it and the same request sent again: waits are Graph's
// Retry-After or, without one, 2 s doubling up to maxBackoff.
func (s *source) getPage(ctx context.Context, page int, what string, info *abs.RequestInformation, out any) error {
	for attempt := 0; ; attempt++ {
		err := s.send(ctx, what, info, out)
		var rl *connectors.RateLimitError
		w, inline := connectors.ThrottleWaiterFrom(ctx)
		if !inline || !errors.As(err, &rl) {
			return err
		}
		wait := rl.RetryAfter
		if wait <= 0 {
			wait = min(2*time.Second<<min(attempt, 16), maxBackoff)
		}
		t := connectors.Throttle{Vendor: "Microsoft Graph", Request: what, Page: page, Wait: max(wait, time.Second), Stated: rl.RetryAfter > 0, Message: rl.Message}
		s.logger.Warn("Graph asked to slow down; waiting", "request", what, "wait", t.Wait, "attempt", attempt+1)
		if err := w.WaitThrottle(ctx, t); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
}

// send sends one request and decodes its answer.
func (s *source) send(ctx context.Context, what string, info *abs.RequestInformation, out any) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if info == nil {
		return fmt.Errorf("%w: %s: cannot build the request; check graph_url", connectors.ErrInvalidConfig, what)
	}
	var handled bool
	var herr error
	opt := abs.NewRequestHandlerOption()
	opt.SetResponseHandler(func(resp any, _ abs.ErrorMappings) (any, error) {
		handled = true
		r, ok := resp.(*http.Response)
		if !ok || r == nil {
			herr = fmt.Errorf("%w: %s: no HTTP response", connectors.ErrBadResponse, what)
			return nil, nil
		}
		herr = s.decodeResponse(r, what, out)
		return nil, nil
	})
	info.AddRequestOptions([]abs.RequestOption{opt})
	// A deadline of our own: without one the adapter adds a timeout whose
	// cancel func it drops, leaving a timer per request.
	reqCtx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	_, err := s.adapter.SendPrimitive(reqCtx, info, "[]byte", nil)
	if err != nil && !handled {
		return s.classifyError(ctx, what, err)
	}
	if err == nil {
		err = herr
	}
	return err
}

// graphErrorEnvelope is Graph's error body.
type graphErrorEnvelope struct {
	Error *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// resyncCodes are Graph error codes that mean a delta token is no longer
// usable.
var resyncCodes = map[string]bool{"syncstatenotfound": true, "syncstateinvalid": true, "resyncrequired": true}

// decodeResponse turns one Graph response into out or a typed error.
func (s *source) decodeResponse(resp *http.Response, what string, out any) error {
	defer resp.Body.Close()
	body := io.LimitReader(resp.Body, maxBodyBytes)
	isJSON := strings.Contains(strings.ToLower(resp.Header.Get("Content-Type")), "json")

	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		if out == nil && isNoContent(resp) {
			return nil // a write: 204 No Content
		}
		if !isJSON {
			snippet, _ := io.ReadAll(io.LimitReader(body, 512))
			return fmt.Errorf("%w: %s: Graph answered %d with %q instead of JSON: %s", connectors.ErrBadResponse, what, resp.StatusCode, resp.Header.Get("Content-Type"), describeBody(snippet))
		}
		if err := json.NewDecoder(body).Decode(out); err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
				return fmt.Errorf("%w: %s: the response body is truncated (%v)", connectors.ErrBadResponse, what, err)
			}
			return fmt.Errorf("%w: %s: the response is not the JSON Graph documents: %v", connectors.ErrBadResponse, what, err)
		}
		return nil
	}

	raw, _ := io.ReadAll(io.LimitReader(body, 64<<10))
	var env graphErrorEnvelope
	hasEnvelope := isJSON && json.Unmarshal(raw, &env) == nil && env.Error != nil
	graphSays := fmt.Sprintf("HTTP %d", resp.StatusCode)
	code := ""
	if hasEnvelope {
		code = env.Error.Code
		graphSays = fmt.Sprintf("HTTP %d %s: %s", resp.StatusCode, code, env.Error.Message)
	}
	wait, hasWait := retryAfter(resp.Header)
	switch {
	case resp.StatusCode == http.StatusTooManyRequests,
		resp.StatusCode == http.StatusServiceUnavailable && hasWait:
		return fmt.Errorf("%s: Graph is throttling this connection: %w", what, &connectors.RateLimitError{RetryAfter: wait, Message: graphSays})
	case !hasEnvelope && isHTML(resp.Header, raw):
		return fmt.Errorf("%w: %s: Graph answered %d with an HTML page instead of JSON (a proxy or gateway error?): %s", connectors.ErrBadResponse, what, resp.StatusCode, describeBody(raw))
	case !hasEnvelope && (resp.StatusCode == http.StatusBadRequest || resp.StatusCode == http.StatusNotFound || resp.StatusCode < 400):
		return fmt.Errorf("%w: %s: Graph answered %d without its error envelope: %s", connectors.ErrBadResponse, what, resp.StatusCode, describeBody(raw))
	case resp.StatusCode == http.StatusGone || resyncCodes[strings.ToLower(code)]:
		return fmt.Errorf("%w: %s: the delta token is expired or unknown (%s)", connectors.ErrResyncRequired, what, graphSays)
	case resp.StatusCode == http.StatusUnauthorized:
		return fmt.Errorf("%w: %s: Graph rejected the access token (%s); check the app registration and its admin consent", connectors.ErrUnauthorized, what, graphSays)
	case resp.StatusCode == http.StatusForbidden:
		return fmt.Errorf("%w: %s: the app lacks a Graph permission (%s); %s", connectors.ErrUnauthorized, what, graphSays, permissionHint(what))
	case resp.StatusCode == http.StatusNotFound:
		return fmt.Errorf("%w: %s: %s; check graph_url", connectors.ErrNotFound, what, graphSays)
	case resp.StatusCode == http.StatusBadRequest && what == whatPatchPassword:
		return passwordPatchError(resp.StatusCode, code, env.Error.Message)
	case resp.StatusCode == http.StatusBadRequest:
		return fmt.Errorf("%w: %s: Graph rejected the request (%s)", connectors.ErrInvalidConfig, what, graphSays)
	case resp.StatusCode >= 500 && !hasEnvelope:
		return fmt.Errorf("%w: %s: %s (no Graph error envelope: %s)", connectors.ErrUnavailable, what, graphSays, describeBody(raw))
	case resp.StatusCode >= 500:
		return fmt.Errorf("%w: %s: %s", connectors.ErrUnavailable, what, graphSays)
	default:
		return fmt.Errorf("%w: %s: unexpected answer (%s)", connectors.ErrUnavailable, what, graphSays)
	}
}

func permissionHint(what string) string {
	switch {
	case what == whatPatchPassword:
		return "password write-back needs the User-PasswordProfile.ReadWrite.All application permission with admin consent (and a privileged role to reset an administrator's password)"
	case strings.Contains(what, "phoneMethods"):
		return "fetch_auth_phone needs the UserAuthenticationMethod.Read.All application permission with admin consent"
	case strings.Contains(what, "domains"):
		return "grant the Domain.Read.All application permission with admin consent"
	case strings.Contains(what, "roleManagement"):
		return "privileged users are found by their directory roles: grant the " + rolePermission + " application permission with admin consent"
	default:
		return "grant the User.Read.All application permission with admin consent"
	}
}

func isHTML(h http.Header, body []byte) bool {
	if strings.Contains(strings.ToLower(h.Get("Content-Type")), "html") {
		return true
	}
	head := bytes.ToLower(bytes.TrimSpace(body))
	return bytes.HasPrefix(head, []byte("<!doctype html")) || bytes.HasPrefix(head, []byte("<html"))
}

// describeBody summarises a body for an error message: an HTML page's title,
// or the start of the text.
func describeBody(b []byte) string {
	s := string(b)
	lower := strings.ToLower(s)
	if i := strings.Index(lower, "<title>"); i >= 0 {
		if j := strings.Index(lower[i:], "</title>"); j > 0 {
			return fmt.Sprintf("page titled %q", strings.TrimSpace(s[i+len("<title>"):i+j]))
		}
	}
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 120 {
		s = s[:120] + "…"
	}
	if s == "" {
		return "empty body"
	}
	return fmt.Sprintf("%q", s)
}

// classifyError types an error that happened before Graph answered: the
// token request, TLS, the network, the context.
func (s *source) classifyError(ctx context.Context, what string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("%s: %w", what, ctxErr)
	}
	var authErr *azidentity.AuthenticationFailedError
	if errors.As(err, &authErr) {
		return tokenError(what, authErr)
	}
	var unknownCA x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var certErr *tls.CertificateVerificationError
	if errors.As(err, &unknownCA) || errors.As(err, &hostErr) || errors.As(err, &certErr) {
		return fmt.Errorf("%w: %s: the server's TLS certificate is not trusted (%v); set ca_file if a private CA or an inspecting proxy signs it", connectors.ErrInvalidConfig, what, err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %s: Graph did not answer in time: %v", connectors.ErrUnavailable, what, err)
	}
	return fmt.Errorf("%w: %s: %v", connectors.ErrUnavailable, what, err)
}

// aadError is the identity platform's OAuth error body.
type aadError struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
	Codes       []int  `json:"error_codes"`
}

// tokenError types a failed token request by its AADSTS code.
func tokenError(what string, authErr *azidentity.AuthenticationFailedError) error {
	if authErr.RawResponse == nil {
		// No answer from the identity platform: the network, TLS or DNS.
		msg := strings.Join(strings.Fields(authErr.Error()), " ")
		if i := strings.Index(msg, " To troubleshoot, visit"); i > 0 {
			msg = msg[:i]
		}
		if strings.Contains(msg, "x509:") || strings.Contains(msg, "certificate") {
			return fmt.Errorf("%w: %s: getting a token: the identity platform's TLS certificate is not trusted; set ca_file if a private CA signs it (%s)", connectors.ErrInvalidConfig, what, msg)
		}
		return fmt.Errorf("%w: %s: getting a token from authority_url: %s", connectors.ErrUnavailable, what, msg)
	}
	status := authErr.RawResponse.StatusCode
	body, _ := runtime.Payload(authErr.RawResponse)
	var e aadError
	if json.Unmarshal(body, &e) != nil || e.Description == "" {
		if status >= 500 || status == http.StatusTooManyRequests {
			return fmt.Errorf("%w: %s: the identity platform answered %d", connectors.ErrUnavailable, what, status)
		}
		return fmt.Errorf("%w: %s: the identity platform answered %d without an OAuth error: %s", connectors.ErrBadResponse, what, status, describeBody(body))
	}
	desc := e.Description
	if i := strings.Index(desc, "Trace ID:"); i > 0 {
		desc = desc[:i] // the rest is per-request noise
	}
	desc = strings.TrimSpace(firstLine(desc))
	code := 0
	if len(e.Codes) > 0 {
		code = e.Codes[0]
	}
	switch code {
	case 90002, 900023, 90072: // tenant not found, malformed tenant, account not in tenant
		return fmt.Errorf("%w: %s: check azure_tenant_id: %s", connectors.ErrInvalidConfig, what, desc)
	case 700016: // application not found in the directory
		return fmt.Errorf("%w: %s: check client_id and that the app is consented in this tenant: %s", connectors.ErrInvalidConfig, what, desc)
	case 7000215, 7000222, 7000216: // invalid, expired or missing secret
		return fmt.Errorf("%w: %s: check client_secret (the secret value, not its id; not expired): %s", connectors.ErrUnauthorized, what, desc)
	}
	if status >= 500 || status == http.StatusTooManyRequests {
		return fmt.Errorf("%w: %s: the identity platform is unavailable: %s", connectors.ErrUnavailable, what, desc)
	}
	return fmt.Errorf("%w: %s: the identity platform refused the client credentials: %s", connectors.ErrUnauthorized, what, desc)
}

func firstLine(s string) string {
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		return s[:i]
	}
	return s
}
