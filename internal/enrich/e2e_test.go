package enrich_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"selfserve/connectors"
	"selfserve/internal/importer"
	"selfserve/internal/report"
	"selfserve/internal/rules"
	"selfserve/internal/store"
)

// TestEndToEnd is the check, once per PSA and database: directory
// users (a file connection) with missing mobiles, and a PSA connection whose
// contacts hold them. Before enrichment the users are Incomplete; after the
// customer import (which links the hand-made customer by name) and the
// enrichment they are Registration Complete, and active where their switch
// is on.
func TestEndToEnd(t *testing.T) {
	t.Parallel()
	forEachPSA(t, func(t *testing.T, kind connectors.Kind, open func(*testing.T) *store.Store) {
		ctx := context.Background()
		b := setup(t, open, startFake(t, kind, size{companies: 3, people: 30, seed: 7}))
		co := b.fake.companies[0]
		var picked []person
		for _, p := range uniqueNames(co) {
			if _, ok := usable(p, "US"); ok {
				picked = append(picked, p)
			}
		}
		if len(picked) < 3 {
			t.Fatalf("the fake's first company has %d usable contacts, the test needs 3", len(picked))
		}
		byEmail, byName, switchedOff := picked[0], picked[1], picked[2]

		// The technician's customer and its file connection.
		customer, err := b.st.CreateCustomer(ctx, store.Customer{TenantID: b.tenant.ID, Name: co.name, TimeZone: "America/Chicago", DefaultRegion: "US"})
		must(t, err)
		csv := filepath.Join(t.TempDir(), "users.csv")
		rows := "username,first_name,last_name,email,mobile,enabled,locked_out,password_last_set,password_expires_at\n" +
			fmt.Sprintf("alice,Alice,Archer,%s,,true,false,2026-11-01T09:00:00Z,2026-12-13T09:00:00Z\n", strings.ToUpper(byEmail.emails[0])) +
			fmt.Sprintf("bob,%s,%s,,,true,false,2026-11-01T09:00:00Z,2026-12-13T09:00:00Z\n", byName.first, byName.last) +
			fmt.Sprintf("carol,Carol,Cole,%s,,true,false,2026-11-01T09:00:00Z,2026-12-13T09:00:00Z\n", switchedOff.emails[0]) +
			"dave,Dave,Dale,dave@nowhere.example,,true,false,2026-11-01T09:00:00Z,2026-12-13T09:00:00Z\n"
		must(t, os.WriteFile(csv, []byte(rows), 0o600))
		dir, _, err := b.st.UpsertConnection(ctx, store.Connection{TenantID: b.tenant.ID, CustomerID: &customer.ID, Name: "local", Kind: connectors.KindFile,
			Settings: []byte(fmt.Sprintf(`{"path": %q}`, csv)), EnableSelfServe: true}, false)
		must(t, err)
		im := &importer.Importer{MaxRemovalShare: 0.3, Store: b.st, Registry: registry()}
		res, err := im.Sync(ctx, importer.Request{TenantID: b.tenant.ID, ConnectionID: dir.ID, Trigger: "test"})
		must(t, err)
		if res.Run.Created != 4 {
			t.Fatalf("directory sync: %+v", res.Run)
		}
		users := b.endUsers(t)
		_, err = b.st.SetSelfServe(ctx, b.tenant.ID, []int64{users["carol"].ID}, false)
		must(t, err)
		for name, row := range b.rows(t) {
			if row.StatusLabel != "Incomplete" || row.Active {
				t.Fatalf("%s before enrichment: %s, active %v", name, row.StatusLabel, row.Active)
			}
		}

		imported, err := b.run(t, store.RunKindCustomers, 0)
		must(t, err)
		if imported.Counts["customers_linked"] != 1 {
			t.Fatalf("customer import did not link %q: %v\n%s", co.name, imported.Counts, problems(imported))
		}
		enriched, err := b.run(t, store.RunKindContacts, 0)
		must(t, err)
		t.Logf("%s: %s", kind, enriched.Summary)

		rows2 := b.rows(t)
		for _, name := range []string{"alice", "bob", "carol"} {
			if rows2[name].StatusLabel != rules.StatusRegistrationComplete.Label() {
				t.Errorf("%s after enrichment: %s (email %q, mobile %q)", name, rows2[name].StatusLabel, rows2[name].Email, rows2[name].Mobile)
			}
		}
		for name, active := range map[string]bool{"alice": true, "bob": true, "carol": false, "dave": false} {
			if rows2[name].Active != active {
				t.Errorf("%s: active %v, want %v (%s)", name, rows2[name].Active, active, rows2[name].InactiveReason)
			}
		}
		if rows2["carol"].InactiveReason != rules.ReasonSwitchOff || rows2["dave"].InactiveReason != rules.ReasonMissingMobile {
			t.Errorf("reasons: carol %q, dave %q", rows2["carol"].InactiveReason, rows2["dave"].InactiveReason)
		}
		want, _ := usable(byEmail, "US")
		if rows2["alice"].Mobile != want || rows2["alice"].MobileSource != rules.ProvenancePSA || rows2["bob"].EmailSource != rules.ProvenancePSA {
			t.Errorf("alice %+v, bob %+v", rows2["alice"], rows2["bob"])
		}

		// The next directory sync keeps the PSA values it has none for.
		res, err = im.Sync(ctx, importer.Request{TenantID: b.tenant.ID, ConnectionID: dir.ID, Trigger: "test"})
		must(t, err)
		if rows3 := b.rows(t); rows3["alice"].Mobile != want || !rows3["alice"].Active || !rows3["bob"].Active {
			t.Errorf("a directory sync undid the enrichment: alice %+v", rows3["alice"])
		}
	})
}

// rows lists the end users as technicians see them, by username.
func (b *bundle) rows(t *testing.T) map[string]report.EndUser {
	t.Helper()
	ctx := context.Background()
	tenant, err := b.st.Tenant(ctx, b.tenant.ID)
	must(t, err)
	names := report.Names{Tenant: tenant, Customers: map[int64]store.Customer{}, Connections: map[int64]store.Connection{}}
	out := map[string]report.EndUser{}
	for _, u := range b.endUsers(t) {
		out[u.Username] = report.NewEndUser(u, names)
	}
	return out
}
