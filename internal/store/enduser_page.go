package store

import (
	"context"
	"fmt"
	"strings"

	"selfserve/internal/rules"
)

// StatusSQL is rules.StatusOf as an SQL expression over end_users, for
// filtering and sorting in the database (the conformance suite checks the
// two agree).
const StatusSQL = `(CASE WHEN first_access_at IS NOT NULL THEN 'accessed_self_serve' WHEN email <> '' AND mobile <> '' THEN 'registration_complete' WHEN welcome_sent_at IS NOT NULL THEN 'welcome_sent' ELSE 'incomplete' END)`

// userActiveSQL is the end user's half of rules.Active (the tenant's half,
// subscription and override, holds for all of a tenant's users or none).
const userActiveSQL = `(self_serve AND email <> '' AND mobile <> '' AND enabled AND removed_at IS NULL)`

// EndUserSort is a column the end-user page sorts by.
type EndUserSort string

// The sort columns.
const (
	SortUsername EndUserSort = "username"
	SortName     EndUserSort = "name"
	SortEmail    EndUserSort = "email"
	SortStatus   EndUserSort = "status"
	SortExpiry   EndUserSort = "expiry"
)

// EndUserSorts lists the sort columns.
var EndUserSorts = []EndUserSort{SortUsername, SortName, SortEmail, SortStatus, SortExpiry}

var sortSQL = map[EndUserSort]string{
	SortUsername: "lower(username)",
	SortName:     "lower(display_name)",
	SortEmail:    "lower(email)",
	SortStatus:   StatusSQL,
	SortExpiry:   "password_expires_at",
}

// EndUserQuery is a page of a customer's end users. Zero fields do not
// filter.
type EndUserQuery struct {
	CustomerID int64
	Status     rules.Status
	Source     rules.Source
	// UserActive filters on the end user's half of rules.Active (switch on,
	// email and mobile present, enabled, in its source).
	UserActive *bool
	LockedOut  *bool
	SelfServe  *bool
	// Search matches the start of the username, email or display name,
	// ignoring case.
	Search string
	// Sort and Desc order the rows (then by id); default username.
	Sort   EndUserSort
	Desc   bool
	Offset int
	Limit  int
}

func (q EndUserQuery) where(tenantID int64) (string, []any) {
	w := `tenant_id = ? AND customer_id = ? AND removed_at IS NULL`
	args := []any{tenantID, q.CustomerID}
	add := func(cond string, v ...any) { w += " AND " + cond; args = append(args, v...) }
	if q.Status != "" {
		add(StatusSQL+" = ?", string(q.Status))
	}
	if q.Source != "" {
		add("source = ?", q.Source)
	}
	if q.UserActive != nil {
		if *q.UserActive {
			add(userActiveSQL)
		} else {
			add("NOT " + userActiveSQL)
		}
	}
	if q.LockedOut != nil {
		add("locked_out = ?", *q.LockedOut)
	}
	if q.SelfServe != nil {
		add("self_serve = ?", *q.SelfServe)
	}
	if q.Search != "" {
		p := likePrefix(strings.ToLower(q.Search))
		add(`(lower(username) LIKE ? ESCAPE '\' OR lower(email) LIKE ? ESCAPE '\' OR lower(display_name) LIKE ? ESCAPE '\')`, p, p, p)
	}
	return w, args
}

// likePrefix escapes s for LIKE and appends %.
func likePrefix(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return r.Replace(s) + "%"
}

// PageRow is an end user of a page with the values a sync refused.
type PageRow struct {
	EndUser
	RefusedEmail        *string `db:"refused_email"`
	RefusedEmailReason  *string `db:"refused_email_reason"`
	RefusedMobile       *string `db:"refused_mobile"`
	RefusedMobileReason *string `db:"refused_mobile_reason"`
}

// refusedSQL reads a field's refusal of each row.
func refusedSQL(field, column string) string {
	return fmt.Sprintf(`(SELECT %s FROM end_user_refusals r WHERE r.end_user_id = end_users.id AND r.field = '%s') AS refused_%s`, column, field, field+map[string]string{"value": "", "reason": "_reason"}[column])
}

// EndUserPage returns one page of the tenant's end users matching q, with
// their refused values, and how many match in all.
func (s *Store) EndUserPage(ctx context.Context, tenantID int64, q EndUserQuery) ([]PageRow, int, error) {
	w, args := q.where(tenantID)
	col, ok := sortSQL[q.Sort]
	if !ok {
		col = sortSQL[SortUsername]
	}
	dir := "ASC"
	if q.Desc {
		dir = "DESC"
	}
	limit := q.Limit
	if limit <= 0 {
		limit = 100
	}
	// The refusals are read for the page's rows only, and the count apart:
	// a window count would make the page read every matching row instead
	// of walking the sort index.
	var total int
	if err := s.get(ctx, &total, `SELECT COUNT(*) FROM end_users WHERE `+w, args...); err != nil {
		return nil, 0, fmt.Errorf("count end users: %w", err)
	}
	query := fmt.Sprintf(`SELECT end_users.*, %s, %s, %s, %s FROM (SELECT %s FROM end_users WHERE %s ORDER BY %s %s, id %s LIMIT %d OFFSET %d) end_users ORDER BY %s %s, id %s`,
		refusedSQL("email", "value"), refusedSQL("email", "reason"), refusedSQL("mobile", "value"), refusedSQL("mobile", "reason"),
		endUserColumns, w, col, dir, dir, limit, max(q.Offset, 0), col, dir, dir)
	var out []PageRow
	if err := s.list(ctx, &out, query, args...); err != nil {
		return nil, 0, fmt.Errorf("list end users: %w", err)
	}
	return out, total, nil
}

// EndUserIDs returns the ids of the tenant's end users matching q (its
// paging ignored), at most max of them; more is ErrConflict.
func (s *Store) EndUserIDs(ctx context.Context, tenantID int64, q EndUserQuery, max int) ([]int64, error) {
	w, args := q.where(tenantID)
	var ids []int64
	if err := s.list(ctx, &ids, fmt.Sprintf(`SELECT id FROM end_users WHERE %s ORDER BY id LIMIT %d`, w, max+1), args...); err != nil {
		return nil, fmt.Errorf("end user ids: %w", err)
	}
	if len(ids) > max {
		return nil, fmt.Errorf("more than %d end users match: %w", max, ErrConflict)
	}
	return ids, nil
}
