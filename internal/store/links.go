package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"selfserve/internal/rules"
)

// Hybrid identities (DESIGN.md "End users"; the sync engine's linker in
// internal/importer decides, package rules holds the contact rules): an
// Entra ID user that is an AD end user of the same customer is recorded as
// an EndUserLink of that end user. The store reads and writes links and the
// end users they join; a page's reads and writes run in its transaction,
// after LockCustomer.

// EndUserLink is the Entra ID identity of a hybrid end user.
type EndUserLink struct {
	ID        int64 `db:"id" json:"id"`
	TenantID  int64 `db:"tenant_id" json:"tenant_id"`
	EndUserID int64 `db:"end_user_id" json:"end_user_id"`
	// ConnectionID is the Entra ID connection the identity comes from.
	ConnectionID int64        `db:"connection_id" json:"connection_id"`
	Source       rules.Source `db:"source" json:"source"`
	// ExternalID is the Entra object id.
	ExternalID  string `db:"external_id" json:"external_id"`
	ImmutableID string `db:"immutable_id" json:"-"`
	UPN         string `db:"upn" json:"upn"`
	// Email and Mobile are the values Entra last gave (normalised), which
	// fill the end user's when AD has none.
	Email     string    `db:"email" json:"email"`
	Mobile    string    `db:"mobile" json:"mobile"`
	SeenRunID *int64    `db:"seen_run_id" json:"-"`
	CreatedAt time.Time `db:"created_at" json:"created_at"`
	UpdatedAt time.Time `db:"updated_at" json:"updated_at"`
}

const linkColumns = `id, tenant_id, end_user_id, connection_id, source, external_id, immutable_id, upn, email, mobile, seen_run_id, created_at, updated_at`

// EndUserLinks lists the hybrid links of the tenant's end user, oldest
// first.
func (s *Store) EndUserLinks(ctx context.Context, tenantID, endUserID int64) ([]EndUserLink, error) {
	var out []EndUserLink
	if err := s.list(ctx, &out, `SELECT `+linkColumns+` FROM end_user_links WHERE tenant_id = ? AND end_user_id = ? ORDER BY id`, tenantID, endUserID); err != nil {
		return nil, fmt.Errorf("list links of end user %d: %w", endUserID, err)
	}
	return out, nil
}

// ConnectionLinks lists the hybrid links a connection holds, by id.
func (s *Store) ConnectionLinks(ctx context.Context, tenantID, connectionID int64) ([]EndUserLink, error) {
	var out []EndUserLink
	if err := s.list(ctx, &out, `SELECT `+linkColumns+` FROM end_user_links WHERE tenant_id = ? AND connection_id = ? ORDER BY id`, tenantID, connectionID); err != nil {
		return nil, fmt.Errorf("list links of connection %d: %w", connectionID, err)
	}
	return out, nil
}

// LockCustomer serialises the page transactions of one customer on
// PostgreSQL until the transaction ends (FOR NO KEY UPDATE does not block
// inserts referencing the customer). SQLite transactions begin IMMEDIATE:
// already serialised.
func (s *Store) LockCustomer(ctx context.Context, tenantID, customerID int64) error {
	if s.dialect != Postgres {
		return nil
	}
	var id int64
	if err := s.get(ctx, &id, `SELECT id FROM customers WHERE tenant_id = ? AND id = ? FOR NO KEY UPDATE`, tenantID, customerID); err != nil {
		return notFound(err, "customer", customerID)
	}
	return nil
}

// inList returns "col = ANY(?)" with vals as one array parameter on
// PostgreSQL, "col IN (?, …)" with a parameter per value on SQLite. vals must
// not be empty.
func inList[T any](d Dialect, col string, vals []T) (string, []any) {
	if d == Postgres {
		return col + " = ANY(?)", []any{vals}
	}
	args := make([]any, len(vals))
	for i, v := range vals {
		args[i] = v
	}
	return col + " IN (" + placeholders(len(vals)) + ")", args
}

// LinkScope says what a page's linking may meet, so that pages of customers
// that are not hybrid skip the per-chunk lookups.
type LinkScope struct {
	// Counterparts: the customer has end users of the other side (AD users
	// for an Entra page, Entra users for an AD page) with an immutable id.
	Counterparts bool `db:"counterparts"`
	// Links: links exist that the page may update (of this Entra
	// connection) or fill from (of this AD connection's end users).
	Links bool `db:"links"`
}

// LinkScope probes, in the page's transaction after LockCustomer, what the
// linking of a page of an ad or azure connection may meet.
func (s *Store) LinkScope(ctx context.Context, target PageTarget) (LinkScope, error) {
	var sc LinkScope
	var q string
	if target.Source == rules.SourceAzure {
		q = `SELECT EXISTS (SELECT 1 FROM end_users WHERE customer_id = ? AND source = 'ad' AND immutable_id <> '') AS counterparts,
			EXISTS (SELECT 1 FROM end_user_links WHERE tenant_id = ? AND connection_id = ?) AS links`
	} else {
		q = `SELECT EXISTS (SELECT 1 FROM end_users WHERE customer_id = ? AND source = 'azure' AND immutable_id <> '') AS counterparts,
			EXISTS (SELECT 1 FROM end_user_links k JOIN end_users u ON u.id = k.end_user_id WHERE k.tenant_id = ? AND u.connection_id = ?) AS links`
	}
	if err := s.get(ctx, &sc, q, target.CustomerID, target.TenantID, target.ConnectionID); err != nil {
		return sc, fmt.Errorf("probe hybrid identities: %w", err)
	}
	return sc, nil
}

// LinksByExternalID returns the links of an Entra connection with these
// Entra object ids.
func (s *Store) LinksByExternalID(ctx context.Context, tenantID, connectionID int64, externalIDs []string) ([]EndUserLink, error) {
	if len(externalIDs) == 0 {
		return nil, nil
	}
	cond, args := inList(s.dialect, "external_id", externalIDs)
	return s.linksWhere(ctx, `connection_id = ? AND `+cond, append([]any{tenantID, connectionID}, args...))
}

// LinksOfEndUsers returns the links of the tenant's end users ids, oldest
// first.
func (s *Store) LinksOfEndUsers(ctx context.Context, tenantID int64, endUserIDs []int64) ([]EndUserLink, error) {
	if len(endUserIDs) == 0 {
		return nil, nil
	}
	cond, args := inList(s.dialect, "end_user_id", endUserIDs)
	return s.linksWhere(ctx, cond, append([]any{tenantID}, args...))
}

// linksWhere reads the links of a tenant (args[0]) that match cond, oldest
// first.
func (s *Store) linksWhere(ctx context.Context, cond string, args []any) ([]EndUserLink, error) {
	var out []EndUserLink
	if err := s.list(ctx, &out, `SELECT `+linkColumns+` FROM end_user_links WHERE tenant_id = ? AND `+cond+` ORDER BY id`, args...); err != nil {
		return nil, fmt.Errorf("read hybrid links: %w", err)
	}
	return out, nil
}

// EndUsersByID returns the tenant's end users ids (those that exist).
func (s *Store) EndUsersByID(ctx context.Context, tenantID int64, ids []int64) ([]EndUser, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	var out []EndUser
	cond, args := inList(s.dialect, "id", ids)
	if err := s.list(ctx, &out, `SELECT `+endUserColumns+` FROM end_users WHERE tenant_id = ? AND `+cond, append([]any{tenantID}, args...)...); err != nil {
		return nil, fmt.Errorf("read end users by id: %w", err)
	}
	return out, nil
}

// EndUsersByImmutableID returns the customer's end users of source with
// these immutable ids, by id.
func (s *Store) EndUsersByImmutableID(ctx context.Context, tenantID, customerID int64, source rules.Source, immutableIDs []string) ([]EndUser, error) {
	if len(immutableIDs) == 0 {
		return nil, nil
	}
	var out []EndUser
	cond, args := inList(s.dialect, "immutable_id", immutableIDs)
	if err := s.list(ctx, &out, `SELECT `+endUserColumns+` FROM end_users WHERE tenant_id = ? AND customer_id = ? AND source = ? AND `+cond+` ORDER BY id`,
		append([]any{tenantID, customerID, source}, args...)...); err != nil {
		return nil, fmt.Errorf("read %s end users by immutable id: %w", source, err)
	}
	return out, nil
}

// DeleteLinks deletes the tenant's links ids.
func (s *Store) DeleteLinks(ctx context.Context, tenantID int64, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	cond, args := inList(s.dialect, "id", ids)
	if _, err := s.exec(ctx, `DELETE FROM end_user_links WHERE tenant_id = ? AND `+cond, append([]any{tenantID}, args...)...); err != nil {
		return fmt.Errorf("drop hybrid links: %w", err)
	}
	return nil
}

// DeleteAzureEndUsers deletes the tenant's azure end users ids (folded into
// their AD end users).
func (s *Store) DeleteAzureEndUsers(ctx context.Context, tenantID int64, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	cond, args := inList(s.dialect, "id", ids)
	if _, err := s.exec(ctx, `DELETE FROM end_users WHERE tenant_id = ? AND source = 'azure' AND `+cond, append([]any{tenantID}, args...)...); err != nil {
		return fmt.Errorf("fold Entra end users into their AD end users: %w", err)
	}
	return nil
}

// RekeyAzureEndUsers turns azure end users into end users of the target's
// connection and source: externalIDs maps each end user id to its external
// id there. Every one must exist as an azure end user of the tenant.
func (s *Store) RekeyAzureEndUsers(ctx context.Context, target PageTarget, externalIDs map[int64]string) error {
	if len(externalIDs) == 0 {
		return nil
	}
	ids := make([]int64, 0, len(externalIDs))
	for id := range externalIDs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var b strings.Builder
	args := []any{target.ConnectionID, target.Source}
	b.WriteString(`UPDATE end_users SET connection_id = ?, source = ?, external_id = CASE id`)
	for _, id := range ids {
		b.WriteString(` WHEN ? THEN ?`)
		args = append(args, id, externalIDs[id])
	}
	cond, in := inList(s.dialect, "id", ids)
	b.WriteString(` END WHERE tenant_id = ? AND source = 'azure' AND ` + cond)
	args = append(append(args, target.TenantID), in...)
	res, err := s.exec(ctx, b.String(), args...)
	if err != nil {
		return fmt.Errorf("turn Entra end users into their AD users: %w", err)
	}
	if n, _ := res.RowsAffected(); int(n) != len(ids) {
		return fmt.Errorf("turn Entra end users into their AD users: %d of %d rows changed", n, len(ids))
	}
	return nil
}

// SetSelfServeStamps writes the tenant's end user's switch, first access and
// welcome stamp (an azure end user folded into it carried them over).
func (s *Store) SetSelfServeStamps(ctx context.Context, tenantID, id int64, st rules.SelfServeStamps) error {
	if _, err := s.exec(ctx, `UPDATE end_users SET self_serve = ?, first_access_at = ?, welcome_sent_at = ?, updated_at = ? WHERE tenant_id = ? AND id = ?`,
		st.SelfServe, st.FirstAccessAt, st.WelcomeSentAt, s.stamp(), tenantID, id); err != nil {
		return fmt.Errorf("carry the switch and stamps over to end user %d: %w", id, err)
	}
	return nil
}

// MarkLinksSeen stamps the tenant's links ids as seen by runID.
func (s *Store) MarkLinksSeen(ctx context.Context, tenantID, runID int64, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	cond, args := inList(s.dialect, "id", ids)
	if _, err := s.exec(ctx, `UPDATE end_user_links SET seen_run_id = ? WHERE tenant_id = ? AND `+cond, append([]any{runID, tenantID}, args...)...); err != nil {
		return fmt.Errorf("mark hybrid links seen: %w", err)
	}
	return nil
}

// UpsertLinks writes links keyed by connection and external id, in one
// statement: an existing link gets the end user, identity, values and seen
// run given.
func (s *Store) UpsertLinks(ctx context.Context, links []EndUserLink) error {
	if len(links) == 0 {
		return nil
	}
	const cols = 12
	var b strings.Builder
	args := make([]any, 0, cols*len(links))
	b.WriteString(`INSERT INTO end_user_links (tenant_id, end_user_id, connection_id, source, external_id, immutable_id, upn, email, mobile, seen_run_id, created_at, updated_at) VALUES `)
	row := "(" + placeholders(cols) + ")"
	for i, k := range links {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(row)
		args = append(args, k.TenantID, k.EndUserID, k.ConnectionID, k.Source, k.ExternalID, k.ImmutableID, k.UPN, k.Email, k.Mobile, k.SeenRunID, k.CreatedAt, k.UpdatedAt)
	}
	b.WriteString(` ON CONFLICT (connection_id, external_id) DO UPDATE SET end_user_id = excluded.end_user_id, immutable_id = excluded.immutable_id,
		upn = excluded.upn, email = excluded.email, mobile = excluded.mobile, seen_run_id = excluded.seen_run_id, updated_at = excluded.updated_at`)
	if _, err := s.exec(ctx, b.String(), args...); err != nil {
		return fmt.Errorf("write %d hybrid links: %w", len(links), err)
	}
	return nil
}

// DeleteLinksByExternalID deletes the target connection's links of these
// Entra object ids. It returns how many it deleted.
func (s *Store) DeleteLinksByExternalID(ctx context.Context, target PageTarget, externalIDs []string) (int, error) {
	total := 0
	for start := 0; start < len(externalIDs); start += batchSize {
		cond, args := inList(s.dialect, "external_id", externalIDs[start:min(start+batchSize, len(externalIDs))])
		res, err := s.exec(ctx, `DELETE FROM end_user_links WHERE tenant_id = ? AND connection_id = ? AND `+cond, append([]any{target.TenantID, target.ConnectionID}, args...)...)
		if err != nil {
			return total, fmt.Errorf("remove hybrid links: %w", err)
		}
		n, _ := res.RowsAffected()
		total += int(n)
	}
	return total, nil
}
