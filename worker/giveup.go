package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/hibiken/asynq"

	"selfserve/internal/store"
)

// NoticeFinaliser is the worker servers' asynq ErrorHandler. When asynq
// gives up on a send task (its last retry failed, or it was told to skip
// retries) the task is archived and no attempt follows, so each of its
// ledger rows still pending or sending is marked failed with the last
// error: a row always ends sent, failed or skipped. Rows already final are
// left as they are. The Sender marks a row failed itself on a failure it
// sees; this covers the failures it does not (a panic in a provider, a
// database error while recording the outcome).
type NoticeFinaliser struct {
	Store  *store.Store
	Logger *slog.Logger
}

// HandleError implements asynq.ErrorHandler.
func (f *NoticeFinaliser) HandleError(ctx context.Context, t *asynq.Task, err error) {
	if t.Type() != TypeSend || errors.Is(err, asynq.RevokeTask) {
		return
	}
	retried, ok1 := asynq.GetRetryCount(ctx)
	maxRetry, ok2 := asynq.GetMaxRetry(ctx)
	if !errors.Is(err, asynq.SkipRetry) && (!ok1 || !ok2 || retried < maxRetry) {
		return // asynq retries it
	}
	log := taskLogger(ctx, f.Logger)
	var p SendPayload
	if derr := decode(t, &p); derr != nil {
		log.Error("send task given up with a payload that cannot be read", "err", derr)
		return
	}
	reason := fmt.Sprintf("gave up after %d attempts: %v", retried+1, err)
	rec := context.WithoutCancel(ctx)
	for _, r := range p.Notices {
		ferr := f.Store.MarkNoticeFailed(rec, r.TenantID, r.ID, reason)
		switch {
		case ferr == nil:
			log.Warn("notice failed: its send task was given up", "notice_id", r.ID, "tenant_id", r.TenantID, "err", err)
		case errors.Is(ferr, store.ErrConflict), errors.Is(ferr, store.ErrNotFound):
			// Already sent, failed or skipped; or gone.
		default:
			log.Error("could not mark a given-up notice failed; the expiry scan re-queues it", "notice_id", r.ID, "err", ferr)
		}
	}
}
