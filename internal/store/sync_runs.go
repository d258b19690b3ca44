package store

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

const runColumns = `id, tenant_id, connection_id, mode, trigger, status, resume, pages, processed, created, updated, unchanged, removed, linked, invalid,
	unidentified, pending_removals, confirm_removals, problems, error, created_at, started_at, heartbeat_at, finished_at, duration_ms, lease`

// MaxRunProblems caps the problems a run keeps (the counts stay exact).
const MaxRunProblems = 500

// The lease of a running run: its holder beats the heartbeat every
// HeartbeatEvery; a run whose heartbeat is older than HeartbeatTimeout has
// lost its holder (a killed process, a worker whose Redis lost the task) and
// the next process that starts it takes it over.
const (
	HeartbeatEvery   = 5 * time.Second
	HeartbeatTimeout = 30 * time.Second
)

// ErrRunActive: the connection already has a queued or running sync.
var ErrRunActive = fmt.Errorf("%w: a sync of this connection is already queued or running", ErrConflict)

// ErrLeaseLost: another process took the run over (this one's heartbeat
// stopped for longer than HeartbeatTimeout); the old holder must stop
// without writing.
var ErrLeaseLost = errors.New("the run was taken over by another process")

// ActiveRunError is ErrRunActive with the run that is active: when it
// started, its progress and its last heartbeat.
type ActiveRunError struct {
	Run SyncRun
	// At is when the run was found active (the store's clock).
	At time.Time
}

// Error implements error.
func (e *ActiveRunError) Error() string {
	r := e.Run
	if r.Status == RunQueued {
		return fmt.Sprintf("%v (run %d, %s, queued since %s)", ErrRunActive, r.ID, r.Mode, r.CreatedAt.UTC().Format(time.RFC3339))
	}
	started := r.CreatedAt
	if r.StartedAt != nil {
		started = *r.StartedAt
	}
	beat := "never"
	if r.HeartbeatAt != nil {
		beat = fmt.Sprintf("%s ago", e.At.Sub(*r.HeartbeatAt).Round(time.Second))
	}
	return fmt.Sprintf("%v (run %d, %s, running since %s: %d pages, %d processed; last heartbeat %s; a run whose heartbeat stops for %s is taken over by the next sync)",
		ErrRunActive, r.ID, r.Mode, started.UTC().Format(time.RFC3339), r.Pages, r.Processed, beat, HeartbeatTimeout)
}

// Unwrap makes the error ErrRunActive (and so ErrConflict).
func (e *ActiveRunError) Unwrap() error { return ErrRunActive }

// Claimable reports whether a process may start the run now (StartRun): it
// is queued, or running without a live holder (its lease released, or no
// heartbeat for HeartbeatTimeout before now).
func (r SyncRun) Claimable(now time.Time) bool {
	switch r.Status {
	case RunQueued:
		return true
	case RunRunning:
		return r.Lease == "" || r.HeartbeatAt == nil || now.Sub(*r.HeartbeatAt) > HeartbeatTimeout
	}
	return false
}

// Now is the store's clock (see SetClock).
func (s *Store) Now() time.Time { return s.stamp() }

// CreateRun records a new run of the tenant's connection, queued (for a
// worker) or running (inline, holding its lease). Only one run per
// connection may be queued or running: another is an *ActiveRunError
// (ErrRunActive), unless the active one stopped sending heartbeats for
// staleAfter, in which case it is marked failed (abandoned) and the new run
// takes its place. A caller that can resume the active run takes it over
// with StartRun instead when it is Claimable.
func (s *Store) CreateRun(ctx context.Context, tenantID, connectionID int64, mode RunMode, trigger string, status RunStatus, confirmRemovals bool, staleAfter time.Duration) (SyncRun, error) {
	var run SyncRun
	err := s.InTx(ctx, func(tx *Store) error {
		if _, err := tx.Connection(ctx, tenantID, connectionID); err != nil {
			return err
		}
		now := tx.stamp()
		if staleAfter > 0 {
			cutoff := now.Add(-staleAfter)
			if _, err := tx.exec(ctx, `UPDATE sync_runs SET status = 'failed', error = 'abandoned: no progress since ' || COALESCE(CAST(heartbeat_at AS TEXT), CAST(created_at AS TEXT)), finished_at = ?
				WHERE tenant_id = ? AND connection_id = ? AND status IN ('queued', 'running') AND COALESCE(heartbeat_at, created_at) < ?`,
				now, tenantID, connectionID, cutoff); err != nil {
				return fmt.Errorf("expire abandoned runs: %w", err)
			}
		}
		// Look first: on PostgreSQL a failed insert aborts the transaction,
		// after which the active run could not be read to name it.
		if active, err := tx.ActiveRun(ctx, tenantID, connectionID); err == nil {
			return &ActiveRunError{Run: active, At: now}
		} else if !errors.Is(err, ErrNotFound) {
			return err
		}
		var started any
		lease := ""
		if status == RunRunning {
			started, lease = now, rand.Text()
		}
		id, err := tx.insertID(ctx, `INSERT INTO sync_runs (tenant_id, connection_id, mode, trigger, status, confirm_removals, created_at, started_at, heartbeat_at, lease) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			tenantID, connectionID, mode, trigger, status, confirmRemovals, now, started, now, lease)
		if isUniqueViolation(err) {
			return ErrRunActive // another run was recorded meanwhile
		}
		if err != nil {
			return fmt.Errorf("create run: %w", err)
		}
		run, err = tx.Run(ctx, tenantID, id)
		return err
	})
	return run, err
}

// StartRun claims a run for this process: a queued run becomes running, a
// running one without a live holder (see Claimable) is taken over. The run
// returned holds a new lease, which SaveRunProgress, BeatRun and FinishRun
// check. A run held by a live process is an *ActiveRunError; a finished
// one is ErrConflict.
func (s *Store) StartRun(ctx context.Context, tenantID, id int64) (SyncRun, error) {
	now := s.stamp()
	lease := rand.Text()
	res, err := s.exec(ctx, `UPDATE sync_runs SET status = 'running', started_at = COALESCE(started_at, ?), heartbeat_at = ?, lease = ?
		WHERE tenant_id = ? AND id = ? AND (status = 'queued' OR (status = 'running' AND (lease = '' OR heartbeat_at IS NULL OR heartbeat_at < ?)))`,
		now, now, lease, tenantID, id, now.Add(-HeartbeatTimeout))
	if err != nil {
		return SyncRun{}, fmt.Errorf("start run %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		run, err := s.Run(ctx, tenantID, id)
		if err != nil {
			return run, err
		}
		if run.Status == RunRunning {
			return run, &ActiveRunError{Run: run, At: now}
		}
		return run, fmt.Errorf("run %d is already %s: %w", id, run.Status, ErrConflict)
	}
	return s.Run(ctx, tenantID, id)
}

// BeatRun renews the run's heartbeat while its holder works. It is
// ErrLeaseLost when another process took the run over (or it finished).
func (s *Store) BeatRun(ctx context.Context, run *SyncRun) error {
	now := s.stamp()
	res, err := s.exec(ctx, `UPDATE sync_runs SET heartbeat_at = ? WHERE tenant_id = ? AND id = ? AND lease = ? AND status = 'running'`,
		now, run.TenantID, run.ID, run.Lease)
	if err != nil {
		return fmt.Errorf("heartbeat of run %d: %w", run.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("run %d: %w", run.ID, ErrLeaseLost)
	}
	run.HeartbeatAt = &now
	return nil
}

// ReleaseRun gives up the lease of a run left running to be resumed (its
// task goes back to the queue): the next StartRun takes it at once instead
// of waiting for HeartbeatTimeout.
func (s *Store) ReleaseRun(ctx context.Context, run *SyncRun) error {
	if _, err := s.exec(ctx, `UPDATE sync_runs SET lease = '' WHERE tenant_id = ? AND id = ? AND lease = ? AND status = 'running'`,
		run.TenantID, run.ID, run.Lease); err != nil {
		return fmt.Errorf("release run %d: %w", run.ID, err)
	}
	run.Lease = ""
	return nil
}

// SaveRunProgress writes the run's counters, resume position and problems
// and beats its heartbeat. Call it in the transaction that stored the page:
// it is ErrLeaseLost (and the page must not be committed) when the run is no
// longer this holder's.
func (s *Store) SaveRunProgress(ctx context.Context, run *SyncRun) error {
	now := s.stamp()
	res, err := s.exec(ctx, `UPDATE sync_runs SET mode = ?, resume = ?, pages = ?, processed = ?, created = ?, updated = ?, unchanged = ?, removed = ?, linked = ?, invalid = ?,
		unidentified = ?, pending_removals = ?, problems = ?, heartbeat_at = ? WHERE tenant_id = ? AND id = ? AND lease = ?`,
		run.Mode, run.Resume, run.Pages, run.Processed, run.Created, run.Updated, run.Unchanged, run.Removed, run.Linked, run.Invalid,
		run.Unidentified, run.PendingRemovals, run.problemsJSON(), now, run.TenantID, run.ID, run.Lease)
	if err != nil {
		return fmt.Errorf("save progress of run %d: %w", run.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("save progress of run %d: %w", run.ID, ErrLeaseLost)
	}
	run.HeartbeatAt = &now
	return nil
}

// FinishRun writes the run's final state (ErrLeaseLost when the run is no
// longer this holder's).
func (s *Store) FinishRun(ctx context.Context, run *SyncRun) error {
	now := s.stamp()
	run.FinishedAt = &now
	if run.StartedAt != nil {
		run.DurationMS = now.Sub(*run.StartedAt).Milliseconds()
	}
	if err := s.SaveRunProgress(ctx, run); err != nil {
		return err
	}
	_, err := s.exec(ctx, `UPDATE sync_runs SET status = ?, error = ?, finished_at = ?, duration_ms = ?, lease = '' WHERE tenant_id = ? AND id = ? AND lease = ?`,
		run.Status, run.Error, now, run.DurationMS, run.TenantID, run.ID, run.Lease)
	if err != nil {
		return fmt.Errorf("finish run %d: %w", run.ID, err)
	}
	return nil
}

// RestartListing resets what a run counts of its listing (pages, records
// processed and invalid, problems, resume position) when the run reads its
// source again from the start (it could not resume where it stopped), so
// that each record is counted once. What the run changed stays counted:
// the store does not count again an end user the run has seen (see
// PageResult).
func (r *SyncRun) RestartListing() {
	r.Pages, r.Processed, r.Invalid, r.Unidentified = 0, 0, 0, 0
	r.ProblemsJSON, r.Resume = "", ""
}

// maxProblemBytes caps a problem's reference and reason (a record may carry
// megabytes in one field, which a reason may quote).
const maxProblemBytes = 500

// cutText shortens s to at most n bytes, on a UTF-8 boundary, marking the cut.
func cutText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// AddProblems appends record-level problems, keeping at most MaxRunProblems
// (each cut to a few hundred bytes).
func (r *SyncRun) AddProblems(ps ...Problem) {
	if len(ps) == 0 {
		return
	}
	cur := r.Problems()
	room := MaxRunProblems - len(cur)
	if room <= 0 {
		return
	}
	for _, p := range ps[:min(room, len(ps))] {
		p.Ref, p.Reason = cutText(p.Ref, maxProblemBytes), cutText(p.Reason, maxProblemBytes)
		cur = append(cur, p)
	}
	b, _ := json.Marshal(cur)
	r.ProblemsJSON = string(b)
}

func (r *SyncRun) problemsJSON() string {
	if r.ProblemsJSON == "" {
		return "[]"
	}
	return r.ProblemsJSON
}

// Run returns the tenant's run with id.
func (s *Store) Run(ctx context.Context, tenantID, id int64) (SyncRun, error) {
	var r SyncRun
	err := s.get(ctx, &r, `SELECT `+runColumns+` FROM sync_runs WHERE tenant_id = ? AND id = ?`, tenantID, id)
	if err != nil {
		return r, notFound(err, "run", id)
	}
	return r, nil
}

// ActiveRun returns the connection's queued or running run, or ErrNotFound.
func (s *Store) ActiveRun(ctx context.Context, tenantID, connectionID int64) (SyncRun, error) {
	var r SyncRun
	err := s.get(ctx, &r, `SELECT `+runColumns+` FROM sync_runs WHERE tenant_id = ? AND connection_id = ? AND status IN ('queued', 'running')`, tenantID, connectionID)
	if err != nil {
		return r, notFound(err, "active run of connection", connectionID)
	}
	return r, nil
}

// Runs lists the connection's runs, newest first (limit 0: 50).
func (s *Store) Runs(ctx context.Context, tenantID, connectionID int64, limit int) ([]SyncRun, error) {
	if limit <= 0 {
		limit = 50
	}
	var rs []SyncRun
	err := s.list(ctx, &rs, fmt.Sprintf(`SELECT `+runColumns+` FROM sync_runs WHERE tenant_id = ? AND connection_id = ? ORDER BY id DESC LIMIT %d`, limit), tenantID, connectionID)
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	return rs, nil
}
