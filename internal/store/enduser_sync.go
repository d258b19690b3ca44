package store

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"selfserve/connectors"
	"selfserve/internal/rules"
)

const endUserColumns = `id, tenant_id, customer_id, connection_id, source, external_id, username, upn, first_name, last_name, display_name,
	email, email_source, mobile, mobile_source, enabled, locked_out, locked_out_at, must_change_password, password_never_expires,
	password_last_set, password_expires_at, immutable_id, self_serve, privileged, privileged_reason, first_access_at, welcome_sent_at, removed_at, seen_run_id,
	created_at, updated_at`

// UserRecord is a directory user ready to store: email and mobile already
// normalised. EmailInvalid/MobileInvalid mark an incoming value that could
// not be used: the stored value is then kept as it is.
type UserRecord struct {
	connectors.User
	EmailInvalid  bool
	MobileInvalid bool
	// EmailRefused and MobileRefused say why an invalid value was refused
	// (kept with the value as the end user's refusal, for the console).
	EmailRefused, MobileRefused string
}

// PageTarget says where a page of users goes.
type PageTarget struct {
	TenantID     int64
	CustomerID   int64
	ConnectionID int64
	RunID        int64
	Source       rules.Source
	// EnableSelfServe is the switch new end users get; existing users keep
	// theirs.
	EnableSelfServe bool
}

// Lockout is a not-locked → locked transition seen by a sync.
type Lockout struct {
	EndUserID int64
	At        time.Time
}

// PageResult counts what ApplyUserPage did.
type PageResult struct {
	Created int
	Updated int
	// Unchanged does not count a user the same run saw already (a run that
	// lists its source again after an interruption counts each user once).
	Unchanged int
	// Linked counts users joined to their hybrid counterpart (see
	// links.go): an Entra user linked to an AD end user, or an AD user that
	// took over the Entra end user it is. They are not counted as created or
	// updated.
	Linked   int
	Removed  int
	Lockouts []Lockout
	// Privileges are the end users that became or stopped being
	// privileged (new users imported privileged among them), for the audit.
	Privileges []PrivilegeChange
}

// PrivilegeChange is an end user that became or stopped being privileged.
type PrivilegeChange struct {
	EndUserID int64
	// Before and After are the flag and reason before and after the change.
	Before, After Privilege
}

// Privilege is an end user's privileged flag with its reason.
type Privilege struct {
	Privileged bool   `json:"privileged"`
	Reason     string `json:"privileged_reason,omitempty"`
}

// ApplyUserPage stores one page of directory users for a connection, in one
// transaction (the caller's if there is one): new users are created with the
// target's switch; existing users are updated field by field under the
// provenance rules (rules.MergeContactField: never over a manual or end-user
// value), keep their switch, and are restored if they had been removed.
// Every user of the page is stamped as seen by the run. removals (from delta
// sources) mark users removed. Pages of ad and azure connections link hybrid
// identities (links.go). The pages of one customer are serialised (a lock on
// its row on PostgreSQL). It returns the counts and the lockout transitions.
func (s *Store) ApplyUserPage(ctx context.Context, target PageTarget, recs []UserRecord, removals []connectors.Removal) (PageResult, error) {
	var res PageResult
	err := s.InTx(ctx, func(tx *Store) error {
		var err error
		if res, err = tx.applyUserPage(ctx, target, recs, removals); err != nil {
			return err
		}
		return tx.recordRefusals(ctx, target, recs)
	})
	return res, err
}

func (s *Store) applyUserPage(ctx context.Context, target PageTarget, recs []UserRecord, removals []connectors.Removal) (PageResult, error) {
	var res PageResult
	now := s.stamp()
	if len(recs) == 0 && len(removals) == 0 {
		return res, nil
	}
	// Page transactions of one customer take turns: an AD and an Entra page
	// then see each other's new users (links.go), and overlapping writers
	// cannot deadlock on rows they would lock in different orders.
	if err := s.lockCustomer(ctx, target.TenantID, target.CustomerID); err != nil {
		return res, err
	}
	var scope linkScope
	if hybrid(target.Source) {
		var err error
		if scope, err = s.linkScope(ctx, target); err != nil {
			return res, err
		}
	}
	for start := 0; start < len(recs); start += batchSize {
		chunk := recs[start:min(start+batchSize, len(recs))]
		existing, err := s.existingUsers(ctx, target, chunk)
		if err != nil {
			return res, err
		}
		var lk *linker
		if scope.Counterparts || scope.Links {
			if lk, err = s.newLinker(ctx, target, scope, chunk, existing, now); err != nil {
				return res, err
			}
		}
		var writes []EndUser
		var unchanged []int64
		var newPrivileged []string // external ids: their end user ids exist once written
		for _, rec := range chunk {
			if lk != nil {
				switch lk.linkEntra(rec, existing) {
				case linkNew:
					res.Linked++
					continue
				case linkUpdated:
					res.Updated++
					continue
				case linkUnchanged:
					res.Unchanged++
					continue
				}
			}
			old, ok := existing[rec.ExternalID]
			tookOver := false
			if !ok && lk != nil {
				old, tookOver = lk.takeover(rec)
				ok = tookOver
			}
			if !ok {
				writes = append(writes, newEndUser(target, rec, now))
				res.Created++
				if rec.Privileged {
					newPrivileged = append(newPrivileged, rec.ExternalID)
				}
				continue
			}
			var emails, mobiles []string
			if lk != nil {
				emails, mobiles = lk.linked(old.ID)
			}
			merged := mergeEndUser(old, rec, now, emails, mobiles)
			if !tookOver && sameEndUser(old, merged) {
				unchanged = append(unchanged, old.ID)
				// A run that lists its source again (it could not resume
				// where it stopped) counted this user already.
				if old.SeenRunID == nil || *old.SeenRunID != target.RunID {
					res.Unchanged++
				}
				continue
			}
			if old.Privileged != merged.Privileged {
				res.Privileges = append(res.Privileges, PrivilegeChange{EndUserID: old.ID,
					Before: Privilege{old.Privileged, old.PrivilegedReason}, After: Privilege{merged.Privileged, merged.PrivilegedReason}})
			}
			if !old.LockedOut && merged.LockedOut {
				res.Lockouts = append(res.Lockouts, Lockout{EndUserID: old.ID, At: *merged.LockedOutAt})
			}
			merged.SeenRunID = &target.RunID
			writes = append(writes, merged)
			if tookOver {
				res.Linked++
			} else {
				res.Updated++
			}
		}
		if lk != nil {
			if err := lk.flushBefore(ctx); err != nil {
				return res, err
			}
			writes = append(writes, lk.userWrites()...)
		}
		if err := s.UpsertEndUsers(ctx, writes); err != nil {
			return res, err
		}
		if err := s.markSeen(ctx, target, unchanged); err != nil {
			return res, err
		}
		if err := s.newPrivileges(ctx, target, newPrivileged, &res); err != nil {
			return res, err
		}
		if lk != nil {
			if err := lk.flushAfter(ctx); err != nil {
				return res, err
			}
			scope.Links = scope.Links || len(lk.order) > 0
		}
	}
	n, err := s.removeByExternalID(ctx, target, removals, now)
	res.Removed = n
	return res, err
}

// newPrivileges adds the end users just created privileged, by external id,
// to res.Privileges.
func (s *Store) newPrivileges(ctx context.Context, target PageTarget, externalIDs []string, res *PageResult) error {
	if len(externalIDs) == 0 {
		return nil
	}
	var rows []struct {
		ID     int64  `db:"id"`
		Reason string `db:"privileged_reason"`
	}
	cond, args := inList(s.dialect, "external_id", externalIDs)
	if err := s.list(ctx, &rows, `SELECT id, privileged_reason FROM end_users WHERE tenant_id = ? AND connection_id = ? AND `+cond+` ORDER BY id`,
		append([]any{target.TenantID, target.ConnectionID}, args...)...); err != nil {
		return fmt.Errorf("read new privileged end users: %w", err)
	}
	for _, r := range rows {
		res.Privileges = append(res.Privileges, PrivilegeChange{EndUserID: r.ID, After: Privilege{true, r.Reason}})
	}
	return nil
}

func (s *Store) existingUsers(ctx context.Context, target PageTarget, recs []UserRecord) (map[string]EndUser, error) {
	out := make(map[string]EndUser, len(recs))
	if len(recs) == 0 {
		return out, nil
	}
	var rows []EndUser
	q := `SELECT ` + endUserColumns + ` FROM end_users WHERE tenant_id = ? AND connection_id = ? AND external_id `
	args := []any{target.TenantID, target.ConnectionID}
	if s.dialect == Postgres {
		ids := make([]string, len(recs))
		for i, r := range recs {
			ids[i] = r.ExternalID
		}
		q += `= ANY(?)`
		args = append(args, ids)
	} else {
		q += `IN (` + placeholders(len(recs)) + `)`
		for _, r := range recs {
			args = append(args, r.ExternalID)
		}
	}
	if err := s.list(ctx, &rows, q, args...); err != nil {
		return nil, fmt.Errorf("read existing end users: %w", err)
	}
	for _, u := range rows {
		out[u.ExternalID] = u
	}
	return out, nil
}

func newEndUser(target PageTarget, rec UserRecord, now time.Time) EndUser {
	connID, runID := target.ConnectionID, target.RunID
	u := EndUser{
		TenantID:     target.TenantID,
		CustomerID:   target.CustomerID,
		ConnectionID: &connID,
		Source:       target.Source,
		ExternalID:   rec.ExternalID,
		SelfServe:    target.EnableSelfServe,
		SeenRunID:    &runID,
		CreatedAt:    now,
		UpdatedAt:    now,
	}
	applyDirectoryFields(&u, rec, now)
	u.Email, u.EmailSource = rules.MergeDirectoryContact("", rules.ProvenanceNone, rec.Email, rec.EmailInvalid, nil)
	u.Mobile, u.MobileSource = rules.MergeDirectoryContact("", rules.ProvenanceNone, rec.Mobile, rec.MobileInvalid, nil)
	return u
}

// mergeEndUser is old updated by rec; emails and mobiles are what the
// Entra links of a hybrid AD end user last gave.
func mergeEndUser(old EndUser, rec UserRecord, now time.Time, emails, mobiles []string) EndUser {
	u := old
	applyDirectoryFields(&u, rec, now)
	if u.LockedOut && old.LockedOut && old.LockedOutAt != nil && rec.LockedOutAt.IsZero() {
		u.LockedOutAt = old.LockedOutAt // still the same lockout
	}
	u.Email, u.EmailSource = rules.MergeDirectoryContact(old.Email, old.EmailSource, rec.Email, rec.EmailInvalid, emails)
	u.Mobile, u.MobileSource = rules.MergeDirectoryContact(old.Mobile, old.MobileSource, rec.Mobile, rec.MobileInvalid, mobiles)
	u.RemovedAt = nil
	u.UpdatedAt = now
	return u
}

// applyDirectoryFields copies what the directory owns.
func applyDirectoryFields(u *EndUser, rec UserRecord, now time.Time) {
	u.Username, u.UPN = rec.Username, rec.UPN
	u.FirstName, u.LastName, u.DisplayName = rec.FirstName, rec.LastName, rec.DisplayName
	u.Enabled = rec.Enabled
	u.LockedOut = rec.LockedOut
	u.LockedOutAt = nil
	if rec.LockedOut {
		at := rec.LockedOutAt
		if at.IsZero() {
			at = now
		}
		at = at.UTC().Truncate(time.Microsecond)
		u.LockedOutAt = &at
	}
	u.MustChangePassword = rec.MustChangePassword
	u.PasswordNeverExpires = rec.PasswordNeverExpires
	u.PasswordLastSet = timePtr(rec.PasswordLastSet)
	u.PasswordExpiresAt = timePtr(rec.PasswordExpiresAt)
	if rec.PasswordNeverExpires {
		u.PasswordExpiresAt = nil
	}
	u.ImmutableID = rec.ImmutableID
	u.Privileged, u.PrivilegedReason = rec.Privileged, rec.PrivilegedReason
	if !rec.Privileged {
		u.PrivilegedReason = ""
	}
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC().Truncate(time.Microsecond)
	return &t
}

func sameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}

// sameEndUser compares what an import may change.
func sameEndUser(a, b EndUser) bool {
	return a.Username == b.Username && a.UPN == b.UPN && a.FirstName == b.FirstName && a.LastName == b.LastName &&
		a.DisplayName == b.DisplayName && a.Email == b.Email && a.EmailSource == b.EmailSource &&
		a.Mobile == b.Mobile && a.MobileSource == b.MobileSource && a.Enabled == b.Enabled &&
		a.LockedOut == b.LockedOut && sameTime(a.LockedOutAt, b.LockedOutAt) &&
		a.MustChangePassword == b.MustChangePassword && a.PasswordNeverExpires == b.PasswordNeverExpires &&
		sameTime(a.PasswordLastSet, b.PasswordLastSet) && sameTime(a.PasswordExpiresAt, b.PasswordExpiresAt) &&
		a.ImmutableID == b.ImmutableID && sameTime(a.RemovedAt, b.RemovedAt) &&
		a.Privileged == b.Privileged && a.PrivilegedReason == b.PrivilegedReason
}

const endUserWriteColumns = `tenant_id, customer_id, connection_id, source, external_id, username, upn, first_name, last_name, display_name,
	email, email_source, mobile, mobile_source, enabled, locked_out, locked_out_at, must_change_password, password_never_expires,
	password_last_set, password_expires_at, immutable_id, self_serve, privileged, privileged_reason, removed_at, seen_run_id, created_at, updated_at`

// onConflictUpdate replaces the directory-owned fields of an existing end
// user; the switch, access and welcome stamps are kept. The email and mobile
// the caller decided (rules.MergeDirectoryContact and the hybrid rules) go
// through contactGuard.
var onConflictUpdate = ` ON CONFLICT (connection_id, external_id) DO UPDATE SET
	customer_id = excluded.customer_id, username = excluded.username, upn = excluded.upn,
	first_name = excluded.first_name, last_name = excluded.last_name, display_name = excluded.display_name,
	` + contactGuard("email") + `,
	` + contactGuard("mobile") + `,
	enabled = excluded.enabled, locked_out = excluded.locked_out, locked_out_at = excluded.locked_out_at,
	must_change_password = excluded.must_change_password, password_never_expires = excluded.password_never_expires,
	password_last_set = excluded.password_last_set, password_expires_at = excluded.password_expires_at,
	immutable_id = excluded.immutable_id, privileged = excluded.privileged, privileged_reason = excluded.privileged_reason,
	removed_at = excluded.removed_at, seen_run_id = excluded.seen_run_id,
	updated_at = excluded.updated_at`

// contactGuard sets an email or mobile column (and its _source) of an
// upsert, keeping what the row holds now where rules.MergeContactField
// refuses a directory value: a value a person typed is never replaced, and
// a PSA value is never cleared. The caller decided the value from the row
// as it read it; the guard holds if a person or the PSA wrote the field
// since (storetest's ContactGuardMirrorsRule checks both agree).
func contactGuard(col string) string {
	keep := `end_users.` + col + ` <> '' AND (end_users.` + col + `_source IN ('manual', 'end_user') OR (excluded.` + col + ` = '' AND end_users.` + col + `_source = 'psa'))`
	return col + ` = CASE WHEN ` + keep + ` THEN end_users.` + col + ` ELSE excluded.` + col + ` END,
	` + col + `_source = CASE WHEN ` + keep + ` THEN end_users.` + col + `_source ELSE excluded.` + col + `_source END`
}

// endUserRow is the write order of endUserWriteColumns.
func endUserRow(u EndUser) []any {
	return []any{u.TenantID, u.CustomerID, u.ConnectionID, u.Source, u.ExternalID, u.Username, u.UPN, u.FirstName, u.LastName, u.DisplayName,
		u.Email, u.EmailSource, u.Mobile, u.MobileSource, u.Enabled, u.LockedOut, u.LockedOutAt, u.MustChangePassword, u.PasswordNeverExpires,
		u.PasswordLastSet, u.PasswordExpiresAt, u.ImmutableID, u.SelfServe, u.Privileged, u.PrivilegedReason, u.RemovedAt, u.SeenRunID, u.CreatedAt, u.UpdatedAt}
}

// endUserArrayTypes are the PostgreSQL array types of endUserWriteColumns,
// for the unnest form of the upsert.
var endUserArrayTypes = []string{"bigint[]", "bigint[]", "bigint[]", "text[]", "text[]", "text[]", "text[]", "text[]", "text[]", "text[]",
	"text[]", "text[]", "text[]", "text[]", "boolean[]", "boolean[]", "timestamptz[]", "boolean[]", "boolean[]",
	"timestamptz[]", "timestamptz[]", "text[]", "boolean[]", "boolean[]", "text[]", "timestamptz[]", "bigint[]", "timestamptz[]", "timestamptz[]"}

// UpsertEndUsers writes end users a sync decided, keyed by connection and
// external id: new ones are inserted as they are; existing ones get the
// directory-owned fields, and their email and mobile under the provenance
// guard (contactGuard); their switch and stamps are kept. One statement per
// batch: on PostgreSQL one INSERT … SELECT FROM unnest of one array per
// column (29 parameters however many rows: cheap to plan), on SQLite a
// multi-row VALUES.
func (s *Store) UpsertEndUsers(ctx context.Context, users []EndUser) error {
	cols := len(endUserArrayTypes)
	for start := 0; start < len(users); start += batchSize {
		chunk := users[start:min(start+batchSize, len(users))]
		var q string
		var args []any
		if s.dialect == Postgres {
			columns := make([][]any, cols)
			for _, u := range chunk {
				for i, v := range endUserRow(u) {
					columns[i] = append(columns[i], v)
				}
			}
			params := make([]string, cols)
			for i := range columns {
				params[i] = "?::" + endUserArrayTypes[i]
				args = append(args, columns[i])
			}
			q = `INSERT INTO end_users (` + endUserWriteColumns + `) SELECT * FROM unnest(` + strings.Join(params, ", ") + `)` + onConflictUpdate
		} else {
			var b strings.Builder
			b.WriteString(`INSERT INTO end_users (` + endUserWriteColumns + `) VALUES `)
			row := "(" + placeholders(cols) + ")"
			for i, u := range chunk {
				if i > 0 {
					b.WriteByte(',')
				}
				b.WriteString(row)
				args = append(args, endUserRow(u)...)
			}
			q = b.String() + onConflictUpdate
		}
		if _, err := s.exec(ctx, q, args...); err != nil {
			return fmt.Errorf("write %d end users: %w", len(chunk), err)
		}
	}
	return nil
}

func (s *Store) markSeen(ctx context.Context, target PageTarget, ids []int64) error {
	for start := 0; start < len(ids); start += batchSize {
		chunk := ids[start:min(start+batchSize, len(ids))]
		args := make([]any, 0, len(chunk)+2)
		args = append(args, target.RunID, target.TenantID)
		for _, id := range chunk {
			args = append(args, id)
		}
		if _, err := s.exec(ctx, `UPDATE end_users SET seen_run_id = ? WHERE tenant_id = ? AND id IN (`+placeholders(len(chunk))+`)`, args...); err != nil {
			return fmt.Errorf("mark end users seen: %w", err)
		}
	}
	return nil
}

// MarkSeenByExternalID stamps the target connection's end users and links
// with these external ids as seen by the target's run, changing nothing
// else: a full run keeps the end users of records it could not read but
// could tell apart by their key. Removed end users stay removed.
func (s *Store) MarkSeenByExternalID(ctx context.Context, target PageTarget, externalIDs []string) error {
	if len(externalIDs) == 0 {
		return nil
	}
	if err := s.lockCustomer(ctx, target.TenantID, target.CustomerID); err != nil {
		return err
	}
	for start := 0; start < len(externalIDs); start += batchSize {
		chunk := externalIDs[start:min(start+batchSize, len(externalIDs))]
		args := make([]any, 0, len(chunk)+3)
		args = append(args, target.RunID, target.TenantID, target.ConnectionID)
		for _, id := range chunk {
			args = append(args, id)
		}
		in := ` AND external_id IN (` + placeholders(len(chunk)) + `)`
		if _, err := s.exec(ctx, `UPDATE end_users SET seen_run_id = ? WHERE tenant_id = ? AND connection_id = ? AND removed_at IS NULL`+in, args...); err != nil {
			return fmt.Errorf("mark end users seen: %w", err)
		}
		if _, err := s.exec(ctx, `UPDATE end_user_links SET seen_run_id = ? WHERE tenant_id = ? AND connection_id = ?`+in, args...); err != nil {
			return fmt.Errorf("mark end user links seen: %w", err)
		}
	}
	return nil
}

func (s *Store) removeByExternalID(ctx context.Context, target PageTarget, removals []connectors.Removal, now time.Time) (int, error) {
	total := 0
	for start := 0; start < len(removals); start += batchSize {
		chunk := removals[start:min(start+batchSize, len(removals))]
		args := []any{now, now, target.TenantID, target.ConnectionID}
		for _, r := range chunk {
			args = append(args, r.ExternalID)
		}
		res, err := s.exec(ctx, `UPDATE end_users SET removed_at = ?, updated_at = ? WHERE tenant_id = ? AND connection_id = ? AND removed_at IS NULL AND external_id IN (`+placeholders(len(chunk))+`)`, args...)
		if err != nil {
			return total, fmt.Errorf("mark end users removed: %w", err)
		}
		n, _ := res.RowsAffected()
		total += int(n)
		ext := make([]string, len(chunk))
		for i, r := range chunk {
			ext[i] = r.ExternalID
		}
		// A linked Entra user's deletion removes only its link.
		links, err := s.removeLinks(ctx, target, ext)
		if err != nil {
			return total, err
		}
		total += links
	}
	return total, nil
}

// RemovalCheck counts, after a complete full run, the connection's present
// users and those the run did not see. Hybrid links the connection holds
// (links.go) count as users: their removal drops the link.
func (s *Store) RemovalCheck(ctx context.Context, tenantID, connectionID, runID int64) (present, unseen int, err error) {
	var links, unseenLinks int
	counts := []struct {
		dest *int
		q    string
		args []any
	}{
		{&present, `SELECT COUNT(*) FROM end_users WHERE tenant_id = ? AND connection_id = ? AND removed_at IS NULL`, []any{tenantID, connectionID}},
		{&unseen, `SELECT COUNT(*) FROM end_users WHERE tenant_id = ? AND connection_id = ? AND removed_at IS NULL AND (seen_run_id IS NULL OR seen_run_id <> ?)`, []any{tenantID, connectionID, runID}},
		{&links, `SELECT COUNT(*) FROM end_user_links WHERE tenant_id = ? AND connection_id = ?`, []any{tenantID, connectionID}},
		{&unseenLinks, `SELECT COUNT(*) FROM end_user_links WHERE tenant_id = ? AND connection_id = ? AND (seen_run_id IS NULL OR seen_run_id <> ?)`, []any{tenantID, connectionID, runID}},
	}
	for _, c := range counts {
		if err := s.get(ctx, c.dest, c.q, c.args...); err != nil {
			return 0, 0, fmt.Errorf("count unseen end users: %w", err)
		}
	}
	return present + links, unseen + unseenLinks, nil
}

// RemoveUnseen marks removed the connection's users that run did not see,
// and deletes the connection's hybrid links the run did not see (their AD
// end users stay). Call it only after a complete, error-free full
// enumeration. It returns how many users and links it removed.
func (s *Store) RemoveUnseen(ctx context.Context, tenantID, connectionID, runID int64) (int, error) {
	total := 0
	err := s.InTx(ctx, func(tx *Store) error {
		now := tx.stamp()
		res, err := tx.exec(ctx, `UPDATE end_users SET removed_at = ?, updated_at = ? WHERE tenant_id = ? AND connection_id = ? AND removed_at IS NULL AND (seen_run_id IS NULL OR seen_run_id <> ?)`,
			now, now, tenantID, connectionID, runID)
		if err != nil {
			return fmt.Errorf("remove unseen end users: %w", err)
		}
		n, _ := res.RowsAffected()
		res, err = tx.exec(ctx, `DELETE FROM end_user_links WHERE tenant_id = ? AND connection_id = ? AND (seen_run_id IS NULL OR seen_run_id <> ?)`, tenantID, connectionID, runID)
		if err != nil {
			return fmt.Errorf("remove unseen hybrid links: %w", err)
		}
		m, _ := res.RowsAffected()
		total = int(n + m)
		return nil
	})
	return total, err
}

// ReconcilePrivileged makes the privileged flags of the connection's end
// users match privileged, a source's complete set of privileged accounts
// (external id to reason, connectors.UserPage.Privileged): the end users in
// it become privileged with its reason, the others stop being privileged. It
// returns the end users whose flag changed.
func (s *Store) ReconcilePrivileged(ctx context.Context, target PageTarget, privileged map[string]string) ([]PrivilegeChange, error) {
	type row struct {
		ID         int64  `db:"id"`
		ExternalID string `db:"external_id"`
		Privileged bool   `db:"privileged"`
		Reason     string `db:"privileged_reason"`
	}
	const cols = `id, external_id, privileged, privileged_reason`
	var rows []row
	if err := s.list(ctx, &rows, `SELECT `+cols+` FROM end_users WHERE tenant_id = ? AND connection_id = ? AND privileged`,
		target.TenantID, target.ConnectionID); err != nil {
		return nil, fmt.Errorf("read privileged end users: %w", err)
	}
	ids := make([]string, 0, len(privileged))
	for id := range privileged {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for start := 0; start < len(ids); start += batchSize {
		var more []row
		cond, args := inList(s.dialect, "external_id", ids[start:min(start+batchSize, len(ids))])
		if err := s.list(ctx, &more, `SELECT `+cols+` FROM end_users WHERE tenant_id = ? AND connection_id = ? AND NOT privileged AND `+cond,
			append([]any{target.TenantID, target.ConnectionID}, args...)...); err != nil {
			return nil, fmt.Errorf("read privileged end users: %w", err)
		}
		rows = append(rows, more...)
	}
	var changes []PrivilegeChange
	now := s.stamp()
	for _, r := range rows {
		reason, want := privileged[r.ExternalID]
		if want == r.Privileged && (!want || reason == r.Reason) {
			continue
		}
		if _, err := s.exec(ctx, `UPDATE end_users SET privileged = ?, privileged_reason = ?, updated_at = ? WHERE tenant_id = ? AND id = ?`,
			want, reason, now, target.TenantID, r.ID); err != nil {
			return nil, fmt.Errorf("set the privileged flag of end user %d: %w", r.ID, err)
		}
		if want != r.Privileged {
			changes = append(changes, PrivilegeChange{EndUserID: r.ID, Before: Privilege{r.Privileged, r.Reason}, After: Privilege{want, reason}})
		}
	}
	slices.SortFunc(changes, func(a, b PrivilegeChange) int { return cmp.Compare(a.EndUserID, b.EndUserID) })
	return changes, nil
}
