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

// activeSQL is rules.Active (and rules.InactiveReason == ReasonNone) as an
// SQL condition over end_users, for filtering and counting in the database
// (the conformance suite checks the two agree over a table of cases): the
// end user's switch on, email and mobile present, enabled and still in its
// source; the tenant's subscription including self-serve and its override
// on; and a privileged end user only where the tenant lets privileged end
// users in with two factors. The tenant's half is read from its row once
// per statement (uncorrelated subqueries); the condition takes the tenant
// id twice as arguments (activeArgs).
const activeSQL = `(self_serve AND email <> '' AND mobile <> '' AND enabled AND removed_at IS NULL
	AND EXISTS (SELECT 1 FROM tenants WHERE id = ? AND subscription IN ('qdesk', 'bundle') AND self_serve)
	AND (NOT privileged OR EXISTS (SELECT 1 FROM tenants WHERE id = ? AND privileged_self_serve = 'two_factors')))`

// activeArgs are activeSQL's arguments.
func activeArgs(tenantID int64) []any { return []any{tenantID, tenantID} }

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
	// Active filters on rules.Active (activeSQL).
	Active     *bool
	LockedOut  *bool
	SelfServe  *bool
	Privileged *bool
	// Search matches the start of the username, email or display name,
	// ignoring case.
	Search string
	// Sort and Desc order the rows (then by id); default username.
	Sort   EndUserSort
	Desc   bool
	Offset int
	Limit  int
}

// searchColumns are what a search matches the start of; each has a
// prefix index per customer (migration 12: text_pattern_ops on
// PostgreSQL, the default BINARY collation on SQLite).
var searchColumns = []string{"lower(username)", "lower(email)", "lower(display_name)"}

// endUserWhere is q's condition over end_users and its arguments.
func (s *Store) endUserWhere(tenantID int64, q EndUserQuery) (string, []any) {
	w := `tenant_id = ? AND customer_id = ? AND removed_at IS NULL`
	args := []any{tenantID, q.CustomerID}
	add := func(cond string, v ...any) { w += " AND " + cond; args = append(args, v...) }
	if q.Status != "" {
		add(StatusSQL+" = ?", string(q.Status))
	}
	if q.Source != "" {
		add("source = ?", q.Source)
	}
	if q.Active != nil {
		if *q.Active {
			add(activeSQL, activeArgs(tenantID)...)
		} else {
			add("NOT "+activeSQL, activeArgs(tenantID)...)
		}
	}
	if q.LockedOut != nil {
		add("locked_out = ?", *q.LockedOut)
	}
	if q.SelfServe != nil {
		add("self_serve = ?", *q.SelfServe)
	}
	if q.Privileged != nil {
		add("privileged = ?", *q.Privileged)
	}
	if q.Search != "" {
		cond, v := s.prefixMatch(tenantID, q.CustomerID, strings.ToLower(q.Search))
		add(cond, v...)
	}
	return w, args
}

// prefixMatch is the condition that one of searchColumns of an end user of
// the customer starts with p (lower case), written so that each column's
// prefix index answers it. On PostgreSQL, LIKE 'p%': the planner turns each
// into a range over its text_pattern_ops index and ORs the three bitmaps.
// SQLite's LIKE optimization ignores indexes on expressions, and without
// statistics (it keeps none unless analysed) its planner scans the
// customer's rows rather than OR three indexes: there each column is a
// range [p, p+"\xff") in its own subquery (UTF-8 sorts byte-wise under
// BINARY, and 0xff never occurs in UTF-8).
func (s *Store) prefixMatch(tenantID, customerID int64, p string) (string, []any) {
	var conds []string
	var args []any
	for _, col := range searchColumns {
		if s.dialect == Postgres {
			conds = append(conds, col+` LIKE ? ESCAPE '\'`)
			args = append(args, likePrefix(p))
		} else {
			conds = append(conds, "SELECT id FROM end_users WHERE tenant_id = ? AND customer_id = ? AND "+col+" >= ? AND "+col+" < ?")
			args = append(args, tenantID, customerID, p, p+"\xff")
		}
	}
	if s.dialect == Postgres {
		return "(" + strings.Join(conds, " OR ") + ")", args
	}
	return "id IN (" + strings.Join(conds, " UNION ALL ") + ")", args
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

// qualified prefixes each of columns with the table alias a.
func qualified(a, columns string) string {
	cs := strings.Split(columns, ",")
	for i, c := range cs {
		cs[i] = a + "." + strings.TrimSpace(c)
	}
	return strings.Join(cs, ", ")
}

// nested reads each of columns from the table alias a as "a.column": the
// name sqlx gives a field of the struct field tagged db:"a".
func nested(a, columns string) string {
	cs := strings.Split(columns, ",")
	for i, c := range cs {
		c = strings.TrimSpace(c)
		cs[i] = a + "." + c + ` AS "` + a + "." + c + `"`
	}
	return strings.Join(cs, ", ")
}

// selectNames lists the names of the columns of a select list: each
// item's alias (after AS) or the item itself.
func selectNames(columns string) []string {
	var names []string
	depth, start := 0, 0
	for i, r := range columns + "," {
		switch {
		case r == '(':
			depth++
		case r == ')':
			depth--
		case r == ',' && depth == 0:
			item := strings.TrimSpace(columns[start:i])
			if _, alias, ok := strings.Cut(item, " AS "); ok {
				item = strings.TrimSpace(alias)
			}
			names = append(names, item)
			start = i + 1
		}
	}
	return names
}

// CustomerPage is a page of a customer's end users.
type CustomerPage struct {
	Customer Customer
	Rows     []PageRow
	// Total is how many end users match in all.
	Total int
}

// pageRowWithCustomer is a row of EndUserPage's statement.
type pageRowWithCustomer struct {
	PageRow
	Customer Customer `db:"c"`
}

// EndUserPage returns the tenant's customer q.CustomerID (ErrNotFound if
// it has none such) and one page of its end users matching q, with their
// refused values, and how many match in all.
//
// One statement reads the page's rows with their refusals and the
// customer, asking for one row more than the page holds: when that row
// does not come, the page is the last and the count is known without
// counting (a search usually fits on one page). Only when more rows
// follow, or a page past the last is asked for, does a second statement
// count them. (A page without rows asks for the customer apart.)
func (s *Store) EndUserPage(ctx context.Context, tenantID int64, q EndUserQuery) (CustomerPage, error) {
	w, args := s.endUserWhere(tenantID, q)
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
	offset := max(q.Offset, 0)
	customer := make([]string, 0, 9)
	for _, n := range selectNames(customerColumns) {
		customer = append(customer, fmt.Sprintf(`c.%s AS "c.%s"`, n, n))
	}
	query := fmt.Sprintf(`SELECT %s, re.value AS refused_email, re.reason AS refused_email_reason, rm.value AS refused_mobile, rm.reason AS refused_mobile_reason, %s
		FROM (SELECT %s FROM end_users WHERE %s ORDER BY %s %s, id %s LIMIT %d OFFSET %d) u
		CROSS JOIN (SELECT %s FROM customers WHERE tenant_id = ? AND id = ?) c
		LEFT JOIN end_user_refusals re ON re.tenant_id = u.tenant_id AND re.end_user_id = u.id AND re.field = 'email'
		LEFT JOIN end_user_refusals rm ON rm.tenant_id = u.tenant_id AND rm.end_user_id = u.id AND rm.field = 'mobile'
		ORDER BY u.sort_key %s, u.id %s`,
		qualified("u", endUserColumns), strings.Join(customer, ", "), endUserColumns+", "+col+" AS sort_key", w, col, dir, dir, limit+1, offset,
		customerColumns, dir, dir)
	var rows []pageRowWithCustomer
	if err := s.list(ctx, &rows, query, append(args, tenantID, q.CustomerID)...); err != nil {
		return CustomerPage{}, fmt.Errorf("list end users: %w", err)
	}
	var page CustomerPage
	if len(rows) > 0 {
		page.Customer = rows[0].Customer
	} else {
		cu, err := s.Customer(ctx, tenantID, q.CustomerID)
		if err != nil {
			return CustomerPage{}, err
		}
		page.Customer = cu
	}
	more := len(rows) > limit
	rows = rows[:min(len(rows), limit)]
	page.Rows = make([]PageRow, len(rows))
	for i, r := range rows {
		page.Rows[i] = r.PageRow
	}
	if !more && (len(rows) > 0 || offset == 0) {
		page.Total = offset + len(rows)
		return page, nil
	}
	if err := s.get(ctx, &page.Total, `SELECT COUNT(*) FROM end_users WHERE `+w, args...); err != nil {
		return CustomerPage{}, fmt.Errorf("count end users: %w", err)
	}
	return page, nil
}

// EndUserIDs returns the ids of the tenant's end users matching q (its
// paging ignored), at most max of them; more is ErrConflict.
func (s *Store) EndUserIDs(ctx context.Context, tenantID int64, q EndUserQuery, max int) ([]int64, error) {
	w, args := s.endUserWhere(tenantID, q)
	var ids []int64
	if err := s.list(ctx, &ids, fmt.Sprintf(`SELECT id FROM end_users WHERE %s ORDER BY id LIMIT %d`, w, max+1), args...); err != nil {
		return nil, fmt.Errorf("end user ids: %w", err)
	}
	if len(ids) > max {
		return nil, fmt.Errorf("more than %d end users match: %w", max, ErrConflict)
	}
	return ids, nil
}
