package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// AuditRecord is one change to record in a tenant's audit log: who made it
// (LoginID nil when no console login did: the CLI, apply, the sync engine, an
// end user), what it was, to which object, and the object before and after.
type AuditRecord struct {
	TenantID int64
	LoginID  *int64
	// Actor names who made the change: a login's email, "cli:token",
	// "apply", "end_user:42"…
	Actor string
	// Action is what happened, as object.verb: "login.created".
	Action     string
	ObjectType string
	ObjectID   string
	// Before and After are marshalled to JSON (nil is JSON null).
	Before, After any
}

// Audit records r in its tenant's audit log.
func (s *Store) Audit(ctx context.Context, r AuditRecord) error {
	args, err := auditArgs(r, s.stamp())
	if err != nil {
		return err
	}
	if _, err = s.exec(ctx, `INSERT INTO audit_log (`+auditColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, args...); err != nil {
		return fmt.Errorf("audit %s %s/%s: %w", r.Action, r.ObjectType, r.ObjectID, err)
	}
	return nil
}

// auditColumns are the columns auditArgs fills, in its order.
const auditColumns = `tenant_id, login_id, actor, action, object_type, object_id, before, after, at`

// auditArgs are r's values for auditColumns, recorded at at.
func auditArgs(r AuditRecord, at time.Time) ([]any, error) {
	b, err := json.Marshal(r.Before)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	a, err := json.Marshal(r.After)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	return []any{r.TenantID, r.LoginID, r.Actor, r.Action, r.ObjectType, r.ObjectID, string(b), string(a), at}, nil
}

// AuditFilter narrows an audit log listing. Zero fields do not filter.
type AuditFilter struct {
	Action     string
	ObjectType string
	ObjectID   string
	LoginID    int64
	Since      time.Time
	Until      time.Time
	// Limit caps the rows (default 100, max 1000); BeforeID pages backwards.
	Limit    int
	BeforeID int64
}

// AuditLog lists the tenant's audit entries, newest first.
func (s *Store) AuditLog(ctx context.Context, tenantID int64, f AuditFilter) ([]AuditEntry, error) {
	q := `SELECT id, tenant_id, login_id, actor, action, object_type, object_id, before, after, at FROM audit_log WHERE tenant_id = ?`
	args := []any{tenantID}
	add := func(cond string, v any) { q += " AND " + cond; args = append(args, v) }
	if f.Action != "" {
		add("action = ?", f.Action)
	}
	if f.ObjectType != "" {
		add("object_type = ?", f.ObjectType)
	}
	if f.ObjectID != "" {
		add("object_id = ?", f.ObjectID)
	}
	if f.LoginID != 0 {
		add("login_id = ?", f.LoginID)
	}
	if !f.Since.IsZero() {
		add("at >= ?", f.Since.UTC())
	}
	if !f.Until.IsZero() {
		add("at < ?", f.Until.UTC())
	}
	if f.BeforeID != 0 {
		add("id < ?", f.BeforeID)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, 1000)
	q += fmt.Sprintf(" ORDER BY id DESC LIMIT %d", limit)
	var out []AuditEntry
	err := s.list(ctx, &out, q, args...)
	return out, err
}
