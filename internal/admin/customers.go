package admin

import (
	"net/http"

	"selfserve/internal/service"
	"selfserve/internal/store"
)

func (a *api) listCustomers(w http.ResponseWriter, r *http.Request, p *principal) error {
	if _, err := newQuery(r); err != nil {
		return err
	}
	cs, err := a.Store.Customers(r.Context(), p.tenant.ID)
	if err != nil {
		return err
	}
	if cs == nil {
		cs = []store.Customer{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"customers": cs})
	return nil
}

func (a *api) getCustomer(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	c, err := a.Store.Customer(r.Context(), p.tenant.ID, id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

func (a *api) createCustomer(w http.ResponseWriter, r *http.Request, p *principal) error {
	var req service.NewCustomer
	if err := a.decodeBody(w, r, &req); err != nil {
		return err
	}
	c, err := a.svc.CreateCustomer(r.Context(), p.asActor(), req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, c)
	return nil
}

func (a *api) linkCustomer(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var req service.CustomerLink
	if err := a.decodeBody(w, r, &req); err != nil {
		return err
	}
	after, err := a.svc.LinkCustomer(r.Context(), p.asActor(), id, req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, after)
	return nil
}

type importRequest struct {
	// ConnectionID is the PSA connection to import customers from.
	ConnectionID int64 `json:"connection_id"`
}

func (a *api) importCustomers(w http.ResponseWriter, r *http.Request, p *principal) error {
	var req importRequest
	if err := a.decodeBody(w, r, &req); err != nil {
		return err
	}
	if req.ConnectionID <= 0 {
		return badField("connection_id", "connection_id is required: the id of a PSA connection")
	}
	run, err := a.svc.ImportCustomers(r.Context(), p.asActor(), req.ConnectionID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, newRunView(run, 0))
	return nil
}
