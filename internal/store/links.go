package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"selfserve/internal/rules"
)

// Hybrid identities (DESIGN.md "End users"): an Entra ID user whose
// onPremisesImmutableId equals base64(objectGUID) of an AD end user of the
// same customer is that person. There is one end user, owned by AD (source
// ad, the AD connection and external id), which stays authoritative for the
// password data (expiry, last set, lockout, enabled). The Entra side is an
// EndUserLink: its identity in its connection, the run that last saw it, and
// the contact values it last gave, which fill the end user's missing email
// and mobile with provenance "directory" (never over a directory, manual or
// end-user value; over a PSA value, as any directory value).
//
// Linking works whichever source syncs first:
//
//   - AD first: an Entra page finds the AD end user by immutable id and
//     records a link instead of creating a second end user.
//   - Entra first: the Entra user is an azure end user. When its AD
//     counterpart arrives, that row becomes the AD user in place (same id,
//     switch, first access, welcome stamp, typed values) and the Entra
//     identity becomes a link.
//   - Both exist (an Entra user that got its immutable id after both were
//     imported): the Entra page folds the azure end user into the AD one —
//     typed values and stamps carried over, the switch on if either was —
//     and deletes it.
//
// Removals: an Entra full run or delta deletion removes only links (the AD
// end user stays); an AD removal removes the end user as usual and leaves
// its links. Page transactions lock their customer's row (PostgreSQL;
// SQLite transactions are exclusive anyway), so an AD run and an Entra run of
// one customer cannot both miss each other's new users.

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

// hybrid reports whether pages of source take part in linking.
func hybrid(source rules.Source) bool {
	return source == rules.SourceAD || source == rules.SourceAzure
}

// lockCustomer serialises the page transactions of one customer on
// PostgreSQL until the transaction ends (FOR NO KEY UPDATE does not block
// inserts referencing the customer). SQLite transactions begin IMMEDIATE:
// already serialised.
func (s *Store) lockCustomer(ctx context.Context, tenantID, customerID int64) error {
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

// linkScope says what a page's linking may meet, so that pages of customers
// that are not hybrid skip the per-chunk lookups.
type linkScope struct {
	// Counterparts: the customer has end users of the other side (AD users
	// for an Entra page, Entra users for an AD page) with an immutable id.
	Counterparts bool `db:"counterparts"`
	// Links: links exist that the page may update (of this Entra
	// connection) or fill from (of this AD connection's end users).
	Links bool `db:"links"`
}

// linkScope probes, in the page's transaction after the customer lock, what
// the page's linking may meet.
func (s *Store) linkScope(ctx context.Context, target PageTarget) (linkScope, error) {
	var sc linkScope
	var q string
	var args []any
	if target.Source == rules.SourceAzure {
		q = `SELECT EXISTS (SELECT 1 FROM end_users WHERE customer_id = ? AND source = 'ad' AND immutable_id <> '') AS counterparts,
			EXISTS (SELECT 1 FROM end_user_links WHERE tenant_id = ? AND connection_id = ?) AS links`
		args = []any{target.CustomerID, target.TenantID, target.ConnectionID}
	} else {
		q = `SELECT EXISTS (SELECT 1 FROM end_users WHERE customer_id = ? AND source = 'azure' AND immutable_id <> '') AS counterparts,
			EXISTS (SELECT 1 FROM end_user_links k JOIN end_users u ON u.id = k.end_user_id WHERE k.tenant_id = ? AND u.connection_id = ?) AS links`
		args = []any{target.CustomerID, target.TenantID, target.ConnectionID}
	}
	if err := s.get(ctx, &sc, q, args...); err != nil {
		return sc, fmt.Errorf("probe hybrid identities: %w", err)
	}
	return sc, nil
}

// linkOutcome is what the linker did with an Entra record.
type linkOutcome int

const (
	linkNone      linkOutcome = iota // not linked: an ordinary azure end user
	linkNew                          // newly linked to an AD end user
	linkUpdated                      // linked already; the end user changed
	linkUnchanged                    // linked already; the end user did not change
)

// linker does the linking of one chunk of a page of an ad or azure
// connection. newLinker reads what the chunk needs; the page loop asks it
// about each record; flushBefore and flushAfter write around the page's
// end-user upsert.
type linker struct {
	s      *Store
	target PageTarget
	now    time.Time
	scope  linkScope

	// Entra pages.
	links map[string]EndUserLink // the chunk's existing links, by Entra external id
	ad    map[string]int64       // AD end users by immutable id
	users map[int64]*EndUser     // the AD end users above, as they will be written
	orig  map[int64]EndUser      // the same, as read

	// AD pages.
	azure map[string]EndUser      // unlinked azure end users by immutable id
	fill  map[int64][]EndUserLink // links of the chunk's AD end users
	rekey map[int64]string        // taken-over azure end users: id -> AD external id

	// What to write.
	stamp map[int64]bool         // end users whose switch or stamps a fold changed
	drop  []int64                // links to delete
	fold  []int64                // azure end users folded into AD ones, to delete
	seen  []int64                // links seen unchanged
	write map[string]EndUserLink // links to upsert, by connection/external id
	order []string               // write's keys in order
}

func (s *Store) newLinker(ctx context.Context, target PageTarget, scope linkScope, recs []UserRecord, existing map[string]EndUser, now time.Time) (*linker, error) {
	l := &linker{
		s: s, target: target, now: now, scope: scope,
		links: map[string]EndUserLink{}, ad: map[string]int64{}, users: map[int64]*EndUser{}, orig: map[int64]EndUser{},
		azure: map[string]EndUser{}, fill: map[int64][]EndUserLink{}, rekey: map[int64]string{}, stamp: map[int64]bool{},
		write: map[string]EndUserLink{},
	}
	if target.Source == rules.SourceAzure {
		return l, l.loadEntra(ctx, recs)
	}
	return l, l.loadAD(ctx, recs, existing)
}

// loadEntra reads the chunk's links, the AD end users they point to, and the
// AD end users of the customer whose immutable id an unlinked record claims.
func (l *linker) loadEntra(ctx context.Context, recs []UserRecord) error {
	t := l.target
	var links []EndUserLink
	if l.scope.Links {
		ext := make([]string, len(recs))
		for i, r := range recs {
			ext[i] = r.ExternalID
		}
		cond, args := inList(l.s.dialect, "external_id", ext)
		if err := l.s.list(ctx, &links, `SELECT `+linkColumns+` FROM end_user_links WHERE tenant_id = ? AND connection_id = ? AND `+cond,
			append([]any{t.TenantID, t.ConnectionID}, args...)...); err != nil {
			return fmt.Errorf("read hybrid links: %w", err)
		}
	}
	var ids []int64
	for _, k := range links {
		l.links[k.ExternalID] = k
		ids = append(ids, k.EndUserID)
	}
	var claims []string
	for _, r := range recs {
		if k, ok := l.links[r.ExternalID]; l.scope.Counterparts && r.ImmutableID != "" && (!ok || k.ImmutableID != r.ImmutableID) {
			claims = append(claims, r.ImmutableID)
		}
	}
	var rows []EndUser
	if len(ids) > 0 {
		cond, args := inList(l.s.dialect, "id", ids)
		if err := l.s.list(ctx, &rows, `SELECT `+endUserColumns+` FROM end_users WHERE tenant_id = ? AND `+cond, append([]any{t.TenantID}, args...)...); err != nil {
			return fmt.Errorf("read linked end users: %w", err)
		}
	}
	if len(claims) > 0 {
		var ad []EndUser
		cond, args := inList(l.s.dialect, "immutable_id", claims)
		if err := l.s.list(ctx, &ad, `SELECT `+endUserColumns+` FROM end_users WHERE tenant_id = ? AND customer_id = ? AND source = 'ad' AND `+cond+` ORDER BY id`,
			append([]any{t.TenantID, t.CustomerID}, args...)...); err != nil {
			return fmt.Errorf("read AD end users by immutable id: %w", err)
		}
		for _, u := range ad {
			if _, dup := l.ad[u.ImmutableID]; !dup {
				l.ad[u.ImmutableID] = u.ID
			}
		}
		rows = append(rows, ad...)
	}
	for _, u := range rows {
		if _, ok := l.orig[u.ID]; !ok {
			l.orig[u.ID] = u
			l.users[u.ID] = &u
		}
	}
	return nil
}

// loadAD reads the unlinked azure end users that new AD users of the chunk
// take over, and the links of existing AD users that may need their contact
// fields filled.
func (l *linker) loadAD(ctx context.Context, recs []UserRecord, existing map[string]EndUser) error {
	t := l.target
	var claims []string
	var ids []int64
	for _, r := range recs {
		old, ok := existing[r.ExternalID]
		switch {
		case !ok && r.ImmutableID != "" && l.scope.Counterparts:
			claims = append(claims, r.ImmutableID)
		case ok && l.scope.Links && (r.Email == "" || r.EmailInvalid || r.Mobile == "" || r.MobileInvalid):
			ids = append(ids, old.ID)
		}
	}
	if len(claims) > 0 {
		var rows []EndUser
		cond, args := inList(l.s.dialect, "immutable_id", claims)
		if err := l.s.list(ctx, &rows, `SELECT `+endUserColumns+` FROM end_users WHERE tenant_id = ? AND customer_id = ? AND source = 'azure' AND `+cond+` ORDER BY id`,
			append([]any{t.TenantID, t.CustomerID}, args...)...); err != nil {
			return fmt.Errorf("read Entra end users by immutable id: %w", err)
		}
		for _, u := range rows {
			if _, dup := l.azure[u.ImmutableID]; !dup {
				l.azure[u.ImmutableID] = u
			}
		}
	}
	if len(ids) > 0 {
		var links []EndUserLink
		cond, args := inList(l.s.dialect, "end_user_id", ids)
		if err := l.s.list(ctx, &links, `SELECT `+linkColumns+` FROM end_user_links WHERE tenant_id = ? AND `+cond+` ORDER BY id`,
			append([]any{t.TenantID}, args...)...); err != nil {
			return fmt.Errorf("read hybrid links: %w", err)
		}
		for _, k := range links {
			l.fill[k.EndUserID] = append(l.fill[k.EndUserID], k)
		}
	}
	return nil
}

// linkEntra handles an Entra record that is, or becomes, the link of an AD
// end user. It returns linkNone for a record that stays an ordinary azure
// end user.
func (l *linker) linkEntra(rec UserRecord, existing map[string]EndUser) linkOutcome {
	if l.target.Source != rules.SourceAzure {
		return linkNone
	}
	if link, ok := l.links[rec.ExternalID]; ok {
		if u := l.users[link.EndUserID]; u != nil && link.ImmutableID == rec.ImmutableID {
			next := l.entraLink(link, rec)
			changed := l.applyEntra(u, link, next)
			if sameLink(link, next) {
				l.seen = append(l.seen, link.ID)
			} else {
				l.put(next)
			}
			// The counts are about end users: a link that only records
			// new Entra values is unchanged.
			if changed {
				return linkUpdated
			}
			return linkUnchanged
		}
		// The Entra user no longer claims that AD user (immutable id
		// changed or cleared): the link goes, and the record is linked
		// afresh or becomes an ordinary azure end user.
		l.drop = append(l.drop, link.ID)
	}
	id, ok := l.ad[rec.ImmutableID]
	if rec.ImmutableID == "" || !ok {
		return linkNone
	}
	u := l.users[id]
	next := l.entraLink(EndUserLink{EndUserID: id}, rec)
	l.applyEntra(u, EndUserLink{}, next)
	if z, ok := existing[rec.ExternalID]; ok {
		l.foldInto(u, z)
	}
	l.put(next)
	return linkNew
}

// entraLink is prev updated with what rec says.
func (l *linker) entraLink(prev EndUserLink, rec UserRecord) EndUserLink {
	next := prev
	next.TenantID, next.ConnectionID, next.Source = l.target.TenantID, l.target.ConnectionID, rules.SourceAzure
	next.ExternalID, next.ImmutableID, next.UPN = rec.ExternalID, rec.ImmutableID, rec.UPN
	if !rec.EmailInvalid {
		next.Email = rec.Email
	}
	if !rec.MobileInvalid {
		next.Mobile = rec.Mobile
	}
	runID := l.target.RunID
	next.SeenRunID = &runID
	if next.CreatedAt.IsZero() {
		next.CreatedAt = l.now
	}
	next.UpdatedAt = l.now
	return next
}

func sameLink(a, b EndUserLink) bool {
	return a.EndUserID == b.EndUserID && a.ImmutableID == b.ImmutableID && a.UPN == b.UPN && a.Email == b.Email && a.Mobile == b.Mobile
}

// applyEntra fills the linked end user's contact fields from the link's new
// values (rules.MergeEntraContact); prev holds what Entra gave before. It
// reports a change.
func (l *linker) applyEntra(u *EndUser, prev, next EndUserLink) bool {
	email, emailFrom := rules.MergeEntraContact(u.Email, u.EmailSource, prev.Email, next.Email)
	mobile, mobileFrom := rules.MergeEntraContact(u.Mobile, u.MobileSource, prev.Mobile, next.Mobile)
	if email == u.Email && emailFrom == u.EmailSource && mobile == u.Mobile && mobileFrom == u.MobileSource {
		return false
	}
	u.Email, u.EmailSource, u.Mobile, u.MobileSource = email, emailFrom, mobile, mobileFrom
	u.UpdatedAt = l.now
	return true
}

// foldInto merges the azure end user z (the same person) into the AD end user
// u (rules.FoldContact, rules.FoldStamps) and schedules z's deletion.
func (l *linker) foldInto(u *EndUser, z EndUser) {
	u.Email, u.EmailSource = rules.FoldContact(u.Email, u.EmailSource, z.Email, z.EmailSource)
	u.Mobile, u.MobileSource = rules.FoldContact(u.Mobile, u.MobileSource, z.Mobile, z.MobileSource)
	st := rules.FoldStamps(rules.SelfServeStamps{SelfServe: u.SelfServe, FirstAccessAt: u.FirstAccessAt, WelcomeSentAt: u.WelcomeSentAt},
		rules.SelfServeStamps{SelfServe: z.SelfServe, FirstAccessAt: z.FirstAccessAt, WelcomeSentAt: z.WelcomeSentAt})
	u.SelfServe, u.FirstAccessAt, u.WelcomeSentAt = st.SelfServe, st.FirstAccessAt, st.WelcomeSentAt
	u.UpdatedAt = l.now
	l.stamp[u.ID] = true
	l.fold = append(l.fold, z.ID)
}

// takeover returns the unlinked azure end user that the new AD record rec
// is, re-keyed as the AD user, and records its Entra identity as a link.
func (l *linker) takeover(rec UserRecord) (EndUser, bool) {
	if l.target.Source != rules.SourceAD || rec.ImmutableID == "" {
		return EndUser{}, false
	}
	z, ok := l.azure[rec.ImmutableID]
	if !ok {
		return EndUser{}, false
	}
	delete(l.azure, rec.ImmutableID)
	l.rekey[z.ID] = rec.ExternalID
	if z.ConnectionID != nil && z.RemovedAt == nil {
		link := EndUserLink{
			TenantID: l.target.TenantID, EndUserID: z.ID, ConnectionID: *z.ConnectionID, Source: rules.SourceAzure,
			ExternalID: z.ExternalID, ImmutableID: z.ImmutableID, UPN: z.UPN,
			Email: rules.LinkContact(z.Email, z.EmailSource), Mobile: rules.LinkContact(z.Mobile, z.MobileSource),
			// The Entra run that last saw the user still counts it seen.
			SeenRunID: z.SeenRunID, CreatedAt: l.now, UpdatedAt: l.now,
		}
		l.put(link)
		l.fill[z.ID] = append(l.fill[z.ID], link)
	}
	connID := l.target.ConnectionID
	z.ConnectionID, z.Source, z.ExternalID = &connID, l.target.Source, rec.ExternalID
	return z, true
}

// linked returns what the links of an AD end user last gave, oldest first.
func (l *linker) linked(id int64) (emails, mobiles []string) {
	for _, k := range l.fill[id] {
		emails, mobiles = append(emails, k.Email), append(mobiles, k.Mobile)
	}
	return emails, mobiles
}

func (l *linker) put(k EndUserLink) {
	key := fmt.Sprintf("%d/%s", k.ConnectionID, k.ExternalID)
	if _, ok := l.write[key]; !ok {
		l.order = append(l.order, key)
	}
	l.write[key] = k
}

// userWrites returns the linked AD end users an Entra chunk changed, with
// their seen run kept (an Entra run does not see AD users).
func (l *linker) userWrites() []EndUser {
	var out []EndUser
	for id, u := range l.users {
		if !sameEndUser(l.orig[id], *u) {
			out = append(out, *u)
		}
	}
	slices.SortFunc(out, func(a, b EndUser) int { return int(a.ID - b.ID) })
	return out
}

// flushBefore runs before the chunk's end users are written: dropped links
// and folded azure end users go, taken-over azure end users get their AD
// key.
func (l *linker) flushBefore(ctx context.Context) error {
	t := l.target
	if len(l.drop) > 0 {
		cond, args := inList(l.s.dialect, "id", l.drop)
		if _, err := l.s.exec(ctx, `DELETE FROM end_user_links WHERE tenant_id = ? AND `+cond, append([]any{t.TenantID}, args...)...); err != nil {
			return fmt.Errorf("drop hybrid links: %w", err)
		}
	}
	if len(l.fold) > 0 {
		cond, args := inList(l.s.dialect, "id", l.fold)
		if _, err := l.s.exec(ctx, `DELETE FROM end_users WHERE tenant_id = ? AND source = 'azure' AND `+cond, append([]any{t.TenantID}, args...)...); err != nil {
			return fmt.Errorf("fold Entra end users into their AD end users: %w", err)
		}
	}
	if len(l.rekey) > 0 {
		ids := make([]int64, 0, len(l.rekey))
		for id := range l.rekey {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		var b strings.Builder
		args := []any{t.ConnectionID, t.Source}
		b.WriteString(`UPDATE end_users SET connection_id = ?, source = ?, external_id = CASE id`)
		for _, id := range ids {
			b.WriteString(` WHEN ? THEN ?`)
			args = append(args, id, l.rekey[id])
		}
		cond, in := inList(l.s.dialect, "id", ids)
		b.WriteString(` END WHERE tenant_id = ? AND source = 'azure' AND ` + cond)
		args = append(append(args, t.TenantID), in...)
		res, err := l.s.exec(ctx, b.String(), args...)
		if err != nil {
			return fmt.Errorf("turn Entra end users into their AD users: %w", err)
		}
		if n, _ := res.RowsAffected(); int(n) != len(ids) {
			return fmt.Errorf("turn Entra end users into their AD users: %d of %d rows changed", n, len(ids))
		}
	}
	return nil
}

// flushAfter runs after the chunk's end users are written: links are
// upserted or marked seen, and folds write the switch and stamps.
func (l *linker) flushAfter(ctx context.Context) error {
	t := l.target
	for id := range l.stamp {
		u := l.users[id]
		if _, err := l.s.exec(ctx, `UPDATE end_users SET self_serve = ?, first_access_at = ?, welcome_sent_at = ?, updated_at = ? WHERE tenant_id = ? AND id = ?`,
			u.SelfServe, u.FirstAccessAt, u.WelcomeSentAt, l.now, t.TenantID, id); err != nil {
			return fmt.Errorf("carry the switch and stamps over to end user %d: %w", id, err)
		}
	}
	if len(l.seen) > 0 {
		cond, args := inList(l.s.dialect, "id", l.seen)
		if _, err := l.s.exec(ctx, `UPDATE end_user_links SET seen_run_id = ? WHERE tenant_id = ? AND `+cond, append([]any{t.RunID, t.TenantID}, args...)...); err != nil {
			return fmt.Errorf("mark hybrid links seen: %w", err)
		}
	}
	if len(l.order) == 0 {
		return nil
	}
	const cols = 12
	var b strings.Builder
	args := make([]any, 0, cols*len(l.order))
	b.WriteString(`INSERT INTO end_user_links (tenant_id, end_user_id, connection_id, source, external_id, immutable_id, upn, email, mobile, seen_run_id, created_at, updated_at) VALUES `)
	row := "(" + placeholders(cols) + ")"
	for i, key := range l.order {
		k := l.write[key]
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(row)
		args = append(args, k.TenantID, k.EndUserID, k.ConnectionID, k.Source, k.ExternalID, k.ImmutableID, k.UPN, k.Email, k.Mobile, k.SeenRunID, k.CreatedAt, k.UpdatedAt)
	}
	b.WriteString(` ON CONFLICT (connection_id, external_id) DO UPDATE SET end_user_id = excluded.end_user_id, immutable_id = excluded.immutable_id,
		upn = excluded.upn, email = excluded.email, mobile = excluded.mobile, seen_run_id = excluded.seen_run_id, updated_at = excluded.updated_at`)
	if _, err := l.s.exec(ctx, b.String(), args...); err != nil {
		return fmt.Errorf("write %d hybrid links: %w", len(l.order), err)
	}
	return nil
}

// removeLinks deletes the connection's links of Entra users a delta run
// reports deleted.
func (s *Store) removeLinks(ctx context.Context, target PageTarget, externalIDs []string) (int, error) {
	if len(externalIDs) == 0 || target.Source != rules.SourceAzure {
		return 0, nil
	}
	cond, args := inList(s.dialect, "external_id", externalIDs)
	res, err := s.exec(ctx, `DELETE FROM end_user_links WHERE tenant_id = ? AND connection_id = ? AND `+cond, append([]any{target.TenantID, target.ConnectionID}, args...)...)
	if err != nil {
		return 0, fmt.Errorf("remove hybrid links: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}
