package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Refusal is the last value a sync refused for an end user's field.
type Refusal struct {
	EndUserID int64     `db:"end_user_id"`
	Field     string    `db:"field"`
	Value     string    `db:"value"`
	Reason    string    `db:"reason"`
	At        time.Time `db:"at"`
}

// SetRefusal records that a sync refused value for the end user's field
// ("email" or "mobile") because of reason; an empty value forgets the
// field's refusal (the source now gives a good value or none).
func (s *Store) SetRefusal(ctx context.Context, tenantID, endUserID int64, field, value, reason string) error {
	if value == "" {
		_, err := s.exec(ctx, `DELETE FROM end_user_refusals WHERE tenant_id = ? AND end_user_id = ? AND field = ?`, tenantID, endUserID, field)
		return err
	}
	_, err := s.exec(ctx, `INSERT INTO end_user_refusals (tenant_id, end_user_id, field, value, reason, at) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (end_user_id, field) DO UPDATE SET value = excluded.value, reason = excluded.reason, at = excluded.at`,
		tenantID, endUserID, field, value, reason, s.stamp())
	if err != nil {
		return fmt.Errorf("record refused %s of end user %d: %w", field, endUserID, err)
	}
	return nil
}

// RecordRefusals keeps, for each user of a sync page, the last value the
// sync refused per field, and forgets a field's refusal once the source
// gives a good value (or none).
func (s *Store) RecordRefusals(ctx context.Context, target PageTarget, recs []UserRecord) error {
	var fine []any
	for _, r := range recs {
		if !r.EmailInvalid && !r.MobileInvalid {
			fine = append(fine, r.ExternalID)
			continue
		}
		var id int64
		err := s.get(ctx, &id, `SELECT id FROM end_users WHERE tenant_id = ? AND connection_id = ? AND external_id = ?`, target.TenantID, target.ConnectionID, r.ExternalID)
		if errors.Is(err, sql.ErrNoRows) {
			continue // an Entra user linked to its AD end user
		}
		if err != nil {
			return fmt.Errorf("record refusals: %w", err)
		}
		for _, f := range []struct {
			field, value, reason string
			invalid              bool
		}{{"email", r.Email, r.EmailRefused, r.EmailInvalid}, {"mobile", r.Mobile, r.MobileRefused, r.MobileInvalid}} {
			value := ""
			if f.invalid {
				value = f.value
			}
			if err := s.SetRefusal(ctx, target.TenantID, id, f.field, value, cmp.Or(f.reason, "refused")); err != nil {
				return err
			}
		}
	}
	for len(fine) > 0 {
		n := min(len(fine), batchSize)
		args := append([]any{target.TenantID, target.TenantID, target.ConnectionID}, fine[:n]...)
		if _, err := s.exec(ctx, `DELETE FROM end_user_refusals WHERE tenant_id = ? AND end_user_id IN (SELECT id FROM end_users WHERE tenant_id = ? AND connection_id = ? AND external_id IN (`+placeholders(n)+`))`, args...); err != nil {
			return fmt.Errorf("clear refusals: %w", err)
		}
		fine = fine[n:]
	}
	return nil
}

// Refusals returns the refused values of the tenant's end users ids, by end
// user id.
func (s *Store) Refusals(ctx context.Context, tenantID int64, ids []int64) (map[int64][]Refusal, error) {
	out := map[int64][]Refusal{}
	if len(ids) == 0 {
		return out, nil
	}
	args := []any{tenantID}
	for _, id := range ids {
		args = append(args, id)
	}
	var rs []Refusal
	if err := s.list(ctx, &rs, `SELECT end_user_id, field, value, reason, at FROM end_user_refusals WHERE tenant_id = ? AND end_user_id IN (`+placeholders(len(ids))+`) ORDER BY field`, args...); err != nil {
		return nil, fmt.Errorf("refusals: %w", err)
	}
	for _, r := range rs {
		out[r.EndUserID] = append(out[r.EndUserID], r)
	}
	return out, nil
}
