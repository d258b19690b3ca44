package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"

	"selfserve/internal/report"
	"selfserve/internal/rules"
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

var sources = []string{string(rules.SourceLocal), string(rules.SourceAD), string(rules.SourceAzure), string(rules.SourceManual)}

var statuses = []string{string(rules.StatusIncomplete), string(rules.StatusWelcomeSent), string(rules.StatusRegistrationComplete), string(rules.StatusAccessedSelfServe)}

// listEndUsers lists a customer's end users by id, filtered, in pages:
// pass the response's next_after as after for the next page.
func (a *api) listEndUsers(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	q, err := newQuery(r, "status", "active", "locked", "source", "include_removed", "after", "limit")
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
	filter := store.EndUserFilter{CustomerID: customer.ID, Source: rules.Source(source), LockedOut: locked, IncludeRemoved: removed != nil && *removed}
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

// contactEdit changes an end user's email and/or mobile; an absent field
// stays, "" clears it.
type contactEdit struct {
	Email  *string `json:"email"`
	Mobile *string `json:"mobile"`
}

// contactView is what a contact change audits.
type contactView struct {
	Email        string           `json:"email"`
	EmailSource  rules.Provenance `json:"email_source"`
	Mobile       string           `json:"mobile"`
	MobileSource rules.Provenance `json:"mobile_source"`
}

func newContactView(u store.EndUser) contactView {
	return contactView{Email: u.Email, EmailSource: u.EmailSource, Mobile: u.Mobile, MobileSource: u.MobileSource}
}

// maxEmailLength is the longest address accepted (RFC 5321's path limit).
const maxEmailLength = 254

// normalizeContact checks and normalises an edit: the email must be a bare
// address, the mobile a valid number (read in region when it has no country
// code), stored in E.164.
func normalizeContact(req contactEdit, region string) (email, mobile *string, err error) {
	if req.Email != nil {
		if len(*req.Email) > maxEmailLength {
			return nil, nil, badField("email", "the email address is longer than %d characters", maxEmailLength)
		}
		e, err := rules.NormalizeEmail(*req.Email)
		if err != nil || !utf8.ValidString(e) {
			return nil, nil, badField("email", "%v", err)
		}
		email = &e
	}
	if req.Mobile != nil {
		if len(*req.Mobile) > 40 {
			return nil, nil, badField("mobile", "the mobile number is longer than 40 characters")
		}
		m, err := rules.NormalizePhone(*req.Mobile, region)
		if err != nil {
			return nil, nil, badField("mobile", "%v", err)
		}
		mobile = &m
	}
	return email, mobile, nil
}

func (a *api) patchEndUser(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var req contactEdit
	if err := a.decodeBody(w, r, &req); err != nil {
		return err
	}
	if req.Email == nil && req.Mobile == nil {
		return badField("", "nothing to change: give email and/or mobile")
	}
	ctx := r.Context()
	u, err := a.Store.EndUser(ctx, p.tenant.ID, id)
	if err != nil {
		return err
	}
	customer, err := a.Store.Customer(ctx, p.tenant.ID, u.CustomerID)
	if err != nil {
		return err
	}
	email, mobile, err := normalizeContact(req, customer.DefaultRegion)
	if err != nil {
		return err
	}
	var row report.EndUser
	err = a.Store.InTx(ctx, func(tx *store.Store) error {
		before, after, err := tx.SetContact(ctx, p.tenant.ID, id, email, mobile, rules.ProvenanceManual)
		if err != nil {
			return err
		}
		if bv, av := newContactView(before), newContactView(after); bv != av {
			if err := audit(ctx, tx, p, "end_user.contact_updated", "end_user", id, bv, av); err != nil {
				return err
			}
		}
		row, err = a.endUserRow(ctx, tx, p.tenant, after)
		return err
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, row)
	return nil
}

// errLocked is the 409 of a switch change while the override is OFF.
var errLocked = &apiError{Status: http.StatusConflict, Code: "locked_by_override",
	Message: "locked by the tenant override: self-serve is turned off for the whole tenant, so end-user switches cannot change; a super or primary login can turn it on (PATCH /v1/tenant {\"self_serve\": true})"}

// selfServeAvailable refuses self-serve features on subscriptions without
// them.
func selfServeAvailable(t store.Tenant) error {
	if !t.Subscription.AllowsSelfServe() {
		return conflict("not_in_subscription", "the tenant's %q subscription does not include self-serve; it needs qdesk or bundle", t.Subscription)
	}
	return nil
}

// switchable checks, inside the change's transaction, that switches may
// change now.
func switchable(ctx context.Context, tx *store.Store, tenantID int64) error {
	t, err := tx.Tenant(ctx, tenantID)
	if err != nil {
		return err
	}
	if err := selfServeAvailable(t); err != nil {
		return err
	}
	if rules.SwitchLocked(t.Rules()) {
		return errLocked
	}
	return nil
}

type switchRequest struct {
	Enabled *bool `json:"enabled"`
}

type switchAudit struct {
	SelfServe bool `json:"self_serve"`
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
	on := *req.Enabled
	ctx := r.Context()
	var row report.EndUser
	err = a.Store.InTx(ctx, func(tx *store.Store) error {
		if _, err := tx.EndUser(ctx, p.tenant.ID, id); err != nil {
			return err
		}
		if err := switchable(ctx, tx, p.tenant.ID); err != nil {
			return err
		}
		before, err := tx.SetSelfServe(ctx, p.tenant.ID, []int64{id}, on)
		if err != nil {
			return err
		}
		if before[0].SelfServe != on {
			if err := audit(ctx, tx, p, "end_user.self_serve_changed", "end_user", id, switchAudit{before[0].SelfServe}, switchAudit{on}); err != nil {
				return err
			}
		}
		u, err := tx.EndUser(ctx, p.tenant.ID, id)
		if err != nil {
			return err
		}
		tenant, err := tx.Tenant(ctx, p.tenant.ID)
		if err != nil {
			return err
		}
		row, err = a.endUserRow(ctx, tx, tenant, u)
		return err
	})
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

// checkBulk validates a bulk request's shape: ids given, positive, unique,
// at most maxBulkIDs; enabled given.
func checkBulk(req bulkRequest) error {
	if req.Enabled == nil {
		return badField("enabled", "enabled is required: true allows self-serve, false disallows it")
	}
	if len(req.IDs) == 0 {
		return badField("ids", "ids is required: a list of end-user ids")
	}
	if len(req.IDs) > maxBulkIDs {
		return badField("ids", "%d ids; at most %d per request", len(req.IDs), maxBulkIDs)
	}
	seen := make(map[int64]bool, len(req.IDs))
	var items []itemError
	for _, id := range req.IDs {
		switch {
		case id <= 0:
			items = append(items, itemError{ID: id, Code: "invalid", Message: "not an id (a positive integer)"})
		case seen[id]:
			items = append(items, itemError{ID: id, Code: "duplicate", Message: "given more than once"})
		}
		seen[id] = true
	}
	if len(items) > 0 {
		return &apiError{Status: http.StatusBadRequest, Code: "invalid_field", Field: "ids", Items: items,
			Message: fmt.Sprintf("%d of the ids are not valid (see items); nothing was changed", len(items))}
	}
	return nil
}

func (a *api) bulkSelfServe(w http.ResponseWriter, r *http.Request, p *principal) error {
	var req bulkRequest
	if err := a.decodeBody(w, r, &req); err != nil {
		return err
	}
	if err := checkBulk(req); err != nil {
		return err
	}
	on := *req.Enabled
	ctx := r.Context()
	changed, unchanged := []int64{}, []int64{}
	err := a.Store.InTx(ctx, func(tx *store.Store) error {
		var items []itemError
		for _, id := range req.IDs {
			if _, err := tx.EndUser(ctx, p.tenant.ID, id); errors.Is(err, store.ErrNotFound) {
				items = append(items, itemError{ID: id, Code: "not_found", Message: fmt.Sprintf("end user %d: not found", id)})
			} else if err != nil {
				return err
			}
		}
		if len(items) > 0 {
			ids := make([]string, len(items))
			for i, it := range items {
				ids[i] = fmt.Sprint(it.ID)
			}
			return &apiError{Status: http.StatusNotFound, Code: "not_found", Field: "ids", Items: items,
				Message: fmt.Sprintf("end users %s: not found; nothing was changed", strings.Join(ids, ", "))}
		}
		if err := switchable(ctx, tx, p.tenant.ID); err != nil {
			return err
		}
		before, err := tx.SetSelfServe(ctx, p.tenant.ID, req.IDs, on)
		if err != nil {
			return err
		}
		for _, u := range before {
			if u.SelfServe == on {
				unchanged = append(unchanged, u.ID)
				continue
			}
			changed = append(changed, u.ID)
			if err := audit(ctx, tx, p, "end_user.self_serve_changed", "end_user", u.ID, switchAudit{u.SelfServe}, switchAudit{on}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	slices.Sort(changed)
	slices.Sort(unchanged)
	writeJSON(w, http.StatusOK, map[string]any{"enabled": on, "changed": changed, "unchanged": unchanged})
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
	ctx := r.Context()
	u, err := a.Store.EndUser(ctx, p.tenant.ID, id)
	if err != nil {
		return err
	}
	if err := selfServeAvailable(p.tenant); err != nil {
		return err
	}
	switch {
	case !p.tenant.SelfServe:
		return conflict("self_serve_off", "self-serve is turned off for the whole tenant: no welcome email goes out while it is off")
	case u.Email == "":
		return conflict("no_email", "end user %d has no email address: set one (PATCH /v1/end-users/%d) before sending a welcome email", id, id)
	case u.RemovedAt != nil:
		return conflict("removed", "end user %d was removed from its source", id)
	case !u.Enabled:
		return conflict("disabled", "end user %d's account is disabled", id)
	case a.Enqueuer == nil:
		return unavailable("this server has no queue configured, so it cannot send welcome emails")
	}
	// The audit entry and the enqueue share the transaction: if the queue
	// refuses, no entry says the email was asked for.
	err = a.Store.InTx(ctx, func(tx *store.Store) error {
		if err := audit(ctx, tx, p, "end_user.welcome_requested", "end_user", id, nil, map[string]any{"email": u.Email}); err != nil {
			return err
		}
		if err := a.Enqueuer.EnqueueWelcome(ctx, p.tenant.ID, id); err != nil {
			a.log.Error("enqueue welcome failed", "end_user_id", id, "err", err)
			return unavailable("the welcome email could not be queued (is Redis up?); try again")
		}
		return nil
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"queued": true, "end_user_id": id})
	return nil
}
