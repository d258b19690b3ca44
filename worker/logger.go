package worker

import (
	"context"
	"fmt"
	"log/slog"
	"os"
)

// asynqLogger writes asynq's own log lines to slog.
type asynqLogger struct{ l *slog.Logger }

func (a asynqLogger) log(level slog.Level, args []any) {
	if a.l.Enabled(context.Background(), level) {
		a.l.Log(context.Background(), level, fmt.Sprint(args...))
	}
}

// Debug implements asynq.Logger.
func (a asynqLogger) Debug(args ...any) { a.log(slog.LevelDebug, args) }

// Info implements asynq.Logger.
func (a asynqLogger) Info(args ...any) { a.log(slog.LevelInfo, args) }

// Warn implements asynq.Logger.
func (a asynqLogger) Warn(args ...any) { a.log(slog.LevelWarn, args) }

// Error implements asynq.Logger.
func (a asynqLogger) Error(args ...any) { a.log(slog.LevelError, args) }

// Fatal logs and exits, as asynq's Logger contract requires.
func (a asynqLogger) Fatal(args ...any) {
	a.log(slog.LevelError, args)
	os.Exit(1)
}

type loggerKey struct{}

// withLogger returns ctx carrying the task's logger.
func withLogger(ctx context.Context, l *slog.Logger) context.Context {
	return context.WithValue(ctx, loggerKey{}, l)
}

// taskLogger returns the logger of the task running in ctx (with its task
// id and type), or fallback.
func taskLogger(ctx context.Context, fallback *slog.Logger) *slog.Logger {
	if l, ok := ctx.Value(loggerKey{}).(*slog.Logger); ok {
		return l
	}
	if fallback == nil {
		return slog.New(slog.DiscardHandler)
	}
	return fallback
}
