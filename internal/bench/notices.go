package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"

	"selfserve/internal/notify"
	"selfserve/internal/notify/smtpsink"
	"selfserve/internal/population"
	"selfserve/internal/store"
	"selfserve/worker"
)

// NoticeAt is the instant the notice scenario's notices are due at: 15:00
// UTC, past the 09:00 send hour in New York and London, its customers'
// zones.
var NoticeAt = time.Date(2026, 12, 1, 15, 0, 0, 0, time.UTC)

// noticeConcurrency is the notify server's concurrency on both sides (the
// worker role's default).
const noticeConcurrency = 10

// Notices measures sending n notices: the real send path of a worker (a
// send task claims its batch of ledger rows, re-checks at the send instant
// that each end user is still served and the notice still due, renders it
// and hands it over SMTP with STARTTLS to an in-process smtpsink, then
// records it sent) against the same number of tasks through asynq to a
// handler that does nothing, on the same queue with the same concurrency.
// The ledger rows are written and queued by the expiry scan before the
// clock starts. The target is at least half the no-op handler's
// throughput: a time ratio of 2.
func Notices() Scenario {
	return Scenario{
		Name:     "notices",
		Baseline: "the same number of asynq tasks to a no-op handler",
		Ours:     "worker send path: claim, active re-check, render, SMTP (STARTTLS) to smtpsink, ledger",
		Size:     30_000, Quick: 1_000, Unit: "notices", Target: 2,
		Needs:   []string{"postgres", "redis"},
		Measure: measureNotices,
	}
}

func measureNotices(ctx context.Context, env *Env, side Side, size int) (time.Duration, error) {
	rd, release, err := benchRedis(ctx, env)
	if err != nil {
		return 0, err
	}
	defer release()
	run := NoticeRun{Redis: rd, Notices: size, Seed: env.Seed}
	if side == SideBaseline {
		return run.Noop(ctx)
	}
	st, cleanup, err := FreshStore(ctx, env)
	if err != nil {
		return 0, err
	}
	defer cleanup()
	return run.Send(ctx, st)
}

// NoticeRun is one side of the notice scenario at one size.
type NoticeRun struct {
	// Redis is an empty Redis DB the run may fill (it leaves its tasks
	// there: flush it after).
	Redis asynq.RedisConnOpt
	// Notices is how many notices (or no-op tasks).
	Notices int
	// Seed makes the end users' expiry dates deterministic.
	Seed uint64
	// Logger receives the worker's warnings and errors (nil: discarded).
	Logger *slog.Logger
}

// newWorker is the worker both sides run: the notify server at the worker
// role's concurrency, polling an idle queue every 20ms (asynq's default
// 1s would measure idle waits between fan-out steps, not throughput).
func (r NoticeRun) newWorker() *worker.Worker {
	return worker.NewWorker(worker.ServerOptions{Redis: r.Redis, NotifyConcurrency: noticeConcurrency, SyncConcurrency: 1,
		PollInterval: 20 * time.Millisecond, ShutdownTimeout: 5 * time.Second, Logger: r.Logger})
}

// timeout bounds the wait for the last notice or task.
func (r NoticeRun) timeout() time.Duration {
	return time.Minute + time.Duration(r.Notices)*5*time.Millisecond
}

// Noop is the baseline: it queues Notices tasks on the notify queue (not
// timed), then returns how long a worker took to process them all with a
// handler that does nothing.
func (r NoticeRun) Noop(ctx context.Context) (time.Duration, error) {
	const typ = "bench:noop"
	client := asynq.NewClient(r.Redis)
	defer client.Close()
	for i := range r.Notices {
		payload := []byte(`{"tenant_id":1,"notice_id":` + strconv.Itoa(i+1) + `}`)
		if _, err := client.EnqueueContext(ctx, asynq.NewTask(typ, payload), asynq.Queue(worker.QueueNotify)); err != nil {
			return 0, fmt.Errorf("enqueue no-op task %d: %w", i+1, err)
		}
	}
	var done atomic.Int64
	finished := make(chan struct{})
	mux := asynq.NewServeMux()
	mux.HandleFunc(typ, func(context.Context, *asynq.Task) error {
		if done.Add(1) == int64(r.Notices) {
			close(finished)
		}
		return nil
	})
	w := r.newWorker()
	start := time.Now()
	if err := w.Start(mux); err != nil {
		return 0, err
	}
	defer w.Shutdown()
	select {
	case <-finished:
		return time.Since(start), nil
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-time.After(r.timeout()):
		return 0, fmt.Errorf("no-op handler: %d of %d tasks processed after %s", done.Load(), r.Notices, r.timeout())
	}
}

// Send is ours: it loads Notices end users into st (an empty PostgreSQL
// store), each due one expiry reminder by email at NoticeAt, and runs the
// expiry scan, which writes their ledger rows and queues them (not timed).
// Then it starts a worker wired as the worker role is, sending to an
// in-process SMTP sink over STARTTLS, and returns how long it took until the
// sink had every message and the ledger recorded every row sent. It fails
// if a notice is missing, went out twice or is not recorded sent.
func (r NoticeRun) Send(ctx context.Context, st *store.Store) (time.Duration, error) {
	n := r.Notices
	pop := population.Spec{Users: n, Customers: min(100, max(n/100, 1)), Seed: r.Seed, At: NoticeAt,
		FirstExpiryDay: 1, ExpiryDays: 8, Zones: []string{"America/New_York", "Europe/London"}}
	if err := pop.Load(ctx, st); err != nil {
		return 0, err
	}
	serverTLS, roots, err := smtpsink.SelfSignedTLS()
	if err != nil {
		return 0, fmt.Errorf("smtp sink certificate: %w", err)
	}
	sink, err := smtpsink.Start(smtpsink.Options{TLS: serverTLS, RequireTLS: true, Discard: true})
	if err != nil {
		return 0, fmt.Errorf("smtp sink: %w", err)
	}
	defer sink.Close()
	email, err := notify.NewEmail(notify.EmailConfig{Host: "127.0.0.1", Port: sink.Port(), RootCAs: roots,
		From: "Reminders <noreply@msp.example>", Timeout: 10 * time.Second})
	if err != nil {
		return 0, err
	}
	defer email.Close()

	now := func() time.Time { return NoticeAt }
	channels := []store.Channel{store.ChannelEmail}
	client := worker.NewClient(r.Redis, now, r.Logger)
	defer client.Close()
	scanner := &worker.Scanner{Store: st, Enqueue: client, Channels: channels, Now: now, Logger: r.Logger}
	sender := &worker.Sender{Store: st, Channels: map[store.Channel]notify.Sender{store.ChannelEmail: email},
		PublicURL: "https://reset.msp.example", Now: now, Logger: r.Logger}
	mux := worker.NewServeMux(worker.Deps{Store: st, Client: client, Scanner: scanner, Sender: sender,
		Channels: channels, Now: now, Logger: r.Logger})
	res, err := scanner.Scan(ctx)
	if err != nil {
		return 0, err
	}
	if res.Created != n {
		return 0, fmt.Errorf("the scan wrote %d ledger rows for %d end users each due one email", res.Created, n)
	}

	w := r.newWorker()
	start := time.Now()
	if err := w.Start(mux); err != nil {
		return 0, err
	}
	defer w.Shutdown()
	deadline := start.Add(r.timeout())
	for !sink.WaitFor(n, 50*time.Millisecond) {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("only %d of %d emails reached the SMTP sink after %s", sink.Count(), n, r.timeout())
		}
	}
	for {
		var open int
		if err := st.DB().GetContext(ctx, &open, `SELECT COUNT(*) FROM notices WHERE status IN ('pending', 'sending')`); err != nil {
			return 0, fmt.Errorf("read the ledger: %w", err)
		}
		if open == 0 {
			break
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("%d of %d notices still pending or sending after %s", open, n, r.timeout())
		}
		time.Sleep(5 * time.Millisecond)
	}
	elapsed := time.Since(start)
	var sent int
	if err := st.DB().GetContext(ctx, &sent, `SELECT COUNT(*) FROM notices WHERE status = 'sent'`); err != nil {
		return 0, fmt.Errorf("read the ledger: %w", err)
	}
	var errs []error
	if sent != n {
		errs = append(errs, fmt.Errorf("the ledger records %d of %d notices sent", sent, n))
	}
	if got := sink.Count(); got != n {
		errs = append(errs, fmt.Errorf("the SMTP sink received %d emails for %d notices", got, n))
	}
	return elapsed, errors.Join(errs...)
}
