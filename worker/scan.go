package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"selfserve/internal/planner"
	"selfserve/internal/store"
)

// Scanner is the expiry scan: it plans the notices due at an instant across
// every tenant and writes them to the ledger, then queues the new rows.
//
// The plan is package planner's, the one path the preview shows too: the
// store's candidate query prefilters in SQL (served tenants, switch on,
// enabled, present, email and mobile, directory source, and a password
// expiring within rules.ExpiryWindow or a lockout within
// rules.LockoutLookback), and rules.ScanPlan decides each candidate at its
// customer's time zone. Rows are written in batches of INSERT … ON CONFLICT
// DO NOTHING (on PostgreSQL from unnest arrays, by Writers connections side
// by side), and only the rows this scan created are queued: DispatchBatch
// rows per dispatch task, which fans them out into send tasks of SendBatch
// rows. Enqueueing one task per notice instead would cost the scan a Redis
// round trip per notice (60,000 for 30,000 notices on two channels,
// seconds); batching costs about a hundred. Running the scan again, at any
// later instant of the same local day, from any number of schedulers,
// creates no second row.
type Scanner struct {
	Store   *store.Store
	Enqueue *Client
	// Channels are the channels notices are written for (nil: email and
	// SMS); a channel without a provider gets no rows.
	Channels []store.Channel
	// Now is the clock (default time.Now).
	Now func() time.Time
	// StrandedAfter re-queues rows left pending that long (default
	// DefaultStrandedAfter), at each scan and every RequeueCronspec.
	StrandedAfter time.Duration
	// Writers is how many connections write a large batch of ledger rows
	// side by side on PostgreSQL (default 2; SQLite has one writer).
	Writers int
	Logger  *slog.Logger
	Metrics *Metrics
}

// ScanResult is what one scan did, with the time each phase took.
type ScanResult struct {
	At         time.Time     `json:"at"`
	Candidates int           `json:"candidates"`
	Due        int           `json:"due"`      // notices due (before channels)
	Created    int           `json:"created"`  // ledger rows created
	Requeued   int           `json:"requeued"` // stranded rows queued again
	Tasks      int           `json:"tasks"`    // dispatch tasks queued
	Query      time.Duration `json:"-"`
	Plan       time.Duration `json:"-"`
	Ledger     time.Duration `json:"-"`
	Enqueue    time.Duration `json:"-"`
}

// LogValue implements slog.LogValuer.
func (r ScanResult) LogValue() slog.Value {
	return slog.GroupValue(slog.Int("candidates", r.Candidates), slog.Int("due", r.Due), slog.Int("created", r.Created),
		slog.Int("requeued", r.Requeued), slog.Int("tasks", r.Tasks), slog.Int64("query_ms", r.Query.Milliseconds()),
		slog.Int64("plan_ms", r.Plan.Milliseconds()), slog.Int64("ledger_ms", r.Ledger.Milliseconds()), slog.Int64("enqueue_ms", r.Enqueue.Milliseconds()))
}

// Scan plans, records and queues the notices due now.
func (s *Scanner) Scan(ctx context.Context) (ScanResult, error) {
	at := s.now()
	res := ScanResult{At: at}
	p := planner.Planner{Store: s.Store, Channels: s.Channels}
	plan, err := p.Plan(ctx, planner.Scope{}, at)
	if err != nil {
		return res, fmt.Errorf("expiry scan: %w", err)
	}
	res.Candidates, res.Due, res.Query, res.Plan = plan.Candidates, len(plan.Notices), plan.Query, plan.Rules

	start := time.Now()
	created, err := s.write(ctx, plan.Rows())
	res.Created = len(created)
	res.Ledger = time.Since(start)
	if err != nil {
		return res, fmt.Errorf("expiry scan: %w", err)
	}

	start = time.Now()
	refs := refsOf(created)
	stranded, err := s.stranded(ctx)
	if err != nil {
		return res, fmt.Errorf("expiry scan: %w", err)
	}
	res.Requeued = len(stranded)
	refs = append(refs, stranded...)
	res.Tasks, err = s.Enqueue.EnqueueDispatch(ctx, refs)
	res.Enqueue = time.Since(start)
	if err != nil {
		return res, fmt.Errorf("expiry scan: queue %d new notices: %w", len(refs), err)
	}
	if s.Metrics != nil {
		s.Metrics.scanned(res)
	}
	return res, nil
}

// DefaultStrandedAfter is how long a ledger row may stay pending before the
// scan or the requeue task queues it again.
const DefaultStrandedAfter = 10 * time.Minute

// stranded lists the ledger rows pending for StrandedAfter (or sending past
// their lease) at the scanner's clock.
func (s *Scanner) stranded(ctx context.Context) ([]NoticeRef, error) {
	after := s.StrandedAfter
	if after <= 0 {
		after = DefaultStrandedAfter
	}
	rows, err := s.Store.StrandedNotices(ctx, s.now().Add(-after), SendLease, 0)
	return refsOf(rows), err
}

func (s *Scanner) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Requeue queues again the ledger rows left pending for StrandedAfter (or
// sending past their lease): their tasks were lost (Redis lost its data) or
// are late. A row queued twice is sent once (the ledger's claims). It
// returns the rows queued.
func (s *Scanner) Requeue(ctx context.Context) (int, error) {
	refs, err := s.stranded(ctx)
	if err != nil {
		return 0, fmt.Errorf("requeue stranded notices: %w", err)
	}
	if _, err := s.Enqueue.EnqueueDispatch(ctx, refs); err != nil {
		return 0, fmt.Errorf("requeue %d stranded notices: %w", len(refs), err)
	}
	return len(refs), nil
}

// write creates the ledger rows, in parallel slices on PostgreSQL: the
// database's own work per row (heap, unique index) is the scan's largest
// cost, and independent rows can go in side by side.
func (s *Scanner) write(ctx context.Context, rows []store.NewNotice) ([]store.NoticeRef, error) {
	parts := 1
	if s.Store.Dialect() == store.Postgres {
		writers := s.Writers
		if writers <= 0 {
			writers = 2
		}
		parts = min(writers, max(1, len(rows)/2000))
	}
	if parts == 1 {
		return s.Store.CreateNotices(ctx, rows)
	}
	results := make([][]store.NoticeRef, parts)
	errs := make([]error, parts)
	var wg sync.WaitGroup
	size := (len(rows) + parts - 1) / parts
	for i := range parts {
		part := rows[min(i*size, len(rows)):min((i+1)*size, len(rows))]
		wg.Go(func() { results[i], errs[i] = s.Store.CreateNotices(ctx, part) })
	}
	wg.Wait()
	var created []store.NoticeRef
	for i := range parts {
		created = append(created, results[i]...)
	}
	return created, errors.Join(errs...)
}
