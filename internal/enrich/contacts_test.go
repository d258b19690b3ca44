package enrich_test

import (
	"context"
	"selfserve/internal/importer"
	"strings"
	"testing"

	"selfserve/connectors"
	"selfserve/internal/enrich"
	"selfserve/internal/rules"
	"selfserve/internal/store"
)

// directory adds a file connection to customer c and stores users in it as
// a directory sync would.
func (b *bundle) directory(t testing.TB, c store.Customer, users ...connectors.User) map[string]store.EndUser {
	t.Helper()
	ctx := context.Background()
	conn, _, err := b.st.UpsertConnection(ctx, store.Connection{TenantID: b.tenant.ID, CustomerID: &c.ID, Name: "local-" + c.Name, Kind: connectors.KindFile,
		Settings: []byte(`{"path":"users.csv"}`), EnableSelfServe: true}, false)
	must(t, err)
	recs := make([]store.UserRecord, len(users))
	for i, u := range users {
		u.Enabled = true
		recs[i] = store.UserRecord{User: u}
	}
	_, err = importer.ApplyPage(ctx, b.st, store.PageTarget{TenantID: b.tenant.ID, CustomerID: c.ID, ConnectionID: conn.ID, RunID: 1, Source: rules.SourceLocal, EnableSelfServe: true}, recs, nil)
	must(t, err)
	return b.endUsers(t)
}

func (b *bundle) endUsers(t testing.TB) map[string]store.EndUser {
	t.Helper()
	us, err := b.st.EndUsers(context.Background(), b.tenant.ID, store.EndUserFilter{})
	must(t, err)
	m := map[string]store.EndUser{}
	for _, u := range us {
		m[u.Username] = u
	}
	return m
}

// customerOf returns the imported customer of company co, with region as
// its default region.
func (b *bundle) customerOf(t testing.TB, co company, region string) store.Customer {
	t.Helper()
	c, ok := b.customers(t)[string(b.fake.kind)+":"+co.id]
	if !ok {
		t.Fatalf("company %s was not imported", co.id)
	}
	c.DefaultRegion = region
	c, _, err := b.st.UpsertCustomer(context.Background(), c)
	must(t, err)
	return c
}

// TestEnrichment: contacts fill the mobile of the end user with their
// address, the email and mobile of the one end user with their name; a
// directory or typed mobile stays; a contact whose name two end users have
// is reported, as is a national number in a customer without a region.
func TestEnrichment(t *testing.T) {
	t.Parallel()
	forEachPSA(t, func(t *testing.T, kind connectors.Kind, open func(*testing.T) *store.Store) {
		ctx := context.Background()
		b := setup(t, open, startFake(t, kind, size{companies: 2, people: 30, seed: 4}))
		_, err := b.run(t, store.RunKindCustomers, 0)
		must(t, err)
		coA, coB := b.fake.companies[0], b.fake.companies[1]
		a, bb := b.customerOf(t, coA, "US"), b.customerOf(t, coB, "")

		var picked []person
		for _, p := range uniqueNames(coA) {
			if _, ok := usable(p, "US"); ok {
				picked = append(picked, p)
			}
		}
		if len(picked) < 5 {
			t.Fatalf("the fake's first company has %d usable contacts, the test needs 5", len(picked))
		}
		c1, c2, c3, c4, c5 := picked[0], picked[1], picked[2], picked[3], picked[4]
		var b1 person
		for _, p := range coB.people {
			national := len(p.mobiles) > 0 && len(p.emails) > 0
			for _, m := range p.mobiles {
				national = national && !strings.HasPrefix(m, "+")
			}
			if national {
				b1 = p
				break
			}
		}
		if b1.id == "" {
			t.Fatal("the fake's second company has no contact with a national mobile number")
		}
		b.directory(t, a,
			connectors.User{ExternalID: "u1", Username: "u1", FirstName: "Someone", LastName: "Else", Email: strings.ToUpper(c1.emails[0])},
			connectors.User{ExternalID: "u2", Username: "u2", FirstName: strings.ToUpper(c2.first), LastName: " " + c2.last},
			connectors.User{ExternalID: "u3", Username: "u3", Email: c3.emails[0], Mobile: "+12025550143"},
			connectors.User{ExternalID: "u4", Username: "u4", Email: c4.emails[0]},
			connectors.User{ExternalID: "u5", Username: "u5", FirstName: c5.first, LastName: c5.last},
			connectors.User{ExternalID: "u6", Username: "u6", FirstName: c5.first, LastName: c5.last},
		)
		us := b.directory(t, bb, connectors.User{ExternalID: "u7", Username: "u7", Email: b1.emails[0]})
		_, _, err = b.st.SetContact(ctx, b.tenant.ID, us["u4"].ID, nil, ptr("+12025550199"), rules.ProvenanceManual)
		must(t, err)

		run, err := b.run(t, store.RunKindContacts, 0)
		must(t, err)
		want := store.RunCounts{
			enrich.CountCustomersSearched: 2, enrich.CountContactsRead: len(coA.people) + len(coB.people),
			enrich.CountMatchedByEmail: 4, enrich.CountMatchedByName: 1, enrich.CountMobilesFilled: 2, enrich.CountEmailsFilled: 1,
			enrich.CountMobilesKept: 2, enrich.CountContactsAmbiguous: 1, enrich.CountMobilesUnparsable: 1,
		}
		for code, n := range want {
			if run.Counts[code] != n {
				t.Errorf("count %s = %d, want %d", code, run.Counts[code], n)
			}
		}
		if run.Status != store.RunSucceeded || run.Kind != store.RunKindContacts || run.Updated != 2 {
			t.Fatalf("enrichment run %+v\n%s", run, problems(run))
		}
		if !strings.HasPrefix(run.Summary, "1 email address filled, 2 mobile numbers filled") || !strings.Contains(run.Summary, "1 contact ambiguous") {
			t.Errorf("summary %q", run.Summary)
		}

		us = b.endUsers(t)
		m1, _ := usable(c1, "US")
		m2, _ := usable(c2, "US")
		check := func(name, email string, emailFrom rules.Provenance, mobile string, mobileFrom rules.Provenance) {
			t.Helper()
			u := us[name]
			if !strings.EqualFold(u.Email, email) || u.EmailSource != emailFrom || u.Mobile != mobile || u.MobileSource != mobileFrom {
				t.Errorf("%s: email %q (%s) mobile %q (%s), want %q (%s) %q (%s)", name, u.Email, u.EmailSource, u.Mobile, u.MobileSource, email, emailFrom, mobile, mobileFrom)
			}
		}
		check("u1", c1.emails[0], rules.ProvenanceDirectory, m1, rules.ProvenancePSA)
		check("u2", c2.emails[0], rules.ProvenancePSA, m2, rules.ProvenancePSA)
		check("u3", c3.emails[0], rules.ProvenanceDirectory, "+12025550143", rules.ProvenanceDirectory)
		check("u4", c4.emails[0], rules.ProvenanceDirectory, "+12025550199", rules.ProvenanceManual)
		check("u5", "", "", "", "")
		check("u6", "", "", "", "")
		check("u7", b1.emails[0], rules.ProvenanceDirectory, "", "")
		text := problems(run)
		for _, w := range []string{"2 end users are named", "(u5, u6): not guessed", coB.name + ": ", "no country code and the customer has no default region"} {
			if !strings.Contains(text, w) {
				t.Errorf("problems lack %q:\n%s", w, text)
			}
		}

		again, err := b.run(t, store.RunKindContacts, 0)
		must(t, err)
		if again.Counts[enrich.CountMobilesFilled] != 0 || again.Counts[enrich.CountEndUsersUpToDate] != 2 || again.Updated != 0 {
			t.Errorf("second enrichment: %+v %v", again.SyncRun, again.Counts)
		}
		one, err := b.run(t, store.RunKindContacts, bb.ID)
		must(t, err)
		if one.Counts[enrich.CountCustomersSearched] != 1 || one.Counts[enrich.CountContactsRead] != len(coB.people) || *one.CustomerID != bb.ID {
			t.Errorf("enrichment of one customer: %+v %v", one.SyncRun, one.Counts)
		}
	})
}

// TestEnrichmentNeedsLinkedCustomers: without imported customers there is
// nothing to enrich, and the run says what to do; a customer not linked to
// the PSA cannot be enriched alone.
func TestEnrichmentNeedsLinkedCustomers(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, open func(*testing.T) *store.Store) {
		ctx := context.Background()
		b := setup(t, open, startFake(t, connectors.KindHudu, size{companies: 1, people: 1}))
		run, err := b.run(t, store.RunKindContacts, 0)
		must(t, err)
		if run.Status != store.RunSucceeded || run.Summary != "nothing to do" || !strings.Contains(problems(run), "import the customers first") {
			t.Fatalf("enrichment without customers: %+v\n%s", run, problems(run))
		}
		cu, err := b.st.CreateCustomer(ctx, store.Customer{TenantID: b.tenant.ID, Name: "Not Linked"})
		must(t, err)
		run, err = b.run(t, store.RunKindContacts, cu.ID)
		if err == nil || run.Status != store.RunFailed || !strings.Contains(run.Error, `customer "Not Linked" is not linked to hudu`) {
			t.Fatalf("enrichment of an unlinked customer: err=%v run=%+v", err, run)
		}
	})
}

// TestSyncImportsThenEnriches: the worker's entry point runs both in one
// run.
func TestSyncImportsThenEnriches(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, open func(*testing.T) *store.Store) {
		ctx := context.Background()
		b := setup(t, open, startFake(t, connectors.KindConnectWise, size{companies: 3, people: 4, seed: 5}))
		// A customer linked to a company ConnectWise does not have: its
		// contact search finds nothing.
		_, err := b.st.CreateCustomer(ctx, store.Customer{TenantID: b.tenant.ID, Name: "Gone Ltd", Source: "connectwise", ExternalID: "9999"})
		must(t, err)
		run, err := b.run(t, store.RunKindPSA, 0)
		must(t, err)
		n := len(b.fake.companies)
		if run.Kind != store.RunKindPSA || run.Counts[enrich.CountCustomersCreated] != n || run.Counts[enrich.CountCustomersSearched] != n+1 ||
			run.Counts[enrich.CountCustomersMissing] != 0 {
			t.Fatalf("sync: %+v %v\n%s", run.SyncRun, run.Counts, problems(run))
		}
		if !strings.Contains(run.Summary, "customers created") || !strings.Contains(run.Summary, "contacts read") {
			t.Errorf("summary %q", run.Summary)
		}
	})
}

// TestEnrichmentReportsCustomersThePSANoLongerKnows: a customer whose
// organization IT Glue answers 404 for is reported and the others are
// enriched; a run where no customer could be listed fails.
func TestEnrichmentReportsCustomersThePSANoLongerKnows(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, open func(*testing.T) *store.Store) {
		ctx := context.Background()
		b := setup(t, open, startFake(t, connectors.KindITGlue, size{companies: 2, people: 2, seed: 6}))
		_, err := b.run(t, store.RunKindCustomers, 0)
		must(t, err)
		_, err = b.st.CreateCustomer(ctx, store.Customer{TenantID: b.tenant.ID, Name: "Gone Ltd", Source: "itglue", ExternalID: "9999"})
		must(t, err)
		run, err := b.run(t, store.RunKindContacts, 0)
		must(t, err)
		if run.Counts[enrich.CountCustomersMissing] != 1 || run.Counts[enrich.CountCustomersSearched] != 3 || !strings.Contains(problems(run), "Gone Ltd: its contacts could not be listed") {
			t.Fatalf("enrichment with a deleted organization: %v\n%s", run.Counts, problems(run))
		}
		only, err := b.st.CustomerByName(ctx, b.tenant.ID, "Gone Ltd")
		must(t, err)
		run, err = b.run(t, store.RunKindContacts, only.ID)
		if err == nil || run.Status != store.RunFailed || !strings.Contains(run.Error, "none of the 1 customers") {
			t.Fatalf("enrichment of only a deleted organization: err=%v run=%+v", err, run.SyncRun)
		}
	})
}

func ptr[T any](v T) *T { return &v }
