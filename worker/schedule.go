package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"

	"selfserve/internal/store"
)

// ScanCronspec is when the expiry scan runs: every hour on the hour (UTC).
const ScanCronspec = "0 * * * *"

// RequeueCronspec is when the ledger rows left pending are queued again
// (TypeRequeue): every five minutes, so that after Redis lost its queues the
// notices go out within minutes, not at the next hourly scan.
const RequeueCronspec = "*/5 * * * *"

// Schedules feeds asynq's PeriodicTaskManager from the store: one entry per
// connection with a schedule (its schedule_seconds, default 3 hours; 0 means
// none), the hourly expiry scan and the requeue of stranded notices every
// five minutes.
//
// Every replica computes the same entries: cronspecs are aligned to the UTC
// wall clock, not to when a replica started. An interval is rounded down to
// one that divides an hour (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30 minutes) or
// a day (1, 2, 3, 4, 6, 8, 12 hours), or to whole days; each connection fires
// at a minute offset derived from its id, which spreads the connections over
// the interval. Every replica fires each occurrence, and the entries' fixed
// task ids with a retention (see NewScheduledSyncTask, NewScanTask) let only
// the first enqueue succeed.
type Schedules struct {
	Store *store.Store
	// CustomerImports schedules PSA connections too (only when a
	// CustomerImporter is plugged in).
	CustomerImports bool
	// Timeout bounds one read of the schedules (default 30s).
	Timeout time.Duration
	// Every, when set, fires every entry "@every Every" instead of its
	// wall-clock cronspec: for tests, as cronspecs have minute resolution.
	Every  time.Duration
	Logger *slog.Logger
}

// GetConfigs implements asynq.PeriodicTaskConfigProvider.
func (s *Schedules) GetConfigs() ([]*asynq.PeriodicTaskConfig, error) {
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	conns, err := s.Store.AllConnections(ctx)
	if err != nil {
		return nil, fmt.Errorf("read connection schedules: %w", err)
	}
	scanSpec, requeueSpec := ScanCronspec, RequeueCronspec
	if s.Every > 0 {
		scanSpec = "@every " + s.Every.String()
		requeueSpec = scanSpec
	}
	scan, scanOpts := NewScanTask()
	requeue, requeueOpts := NewRequeueTask()
	configs := []*asynq.PeriodicTaskConfig{{Cronspec: scanSpec, Task: scan, Opts: scanOpts}, {Cronspec: requeueSpec, Task: requeue, Opts: requeueOpts}}
	for _, c := range conns {
		if c.Schedule() <= 0 || (!c.Kind.IsDirectory() && !s.CustomerImports) {
			continue
		}
		spec, interval := Cronspec(c.ID, c.Schedule())
		if s.Every > 0 {
			spec, interval = "@every "+s.Every.String(), s.Every
		}
		task, opts, err := NewScheduledSyncTask(c, interval)
		if err != nil {
			if s.Logger != nil {
				s.Logger.Warn("connection not scheduled", "connection_id", c.ID, "err", err)
			}
			continue
		}
		configs = append(configs, &asynq.PeriodicTaskConfig{Cronspec: spec, Task: task, Opts: opts})
	}
	return configs, nil
}

// Cronspec returns the UTC cronspec of a connection synced every interval,
// and the interval it really gets (rounded down as Schedules describes; at
// least a minute).
func Cronspec(connID int64, interval time.Duration) (string, time.Duration) {
	if connID < 0 {
		connID = -connID
	}
	minutes := int64(interval / time.Minute)
	switch {
	case minutes < 60:
		m := largestDivisor(60, max(minutes, 1))
		if m == 1 {
			return "* * * * *", time.Minute
		}
		return fmt.Sprintf("%d-59/%d * * * *", connID%m, m), time.Duration(m) * time.Minute
	case minutes < 24*60:
		h := largestDivisor(24, minutes/60)
		return fmt.Sprintf("%d %d-23/%d * * *", connID%60, (connID/60)%h, h), time.Duration(h) * time.Hour
	default:
		d := minutes / (24 * 60)
		if d == 1 {
			return fmt.Sprintf("%d %d * * *", connID%60, (connID/60)%24), 24 * time.Hour
		}
		return fmt.Sprintf("%d %d */%d * *", connID%60, (connID/60)%24, d), time.Duration(d) * 24 * time.Hour
	}
}

// largestDivisor returns the largest divisor of n not above limit.
func largestDivisor(n, limit int64) int64 {
	for d := min(limit, n); d > 1; d-- {
		if n%d == 0 {
			return d
		}
	}
	return 1
}

// SchedulerOptions configure NewScheduler.
type SchedulerOptions struct {
	Redis asynq.RedisConnOpt
	// SyncInterval is how often the schedules are re-read (default 1m).
	SyncInterval time.Duration
	Logger       *slog.Logger
}

// NewScheduler returns asynq's periodic task manager over the schedules, in
// UTC. Start it with Start and stop it with Shutdown.
func NewScheduler(opts SchedulerOptions, schedules *Schedules) (*asynq.PeriodicTaskManager, error) {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	interval := opts.SyncInterval
	if interval <= 0 {
		interval = time.Minute
	}
	return asynq.NewPeriodicTaskManager(asynq.PeriodicTaskManagerOpts{
		PeriodicTaskConfigProvider: schedules,
		RedisConnOpt:               opts.Redis,
		SyncInterval:               interval,
		SchedulerOpts: &asynq.SchedulerOpts{
			Location: time.UTC,
			Logger:   asynqLogger{logger.With("component", "scheduler")},
			LogLevel: asynq.WarnLevel,
			// asynq gives no task on an error (EnqueueErrorHandler, which
			// did, is deprecated): the error says which.
			PostEnqueueFunc: func(info *asynq.TaskInfo, err error) {
				switch {
				case err == nil:
					logger.Info("scheduled task enqueued", "task_type", info.Type, "task_id", info.ID)
				case errors.Is(err, asynq.ErrTaskIDConflict) || errors.Is(err, asynq.ErrDuplicateTask):
					logger.Debug("scheduled task already enqueued by another replica", "err", err)
				default:
					logger.Error("could not enqueue a scheduled task", "err", err)
				}
			},
		},
	})
}
