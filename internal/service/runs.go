package service

import (
	"context"
	"errors"
	"time"

	"selfserve/internal/store"
)

// RunKind says what a run imports.
type RunKind int

// The run kinds.
const (
	// RunSync imports a directory connection's end users.
	RunSync RunKind = iota
	// RunCustomerImport imports a PSA connection's customers.
	RunCustomerImport
)

// DefaultStaleAfter is how long a queued or running run may go without a
// heartbeat before a new one may replace it.
const DefaultStaleAfter = 15 * time.Minute

// StartRun records a queued run of conn with its audit entry (action), then
// enqueues it. When the connection's active run is running without a live
// process (store.SyncRun.Claimable) and does what was asked, that run is
// queued again instead, for a worker to resume it. When enqueueing a new
// run fails the run is marked failed (so it does not block the connection)
// and the caller gets a 503; without a queue it is a 503 and nothing is
// recorded.
func (s *Service) StartRun(ctx context.Context, a Actor, conn store.Connection, kind RunKind, mode store.RunMode, confirm bool, action string) (store.SyncRun, error) {
	if s.Enqueuer == nil {
		return store.SyncRun{}, Unavailable("this server has no queue configured; run the import with `selfserve import %s --inline`", conn.Name)
	}
	stale := s.StaleAfter
	if stale <= 0 {
		stale = DefaultStaleAfter
	}
	var run store.SyncRun
	resumed := false
	err := s.Store.InTx(ctx, func(tx *store.Store) error {
		var err error
		run, err = tx.CreateRun(ctx, a.Tenant.ID, conn.ID, mode, "api", store.RunQueued, confirm, stale)
		var active *store.ActiveRunError
		if errors.As(err, &active) && active.Run.Status == store.RunRunning && active.Run.Claimable(active.At) && (mode != store.ModeFull || active.Run.Mode == store.ModeFull) {
			// Left running by a process that stopped (a killed worker, a
			// task lost with Redis's data): queue it again; the worker
			// resumes it from its saved position.
			s.log().Info("resuming the connection's active run", "run_id", active.Run.ID, "connection", conn.Name)
			run, err, resumed = active.Run, nil, true
			action += ".resumed"
		}
		if err != nil {
			return err
		}
		return Audit(ctx, tx, a, action, "run", run.ID, nil, map[string]any{"connection_id": conn.ID, "connection": conn.Name, "mode": mode, "confirm_removals": confirm})
	})
	if err != nil {
		return run, err
	}
	enqueue := s.Enqueuer.EnqueueSync
	if kind == RunCustomerImport {
		enqueue = s.Enqueuer.EnqueueCustomerImport
	}
	if err := enqueue(ctx, run); err != nil {
		s.log().Error("enqueue failed", "run_id", run.ID, "connection", conn.Name, "err", err)
		if resumed {
			return run, Unavailable("run %d could not be queued again (is Redis up?); try again", run.ID)
		}
		run.Status = store.RunFailed
		run.Error = "could not be queued: " + err.Error()
		if ferr := s.Store.FinishRun(context.WithoutCancel(ctx), &run); ferr != nil {
			return run, errors.Join(err, ferr)
		}
		return run, Unavailable("run %d was recorded but could not be queued (is Redis up?); it was marked failed, try again", run.ID)
	}
	return run, nil
}

// connectionSwitch is what a change of a connection's switch default
// audits.
type connectionSwitch struct {
	EnableSelfServe bool `json:"enable_self_serve"`
}

// SetConnectionSelfServe sets the self-serve switch the actor's tenant's
// connection id gives the end users it creates (the import screen's
// "Enable Self Serve"), with its audit entry. It returns the connection.
func (s *Service) SetConnectionSelfServe(ctx context.Context, a Actor, id int64, on bool) (store.Connection, error) {
	var after store.Connection
	err := s.Store.InTx(ctx, func(tx *store.Store) error {
		c, err := tx.Connection(ctx, a.Tenant.ID, id)
		if err != nil {
			return err
		}
		if c.EnableSelfServe == on {
			after = c
			return nil
		}
		c.EnableSelfServe = on
		before, a2, err := tx.UpdateConnection(ctx, c, true)
		if err != nil {
			return err
		}
		after = a2
		return Audit(ctx, tx, a, "connection.updated", "connection", id, connectionSwitch{before.EnableSelfServe}, connectionSwitch{after.EnableSelfServe})
	})
	return after, err
}
