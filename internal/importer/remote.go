package importer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"selfserve/connectors"
	"selfserve/internal/rules"
	"selfserve/internal/store"
)

// RemoteSyncer hands a run of an agent connection to its agent, which
// pushes the pages back (CommitRemotePage) and says when it is done
// (FinishRemoteRun).
type RemoteSyncer interface {
	StartRemoteSync(ctx context.Context, run store.SyncRun, conn store.Connection) error
}

// ErrNoRemote: an agent connection's run was asked of an importer that
// cannot hand runs to agents (an inline run, in the CLI).
var ErrNoRemote = errors.New("an agent connection is read by its agent: start the sync through the server (without --inline)")

// startRemote hands a started run to the connection's agent. The run stays
// running until the agent finishes it.
func (im *Importer) startRemote(ctx context.Context, t target, run store.SyncRun) (Result, error) {
	if im.Remote == nil {
		return Result{Run: run}, ErrNoRemote
	}
	if err := im.Remote.StartRemoteSync(ctx, run, t.conn); err != nil {
		r := &runner{im: im, t: t, run: &run, log: im.logger()}
		return r.finish(ctx, fmt.Errorf("hand the sync to the agent: %w", err), false)
	}
	return Result{Run: run}, nil
}

// remoteRunner loads a running run of an agent connection and its target.
func (im *Importer) remoteRunner(ctx context.Context, tenantID, runID int64) (*runner, error) {
	run, err := im.Store.Run(ctx, tenantID, runID)
	if err != nil {
		return nil, err
	}
	if run.Status != store.RunRunning {
		return nil, fmt.Errorf("run %d is %s: %w", runID, run.Status, store.ErrConflict)
	}
	t, err := im.target(ctx, Request{TenantID: tenantID, ConnectionID: run.ConnectionID})
	if err != nil {
		return nil, err
	}
	log := im.logger().With("run_id", run.ID, "connection", t.conn.Name, "tenant_id", tenantID, "mode", run.Mode)
	return &runner{im: im, t: t, run: &run, log: log}, nil
}

// CommitRemotePage commits one page an agent pushed for a running run, in
// one transaction with the run's progress and cursor, as for a direct
// connection. It returns the run after the page and the lockouts it shows.
func (im *Importer) CommitRemotePage(ctx context.Context, tenantID, runID int64, page connectors.UserPage) (store.SyncRun, []store.Lockout, error) {
	r, err := im.remoteRunner(ctx, tenantID, runID)
	if err != nil {
		return store.SyncRun{}, nil, err
	}
	p := prepared{page: page}
	p.recs, p.problems = Normalize(page.Users, r.t.customer.DefaultRegion)
	if err := r.commit(ctx, p); err != nil {
		return *r.run, nil, err
	}
	return *r.run, r.lockouts, nil
}

// FinishRemoteRun ends a run whose agent finished its listing: with failure
// nil, a full run's removals are decided as for a direct connection; with
// a failure the run fails with it. The error is about storing the outcome;
// the returned run says how the run ended.
func (im *Importer) FinishRemoteRun(ctx context.Context, tenantID, runID int64, failure error) (store.SyncRun, error) {
	r, err := im.remoteRunner(ctx, tenantID, runID)
	if err != nil {
		return store.SyncRun{}, err
	}
	if failure == nil && r.run.Mode == store.ModeFull {
		failure = r.decideRemovals(ctx, r.run.ConfirmRemovals)
	}
	res, err := r.finish(ctx, failure, false)
	if failure != nil && res.Run.Status == store.RunFailed {
		return res.Run, nil
	}
	return res.Run, err
}

// RestartRemoteRunFull turns a running incremental run whose cursor the
// agent's directory refused into a full run from the start.
func (im *Importer) RestartRemoteRunFull(ctx context.Context, tenantID, runID int64) (store.SyncRun, error) {
	r, err := im.remoteRunner(ctx, tenantID, runID)
	if err != nil {
		return store.SyncRun{}, err
	}
	r.log.Warn("incremental cursor rejected by the agent's directory: running a full sync")
	r.run.Mode = store.ModeFull
	r.run.RestartListing()
	if err := im.Store.SaveRunProgress(ctx, r.run); err != nil {
		return store.SyncRun{}, err
	}
	return *r.run, nil
}

// agentSource is the end users' source of an agent connection: what its
// agent reads.
func agentSource(conn store.Connection) (rules.Source, error) {
	var set struct {
		Directory string `json:"directory"`
	}
	if err := json.Unmarshal(conn.Settings, &set); err != nil {
		return "", fmt.Errorf("connection %q settings: %w", conn.Name, err)
	}
	if set.Directory == "file" {
		return rules.SourceLocal, nil
	}
	return rules.SourceAD, nil
}

// syncRemote starts (or resumes) the run of an agent connection and hands
// it to the agent.
func (im *Importer) syncRemote(ctx context.Context, req Request, t target) (Result, error) {
	if im.Remote == nil {
		return Result{}, ErrNoRemote
	}
	mode := store.ModeFull
	if !req.Full && t.conn.Cursor != "" {
		mode = store.ModeIncremental
	}
	run, prev, err := im.claim(ctx, req, mode)
	if err != nil {
		return Result{}, err
	}
	if prev != nil {
		im.logger().Warn("taking over a run whose agent stopped answering: handing it to the agent again", "run_id", run.ID, "pages", prev.Pages, "last_heartbeat", prev.HeartbeatAt)
		if req.OnTakeOver != nil {
			req.OnTakeOver(*prev)
		}
	}
	if run.Mode == store.ModeIncremental && mode == store.ModeFull {
		run.Mode = store.ModeFull
		run.RestartListing()
		if err := im.Store.SaveRunProgress(ctx, &run); err != nil {
			return Result{}, err
		}
	}
	return im.startRemote(ctx, t, run)
}
