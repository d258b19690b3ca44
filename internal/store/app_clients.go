package store

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// This file holds the self-serve app clients: the apps (mobile or web) that
// report end users' first access with a bearer token.

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
