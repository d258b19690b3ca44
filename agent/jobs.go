package agent

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/nacl/box"

	"selfserve/connectors"
	"selfserve/internal/agentproto"
)

func (a *Agent) runJob(ctx context.Context, job agentproto.Job) error {
	log := a.logger().With("job_id", job.ID, "kind", job.Kind)
	log.Info("job received")
	switch job.Kind {
	case agentproto.JobSync:
		if job.Sync == nil {
			return a.report(ctx, job, agentproto.Result{Code: agentproto.ResultFailed, Reason: "sync job without arguments"})
		}
		return a.runSync(ctx, job)
	case agentproto.JobReset, agentproto.JobUnlock:
		if job.Account == nil {
			return a.report(ctx, job, agentproto.Result{Code: agentproto.ResultFailed, Reason: "write-back job without an account"})
		}
		return a.runWrite(ctx, job)
	default:
		return a.report(ctx, job, agentproto.Result{Code: agentproto.ResultUnsupported, Reason: fmt.Sprintf("this agent (version %s) does not know jobs of kind %q", Version, job.Kind)})
	}
}

// report sends a job's result, retrying network trouble until the job's
// lease would have run out.
func (a *Agent) report(ctx context.Context, job agentproto.Job, res agentproto.Result) error {
	path := fmt.Sprintf("/agent/v1/jobs/%d/result", job.ID)
	for n := 0; ; n++ {
		_, err := a.client.do(context.WithoutCancel(ctx), path, res, nil)
		if err == nil || !temporary(err) || a.client.serverNow().After(job.LeaseUntil.Add(time.Minute)) {
			return err
		}
		if err := backoff(ctx, n); err != nil {
			return err
		}
	}
}

// runSync reads the directory and pushes its pages. A lease extension runs
// beside it while the directory is slow to answer.
func (a *Agent) runSync(ctx context.Context, job agentproto.Job) error {
	src, err := a.openDirectory()
	if err != nil {
		return a.report(ctx, job, agentproto.Result{Code: agentproto.ResultFailed, Reason: err.Error()})
	}
	defer src.Close()
	users, ok := src.(connectors.UserSource)
	if !ok {
		return a.report(ctx, job, agentproto.Result{Code: agentproto.ResultUnsupported, Reason: "the configured directory does not list users"})
	}
	var pages iter.Seq2[connectors.UserPage, error]
	if job.Sync.Mode == "incremental" {
		delta, ok := src.(connectors.DeltaSource)
		if !ok || job.Sync.Cursor == "" {
			return a.report(ctx, job, agentproto.Result{Code: agentproto.ResultResyncRequired, Reason: "no incremental position: a full listing is needed"})
		}
		pages = delta.Changes(ctx, job.Sync.Cursor)
	} else {
		pages = users.Users(ctx, job.Sync.Resume)
	}

	jobCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go a.extendLease(jobCtx, job, cancel)

	seq := 0
	for page, err := range pages {
		if err != nil {
			if errors.Is(err, connectors.ErrResyncRequired) {
				return a.report(ctx, job, agentproto.Result{Code: agentproto.ResultResyncRequired, Reason: err.Error()})
			}
			if cause := context.Cause(jobCtx); cause != nil && ctx.Err() == nil {
				return cause
			}
			return a.report(ctx, job, agentproto.Result{Code: agentproto.ResultFailed, Reason: err.Error()})
		}
		seq++
		if err := a.pushPage(jobCtx, job, agentproto.FromUserPage(seq, page)); err != nil {
			return err
		}
	}
	if cause := context.Cause(jobCtx); cause != nil {
		return cause
	}
	a.logger().Info("sync pushed", "job_id", job.ID, "pages", seq)
	return a.report(ctx, job, agentproto.Result{Code: agentproto.ResultDone})
}

// pushPage sends one page, retrying network trouble; a refusal (the lease
// was lost, the page is malformed) ends the job.
func (a *Agent) pushPage(ctx context.Context, job agentproto.Job, page agentproto.Page) error {
	path := fmt.Sprintf("/agent/v1/jobs/%d/pages", job.ID)
	for n := 0; ; n++ {
		_, err := a.client.do(ctx, path, page, nil)
		if err == nil || !temporary(err) {
			if err != nil {
				return fmt.Errorf("page %d: %w", page.Seq, err)
			}
			return nil
		}
		a.logger().Warn("could not push a page; retrying", "job_id", job.ID, "seq", page.Seq, "err", err)
		if err := backoff(ctx, n); err != nil {
			return err
		}
	}
}

// extendEvery is how often a running sync job renews its lease (and its
// run's heartbeat, which another import takes over after 30 s of silence).
const extendEvery = 10 * time.Second

// extendLease keeps a sync job's lease while it runs; losing the lease
// cancels the job.
func (a *Agent) extendLease(ctx context.Context, job agentproto.Job, cancel context.CancelCauseFunc) {
	path := fmt.Sprintf("/agent/v1/jobs/%d/extend", job.ID)
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(extendEvery):
		}
		_, err := a.client.do(ctx, path, struct{}{}, nil)
		if err != nil && !temporary(err) && ctx.Err() == nil {
			cancel(fmt.Errorf("job %d: lease lost: %w", job.ID, err))
			return
		}
	}
}

// runWrite carries out a reset or an unlock once. The journal records the
// job before the directory is touched: a job found there after a restart
// is never applied again.
func (a *Agent) runWrite(ctx context.Context, job agentproto.Job) error {
	if a.journalHas(job.ID) {
		return a.report(ctx, job, agentproto.Result{Code: agentproto.ResultFailed, Reason: "the agent was interrupted while carrying this out before; it is not applied twice"})
	}
	// The lease ends when the end user stops waiting: a write-back that
	// arrives later is not carried out, and the directory gets no more time
	// than what is left of it (by the server's clock).
	left := job.LeaseUntil.Sub(a.client.serverNow())
	if left <= 0 {
		return a.report(ctx, job, agentproto.Result{Code: agentproto.ResultFailed, Reason: "it reached the agent after the end user stopped waiting; not carried out"})
	}
	writeCtx, cancel := context.WithTimeout(ctx, left)
	defer cancel()
	if err := a.journalStart(job.ID); err != nil {
		return a.report(ctx, job, agentproto.Result{Code: agentproto.ResultFailed, Reason: "the agent could not record the job: " + err.Error()})
	}
	res := a.write(writeCtx, job)
	err := a.report(ctx, job, res)
	if err == nil {
		a.journalDone(job.ID)
	}
	a.logger().Info("write-back done", "job_id", job.ID, "kind", job.Kind, "result", res.Code)
	return err
}

func (a *Agent) write(ctx context.Context, job agentproto.Job) agentproto.Result {
	src, err := a.openDirectory()
	if err != nil {
		return agentproto.Result{Code: agentproto.ResultFailed, Reason: err.Error()}
	}
	defer src.Close()
	w, ok := src.(connectors.PasswordWriter)
	if !ok {
		return agentproto.Result{Code: agentproto.ResultUnsupported, Reason: "the agent's directory cannot write passwords"}
	}
	if job.Kind == agentproto.JobUnlock {
		err = w.Unlock(ctx, *job.Account)
	} else {
		pw, ok := box.OpenAnonymous(nil, job.SealedPassword, a.State.boxPub, a.State.boxKey)
		if !ok {
			return agentproto.Result{Code: agentproto.ResultFailed, Reason: "the password could not be opened with this agent's key"}
		}
		err = w.SetPassword(ctx, *job.Account, string(pw))
		clear(pw)
	}
	var rejected *connectors.PasswordRejectedError
	switch {
	case err == nil:
		return agentproto.Result{Code: agentproto.ResultDone}
	case errors.As(err, &rejected):
		return agentproto.Result{Code: agentproto.ResultPasswordPolicy, Reason: rejected.Reason}
	case errors.Is(err, connectors.ErrUnsupported):
		return agentproto.Result{Code: agentproto.ResultUnsupported, Reason: err.Error()}
	default:
		return agentproto.Result{Code: agentproto.ResultFailed, Reason: err.Error()}
	}
}

func (a *Agent) journalPath(id int64) string {
	return filepath.Join(a.State.dir, journalDir, strconv.FormatInt(id, 10))
}

func (a *Agent) journalHas(id int64) bool {
	_, err := os.Stat(a.journalPath(id))
	return err == nil
}

func (a *Agent) journalStart(id int64) error {
	if err := os.MkdirAll(filepath.Join(a.State.dir, journalDir), 0o700); err != nil {
		return err
	}
	return writePrivate(a.journalPath(id), []byte(time.Now().UTC().Format(time.RFC3339)+" started\n"))
}

func (a *Agent) journalDone(id int64) {
	_ = writePrivate(a.journalPath(id), []byte(time.Now().UTC().Format(time.RFC3339)+" reported\n"))
}

// finishJournal reports write-backs a killed agent left unreported as
// failed (the server has failed them already when their lease ran out; it
// answers 404 or 409, which is fine) and forgets entries older than a day.
// An entry still being written when the agent died (its .tmp file) is a
// job that was not carried out.
func (a *Agent) finishJournal(ctx context.Context) {
	dir := filepath.Join(a.State.dir, journalDir)
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		name, partial := strings.CutSuffix(e.Name(), ".tmp")
		id, err := strconv.ParseInt(name, 10, 64)
		if err != nil {
			continue
		}
		data, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		info, _ := e.Info()
		switch {
		case partial || strings.Contains(string(data), "started"):
			reason := "the agent stopped while carrying this out; it is not applied twice"
			if partial && !a.journalHas(id) {
				reason = "the agent stopped before carrying this out"
			}
			job := agentproto.Job{ID: id, LeaseUntil: a.client.serverNow()}
			_ = a.report(ctx, job, agentproto.Result{Code: agentproto.ResultFailed, Reason: reason})
			a.journalDone(id)
		case info != nil && time.Since(info.ModTime()) > 24*time.Hour:
			_ = os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}
