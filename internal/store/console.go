package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"selfserve/internal/rules"
)

// This file holds what the technician console needs: console credentials
// (password hash, sealed TOTP secret, recovery codes), invites, sessions,
// sign-in throttling, the values a sync refused, and the end-user page
// (filtered, searched, sorted, counted, paged by offset).

// ErrCodeUsed: a TOTP time step or recovery code was used already (or a
// later step was).
var ErrCodeUsed = errors.New("code used already")

// Credentials are a login's console credentials.
type Credentials struct {
	LoginID  int64 `db:"login_id"`
	TenantID int64 `db:"tenant_id"`
	// PasswordHash is an argon2id PHC string ("" until a password is set).
	PasswordHash string `db:"password_hash"`
	// TOTPSecret is the sealed TOTP secret (nil: no second factor set up).
	TOTPSecret        []byte     `db:"totp_secret"`
	TOTPLastStep      int64      `db:"totp_last_step"`
	PasswordChangedAt *time.Time `db:"password_changed_at"`
	UpdatedAt         time.Time  `db:"updated_at"`
}

const credentialColumns = `login_id, tenant_id, password_hash, totp_secret, totp_last_step, password_changed_at, updated_at`

// Credentials returns the login's console credentials; a login that never
// set any is ErrNotFound.
func (s *Store) Credentials(ctx context.Context, tenantID, loginID int64) (Credentials, error) {
	var c Credentials
	err := s.get(ctx, &c, `SELECT `+credentialColumns+` FROM login_credentials WHERE tenant_id = ? AND login_id = ?`, tenantID, loginID)
	if err != nil {
		return c, notFound(err, "credentials of login", loginID)
	}
	return c, nil
}

// ensureCredentials makes the login's credentials row if it has none.
func (s *Store) ensureCredentials(ctx context.Context, tenantID, loginID int64) error {
	if _, err := s.Login(ctx, tenantID, loginID); err != nil {
		return err
	}
	_, err := s.exec(ctx, `INSERT INTO login_credentials (login_id, tenant_id, updated_at) VALUES (?, ?, ?) ON CONFLICT (login_id) DO NOTHING`,
		loginID, tenantID, s.stamp())
	if err != nil {
		return fmt.Errorf("credentials of login %d: %w", loginID, err)
	}
	return nil
}

// SetPassword stores the login's new password hash and ends every console
// session of the login.
func (s *Store) SetPassword(ctx context.Context, tenantID, loginID int64, hash string) error {
	return s.InTx(ctx, func(tx *Store) error {
		if err := tx.ensureCredentials(ctx, tenantID, loginID); err != nil {
			return err
		}
		now := tx.stamp()
		if _, err := tx.exec(ctx, `UPDATE login_credentials SET password_hash = ?, password_changed_at = ?, updated_at = ? WHERE tenant_id = ? AND login_id = ?`,
			hash, now, now, tenantID, loginID); err != nil {
			return fmt.Errorf("set password of login %d: %w", loginID, err)
		}
		return tx.EndLoginSessions(ctx, tenantID, loginID)
	})
}

// SetTOTP stores the login's sealed TOTP secret (nil removes it) and the
// time step of the code that proved it (a code is good once).
func (s *Store) SetTOTP(ctx context.Context, tenantID, loginID int64, sealed []byte, step int64) error {
	return s.InTx(ctx, func(tx *Store) error {
		if err := tx.ensureCredentials(ctx, tenantID, loginID); err != nil {
			return err
		}
		_, err := tx.exec(ctx, `UPDATE login_credentials SET totp_secret = ?, totp_last_step = ?, updated_at = ? WHERE tenant_id = ? AND login_id = ?`,
			sealed, step, tx.stamp(), tenantID, loginID)
		if err != nil {
			return fmt.Errorf("set TOTP of login %d: %w", loginID, err)
		}
		return nil
	})
}

// UseTOTPStep records that the login used the TOTP code of time step step.
// A step not after the last one used is ErrCodeUsed: a code works once.
func (s *Store) UseTOTPStep(ctx context.Context, tenantID, loginID, step int64) error {
	res, err := s.exec(ctx, `UPDATE login_credentials SET totp_last_step = ?, updated_at = ? WHERE tenant_id = ? AND login_id = ? AND totp_last_step < ?`,
		step, s.stamp(), tenantID, loginID, step)
	if err != nil {
		return fmt.Errorf("use TOTP code of login %d: %w", loginID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrCodeUsed
	}
	return nil
}

// ReplaceRecoveryCodes replaces the login's recovery codes by the codes
// whose SHA-256 hashes are given.
func (s *Store) ReplaceRecoveryCodes(ctx context.Context, tenantID, loginID int64, hashes [][]byte) error {
	return s.InTx(ctx, func(tx *Store) error {
		if _, err := tx.Login(ctx, tenantID, loginID); err != nil {
			return err
		}
		if _, err := tx.exec(ctx, `DELETE FROM login_recovery_codes WHERE tenant_id = ? AND login_id = ?`, tenantID, loginID); err != nil {
			return fmt.Errorf("replace recovery codes: %w", err)
		}
		for _, h := range hashes {
			if _, err := tx.exec(ctx, `INSERT INTO login_recovery_codes (tenant_id, login_id, code_hash) VALUES (?, ?, ?)`, tenantID, loginID, h); err != nil {
				return fmt.Errorf("replace recovery codes: %w", err)
			}
		}
		return nil
	})
}

// UseRecoveryCode spends the login's unused recovery code of hash; an
// unknown or spent code is ErrCodeUsed.
func (s *Store) UseRecoveryCode(ctx context.Context, tenantID, loginID int64, hash []byte) error {
	res, err := s.exec(ctx, `UPDATE login_recovery_codes SET used_at = ? WHERE tenant_id = ? AND login_id = ? AND code_hash = ? AND used_at IS NULL`,
		s.stamp(), tenantID, loginID, hash)
	if err != nil {
		return fmt.Errorf("use recovery code: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrCodeUsed
	}
	return nil
}

// UnusedRecoveryCodes counts the login's recovery codes not yet spent.
func (s *Store) UnusedRecoveryCodes(ctx context.Context, tenantID, loginID int64) (int, error) {
	var n int
	err := s.get(ctx, &n, `SELECT COUNT(*) FROM login_recovery_codes WHERE tenant_id = ? AND login_id = ? AND used_at IS NULL`, tenantID, loginID)
	return n, err
}

// LoginsByEmail lists the enabled logins of every tenant with the email
// (sign-in knows the email, not the tenant).
func (s *Store) LoginsByEmail(ctx context.Context, email string) ([]Login, error) {
	var ls []Login
	if err := s.list(ctx, &ls, `SELECT `+loginColumns+` FROM logins WHERE lower(email) = lower(?) AND disabled_at IS NULL ORDER BY id`, email); err != nil {
		return nil, fmt.Errorf("logins by email: %w", err)
	}
	return ls, nil
}

// LoginInvite is a single-use link letting a login set its password.
type LoginInvite struct {
	ID        int64      `db:"id"`
	TenantID  int64      `db:"tenant_id"`
	LoginID   int64      `db:"login_id"`
	Hash      []byte     `db:"token_hash"`
	CreatedBy string     `db:"created_by"`
	CreatedAt time.Time  `db:"created_at"`
	ExpiresAt time.Time  `db:"expires_at"`
	UsedAt    *time.Time `db:"used_at"`
}

// CreateInvite stores an invite for the tenant's login with the hash of its
// token (the caller makes the token and shows it once).
func (s *Store) CreateInvite(ctx context.Context, tenantID, loginID int64, hash []byte, createdBy string, expires time.Time) (LoginInvite, error) {
	if _, err := s.Login(ctx, tenantID, loginID); err != nil {
		return LoginInvite{}, err
	}
	id, err := s.insertID(ctx, `INSERT INTO login_invites (tenant_id, login_id, token_hash, created_by, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)`,
		tenantID, loginID, hash, createdBy, s.stamp(), expires.UTC())
	if err != nil {
		return LoginInvite{}, fmt.Errorf("create invite: %w", err)
	}
	var inv LoginInvite
	err = s.get(ctx, &inv, `SELECT * FROM login_invites WHERE id = ?`, id)
	return inv, err
}

// Invite returns the unused, unexpired invite of token hash; anything else
// is ErrTokenInvalid.
func (s *Store) Invite(ctx context.Context, hash []byte, now time.Time) (LoginInvite, error) {
	var inv LoginInvite
	err := s.get(ctx, &inv, `SELECT * FROM login_invites WHERE token_hash = ?`, hash)
	if errors.Is(err, sql.ErrNoRows) {
		return inv, ErrTokenInvalid
	}
	if err != nil {
		return inv, fmt.Errorf("invite: %w", err)
	}
	if inv.UsedAt != nil || !now.Before(inv.ExpiresAt) {
		return inv, ErrTokenInvalid
	}
	return inv, nil
}

// AcceptInvite spends the invite of token hash and sets its login's
// password hash, in one transaction: a used, expired or unknown invite is
// ErrTokenInvalid and sets nothing.
func (s *Store) AcceptInvite(ctx context.Context, hash []byte, passwordHash string, now time.Time) (LoginInvite, error) {
	var inv LoginInvite
	err := s.InTx(ctx, func(tx *Store) error {
		var err error
		if inv, err = tx.Invite(ctx, hash, now); err != nil {
			return err
		}
		res, err := tx.exec(ctx, `UPDATE login_invites SET used_at = ? WHERE id = ? AND used_at IS NULL`, tx.stamp(), inv.ID)
		if err != nil {
			return fmt.Errorf("use invite: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrTokenInvalid
		}
		return tx.SetPassword(ctx, inv.TenantID, inv.LoginID, passwordHash)
	})
	return inv, err
}

// SessionStage is how far a console session got through sign-in.
type SessionStage string

// The stages.
const (
	// StagePassword: the password was right; the second factor is due.
	StagePassword SessionStage = "password"
	// StageFull: signed in.
	StageFull SessionStage = "full"
)

// Session is a console session. The cookie carries ID and the secret; the
// row keeps the secret's SHA-256 hash.
type Session struct {
	ID         string       `db:"id"`
	SecretHash []byte       `db:"secret_hash"`
	TenantID   int64        `db:"tenant_id"`
	LoginID    int64        `db:"login_id"`
	Stage      SessionStage `db:"stage"`
	CSRFToken  string       `db:"csrf_token"`
	CreatedAt  time.Time    `db:"created_at"`
	LastSeenAt time.Time    `db:"last_seen_at"`
	ExpiresAt  time.Time    `db:"expires_at"`
}

// CreateSession stores a new session.
func (s *Store) CreateSession(ctx context.Context, ss Session) error {
	_, err := s.exec(ctx, `INSERT INTO console_sessions (id, secret_hash, tenant_id, login_id, stage, csrf_token, created_at, last_seen_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		ss.ID, ss.SecretHash, ss.TenantID, ss.LoginID, ss.Stage, ss.CSRFToken, ss.CreatedAt.UTC(), ss.LastSeenAt.UTC(), ss.ExpiresAt.UTC())
	if err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	return nil
}

// Session returns the session id (ErrNotFound when it ended).
func (s *Store) Session(ctx context.Context, id string) (Session, error) {
	var ss Session
	err := s.get(ctx, &ss, `SELECT * FROM console_sessions WHERE id = ?`, id)
	if err != nil {
		return ss, notFound(err, "session", id)
	}
	return ss, nil
}

// SignedIn is a session with its login and tenant.
type SignedIn struct {
	Session
	Login  Login  `db:"l"`
	Tenant Tenant `db:"t"`
}

// prefixed lists columns of table alias a as "a.column" (sqlx's names for
// nested structs).
func prefixed(a, columns string) string {
	var out []string
	for _, c := range strings.Split(columns, ",") {
		c = strings.TrimSpace(c)
		out = append(out, fmt.Sprintf(`%s.%s AS "%s.%s"`, a, c, a, c))
	}
	return strings.Join(out, ", ")
}

// SessionWithLogin returns the session id with its login and tenant, in one
// query (every console request asks); ErrNotFound when it ended.
func (s *Store) SessionWithLogin(ctx context.Context, id string) (SignedIn, error) {
	var si SignedIn
	err := s.get(ctx, &si, `SELECT s.*, `+prefixed("l", loginColumns)+`, `+prefixed("t", tenantColumns)+`
		FROM console_sessions s JOIN logins l ON l.id = s.login_id AND l.tenant_id = s.tenant_id JOIN tenants t ON t.id = s.tenant_id
		WHERE s.id = ?`, id)
	if err != nil {
		return si, notFound(err, "session", id)
	}
	return si, nil
}

// TouchSession records activity on the session at at.
func (s *Store) TouchSession(ctx context.Context, id string, at time.Time) error {
	_, err := s.exec(ctx, `UPDATE console_sessions SET last_seen_at = ? WHERE id = ?`, at.UTC(), id)
	return err
}

// EndSession deletes the session id.
func (s *Store) EndSession(ctx context.Context, id string) error {
	_, err := s.exec(ctx, `DELETE FROM console_sessions WHERE id = ?`, id)
	return err
}

// EndLoginSessions deletes every session of the tenant's login.
func (s *Store) EndLoginSessions(ctx context.Context, tenantID, loginID int64) error {
	if _, err := s.exec(ctx, `DELETE FROM console_sessions WHERE tenant_id = ? AND login_id = ?`, tenantID, loginID); err != nil {
		return fmt.Errorf("end sessions of login %d: %w", loginID, err)
	}
	return nil
}

// RecordSigninFailure records a failed sign-in under each key (a login, an
// IP address) and drops failures older than keep.
func (s *Store) RecordSigninFailure(ctx context.Context, at time.Time, keep time.Duration, keys ...string) error {
	for _, k := range keys {
		if _, err := s.exec(ctx, `INSERT INTO signin_failures (key, at) VALUES (?, ?)`, k, at.UTC()); err != nil {
			return fmt.Errorf("record sign-in failure: %w", err)
		}
	}
	_, err := s.exec(ctx, `DELETE FROM signin_failures WHERE at < ?`, at.Add(-keep).UTC())
	return err
}

// SigninFailures counts the failed sign-ins under key since since.
func (s *Store) SigninFailures(ctx context.Context, key string, since time.Time) (int, error) {
	var n int
	err := s.get(ctx, &n, `SELECT COUNT(*) FROM signin_failures WHERE key = ? AND at >= ?`, key, since.UTC())
	return n, err
}

// ClearSigninFailures forgets the failures under key (after a sign-in).
func (s *Store) ClearSigninFailures(ctx context.Context, key string) error {
	_, err := s.exec(ctx, `DELETE FROM signin_failures WHERE key = ?`, key)
	return err
}

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

// recordRefusals keeps, for each user of a sync page, the last value the
// sync refused per field, and forgets a field's refusal once the source
// gives a good value (or none).
func (s *Store) recordRefusals(ctx context.Context, target PageTarget, recs []UserRecord) error {
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

// CustomerCounts are a customer's end-user counts.
type CustomerCounts struct {
	CustomerID int64 `db:"customer_id"`
	EndUsers   int   `db:"end_users"`
	// UserActive counts users whose own half of rules.Active holds.
	UserActive int `db:"user_active"`
	Incomplete int `db:"incomplete"`
	Locked     int `db:"locked"`
}

// CustomerCounts counts each customer's end users still in their source.
func (s *Store) CustomerCounts(ctx context.Context, tenantID int64) (map[int64]CustomerCounts, error) {
	var rows []CustomerCounts
	err := s.list(ctx, &rows, `SELECT customer_id, COUNT(*) AS end_users,
		SUM(CASE WHEN `+userActiveSQL+` THEN 1 ELSE 0 END) AS user_active,
		SUM(CASE WHEN `+StatusSQL+` = 'incomplete' THEN 1 ELSE 0 END) AS incomplete,
		SUM(CASE WHEN locked_out THEN 1 ELSE 0 END) AS locked
		FROM end_users WHERE tenant_id = ? AND removed_at IS NULL GROUP BY customer_id`, tenantID)
	if err != nil {
		return nil, fmt.Errorf("customer counts: %w", err)
	}
	out := make(map[int64]CustomerCounts, len(rows))
	for _, r := range rows {
		out[r.CustomerID] = r
	}
	return out, nil
}
