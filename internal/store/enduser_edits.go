package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"selfserve/internal/rules"
)

// FindEndUsersByLogin returns the tenant's present end users a login names:
// an email or UPN (case-insensitive) when it holds "@", else a user name
// (the part after the backslash of DOMAIN\user). At most limit rows.
func (s *Store) FindEndUsersByLogin(ctx context.Context, tenantID int64, login string, limit int) ([]EndUser, error) {
	login = strings.ToLower(strings.TrimSpace(login))
	var q string
	var args []any
	if strings.Contains(login, "@") {
		q = `SELECT ` + endUserColumns + ` FROM end_users WHERE tenant_id = ? AND removed_at IS NULL AND ((upn <> '' AND lower(upn) = ?) OR (email <> '' AND lower(email) = ?))`
		args = []any{tenantID, login, login}
	} else {
		if _, user, ok := strings.Cut(login, `\`); ok {
			login = user
		}
		q = `SELECT ` + endUserColumns + ` FROM end_users WHERE tenant_id = ? AND removed_at IS NULL AND username <> '' AND lower(username) = ?`
		args = []any{tenantID, login}
	}
	if login == "" {
		return nil, nil
	}
	q += fmt.Sprintf(" ORDER BY id LIMIT %d", max(limit, 1))
	var out []EndUser
	if err := s.list(ctx, &out, q, args...); err != nil {
		return nil, fmt.Errorf("find end users by login: %w", err)
	}
	return out, nil
}

// LinkedADAccount returns the AD end user of the customer whose immutable
// id is immutableID (an Entra user synced from on-premises), if any.
func (s *Store) LinkedADAccount(ctx context.Context, tenantID, customerID int64, immutableID string) (EndUser, error) {
	var u EndUser
	err := s.get(ctx, &u, `SELECT `+endUserColumns+` FROM end_users WHERE tenant_id = ? AND customer_id = ? AND source = 'ad' AND immutable_id = ? AND removed_at IS NULL ORDER BY id LIMIT 1`,
		tenantID, customerID, immutableID)
	if err != nil {
		return u, notFound(err, "AD account with immutable id", immutableID)
	}
	return u, nil
}

// EndUserFilter narrows an end-user listing. Zero fields do not filter.
type EndUserFilter struct {
	CustomerID   int64
	ConnectionID int64
	Source       rules.Source
	// LockedOut filters on the lockout flag when non-nil.
	LockedOut *bool
	// Privileged filters on the privileged flag when non-nil.
	Privileged *bool
	// IncludeRemoved lists users removed from their source too.
	IncludeRemoved bool
	// AfterID pages: only users with a larger id. Limit caps the rows
	// (0: no cap).
	AfterID int64
	Limit   int
}

// EndUsers lists the tenant's end users by id.
func (s *Store) EndUsers(ctx context.Context, tenantID int64, f EndUserFilter) ([]EndUser, error) {
	q := `SELECT ` + endUserColumns + ` FROM end_users WHERE tenant_id = ?`
	args := []any{tenantID}
	add := func(cond string, v any) { q += " AND " + cond; args = append(args, v) }
	if f.CustomerID != 0 {
		add("customer_id = ?", f.CustomerID)
	}
	if f.ConnectionID != 0 {
		add("connection_id = ?", f.ConnectionID)
	}
	if f.Source != "" {
		add("source = ?", f.Source)
	}
	if f.LockedOut != nil {
		add("locked_out = ?", *f.LockedOut)
	}
	if f.Privileged != nil {
		add("privileged = ?", *f.Privileged)
	}
	if !f.IncludeRemoved {
		q += " AND removed_at IS NULL"
	}
	if f.AfterID != 0 {
		add("id > ?", f.AfterID)
	}
	q += " ORDER BY id"
	if f.Limit > 0 {
		q += fmt.Sprintf(" LIMIT %d", f.Limit)
	}
	var out []EndUser
	if err := s.list(ctx, &out, q, args...); err != nil {
		return nil, fmt.Errorf("list end users: %w", err)
	}
	return out, nil
}

// EndUser returns the tenant's end user with id.
func (s *Store) EndUser(ctx context.Context, tenantID, id int64) (EndUser, error) {
	var u EndUser
	err := s.get(ctx, &u, `SELECT `+endUserColumns+` FROM end_users WHERE tenant_id = ? AND id = ?`, tenantID, id)
	if err != nil {
		return u, notFound(err, "end user", id)
	}
	return u, nil
}

// SetContact sets an end user's email and/or mobile with the given
// provenance (manual for a technician, end_user for the person). A nil
// value leaves the field alone. It returns the user before and after.
func (s *Store) SetContact(ctx context.Context, tenantID, id int64, email, mobile *string, from rules.Provenance) (before, after EndUser, err error) {
	err = s.InTx(ctx, func(tx *Store) error {
		before, err = tx.EndUser(ctx, tenantID, id)
		if err != nil {
			return err
		}
		after = before
		if email != nil {
			after.Email, after.EmailSource = *email, from
			if *email == "" {
				after.EmailSource = from
			}
		}
		if mobile != nil {
			after.Mobile, after.MobileSource = *mobile, from
		}
		after.UpdatedAt = tx.stamp()
		_, err = tx.exec(ctx, `UPDATE end_users SET email = ?, email_source = ?, mobile = ?, mobile_source = ?, updated_at = ? WHERE tenant_id = ? AND id = ?`,
			after.Email, after.EmailSource, after.Mobile, after.MobileSource, after.UpdatedAt, tenantID, id)
		return err
	})
	return before, after, err
}

// SetSelfServe sets the switch of the tenant's end users ids, all or none:
// if any id is unknown nothing changes and the error names the missing ids.
// It returns the users as they were before.
func (s *Store) SetSelfServe(ctx context.Context, tenantID int64, ids []int64, on bool) ([]EndUser, error) {
	var before []EndUser
	err := s.InTx(ctx, func(tx *Store) error {
		before = before[:0]
		var missing []string
		for _, id := range ids {
			u, err := tx.EndUser(ctx, tenantID, id)
			if err != nil {
				missing = append(missing, fmt.Sprint(id))
				continue
			}
			before = append(before, u)
		}
		if len(missing) > 0 {
			return fmt.Errorf("end users %s: %w", strings.Join(missing, ", "), ErrNotFound)
		}
		now := tx.stamp()
		for _, id := range ids {
			if _, err := tx.exec(ctx, `UPDATE end_users SET self_serve = ?, updated_at = ? WHERE tenant_id = ? AND id = ?`, on, now, tenantID, id); err != nil {
				return fmt.Errorf("set self-serve of end user %d: %w", id, err)
			}
		}
		return nil
	})
	return before, err
}

// MarkFirstAccess records the end user's first self-serve access (kept if
// already set). It returns the end user after it and reports whether it
// was newly set.
func (s *Store) MarkFirstAccess(ctx context.Context, tenantID, id int64, at time.Time) (EndUser, bool, error) {
	var u EndUser
	err := s.get(ctx, &u, `UPDATE end_users SET first_access_at = ?, updated_at = ? WHERE tenant_id = ? AND id = ? AND first_access_at IS NULL
		RETURNING `+endUserColumns, at.UTC(), s.stamp(), tenantID, id)
	if err == nil {
		return u, true, nil
	}
	if !errors.Is(notFound(err, "", ""), ErrNotFound) {
		return u, false, fmt.Errorf("record first access of end user %d: %w", id, err)
	}
	u, err = s.EndUser(ctx, tenantID, id)
	return u, false, err
}

// RecordFirstAccess records the end user u's first self-serve access at
// at, with the audit entry audit makes of u before and after it, in one
// statement on PostgreSQL (one transaction on SQLite). When it was already
// recorded (by another request meanwhile) nothing is written and it
// reports false. It returns the end user after it.
func (s *Store) RecordFirstAccess(ctx context.Context, u EndUser, at time.Time, audit func(before, after EndUser) AuditRecord) (EndUser, bool, error) {
	after := u
	at = at.UTC().Truncate(time.Microsecond)
	after.FirstAccessAt, after.UpdatedAt = &at, s.stamp()
	args, err := auditArgs(audit(u, after), after.UpdatedAt)
	if err != nil {
		return u, false, err
	}
	const mark = `UPDATE end_users SET first_access_at = ?, updated_at = ? WHERE tenant_id = ? AND id = ? AND first_access_at IS NULL`
	markArgs := []any{at, after.UpdatedAt, u.TenantID, u.ID}
	if s.dialect == Postgres {
		var n int
		err := s.get(ctx, &n, `WITH marked AS (`+mark+` RETURNING id),
			audited AS (INSERT INTO audit_log (`+auditColumns+`)
				SELECT ?::bigint, ?::bigint, ?::text, ?::text, ?::text, ?::text, ?::text, ?::text, ?::timestamptz FROM marked)
			SELECT count(*) FROM marked`, append(markArgs, args...)...)
		if err != nil {
			return u, false, fmt.Errorf("record first access of end user %d: %w", u.ID, err)
		}
		if n == 0 {
			return u, false, nil
		}
		return after, true, nil
	}
	newly := false
	err = s.InTx(ctx, func(tx *Store) error {
		res, err := tx.exec(ctx, mark, markArgs...)
		if err != nil {
			return fmt.Errorf("record first access of end user %d: %w", u.ID, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		newly = true
		_, err = tx.exec(ctx, `INSERT INTO audit_log (`+auditColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, args...)
		return err
	})
	if err != nil || !newly {
		return u, false, err
	}
	return after, true, nil
}

// MarkWelcomeSent records that a welcome email went out to the end user.
func (s *Store) MarkWelcomeSent(ctx context.Context, tenantID, id int64, at time.Time) error {
	res, err := s.exec(ctx, `UPDATE end_users SET welcome_sent_at = ?, updated_at = ? WHERE tenant_id = ? AND id = ?`, at.UTC(), s.stamp(), tenantID, id)
	if err != nil {
		return fmt.Errorf("record welcome email of end user %d: %w", id, err)
	}
	return mustAffect(res, "end user", id)
}
