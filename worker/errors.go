package worker

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/hibiken/asynq"

	"selfserve/connectors"
	"selfserve/internal/notify"
	"selfserve/internal/store"
)

// retryAfterError asks for a retry after a given delay without counting a
// failure (a notice claimed by a concurrent attempt).
type retryAfterError struct {
	after time.Duration
	err   error
}

// Error implements error.
func (e *retryAfterError) Error() string { return e.err.Error() }

// Unwrap returns the underlying error.
func (e *retryAfterError) Unwrap() error { return e.err }

// IsPermanent reports whether retrying err cannot help: bad credentials or
// connection settings, a message the provider rejected or a channel it
// refuses, a task that cannot be decoded, or an object that no longer exists.
func IsPermanent(err error) bool {
	return err != nil && (connectors.IsPermanent(err) || notify.IsPermanent(err) ||
		errors.Is(err, errBadPayload) || errors.Is(err, store.ErrNotFound) || errors.Is(err, asynq.SkipRetry))
}

// Throttled returns the wait a throttling err asks for, and whether err is
// throttling at all (a connector's rate limit, a provider's throttle, a
// notice claimed elsewhere). Throttling does not count as a failure.
func Throttled(err error) (time.Duration, bool) {
	if d, ok := connectors.RetryAfter(err); ok {
		return d, true
	}
	if d, ok := notify.RetryAfter(err); ok {
		return d, true
	}
	var ra *retryAfterError
	if errors.As(err, &ra) {
		return ra.after, true
	}
	return 0, false
}

// classify is the one place where handler errors meet asynq's retry
// machinery: permanent errors skip retries, the rest are left as they are
// (throttles are recognised by RetryPolicy.IsFailure and Delay).
func classify(err error) error {
	if err == nil || errors.Is(err, asynq.SkipRetry) || errors.Is(err, asynq.RevokeTask) {
		return err
	}
	if IsPermanent(err) {
		return fmt.Errorf("%w (%w)", err, asynq.SkipRetry)
	}
	return err
}

// RetryPolicy is exponential backoff with jitter for failures and the
// provider's Retry-After for throttles.
type RetryPolicy struct {
	// Base is the first failure's delay (default 10s); each retry doubles it.
	Base time.Duration
	// Max caps a failure's delay (default 1h).
	Max time.Duration
	// MinThrottle is the delay of a throttle that did not say how long to
	// wait (default 30s).
	MinThrottle time.Duration
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.Base <= 0 {
		p.Base = 10 * time.Second
	}
	if p.Max <= 0 {
		p.Max = time.Hour
	}
	if p.MinThrottle <= 0 {
		p.MinThrottle = 30 * time.Second
	}
	return p
}

// Delay implements asynq.RetryDelayFunc.
func (p RetryPolicy) Delay(n int, err error, _ *asynq.Task) time.Duration {
	p = p.withDefaults()
	if d, ok := Throttled(err); ok {
		if d <= 0 {
			d = p.MinThrottle
		}
		return d
	}
	d := p.Base << min(n, 20)
	if d <= 0 || d > p.Max {
		d = p.Max
	}
	// ±20% jitter so that retries of a burst spread out.
	return d - d/5 + time.Duration(rand.Int64N(int64(d/5)*2+1))
}

// IsFailure implements asynq's Config.IsFailure: throttling is not a
// failure and does not use up retries.
func (p RetryPolicy) IsFailure(err error) bool {
	_, throttled := Throttled(err)
	return !throttled && !errors.Is(err, context.Canceled)
}

// finalAttempt reports whether the task running in ctx has no retry left
// after this attempt.
func finalAttempt(ctx context.Context) bool {
	retried, ok1 := asynq.GetRetryCount(ctx)
	maxRetry, ok2 := asynq.GetMaxRetry(ctx)
	return ok1 && ok2 && retried >= maxRetry
}
