package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"

	"selfserve/connectors"
	"selfserve/internal/importer"
	"selfserve/internal/rules"
	"selfserve/internal/store"
)

// CustomerImporter imports the customers of a PSA connection (and enriches
// end users from its contacts) for a run row recorded as queued. The
// implementation starts the run (store.StartRun), records its progress and
// finishes it (store.FinishRun) whatever happens, and returns it. With
// KeepRunOnCancel a cancelled import leaves the run running, to be resumed
// when the task is retried.
type CustomerImporter interface {
	ImportCustomers(ctx context.Context, req CustomerImportRequest) (store.SyncRun, error)
}

// CustomerImportRequest asks for one customer import.
type CustomerImportRequest struct {
	TenantID        int64
	ConnectionID    int64
	RunID           int64
	KeepRunOnCancel bool
	// Logger carries the task's and run's ids.
	Logger *slog.Logger
}

// Deps are the handlers' dependencies.
type Deps struct {
	Store *store.Store
	// Importer runs directory syncs.
	Importer *importer.Importer
	// Customers runs PSA customer imports; nil fails them with a clear
	// error (not retried).
	Customers CustomerImporter
	// Client enqueues follow-up tasks (lockouts, sends, syncs).
	Client  *Client
	Scanner *Scanner
	Sender  *Sender
	// Channels are the configured channels (default email and SMS):
	// lockout and welcome notices are written for these.
	Channels []store.Channel
	// Now is the clock of lockout and welcome checks (default time.Now).
	Now func() time.Time
	// StaleAfter lets a scheduled run replace a queued or running one
	// without a heartbeat for that long (default importer.DefaultStaleAfter).
	StaleAfter time.Duration
	// Retry is the servers' retry policy (its delays also schedule the
	// rows of a batch that are retried alone).
	Retry   RetryPolicy
	Logger  *slog.Logger
	Metrics *Metrics
}

// NewServeMux registers every task type's handler with d's dependencies,
// behind the middleware that logs each task with its id, counts it, and
// classifies its error once.
func NewServeMux(d Deps) *asynq.ServeMux {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Metrics == nil {
		d.Metrics = NewMetrics(nil)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Channels == nil {
		d.Channels = []store.Channel{store.ChannelEmail, store.ChannelSMS}
	}
	mux := asynq.NewServeMux()
	mux.Use(middleware(d.Logger, d.Metrics))
	mux.Handle(TypeSync, &SyncHandler{Store: d.Store, Importer: d.Importer, Client: d.Client, StaleAfter: d.StaleAfter, Logger: d.Logger, Metrics: d.Metrics})
	mux.Handle(TypeCustomerImport, &CustomerImportHandler{Store: d.Store, Customers: d.Customers, StaleAfter: d.StaleAfter, Logger: d.Logger, Metrics: d.Metrics})
	mux.Handle(TypeScheduledSync, &ScheduledSyncHandler{Store: d.Store, Client: d.Client, StaleAfter: d.StaleAfter, Logger: d.Logger})
	mux.Handle(TypeScan, &ScanHandler{Scanner: d.Scanner, Logger: d.Logger})
	mux.Handle(TypeRequeue, &RequeueHandler{Scanner: d.Scanner, Logger: d.Logger})
	mux.Handle(TypeDispatch, &DispatchHandler{Client: d.Client})
	mux.Handle(TypeSend, &SendHandler{Sender: d.Sender, Client: d.Client, Retry: d.Retry, Logger: d.Logger})
	mux.Handle(TypeLockout, &LockoutHandler{Store: d.Store, Client: d.Client, Channels: d.Channels, Now: d.Now, Logger: d.Logger})
	mux.Handle(TypeWelcome, &WelcomeHandler{Store: d.Store, Client: d.Client, Channels: d.Channels, Now: d.Now, Logger: d.Logger})
	return mux
}

// middleware gives each task a logger with its id, type and queue, logs and
// counts its result, and classifies its error.
func middleware(base *slog.Logger, m *Metrics) asynq.MiddlewareFunc {
	return func(next asynq.Handler) asynq.Handler {
		return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
			id, _ := asynq.GetTaskID(ctx)
			queue, _ := asynq.GetQueueName(ctx)
			retried, _ := asynq.GetRetryCount(ctx)
			log := base.With("task_id", id, "task_type", t.Type(), "queue", queue, "retried", retried)
			start := time.Now()
			err := classify(next.ProcessTask(withLogger(ctx, log), t))
			m.TaskSeconds.WithLabelValues(t.Type()).Observe(time.Since(start).Seconds())
			switch {
			case err == nil:
				m.Tasks.WithLabelValues(t.Type(), "ok").Inc()
				log.Debug("task done", "ms", time.Since(start).Milliseconds())
			case errors.Is(err, asynq.SkipRetry), errors.Is(err, asynq.RevokeTask) || finalAttempt(ctx):
				m.Tasks.WithLabelValues(t.Type(), "failed").Inc()
				log.Error("task failed; not retried", "err", err, "ms", time.Since(start).Milliseconds())
			default:
				m.Tasks.WithLabelValues(t.Type(), "retry").Inc()
				level := slog.LevelWarn
				if _, throttled := Throttled(err); throttled {
					level = slog.LevelInfo
				}
				log.Log(ctx, level, "task failed; it will be retried", "err", err, "ms", time.Since(start).Milliseconds())
			}
			return err
		})
	}
}

// SyncHandler runs the sync of a directory connection for a run row. A run
// left running by a worker that died or shut down resumes from its last
// saved page; a run that failed for a temporary reason is replaced by a new
// run when the task is retried; a finished run is not run again. Lockouts
// the sync saw are queued as lockout tasks.
type SyncHandler struct {
	Store      *store.Store
	Importer   *importer.Importer
	Client     *Client
	StaleAfter time.Duration
	Logger     *slog.Logger
	Metrics    *Metrics
}

// ProcessTask implements asynq.Handler.
func (h *SyncHandler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	var p SyncPayload
	if err := decode(t, &p); err != nil {
		return err
	}
	log := taskLogger(ctx, h.Logger).With("run_id", p.RunID, "connection_id", p.ConnectionID, "tenant_id", p.TenantID)
	run, err := resumableRun(ctx, h.Store, p, log, func(failed store.SyncRun) (store.SyncRun, error) {
		return h.Store.CreateRun(ctx, failed.TenantID, failed.ConnectionID, failed.Mode, failed.Trigger, store.RunQueued, failed.ConfirmRemovals, staleOrDefault(h.StaleAfter))
	})
	if err != nil || run.ID == 0 {
		return err
	}
	if run.ID != p.RunID {
		log = log.With("run_id", run.ID, "replaces_run_id", p.RunID)
	}
	im := *h.Importer
	im.Logger = log
	res, err := im.Sync(ctx, importer.Request{TenantID: p.TenantID, ConnectionID: p.ConnectionID, RunID: run.ID, KeepRunOnCancel: true})
	for _, l := range res.Lockouts {
		if lerr := h.Client.EnqueueLockout(context.WithoutCancel(ctx), p.TenantID, l.EndUserID, l.At); lerr != nil {
			log.Warn("could not queue a lockout notice; the next expiry scan sends it", "end_user_id", l.EndUserID, "err", lerr)
		}
	}
	if res.Run.Status.Finished() {
		h.Metrics.synced("sync", res.Run)
	}
	if errors.Is(err, importer.ErrNotDirectory) {
		return fmt.Errorf("%w: %w", errBadPayload, err)
	}
	return err
}

// resumableRun returns the run the task should (re)start: the payload's run
// when it is queued or running; a new run in place of a failed one when the
// task is being retried (recreate records it); nothing (zero run, nil
// error) when the run is over.
func resumableRun(ctx context.Context, st *store.Store, p SyncPayload, log *slog.Logger, recreate func(failed store.SyncRun) (store.SyncRun, error)) (store.SyncRun, error) {
	run, err := st.Run(ctx, p.TenantID, p.RunID)
	if err != nil {
		return run, err
	}
	if run.ConnectionID != p.ConnectionID {
		return store.SyncRun{}, fmt.Errorf("%w: run %d is not of connection %d", errBadPayload, run.ID, p.ConnectionID)
	}
	if !run.Status.Finished() {
		return run, nil
	}
	retried, _ := asynq.GetRetryCount(ctx)
	if run.Status != store.RunFailed || retried == 0 {
		log.Info("run already finished; nothing to do", "status", run.Status)
		return store.SyncRun{}, nil
	}
	next, err := recreate(run)
	if errors.Is(err, store.ErrRunActive) {
		log.Info("run failed and another run of the connection is active; not retrying", "err", err)
		return store.SyncRun{}, nil
	}
	if err != nil {
		return store.SyncRun{}, err
	}
	log.Info("retrying a failed run as a new run", "new_run_id", next.ID, "previous_error", run.Error)
	return next, nil
}

func staleOrDefault(d time.Duration) time.Duration {
	if d <= 0 {
		return importer.DefaultStaleAfter
	}
	return d
}

// CustomerImportHandler runs a PSA connection's run (customer import,
// contact enrichment, or both) through the CustomerImporter, with the same
// resume and retry rules as SyncHandler.
type CustomerImportHandler struct {
	Store      *store.Store
	Customers  CustomerImporter
	StaleAfter time.Duration
	Logger     *slog.Logger
	Metrics    *Metrics
}

// ProcessTask implements asynq.Handler.
func (h *CustomerImportHandler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	var p SyncPayload
	if err := decode(t, &p); err != nil {
		return err
	}
	log := taskLogger(ctx, h.Logger).With("run_id", p.RunID, "connection_id", p.ConnectionID, "tenant_id", p.TenantID)
	run, err := resumableRun(ctx, h.Store, p, log, func(failed store.SyncRun) (store.SyncRun, error) {
		old, err := h.Store.PSARun(ctx, failed.TenantID, failed.ID)
		if err != nil {
			return store.SyncRun{}, err
		}
		kind := old.Kind
		if kind == store.RunKindUsers {
			kind = store.RunKindPSA
		}
		next, err := h.Store.CreatePSARun(ctx, failed.TenantID, failed.ConnectionID, kind, old.CustomerID, failed.Trigger, store.RunQueued, staleOrDefault(h.StaleAfter))
		return next.SyncRun, err
	})
	if err != nil || run.ID == 0 {
		return err
	}
	if run.ID != p.RunID {
		log = log.With("run_id", run.ID, "replaces_run_id", p.RunID)
	}
	if h.Customers == nil {
		err := fmt.Errorf("%w: customer import from PSA connections is not available in this build", connectors.ErrInvalidConfig)
		if run, serr := h.Store.StartRun(ctx, p.TenantID, run.ID); serr == nil {
			run.Status, run.Error = store.RunFailed, err.Error()
			if ferr := h.Store.FinishRun(context.WithoutCancel(ctx), &run); ferr != nil {
				log.Warn("could not record the failed run", "err", ferr)
			}
		}
		return err
	}
	done, err := h.Customers.ImportCustomers(ctx, CustomerImportRequest{TenantID: p.TenantID, ConnectionID: p.ConnectionID, RunID: run.ID, KeepRunOnCancel: true, Logger: log})
	if done.Status.Finished() {
		h.Metrics.synced("customer_import", done)
	}
	return err
}

// ScheduledSyncHandler turns a connection's schedule tick into a run: it
// records a queued run (for a directory, incremental where the source
// allows it; for a PSA, a customer import followed by the contact
// enrichment) and queues its task. A connection with
// an active run is skipped quietly (its queued run is queued again, in case
// Redis lost it, and so is a directory run whose process stopped: a worker
// resumes it).
type ScheduledSyncHandler struct {
	Store      *store.Store
	Client     *Client
	StaleAfter time.Duration
	Logger     *slog.Logger
}

// ProcessTask implements asynq.Handler.
func (h *ScheduledSyncHandler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	var p ScheduledSyncPayload
	if err := decode(t, &p); err != nil {
		return err
	}
	log := taskLogger(ctx, h.Logger).With("connection_id", p.ConnectionID, "tenant_id", p.TenantID)
	err := h.tick(ctx, p, log)
	if err != nil && finalAttempt(ctx) {
		// Free the schedule's task id at once rather than keep it archived
		// (which would block the next occurrences); the next one retries.
		return fmt.Errorf("%w: %w", err, asynq.RevokeTask)
	}
	return err
}

func (h *ScheduledSyncHandler) tick(ctx context.Context, p ScheduledSyncPayload, log *slog.Logger) error {
	conn, err := h.Store.Connection(ctx, p.TenantID, p.ConnectionID)
	if errors.Is(err, store.ErrNotFound) {
		log.Info("scheduled connection no longer exists")
		return nil
	}
	if err != nil {
		return err
	}
	if conn.Schedule() <= 0 {
		return nil
	}
	var run store.SyncRun
	if conn.Kind.IsDirectory() {
		// Incremental where the source allows it: the importer falls back
		// to a full enumeration when it must.
		run, err = h.Store.CreateRun(ctx, p.TenantID, p.ConnectionID, store.ModeIncremental, "schedule", store.RunQueued, false, staleOrDefault(h.StaleAfter))
	} else {
		var psa store.PSARun
		psa, err = h.Store.CreatePSARun(ctx, p.TenantID, p.ConnectionID, store.RunKindPSA, nil, "schedule", store.RunQueued, staleOrDefault(h.StaleAfter))
		run = psa.SyncRun
	}
	if errors.Is(err, store.ErrRunActive) {
		active, aerr := h.Store.ActiveRun(ctx, p.TenantID, p.ConnectionID)
		switch {
		case aerr != nil:
		case active.Status == store.RunQueued:
			log.Debug("scheduled sync skipped: a run is queued; queuing it again in case it was lost", "active_run_id", active.ID)
			return h.queue(ctx, conn, active)
		case conn.Kind.IsDirectory() && active.Claimable(h.Store.Now()):
			log.Info("the connection's run lost its process (no heartbeat): queuing it again to resume it", "active_run_id", active.ID, "pages", active.Pages)
			return h.queue(ctx, conn, active)
		}
		log.Debug("scheduled sync skipped: a run is active", "err", err)
		return nil
	}
	if err != nil {
		return err
	}
	log.Info("scheduled run queued", "run_id", run.ID)
	return h.queue(ctx, conn, run)
}

func (h *ScheduledSyncHandler) queue(ctx context.Context, conn store.Connection, run store.SyncRun) error {
	if conn.Kind.IsDirectory() {
		return h.Client.EnqueueSync(ctx, run)
	}
	return h.Client.EnqueueCustomerImport(ctx, run)
}

// ScanHandler runs the expiry scan.
type ScanHandler struct {
	Scanner *Scanner
	Logger  *slog.Logger
}

// ProcessTask implements asynq.Handler.
func (h *ScanHandler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	res, err := h.Scanner.Scan(ctx)
	log := taskLogger(ctx, h.Logger)
	if err != nil {
		if finalAttempt(ctx) {
			return fmt.Errorf("%w: %w", err, asynq.RevokeTask)
		}
		return err
	}
	log.Info("expiry scan done", "result", res)
	return nil
}

// RequeueHandler queues the stranded ledger rows again (Scanner.Requeue).
type RequeueHandler struct {
	Scanner *Scanner
	Logger  *slog.Logger
}

// ProcessTask implements asynq.Handler.
func (h *RequeueHandler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	n, err := h.Scanner.Requeue(ctx)
	if err != nil {
		if finalAttempt(ctx) {
			return fmt.Errorf("%w: %w", err, asynq.RevokeTask)
		}
		return err
	}
	if n > 0 {
		taskLogger(ctx, h.Logger).Info("stranded notices queued again", "notices", n)
	}
	return nil
}

// DispatchHandler queues its ledger rows for sending, SendBatch rows per
// send task (a batch already queued is left as it is).
type DispatchHandler struct {
	Client *Client
}

// ProcessTask implements asynq.Handler.
func (h *DispatchHandler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	var p DispatchPayload
	if err := decode(t, &p); err != nil {
		return err
	}
	for start := 0; start < len(p.Notices); start += SendBatch {
		if _, err := h.Client.EnqueueSendBatch(ctx, p.Notices[start:min(start+SendBatch, len(p.Notices))]); err != nil {
			return err
		}
	}
	return nil
}

// SendHandler makes one attempt at each ledger row of its task. A task of
// one row fails as its row does (and asynq retries it as classified); in a
// batch, each row that failed for a temporary reason is queued alone, after
// the delay the retry policy gives its error, and the batch succeeds.
type SendHandler struct {
	Sender *Sender
	Client *Client
	Retry  RetryPolicy
	Logger *slog.Logger
}

// ProcessTask implements asynq.Handler.
func (h *SendHandler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	var p SendPayload
	if err := decode(t, &p); err != nil {
		return err
	}
	if len(p.Notices) == 0 {
		return fmt.Errorf("%w: no notices", errBadPayload)
	}
	single := len(p.Notices) == 1
	results, err := h.Sender.Send(ctx, p.Notices, single && finalAttempt(ctx))
	if err != nil {
		return err
	}
	if single {
		return results[0].Err
	}
	for _, r := range results {
		if r.Outcome != OutcomeRetry {
			continue
		}
		if _, err := h.Client.enqueueRetry(context.WithoutCancel(ctx), r.Ref, h.Retry.Delay(0, r.Err, t)); err != nil {
			// The row is pending again: the batch is retried (its rows
			// that went out are final by now) or the scan re-queues it.
			return err
		}
	}
	return nil
}

// LockoutHandler writes the ledger rows of one lockout, if the end user is
// served and still locked by it, and queues them.
type LockoutHandler struct {
	Store    *store.Store
	Client   *Client
	Channels []store.Channel
	Now      func() time.Time
	Logger   *slog.Logger
}

// ProcessTask implements asynq.Handler.
func (h *LockoutHandler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	var p LockoutPayload
	if err := decode(t, &p); err != nil {
		return err
	}
	log := taskLogger(ctx, h.Logger).With("tenant_id", p.TenantID, "end_user_id", p.EndUserID)
	nc, err := h.Store.NoticeContextOf(ctx, p.TenantID, p.EndUserID)
	if err != nil {
		return err
	}
	occasion := rules.LockoutOccasion(p.LockedOutAt)
	due := false
	for _, n := range rules.Plan(nc.Tenant.Rules(), nc.Customer.Location(nc.Tenant), nc.EndUser.Rules(), h.Now()) {
		due = due || (n.Kind == rules.KindLockout && n.Occasion == occasion)
	}
	if !due {
		log.Info("lockout notice not due: the end user is not served or no longer locked by it", "occasion", occasion)
		return nil
	}
	return record(ctx, h.Store, h.Client, p.TenantID, p.EndUserID, rules.KindLockout, occasion, h.Channels)
}

// WelcomeHandler writes the ledger row of a welcome email and queues it.
type WelcomeHandler struct {
	Store    *store.Store
	Client   *Client
	Channels []store.Channel
	Now      func() time.Time
	Logger   *slog.Logger
}

// ProcessTask implements asynq.Handler.
func (h *WelcomeHandler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	var p WelcomePayload
	if err := decode(t, &p); err != nil {
		return err
	}
	if p.Occasion == "" {
		return fmt.Errorf("%w: welcome without an occasion", errBadPayload)
	}
	hasEmail := false
	for _, ch := range h.Channels {
		hasEmail = hasEmail || ch == store.ChannelEmail
	}
	if !hasEmail {
		return fmt.Errorf("welcome email to end user %d: %w: no email provider is configured", p.EndUserID, connectors.ErrInvalidConfig)
	}
	return record(ctx, h.Store, h.Client, p.TenantID, p.EndUserID, rules.KindWelcome, p.Occasion, []store.Channel{store.ChannelEmail})
}

// record writes the ledger rows of one notice and queues every one of them
// that is not final yet (also those an earlier attempt wrote).
func record(ctx context.Context, st *store.Store, c *Client, tenantID, endUserID int64, kind rules.NoticeKind, occasion string, channels []store.Channel) error {
	rows := make([]store.NewNotice, 0, len(channels))
	for _, ch := range channels {
		rows = append(rows, store.NewNotice{TenantID: tenantID, EndUserID: endUserID, Kind: kind, Occasion: occasion, Channel: ch})
	}
	if _, err := st.CreateNotices(ctx, rows); err != nil {
		return err
	}
	ns, err := st.NoticesOfEndUser(ctx, tenantID, endUserID, 100)
	if err != nil {
		return err
	}
	for _, n := range ns {
		if n.Kind != kind || n.Occasion != occasion || (n.Status != store.NoticePending && n.Status != store.NoticeSending) {
			continue
		}
		if _, err := c.EnqueueSend(ctx, NoticeRef{TenantID: tenantID, ID: n.ID, EndUserID: endUserID, Kind: kind}); err != nil {
			return err
		}
	}
	return nil
}
