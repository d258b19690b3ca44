package restclient

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// ParseRetryAfter reads a Retry-After header value: delay-seconds ("30") or
// an HTTP date ("Wed, 21 Oct 2015 07:28:00 GMT", taken relative to now). ok
// is false when the value is missing or unusable; a date in the past gives
// zero.
func ParseRetryAfter(value string, now time.Time) (wait time.Duration, ok bool) {
	value = strings.TrimSpace(value)
	if value == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(value, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		// Cap absurd values instead of overflowing: a day is already more
		// than any run waits.
		return min(time.Duration(secs)*time.Second, 24*time.Hour), true
	}
	when, err := http.ParseTime(value)
	if err != nil {
		return 0, false
	}
	return max(when.Sub(now), 0), true
}

// Sleep waits d or until ctx ends, whichever comes first, and returns ctx's
// error in the latter case.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Backoff is the wait before asking again after the attempt-th throttle in
// a row (from 0) that did not say how long: 2 s, doubling, up to window (60 s
// when window is 0). Most throttles of these APIs clear within seconds.
func Backoff(attempt int, window time.Duration) time.Duration {
	if window <= 0 {
		window = time.Minute
	}
	return min(2*time.Second<<min(attempt, 16), window)
}
