package connectors

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Throttle is one throttled request, as a source reports it to a
// ThrottleWaiter.
type Throttle struct {
	// Vendor names the API ("IT Glue").
	Vendor string
	// Request is the request that was refused ("GET /organizations?…").
	Request string
	// Page is the number of the page the request asked for, 0 when unknown.
	Page int
	// Wait is how long to wait before asking again: the vendor's
	// Retry-After or, when it gave none (Stated false), a short wait that
	// grows with each throttle of the same request up to the connector's
	// documented window.
	Wait   time.Duration
	Stated bool
	// Message is the vendor's own words, if any.
	Message string
}

// ThrottleWaiter waits out throttling for a run that has no worker to hand a
// RateLimitError to (a run inline in the CLI). A source finds it in the
// context of a listing (ThrottleWaiterFrom) and calls it on each throttle;
// without one, the source returns a RateLimitError as usual.
type ThrottleWaiter interface {
	// WaitThrottle waits t.Wait and returns nil, after which the source asks
	// for the same page again; or it returns an error that ends the listing:
	// the context's when it ends during the wait, a *RateLimitError when the
	// run may not wait that long.
	WaitThrottle(ctx context.Context, t Throttle) error
}

type throttleWaiterKey struct{}

type throttleSubjectKey struct{}

// WithThrottleWaiter returns a context whose listings wait out throttles with
// w.
func WithThrottleWaiter(ctx context.Context, w ThrottleWaiter) context.Context {
	return context.WithValue(ctx, throttleWaiterKey{}, w)
}

// ThrottleWaiterFrom returns the context's ThrottleWaiter, if any.
func ThrottleWaiterFrom(ctx context.Context) (ThrottleWaiter, bool) {
	w, ok := ctx.Value(throttleWaiterKey{}).(ThrottleWaiter)
	return w, ok
}

// WithThrottleSubject returns a context naming what its listings read, in a
// technician's words ("contacts of Harbor Freight Ltd"), for the messages of
// a ThrottleWaiter.
func WithThrottleSubject(ctx context.Context, subject string) context.Context {
	return context.WithValue(ctx, throttleSubjectKey{}, subject)
}

// ThrottleSubject returns the subject WithThrottleSubject set, or "".
func ThrottleSubject(ctx context.Context) string {
	s, _ := ctx.Value(throttleSubjectKey{}).(string)
	return s
}

// ThrottleBudget is the ThrottleWaiter of one inline run: it waits each
// throttle out, telling the technician, until the run has waited Max in all;
// a throttle that would take the run past Max ends it with a
// *RateLimitError saying so. It is safe for concurrent use.
type ThrottleBudget struct {
	// Max bounds the total wait of the run; 0 waits nothing.
	Max time.Duration
	// Report, if set, is told of each wait before it starts.
	Report func(ctx context.Context, t Throttle)
	// Sleep waits d or until ctx ends (returning ctx's error); nil uses a
	// timer. Tests record waits with it.
	Sleep func(ctx context.Context, d time.Duration) error

	mu     sync.Mutex
	waited time.Duration
}

// WaitThrottle implements ThrottleWaiter.
func (b *ThrottleBudget) WaitThrottle(ctx context.Context, t Throttle) error {
	b.mu.Lock()
	if b.waited+t.Wait > b.Max {
		waited := b.waited
		b.mu.Unlock()
		return &RateLimitError{RetryAfter: t.Wait, Message: fmt.Sprintf(
			"%s is still throttling after this run waited %s in all, and waiting %s more would pass the %s a run may wait (throttle_wait_max)",
			t.Vendor, waited.Round(time.Second), t.Wait.Round(time.Second), b.Max)}
	}
	b.waited += t.Wait
	b.mu.Unlock()
	if b.Report != nil {
		b.Report(ctx, t)
	}
	sleep := b.Sleep
	if sleep == nil {
		sleep = sleepCtx
	}
	if err := sleep(ctx, t.Wait); err != nil {
		return fmt.Errorf("waiting %s for %s to accept requests again: %w", t.Wait.Round(time.Second), t.Vendor, err)
	}
	return nil
}

// Describe renders a throttle for a technician: "IT Glue asked us to slow
// down: waiting 60 s, page 2 of contacts of Harbor Freight Ltd", with the
// subject of ctx (see WithThrottleSubject), or the request when there is
// none.
func (t Throttle) Describe(ctx context.Context) string {
	what := ThrottleSubject(ctx)
	switch {
	case what == "":
		what = t.Request
	case t.Page > 0:
		what = fmt.Sprintf("page %d of %s", t.Page, what)
	}
	return fmt.Sprintf("%s asked us to slow down: waiting %s, %s", t.Vendor, humanSeconds(t.Wait), what)
}

// humanSeconds renders a wait as "60 s" (or "1.5 s" below ten seconds).
func humanSeconds(d time.Duration) string {
	if d < 10*time.Second && d%time.Second != 0 {
		return fmt.Sprintf("%.1f s", d.Seconds())
	}
	return fmt.Sprintf("%d s", int64(d.Round(time.Second)/time.Second))
}

func sleepCtx(ctx context.Context, d time.Duration) error {
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
