package store

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"selfserve/connectors"
)

// This file holds what the admin HTTP API needs beyond the sync engine's
// methods: creating (not upserting) customers and connections, linking a
// customer to a PSA id, listing tokens, the self-serve app clients and the
// single use of signed link tokens.

// CreateCustomer creates a customer of c.TenantID by hand (source "manual"
// unless c.Source says otherwise). A customer of the same name, or with the
// same PSA id, is ErrConflict.
func (s *Store) CreateCustomer(ctx context.Context, c Customer) (Customer, error) {
	if c.Source == "" {
		c.Source = "manual"
	}
	now := s.stamp()
	id, err := s.insertID(ctx, `INSERT INTO customers (tenant_id, name, timezone, default_region, source, external_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		c.TenantID, c.Name, c.TimeZone, c.DefaultRegion, c.Source, nullString(c.ExternalID), now, now)
	if isUniqueViolation(err) {
		return Customer{}, fmt.Errorf("customer %q: %w: a customer of that name (or PSA id) exists already", c.Name, ErrConflict)
	}
	if err != nil {
		return Customer{}, fmt.Errorf("create customer %q: %w", c.Name, err)
	}
	return s.Customer(ctx, c.TenantID, id)
}

// LinkCustomer records that the tenant's manual customer id is the PSA's
// customer externalID of kind source ("itglue", "hudu", "connectwise"), so
// that later imports from that PSA update it instead of duplicating it. A
// customer already imported from or linked to a PSA, or another customer
// holding that PSA id, is ErrConflict. It returns the customer before and
// after.
func (s *Store) LinkCustomer(ctx context.Context, tenantID, id int64, source, externalID string) (before, after Customer, err error) {
	err = s.InTx(ctx, func(tx *Store) error {
		before, err = tx.Customer(ctx, tenantID, id)
		if err != nil {
			return err
		}
		if before.ExternalID != "" {
			return fmt.Errorf("customer %d is already linked to %s id %q: %w", id, before.Source, before.ExternalID, ErrConflict)
		}
		_, err = tx.exec(ctx, `UPDATE customers SET source = ?, external_id = ?, updated_at = ? WHERE tenant_id = ? AND id = ?`,
			source, externalID, tx.stamp(), tenantID, id)
		if isUniqueViolation(err) {
			return fmt.Errorf("%s id %q belongs to another customer of this tenant: %w", source, externalID, ErrConflict)
		}
		if err != nil {
			return fmt.Errorf("link customer %d: %w", id, err)
		}
		after, err = tx.Customer(ctx, tenantID, id)
		return err
	})
	return before, after, err
}

// CreateConnection creates a connection of c.TenantID. A connection of the
// same name is ErrConflict.
func (s *Store) CreateConnection(ctx context.Context, c Connection) (Connection, error) {
	if len(c.Settings) == 0 {
		c.Settings = json.RawMessage(`{}`)
	}
	now := s.stamp()
	id, err := s.insertID(ctx, `INSERT INTO connections (tenant_id, customer_id, name, kind, settings, secrets, enable_self_serve, schedule_seconds, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.TenantID, c.CustomerID, c.Name, c.Kind, string(c.Settings), c.SealedSecrets, c.EnableSelfServe, c.ScheduleSeconds, now, now)
	if isUniqueViolation(err) {
		return Connection{}, fmt.Errorf("connection %q: %w: a connection of that name exists already", c.Name, ErrConflict)
	}
	if err != nil {
		return Connection{}, fmt.Errorf("create connection %q: %w", c.Name, err)
	}
	return s.Connection(ctx, c.TenantID, id)
}

// UpdateConnection writes the settings, secrets, switch default and schedule
// of the tenant's connection c.ID (its name, kind and customer stay). With
// keepSecrets the stored secrets are kept whatever c.SealedSecrets holds.
// When the settings change the incremental cursor is dropped: the next run
// starts over. It returns the connection before and after.
func (s *Store) UpdateConnection(ctx context.Context, c Connection, keepSecrets bool) (before, after Connection, err error) {
	if len(c.Settings) == 0 {
		c.Settings = json.RawMessage(`{}`)
	}
	err = s.InTx(ctx, func(tx *Store) error {
		before, err = tx.Connection(ctx, c.TenantID, c.ID)
		if err != nil {
			return err
		}
		secrets := c.SealedSecrets
		if keepSecrets {
			secrets = before.SealedSecrets
		}
		cursor := before.Cursor
		if !connectors.SettingsEqual(before.Settings, c.Settings) {
			cursor = ""
		}
		if _, err := tx.exec(ctx, `UPDATE connections SET settings = ?, secrets = ?, enable_self_serve = ?, schedule_seconds = ?, cursor = ?, updated_at = ? WHERE tenant_id = ? AND id = ?`,
			string(c.Settings), secrets, c.EnableSelfServe, c.ScheduleSeconds, cursor, tx.stamp(), c.TenantID, c.ID); err != nil {
			return fmt.Errorf("update connection %d: %w", c.ID, err)
		}
		after, err = tx.Connection(ctx, c.TenantID, c.ID)
		return err
	})
	return before, after, err
}

// CountConnectionUsers counts the connection's end users still present in
// their source (a run's expected size, for progress).
func (s *Store) CountConnectionUsers(ctx context.Context, tenantID, connectionID int64) (int, error) {
	var n int
	err := s.get(ctx, &n, `SELECT COUNT(*) FROM end_users WHERE tenant_id = ? AND connection_id = ? AND removed_at IS NULL`, tenantID, connectionID)
	if err != nil {
		return 0, fmt.Errorf("count end users of connection %d: %w", connectionID, err)
	}
	return n, nil
}

// Logins lists the tenant's logins by email.
func (s *Store) Logins(ctx context.Context, tenantID int64) ([]Login, error) {
	var ls []Login
	if err := s.list(ctx, &ls, `SELECT `+loginColumns+` FROM logins WHERE tenant_id = ? ORDER BY email`, tenantID); err != nil {
		return nil, fmt.Errorf("list logins: %w", err)
	}
	return ls, nil
}

const apiTokenColumns = `id, tenant_id, login_id, token_hash, prefix, created_at, expires_at, revoked_at, last_used_at`

// APIToken returns the tenant's token id (its hash, never the token).
func (s *Store) APIToken(ctx context.Context, tenantID, id int64) (APIToken, error) {
	return s.apiToken(ctx, tenantID, id)
}

// APITokens lists the tenant's tokens, newest first: those of loginID, or
// every login's when loginID is 0.
func (s *Store) APITokens(ctx context.Context, tenantID, loginID int64) ([]APIToken, error) {
	q := `SELECT ` + apiTokenColumns + ` FROM api_tokens WHERE tenant_id = ?`
	args := []any{tenantID}
	if loginID != 0 {
		q += ` AND login_id = ?`
		args = append(args, loginID)
	}
	var ts []APIToken
	if err := s.list(ctx, &ts, q+` ORDER BY id DESC`, args...); err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	return ts, nil
}

// AppClient is a self-serve app (mobile or web) allowed to report end users'
// first access. Like API tokens, only its token's hash is stored.
type AppClient struct {
	ID         int64      `db:"id" json:"id"`
	TenantID   int64      `db:"tenant_id" json:"tenant_id"`
	Name       string     `db:"name" json:"name"`
	Hash       []byte     `db:"token_hash" json:"-"`
	Prefix     string     `db:"prefix" json:"prefix"`
	CreatedAt  time.Time  `db:"created_at" json:"created_at"`
	RevokedAt  *time.Time `db:"revoked_at" json:"revoked_at"`
	LastUsedAt *time.Time `db:"last_used_at" json:"last_used_at"`
}

const appClientColumns = `id, tenant_id, name, token_hash, prefix, created_at, revoked_at, last_used_at`

// CreateAppClient stores a new app client of the tenant with the hash of its
// token (the caller made the token and shows it once). A client of the same
// name, even revoked, is ErrConflict.
func (s *Store) CreateAppClient(ctx context.Context, tenantID int64, name string, hash []byte, prefix string) (AppClient, error) {
	id, err := s.insertID(ctx, `INSERT INTO app_clients (tenant_id, name, token_hash, prefix, created_at) VALUES (?, ?, ?, ?, ?)`,
		tenantID, name, hash, prefix, s.stamp())
	if isUniqueViolation(err) {
		return AppClient{}, fmt.Errorf("app client %q: %w: the name is taken (a revoked client keeps its name)", name, ErrConflict)
	}
	if err != nil {
		return AppClient{}, fmt.Errorf("create app client %q: %w", name, err)
	}
	return s.AppClient(ctx, tenantID, id)
}

// AppClient returns the tenant's app client id.
func (s *Store) AppClient(ctx context.Context, tenantID, id int64) (AppClient, error) {
	var c AppClient
	err := s.get(ctx, &c, `SELECT `+appClientColumns+` FROM app_clients WHERE tenant_id = ? AND id = ?`, tenantID, id)
	if err != nil {
		return c, notFound(err, "app client", id)
	}
	return c, nil
}

// AppClients lists the tenant's app clients by name.
func (s *Store) AppClients(ctx context.Context, tenantID int64) ([]AppClient, error) {
	var cs []AppClient
	if err := s.list(ctx, &cs, `SELECT `+appClientColumns+` FROM app_clients WHERE tenant_id = ? ORDER BY name`, tenantID); err != nil {
		return nil, fmt.Errorf("list app clients: %w", err)
	}
	return cs, nil
}

// RevokeAppClient revokes the tenant's app client id and returns it as it
// was before. An unknown or already revoked client is ErrNotFound.
func (s *Store) RevokeAppClient(ctx context.Context, tenantID, id int64) (AppClient, error) {
	var before AppClient
	err := s.InTx(ctx, func(tx *Store) error {
		var err error
		if before, err = tx.AppClient(ctx, tenantID, id); err != nil {
			return err
		}
		res, err := tx.exec(ctx, `UPDATE app_clients SET revoked_at = ? WHERE tenant_id = ? AND id = ? AND revoked_at IS NULL`, tx.stamp(), tenantID, id)
		if err != nil {
			return fmt.Errorf("revoke app client %d: %w", id, err)
		}
		return mustAffect(res, "active app client", id)
	})
	return before, err
}

// AuthenticateAppClient finds the app client owning a token hash. Unknown
// and revoked clients are ErrTokenInvalid.
func (s *Store) AuthenticateAppClient(ctx context.Context, hash []byte) (AppClient, error) {
	var c AppClient
	err := s.get(ctx, &c, `SELECT `+appClientColumns+` FROM app_clients WHERE token_hash = ?`, hash)
	if errors.Is(err, sql.ErrNoRows) {
		return AppClient{}, ErrTokenInvalid
	}
	if err != nil {
		return AppClient{}, fmt.Errorf("authenticate app client: %w", err)
	}
	if subtle.ConstantTimeCompare(c.Hash, hash) != 1 || c.RevokedAt != nil {
		return AppClient{}, ErrTokenInvalid
	}
	now := s.stamp()
	if c.LastUsedAt == nil || now.Sub(*c.LastUsedAt) > time.Minute {
		_, _ = s.exec(ctx, `UPDATE app_clients SET last_used_at = ? WHERE id = ?`, now, c.ID)
	}
	return c, nil
}

// ErrLinkUsed: a single-use link token was used already.
var ErrLinkUsed = fmt.Errorf("%w: this link was used already", ErrConflict)

// UseLinkToken records the use of the signed link token with nonce for the
// tenant's end user. A second use of the same nonce is ErrLinkUsed. Call it
// in the transaction of the change the link allows, so that a failed change
// leaves the link usable.
func (s *Store) UseLinkToken(ctx context.Context, tenantID, endUserID int64, nonce string, at time.Time) error {
	if _, err := s.EndUser(ctx, tenantID, endUserID); err != nil {
		return err
	}
	_, err := s.exec(ctx, `INSERT INTO used_link_tokens (nonce, tenant_id, end_user_id, used_at) VALUES (?, ?, ?, ?)`,
		nonce, tenantID, endUserID, at.UTC().Truncate(time.Microsecond))
	if isUniqueViolation(err) {
		return ErrLinkUsed
	}
	if err != nil {
		return fmt.Errorf("record link use: %w", err)
	}
	return nil
}
