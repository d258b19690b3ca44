package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"selfserve/internal/rules"
)

// The notice ledger.
//
// A row is one notice to one end user on one channel, keyed by (end user,
// kind, occasion, channel): writing it twice is a no-op, so the planner may
// run any number of times from any number of schedulers. Its life:
//
//	pending  written by the planner (or a lockout or welcome request); also
//	         where a failed attempt that will be retried puts it back
//	sending  an attempt is in flight (claimed by ClaimNotice)
//	sent     the provider accepted it (final)
//	failed   retries exhausted or a permanent refusal (final, with the reason)
//	skipped  at send time it was no longer due or the end user no longer
//	         served (final, with the reason)

const noticeColumns = `id, tenant_id, end_user_id, kind, occasion, channel, status, attempts, error, created_at, updated_at, sent_at`

// noticeInsertBatch bounds the rows of one INSERT (6 parameters a row).
const noticeInsertBatch = 1000

// ErrNoticeBusy: another attempt at the notice is in flight (claimed less
// than the lease ago). Try again after the lease.
var ErrNoticeBusy = fmt.Errorf("%w: notice is being sent by another attempt", ErrConflict)

// NewNotice is a ledger row to create, pending.
type NewNotice struct {
	TenantID  int64
	EndUserID int64
	Kind      rules.NoticeKind
	Occasion  string
	Channel   Channel
}

// check refuses a row of an unknown kind or channel, or without occasion.
func (n NewNotice) check() error {
	if !n.Kind.Valid() || (n.Channel != ChannelEmail && n.Channel != ChannelSMS) || n.Occasion == "" {
		return fmt.Errorf("notice for end user %d: invalid kind %q, channel %q or occasion %q", n.EndUserID, n.Kind, n.Channel, n.Occasion)
	}
	return nil
}

// NoticeRef identifies a ledger row for a sender.
type NoticeRef struct {
	ID        int64            `db:"id" json:"id"`
	TenantID  int64            `db:"tenant_id" json:"tenant_id"`
	EndUserID int64            `db:"end_user_id" json:"end_user_id"`
	Kind      rules.NoticeKind `db:"kind" json:"kind"`
	Channel   Channel          `db:"channel" json:"channel"`
}

// CreateNotices writes pending ledger rows, skipping every row whose key
// (end user, kind, occasion, channel) already exists, in batches of
// INSERT … ON CONFLICT DO NOTHING (on PostgreSQL one INSERT … SELECT FROM
// unnest of one array per column, on SQLite a multi-row VALUES). It returns
// the rows it created, so a caller enqueues each new notice once. The caller
// vouches that each end user belongs to its row's tenant (the rows come
// from the store).
func (s *Store) CreateNotices(ctx context.Context, ns []NewNotice) ([]NoticeRef, error) {
	for _, n := range ns {
		if err := n.check(); err != nil {
			return nil, err
		}
	}
	created := make([]NoticeRef, 0, len(ns))
	now := s.stamp()
	const returning = ` ON CONFLICT (end_user_id, kind, occasion, channel) DO NOTHING RETURNING id, tenant_id, end_user_id, kind, channel`
	batch := noticeInsertBatch
	if s.dialect == Postgres {
		batch = 10 * noticeInsertBatch
	}
	for start := 0; start < len(ns); start += batch {
		chunk := ns[start:min(start+batch, len(ns))]
		var q string
		var args []any
		if s.dialect == Postgres {
			tenants, users := make([]int64, len(chunk)), make([]int64, len(chunk))
			kinds, occasions, channels := make([]string, len(chunk)), make([]string, len(chunk)), make([]string, len(chunk))
			for i, n := range chunk {
				tenants[i], users[i], kinds[i], occasions[i], channels[i] = n.TenantID, n.EndUserID, string(n.Kind), n.Occasion, string(n.Channel)
			}
			q = `INSERT INTO notices (tenant_id, end_user_id, kind, occasion, channel, status, created_at, updated_at)
				SELECT t, u, k, o, c, 'pending', ?, ? FROM unnest(?::bigint[], ?::bigint[], ?::text[], ?::text[], ?::text[]) AS x(t, u, k, o, c)` + returning
			args = []any{now, now, tenants, users, kinds, occasions, channels}
		} else {
			var b strings.Builder
			b.Grow(128 + len(chunk)*24)
			b.WriteString(`INSERT INTO notices (tenant_id, end_user_id, kind, occasion, channel, status, created_at, updated_at) VALUES `)
			args = make([]any, 0, len(chunk)*7)
			for i, n := range chunk {
				if i > 0 {
					b.WriteByte(',')
				}
				b.WriteString(`(?,?,?,?,?,'pending',?,?)`)
				args = append(args, n.TenantID, n.EndUserID, n.Kind, n.Occasion, n.Channel, now, now)
			}
			q = b.String() + returning
		}
		var err error
		if created, err = s.insertReturningRefs(ctx, created, q, args); err != nil {
			return created, fmt.Errorf("write %d ledger rows: %w", len(chunk), err)
		}
	}
	return created, nil
}

// insertReturningRefs runs an INSERT … RETURNING id, tenant_id, end_user_id,
// kind, channel and appends the rows to refs (scanned by hand: tens of
// thousands of rows per scan).
func (s *Store) insertReturningRefs(ctx context.Context, refs []NoticeRef, q string, args []any) ([]NoticeRef, error) {
	rows, err := s.q.QueryContext(ctx, s.rebind(q), args...)
	if err != nil {
		return refs, err
	}
	defer rows.Close()
	for rows.Next() {
		var r NoticeRef
		if err := rows.Scan(&r.ID, &r.TenantID, &r.EndUserID, &r.Kind, &r.Channel); err != nil {
			return refs, err
		}
		refs = append(refs, r)
	}
	return refs, rows.Err()
}

// Notice returns the tenant's ledger row with id.
func (s *Store) Notice(ctx context.Context, tenantID, id int64) (Notice, error) {
	var n Notice
	err := s.get(ctx, &n, `SELECT `+noticeColumns+` FROM notices WHERE tenant_id = ? AND id = ?`, tenantID, id)
	if err != nil {
		return n, notFound(err, "notice", id)
	}
	return n, nil
}

// NoticesOfEndUser lists the end user's ledger rows, newest first (limit 0:
// 50).
func (s *Store) NoticesOfEndUser(ctx context.Context, tenantID, endUserID int64, limit int) ([]Notice, error) {
	if limit <= 0 {
		limit = 50
	}
	var ns []Notice
	err := s.list(ctx, &ns, fmt.Sprintf(`SELECT `+noticeColumns+` FROM notices WHERE tenant_id = ? AND end_user_id = ? ORDER BY created_at DESC, id DESC LIMIT %d`, limit), tenantID, endUserID)
	if err != nil {
		return nil, fmt.Errorf("list notices of end user %d: %w", endUserID, err)
	}
	return ns, nil
}

// ClaimNotice starts an attempt at the tenant's notice id: a pending row, or
// a sending row whose attempt began more than lease ago (its sender died),
// becomes sending and its attempts count goes up. ok is false, with the row,
// when the notice is already final (sent, failed or skipped): there is
// nothing to do. A row claimed less than lease ago is ErrNoticeBusy.
func (s *Store) ClaimNotice(ctx context.Context, tenantID, id int64, lease time.Duration) (n Notice, ok bool, err error) {
	now := s.stamp()
	err = s.get(ctx, &n, `UPDATE notices SET status = 'sending', attempts = attempts + 1, updated_at = ?
		WHERE tenant_id = ? AND id = ? AND (status = 'pending' OR (status = 'sending' AND updated_at < ?)) RETURNING `+noticeColumns,
		now, tenantID, id, now.Add(-lease))
	if err == nil {
		return n, true, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return n, false, fmt.Errorf("claim notice %d: %w", id, err)
	}
	n, err = s.Notice(ctx, tenantID, id)
	if err != nil {
		return n, false, err
	}
	if n.Status == NoticeSending {
		return n, false, fmt.Errorf("notice %d (attempt %d since %s): %w", id, n.Attempts, n.UpdatedAt.Format(time.RFC3339), ErrNoticeBusy)
	}
	return n, false, nil
}

// NoticeKey names a ledger row of a tenant.
type NoticeKey struct {
	TenantID int64
	ID       int64
}

// ClaimNotices claims, as ClaimNotice does, every row of keys that is
// pending or whose attempt began more than lease ago, in one statement, and
// returns those rows (in no particular order). A row not returned is final,
// being sent by another attempt, or not the tenant's: Notices tells which.
func (s *Store) ClaimNotices(ctx context.Context, keys []NoticeKey, lease time.Duration) ([]Notice, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	now := s.stamp()
	args := make([]any, 0, 2+2*len(keys))
	args = append(args, now, now.Add(-lease))
	for _, k := range keys {
		args = append(args, k.TenantID, k.ID)
	}
	var ns []Notice
	err := s.list(ctx, &ns, `UPDATE notices SET status = 'sending', attempts = attempts + 1, updated_at = ?
		WHERE (status = 'pending' OR (status = 'sending' AND updated_at < ?)) AND (tenant_id, id) IN (`+pairs(len(keys))+`) RETURNING `+noticeColumns, args...)
	if err != nil {
		return nil, fmt.Errorf("claim %d notices: %w", len(keys), err)
	}
	return ns, nil
}

// Notices returns the rows of keys that exist (in no particular order).
func (s *Store) Notices(ctx context.Context, keys []NoticeKey) ([]Notice, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	args := make([]any, 0, 2*len(keys))
	for _, k := range keys {
		args = append(args, k.TenantID, k.ID)
	}
	var ns []Notice
	if err := s.list(ctx, &ns, `SELECT `+noticeColumns+` FROM notices WHERE (tenant_id, id) IN (`+pairs(len(keys))+`)`, args...); err != nil {
		return nil, fmt.Errorf("read %d notices: %w", len(keys), err)
	}
	return ns, nil
}

// pairs is n "(?, ?)" separated by commas.
func pairs(n int) string {
	return strings.TrimSuffix(strings.Repeat("(?, ?),", n), ",")
}

// MarkNoticeSent records that the provider accepted the notice.
func (s *Store) MarkNoticeSent(ctx context.Context, tenantID, id int64, at time.Time) error {
	return s.finishNotice(ctx, tenantID, id, NoticeSent, "", at)
}

// MarkNoticeFailed records that the notice will not be sent: retries are
// exhausted or the provider refused it for good. reason says why.
func (s *Store) MarkNoticeFailed(ctx context.Context, tenantID, id int64, reason string) error {
	return s.finishNotice(ctx, tenantID, id, NoticeFailed, reason, time.Time{})
}

// MarkNoticeSkipped records that the notice was not sent because, at send
// time, it was no longer due or the end user no longer served. reason says
// why.
func (s *Store) MarkNoticeSkipped(ctx context.Context, tenantID, id int64, reason string) error {
	return s.finishNotice(ctx, tenantID, id, NoticeSkipped, reason, time.Time{})
}

func (s *Store) finishNotice(ctx context.Context, tenantID, id int64, status NoticeStatus, reason string, sentAt time.Time) error {
	res, err := s.exec(ctx, `UPDATE notices SET status = ?, error = ?, sent_at = ?, updated_at = ? WHERE tenant_id = ? AND id = ? AND status IN ('pending', 'sending')`,
		status, reason, nullTime(sentAt), s.stamp(), tenantID, id)
	if err != nil {
		return fmt.Errorf("mark notice %d %s: %w", id, status, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		cur, err := s.Notice(ctx, tenantID, id)
		if err != nil {
			return err
		}
		if cur.Status == status {
			return nil
		}
		return fmt.Errorf("mark notice %d %s: it is already %s: %w", id, status, cur.Status, ErrConflict)
	}
	return nil
}

// ReleaseNotice ends a failed attempt that will be retried: the row goes
// back to pending with the attempt's error.
func (s *Store) ReleaseNotice(ctx context.Context, tenantID, id int64, reason string) error {
	_, err := s.exec(ctx, `UPDATE notices SET status = 'pending', error = ?, updated_at = ? WHERE tenant_id = ? AND id = ? AND status = 'sending'`,
		reason, s.stamp(), tenantID, id)
	if err != nil {
		return fmt.Errorf("release notice %d: %w", id, err)
	}
	return nil
}

// StrandedNotices lists, across tenants, the rows that should be queued but
// may not be: pending rows not touched since before, and sending rows not
// touched since before-lease (their sender died and no retry may be left,
// e.g. after Redis lost its data). The expiry scan queues them again; the
// task ids and ClaimNotice make that harmless when they were queued after
// all. At most limit rows (0: 10000), oldest first.
func (s *Store) StrandedNotices(ctx context.Context, before time.Time, lease time.Duration, limit int) ([]NoticeRef, error) {
	if limit <= 0 {
		limit = 10000
	}
	var refs []NoticeRef
	err := s.list(ctx, &refs, fmt.Sprintf(`SELECT id, tenant_id, end_user_id, kind, channel FROM notices
		WHERE (status = 'pending' AND updated_at < ?) OR (status = 'sending' AND updated_at < ?)
		ORDER BY updated_at LIMIT %d`, limit), before.UTC(), before.Add(-lease).UTC())
	if err != nil {
		return nil, fmt.Errorf("list stranded notices: %w", err)
	}
	return refs, nil
}

// NoticeCounts counts the ledger rows of a tenant by status.
func (s *Store) NoticeCounts(ctx context.Context, tenantID int64) (map[NoticeStatus]int, error) {
	var rows []struct {
		Status NoticeStatus `db:"status"`
		N      int          `db:"n"`
	}
	if err := s.list(ctx, &rows, `SELECT status, COUNT(*) AS n FROM notices WHERE tenant_id = ? GROUP BY status`, tenantID); err != nil {
		return nil, fmt.Errorf("count notices: %w", err)
	}
	out := make(map[NoticeStatus]int, len(rows))
	for _, r := range rows {
		out[r.Status] = r.N
	}
	return out, nil
}

// ScanUser is what the candidate query (ScanCandidates) reads of an end user.
type ScanUser struct {
	ID                   int64        `db:"id"`
	TenantID             int64        `db:"tenant_id"`
	CustomerID           int64        `db:"customer_id"`
	Source               rules.Source `db:"source"`
	Email                string       `db:"email"`
	Mobile               string       `db:"mobile"`
	SelfServe            bool         `db:"self_serve"`
	Enabled              bool         `db:"enabled"`
	LockedOut            bool         `db:"locked_out"`
	LockedOutAt          *time.Time   `db:"locked_out_at"`
	PasswordNeverExpires bool         `db:"password_never_expires"`
	PasswordExpiresAt    *time.Time   `db:"password_expires_at"`
}

// Rules returns what the domain rules need of the candidate.
func (u ScanUser) Rules() rules.EndUser {
	return rules.EndUser{
		Source: u.Source, Email: u.Email, Mobile: u.Mobile, SelfServe: u.SelfServe, Enabled: u.Enabled,
		LockedOut: u.LockedOut, LockedOutAt: timeOrZero(u.LockedOutAt),
		PasswordNeverExpires: u.PasswordNeverExpires, PasswordExpiresAt: timeOrZero(u.PasswordExpiresAt),
	}
}

// ScanWindow bounds the candidate query: the instants and, for a preview,
// the tenant or customer.
type ScanWindow struct {
	// ExpiresFrom and ExpiresBefore bound password_expires_at.
	ExpiresFrom, ExpiresBefore time.Time
	// LockedSince..LockedUntil bound locked_out_at of locked-out users.
	LockedSince, LockedUntil time.Time
	// TenantID, when set, keeps that tenant's end users only; CustomerID,
	// when set too, that customer's.
	TenantID, CustomerID int64
}

// candidateFilter is the candidate query's FROM and WHERE up to the
// window: the rules' NoticesReason as a guard in SQL (tenant subscription
// among rules.SelfServeSubscriptions and override on, switch on, email and
// mobile present, enabled, not removed) and rules.DirectorySources, with
// the lists bound as parameters (candidateArgs).
var candidateFilter = ` FROM end_users e JOIN tenants t ON t.id = e.tenant_id
	WHERE t.self_serve AND t.subscription IN (` + placeholders(len(rules.SelfServeSubscriptions())) + `)
	AND e.removed_at IS NULL AND e.enabled AND e.self_serve AND e.email <> '' AND e.mobile <> ''
	AND e.source IN (` + placeholders(len(rules.DirectorySources())) + `)`

// candidateArgs are candidateFilter's parameters.
func candidateArgs() []any {
	var args []any
	for _, s := range rules.SelfServeSubscriptions() {
		args = append(args, s)
	}
	for _, s := range rules.DirectorySources() {
		args = append(args, s)
	}
	return args
}

// ScanCandidates is the one candidate query of the expiry scan and the
// preview: across tenants (or within w's tenant or customer), the end users
// that may have a notice due, that is those the rules serve (see
// candidateFilter) with a password expiring in the window or locked out
// within it. A user matching both comes once. The domain rules decide the
// rest; this only keeps the rows few.
func (s *Store) ScanCandidates(ctx context.Context, w ScanWindow) ([]ScanUser, error) {
	const cols = `e.id, e.tenant_id, e.customer_id, e.source, e.email, e.mobile, e.self_serve, e.enabled, e.locked_out, e.locked_out_at, e.password_never_expires, e.password_expires_at`
	scope, scopeArgs := "", []any{}
	if w.TenantID != 0 {
		scope, scopeArgs = ` AND e.tenant_id = ?`, append(scopeArgs, w.TenantID)
		if w.CustomerID != 0 {
			scope, scopeArgs = scope+` AND e.customer_id = ?`, append(scopeArgs, w.CustomerID)
		}
	}
	args := func(bounds ...any) []any { return append(append(candidateArgs(), scopeArgs...), bounds...) }
	// The two selections use different indexes; they run side by side.
	var locked []ScanUser
	var lockedErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		locked, lockedErr = s.scanUsers(ctx, `SELECT `+cols+candidateFilter+scope+` AND e.locked_out AND e.locked_out_at >= ? AND e.locked_out_at <= ?`,
			args(w.LockedSince.UTC(), w.LockedUntil.UTC())...)
	}()
	users, err := s.scanUsers(ctx, `SELECT `+cols+candidateFilter+scope+` AND NOT e.password_never_expires AND e.password_expires_at >= ? AND e.password_expires_at < ?`,
		args(w.ExpiresFrom.UTC(), w.ExpiresBefore.UTC())...)
	<-done
	if err != nil {
		return nil, fmt.Errorf("select expiry candidates: %w", err)
	}
	if lockedErr != nil {
		return nil, fmt.Errorf("select lockout candidates: %w", lockedErr)
	}
	if len(locked) == 0 {
		return users, nil
	}
	seen := make(map[int64]bool, len(locked))
	for _, u := range users {
		if u.LockedOut {
			seen[u.ID] = true
		}
	}
	for _, u := range locked {
		if !seen[u.ID] {
			users = append(users, u)
		}
	}
	return users, nil
}

// scanUsers runs a candidate query (scanned by hand: tens of thousands of
// rows per scan).
func (s *Store) scanUsers(ctx context.Context, q string, args ...any) ([]ScanUser, error) {
	rows, err := s.q.QueryContext(ctx, s.rebind(q), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ScanUser
	for rows.Next() {
		var u ScanUser
		if err := rows.Scan(&u.ID, &u.TenantID, &u.CustomerID, &u.Source, &u.Email, &u.Mobile, &u.SelfServe, &u.Enabled,
			&u.LockedOut, &u.LockedOutAt, &u.PasswordNeverExpires, &u.PasswordExpiresAt); err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// ScanCustomers returns every customer of the tenants ids, for their time
// zones (the scan's view across tenants).
func (s *Store) ScanCustomers(ctx context.Context, tenantIDs []int64) ([]Customer, error) {
	var out []Customer
	for start := 0; start < len(tenantIDs); start += batchSize {
		chunk := tenantIDs[start:min(start+batchSize, len(tenantIDs))]
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id
		}
		var cs []Customer
		if err := s.list(ctx, &cs, `SELECT `+customerColumns+` FROM customers WHERE tenant_id IN (`+placeholders(len(chunk))+`)`, args...); err != nil {
			return nil, fmt.Errorf("list customers: %w", err)
		}
		out = append(out, cs...)
	}
	return out, nil
}

// NoticeContext is everything a sender needs about a notice's end user, its
// customer and tenant, read in one statement at send time.
type NoticeContext struct {
	Tenant   Tenant   `db:"t"`
	Customer Customer `db:"c"`
	EndUser  EndUser  `db:"e"`
}

// noticeContextQuery selects an end user with its customer and tenant, each
// column aliased "e.x", "c.x", "t.x" for sqlx's nested structs.
var noticeContextQuery = func() string {
	alias := func(prefix, cols string) string {
		var out []string
		for _, c := range strings.Split(cols, ",") {
			c = strings.TrimSpace(c)
			if prefix == "c" && c == "external_id" { // nullable for customers
				out = append(out, `COALESCE(c.external_id, '') AS "c.external_id"`)
				continue
			}
			out = append(out, fmt.Sprintf(`%s.%s AS "%s.%s"`, prefix, c, prefix, c))
		}
		return strings.Join(out, ", ")
	}
	const customerCols = `id, tenant_id, name, timezone, default_region, source, external_id, created_at, updated_at`
	return `SELECT ` + alias("e", endUserColumns) + `, ` + alias("c", customerCols) + `, ` + alias("t", tenantColumns) +
		` FROM end_users e JOIN customers c ON c.id = e.customer_id AND c.tenant_id = e.tenant_id JOIN tenants t ON t.id = e.tenant_id
		WHERE e.tenant_id = ? AND e.id = ?`
}()

// NoticeContexts reads end users with their customers and tenants, keyed
// by end user id; each key is a (tenant, end user) pair, and an end user
// of another tenant is not returned.
func (s *Store) NoticeContexts(ctx context.Context, keys []NoticeKey) (map[int64]NoticeContext, error) {
	out := make(map[int64]NoticeContext, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	args := make([]any, 0, 2*len(keys))
	for _, k := range keys {
		args = append(args, k.TenantID, k.ID)
	}
	var ncs []NoticeContext
	q := strings.Replace(noticeContextQuery, "WHERE e.tenant_id = ? AND e.id = ?", "WHERE (e.tenant_id, e.id) IN ("+pairs(len(keys))+")", 1)
	if err := s.list(ctx, &ncs, q, args...); err != nil {
		return nil, fmt.Errorf("read %d end users: %w", len(keys), err)
	}
	for _, nc := range ncs {
		out[nc.EndUser.ID] = nc
	}
	return out, nil
}

// NoticeContextOf reads the tenant's end user with its customer and tenant.
func (s *Store) NoticeContextOf(ctx context.Context, tenantID, endUserID int64) (NoticeContext, error) {
	var nc NoticeContext
	if err := s.get(ctx, &nc, noticeContextQuery, tenantID, endUserID); err != nil {
		return nc, notFound(err, "end user", endUserID)
	}
	return nc, nil
}
