package console

import (
	"fmt"
	"net/http"
	"strconv"

	"selfserve/internal/service"
	"selfserve/internal/store"
)

// connectionRow is a connection as listed, with its last run.
type connectionRow struct {
	store.Connection
	Customer string
	LastRun  *store.SyncRun
}

// connectionsView is the connections page's data.
type connectionsView struct {
	Connections []connectionRow
}

func (c *Console) connectionsPage(w http.ResponseWriter, r *http.Request, s *session) error {
	ctx := r.Context()
	t := s.actor.Tenant
	conns, err := c.st.Connections(ctx, t.ID)
	if err != nil {
		return err
	}
	customers, err := c.st.Customers(ctx, t.ID)
	if err != nil {
		return err
	}
	names := map[int64]string{}
	for _, cu := range customers {
		names[cu.ID] = cu.Name
	}
	var v connectionsView
	for _, co := range conns {
		row := connectionRow{Connection: co}
		if co.CustomerID != nil {
			row.Customer = names[*co.CustomerID]
		}
		runs, err := c.st.Runs(ctx, t.ID, co.ID, 1)
		if err != nil {
			return err
		}
		if len(runs) > 0 {
			row.LastRun = &runs[0]
		}
		v.Connections = append(v.Connections, row)
	}
	c.render(w, http.StatusOK, "connections", "", s, "Connections", v)
	return nil
}

// connectionView is one connection's page: the import form and its runs.
type connectionView struct {
	Connection store.Connection
	Customer   string
	Directory  bool
	Runs       []store.SyncRun
}

func (c *Console) connectionPage(w http.ResponseWriter, r *http.Request, s *session) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	t := s.actor.Tenant
	co, err := c.st.Connection(ctx, t.ID, id)
	if err != nil {
		return err
	}
	v := connectionView{Connection: co, Directory: co.Kind.IsDirectory()}
	if co.CustomerID != nil {
		cu, err := c.st.Customer(ctx, t.ID, *co.CustomerID)
		if err != nil {
			return err
		}
		v.Customer = cu.Name
	}
	if v.Runs, err = c.st.Runs(ctx, t.ID, co.ID, 20); err != nil {
		return err
	}
	c.render(w, http.StatusOK, "connection", "", s, co.Name, v)
	return nil
}

// startImport sets the connection's "Enable Self Serve" default and starts
// a run: a sync for directories, a customer import for PSAs.
func (c *Console) startImport(w http.ResponseWriter, r *http.Request, s *session) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	if err := onlyFields(r, "enable_self_serve", "mode"); err != nil {
		return err
	}
	on, err := parseEnabled(r.PostForm.Get("enable_self_serve"))
	if err != nil {
		return service.BadField("enable_self_serve", "enable_self_serve is true or false")
	}
	mode := store.ModeIncremental
	switch r.PostForm.Get("mode") {
	case "", string(store.ModeIncremental):
	case string(store.ModeFull):
		mode = store.ModeFull
	default:
		return service.BadField("mode", "mode is full or incremental")
	}
	ctx := r.Context()
	co, err := c.svc.SetConnectionSelfServe(ctx, s.actor, id, on)
	if err != nil {
		return err
	}
	kind, action := service.RunSync, "sync.requested"
	if !co.Kind.IsDirectory() {
		kind, action, mode = service.RunCustomerImport, "customer_import.requested", store.ModeFull
	}
	run, err := c.svc.StartRun(ctx, s.actor, co, kind, mode, false, action)
	if err != nil {
		return err
	}
	http.Redirect(w, r, fmt.Sprintf("/runs/%d", run.ID), http.StatusSeeOther)
	return nil
}

// runView is a run's page: progress while it runs, the summary after.
type runView struct {
	Run        store.SyncRun
	Connection store.Connection
	Problems   []store.Problem
	Expected   int
	Percent    int
	Finished   bool
}

func (c *Console) runPage(w http.ResponseWriter, r *http.Request, s *session) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	t := s.actor.Tenant
	run, err := c.st.Run(ctx, t.ID, id)
	if err != nil {
		return err
	}
	co, err := c.st.Connection(ctx, t.ID, run.ConnectionID)
	if err != nil {
		return err
	}
	v := runView{Run: run, Connection: co, Problems: run.Problems(), Finished: run.Status.Finished()}
	if !v.Finished && co.Kind.IsDirectory() {
		if v.Expected, err = c.st.CountConnectionUsers(ctx, t.ID, co.ID); err != nil {
			return err
		}
		if v.Expected > 0 {
			v.Percent = min(99, 100*run.Processed/v.Expected)
		}
	}
	if r.URL.Query().Get("part") == "status" {
		c.render(w, http.StatusOK, "run", "run-status", s, "", v)
		return nil
	}
	c.render(w, http.StatusOK, "run", "", s, "Run "+strconv.FormatInt(run.ID, 10), v)
	return nil
}
