package admin

import (
	"net/http"

	"selfserve/internal/service"
	"selfserve/internal/store"
)

// connectionView is a connection as the API shows it: never its secrets.
type connectionView = service.ConnectionView

func (a *api) newConnectionView(c store.Connection) connectionView { return a.svc.NewConnectionView(c) }

func (a *api) listConnections(w http.ResponseWriter, r *http.Request, p *principal) error {
	if _, err := newQuery(r); err != nil {
		return err
	}
	cs, err := a.Store.Connections(r.Context(), p.tenant.ID)
	if err != nil {
		return err
	}
	out := make([]connectionView, len(cs))
	for i, c := range cs {
		out[i] = a.newConnectionView(c)
	}
	writeJSON(w, http.StatusOK, map[string]any{"connections": out})
	return nil
}

func (a *api) getConnection(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	c, err := a.Store.Connection(r.Context(), p.tenant.ID, id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a.newConnectionView(c))
	return nil
}

func (a *api) createConnection(w http.ResponseWriter, r *http.Request, p *principal) error {
	var req service.NewConnection
	if err := a.decodeBody(w, r, &req); err != nil {
		return err
	}
	created, err := a.svc.CreateConnection(r.Context(), p.asActor(), req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, a.newConnectionView(created))
	return nil
}

// patchedConnectionView is a connection after a PATCH.
type patchedConnectionView struct {
	connectionView
	// SecretsDropped says the stored secrets were dropped because an
	// endpoint setting changed without new secrets.
	SecretsDropped bool `json:"secrets_dropped"`
	// EndpointChanged lists the endpoint settings the PATCH changed.
	EndpointChanged []string `json:"endpoint_changed,omitempty"`
}

func (a *api) patchConnection(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var req service.ConnectionPatch
	if err := a.decodeBody(w, r, &req); err != nil {
		return err
	}
	up, err := a.svc.UpdateConnection(r.Context(), p.asActor(), id, req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, patchedConnectionView{a.newConnectionView(up.Connection), up.SecretsDropped, up.EndpointChanged})
	return nil
}

func (a *api) testConnection(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	res, err := a.svc.TestConnection(r.Context(), p.asActor(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

type syncRequest struct {
	// Mode is full or incremental (default: incremental, which is full when
	// the connection has no cursor or cannot do deltas).
	Mode string `json:"mode"`
	// ConfirmRemovals lets the run remove more than the allowed share.
	ConfirmRemovals bool `json:"confirm_removals"`
}

func (a *api) startSync(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var req syncRequest
	if err := a.decodeOptionalBody(w, r, &req); err != nil {
		return err
	}
	mode := store.ModeIncremental
	switch req.Mode {
	case "", string(store.ModeIncremental):
	case string(store.ModeFull):
		mode = store.ModeFull
	default:
		return badField("mode", "%q is not a mode; use full or incremental", truncate(req.Mode, 40))
	}
	ctx := r.Context()
	conn, err := a.Store.Connection(ctx, p.tenant.ID, id)
	if err != nil {
		return err
	}
	if !conn.Kind.IsDirectory() {
		return conflict("wrong_kind", "connection %q is a %s connection: import its customers with POST /v1/customers/import", conn.Name, conn.Kind)
	}
	run, err := a.svc.StartRun(ctx, p.asActor(), conn, service.RunSync, mode, req.ConfirmRemovals, "sync.requested")
	if err != nil {
		return err
	}
	expected, err := a.Store.CountConnectionUsers(ctx, p.tenant.ID, conn.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, newRunView(run, expected))
	return nil
}

// runView is a run with its progress.
type runView struct {
	store.SyncRun
	Problems []store.Problem `json:"problems"`
	// Expected is how many end users the connection had before the run (an
	// estimate of the run's size; 0 when unknown).
	Expected int  `json:"expected"`
	Finished bool `json:"finished"`
}

func newRunView(run store.SyncRun, expected int) runView {
	problems := run.Problems()
	if problems == nil {
		problems = []store.Problem{}
	}
	return runView{SyncRun: run, Problems: problems, Expected: expected, Finished: run.Status.Finished()}
}

func (a *api) listRuns(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	q, err := newQuery(r, "limit")
	if err != nil {
		return err
	}
	limit, err := q.int("limit", 1, 200, 50)
	if err != nil {
		return err
	}
	ctx := r.Context()
	if _, err := a.Store.Connection(ctx, p.tenant.ID, id); err != nil {
		return err
	}
	runs, err := a.Store.Runs(ctx, p.tenant.ID, id, int(limit))
	if err != nil {
		return err
	}
	out := make([]runView, len(runs))
	for i, run := range runs {
		out[i] = newRunView(run, 0)
	}
	writeJSON(w, http.StatusOK, map[string]any{"runs": out})
	return nil
}

func (a *api) getRun(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	ctx := r.Context()
	run, err := a.Store.Run(ctx, p.tenant.ID, id)
	if err != nil {
		return err
	}
	expected := 0
	if !run.Status.Finished() {
		if expected, err = a.Store.CountConnectionUsers(ctx, p.tenant.ID, run.ConnectionID); err != nil {
			return err
		}
	}
	writeJSON(w, http.StatusOK, newRunView(run, expected))
	return nil
}
