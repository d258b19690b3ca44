package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// ContactFill asks to fill an end user's email and/or mobile with values from
// a PSA contact (nil: leave the field alone). Values are already
// normalised.
type ContactFill struct {
	EndUserID int64
	Email     *string
	Mobile    *string
}

// ContactFillResult is an end user's email and mobile after ApplyContactFills.
type ContactFillResult struct {
	EndUserID    int64
	Email        string
	EmailSource  string
	Mobile       string
	MobileSource string
	// Written is false when nothing was written: both fields hold values a
	// PSA may not replace (a directory, manual or end-user value, typed or
	// synced since the caller read them) or the values already.
	Written bool
}

// ApplyContactFills writes PSA values into the tenant's end users, in the
// caller's transaction if there is one, one statement per batch. The
// statement itself applies the provenance rule (rules.MergeContactField for
// a PSA value): a field is written only while it is empty or holds an
// earlier PSA value, so a value a technician or a sync stored after the
// caller read the end user is never overwritten. It returns each end
// user's fields as they are afterwards.
func (s *Store) ApplyContactFills(ctx context.Context, tenantID int64, fills []ContactFill) ([]ContactFillResult, error) {
	results := make([]ContactFillResult, 0, len(fills))
	now := s.stamp()
	const emailWritable = `(end_users.email = '' OR end_users.email_source IN ('psa', ''))`
	const mobileWritable = `(end_users.mobile = '' OR end_users.mobile_source IN ('psa', ''))`
	for start := 0; start < len(fills); start += batchSize {
		chunk := fills[start:min(start+batchSize, len(fills))]
		var values strings.Builder
		args := []any{now}
		for i, f := range chunk {
			if i > 0 {
				values.WriteByte(',')
			}
			values.WriteString("(CAST(? AS BIGINT), CAST(? AS TEXT), CAST(? AS TEXT))")
			args = append(args, f.EndUserID, nullableString(f.Email), nullableString(f.Mobile))
		}
		args = append(args, tenantID)
		q := `UPDATE end_users SET
			email = CASE WHEN v.column2 IS NOT NULL AND ` + emailWritable + ` THEN v.column2 ELSE end_users.email END,
			email_source = CASE WHEN v.column2 IS NOT NULL AND ` + emailWritable + ` THEN 'psa' ELSE end_users.email_source END,
			mobile = CASE WHEN v.column3 IS NOT NULL AND ` + mobileWritable + ` THEN v.column3 ELSE end_users.mobile END,
			mobile_source = CASE WHEN v.column3 IS NOT NULL AND ` + mobileWritable + ` THEN 'psa' ELSE end_users.mobile_source END,
			updated_at = ?
			FROM (VALUES ` + values.String() + `) AS v
			WHERE end_users.tenant_id = ? AND end_users.id = v.column1
			AND ((v.column2 IS NOT NULL AND ` + emailWritable + ` AND (end_users.email <> v.column2 OR end_users.email_source <> 'psa'))
			  OR (v.column3 IS NOT NULL AND ` + mobileWritable + ` AND (end_users.mobile <> v.column3 OR end_users.mobile_source <> 'psa')))
			RETURNING end_users.id, end_users.email, end_users.email_source, end_users.mobile, end_users.mobile_source`
		var rows []struct {
			ID           int64  `db:"id"`
			Email        string `db:"email"`
			EmailSource  string `db:"email_source"`
			Mobile       string `db:"mobile"`
			MobileSource string `db:"mobile_source"`
		}
		if err := s.list(ctx, &rows, q, args...); err != nil {
			return nil, fmt.Errorf("fill %d end users from PSA contacts: %w", len(chunk), err)
		}
		written := make(map[int64]bool, len(rows))
		for _, r := range rows {
			written[r.ID] = true
			results = append(results, ContactFillResult{EndUserID: r.ID, Email: r.Email, EmailSource: r.EmailSource, Mobile: r.Mobile, MobileSource: r.MobileSource, Written: true})
		}
		for _, f := range chunk {
			if written[f.EndUserID] {
				continue
			}
			u, err := s.EndUser(ctx, tenantID, f.EndUserID)
			if errors.Is(err, ErrNotFound) {
				continue // deleted meanwhile
			}
			if err != nil {
				return nil, err
			}
			results = append(results, ContactFillResult{EndUserID: u.ID, Email: u.Email, EmailSource: string(u.EmailSource), Mobile: u.Mobile, MobileSource: string(u.MobileSource)})
		}
	}
	return results, nil
}

func nullableString(s *string) any {
	if s == nil {
		return nil
	}
	return *s
}
