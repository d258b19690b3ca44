//go:build !windows

package agent

import (
	"context"
	"errors"
)

// ErrNoService: services are a Windows feature; elsewhere the agent runs in
// the foreground under the init system (a systemd unit, see the README).
var ErrNoService = errors.New("installing as a service is for Windows; on Linux run `selfserve agent run` from a systemd unit (see README)")

// InstallService is Windows-only.
func InstallService(string) error { return ErrNoService }

// UninstallService is Windows-only.
func UninstallService() error { return ErrNoService }

// RunService runs the agent in the foreground.
func RunService(ctx context.Context, a *Agent) error { return a.Run(ctx) }
