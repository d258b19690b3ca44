package worker_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"selfserve/connectors"
	"selfserve/internal/notify"
	"selfserve/internal/rules"
	"selfserve/internal/service"
	"selfserve/internal/store"
	"selfserve/worker"
)

// The server and the CLI hand the worker client to the service as its
// Enqueuer.
var _ service.Enqueuer = (*worker.Client)(nil)

func TestTaskTypesAreNotPrefixesOfEachOther(t *testing.T) {
	t.Parallel()
	types := []string{worker.TypeSync, worker.TypeScheduledSync, worker.TypeCustomerImport, worker.TypeScan,
		worker.TypeDispatch, worker.TypeSend, worker.TypeLockout, worker.TypeWelcome}
	for _, a := range types {
		for _, b := range types {
			if a != b && strings.HasPrefix(b, a) {
				t.Errorf("task type %q is a prefix of %q: asynq's mux would route %q to %q's handler", a, b, b, a)
			}
		}
	}
}

func TestConstructorsSetQueueRetryAndIDs(t *testing.T) {
	t.Parallel()
	run := store.SyncRun{ID: 42, TenantID: 1, ConnectionID: 7}
	sync, err := worker.NewSyncTask(run)
	must(t, err)
	if sync.Type() != worker.TypeSync || string(sync.Payload()) != `{"tenant_id":1,"connection_id":7,"run_id":42}` {
		t.Fatalf("sync task %s %s", sync.Type(), sync.Payload())
	}
	if _, err := worker.NewSyncTask(store.SyncRun{}); err == nil {
		t.Fatal("a sync task without a run was built")
	}
	send, err := worker.NewSendTask(worker.NoticeRef{TenantID: 1, ID: 9, Kind: rules.KindLockout}, 8)
	must(t, err)
	if send.Type() != worker.TypeSend {
		t.Fatalf("send task type %s", send.Type())
	}
	if _, err := worker.NewLockoutTask(1, 2, time.Time{}); err == nil {
		t.Fatal("a lockout without an instant was built")
	}
	w1, _ := worker.NewWelcomeTask(1, 2, time.Date(2026, 1, 1, 10, 0, 5, 0, time.UTC))
	w2, _ := worker.NewWelcomeTask(1, 2, time.Date(2026, 1, 1, 10, 0, 55, 0, time.UTC))
	if string(w1.Payload()) != string(w2.Payload()) {
		t.Fatalf("two welcome requests in one minute differ: %s vs %s", w1.Payload(), w2.Payload())
	}
}

func TestCronspecsAreWallClockAligned(t *testing.T) {
	t.Parallel()
	cases := []struct {
		conn     int64
		interval time.Duration
		spec     string
		got      time.Duration
	}{
		{7, 3 * time.Hour, "7 0-23/3 * * *", 3 * time.Hour},
		{125, 3 * time.Hour, "5 2-23/3 * * *", 3 * time.Hour},
		{7, 15 * time.Minute, "7-59/15 * * * *", 15 * time.Minute},
		{7, 45 * time.Minute, "7-59/30 * * * *", 30 * time.Minute},
		{7, 5 * time.Hour, "7 0-23/4 * * *", 4 * time.Hour},
		{3, 30 * time.Second, "* * * * *", time.Minute},
		{61, 24 * time.Hour, "1 1 * * *", 24 * time.Hour},
		{61, 72 * time.Hour, "1 1 */3 * *", 72 * time.Hour},
	}
	for _, c := range cases {
		spec, got := worker.Cronspec(c.conn, c.interval)
		if spec != c.spec || got != c.got {
			t.Errorf("Cronspec(%d, %s) = %q, %s; want %q, %s", c.conn, c.interval, spec, got, c.spec, c.got)
		}
	}
}

func TestErrorsAreClassifiedOnce(t *testing.T) {
	t.Parallel()
	p := worker.RetryPolicy{Base: time.Second, Max: time.Minute, MinThrottle: 5 * time.Second}
	cases := []struct {
		err       error
		permanent bool
		failure   bool
		delay     time.Duration // exact for throttles, 0: backoff
	}{
		{fmt.Errorf("bind: %w", connectors.ErrUnauthorized), true, true, 0},
		{fmt.Errorf("settings: %w", connectors.ErrInvalidConfig), true, true, 0},
		{fmt.Errorf("smtp: %w: 550", notify.ErrRejected), true, true, 0},
		{fmt.Errorf("sms: %w", notify.ErrMisconfigured), true, true, 0},
		{fmt.Errorf("run 3: %w", store.ErrNotFound), true, true, 0},
		{fmt.Errorf("graph: %w", &connectors.RateLimitError{RetryAfter: 17 * time.Second}), false, false, 17 * time.Second},
		{fmt.Errorf("sms: %w", &notify.ThrottledError{RetryAfter: 3 * time.Second}), false, false, 3 * time.Second},
		{fmt.Errorf("sms: %w", &notify.ThrottledError{}), false, false, 5 * time.Second},
		{fmt.Errorf("ldap: %w", connectors.ErrUnavailable), false, true, 0},
		{errors.New("connection reset"), false, true, 0},
	}
	for _, c := range cases {
		if got := worker.IsPermanent(c.err); got != c.permanent {
			t.Errorf("IsPermanent(%v) = %v", c.err, got)
		}
		if got := p.IsFailure(c.err); got != c.failure {
			t.Errorf("IsFailure(%v) = %v", c.err, got)
		}
		d := p.Delay(3, c.err, asynq.NewTask("x", nil))
		switch {
		case c.delay > 0 && d != c.delay:
			t.Errorf("Delay(%v) = %s, want the Retry-After %s", c.err, d, c.delay)
		case c.delay == 0 && (d < 6*time.Second || d > 10*time.Second):
			t.Errorf("Delay(3, %v) = %s, want 8s ±20%%", c.err, d)
		}
	}
	if d := p.Delay(30, errors.New("x"), nil); d > time.Minute+time.Minute/5 {
		t.Errorf("backoff not capped: %s", d)
	}
}

// ExampleNewSendBatchTask shows a send task of a fan-out: a batch of ledger
// rows, each with its tenant and end user.
func ExampleNewSendBatchTask() {
	t, _ := worker.NewSendBatchTask([]worker.NoticeRef{
		{TenantID: 1, ID: 42, EndUserID: 7, Kind: rules.KindExpiryReminder},
		{TenantID: 1, ID: 43, EndUserID: 7, Kind: rules.KindExpiryReminder},
	})
	fmt.Println(t.Type(), string(t.Payload()))
	// Output: notice:send {"notices":[{"tenant_id":1,"id":42,"end_user_id":7,"kind":"expiry_reminder"},{"tenant_id":1,"id":43,"end_user_id":7,"kind":"expiry_reminder"}]}
}
