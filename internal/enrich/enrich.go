// Package enrich imports customers from a PSA connection (IT Glue
// organizations, Hudu companies, ConnectWise Manage companies) and enriches
// the existing end users of those customers with the email and mobile of the
// PSA's contacts.
//
// A customer import creates or updates customers keyed by (tenant, PSA kind,
// PSA id), links a customer created by hand under the same name, and reports
// what it cannot decide; each page is stored in one transaction with the
// run's progress, so a failed import leaves no half-written page and a retry
// never duplicates. An enrichment reads, customer by customer, all the
// contacts of each customer linked to the connection's PSA, matches them
// with the customer's end users (email first, then first and last name),
// and fills empty (or earlier PSA) email and mobile values under the
// provenance rules, in one transaction per customer. Contacts never create
// end users.
//
// Every run is a sync_runs row (store.PSARun) with per-reason counts and
// their summary in words ("37 mobile numbers filled, 4 contacts ambiguous
// (several end users match)"), per-record problems, and the failure reason.
// The entry points take (ctx, tenantID, connectionID, runID): the CLI runs
// them inline, a worker runs them for a run the API recorded and queued.
package enrich

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strconv"
	"strings"
	"time"

	"selfserve/connectors"
	"selfserve/internal/connection"
	"selfserve/internal/importer"
	"selfserve/internal/secretbox"
	"selfserve/internal/store"
)

// ErrNotPSA: the connection's kind does not list customers and contacts.
var ErrNotPSA = errors.New("connection is not a PSA connection (itglue, hudu or connectwise)")

// Enricher runs customer imports and contact enrichments. Its fields are its
// dependencies; zero tunables mean their defaults.
type Enricher struct {
	Store    *store.Store
	Registry connectors.Registry
	// Secrets opens the connections' sealed secrets (nil when no key is
	// configured: a connection with secrets then fails with what to set).
	Secrets *secretbox.Box
	Logger  *slog.Logger
	// StaleAfter is how long a run may go without a heartbeat before a new
	// run of the connection may replace it (default
	// importer.DefaultStaleAfter).
	StaleAfter time.Duration
	// KeepRunOnInterrupt leaves a run running when it is cancelled or rate
	// limited, so that a worker's retry of the task resumes it where it
	// stopped; otherwise such a run is marked failed.
	KeepRunOnInterrupt bool
	// OnProgress, if set, is called after each committed page (import) or
	// customer (enrichment).
	OnProgress func(store.PSARun)
}

// Start records a new run of kind (store.RunKindCustomers,
// RunKindContacts or RunKindPSA) of the tenant's connection, queued for a
// caller that runs it inline right after (running it claims it).
// customerID, if not nil, narrows an enrichment to that customer.
func (e *Enricher) Start(ctx context.Context, tenantID, connectionID int64, kind store.RunKind, customerID *int64, trigger string) (store.PSARun, error) {
	conn, err := e.Store.Connection(ctx, tenantID, connectionID)
	if err != nil {
		return store.PSARun{}, err
	}
	if conn.Kind.IsDirectory() {
		return store.PSARun{}, fmt.Errorf("connection %q (%s): %w", conn.Name, conn.Kind, ErrNotPSA)
	}
	return e.Store.CreatePSARun(ctx, tenantID, connectionID, kind, customerID, trigger, store.RunQueued, e.staleAfter())
}

// ImportCustomers runs (or resumes) the run runID of the tenant's PSA
// connection as a customer import. The run is recorded as it goes and
// finished whatever happens (unless interrupted with KeepRunOnInterrupt);
// the error is non-nil when it failed. A rate limit is returned wrapped
// (connectors.RetryAfter finds it), as is every connector error.
func (e *Enricher) ImportCustomers(ctx context.Context, tenantID, connectionID, runID int64) (store.PSARun, error) {
	return e.run(ctx, tenantID, connectionID, runID, store.RunKindCustomers)
}

// EnrichContacts runs (or resumes) the run runID of the tenant's PSA
// connection as a contact enrichment of the customers linked to its PSA (or
// the run's one customer), as ImportCustomers does for imports.
func (e *Enricher) EnrichContacts(ctx context.Context, tenantID, connectionID, runID int64) (store.PSARun, error) {
	return e.run(ctx, tenantID, connectionID, runID, store.RunKindContacts)
}

// Sync runs (or resumes) the run runID as a customer import followed, when
// the import succeeds, by a contact enrichment of every linked customer, in
// that one run: what a scheduled or requested PSA sync does.
func (e *Enricher) Sync(ctx context.Context, tenantID, connectionID, runID int64) (store.PSARun, error) {
	return e.run(ctx, tenantID, connectionID, runID, store.RunKindPSA)
}

// runner is one run in progress.
type runner struct {
	e      *Enricher
	tenant store.Tenant
	conn   store.Connection
	src    connectors.Source
	run    *store.PSARun
	log    *slog.Logger
}

func (e *Enricher) run(ctx context.Context, tenantID, connectionID, runID int64, kind store.RunKind) (store.PSARun, error) {
	run, err := e.Store.StartPSARun(ctx, tenantID, runID, kind)
	if err != nil {
		return run, err
	}
	r := &runner{e: e, run: &run, log: e.logger().With("run_id", run.ID, "tenant_id", tenantID, "kind", kind)}
	if run.ConnectionID != connectionID {
		return r.finish(ctx, fmt.Errorf("run %d is not a run of connection %d", run.ID, connectionID))
	}
	if err := r.open(ctx, tenantID, connectionID); err != nil {
		return r.finish(ctx, err)
	}
	defer r.src.Close()
	r.log.Info("PSA run started", "connection", r.conn.Name, "resume", run.Resume)
	phase, _, _ := strings.Cut(run.Resume, ":")
	if kind != store.RunKindContacts && phase != "contacts" {
		if err := r.importCustomers(ctx); err != nil {
			return r.finish(ctx, err)
		}
	}
	if kind != store.RunKindCustomers {
		if err := r.enrichContacts(ctx); err != nil {
			return r.finish(ctx, err)
		}
	}
	return r.finish(ctx, nil)
}

// open loads the run's connection and tenant and opens the source.
func (r *runner) open(ctx context.Context, tenantID, connectionID int64) error {
	var err error
	if r.conn, err = r.e.Store.Connection(ctx, tenantID, connectionID); err != nil {
		return err
	}
	r.log = r.log.With("connection", r.conn.Name)
	if r.conn.Kind.IsDirectory() {
		return fmt.Errorf("connection %q (%s): %w: it imports end users; sync it instead", r.conn.Name, r.conn.Kind, ErrNotPSA)
	}
	if r.tenant, err = r.e.Store.Tenant(ctx, tenantID); err != nil {
		return err
	}
	r.src, err = connection.Opener{Registry: r.e.Registry, Box: r.e.Secrets}.Open(r.conn, r.e.logger())
	if err != nil {
		return err
	}
	return nil
}

// commit stores a page's (or a customer's) writes with the run's progress in
// one transaction. write stores and counts on a copy of the run, which
// replaces the run only once the transaction committed: a failed page
// leaves neither rows nor counts behind.
func (r *runner) commit(ctx context.Context, write func(tx *store.Store, run *store.PSARun) error) error {
	run := *r.run
	run.Counts = maps.Clone(r.run.Counts)
	if run.Counts == nil {
		run.Counts = store.RunCounts{}
	}
	err := r.e.Store.InTx(ctx, func(tx *store.Store) error {
		if err := write(tx, &run); err != nil {
			return err
		}
		run.Summary = Summary(run.Counts)
		return tx.SavePSARunProgress(ctx, &run)
	})
	if err != nil {
		return err
	}
	*r.run = run
	if r.e.OnProgress != nil {
		r.e.OnProgress(run)
	}
	return nil
}

// finish records the run's end: succeeded, failed with the reason, or (when
// interrupted or rate limited and KeepRunOnInterrupt is set) left running
// for a retry to resume.
func (r *runner) finish(ctx context.Context, runErr error) (store.PSARun, error) {
	run := r.run
	ctx = context.WithoutCancel(ctx)
	_, throttled := connectors.RetryAfter(runErr)
	interrupted := errors.Is(runErr, context.Canceled) || errors.Is(runErr, context.DeadlineExceeded) || throttled
	if runErr != nil && interrupted && r.e.KeepRunOnInterrupt {
		r.log.Warn("PSA run interrupted; it resumes when retried", "reason", runErr, "resume", run.Resume)
		if err := r.e.Store.ReleaseRun(ctx, &run.SyncRun); err != nil {
			r.log.Warn("could not release the run; it is resumed once its heartbeat is old", "err", err)
		}
		return *run, r.wrap(runErr)
	}
	switch {
	case runErr != nil:
		run.Status = store.RunFailed
		run.Error = runErr.Error()
		if errors.Is(runErr, context.Canceled) {
			run.Error = "interrupted: " + run.Error
		}
	default:
		run.Status = store.RunSucceeded
	}
	if run.Counts == nil {
		run.Counts = store.RunCounts{}
	}
	run.Summary = Summary(run.Counts)
	if err := r.e.Store.FinishPSARun(ctx, run); err != nil {
		return *run, errors.Join(r.wrap(runErr), err)
	}
	r.log.Info("PSA run finished", "status", run.Status, "summary", run.Summary, "problems", len(run.Problems()), "duration_ms", run.DurationMS)
	if runErr != nil {
		return *run, r.wrap(runErr)
	}
	return *run, nil
}

func (r *runner) wrap(err error) error {
	if err == nil {
		return nil
	}
	what := map[store.RunKind]string{store.RunKindCustomers: "customer import", store.RunKindContacts: "contact enrichment", store.RunKindPSA: "PSA sync"}[r.run.Kind]
	if r.conn.Name == "" {
		return fmt.Errorf("%s run %d: %w", what, r.run.ID, err)
	}
	return fmt.Errorf("%s of connection %q: %w", what, r.conn.Name, err)
}

// resumePosition reads the number after phase in the run's resume
// position ("customers:3", "contacts:42"); 0 when the run is at another
// phase or at the start.
func (r *runner) resumePosition(phase string) int64 {
	p, n, ok := strings.Cut(r.run.Resume, ":")
	if !ok || p != phase {
		return 0
	}
	v, _ := strconv.ParseInt(n, 10, 64)
	return v
}

func (e *Enricher) logger() *slog.Logger {
	if e.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return e.Logger
}

func (e *Enricher) staleAfter() time.Duration {
	if e.StaleAfter <= 0 {
		return importer.DefaultStaleAfter
	}
	return e.StaleAfter
}
