package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"selfserve/connectors"
	"selfserve/internal/rules"
	"selfserve/internal/store"
)

// psaConnection adds a tenant-wide IT Glue connection to f's tenant.
func psaConnection(t *testing.T, s *store.Store, f fixture) store.Connection {
	t.Helper()
	co, _, err := s.UpsertConnection(context.Background(), store.Connection{TenantID: f.tenant.ID, Name: f.tenant.Name + "-itglue", Kind: connectors.KindITGlue,
		Settings: []byte(`{"region":"eu"}`)}, false)
	must(t, err)
	return co
}

func customersByName(t *testing.T, s *store.Store, tenantID int64) map[string]store.Customer {
	t.Helper()
	cs, err := s.Customers(context.Background(), tenantID)
	must(t, err)
	m := map[string]store.Customer{}
	for _, c := range cs {
		m[c.Name] = c
	}
	return m
}

func actions(outs []store.CustomerOutcome) string {
	s := ""
	for _, o := range outs {
		s += fmt.Sprintf("%s=%s ", o.Record.ExternalID, o.Action)
	}
	return s
}

// testPSACustomerPage: customers are keyed by (tenant, PSA kind, PSA id);
// a hand-made customer of the same name (case aside) is linked; a name held
// by a customer linked elsewhere, by several customers, or by another
// record of the import is reported; applying a page again changes nothing.
func testPSACustomerPage(t *testing.T, s *store.Store) {
	ctx := context.Background()
	f := newFixture(t, s, "psa-customers")
	other := newFixture(t, s, "psa-customers-other")
	_, err := s.CreateCustomer(ctx, store.Customer{TenantID: f.tenant.ID, Name: "Fabrikam"})
	must(t, err)
	fab := customersByName(t, s, f.tenant.ID)["Fabrikam"]
	_, _, err = s.LinkCustomer(ctx, f.tenant.ID, fab.ID, "hudu", "9")
	must(t, err)
	for _, name := range []string{"Dup Inc", "DUP INC"} {
		_, err := s.CreateCustomer(ctx, store.Customer{TenantID: f.tenant.ID, Name: name})
		must(t, err)
	}
	page := []store.CustomerRecord{
		{ExternalID: "1", Name: "contoso", Ref: "organization 1"},   // the fixture's "Contoso": linked
		{ExternalID: "2", Name: "Fabrikam", Ref: "organization 2"},  // linked to hudu 9: conflict
		{ExternalID: "3", Name: "Dup  Inc", Ref: "organization 3"},  // two namesakes: ambiguous
		{ExternalID: "4", Name: "Northwind", Ref: "organization 4"}, // created
		{ExternalID: "5", Name: "northwind", Ref: "organization 5"}, // same name as 4 in this import
	}
	outs, err := s.ApplyCustomerPage(ctx, f.tenant.ID, "itglue", page)
	must(t, err)
	if got, want := actions(outs), "1=linked 2=link_conflict 3=name_ambiguous 4=created 5=name_taken "; got != want {
		t.Fatalf("first page: %s, want %s", got, want)
	}
	for _, o := range outs[1:3] {
		if o.Detail == "" {
			t.Errorf("%s: no detail for a technician", o.Action)
		}
	}
	cs := customersByName(t, s, f.tenant.ID)
	if c := cs["Contoso"]; c.Source != "itglue" || c.ExternalID != "1" || c.ID != f.customer.ID || c.TimeZone != "Europe/London" {
		t.Errorf("linked customer %+v, want the fixture's Contoso with itglue id 1, its settings kept", c)
	}
	if c := cs["Northwind"]; c.Source != "itglue" || c.ExternalID != "4" || c.TimeZone != "" || c.DefaultRegion != "" || outs[3].CustomerID != c.ID {
		t.Errorf("created customer %+v (outcome id %d), want itglue id 4 with the tenant's zone and no region", c, outs[3].CustomerID)
	}
	if c := cs["Fabrikam"]; c.Source != "hudu" || c.ExternalID != "9" {
		t.Errorf("conflicting customer changed: %+v", c)
	}
	if len(cs) != 5 {
		t.Errorf("%d customers, want 5 (Contoso, Fabrikam, Dup Inc, DUP INC, Northwind)", len(cs))
	}

	// The same page again: nothing new.
	outs, err = s.ApplyCustomerPage(ctx, f.tenant.ID, "itglue", page)
	must(t, err)
	if got, want := actions(outs), "1=unchanged 2=link_conflict 3=name_ambiguous 4=unchanged 5=name_taken "; got != want {
		t.Fatalf("same page again: %s, want %s", got, want)
	}
	if n := len(customersByName(t, s, f.tenant.ID)); n != 5 {
		t.Fatalf("%d customers after a second import, want 5", n)
	}

	// Renamed in the PSA: renamed here, unless another customer has the name.
	outs, err = s.ApplyCustomerPage(ctx, f.tenant.ID, "itglue", []store.CustomerRecord{
		{ExternalID: "4", Name: "Northwind Traders"}, {ExternalID: "1", Name: "Fabrikam"},
	})
	must(t, err)
	if got, want := actions(outs), "4=renamed 1=name_taken "; got != want {
		t.Fatalf("renames: %s, want %s", got, want)
	}
	cs = customersByName(t, s, f.tenant.ID)
	if cs["Northwind Traders"].ExternalID != "4" || cs["Contoso"].ExternalID != "1" {
		t.Errorf("after renames: %v", cs)
	}

	// Another tenant's customers are its own.
	outs, err = s.ApplyCustomerPage(ctx, other.tenant.ID, "itglue", page[3:4])
	must(t, err)
	if outs[0].Action != store.CustomerCreated {
		t.Errorf("other tenant: %s, want created", outs[0].Action)
	}
	if _, err := s.ApplyCustomerPage(ctx, f.tenant.ID, "itglue", []store.CustomerRecord{{ExternalID: "", Name: "x"}}); err == nil {
		t.Error("a record without id was accepted")
	}

	linked, err := s.LinkedCustomers(ctx, f.tenant.ID, "itglue", 0)
	must(t, err)
	if len(linked) != 2 || linked[0].ID >= linked[1].ID {
		t.Fatalf("linked customers %+v, want Contoso and Northwind Traders by id", linked)
	}
	after, err := s.LinkedCustomers(ctx, f.tenant.ID, "itglue", linked[0].ID)
	must(t, err)
	if len(after) != 1 || after[0].ID != linked[1].ID {
		t.Fatalf("linked customers after %d: %+v", linked[0].ID, after)
	}
}

// testPSARuns: a PSA run records its kind, customer, counts and summary;
// a run created without kind takes the kind it is started as; the one
// active run per connection holds.
func testPSARuns(t *testing.T, s *store.Store) {
	ctx := context.Background()
	f := newFixture(t, s, "psa-runs")
	conn := psaConnection(t, s, f)
	run, err := s.CreatePSARun(ctx, f.tenant.ID, conn.ID, store.RunKindContacts, &f.customer.ID, "cli", store.RunQueued, 0)
	must(t, err)
	if run.Kind != store.RunKindContacts || run.CustomerID == nil || *run.CustomerID != f.customer.ID || run.Status != store.RunQueued {
		t.Fatalf("created run %+v", run)
	}
	if _, err := s.CreatePSARun(ctx, f.tenant.ID, conn.ID, store.RunKindCustomers, nil, "cli", store.RunQueued, 0); !errors.Is(err, store.ErrRunActive) {
		t.Fatalf("second active run: %v, want ErrRunActive", err)
	}
	if _, err := s.StartPSARun(ctx, f.tenant.ID, run.ID, store.RunKindCustomers); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("starting a contacts run as a customer import: %v, want ErrConflict", err)
	}
	run, err = s.StartPSARun(ctx, f.tenant.ID, run.ID, store.RunKindContacts)
	must(t, err)
	run.Counts.Add("mobiles_filled", 37)
	run.Counts.Add("contacts_ambiguous", 4)
	run.Summary, run.Resume = "37 mobile numbers filled, 4 contacts ambiguous", "contacts:7"
	run.AddProblems(store.Problem{Ref: "contact 1", Reason: "ambiguous"})
	must(t, s.SavePSARunProgress(ctx, &run))
	got, err := s.PSARun(ctx, f.tenant.ID, run.ID)
	must(t, err)
	if got.Counts["mobiles_filled"] != 37 || got.Counts["contacts_ambiguous"] != 4 || got.Summary != run.Summary || got.Resume != "contacts:7" || len(got.Problems()) != 1 {
		t.Fatalf("progress not saved: %+v", got)
	}
	got.Status = store.RunSucceeded
	got.Counts.Add("mobiles_filled", 1)
	must(t, s.FinishPSARun(ctx, &got))
	done, err := s.PSARun(ctx, f.tenant.ID, run.ID)
	must(t, err)
	if done.Status != store.RunSucceeded || done.FinishedAt == nil || done.Counts["mobiles_filled"] != 38 {
		t.Fatalf("finished run %+v", done)
	}
	if _, err := s.PSARun(ctx, newFixture(t, s, "psa-runs-other").tenant.ID, run.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("another tenant's run: %v, want ErrNotFound", err)
	}

	// A run the API or the scheduler recorded with CreateRun has no kind
	// yet: it takes the kind it is started as.
	plain, err := s.CreateRun(ctx, f.tenant.ID, conn.ID, store.ModeFull, "schedule", store.RunQueued, false, 0)
	must(t, err)
	started, err := s.StartPSARun(ctx, f.tenant.ID, plain.ID, store.RunKindPSA)
	must(t, err)
	if started.Kind != store.RunKindPSA || started.Status != store.RunRunning || started.Counts == nil {
		t.Fatalf("started plain run %+v", started)
	}
	if _, err := s.CreatePSARun(ctx, f.tenant.ID, conn.ID, "bogus", nil, "cli", store.RunQueued, 0); err == nil {
		t.Fatal("a run of an unknown kind was created")
	}
}

// testContactFillsGuard: PSA values fill empty fields and replace earlier
// PSA values; the statement itself refuses to write over a directory,
// manual or end-user value, even one stored after the caller read the user.
func testContactFillsGuard(t *testing.T, s *store.Store) {
	ctx := context.Background()
	f := newFixture(t, s, "psa-fills")
	applyPage(t, s, f, 1, user("empty", ""), user("dir", "+447700900002"), user("typed", ""), user("psa", ""), user("race", ""))
	us := endUsers(t, s, f.tenant.ID)
	_, _, err := s.SetContact(ctx, f.tenant.ID, us["typed"].ID, ptr(""), ptr("+447700900003"), rules.ProvenanceManual)
	must(t, err)
	_, err = s.ApplyContactFills(ctx, f.tenant.ID, []store.ContactFill{{EndUserID: us["psa"].ID, Mobile: ptr("+447700900004")}})
	must(t, err)

	// "race" is read with an empty mobile; a technician types one before the
	// fill is written.
	_, _, err = s.SetContact(ctx, f.tenant.ID, us["race"].ID, nil, ptr("+447700900005"), rules.ProvenanceManual)
	must(t, err)
	fills := []store.ContactFill{
		{EndUserID: us["empty"].ID, Mobile: ptr("+447700900101")},
		{EndUserID: us["dir"].ID, Mobile: ptr("+447700900102")},
		{EndUserID: us["typed"].ID, Email: ptr("typed@psa.example"), Mobile: ptr("+447700900103")},
		{EndUserID: us["psa"].ID, Mobile: ptr("+447700900104")},
		{EndUserID: us["race"].ID, Mobile: ptr("+447700900105")},
	}
	results, err := s.ApplyContactFills(ctx, f.tenant.ID, fills)
	must(t, err)
	written := map[int64]bool{}
	for _, r := range results {
		written[r.EndUserID] = r.Written
	}
	after := endUsers(t, s, f.tenant.ID)
	checks := []struct {
		name, mobile string
		from         rules.Provenance
		written      bool
	}{
		{"empty", "+447700900101", rules.ProvenancePSA, true},
		{"dir", "+447700900002", rules.ProvenanceDirectory, false},
		{"typed", "+447700900003", rules.ProvenanceManual, true}, // its cleared email is filled
		{"psa", "+447700900104", rules.ProvenancePSA, true},
		{"race", "+447700900005", rules.ProvenanceManual, false},
	}
	for _, c := range checks {
		u := after[c.name]
		if u.Mobile != c.mobile || u.MobileSource != c.from || written[u.ID] != c.written {
			t.Errorf("%s: mobile %q (%s) written=%v, want %q (%s) written=%v", c.name, u.Mobile, u.MobileSource, written[u.ID], c.mobile, c.from, c.written)
		}
	}
	if u := after["typed"]; u.Email != "typed@psa.example" || u.EmailSource != rules.ProvenancePSA {
		t.Errorf("a cleared email was not filled: %q (%s)", u.Email, u.EmailSource)
	}
	if u := after["dir"]; u.Email != us["dir"].Email || u.EmailSource != rules.ProvenanceDirectory {
		t.Errorf("a field not asked for changed: %q (%s)", u.Email, u.EmailSource)
	}
	if len(results) != len(fills) {
		t.Errorf("%d results for %d fills", len(results), len(fills))
	}

	// The same fills again write nothing; another tenant's ids write nothing.
	results, err = s.ApplyContactFills(ctx, f.tenant.ID, fills)
	must(t, err)
	for _, r := range results {
		if r.Written {
			t.Errorf("end user %d written again", r.EndUserID)
		}
	}
	other := newFixture(t, s, "psa-fills-other")
	results, err = s.ApplyContactFills(ctx, other.tenant.ID, fills[:1])
	must(t, err)
	if len(results) != 0 || endUsers(t, s, f.tenant.ID)["empty"].Mobile != "+447700900101" {
		t.Errorf("another tenant's fill reached this tenant: %+v", results)
	}
}
