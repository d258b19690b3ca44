package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

const loginColumns = `id, tenant_id, email, role, disabled_at, created_at, updated_at`

// LastSuperError refuses a change that would leave a tenant without an
// enabled super login, and so without anyone who may change roles. It is an
// ErrConflict.
type LastSuperError struct {
	// Email is the login that would have stopped being super.
	Email string
}

// Error implements error.
func (e *LastSuperError) Error() string {
	return fmt.Sprintf("%s is the tenant's last super login: a tenant keeps at least one super login: promote another first", e.Email)
}

// Is makes a *LastSuperError an ErrConflict.
func (e *LastSuperError) Is(target error) bool { return target == ErrConflict }

// UpsertLogin creates the login (tenant, email) or updates its role. Emails
// compare case-insensitively (they are stored lower-cased). Demoting the
// tenant's last enabled super login is a *LastSuperError, checked in the
// transaction of the change with the tenant's logins locked against a
// concurrent demotion.
func (s *Store) UpsertLogin(ctx context.Context, tenantID int64, email string, role Role) (Login, bool, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	var out Login
	changed := false
	err := s.InTx(ctx, func(tx *Store) error {
		cur, err := tx.LoginByEmail(ctx, tenantID, email)
		now := tx.stamp()
		switch {
		case errors.Is(err, ErrNotFound):
			id, err := tx.insertID(ctx, `INSERT INTO logins (tenant_id, email, role, created_at, updated_at) VALUES (?, ?, ?, ?, ?)`, tenantID, email, role, now, now)
			if err != nil {
				return fmt.Errorf("create login %s: %w", email, err)
			}
			out = Login{ID: id, TenantID: tenantID, Email: email, Role: role, CreatedAt: now, UpdatedAt: now}
			changed = true
			return nil
		case err != nil:
			return err
		}
		out = cur
		if cur.Role == role {
			return nil
		}
		if cur.Role == RoleSuper && cur.DisabledAt == nil {
			if err := tx.keepOneSuper(ctx, tenantID, cur); err != nil {
				return err
			}
		}
		if _, err := tx.exec(ctx, `UPDATE logins SET role = ?, updated_at = ? WHERE id = ? AND tenant_id = ?`, role, now, cur.ID, tenantID); err != nil {
			return fmt.Errorf("update login %s: %w", email, err)
		}
		out.Role, out.UpdatedAt, changed = role, now, true
		return nil
	})
	return out, changed, err
}

// keepOneSuper refuses with a *LastSuperError when login is the tenant's
// only enabled super login. On PostgreSQL it first locks the tenant's row,
// which every demotion of the tenant's super logins takes: the second of
// two concurrent demotions waits for the first to commit and then counts
// without it (SQLite's transactions are serialised already).
func (s *Store) keepOneSuper(ctx context.Context, tenantID int64, login Login) error {
	if s.dialect == Postgres {
		var id int64
		if err := s.get(ctx, &id, `SELECT id FROM tenants WHERE id = ? FOR UPDATE`, tenantID); err != nil {
			return notFound(err, "tenant", tenantID)
		}
	}
	var others int
	if err := s.get(ctx, &others, `SELECT count(*) FROM logins WHERE tenant_id = ? AND role = ? AND disabled_at IS NULL AND id <> ?`, tenantID, RoleSuper, login.ID); err != nil {
		return fmt.Errorf("count super logins: %w", err)
	}
	if others == 0 {
		return &LastSuperError{Email: login.Email}
	}
	return nil
}

// LoginByEmail returns the tenant's login with email.
func (s *Store) LoginByEmail(ctx context.Context, tenantID int64, email string) (Login, error) {
	var l Login
	err := s.get(ctx, &l, `SELECT `+loginColumns+` FROM logins WHERE tenant_id = ? AND email = ?`, tenantID, strings.ToLower(strings.TrimSpace(email)))
	if err != nil {
		return l, notFound(err, "login", email)
	}
	return l, nil
}

// Login returns the tenant's login with id.
func (s *Store) Login(ctx context.Context, tenantID, id int64) (Login, error) {
	var l Login
	err := s.get(ctx, &l, `SELECT `+loginColumns+` FROM logins WHERE tenant_id = ? AND id = ?`, tenantID, id)
	if err != nil {
		return l, notFound(err, "login", id)
	}
	return l, nil
}

// Logins lists the tenant's logins by email.
func (s *Store) Logins(ctx context.Context, tenantID int64) ([]Login, error) {
	var ls []Login
	if err := s.list(ctx, &ls, `SELECT `+loginColumns+` FROM logins WHERE tenant_id = ? ORDER BY email`, tenantID); err != nil {
		return nil, fmt.Errorf("list logins: %w", err)
	}
	return ls, nil
}

// LoginsByEmail lists the enabled logins of every tenant with the email
// (sign-in knows the email, not the tenant).
func (s *Store) LoginsByEmail(ctx context.Context, email string) ([]Login, error) {
	var ls []Login
	if err := s.list(ctx, &ls, `SELECT `+loginColumns+` FROM logins WHERE lower(email) = lower(?) AND disabled_at IS NULL ORDER BY id`, email); err != nil {
		return nil, fmt.Errorf("logins by email: %w", err)
	}
	return ls, nil
}
