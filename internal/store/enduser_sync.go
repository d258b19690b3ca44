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

// PageResult counts what a sync page did (importer.ApplyPage).
type PageResult struct {
	Created int
	Updated int
	// Unchanged does not count a user the same run saw already (a run that
	// lists its source again after an interruption counts each user once).
	Unchanged int
	// Linked counts users joined to their hybrid counterpart (see
	// internal/importer/linker.go): an Entra user linked to an AD end user, or an AD user that
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

// NewPrivilegeChanges returns, as privilege changes for the audit, the
// target connection's privileged end users with these external ids (just
// created by a page).
func (s *Store) NewPrivilegeChanges(ctx context.Context, target PageTarget, externalIDs []string) ([]PrivilegeChange, error) {
	if len(externalIDs) == 0 {
		return nil, nil
	}
	var rows []struct {
		ID     int64  `db:"id"`
		Reason string `db:"privileged_reason"`
	}
	cond, args := inList(s.dialect, "external_id", externalIDs)
	if err := s.list(ctx, &rows, `SELECT id, privileged_reason FROM end_users WHERE tenant_id = ? AND connection_id = ? AND privileged AND `+cond+` ORDER BY id`,
		append([]any{target.TenantID, target.ConnectionID}, args...)...); err != nil {
		return nil, fmt.Errorf("read new privileged end users: %w", err)
	}
	out := make([]PrivilegeChange, len(rows))
	for i, r := range rows {
		out[i] = PrivilegeChange{EndUserID: r.ID, After: Privilege{true, r.Reason}}
	}
	return out, nil
}

// EndUsersByExternalID returns the target connection's end users with these
// external ids, by external id.
func (s *Store) EndUsersByExternalID(ctx context.Context, target PageTarget, externalIDs []string) (map[string]EndUser, error) {
	out := make(map[string]EndUser, len(externalIDs))
	if len(externalIDs) == 0 {
		return out, nil
	}
	var rows []EndUser
	cond, args := inList(s.dialect, "external_id", externalIDs)
	if err := s.list(ctx, &rows, `SELECT `+endUserColumns+` FROM end_users WHERE tenant_id = ? AND connection_id = ? AND `+cond,
		append([]any{target.TenantID, target.ConnectionID}, args...)...); err != nil {
		return nil, fmt.Errorf("read existing end users: %w", err)
	}
	for _, u := range rows {
		out[u.ExternalID] = u
	}
	return out, nil
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

// MarkEndUsersSeen stamps the tenant's end users ids as seen by the
// target's run.
func (s *Store) MarkEndUsersSeen(ctx context.Context, target PageTarget, ids []int64) error {
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
	if err := s.LockCustomer(ctx, target.TenantID, target.CustomerID); err != nil {
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

// MarkRemoved marks removed the target connection's end users with these
// external ids (a delta source reported them deleted). It returns how many
// it marked.
func (s *Store) MarkRemoved(ctx context.Context, target PageTarget, externalIDs []string) (int, error) {
	total := 0
	now := s.stamp()
	for start := 0; start < len(externalIDs); start += batchSize {
		cond, in := inList(s.dialect, "external_id", externalIDs[start:min(start+batchSize, len(externalIDs))])
		res, err := s.exec(ctx, `UPDATE end_users SET removed_at = ?, updated_at = ? WHERE tenant_id = ? AND connection_id = ? AND removed_at IS NULL AND `+cond,
			append([]any{now, now, target.TenantID, target.ConnectionID}, in...)...)
		if err != nil {
			return total, fmt.Errorf("mark end users removed: %w", err)
		}
		n, _ := res.RowsAffected()
		total += int(n)
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
