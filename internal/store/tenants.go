package store

import (
	"cmp"
	"context"
	"crypto/subtle"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

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

const loginColumns = `id, tenant_id, email, role, disabled_at, created_at, updated_at`

// UpsertLogin creates the login (tenant, email) or updates its role. Emails
// compare case-insensitively (they are stored lower-cased).
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
		if _, err := tx.exec(ctx, `UPDATE logins SET role = ?, updated_at = ? WHERE id = ? AND tenant_id = ?`, role, now, cur.ID, tenantID); err != nil {
			return fmt.Errorf("update login %s: %w", email, err)
		}
		out.Role, out.UpdatedAt, changed = role, now, true
		return nil
	})
	return out, changed, err
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

// APIToken is the stored form of a login's bearer token: only its hash.
type APIToken struct {
	ID         int64      `db:"id" json:"id"`
	TenantID   int64      `db:"tenant_id" json:"tenant_id"`
	LoginID    int64      `db:"login_id" json:"login_id"`
	Hash       []byte     `db:"token_hash" json:"-"`
	Prefix     string     `db:"prefix" json:"prefix"`
	CreatedAt  time.Time  `db:"created_at" json:"created_at"`
	ExpiresAt  *time.Time `db:"expires_at" json:"expires_at"`
	RevokedAt  *time.Time `db:"revoked_at" json:"revoked_at"`
	LastUsedAt *time.Time `db:"last_used_at" json:"last_used_at"`
}

// ErrTokenInvalid: the token is unknown, revoked, expired or its login is
// disabled.
var ErrTokenInvalid = errors.New("invalid, revoked or expired token")

// CreateAPIToken stores the hash of a new token of login (the caller made the
// token and shows it once).
func (s *Store) CreateAPIToken(ctx context.Context, tenantID, loginID int64, hash []byte, prefix string, expiresAt time.Time) (APIToken, error) {
	if _, err := s.Login(ctx, tenantID, loginID); err != nil {
		return APIToken{}, err
	}
	now := s.stamp()
	id, err := s.insertID(ctx, `INSERT INTO api_tokens (tenant_id, login_id, token_hash, prefix, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)`,
		tenantID, loginID, hash, prefix, now, nullTime(expiresAt))
	if err != nil {
		return APIToken{}, fmt.Errorf("create token: %w", err)
	}
	return s.apiToken(ctx, tenantID, id)
}

func (s *Store) apiToken(ctx context.Context, tenantID, id int64) (APIToken, error) {
	var t APIToken
	err := s.get(ctx, &t, `SELECT id, tenant_id, login_id, token_hash, prefix, created_at, expires_at, revoked_at, last_used_at FROM api_tokens WHERE tenant_id = ? AND id = ?`, tenantID, id)
	if err != nil {
		return t, notFound(err, "token", id)
	}
	return t, nil
}

// Authenticate finds the login owning a token hash. It fails with
// ErrTokenInvalid for unknown, revoked or expired tokens and disabled logins.
func (s *Store) Authenticate(ctx context.Context, hash []byte) (Login, APIToken, error) {
	var tok APIToken
	err := s.get(ctx, &tok, `SELECT id, tenant_id, login_id, token_hash, prefix, created_at, expires_at, revoked_at, last_used_at FROM api_tokens WHERE token_hash = ?`, hash)
	if errors.Is(err, sql.ErrNoRows) {
		return Login{}, tok, ErrTokenInvalid
	}
	if err != nil {
		return Login{}, tok, fmt.Errorf("authenticate: %w", err)
	}
	now := s.stamp()
	if subtle.ConstantTimeCompare(tok.Hash, hash) != 1 || tok.RevokedAt != nil || (tok.ExpiresAt != nil && !now.Before(*tok.ExpiresAt)) {
		return Login{}, tok, ErrTokenInvalid
	}
	login, err := s.Login(ctx, tok.TenantID, tok.LoginID)
	if err != nil || login.DisabledAt != nil {
		return Login{}, tok, ErrTokenInvalid
	}
	if tok.LastUsedAt == nil || now.Sub(*tok.LastUsedAt) > time.Minute {
		_, _ = s.exec(ctx, `UPDATE api_tokens SET last_used_at = ? WHERE id = ?`, now, tok.ID)
	}
	return login, tok, nil
}

// RevokeAPIToken revokes the tenant's token id.
func (s *Store) RevokeAPIToken(ctx context.Context, tenantID, id int64) error {
	res, err := s.exec(ctx, `UPDATE api_tokens SET revoked_at = ? WHERE tenant_id = ? AND id = ? AND revoked_at IS NULL`, s.stamp(), tenantID, id)
	if err != nil {
		return fmt.Errorf("revoke token %d: %w", id, err)
	}
	return mustAffect(res, "token", id)
}
