package store

import (
	"context"
	"fmt"
	"time"
)

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

// LinkTokenUsed reports whether the signed link token with nonce was used.
func (s *Store) LinkTokenUsed(ctx context.Context, nonce string) (bool, error) {
	var n int
	if err := s.get(ctx, &n, `SELECT COUNT(*) FROM used_link_tokens WHERE nonce = ?`, nonce); err != nil {
		return false, fmt.Errorf("link token use: %w", err)
	}
	return n > 0, nil
}
