package worker

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"
)

// ServerOptions configure a worker's asynq servers.
type ServerOptions struct {
	Redis asynq.RedisConnOpt
	// SyncConcurrency is how many syncs and customer imports run at once
	// (default 2).
	SyncConcurrency int
	// NotifyConcurrency is how many notice, scan and schedule tasks run at
	// once (default 10).
	NotifyConcurrency int
	// ShutdownTimeout is how long Shutdown waits for tasks in flight before
	// cancelling them (they go back to their queue; default 25s).
	ShutdownTimeout time.Duration
	// Retry is the retry policy (zero: its defaults).
	Retry RetryPolicy
	// ErrorHandler is told of every failed attempt (a NoticeFinaliser marks
	// the rows of a send task asynq gives up on failed); nil: none.
	ErrorHandler asynq.ErrorHandler
	Logger       *slog.Logger
	// BaseContext is the parent of every task's context (default
	// context.Background).
	BaseContext func() context.Context
	// PollInterval is how often an idle server looks for new tasks, moves
	// due retries to their queues and deletes completed tasks past their
	// retention (default: asynq's 1s, 5s and 8s). Tests shorten it.
	PollInterval time.Duration
}

// Worker is the worker role: two asynq servers on one mux, one for the sync
// queue and one for the notify, notify_critical and scan queues, so that
// long syncs never take every slot from the notices.
type Worker struct {
	sync, notify *asynq.Server
	log          *slog.Logger
}

// NewWorker returns a worker; Start gives it its handlers.
func NewWorker(opts ServerOptions) *Worker {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	shutdown := opts.ShutdownTimeout
	if shutdown <= 0 {
		shutdown = 25 * time.Second
	}
	cfg := func(name string, concurrency int, queues map[string]int) asynq.Config {
		return asynq.Config{
			Concurrency:     concurrency,
			Queues:          queues,
			RetryDelayFunc:  opts.Retry.Delay,
			IsFailure:       opts.Retry.IsFailure,
			ErrorHandler:    opts.ErrorHandler,
			ShutdownTimeout: shutdown,
			Logger:          asynqLogger{logger.With("component", "asynq", "server", name)},
			LogLevel:        asynq.WarnLevel,
			BaseContext:     opts.BaseContext,
			// PollInterval 0 leaves asynq's defaults.
			TaskCheckInterval:        opts.PollInterval,
			DelayedTaskCheckInterval: opts.PollInterval,
			JanitorInterval:          opts.PollInterval,
		}
	}
	syncN := opts.SyncConcurrency
	if syncN <= 0 {
		syncN = 2
	}
	notifyN := opts.NotifyConcurrency
	if notifyN <= 0 {
		notifyN = 10
	}
	return &Worker{
		sync:   asynq.NewServer(opts.Redis, cfg("sync", syncN, SyncQueues())),
		notify: asynq.NewServer(opts.Redis, cfg("notify", notifyN, NotifyQueues())),
		log:    logger,
	}
}

// Start starts processing tasks with mux, without blocking.
func (w *Worker) Start(mux *asynq.ServeMux) error {
	if err := w.notify.Start(mux); err != nil {
		return fmt.Errorf("start the notify worker: %w", err)
	}
	if err := w.sync.Start(mux); err != nil {
		w.notify.Shutdown()
		return fmt.Errorf("start the sync worker: %w", err)
	}
	return nil
}

// Shutdown stops taking tasks, waits up to the shutdown timeout for those in
// flight and puts the unfinished ones back in their queues. A sync cancelled
// this way keeps its run resumable.
func (w *Worker) Shutdown() {
	done := make(chan struct{})
	go func() {
		w.sync.Shutdown()
		close(done)
	}()
	w.notify.Shutdown()
	<-done
}

// Ping checks that the servers can reach Redis.
func (w *Worker) Ping() error {
	if err := w.notify.Ping(); err != nil {
		return err
	}
	return w.sync.Ping()
}
