//go:build windows

package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/windows/svc"
	"golang.org/x/sys/windows/svc/mgr"
)

// ServiceName is the Windows service the agent installs as.
const ServiceName = "selfserve-agent"

// InstallService installs this binary as an automatic Windows service
// running `agent run --state DIR`.
func InstallService(stateDir string) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	if _, err := LoadState(stateDir); err != nil {
		return err
	}
	m, err := mgr.Connect()
	if err != nil {
		return fmt.Errorf("connect to the service manager (run as Administrator): %w", err)
	}
	defer m.Disconnect()
	if s, err := m.OpenService(ServiceName); err == nil {
		s.Close()
		return fmt.Errorf("service %s exists already: uninstall it first", ServiceName)
	}
	s, err := m.CreateService(ServiceName, exe, mgr.Config{
		DisplayName: "selfserve agent",
		Description: "Reads the local Active Directory for selfserve and carries out its password resets and unlocks (outbound HTTPS only).",
		StartType:   mgr.StartAutomatic,
	}, "agent", "run", "--state", stateDir)
	if err != nil {
		return err
	}
	defer s.Close()
	return s.SetRecoveryActions([]mgr.RecoveryAction{{Type: mgr.ServiceRestart, Delay: 10 * time.Second}}, 86400)
}

// UninstallService removes the Windows service.
func UninstallService() error {
	m, err := mgr.Connect()
	if err != nil {
		return err
	}
	defer m.Disconnect()
	s, err := m.OpenService(ServiceName)
	if err != nil {
		return fmt.Errorf("service %s is not installed", ServiceName)
	}
	defer s.Close()
	_, _ = s.Control(svc.Stop)
	return s.Delete()
}

// RunService runs the agent as a Windows service when started by the
// service manager, in the foreground otherwise.
func RunService(ctx context.Context, a *Agent) error {
	isService, err := svc.IsWindowsService()
	if err != nil || !isService {
		return a.Run(ctx)
	}
	return svc.Run(ServiceName, &service{agent: a})
}

type service struct{ agent *Agent }

// Execute implements svc.Handler.
func (s *service) Execute(_ []string, req <-chan svc.ChangeRequest, status chan<- svc.Status) (bool, uint32) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.agent.Run(ctx) }()
	status <- svc.Status{State: svc.Running, Accepts: svc.AcceptStop | svc.AcceptShutdown}
	for {
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, context.Canceled) {
				return true, 1
			}
			return false, 0
		case c := <-req:
			switch c.Cmd {
			case svc.Interrogate:
				status <- c.CurrentStatus
			case svc.Stop, svc.Shutdown:
				status <- svc.Status{State: svc.StopPending}
				cancel()
				<-done
				return false, 0
			}
		}
	}
}
