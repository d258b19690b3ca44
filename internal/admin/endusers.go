package admin

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"selfserve/internal/report"
	"selfserve/internal/rules"
	"selfserve/internal/service"
	"selfserve/internal/store"
)

// endUserRow builds the listed row of u (its status, active flag,
// switch_locked and provenance come from package report).
func (a *api) endUserRow(ctx context.Context, st *store.Store, tenant store.Tenant, u store.EndUser) (report.EndUser, error) {
	names := report.Names{Tenant: tenant, Customers: map[int64]store.Customer{}, Connections: map[int64]store.Connection{}}
	c, err := st.Customer(ctx, tenant.ID, u.CustomerID)
	if err != nil {
		return report.EndUser{}, err
	}
	names.Customers[c.ID] = c
	if u.ConnectionID != nil {
		conn, err := st.Connection(ctx, tenant.ID, *u.ConnectionID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return report.EndUser{}, err
		}
		names.Connections[conn.ID] = conn
	}
	return report.NewEndUser(u, names), nil
}

// sources are the values the source filter takes (rules.Sources).
var sources = func() []string {
	var out []string
	for _, s := range rules.Sources() {
		out = append(out, string(s))
	}
	return out
}()

var statuses = []string{string(rules.StatusIncomplete), string(rules.StatusWelcomeSent), string(rules.StatusRegistrationComplete), string(rules.StatusAccessedSelfServe)}

// listEndUsers lists a customer's end users by id, filtered, in pages:
// pass the response's next_after as after for the next page.
func (a *api) listEndUsers(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	q, err := newQuery(r, "status", "active", "locked", "privileged", "source", "include_removed", "after", "limit")
	if err != nil {
		return err
	}
	status := q.str("status")
	if status != "" && !contains(statuses, status) {
		return badField("status", "%q is not a status; use %s", truncate(status, 40), strings.Join(statuses, ", "))
	}
	source := q.str("source")
	if source != "" && !contains(sources, source) {
		return badField("source", "%q is not a source; use %s", truncate(source, 40), strings.Join(sources, ", "))
	}
	active, err := q.boolean("active")
	if err != nil {
		return err
	}
	locked, err := q.boolean("locked")
	if err != nil {
		return err
	}
	privileged, err := q.boolean("privileged")
	if err != nil {
		return err
	}
	removed, err := q.boolean("include_removed")
	if err != nil {
		return err
	}
	after, err := q.int("after", 0, 1<<62, 0)
	if err != nil {
		return err
	}
	limit, err := q.int("limit", 1, 500, 100)
	if err != nil {
		return err
	}
	ctx := r.Context()
	customer, err := a.Store.Customer(ctx, p.tenant.ID, id)
	if err != nil {
		return err
	}
	conns, err := a.Store.Connections(ctx, p.tenant.ID)
	if err != nil {
		return err
	}
	names := report.Names{Tenant: p.tenant, Customers: map[int64]store.Customer{customer.ID: customer}, Connections: map[int64]store.Connection{}}
	for _, c := range conns {
		names.Connections[c.ID] = c
	}
	filter := store.EndUserFilter{CustomerID: customer.ID, Source: rules.Source(source), LockedOut: locked, Privileged: privileged, IncludeRemoved: removed != nil && *removed}
	// Status and active are derived by the rules, so they filter here; the
	// store filters the rest and pages by id.
	batch := int(max(2*limit, 200))
	rows := []report.EndUser{}
	var next *int64
	filter.AfterID = after
scan:
	for {
		filter.Limit = batch
		users, err := a.Store.EndUsers(ctx, p.tenant.ID, filter)
		if err != nil {
			return err
		}
		for _, u := range users {
			row := report.NewEndUser(u, names)
			if (status != "" && string(row.Status) != status) || (active != nil && row.Active != *active) {
				continue
			}
			rows = append(rows, row)
			if int64(len(rows)) == limit {
				id := row.ID
				next = &id
				break scan
			}
		}
		if len(users) < batch {
			break
		}
		filter.AfterID = users[len(users)-1].ID
	}
	writeJSON(w, http.StatusOK, map[string]any{"end_users": rows, "next_after": next})
	return nil
}

func (a *api) getEndUser(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	ctx := r.Context()
	u, err := a.Store.EndUser(ctx, p.tenant.ID, id)
	if err != nil {
		return err
	}
	row, err := a.endUserRow(ctx, a.Store, p.tenant, u)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, row)
	return nil
}

type contactEdit = service.ContactEdit

var selfServeAvailable = service.SelfServeAvailable

func (a *api) patchEndUser(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var req contactEdit
	if err := a.decodeBody(w, r, &req); err != nil {
		return err
	}
	ctx := r.Context()
	after, err := a.svc.UpdateContact(ctx, p.asActor(), id, req)
	if err != nil {
		return err
	}
	row, err := a.endUserRow(ctx, a.Store, p.tenant, after)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, row)
	return nil
}

type switchRequest struct {
	Enabled *bool `json:"enabled"`
}

func (a *api) setSelfServe(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var req switchRequest
	if err := a.decodeBody(w, r, &req); err != nil {
		return err
	}
	if req.Enabled == nil {
		return badField("enabled", "enabled is required: true allows self-serve, false disallows it")
	}
	ctx := r.Context()
	if _, err := a.Store.EndUser(ctx, p.tenant.ID, id); err != nil {
		return err
	}
	if _, _, err := a.svc.SetSelfServe(ctx, p.asActor(), []int64{id}, *req.Enabled); err != nil {
		return err
	}
	u, err := a.Store.EndUser(ctx, p.tenant.ID, id)
	if err != nil {
		return err
	}
	tenant, err := a.Store.Tenant(ctx, p.tenant.ID)
	if err != nil {
		return err
	}
	row, err := a.endUserRow(ctx, a.Store, tenant, u)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, row)
	return nil
}

// maxBulkIDs bounds a bulk switch.
const maxBulkIDs = 1000

type bulkRequest struct {
	IDs     []int64 `json:"ids"`
	Enabled *bool   `json:"enabled"`
}

func (a *api) bulkSelfServe(w http.ResponseWriter, r *http.Request, p *principal) error {
	var req bulkRequest
	if err := a.decodeBody(w, r, &req); err != nil {
		return err
	}
	if req.Enabled == nil {
		return badField("enabled", "enabled is required: true allows self-serve, false disallows it")
	}
	if err := service.CheckIDs(req.IDs, maxBulkIDs); err != nil {
		return err
	}
	changed, unchanged, err := a.svc.SetSelfServe(r.Context(), p.asActor(), req.IDs, *req.Enabled)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"enabled": *req.Enabled, "changed": changed, "unchanged": unchanged})
	return nil
}

func (a *api) sendWelcome(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var none struct{}
	if err := a.decodeOptionalBody(w, r, &none); err != nil {
		return err
	}
	if err := a.svc.RequestWelcome(r.Context(), p.asActor(), id); err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"queued": true, "end_user_id": id})
	return nil
}
