package admin

import (
	"bytes"
	"encoding/json"
	"net/http"
	"time"

	"selfserve/connectors"
	"selfserve/internal/planner"
	"selfserve/internal/store"
)

// previewNotices shows the notices due at an instant (default now), for the
// whole tenant or one customer, sending nothing: what the expiry scan would
// write at that instant (one planner serves both).
func (a *api) previewNotices(w http.ResponseWriter, r *http.Request, p *principal) error {
	q, err := newQuery(r, "at", "customer_id")
	if err != nil {
		return err
	}
	at, err := q.time("at")
	if err != nil {
		return err
	}
	if at.IsZero() {
		at = a.Now()
	}
	customerID, err := q.int("customer_id", 1, 1<<62, 0)
	if err != nil {
		return err
	}
	scope := planner.Scope{TenantID: p.tenant.ID}
	if customerID != 0 {
		c, err := a.Store.Customer(r.Context(), p.tenant.ID, customerID)
		if err != nil {
			return err
		}
		scope.CustomerID = c.ID
	}
	pl := planner.Planner{Store: a.Store}
	due, err := pl.Preview(r.Context(), scope, at)
	if err != nil {
		return err
	}
	if due == nil {
		due = []planner.Due{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"at": at.UTC().Format(time.RFC3339), "notices": due})
	return nil
}

// listNotices is an end user's ledger: every notice recorded for them,
// newest first.
func (a *api) listNotices(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	q, err := newQuery(r, "limit")
	if err != nil {
		return err
	}
	limit, err := q.int("limit", 1, 500, 50)
	if err != nil {
		return err
	}
	ctx := r.Context()
	if _, err := a.Store.EndUser(ctx, p.tenant.ID, id); err != nil {
		return err
	}
	ns, err := a.Store.NoticesOfEndUser(ctx, p.tenant.ID, id, int(limit))
	if err != nil {
		return err
	}
	if ns == nil {
		ns = []store.Notice{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"notices": ns})
	return nil
}

// auditView is an audit entry with its before and after as JSON values.
type auditView struct {
	ID         int64           `json:"id"`
	LoginID    *int64          `json:"login_id"`
	Actor      string          `json:"actor"`
	Action     string          `json:"action"`
	ObjectType string          `json:"object_type"`
	ObjectID   string          `json:"object_id"`
	Before     json.RawMessage `json:"before"`
	After      json.RawMessage `json:"after"`
	At         time.Time       `json:"at"`
}

// redactConnectionAudit hides the secrets an audit entry of a connection
// may hold under its settings (entries written before settings and secrets
// were told apart).
func (a *api) redactConnectionAudit(raw json.RawMessage) json.RawMessage {
	var v map[string]json.RawMessage
	if json.Unmarshal(raw, &v) != nil || v["settings"] == nil {
		return raw
	}
	var kind connectors.Kind
	if json.Unmarshal(v["kind"], &kind) != nil {
		return raw
	}
	settings := a.Registry.RedactSettings(kind, v["settings"])
	if bytes.Equal(settings, v["settings"]) {
		return raw
	}
	v["settings"] = settings
	out, err := json.Marshal(v)
	if err != nil {
		return raw
	}
	return out
}

func rawOrNull(s string) json.RawMessage {
	if s == "" || !json.Valid([]byte(s)) {
		return json.RawMessage("null")
	}
	return json.RawMessage(s)
}

// auditLog lists the tenant's audit entries, newest first, filtered; pass
// next_before_id as before_id for the next page.
func (a *api) auditLog(w http.ResponseWriter, r *http.Request, p *principal) error {
	q, err := newQuery(r, "action", "object_type", "object_id", "login_id", "since", "until", "limit", "before_id")
	if err != nil {
		return err
	}
	f := store.AuditFilter{Action: q.str("action"), ObjectType: q.str("object_type"), ObjectID: q.str("object_id")}
	if err := checkCode("action", f.Action); err != nil {
		return err
	}
	if err := checkCode("object_type", f.ObjectType); err != nil {
		return err
	}
	if f.ObjectID != "" {
		if err := checkExternalID("object_id", f.ObjectID); err != nil {
			return err
		}
	}
	if f.LoginID, err = q.int("login_id", 1, 1<<62, 0); err != nil {
		return err
	}
	if f.Since, err = q.time("since"); err != nil {
		return err
	}
	if f.Until, err = q.time("until"); err != nil {
		return err
	}
	limit, err := q.int("limit", 1, 1000, 100)
	if err != nil {
		return err
	}
	f.Limit = int(limit)
	if f.BeforeID, err = q.int("before_id", 1, 1<<62, 0); err != nil {
		return err
	}
	entries, err := a.Store.AuditLog(r.Context(), p.tenant.ID, f)
	if err != nil {
		return err
	}
	out := make([]auditView, len(entries))
	for i, e := range entries {
		out[i] = auditView{ID: e.ID, LoginID: e.LoginID, Actor: e.Actor, Action: e.Action, ObjectType: e.ObjectType, ObjectID: e.ObjectID,
			Before: rawOrNull(e.Before), After: rawOrNull(e.After), At: e.At.UTC()}
		if e.ObjectType == "connection" {
			out[i].Before, out[i].After = a.redactConnectionAudit(out[i].Before), a.redactConnectionAudit(out[i].After)
		}
	}
	var next *int64
	if len(entries) == f.Limit {
		id := entries[len(entries)-1].ID
		next = &id
	}
	writeJSON(w, http.StatusOK, map[string]any{"entries": out, "next_before_id": next})
	return nil
}
