package admin

import (
	"errors"
	"net/http"
	"time"

	"selfserve/internal/agentserver"
	"selfserve/internal/store"
)

// installCodeView is a new install code: shown once, never stored in clear.
type installCodeView struct {
	Code      string    `json:"code"`
	ExpiresAt time.Time `json:"expires_at"`
	// Command is what to run on the customer's machine.
	Command string `json:"command"`
}

func (a *api) agentService() (*agentserver.Service, error) {
	if a.Agents == nil {
		return nil, unavailable("this server does not serve agents (no public listener configured: SELFSERVE_PUBLIC_ADDR)")
	}
	return a.Agents, nil
}

func agentError(err error) error {
	if errors.Is(err, agentserver.ErrNotAgent) {
		return conflict("wrong_kind", "%v", err)
	}
	return err
}

func (a *api) createInstallCode(w http.ResponseWriter, r *http.Request, p *principal) error {
	svc, err := a.agentService()
	if err != nil {
		return err
	}
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	if err := a.decodeOptionalBody(w, r, &struct{}{}); err != nil {
		return err
	}
	ctx := r.Context()
	code, expires, err := svc.IssueInstallCode(ctx, p.tenant.ID, id)
	if err != nil {
		return agentError(err)
	}
	if err := audit(ctx, a.Store, p, "agent.install_code_created", "connection", id, nil, map[string]any{"expires_at": expires}); err != nil {
		return err
	}
	server := a.PublicURL
	if server == "" {
		server = "https://SELFSERVE_PUBLIC_URL"
	}
	writeJSON(w, http.StatusCreated, installCodeView{Code: code, ExpiresAt: expires,
		Command: "selfserve agent enrol --server " + server + " --code " + code + " --directory directory.yaml"})
	return nil
}

func (a *api) getAgent(w http.ResponseWriter, r *http.Request, p *principal) error {
	svc, err := a.agentService()
	if err != nil {
		return err
	}
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	st, err := svc.AgentStatus(r.Context(), p.tenant.ID, id)
	if err != nil {
		return agentError(err)
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}

func (a *api) listAgents(w http.ResponseWriter, r *http.Request, p *principal) error {
	if _, err := newQuery(r); err != nil {
		return err
	}
	agents, err := a.Store.Agents(r.Context(), p.tenant.ID)
	if err != nil {
		return err
	}
	type agentView struct {
		ConnectionID int64 `json:"connection_id"`
		agentserver.Status
	}
	out := make([]agentView, len(agents))
	now := a.Now()
	for i, ag := range agents {
		out[i] = agentView{ConnectionID: ag.ConnectionID, Status: agentserver.StatusOf(ag, now)}
	}
	writeJSON(w, http.StatusOK, map[string]any{"agents": out})
	return nil
}

func (a *api) revokeAgent(w http.ResponseWriter, r *http.Request, p *principal) error {
	svc, err := a.agentService()
	if err != nil {
		return err
	}
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	ctx := r.Context()
	if _, err := svc.AgentStatus(ctx, p.tenant.ID, id); err != nil {
		return agentError(err)
	}
	var revoked store.Agent
	err = a.Store.InTx(ctx, func(tx *store.Store) error {
		var err error
		if revoked, err = tx.RevokeAgent(ctx, p.tenant.ID, id); err != nil {
			return err
		}
		return audit(ctx, tx, p, "agent.revoked", "connection", id, agentserver.StatusOf(revoked, a.Now()), nil)
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
