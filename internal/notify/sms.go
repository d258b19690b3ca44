package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"selfserve/internal/redact"
)

// SMSConfig configures the SMS channel, a Twilio-compatible REST API.
type SMSConfig struct {
	// BaseURL is the API root (default https://api.twilio.com); plain http
	// only for loopback hosts (a local fake).
	BaseURL string
	// AccountSID and AuthToken authenticate (HTTP basic auth).
	AccountSID string
	AuthToken  redact.Secret
	// From is the sending number (E.164), alphanumeric sender id, or a
	// messaging service id ("MG…", sent as MessagingServiceSid).
	From string
	// HTTPClient sends the requests (default: a client with Timeout).
	HTTPClient *http.Client
	// Timeout bounds one request (default 15s).
	Timeout time.Duration
}

// SMS sends notices through a Twilio-compatible Messages API:
//
//	POST {base}/2010-04-01/Accounts/{AccountSID}/Messages.json
//	Authorization: Basic base64(AccountSID:AuthToken)
//	To=+44…&From=+1…&Body=…
//
// A 201 with the message's sid means accepted. Errors come back as
// {"code": 21211, "message": "…", "more_info": "…", "status": 400}: 429 is a
// throttle (Retry-After honoured), 401/403 misconfiguration, any other 4xx a
// rejection of this message, 5xx temporary. It is safe for concurrent use.
type SMS struct {
	endpoint string
	sid      string
	token    redact.Secret
	from     string
	http     *http.Client
}

// NewSMS checks cfg and returns the channel.
func NewSMS(cfg SMSConfig) (*SMS, error) {
	var problems []string
	base := cfg.BaseURL
	if base == "" {
		base = "https://api.twilio.com"
	}
	u, err := url.Parse(base)
	switch {
	case err != nil || u.Host == "":
		problems = append(problems, fmt.Sprintf("base url %q is not an absolute URL", base))
	case u.Scheme == "http" && !isLoopback(u.Hostname()):
		problems = append(problems, fmt.Sprintf("base url %q: https is required (plain http only for a loopback fake)", base))
	case u.Scheme != "http" && u.Scheme != "https":
		problems = append(problems, fmt.Sprintf("base url %q: want https://", base))
	}
	if cfg.AccountSID == "" {
		problems = append(problems, "account sid is required")
	}
	if cfg.AuthToken == "" {
		problems = append(problems, "auth token is required")
	}
	if cfg.From == "" {
		problems = append(problems, "from is required")
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("sms: %w: %s", ErrMisconfigured, strings.Join(problems, "; "))
	}
	client := cfg.HTTPClient
	if client == nil {
		timeout := cfg.Timeout
		if timeout <= 0 {
			timeout = 15 * time.Second
		}
		client = &http.Client{Timeout: timeout}
	}
	return &SMS{
		endpoint: strings.TrimSuffix(base, "/") + "/2010-04-01/Accounts/" + url.PathEscape(cfg.AccountSID) + "/Messages.json",
		sid:      cfg.AccountSID, token: cfg.AuthToken, from: cfg.From, http: client,
	}, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// twilioError is the API's error envelope.
type twilioError struct {
	Code     int    `json:"code"`
	Message  string `json:"message"`
	MoreInfo string `json:"more_info"`
	Status   int    `json:"status"`
}

// Send posts m and reports the provider's answer.
func (s *SMS) Send(ctx context.Context, m Message) error {
	form := url.Values{"To": {m.To}, "Body": {m.Body}}
	if strings.HasPrefix(s.from, "MG") {
		form.Set("MessagingServiceSid", s.from)
	} else {
		form.Set("From", s.from)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return fmt.Errorf("sms: %w: %v", ErrMisconfigured, err)
	}
	req.SetBasicAuth(s.sid, s.token.Reveal())
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if m.ID != "" {
		req.Header.Set("Idempotency-Key", m.ID)
	}
	resp, err := s.http.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // the URL is ours; keep the cause
		}
		return fmt.Errorf("sms: request failed: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return fmt.Errorf("sms: reading the answer (HTTP %d): %w", resp.StatusCode, err)
	}
	if resp.StatusCode == http.StatusCreated || resp.StatusCode == http.StatusOK {
		var ok struct {
			SID string `json:"sid"`
		}
		if json.Unmarshal(body, &ok) != nil || ok.SID == "" {
			return fmt.Errorf("sms: HTTP %d without a message sid: the provider's answer is not what its API documents", resp.StatusCode)
		}
		return nil
	}
	var te twilioError
	_ = json.Unmarshal(body, &te)
	what := fmt.Sprintf("HTTP %d", resp.StatusCode)
	if te.Code != 0 {
		what += fmt.Sprintf(", error %d", te.Code)
	}
	if te.Message != "" {
		what += ": " + te.Message
	}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		return fmt.Errorf("sms: %w", &ThrottledError{RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()), Message: what})
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return fmt.Errorf("sms: %w: credentials refused (%s)", ErrMisconfigured, what)
	case resp.StatusCode >= 400 && resp.StatusCode < 500:
		return fmt.Errorf("sms to %s: %w: %s", m.To, ErrRejected, what)
	default:
		return fmt.Errorf("sms: provider error: %s", what)
	}
}

// parseRetryAfter reads Retry-After in seconds or as an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
