package service

import (
	"context"
	"errors"
	"time"

	"selfserve/internal/agentserver"
	"selfserve/internal/store"
)

// InstallCode is a new agent install code: shown once, never stored in
// clear.
type InstallCode struct {
	Code      string    `json:"code"`
	ExpiresAt time.Time `json:"expires_at"`
	// Command is what to run on the customer's machine.
	Command string `json:"command"`
}

// agents returns the agent service, or the 503 of a server without one.
func (s *Service) agents() (*agentserver.Service, error) {
	if s.Agents == nil {
		return nil, Unavailable("this server does not serve agents (no public listener configured: SELFSERVE_PUBLIC_ADDR)")
	}
	return s.Agents, nil
}

// agentError makes "not an agent connection" a 409.
func agentError(err error) error {
	if errors.Is(err, agentserver.ErrNotAgent) {
		return Conflict("wrong_kind", "%v", err)
	}
	return err
}

// IssueInstallCode makes a one-time install code for the actor's tenant's
// agent connection id (super and primary only), with its audit entry (which
// holds the expiry, never the code).
func (s *Service) IssueInstallCode(ctx context.Context, a Actor, id int64) (InstallCode, error) {
	if err := a.RequireSettings(); err != nil {
		return InstallCode{}, err
	}
	svc, err := s.agents()
	if err != nil {
		return InstallCode{}, err
	}
	code, expires, err := svc.IssueInstallCode(ctx, a.Tenant.ID, id)
	if err != nil {
		return InstallCode{}, agentError(err)
	}
	if err := Audit(ctx, s.Store, a, "agent.install_code_created", "connection", id, nil, map[string]any{"expires_at": expires}); err != nil {
		return InstallCode{}, err
	}
	server := s.PublicURL
	if server == "" {
		server = "https://SELFSERVE_PUBLIC_URL"
	}
	return InstallCode{Code: code, ExpiresAt: expires,
		Command: "selfserve agent enrol --server " + server + " --code " + code + " --directory directory.yaml"}, nil
}

// AgentStatus is the state of the actor's tenant's agent connection id.
func (s *Service) AgentStatus(ctx context.Context, a Actor, id int64) (agentserver.Status, error) {
	svc, err := s.agents()
	if err != nil {
		return agentserver.Status{}, err
	}
	st, err := svc.AgentStatus(ctx, a.Tenant.ID, id)
	return st, agentError(err)
}

// RevokeAgent revokes the agent of the actor's tenant's agent connection id
// (super and primary only), with its audit entry: the agent's next request
// fails with 401.
func (s *Service) RevokeAgent(ctx context.Context, a Actor, id int64) error {
	if err := a.RequireSettings(); err != nil {
		return err
	}
	if _, err := s.AgentStatus(ctx, a, id); err != nil {
		return err
	}
	return s.Store.InTx(ctx, func(tx *store.Store) error {
		revoked, err := tx.RevokeAgent(ctx, a.Tenant.ID, id)
		if err != nil {
			return err
		}
		return Audit(ctx, tx, a, "agent.revoked", "connection", id, agentserver.StatusOf(revoked, s.now()), nil)
	})
}
