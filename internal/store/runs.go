package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

const runColumns = `id, tenant_id, connection_id, mode, trigger, status, resume, pages, processed, created, updated, unchanged, removed, linked, invalid,
	unidentified, pending_removals, confirm_removals, problems, error, created_at, started_at, heartbeat_at, finished_at, duration_ms`

// MaxRunProblems caps the problems a run keeps (the counts stay exact).
const MaxRunProblems = 500

// ErrRunActive: the connection already has a queued or running sync.
var ErrRunActive = fmt.Errorf("%w: a sync of this connection is already queued or running", ErrConflict)

// CreateRun records a new run of the tenant's connection, queued (for a
// worker) or running (inline). Only one run per connection may be queued or
// running: another is ErrRunActive, unless the active one stopped sending
// heartbeats for staleAfter, in which case it is marked failed (abandoned)
// and the new run takes its place.
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
		var started any
		if status == RunRunning {
			started = now
		}
		id, err := tx.insertID(ctx, `INSERT INTO sync_runs (tenant_id, connection_id, mode, trigger, status, confirm_removals, created_at, started_at, heartbeat_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			tenantID, connectionID, mode, trigger, status, confirmRemovals, now, started, now)
		if isUniqueViolation(err) {
			active, aerr := tx.ActiveRun(ctx, tenantID, connectionID)
			if aerr == nil {
				return fmt.Errorf("%w (run %d, %s since %s)", ErrRunActive, active.ID, active.Status, active.CreatedAt.Format(time.RFC3339))
			}
			return ErrRunActive
		}
		if err != nil {
			return fmt.Errorf("create run: %w", err)
		}
		run, err = tx.Run(ctx, tenantID, id)
		return err
	})
	return run, err
}

// StartRun moves a queued run (or a running one being resumed after a crash)
// to running and stamps it.
func (s *Store) StartRun(ctx context.Context, tenantID, id int64) (SyncRun, error) {
	now := s.stamp()
	res, err := s.exec(ctx, `UPDATE sync_runs SET status = 'running', started_at = COALESCE(started_at, ?), heartbeat_at = ? WHERE tenant_id = ? AND id = ? AND status IN ('queued', 'running')`,
		now, now, tenantID, id)
	if err != nil {
		return SyncRun{}, fmt.Errorf("start run %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		run, err := s.Run(ctx, tenantID, id)
		if err != nil {
			return run, err
		}
		return run, fmt.Errorf("run %d is already %s: %w", id, run.Status, ErrConflict)
	}
	return s.Run(ctx, tenantID, id)
}

// SaveRunProgress writes the run's counters, resume position and problems
// and beats its heartbeat. Call it in the transaction that stored the page.
func (s *Store) SaveRunProgress(ctx context.Context, run *SyncRun) error {
	run.HeartbeatAt = ptr(s.stamp())
	_, err := s.exec(ctx, `UPDATE sync_runs SET mode = ?, resume = ?, pages = ?, processed = ?, created = ?, updated = ?, unchanged = ?, removed = ?, linked = ?, invalid = ?,
		unidentified = ?, pending_removals = ?, problems = ?, heartbeat_at = ? WHERE tenant_id = ? AND id = ?`,
		run.Mode, run.Resume, run.Pages, run.Processed, run.Created, run.Updated, run.Unchanged, run.Removed, run.Linked, run.Invalid,
		run.Unidentified, run.PendingRemovals, run.problemsJSON(), run.HeartbeatAt, run.TenantID, run.ID)
	if err != nil {
		return fmt.Errorf("save progress of run %d: %w", run.ID, err)
	}
	return nil
}

// FinishRun writes the run's final state.
func (s *Store) FinishRun(ctx context.Context, run *SyncRun) error {
	now := s.stamp()
	run.FinishedAt = &now
	if run.StartedAt != nil {
		run.DurationMS = now.Sub(*run.StartedAt).Milliseconds()
	}
	if err := s.SaveRunProgress(ctx, run); err != nil {
		return err
	}
	_, err := s.exec(ctx, `UPDATE sync_runs SET status = ?, error = ?, finished_at = ?, duration_ms = ? WHERE tenant_id = ? AND id = ?`,
		run.Status, run.Error, now, run.DurationMS, run.TenantID, run.ID)
	if err != nil {
		return fmt.Errorf("finish run %d: %w", run.ID, err)
	}
	return nil
}

// AddProblems appends record-level problems, keeping at most MaxRunProblems.
func (r *SyncRun) AddProblems(ps ...Problem) {
	if len(ps) == 0 {
		return
	}
	cur := r.Problems()
	room := MaxRunProblems - len(cur)
	if room <= 0 {
		return
	}
	cur = append(cur, ps[:min(room, len(ps))]...)
	b, _ := json.Marshal(cur)
	r.ProblemsJSON = string(b)
}

func (r *SyncRun) problemsJSON() string {
	if r.ProblemsJSON == "" {
		return "[]"
	}
	return r.ProblemsJSON
}

func ptr[T any](v T) *T { return &v }

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

// LastSucceededRun returns the connection's latest successful run.
func (s *Store) LastSucceededRun(ctx context.Context, tenantID, connectionID int64) (SyncRun, error) {
	var r SyncRun
	err := s.get(ctx, &r, `SELECT `+runColumns+` FROM sync_runs WHERE tenant_id = ? AND connection_id = ? AND status = 'succeeded' ORDER BY id DESC LIMIT 1`, tenantID, connectionID)
	if err != nil {
		return r, notFound(err, "successful run of connection", connectionID)
	}
	return r, nil
}

// SetConnectionCursor stores where the connection's next incremental run
// starts.
func (s *Store) SetConnectionCursor(ctx context.Context, tenantID, connectionID int64, cursor string) error {
	res, err := s.exec(ctx, `UPDATE connections SET cursor = ? WHERE tenant_id = ? AND id = ?`, cursor, tenantID, connectionID)
	if err != nil {
		return fmt.Errorf("save cursor of connection %d: %w", connectionID, err)
	}
	return mustAffect(res, "connection", connectionID)
}
