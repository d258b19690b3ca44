package admin

import (
	"net/http"
	"strings"

	"selfserve/connectors"
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

type customerRequest struct {
	Name string `json:"name"`
	// TimeZone is an IANA zone; "" means the tenant's.
	TimeZone string `json:"timezone"`
	// DefaultRegion reads phone numbers without a country code.
	DefaultRegion string `json:"default_region"`
}

func (a *api) createCustomer(w http.ResponseWriter, r *http.Request, p *principal) error {
	var req customerRequest
	if err := a.decodeBody(w, r, &req); err != nil {
		return err
	}
	if err := checkName("name", req.Name, 200); err != nil {
		return err
	}
	if err := checkTimeZone("timezone", req.TimeZone, true); err != nil {
		return err
	}
	if err := checkRegion("default_region", req.DefaultRegion); err != nil {
		return err
	}
	ctx := r.Context()
	var c store.Customer
	err := a.Store.InTx(ctx, func(tx *store.Store) error {
		var err error
		c, err = tx.CreateCustomer(ctx, store.Customer{TenantID: p.tenant.ID, Name: req.Name, TimeZone: req.TimeZone, DefaultRegion: strings.ToUpper(req.DefaultRegion)})
		if err != nil {
			return err
		}
		return audit(ctx, tx, p, "customer.created", "customer", c.ID, nil, c)
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, c)
	return nil
}

// psaKinds are the connector kinds customers are imported from.
var psaKinds = []string{string(connectors.KindITGlue), string(connectors.KindHudu), string(connectors.KindConnectWise)}

type linkRequest struct {
	// Source is the PSA: itglue, hudu or connectwise.
	Source string `json:"source"`
	// ExternalID is the PSA's id of the customer.
	ExternalID string `json:"external_id"`
}

func (a *api) linkCustomer(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var req linkRequest
	if err := a.decodeBody(w, r, &req); err != nil {
		return err
	}
	if !contains(psaKinds, req.Source) {
		return badField("source", "%q is not a PSA; use %s", truncate(req.Source, 40), strings.Join(psaKinds, ", "))
	}
	if err := checkExternalID("external_id", req.ExternalID); err != nil {
		return err
	}
	ctx := r.Context()
	var after store.Customer
	err = a.Store.InTx(ctx, func(tx *store.Store) error {
		before, after0, err := tx.LinkCustomer(ctx, p.tenant.ID, id, req.Source, req.ExternalID)
		if err != nil {
			return err
		}
		after = after0
		return audit(ctx, tx, p, "customer.linked", "customer", id, before, after)
	})
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
	ctx := r.Context()
	conn, err := a.Store.Connection(ctx, p.tenant.ID, req.ConnectionID)
	if err != nil {
		return err
	}
	if conn.Kind.IsDirectory() {
		return conflict("wrong_kind", "connection %q is a %s directory connection: it imports end users, not customers; start it with POST /v1/connections/%d/sync", conn.Name, conn.Kind, conn.ID)
	}
	run, err := a.svc.StartRun(ctx, p.asActor(), conn, service.RunCustomerImport, store.ModeFull, false, "customer_import.requested")
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, newRunView(run, 0))
	return nil
}
