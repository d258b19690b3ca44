package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"

	"selfserve/internal/rules"
)

const tenantColumns = `id, name, subscription, self_serve, timezone, send_hour, reminder_days, privileged_self_serve, verification, created_at, updated_at`

// UpsertTenant creates the tenant named t.Name or updates its settings. It
// reports whether anything changed.
func (s *Store) UpsertTenant(ctx context.Context, t Tenant) (Tenant, bool, error) {
	var out Tenant
	changed := false
	t.PrivilegedSelfServe = cmp.Or(t.PrivilegedSelfServe, rules.PrivilegedDeny)
	err := s.InTx(ctx, func(tx *Store) error {
		if t.Verification == "" {
			t.Verification = rules.VerifySMS
		}
		cur, err := tx.TenantByName(ctx, t.Name)
		now := tx.stamp()
		switch {
		case errors.Is(err, ErrNotFound):
			t.ID, err = tx.insertID(ctx, `INSERT INTO tenants (name, subscription, self_serve, timezone, send_hour, reminder_days, privileged_self_serve, verification, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				t.Name, t.Subscription, t.SelfServe, t.TimeZone, t.SendHour, t.ReminderDays, t.PrivilegedSelfServe, t.Verification, now, now)
			if err != nil {
				return fmt.Errorf("create tenant %q: %w", t.Name, err)
			}
			t.CreatedAt, t.UpdatedAt = now, now
			out, changed = t, true
			return nil
		case err != nil:
			return err
		}
		if cur.Subscription == t.Subscription && cur.SelfServe == t.SelfServe && cur.TimeZone == t.TimeZone && cur.SendHour == t.SendHour && cur.ReminderDays == t.ReminderDays &&
			cur.PrivilegedSelfServe == t.PrivilegedSelfServe && cur.Verification == t.Verification {
			out = cur
			return nil
		}
		t.ID, t.CreatedAt, t.UpdatedAt = cur.ID, cur.CreatedAt, now
		if err := tx.UpdateTenant(ctx, t); err != nil {
			return err
		}
		out, changed = t, true
		return nil
	})
	return out, changed, err
}

// UpdateTenant writes the settings of tenant t.ID.
func (s *Store) UpdateTenant(ctx context.Context, t Tenant) error {
	res, err := s.exec(ctx, `UPDATE tenants SET subscription = ?, self_serve = ?, timezone = ?, send_hour = ?, reminder_days = ?, privileged_self_serve = ?, verification = ?, updated_at = ? WHERE id = ?`,
		t.Subscription, t.SelfServe, t.TimeZone, t.SendHour, t.ReminderDays, cmp.Or(t.PrivilegedSelfServe, rules.PrivilegedDeny), cmp.Or(t.Verification, rules.VerifySMS), s.stamp(), t.ID)
	if err != nil {
		return fmt.Errorf("update tenant %d: %w", t.ID, err)
	}
	return mustAffect(res, "tenant", t.ID)
}

// Tenant returns the tenant with id.
func (s *Store) Tenant(ctx context.Context, id int64) (Tenant, error) {
	var t Tenant
	err := s.get(ctx, &t, `SELECT `+tenantColumns+` FROM tenants WHERE id = ?`, id)
	if err != nil {
		return t, notFound(err, "tenant", id)
	}
	return t, nil
}

// TenantByName returns the tenant with name.
func (s *Store) TenantByName(ctx context.Context, name string) (Tenant, error) {
	var t Tenant
	err := s.get(ctx, &t, `SELECT `+tenantColumns+` FROM tenants WHERE name = ?`, name)
	if err != nil {
		return t, notFound(err, "tenant", fmt.Sprintf("%q", name))
	}
	return t, nil
}

// Tenants lists every tenant by name.
func (s *Store) Tenants(ctx context.Context) ([]Tenant, error) {
	var ts []Tenant
	err := s.list(ctx, &ts, `SELECT `+tenantColumns+` FROM tenants ORDER BY name`)
	return ts, err
}

func mustAffect(res sql.Result, what string, id any) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("%s %v: %w", what, id, ErrNotFound)
	}
	return nil
}
