package storetest

import (
	"context"
	"fmt"
	"selfserve/internal/importer"
	"sync"
	"testing"
	"time"

	"selfserve/connectors"
	"selfserve/internal/rules"
	"selfserve/internal/store"
)

// hybrid is a tenant whose customer has an AD and an Entra ID connection,
// plus a second customer with an Entra connection of its own.
type hybrid struct {
	tenant      store.Tenant
	customer    store.Customer
	ad, entra   store.Connection
	other       store.Customer
	otherEntra  store.Connection
	adRun       int64
	entraRun    int64
	adExpiry    time.Time
	adLastSet   time.Time
	entraExpiry time.Time
}

func newHybrid(t *testing.T, s *store.Store, name string) *hybrid {
	t.Helper()
	ctx := context.Background()
	h := &hybrid{
		adRun: 100, entraRun: 200,
		adLastSet:   time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC),
		adExpiry:    time.Date(2026, 12, 13, 8, 0, 0, 0, time.UTC),
		entraExpiry: time.Date(2027, 1, 30, 8, 0, 0, 0, time.UTC),
	}
	var err error
	h.tenant, _, err = s.UpsertTenant(ctx, store.Tenant{Name: name, Subscription: rules.SubscriptionBundle, SelfServe: true, TimeZone: "UTC", SendHour: 9, ReminderDays: 10})
	must(t, err)
	conn := func(cu store.Customer, name string, kind connectors.Kind) store.Connection {
		c, _, err := s.UpsertConnection(ctx, store.Connection{TenantID: h.tenant.ID, CustomerID: &cu.ID, Name: name, Kind: kind, EnableSelfServe: true}, false)
		must(t, err)
		return c
	}
	h.customer, _, err = s.UpsertCustomer(ctx, store.Customer{TenantID: h.tenant.ID, Name: "Contoso", DefaultRegion: "GB"})
	must(t, err)
	h.other, _, err = s.UpsertCustomer(ctx, store.Customer{TenantID: h.tenant.ID, Name: "Fabrikam", DefaultRegion: "GB"})
	must(t, err)
	h.ad = conn(h.customer, "contoso-ad", connectors.KindAD)
	h.entra = conn(h.customer, "contoso-entra", connectors.KindAzure)
	h.otherEntra = conn(h.other, "fabrikam-entra", connectors.KindAzure)
	return h
}

// adUser is an AD user with a password that expires; immutable is its
// base64(objectGUID).
func (h *hybrid) adUser(name, immutable, email, mobile string) store.UserRecord {
	return store.UserRecord{User: connectors.User{
		ExternalID: "guid-" + name, Username: name, UPN: name + "@contoso.example", Email: email, Mobile: mobile,
		Enabled: true, PasswordLastSet: h.adLastSet, PasswordExpiresAt: h.adExpiry, ImmutableID: immutable,
	}}
}

// entraUser is an Entra user: synced from AD when immutable is set (no
// expiry, as the connector reports them), cloud-only otherwise (an expiry).
func (h *hybrid) entraUser(name, immutable, email, mobile string) store.UserRecord {
	u := connectors.User{
		ExternalID: "entra-" + name, Username: name, UPN: name + "@contoso.example", Email: email, Mobile: mobile,
		Enabled: true, PasswordLastSet: h.adLastSet.Add(time.Hour), ImmutableID: immutable, SyncedFromOnPremises: immutable != "",
	}
	if immutable == "" {
		u.PasswordExpiresAt = h.entraExpiry
	}
	return store.UserRecord{User: u}
}

func (h *hybrid) adPage(t *testing.T, s *store.Store, recs ...store.UserRecord) store.PageResult {
	t.Helper()
	res, err := importer.ApplyPage(context.Background(), s, h.target(h.ad, h.adRun), recs, nil)
	must(t, err)
	return res
}

func (h *hybrid) entraPage(t *testing.T, s *store.Store, recs ...store.UserRecord) store.PageResult {
	t.Helper()
	res, err := importer.ApplyPage(context.Background(), s, h.target(h.entra, h.entraRun), recs, nil)
	must(t, err)
	return res
}

func (h *hybrid) target(c store.Connection, run int64) store.PageTarget {
	src := rules.SourceAD
	if c.Kind == connectors.KindAzure {
		src = rules.SourceAzure
	}
	return store.PageTarget{TenantID: h.tenant.ID, CustomerID: *c.CustomerID, ConnectionID: c.ID, RunID: run, Source: src, EnableSelfServe: c.EnableSelfServe}
}

// users returns the tenant's end users (removed ones too) by username.
func (h *hybrid) users(t *testing.T, s *store.Store) map[string]store.EndUser {
	t.Helper()
	us, err := s.EndUsers(context.Background(), h.tenant.ID, store.EndUserFilter{IncludeRemoved: true})
	must(t, err)
	m := map[string]store.EndUser{}
	for _, u := range us {
		if _, dup := m[u.Username]; dup {
			t.Fatalf("two end users named %s: a hybrid identity was duplicated", u.Username)
		}
		m[u.Username] = u
	}
	return m
}

func (h *hybrid) links(t *testing.T, s *store.Store, c store.Connection) map[string]store.EndUserLink {
	t.Helper()
	ls, err := s.ConnectionLinks(context.Background(), h.tenant.ID, c.ID)
	must(t, err)
	m := map[string]store.EndUserLink{}
	for _, l := range ls {
		m[l.ExternalID] = l
	}
	return m
}

func checkCounts(t *testing.T, what string, got store.PageResult, created, updated, unchanged, linked int) {
	t.Helper()
	if got.Created != created || got.Updated != updated || got.Unchanged != unchanged || got.Linked != linked {
		t.Fatalf("%s: created %d updated %d unchanged %d linked %d, want %d %d %d %d", what,
			got.Created, got.Updated, got.Unchanged, got.Linked, created, updated, unchanged, linked)
	}
}

// testLinkADFirst: AD syncs first; the Entra page links instead of
// duplicating, fills only missing contact fields, and is unchanged the
// second time; cloud-only and unmatched Entra users stay azure end users.
func testLinkADFirst(t *testing.T, s *store.Store) {
	ctx := context.Background()
	h := newHybrid(t, s, "link-ad-first")
	res := h.adPage(t, s,
		h.adUser("alice", "IMM-alice", "alice@contoso.example", ""),
		h.adUser("bob", "IMM-bob", "", "+447700900002"),
		h.adUser("carol", "IMM-carol", "carol@contoso.example", "+447700900003"),
		h.adUser("dave", "IMM-dave", "", ""))
	checkCounts(t, "AD page", res, 4, 0, 0, 0)
	before := h.users(t, s)
	_, _, err := s.SetContact(ctx, h.tenant.ID, before["dave"].ID, nil, ptr("+447700900444"), rules.ProvenanceManual)
	must(t, err)
	_, _, err = s.SetContact(ctx, h.tenant.ID, before["dave"].ID, ptr("dave@psa.example"), nil, rules.ProvenancePSA)
	must(t, err)

	entra := []store.UserRecord{
		h.entraUser("alice", "IMM-alice", "alice@cloud.example", "+447700900001"), // fills the mobile only
		h.entraUser("bob", "IMM-bob", "bob@contoso.example", "+447700900999"),     // fills the email only
		h.entraUser("carol", "IMM-carol", "carol@cloud.example", "+447700900998"), // AD has both: nothing
		h.entraUser("dave", "IMM-dave", "dave@contoso.example", "+447700900997"),  // over PSA yes, over manual no
		h.entraUser("erin", "", "erin@contoso.example", "+447700900005"),          // cloud-only
		h.entraUser("frank", "IMM-frank", "frank@contoso.example", ""),            // synced, but no such AD user
	}
	res = h.entraPage(t, s, entra...)
	checkCounts(t, "first Entra page", res, 2, 0, 0, 4)
	us := h.users(t, s)
	if len(us) != 6 {
		t.Fatalf("%d end users after linking, want 6 (4 AD, 2 Entra-only)", len(us))
	}
	for _, name := range []string{"alice", "bob", "carol", "dave"} {
		u := us[name]
		if u.ID != before[name].ID || u.Source != rules.SourceAD || *u.ConnectionID != h.ad.ID || u.ExternalID != "guid-"+name {
			t.Errorf("%s is no longer the AD end user: %+v", name, u)
		}
		if u.PasswordExpiresAt == nil || !u.PasswordExpiresAt.Equal(h.adExpiry) || !u.PasswordLastSet.Equal(h.adLastSet) {
			t.Errorf("%s: AD's password data changed by Entra: last set %v, expires %v", name, u.PasswordLastSet, u.PasswordExpiresAt)
		}
	}
	wantContact := map[string][4]string{
		"alice": {"alice@contoso.example", "directory", "+447700900001", "directory"},
		"bob":   {"bob@contoso.example", "directory", "+447700900002", "directory"},
		"carol": {"carol@contoso.example", "directory", "+447700900003", "directory"},
		"dave":  {"dave@contoso.example", "directory", "+447700900444", "manual"},
	}
	for name, want := range wantContact {
		u := us[name]
		if got := [4]string{u.Email, string(u.EmailSource), u.Mobile, string(u.MobileSource)}; got != want {
			t.Errorf("%s contact %v, want %v", name, got, want)
		}
	}
	if e := us["erin"]; e.Source != rules.SourceAzure || e.PasswordExpiresAt == nil || !e.PasswordExpiresAt.Equal(h.entraExpiry) {
		t.Errorf("cloud-only erin: %+v, want an azure end user with the connector's expiry", e)
	}
	if f := us["frank"]; f.Source != rules.SourceAzure || f.PasswordExpiresAt != nil || f.PasswordNeverExpires {
		t.Errorf("unmatched synced frank: %+v, want an azure end user with no expiry", f)
	}
	links := h.links(t, s, h.entra)
	if len(links) != 4 || links["entra-alice"].EndUserID != us["alice"].ID || links["entra-alice"].Mobile != "+447700900001" {
		t.Fatalf("links %+v, want alice, bob, carol and dave linked", links)
	}
	if l, err := s.EndUserLinks(ctx, h.tenant.ID, us["bob"].ID); err != nil || len(l) != 1 || l[0].ExternalID != "entra-bob" {
		t.Fatalf("bob's links: %+v, %v", l, err)
	}

	// The same pages again in the next runs, in either order: nothing
	// changes.
	h.adRun, h.entraRun = h.adRun+10, h.entraRun+10
	checkCounts(t, "second Entra page", h.entraPage(t, s, entra...), 0, 0, 6, 0)
	checkCounts(t, "second AD page", h.adPage(t, s,
		h.adUser("alice", "IMM-alice", "alice@contoso.example", ""),
		h.adUser("bob", "IMM-bob", "", "+447700900002"),
		h.adUser("carol", "IMM-carol", "carol@contoso.example", "+447700900003"),
		h.adUser("dave", "IMM-dave", "", "")), 0, 0, 4, 0)
	if a := h.users(t, s)["alice"]; a.Mobile != "+447700900001" {
		t.Fatalf("an AD sync without a mobile cleared the mobile Entra filled: %q", a.Mobile)
	}

	// Entra changes its own value: it follows. Entra clears it: it stays.
	// AD gets a mobile: AD's wins.
	entra[0] = h.entraUser("alice", "IMM-alice", "alice@cloud.example", "+447700900011")
	checkCounts(t, "Entra changes alice's mobile", h.entraPage(t, s, entra[0]), 0, 1, 0, 0)
	if a := h.users(t, s)["alice"]; a.Mobile != "+447700900011" {
		t.Errorf("Entra's changed mobile not followed: %q", a.Mobile)
	}
	entra[0] = h.entraUser("alice", "IMM-alice", "alice@cloud.example", "")
	h.entraPage(t, s, entra[0])
	if a := h.users(t, s)["alice"]; a.Mobile != "+447700900011" {
		t.Errorf("Entra clearing its mobile cleared the end user's: %q", a.Mobile)
	}
	h.adPage(t, s, h.adUser("alice", "IMM-alice", "alice@contoso.example", "+447700900021"))
	h.entraPage(t, s, h.entraUser("alice", "IMM-alice", "alice@cloud.example", "+447700900031"))
	if a := h.users(t, s)["alice"]; a.Mobile != "+447700900021" {
		t.Errorf("Entra replaced AD's mobile: %q", a.Mobile)
	}

	// Same immutable id in another customer: not the same person.
	res, err = importer.ApplyPage(ctx, s, h.target(h.otherEntra, 300), []store.UserRecord{h.entraUser("alice", "IMM-alice", "", "")}, nil)
	must(t, err)
	checkCounts(t, "other customer's Entra page", res, 1, 0, 0, 0)
}

// testLinkEntraFirst: Entra syncs first; when AD arrives the Entra end user
// becomes the AD one in place, keeping what humans did to it.
func testLinkEntraFirst(t *testing.T, s *store.Store) {
	ctx := context.Background()
	h := newHybrid(t, s, "link-entra-first")
	entra := []store.UserRecord{
		h.entraUser("alice", "IMM-alice", "alice@cloud.example", "+447700900001"),
		h.entraUser("bob", "IMM-bob", "bob@cloud.example", ""),
		h.entraUser("erin", "", "erin@contoso.example", ""),
	}
	checkCounts(t, "Entra page", h.entraPage(t, s, entra...), 3, 0, 0, 0)
	before := h.users(t, s)
	alice := before["alice"]
	if alice.Source != rules.SourceAzure || alice.PasswordExpiresAt != nil {
		t.Fatalf("synced Entra user before AD: %+v, want azure with no expiry", alice)
	}
	// What technicians and the person did to the Entra end user.
	_, err := s.SetSelfServe(ctx, h.tenant.ID, []int64{alice.ID}, false)
	must(t, err)
	_, _, err = s.MarkFirstAccess(ctx, h.tenant.ID, alice.ID, time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC))
	must(t, err)
	must(t, s.MarkWelcomeSent(ctx, h.tenant.ID, alice.ID, time.Date(2026, 11, 19, 10, 0, 0, 0, time.UTC)))
	_, _, err = s.SetContact(ctx, h.tenant.ID, alice.ID, ptr("alice.typed@contoso.example"), nil, rules.ProvenanceManual)
	must(t, err)

	locked := h.adUser("alice", "IMM-alice", "alice@contoso.example", "")
	locked.LockedOut = true
	locked.LockedOutAt = time.Date(2026, 11, 24, 7, 0, 0, 0, time.UTC)
	res := h.adPage(t, s, locked, h.adUser("bob", "IMM-bob", "", "+447700900002"), h.adUser("carol", "IMM-carol", "", ""))
	checkCounts(t, "AD page", res, 1, 0, 0, 2)
	if len(res.Lockouts) != 1 || res.Lockouts[0].EndUserID != alice.ID {
		t.Errorf("lockouts %+v, want alice's (id %d)", res.Lockouts, alice.ID)
	}
	us := h.users(t, s)
	if len(us) != 4 {
		t.Fatalf("%d end users, want 4 (alice, bob, carol, erin)", len(us))
	}
	a := us["alice"]
	if a.ID != alice.ID || a.Source != rules.SourceAD || *a.ConnectionID != h.ad.ID || a.ExternalID != "guid-alice" {
		t.Fatalf("alice not taken over in place by AD: %+v (was id %d)", a, alice.ID)
	}
	if a.SelfServe || a.FirstAccessAt == nil || a.WelcomeSentAt == nil || a.Email != "alice.typed@contoso.example" || a.EmailSource != rules.ProvenanceManual {
		t.Errorf("alice lost what humans did: switch %v, first access %v, welcome %v, email %q (%s)", a.SelfServe, a.FirstAccessAt, a.WelcomeSentAt, a.Email, a.EmailSource)
	}
	if a.Mobile != "+447700900001" || a.MobileSource != rules.ProvenanceDirectory {
		t.Errorf("alice's mobile from Entra lost when AD had none: %q (%s)", a.Mobile, a.MobileSource)
	}
	if a.PasswordExpiresAt == nil || !a.PasswordExpiresAt.Equal(h.adExpiry) || !a.LockedOut {
		t.Errorf("alice's password data is not AD's: expires %v, locked %v", a.PasswordExpiresAt, a.LockedOut)
	}
	if b := us["bob"]; b.ID != before["bob"].ID || b.Email != "bob@cloud.example" || b.Mobile != "+447700900002" || !b.SelfServe {
		t.Errorf("bob after AD: %+v", b)
	}
	links := h.links(t, s, h.entra)
	if len(links) != 2 || links["entra-alice"].EndUserID != alice.ID || links["entra-bob"].EndUserID != before["bob"].ID {
		t.Fatalf("links after AD: %+v, want alice's and bob's Entra identities", links)
	}

	// Both sides again (the next runs): no change, no duplicate, no lockout
	// again.
	h.adRun, h.entraRun = h.adRun+10, h.entraRun+10
	checkCounts(t, "Entra page again", h.entraPage(t, s, entra...), 0, 0, 3, 0)
	res = h.adPage(t, s, locked, h.adUser("bob", "IMM-bob", "", "+447700900002"), h.adUser("carol", "IMM-carol", "", ""))
	checkCounts(t, "AD page again", res, 0, 0, 3, 0)
	if len(res.Lockouts) != 0 || len(h.users(t, s)) != 4 {
		t.Fatalf("AD page again: lockouts %+v, %d end users", res.Lockouts, len(h.users(t, s)))
	}
}

// testLinkFold: an Entra user that was cloud-only, imported as its own end
// user, later gets the immutable id of an AD end user: the two become one.
func testLinkFold(t *testing.T, s *store.Store) {
	ctx := context.Background()
	h := newHybrid(t, s, "link-fold")
	h.adPage(t, s, h.adUser("alice", "IMM-alice", "alice@contoso.example", ""))
	h.entraPage(t, s, h.entraUser("alice", "", "", ""))
	us := h.users2(t, s)
	if len(us) != 2 {
		t.Fatalf("%d end users before the Entra user is matched, want 2", len(us))
	}
	var ad, cloud store.EndUser
	for _, u := range us {
		if u.Source == rules.SourceAD {
			ad = u
		} else {
			cloud = u
		}
	}
	_, err := s.SetSelfServe(ctx, h.tenant.ID, []int64{ad.ID}, false)
	must(t, err)
	_, _, err = s.SetContact(ctx, h.tenant.ID, cloud.ID, nil, ptr("+447700900777"), rules.ProvenanceEndUser)
	must(t, err)
	_, _, err = s.MarkFirstAccess(ctx, h.tenant.ID, cloud.ID, time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC))
	must(t, err)

	res := h.entraPage(t, s, h.entraUser("alice", "IMM-alice", "alice@cloud.example", "+447700900001"))
	checkCounts(t, "Entra page with the immutable id", res, 0, 0, 0, 1)
	after := h.users(t, s)
	a := after["alice"]
	if len(after) != 1 || a.ID != ad.ID || a.Source != rules.SourceAD {
		t.Fatalf("after folding: %+v, want only the AD end user %d", after, ad.ID)
	}
	if a.Mobile != "+447700900777" || a.MobileSource != rules.ProvenanceEndUser || !a.SelfServe || a.FirstAccessAt == nil || a.Email != "alice@contoso.example" {
		t.Errorf("folded alice lost something: %+v", a)
	}
	checkCounts(t, "Entra page again", h.entraPage(t, s, h.entraUser("alice", "IMM-alice", "alice@cloud.example", "+447700900001")), 0, 0, 1, 0)
}

// users2 lists the tenant's end users without the duplicate check.
func (h *hybrid) users2(t *testing.T, s *store.Store) []store.EndUser {
	t.Helper()
	us, err := s.EndUsers(context.Background(), h.tenant.ID, store.EndUserFilter{IncludeRemoved: true})
	must(t, err)
	return us
}

// testLinkRemovals: Entra removals drop links only; AD removals remove the
// end user, and Entra does not bring it back.
func testLinkRemovals(t *testing.T, s *store.Store) {
	ctx := context.Background()
	h := newHybrid(t, s, "link-removals")
	h.adPage(t, s, h.adUser("alice", "IMM-alice", "", ""), h.adUser("bob", "IMM-bob", "", ""), h.adUser("carol", "IMM-carol", "", ""))
	h.entraPage(t, s, h.entraUser("alice", "IMM-alice", "", ""), h.entraUser("bob", "IMM-bob", "", ""), h.entraUser("carol", "IMM-carol", "", ""),
		h.entraUser("erin", "", "", ""))

	// A full Entra run that no longer sees alice: her link goes, she stays.
	h.entraRun = 201
	h.entraPage(t, s, h.entraUser("bob", "IMM-bob", "", ""), h.entraUser("carol", "IMM-carol", "", ""), h.entraUser("erin", "", "", ""))
	present, unseen, err := s.RemovalCheck(ctx, h.tenant.ID, h.entra.ID, h.entraRun)
	must(t, err)
	if present != 4 || unseen != 1 {
		t.Fatalf("Entra removal check: present %d unseen %d, want 4 (3 links, erin) and 1", present, unseen)
	}
	n, err := s.RemoveUnseen(ctx, h.tenant.ID, h.entra.ID, h.entraRun)
	must(t, err)
	us := h.users(t, s)
	if n != 1 || us["alice"].RemovedAt != nil || len(h.links(t, s, h.entra)) != 2 {
		t.Fatalf("full Entra run without alice: removed %d, alice removed at %v, %d links; want 1, present, 2", n, us["alice"].RemovedAt, len(h.links(t, s, h.entra)))
	}

	// A delta deletion of a linked user: only the link goes.
	res, err := importer.ApplyPage(ctx, s, h.target(h.entra, 202), nil, []connectors.Removal{{ExternalID: "entra-bob", Permanent: true}})
	must(t, err)
	if res.Removed != 1 || h.users(t, s)["bob"].RemovedAt != nil {
		t.Fatalf("Entra deletion of linked bob: %+v, bob removed at %v; want the link removed, bob present", res, h.users(t, s)["bob"].RemovedAt)
	}
	if _, ok := h.links(t, s, h.entra)["entra-bob"]; ok {
		t.Fatal("bob's link survived his Entra deletion")
	}

	// An AD removal of a linked user removes the end user; Entra keeps its
	// link but does not restore the user.
	h.adRun = 101
	h.adPage(t, s, h.adUser("alice", "IMM-alice", "", ""), h.adUser("bob", "IMM-bob", "", ""))
	n, err = s.RemoveUnseen(ctx, h.tenant.ID, h.ad.ID, h.adRun)
	must(t, err)
	if n != 1 || h.users(t, s)["carol"].RemovedAt == nil {
		t.Fatalf("AD removal of linked carol: removed %d, carol %+v", n, h.users(t, s)["carol"])
	}
	h.entraRun = 203
	h.entraPage(t, s, h.entraUser("carol", "IMM-carol", "carol@cloud.example", "+447700900003"))
	if c := h.users(t, s)["carol"]; c.RemovedAt == nil || c.Source != rules.SourceAD {
		t.Fatalf("Entra brought AD-removed carol back: %+v", c)
	}
	// And a full Entra run never removes AD-owned end users.
	if _, err := s.RemoveUnseen(ctx, h.tenant.ID, h.entra.ID, h.entraRun); err != nil {
		t.Fatal(err)
	}
	if us := h.users(t, s); us["alice"].RemovedAt != nil || us["bob"].RemovedAt != nil || us["erin"].RemovedAt == nil {
		t.Fatalf("after a full Entra run seeing only carol: alice %v bob %v erin %v; want AD users present, erin removed",
			us["alice"].RemovedAt, us["bob"].RemovedAt, us["erin"].RemovedAt)
	}
}

// testLinkConcurrentSources: an AD page and an Entra page with the same new
// people committed at the same time make one end user per person, whichever
// wins.
func testLinkConcurrentSources(t *testing.T, s *store.Store) {
	ctx := context.Background()
	h := newHybrid(t, s, "link-race")
	for round := range 4 {
		var ad, entra []store.UserRecord
		for i := range 40 {
			name := fmt.Sprintf("r%du%02d", round, i)
			ad = append(ad, h.adUser(name, "IMM-"+name, "", ""))
			entra = append(entra, h.entraUser(name, "IMM-"+name, name+"@cloud.example", ""))
		}
		var wg sync.WaitGroup
		for _, p := range []struct {
			c    store.Connection
			run  int64
			recs []store.UserRecord
		}{{h.ad, h.adRun, ad}, {h.entra, h.entraRun, entra}} {
			wg.Go(func() {
				err := s.InTx(ctx, func(tx *store.Store) error {
					_, err := importer.ApplyPage(ctx, tx, h.target(p.c, p.run), p.recs, nil)
					return err
				})
				if err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
	}
	us := h.users(t, s) // fails on a duplicate
	if len(us) != 160 {
		t.Fatalf("%d end users, want 160", len(us))
	}
	for name, u := range us {
		if u.Source != rules.SourceAD || u.Email != name+"@cloud.example" {
			t.Fatalf("%s: %+v, want the AD end user with Entra's email", name, u)
		}
	}
	if n := len(h.links(t, s, h.entra)); n != 160 {
		t.Fatalf("%d links, want 160", n)
	}
}

// testLinkPSAEitherOrder: a hybrid end user whose field holds a PSA value
// while its Entra link holds a value ends with Entra's value whichever
// source syncs next (rules.MergeDirectoryContact, rules.MergeEntraContact):
// an AD page that brings no value lets the link's value replace the PSA one,
// as an Entra page does.
func testLinkPSAEitherOrder(t *testing.T, s *store.Store) {
	ctx := context.Background()
	h := newHybrid(t, s, "link-psa-order")
	h.adPage(t, s, h.adUser("gina", "IMM-gina", "", ""), h.adUser("hank", "IMM-hank", "", ""))
	gina, hank := h.entraUser("gina", "IMM-gina", "gina@contoso.example", ""), h.entraUser("hank", "IMM-hank", "hank@contoso.example", "")
	checkCounts(t, "Entra page", h.entraPage(t, s, gina, hank), 0, 0, 0, 2)
	before := h.users(t, s)
	for _, name := range []string{"gina", "hank"} {
		_, _, err := s.SetContact(ctx, h.tenant.ID, before[name].ID, ptr(name+"@psa.example"), nil, rules.ProvenancePSA)
		must(t, err)
	}
	h.adPage(t, s, h.adUser("gina", "IMM-gina", "", ""))
	h.entraPage(t, s, hank)
	us := h.users(t, s)
	for _, name := range []string{"gina", "hank"} {
		if u := us[name]; u.Email != name+"@contoso.example" || u.EmailSource != rules.ProvenanceDirectory {
			t.Errorf("%s: email %q (%s), want Entra's %q (directory) whichever source synced after the PSA value", name, u.Email, u.EmailSource, name+"@contoso.example")
		}
	}
}
