package importer

import (
	"context"
	"fmt"
	"slices"
	"time"

	"selfserve/internal/rules"
	"selfserve/internal/store"
)

// Hybrid identities (DESIGN.md "End users"): an Entra ID user whose
// onPremisesImmutableId equals base64(objectGUID) of an AD end user of the
// same customer is that person. There is one end user, owned by AD (source
// ad, the AD connection and external id), which stays authoritative for the
// password data (expiry, last set, lockout, enabled). The Entra side is a
// store.EndUserLink: its identity in its connection, the run that last saw
// it, and the contact values it last gave, which fill the end user's email
// and mobile as package rules decides (rules.MergeEntraContact,
// rules.MergeDirectoryContact).
//
// Linking works whichever source syncs first:
//
//   - AD first: an Entra page finds the AD end user by immutable id and
//     records a link instead of creating a second end user.
//   - Entra first: the Entra user is an azure end user. When its AD
//     counterpart arrives, that row becomes the AD user in place (same id,
//     switch, first access, welcome stamp, typed values) and the Entra
//     identity becomes a link (rules.LinkContact).
//   - Both exist (an Entra user that got its immutable id after both were
//     imported): the Entra page folds the azure end user into the AD one
//     (rules.FoldContact, rules.FoldStamps) and deletes it.
//
// Removals: an Entra full run or delta deletion removes only links (the AD
// end user stays); an AD removal removes the end user as usual and leaves
// its links. Page transactions lock their customer's row (PostgreSQL;
// SQLite transactions are exclusive anyway), so an AD run and an Entra run of
// one customer cannot both miss each other's new users.

// hybrid reports whether pages of source take part in linking.
func hybrid(source rules.Source) bool {
	return source == rules.SourceAD || source == rules.SourceAzure
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
// end-user upsert, through the page's transaction.
type linker struct {
	tx     *store.Store
	target store.PageTarget
	now    time.Time
	scope  store.LinkScope

	// Entra pages.
	links map[string]store.EndUserLink // the chunk's existing links, by Entra external id
	ad    map[string]int64             // AD end users by immutable id
	users map[int64]*store.EndUser     // the AD end users above, as they will be written
	orig  map[int64]store.EndUser      // the same, as read

	// AD pages.
	azure map[string]store.EndUser      // unlinked azure end users by immutable id
	fill  map[int64][]store.EndUserLink // links of the chunk's AD end users
	rekey map[int64]string              // taken-over azure end users: id -> AD external id

	// What to write.
	stamp map[int64]bool               // end users whose switch or stamps a fold changed
	drop  []int64                      // links to delete
	fold  []int64                      // azure end users folded into AD ones, to delete
	seen  []int64                      // links seen unchanged
	write map[string]store.EndUserLink // links to upsert, by connection/external id
	order []string                     // write's keys in order
}

func newLinker(ctx context.Context, tx *store.Store, target store.PageTarget, scope store.LinkScope, recs []store.UserRecord, existing map[string]store.EndUser, now time.Time) (*linker, error) {
	l := &linker{
		tx: tx, target: target, now: now, scope: scope,
		links: map[string]store.EndUserLink{}, ad: map[string]int64{}, users: map[int64]*store.EndUser{}, orig: map[int64]store.EndUser{},
		azure: map[string]store.EndUser{}, fill: map[int64][]store.EndUserLink{}, rekey: map[int64]string{}, stamp: map[int64]bool{},
		write: map[string]store.EndUserLink{},
	}
	if target.Source == rules.SourceAzure {
		return l, l.loadEntra(ctx, recs)
	}
	return l, l.loadAD(ctx, recs, existing)
}

// loadEntra reads the chunk's links, the AD end users they point to, and the
// AD end users of the customer whose immutable id an unlinked record claims.
func (l *linker) loadEntra(ctx context.Context, recs []store.UserRecord) error {
	t := l.target
	var links []store.EndUserLink
	if l.scope.Links {
		ext := make([]string, len(recs))
		for i, r := range recs {
			ext[i] = r.ExternalID
		}
		var err error
		if links, err = l.tx.LinksByExternalID(ctx, t.TenantID, t.ConnectionID, ext); err != nil {
			return err
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
	rows, err := l.tx.EndUsersByID(ctx, t.TenantID, ids)
	if err != nil {
		return err
	}
	ad, err := l.tx.EndUsersByImmutableID(ctx, t.TenantID, t.CustomerID, rules.SourceAD, claims)
	if err != nil {
		return err
	}
	for _, u := range ad {
		if _, dup := l.ad[u.ImmutableID]; !dup {
			l.ad[u.ImmutableID] = u.ID
		}
	}
	for _, u := range append(rows, ad...) {
		if _, ok := l.orig[u.ID]; !ok {
			l.orig[u.ID] = u
			l.users[u.ID] = &u
		}
	}
	return nil
}

// loadAD reads the unlinked azure end users that new AD users of the chunk
// take over, and the links of existing AD users that may fill their contact
// fields.
func (l *linker) loadAD(ctx context.Context, recs []store.UserRecord, existing map[string]store.EndUser) error {
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
	azure, err := l.tx.EndUsersByImmutableID(ctx, t.TenantID, t.CustomerID, rules.SourceAzure, claims)
	if err != nil {
		return err
	}
	for _, u := range azure {
		if _, dup := l.azure[u.ImmutableID]; !dup {
			l.azure[u.ImmutableID] = u
		}
	}
	links, err := l.tx.LinksOfEndUsers(ctx, t.TenantID, ids)
	if err != nil {
		return err
	}
	for _, k := range links {
		l.fill[k.EndUserID] = append(l.fill[k.EndUserID], k)
	}
	return nil
}

// linkEntra handles an Entra record that is, or becomes, the link of an AD
// end user. It returns linkNone for a record that stays an ordinary azure
// end user.
func (l *linker) linkEntra(rec store.UserRecord, existing map[string]store.EndUser) linkOutcome {
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
	next := l.entraLink(store.EndUserLink{EndUserID: id}, rec)
	l.applyEntra(u, store.EndUserLink{}, next)
	if z, ok := existing[rec.ExternalID]; ok {
		l.foldInto(u, z)
	}
	l.put(next)
	return linkNew
}

// entraLink is prev updated with what rec says.
func (l *linker) entraLink(prev store.EndUserLink, rec store.UserRecord) store.EndUserLink {
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

func sameLink(a, b store.EndUserLink) bool {
	return a.EndUserID == b.EndUserID && a.ImmutableID == b.ImmutableID && a.UPN == b.UPN && a.Email == b.Email && a.Mobile == b.Mobile
}

// applyEntra fills the linked end user's contact fields from the link's new
// values (rules.MergeEntraContact); prev holds what Entra gave before. It
// reports a change.
func (l *linker) applyEntra(u *store.EndUser, prev, next store.EndUserLink) bool {
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
func (l *linker) foldInto(u *store.EndUser, z store.EndUser) {
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
func (l *linker) takeover(rec store.UserRecord) (store.EndUser, bool) {
	if l.target.Source != rules.SourceAD || rec.ImmutableID == "" {
		return store.EndUser{}, false
	}
	z, ok := l.azure[rec.ImmutableID]
	if !ok {
		return store.EndUser{}, false
	}
	delete(l.azure, rec.ImmutableID)
	l.rekey[z.ID] = rec.ExternalID
	if z.ConnectionID != nil && z.RemovedAt == nil {
		link := store.EndUserLink{
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

func (l *linker) put(k store.EndUserLink) {
	key := fmt.Sprintf("%d/%s", k.ConnectionID, k.ExternalID)
	if _, ok := l.write[key]; !ok {
		l.order = append(l.order, key)
	}
	l.write[key] = k
}

// userWrites returns the linked AD end users an Entra chunk changed, with
// their seen run kept (an Entra run does not see AD users).
func (l *linker) userWrites() []store.EndUser {
	var out []store.EndUser
	for id, u := range l.users {
		if !sameEndUser(l.orig[id], *u) {
			out = append(out, *u)
		}
	}
	slices.SortFunc(out, func(a, b store.EndUser) int { return int(a.ID - b.ID) })
	return out
}

// flushBefore runs before the chunk's end users are written: dropped links
// and folded azure end users go, taken-over azure end users get their AD
// key.
func (l *linker) flushBefore(ctx context.Context) error {
	t := l.target
	if err := l.tx.DeleteLinks(ctx, t.TenantID, l.drop); err != nil {
		return err
	}
	if err := l.tx.DeleteAzureEndUsers(ctx, t.TenantID, l.fold); err != nil {
		return err
	}
	return l.tx.RekeyAzureEndUsers(ctx, t, l.rekey)
}

// flushAfter runs after the chunk's end users are written: folds write the
// switch and stamps, and links are upserted or marked seen.
func (l *linker) flushAfter(ctx context.Context) error {
	t := l.target
	ids := make([]int64, 0, len(l.stamp))
	for id := range l.stamp {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		u := l.users[id]
		if err := l.tx.SetSelfServeStamps(ctx, t.TenantID, id, rules.SelfServeStamps{SelfServe: u.SelfServe, FirstAccessAt: u.FirstAccessAt, WelcomeSentAt: u.WelcomeSentAt}); err != nil {
			return err
		}
	}
	if err := l.tx.MarkLinksSeen(ctx, t.TenantID, t.RunID, l.seen); err != nil {
		return err
	}
	links := make([]store.EndUserLink, len(l.order))
	for i, key := range l.order {
		links[i] = l.write[key]
	}
	return l.tx.UpsertLinks(ctx, links)
}
