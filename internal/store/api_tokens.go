package store

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

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
