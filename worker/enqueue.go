package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"

	"selfserve/internal/rules"
	"selfserve/internal/store"
)

// Client enqueues tasks over asynq; it is the service.Enqueuer of the
// server and the CLI. Every method is idempotent: work already queued under
// the same task id is "already queued", not an error. It is safe for
// concurrent use.
type Client struct {
	c   *asynq.Client
	now func() time.Time
	log *slog.Logger
}

// NewClient returns a client of the broker opt. now is the clock of welcome
// requests (nil: time.Now); logger may be nil.
func NewClient(opt asynq.RedisConnOpt, now func() time.Time, logger *slog.Logger) *Client {
	if now == nil {
		now = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Client{c: asynq.NewClient(opt), now: now, log: logger}
}

// Close closes the client's Redis connection.
func (c *Client) Close() error { return c.c.Close() }

// enqueue enqueues t, reporting whether it was queued now (false: a task
// with its id or payload is already queued).
func (c *Client) enqueue(ctx context.Context, t *asynq.Task, opts ...asynq.Option) (bool, error) {
	info, err := c.c.EnqueueContext(ctx, t, opts...)
	switch {
	case errors.Is(err, asynq.ErrTaskIDConflict), errors.Is(err, asynq.ErrDuplicateTask):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("enqueue %s: %w", t.Type(), err)
	}
	c.log.Debug("task enqueued", "task_type", t.Type(), "task_id", info.ID, "queue", info.Queue)
	return true, nil
}

// EnqueueSync queues the sync of run's directory connection.
func (c *Client) EnqueueSync(ctx context.Context, run store.SyncRun) error {
	t, err := NewSyncTask(run)
	if err != nil {
		return err
	}
	_, err = c.enqueue(ctx, t)
	return err
}

// EnqueueCustomerImport queues the customer import of run's PSA connection.
func (c *Client) EnqueueCustomerImport(ctx context.Context, run store.SyncRun) error {
	t, err := NewCustomerImportTask(run)
	if err != nil {
		return err
	}
	_, err = c.enqueue(ctx, t)
	return err
}

// EnqueueWelcome queues a welcome email to the end user; requests within
// the same minute are one: queued is false for the repeats.
func (c *Client) EnqueueWelcome(ctx context.Context, tenantID, endUserID int64) (queued bool, err error) {
	t, err := NewWelcomeTask(tenantID, endUserID, c.now())
	if err != nil {
		return false, err
	}
	return c.enqueue(ctx, t)
}

// EnqueueLockout queues the notices of one lockout.
func (c *Client) EnqueueLockout(ctx context.Context, tenantID, endUserID int64, at time.Time) error {
	t, err := NewLockoutTask(tenantID, endUserID, at)
	if err != nil {
		return err
	}
	_, err = c.enqueue(ctx, t)
	return err
}

// EnqueueSend queues the send of one ledger row.
func (c *Client) EnqueueSend(ctx context.Context, ref NoticeRef) (bool, error) {
	t, err := NewSendTask(ref, sendMaxRetry)
	if err != nil {
		return false, err
	}
	return c.enqueue(ctx, t)
}

// EnqueueSendBatch queues one send task for a batch of ledger rows of one
// queue.
func (c *Client) EnqueueSendBatch(ctx context.Context, refs []NoticeRef) (bool, error) {
	t, err := NewSendBatchTask(refs)
	if err != nil {
		return false, err
	}
	return c.enqueue(ctx, t)
}

// enqueueRetry queues the retry of one ledger row whose attempt in a batch
// failed, after delay.
func (c *Client) enqueueRetry(ctx context.Context, ref NoticeRef, delay time.Duration) (bool, error) {
	t, err := NewSendTask(ref, sendMaxRetry-1)
	if err != nil {
		return false, err
	}
	return c.enqueue(ctx, t, asynq.ProcessIn(delay))
}

// DispatchBatch is how many ledger rows one dispatch task carries.
const DispatchBatch = 500

// EnqueueDispatch queues ledger rows for sending, DispatchBatch rows per
// dispatch task (lockouts on the critical queue): one Redis round trip per
// batch instead of one per notice. It returns the tasks queued.
func (c *Client) EnqueueDispatch(ctx context.Context, refs []NoticeRef) (int, error) {
	var critical, normal []NoticeRef
	for _, r := range refs {
		if r.Kind == rules.KindLockout {
			critical = append(critical, r)
		} else {
			normal = append(normal, r)
		}
	}
	n := 0
	for _, group := range []struct {
		refs  []NoticeRef
		queue string
	}{{critical, QueueCritical}, {normal, QueueNotify}} {
		for start := 0; start < len(group.refs); start += DispatchBatch {
			t, err := NewDispatchTask(group.refs[start:min(start+DispatchBatch, len(group.refs))], group.queue)
			if err != nil {
				return n, err
			}
			if _, err := c.enqueue(ctx, t); err != nil {
				return n, err
			}
			n++
		}
	}
	return n, nil
}
