// Package importer is the sync engine: it runs one connection's sync from
// its source into the store, page by page, whatever the connector.
//
// A run streams pages from the source; each page is normalised (emails
// checked, mobiles to E.164 in the customer's region) and committed in one
// transaction together with the run's progress and, when the page carries
// one, the connection's cursor, so an interrupted run resumes and a
// technician sees progress. Removals are decided only after a complete,
// error-free full enumeration: an invalid record counts as seen when the
// connector could read its key, and one without a key means nobody is
// removed (the run says why). A run that would remove more than the
// allowed share of users removes nothing and asks for confirmation.
// ApplyPage stores a page: it decides each user's fields (package rules:
// provenance and hybrid merging) and writes them through narrow store
// methods in the page's transaction. Hybrid identities are joined as pages
// are stored: an Entra user whose onPremisesImmutableId is an AD end user's
// of the same customer becomes a link of that end user, whichever
// connection syncs first (linker.go); the run counts them as linked.
// Privilege (connectors.User.Privileged) is stored with each user; a last
// page that carries the source's complete set of privileged accounts
// (UserPage.Privileged) reconciles the connection's other end users too.
// Every end user that becomes or stops being privileged gets an audit entry
// "end_user.privileged" (actor "sync:<connection>") in its page's
// transaction; users the source could not classify are reported as
// problems of the run.
// The engine needs no Redis: the CLI runs it inline, workers run it from a
// queue.
package importer

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"strconv"
	"time"
	"unicode/utf8"

	"selfserve/connectors"
	"selfserve/internal/connection"
	"selfserve/internal/rules"
	"selfserve/internal/secretbox"
	"selfserve/internal/store"
)

// DefaultStaleAfter is the default of Importer.StaleAfter.
const DefaultStaleAfter = 15 * time.Minute

// ErrNotDirectory: the connection's kind does not import end users.
var ErrNotDirectory = errors.New("connection does not import end users")

// Importer runs syncs. Its fields are its dependencies and tunables, taken
// as given (the configuration applies defaults).
type Importer struct {
	Store    *store.Store
	Registry connectors.Registry
	Secrets  *secretbox.Box
	Logger   *slog.Logger
	// MaxRemovalShare is the share (0..1) of a connection's users a full run
	// may remove without confirmation: 0 holds every removal for
	// confirmation (config.Config.MaxRemovalShare, default 0.3).
	MaxRemovalShare float64
	// StaleAfter is how long an active run that no process can resume (one
	// of another mode) may go without a heartbeat before a new run replaces
	// it (default 15 minutes). A run this sync can resume is taken over as
	// soon as its heartbeat is store.HeartbeatTimeout old.
	StaleAfter time.Duration
	// HeartbeatEvery is how often a running sync renews its lease (default
	// store.HeartbeatEvery).
	HeartbeatEvery time.Duration
	// Remote hands runs of agent connections to their agents (nil: such
	// runs are refused, as in an inline run).
	Remote RemoteSyncer
}

// Request asks for one sync.
type Request struct {
	TenantID     int64
	ConnectionID int64
	// RunID runs (or resumes) an existing run, as created by the API before
	// enqueueing; 0 creates one.
	RunID int64
	// Full forces a full enumeration even when an incremental cursor exists.
	Full bool
	// Trigger says who asked: "schedule", "api", "cli".
	Trigger string
	// ConfirmRemovals lets the run remove more than MaxRemovalShare.
	ConfirmRemovals bool
	// KeepRunOnCancel leaves a cancelled or throttled run running, its
	// lease released, for the next sync of the connection to resume (a
	// worker's retry of the task, the next inline import); otherwise it is
	// marked failed.
	KeepRunOnCancel bool
	// OnProgress, if set, is called after each committed page.
	OnProgress func(store.SyncRun)
	// OnTakeOver, if set, is called when the sync takes over the
	// connection's run whose process stopped (with the run as it was left),
	// before resuming it.
	OnTakeOver func(store.SyncRun)
}

// Result is what a finished sync reports.
type Result struct {
	Run store.SyncRun
	// Lockouts are the not-locked → locked transitions the run saw, for
	// lockout notices.
	Lockouts []store.Lockout
}

// target bundles what a run needs to know about its connection.
type target struct {
	tenant   store.Tenant
	customer store.Customer
	conn     store.Connection
	source   rules.Source
}

// Sync runs one sync of a connection and returns its run. The error is
// non-nil when the run failed; the run is recorded either way.
func (im *Importer) Sync(ctx context.Context, req Request) (Result, error) {
	t, err := im.target(ctx, req)
	if err != nil {
		return Result{}, err
	}
	if t.conn.Kind == connectors.KindAgent {
		return im.syncRemote(ctx, req, t)
	}
	src, err := im.open(t.conn)
	if err != nil {
		return Result{}, err
	}
	defer src.Close()
	users, ok := src.(connectors.UserSource)
	if !ok {
		return Result{}, fmt.Errorf("connection %q (%s): %w", t.conn.Name, t.conn.Kind, ErrNotDirectory)
	}
	delta, canDelta := src.(connectors.DeltaSource)

	mode := store.ModeFull
	if !req.Full && canDelta && t.conn.Cursor != "" {
		mode = store.ModeIncremental
	}
	run, prev, err := im.claim(ctx, req, mode)
	if err != nil {
		return Result{}, err
	}
	if run.Mode == store.ModeFull {
		mode = store.ModeFull
	}
	run.Mode = mode
	log := im.logger().With("run_id", run.ID, "connection", t.conn.Name, "tenant_id", t.tenant.ID, "mode", mode)
	if prev != nil {
		log.Warn("taking over a run whose process stopped: resuming it", "started_at", prev.StartedAt, "pages", prev.Pages, "last_heartbeat", prev.HeartbeatAt)
		if req.OnTakeOver != nil {
			req.OnTakeOver(*prev)
		}
	}
	// A run resumed without a position (the source cannot resume, or the
	// run is incremental: it lists the changes since the same cursor again)
	// reads its source from the start: its listing counts start again.
	if run.Pages > 0 && (mode == store.ModeIncremental || run.Resume == "") {
		log.Info("the source cannot resume where the run stopped: listing it again", "pages_before", run.Pages)
		run.RestartListing()
	}
	log.Info("sync started", "resume", run.Resume != "")

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stopBeat := im.heartbeat(ctx, &run, cancel, log)
	r := &runner{im: im, t: t, run: &run, log: log, onProgress: req.OnProgress}
	ctx = connectors.WithThrottleSubject(ctx, "users of "+t.conn.Name)
	if mode == store.ModeIncremental {
		err = r.consume(ctx, delta.Changes(ctx, t.conn.Cursor))
	} else {
		resume := run.Resume
		err = r.consume(ctx, users.Users(ctx, resume))
		if resume != "" && r.committed == 0 && errors.Is(err, connectors.ErrResyncRequired) {
			log.Warn("the source cannot resume where the run stopped: listing it again", "reason", err)
			run.RestartListing()
			err = r.consume(ctx, users.Users(ctx, ""))
		}
	}
	if mode == store.ModeIncremental && errors.Is(err, connectors.ErrResyncRequired) {
		log.Warn("incremental cursor rejected: running a full sync", "reason", err)
		run.Mode, run.Resume, run.Unidentified = store.ModeFull, "", 0
		err = r.consume(ctx, users.Users(ctx, ""))
	}
	if err == nil && run.Mode == store.ModeFull {
		err = r.decideRemovals(ctx, req.ConfirmRemovals || run.ConfirmRemovals)
	}
	stopBeat()
	return r.finish(ctx, err, req.KeepRunOnCancel)
}

// claim returns the run this sync works on, holding its lease: the
// request's run; else the connection's active run when no live process
// holds it and it does what was asked (a full run, when a full one was
// asked), taken over and returned with its state before (prev); else a new
// run. A run held by a live process is a *store.ActiveRunError.
func (im *Importer) claim(ctx context.Context, req Request, mode store.RunMode) (run store.SyncRun, prev *store.SyncRun, err error) {
	if req.RunID != 0 {
		run, err = im.Store.StartRun(ctx, req.TenantID, req.RunID)
		return run, nil, err
	}
	active, err := im.Store.ActiveRun(ctx, req.TenantID, req.ConnectionID)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return run, nil, err
	case active.Claimable(im.Store.Now()) && (mode != store.ModeFull || active.Mode == store.ModeFull):
		run, err = im.Store.StartRun(ctx, req.TenantID, active.ID)
		if err == nil {
			return run, &active, nil
		}
		if !errors.Is(err, store.ErrConflict) {
			return run, nil, err
		}
		// Another process took it first: CreateRun says which.
	}
	run, err = im.Store.CreateRun(ctx, req.TenantID, req.ConnectionID, mode, req.Trigger, store.RunRunning, req.ConfirmRemovals, im.staleAfter())
	return run, nil, err
}

// heartbeat renews the run's lease every HeartbeatEvery until the returned
// function is called. When another process took the run over, it cancels
// the run with store.ErrLeaseLost.
func (im *Importer) heartbeat(ctx context.Context, run *store.SyncRun, cancel context.CancelCauseFunc, log *slog.Logger) (stop func()) {
	every := im.HeartbeatEvery
	if every <= 0 {
		every = store.HeartbeatEvery
	}
	beat := *run // the lease and ids; the runner owns *run
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			err := im.Store.BeatRun(ctx, &beat)
			switch {
			case errors.Is(err, store.ErrLeaseLost):
				log.Warn("another process took the run over; stopping")
				cancel(err)
				return
			case err != nil && ctx.Err() == nil:
				log.Warn("heartbeat failed; retrying", "err", err)
			}
		}
	}()
	return func() { close(done); <-stopped }
}

func (im *Importer) target(ctx context.Context, req Request) (target, error) {
	var t target
	var err error
	if t.conn, err = im.Store.Connection(ctx, req.TenantID, req.ConnectionID); err != nil {
		return t, err
	}
	if !t.conn.Kind.IsDirectory() {
		return t, fmt.Errorf("connection %q (%s): %w", t.conn.Name, t.conn.Kind, ErrNotDirectory)
	}
	if t.conn.CustomerID == nil {
		return t, fmt.Errorf("connection %q: %w: a directory connection must belong to a customer", t.conn.Name, connectors.ErrInvalidConfig)
	}
	if t.tenant, err = im.Store.Tenant(ctx, req.TenantID); err != nil {
		return t, err
	}
	if t.customer, err = im.Store.Customer(ctx, req.TenantID, *t.conn.CustomerID); err != nil {
		return t, err
	}
	t.source = SourceOf(t.conn.Kind)
	if t.conn.Kind == connectors.KindAgent {
		t.source, err = agentSource(t.conn)
	}
	return t, err
}

// SourceOf maps a directory connector kind to the end users' source.
func SourceOf(kind connectors.Kind) rules.Source {
	switch kind {
	case connectors.KindAD:
		return rules.SourceAD
	case connectors.KindAzure:
		return rules.SourceAzure
	default:
		return rules.SourceLocal
	}
}

// open decrypts the connection's secrets and opens its source.
func (im *Importer) open(conn store.Connection) (connectors.Source, error) {
	return connection.Opener{Registry: im.Registry, Box: im.Secrets}.Open(conn, im.logger())
}

func (im *Importer) logger() *slog.Logger {
	if im.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return im.Logger
}

func (im *Importer) staleAfter() time.Duration {
	if im.StaleAfter <= 0 {
		return DefaultStaleAfter
	}
	return im.StaleAfter
}

// runner is one run in progress.
type runner struct {
	im         *Importer
	t          target
	run        *store.SyncRun
	log        *slog.Logger
	lockouts   []store.Lockout
	onProgress func(store.SyncRun)
	// committed counts the pages this process committed.
	committed int
}

// prepared is a page read from the source and normalised, ready to commit.
type prepared struct {
	page     connectors.UserPage
	recs     []store.UserRecord
	problems []store.Problem
	err      error
}

// consume commits pages as they come. Reading and normalising the next page
// (network and CPU) runs in a goroutine while the current page is being
// committed (database), so a run takes about as long as the slower of the
// two, not their sum; at most two pages are in memory at once.
func (r *runner) consume(ctx context.Context, pages iter.Seq2[connectors.UserPage, error]) error {
	ctx, cancel := context.WithCancel(ctx)
	ready := make(chan prepared, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(ready)
		for page, err := range pages {
			p := prepared{page: page, err: err}
			if err == nil {
				p.recs, p.problems = Normalize(page.Users, r.t.customer.DefaultRegion)
			}
			select {
			case ready <- p:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	// Stop the reader and wait for it before returning, so that nothing
	// touches the source after the caller closes it.
	defer func() { cancel(); <-done }()
	for p := range ready {
		if p.err != nil {
			return p.err
		}
		if err := r.commit(ctx, p); err != nil {
			return err
		}
	}
	return context.Cause(ctx)
}

// commit stores a prepared page with the run's progress in one transaction.
func (r *runner) commit(ctx context.Context, p prepared) error {
	page, recs := p.page, p.recs
	run := *r.run
	run.Pages++
	run.Processed += len(page.Users) + len(page.Invalid)
	run.Invalid += len(page.Invalid) + (len(page.Users) - len(recs))
	run.AddProblems(page.Invalid...)
	var seen []string // keys of invalid records: their end users were not dropped from the source
	for _, inv := range page.Invalid {
		if inv.ExternalID == "" {
			run.Unidentified++
		} else if run.Mode == store.ModeFull {
			seen = append(seen, inv.ExternalID)
		}
	}
	run.AddProblems(p.problems...)
	if page.Resume != "" || run.Mode == store.ModeFull {
		run.Resume = page.Resume
	}
	var res store.PageResult
	err := r.im.Store.InTx(ctx, func(tx *store.Store) error {
		target := store.PageTarget{
			TenantID:        r.t.tenant.ID,
			CustomerID:      r.t.customer.ID,
			ConnectionID:    r.t.conn.ID,
			RunID:           run.ID,
			Source:          r.t.source,
			EnableSelfServe: r.t.conn.EnableSelfServe,
		}
		var err error
		res, err = ApplyPage(ctx, tx, target, recs, page.Removed)
		if err != nil {
			return err
		}
		if page.Privileged != nil {
			changes, err := tx.ReconcilePrivileged(ctx, target, page.Privileged)
			if err != nil {
				return err
			}
			res.Privileges = append(res.Privileges, changes...)
		}
		if err := r.auditPrivileges(ctx, tx, res.Privileges); err != nil {
			return err
		}
		if err := tx.MarkSeenByExternalID(ctx, target, seen); err != nil {
			return err
		}
		run.Created += res.Created
		run.Updated += res.Updated
		run.Unchanged += res.Unchanged
		run.Removed += res.Removed
		run.Linked += res.Linked
		if err := tx.SaveRunProgress(ctx, &run); err != nil {
			return err
		}
		if page.Cursor != "" {
			return tx.SetConnectionCursor(ctx, r.t.tenant.ID, r.t.conn.ID, page.Cursor)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store page %d: %w", run.Pages, err)
	}
	*r.run = run
	r.committed++
	r.lockouts = append(r.lockouts, res.Lockouts...)
	r.log.Debug("page committed", "page", run.Pages, "processed", run.Processed, "created", res.Created, "updated", res.Updated, "linked", res.Linked)
	if r.onProgress != nil {
		r.onProgress(run)
	}
	return nil
}

// auditPrivileges writes an audit entry for each end user that became or
// stopped being privileged, in the page's transaction.
func (r *runner) auditPrivileges(ctx context.Context, tx *store.Store, changes []store.PrivilegeChange) error {
	actor := "sync:" + r.t.conn.Name
	for _, c := range changes {
		if err := tx.Audit(ctx, store.AuditRecord{
			TenantID:   r.t.tenant.ID,
			Actor:      actor,
			Action:     "end_user.privileged",
			ObjectType: "end_user",
			ObjectID:   strconv.FormatInt(c.EndUserID, 10),
			Before:     c.Before,
			After:      c.After,
		}); err != nil {
			return err
		}
	}
	return nil
}

// decideRemovals runs after a complete full enumeration. Invalid records
// with a key were counted as seen; one without a key may be any end user, so
// then nobody is removed.
func (r *runner) decideRemovals(ctx context.Context, confirmed bool) error {
	present, unseen, err := r.im.Store.RemovalCheck(ctx, r.t.tenant.ID, r.t.conn.ID, r.run.ID)
	if err != nil || unseen == 0 {
		return err
	}
	if r.run.Unidentified > 0 {
		r.run.Error = fmt.Sprintf("no end user was removed: %d end users were not seen in the source, but %d record(s) could not be read far enough to tell which end user they are (see the problems); removals wait for a full run that reads every record",
			unseen, r.run.Unidentified)
		r.log.Warn("removals skipped: unidentified records", "not_seen", unseen, "unidentified", r.run.Unidentified)
		return nil
	}
	share := float64(unseen) / float64(present)
	if share > r.im.MaxRemovalShare && !confirmed {
		r.run.PendingRemovals = unseen
		r.log.Warn("removals held for confirmation", "would_remove", unseen, "present", present, "max_share", r.im.MaxRemovalShare)
		return nil
	}
	n, err := r.im.Store.RemoveUnseen(ctx, r.t.tenant.ID, r.t.conn.ID, r.run.ID)
	r.run.Removed += n
	r.run.PendingRemovals = 0
	return err
}

func (r *runner) finish(ctx context.Context, runErr error, keepOnCancel bool) (Result, error) {
	run := r.run
	if cause := context.Cause(ctx); runErr != nil && errors.Is(cause, store.ErrLeaseLost) {
		runErr = cause
	}
	ctx = context.WithoutCancel(ctx)
	switch {
	case errors.Is(runErr, store.ErrLeaseLost):
		r.log.Warn("sync stopped: another process took the run over", "pages", run.Pages)
		return Result{Run: *run, Lockouts: r.lockouts}, fmt.Errorf("sync of connection %q: %w", r.t.conn.Name, runErr)
	case runErr != nil && keepOnCancel && (errors.Is(runErr, context.Canceled) || throttled(runErr)):
		r.log.Warn("sync interrupted; it resumes when retried", "pages", run.Pages, "reason", runErr)
		if err := r.im.Store.ReleaseRun(ctx, run); err != nil {
			r.log.Warn("could not release the run; it is resumed once its heartbeat is old", "err", err)
		}
		return Result{Run: *run, Lockouts: r.lockouts}, runErr
	case runErr != nil:
		run.Status = store.RunFailed
		run.Error = runErr.Error()
		if errors.Is(runErr, context.Canceled) {
			run.Error = "interrupted: " + run.Error
		}
	case run.PendingRemovals > 0:
		run.Status = store.RunNeedsConfirmation
		run.Error = fmt.Sprintf("%d end users are no longer in the source: more than %.0f%% of them, so none was removed; run again with removals confirmed to remove them",
			run.PendingRemovals, r.im.MaxRemovalShare*100)
	default:
		run.Status = store.RunSucceeded
	}
	if err := r.im.Store.FinishRun(ctx, run); err != nil {
		return Result{Run: *run, Lockouts: r.lockouts}, errors.Join(runErr, err)
	}
	r.log.Info("sync finished", "status", run.Status, "created", run.Created, "updated", run.Updated, "unchanged", run.Unchanged,
		"linked", run.Linked, "removed", run.Removed, "invalid", run.Invalid, "lockouts", len(r.lockouts), "duration_ms", run.DurationMS)
	if runErr != nil {
		return Result{Run: *run, Lockouts: r.lockouts}, fmt.Errorf("sync of connection %q: %w", r.t.conn.Name, runErr)
	}
	return Result{Run: *run, Lockouts: r.lockouts}, nil
}

// Limits of imported text, in bytes. A record whose key is longer is
// refused (cut, it could collide with another, and could never name the same
// end user again); a longer name is cut at the limit; a longer email or
// mobile is unusable (the stored value is kept). Each is a problem of the
// record naming the field.
const (
	MaxKeyBytes    = 1024 // external_id, username, upn, immutable_id
	MaxNameBytes   = 256  // first_name, last_name, display_name, privileged_reason
	MaxEmailBytes  = 320
	MaxMobileBytes = 64
	maxRefBytes    = 200 // how much of a record's reference a problem quotes
)

// throttled reports whether err is a source's rate limit.
func throttled(err error) bool {
	_, ok := connectors.RetryAfter(err)
	return ok
}

// Normalize checks and normalises a page's users for storage: text within
// the limits above, emails must be bare addresses and mobiles become E.164
// in region. An unusable email or mobile is reported as a problem and marked
// so the stored value is kept; a user whose external id repeats within the
// page is dropped and reported; a user the source could not classify as
// privileged or not is reported (and stored as privileged).
func Normalize(users []connectors.User, region string) ([]store.UserRecord, []store.Problem) {
	recs := make([]store.UserRecord, 0, len(users))
	var problems []store.Problem
	seen := make(map[string]bool, len(users))
	for _, u := range users {
		ref := u.Ref
		if ref == "" {
			ref = u.ExternalID
		}
		ref = cut(ref, maxRefBytes)
		if field, n := oversizedKey(u); field != "" {
			problems = append(problems, store.Problem{Ref: ref, Reason: fmt.Sprintf("%s: %d bytes, more than %d: the record was skipped", field, n, MaxKeyBytes)})
			continue
		}
		if seen[u.ExternalID] {
			problems = append(problems, store.Problem{Ref: ref, Reason: fmt.Sprintf("external id %q appears twice in one page; the second was skipped", u.ExternalID)})
			continue
		}
		seen[u.ExternalID] = true
		for _, f := range []struct {
			name  string
			value *string
		}{{"first_name", &u.FirstName}, {"last_name", &u.LastName}, {"display_name", &u.DisplayName}, {"privileged_reason", &u.PrivilegedReason}} {
			if n := len(*f.value); n > MaxNameBytes {
				*f.value = cut(*f.value, MaxNameBytes)
				problems = append(problems, store.Problem{Ref: ref, Reason: fmt.Sprintf("%s: %d bytes, more than %d: cut to the first %d", f.name, n, MaxNameBytes, len(*f.value))})
			}
		}
		if u.PrivilegeUnknown {
			problems = append(problems, store.Problem{Ref: ref, Reason: "could not be classified as privileged or not, so treated as privileged until it can: " + u.PrivilegedReason})
		}
		rec := store.UserRecord{User: u}
		if n := len(u.Email); n > MaxEmailBytes {
			reason := fmt.Sprintf("%d bytes, more than %d: not used", n, MaxEmailBytes)
			rec.EmailInvalid, rec.EmailRefused, rec.Email = true, reason, cut(u.Email, MaxEmailBytes) // kept as the refused value
			problems = append(problems, store.Problem{Ref: ref, Reason: "email: " + reason})
		} else if email, err := rules.NormalizeEmail(u.Email); err != nil {
			rec.EmailInvalid, rec.EmailRefused = true, err.Error()
			problems = append(problems, store.Problem{Ref: ref, Reason: "email: " + err.Error()})
		} else {
			rec.Email = email
		}
		if n := len(u.Mobile); n > MaxMobileBytes {
			reason := fmt.Sprintf("%d bytes, more than %d: not used", n, MaxMobileBytes)
			rec.MobileInvalid, rec.MobileRefused, rec.Mobile = true, reason, cut(u.Mobile, MaxMobileBytes)
			problems = append(problems, store.Problem{Ref: ref, Reason: "mobile: " + reason})
		} else if mobile, err := rules.NormalizePhone(u.Mobile, region); err != nil {
			rec.MobileInvalid, rec.MobileRefused = true, err.Error()
			problems = append(problems, store.Problem{Ref: ref, Reason: "mobile: " + err.Error()})
		} else {
			rec.Mobile = mobile
		}
		recs = append(recs, rec)
	}
	return recs, problems
}

// oversizedKey names the first key field of u longer than MaxKeyBytes, with
// its length.
func oversizedKey(u connectors.User) (string, int) {
	for _, f := range []struct{ name, value string }{{"external_id", u.ExternalID}, {"username", u.Username}, {"upn", u.UPN}, {"immutable_id", u.ImmutableID}} {
		if len(f.value) > MaxKeyBytes {
			return f.name, len(f.value)
		}
	}
	return "", 0
}

// cut shortens s to at most n bytes without splitting a UTF-8 sequence.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
