package connectors

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel kinds of connector failure. Connectors wrap them with %w and a
// message a technician can act on; the worker classifies with errors.Is.
var (
	// ErrUnauthorized: the credentials were refused (bad key, wrong password,
	// expired secret, missing permission). Permanent until someone fixes them.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrInvalidConfig: the connection's settings cannot work (missing field,
	// malformed URL, unreadable CA file). Permanent.
	ErrInvalidConfig = errors.New("invalid connection config")
	// ErrNotFound: the configured object (base DN, tenant, asset layout) does
	// not exist. Permanent.
	ErrNotFound = errors.New("not found")
	// ErrResyncRequired: an incremental cursor can no longer be trusted; run a
	// full enumeration.
	ErrResyncRequired = errors.New("full resync required")
	// ErrUnavailable: the system could not be reached or answered with a
	// server error. Temporary: retry with backoff.
	ErrUnavailable = errors.New("source unavailable")
	// ErrBadResponse: the system answered with something that is not what its
	// API documents (HTML instead of JSON, a truncated body, a missing
	// envelope). Temporary: retry, and report if it persists.
	ErrBadResponse = errors.New("malformed response")
)

// RateLimitError reports that the source throttled us. RetryAfter is how long
// it asked us to wait (zero when it did not say).
type RateLimitError struct {
	RetryAfter time.Duration
	// Message is the source's own words, if any.
	Message string
}

// Error implements error.
func (e *RateLimitError) Error() string {
	msg := "rate limited"
	if e.RetryAfter > 0 {
		msg += fmt.Sprintf(", retry after %s", e.RetryAfter)
	}
	if e.Message != "" {
		msg += ": " + e.Message
	}
	return msg
}

// IsPermanent reports whether retrying err cannot help without someone
// changing the connection (credentials, settings, scope).
func IsPermanent(err error) bool {
	return errors.Is(err, ErrUnauthorized) || errors.Is(err, ErrInvalidConfig) || errors.Is(err, ErrNotFound)
}

// RetryAfter returns how long a rate-limited err asks to wait, and whether err
// is a rate limit at all.
func RetryAfter(err error) (time.Duration, bool) {
	var rl *RateLimitError
	if errors.As(err, &rl) {
		return rl.RetryAfter, true
	}
	return 0, false
}
