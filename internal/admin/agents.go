package admin

import (
	"net/http"

	"selfserve/internal/agentserver"
)

func (a *api) createInstallCode(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	if err := a.decodeOptionalBody(w, r, &struct{}{}); err != nil {
		return err
	}
	code, err := a.svc.IssueInstallCode(r.Context(), p.asActor(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, code)
	return nil
}

func (a *api) getAgent(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	st, err := a.svc.AgentStatus(r.Context(), p.asActor(), id)
	if err != nil {
		return err
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
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	if err := a.svc.RevokeAgent(r.Context(), p.asActor(), id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
