package importer_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"selfserve/connectors"
	"selfserve/connectors/file"
	"selfserve/internal/importer"
	"selfserve/internal/rules"
	"selfserve/internal/store"
	"selfserve/internal/store/storetest"
)

const header = "username,first_name,last_name,email,mobile,enabled,locked_out,password_last_set,password_expires_at\n"

func row(name, mobile string) string {
	return fmt.Sprintf("%s,%s,Doe,%s@contoso.example,%s,true,false,2026-11-01T09:00:00Z,2026-12-13T09:00:00Z\n", name, strings.ToUpper(name[:1])+name[1:], name, mobile)
}

// bundle is a store with a tenant, a customer and a file connection whose
// CSV the test rewrites between syncs.
type bundle struct {
	st       *store.Store
	im       *importer.Importer
	tenant   store.Tenant
	customer store.Customer
	conn     store.Connection
	csv      string
}

func setup(t *testing.T, open func(*testing.T) *store.Store, pageSize int) *bundle {
	t.Helper()
	ctx := context.Background()
	st := open(t)
	b := &bundle{st: st, csv: filepath.Join(t.TempDir(), "users.csv")}
	var err error
	b.tenant, _, err = st.UpsertTenant(ctx, store.Tenant{Name: "acme", Subscription: rules.SubscriptionBundle, SelfServe: true, TimeZone: "UTC", SendHour: 9, ReminderDays: 10})
	must(t, err)
	b.customer, _, err = st.UpsertCustomer(ctx, store.Customer{TenantID: b.tenant.ID, Name: "Contoso", DefaultRegion: "GB"})
	must(t, err)
	settings := fmt.Sprintf(`{"path": %q, "page_size": %d}`, b.csv, pageSize)
	b.conn, _, err = st.UpsertConnection(ctx, store.Connection{TenantID: b.tenant.ID, CustomerID: &b.customer.ID, Name: "contoso-local",
		Kind: connectors.KindFile, Settings: []byte(settings), EnableSelfServe: true}, false)
	must(t, err)
	b.im = &importer.Importer{MaxRemovalShare: 0.3, Store: st, Registry: connectors.NewRegistry(map[connectors.Kind]func() connectors.Config{connectors.KindFile: func() connectors.Config { return new(file.Config) }})}
	return b
}

func (b *bundle) write(t *testing.T, rows ...string) {
	t.Helper()
	must(t, os.WriteFile(b.csv, []byte(header+strings.Join(rows, "")), 0o600))
}

func (b *bundle) sync(t *testing.T, req importer.Request) (importer.Result, error) {
	t.Helper()
	req.TenantID, req.ConnectionID = b.tenant.ID, b.conn.ID
	return b.im.Sync(context.Background(), req)
}

func (b *bundle) users(t *testing.T) map[string]store.EndUser {
	t.Helper()
	us, err := b.st.EndUsers(context.Background(), b.tenant.ID, store.EndUserFilter{IncludeRemoved: true})
	must(t, err)
	m := map[string]store.EndUser{}
	for _, u := range us {
		m[u.Username] = u
	}
	return m
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func forEachBackend(t *testing.T, fn func(t *testing.T, open func(*testing.T) *store.Store)) {
	for _, be := range storetest.Backends() {
		t.Run(be.Name, func(t *testing.T) {
			t.Parallel()
			fn(t, be.Open)
		})
	}
}

func TestMalformedRowAndInvalidPhone(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, open func(*testing.T) *store.Store) {
		b := setup(t, open, 2)
		b.write(t, row("alice", "07400 123001"), "bob,Bob,Doe,bob@contoso.example,,maybe,false,,\n", row("carol", "12"), row("dave", "+1 202 555 0101"))
		res, err := b.sync(t, importer.Request{Trigger: "test"})
		must(t, err)
		r := res.Run
		if r.Status != store.RunSucceeded || r.Created != 3 || r.Invalid != 1 || r.Processed != 4 || r.Pages != 2 {
			t.Fatalf("run: %+v", r)
		}
		problems := fmt.Sprint(r.Problems())
		for _, want := range []string{"row 3", "maybe", "row 4", `"12"`} {
			if !strings.Contains(problems, want) {
				t.Errorf("problems %s do not mention %s", problems, want)
			}
		}
		us := b.users(t)
		if us["alice"].Mobile != "+447400123001" || us["dave"].Mobile != "+12025550101" {
			t.Errorf("mobiles not in E.164: alice %q, dave %q", us["alice"].Mobile, us["dave"].Mobile)
		}
		if us["carol"].Mobile != "" || us["carol"].Email == "" {
			t.Errorf("carol: invalid mobile stored or user lost: %+v", us["carol"])
		}
		if _, ok := us["bob"]; ok {
			t.Error("the malformed row was imported")
		}
		if !us["alice"].SelfServe {
			t.Error("a new end user did not get the connection's enable-self-serve value")
		}
	})
}

func TestReimportRespectsTypedMobile(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, open func(*testing.T) *store.Store) {
		ctx := context.Background()
		b := setup(t, open, 100)
		b.write(t, row("alice", "+447400123001"), row("bob", "+447400123002"))
		_, err := b.sync(t, importer.Request{})
		must(t, err)
		us := b.users(t)
		_, _, err = b.st.SetContact(ctx, b.tenant.ID, us["bob"].ID, nil, ptr("+447400123222"), rules.ProvenanceManual)
		must(t, err)
		_, err = b.st.SetSelfServe(ctx, b.tenant.ID, []int64{us["alice"].ID}, false)
		must(t, err)

		b.write(t, row("alice", "+447400123011"), row("bob", "+447400123012"))
		res, err := b.sync(t, importer.Request{})
		must(t, err)
		if res.Run.Updated != 1 || res.Run.Unchanged != 1 {
			t.Fatalf("re-import: %+v, want alice updated and bob unchanged", res.Run)
		}
		us = b.users(t)
		if us["alice"].Mobile != "+447400123011" {
			t.Errorf("alice's changed mobile not imported: %q", us["alice"].Mobile)
		}
		if us["bob"].Mobile != "+447400123222" || us["bob"].MobileSource != rules.ProvenanceManual {
			t.Errorf("bob's typed mobile overwritten: %q (%s)", us["bob"].Mobile, us["bob"].MobileSource)
		}
		if us["alice"].SelfServe {
			t.Error("an import turned an existing user's switch back on")
		}
	})
}

func TestRemovalsNeedCompleteRunAndConfirmation(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, open func(*testing.T) *store.Store) {
		b := setup(t, open, 3)
		var rows []string
		for i := range 10 {
			rows = append(rows, row(fmt.Sprintf("user%02d", i), ""))
		}
		b.write(t, rows...)
		_, err := b.sync(t, importer.Request{})
		must(t, err)

		// One of ten gone: within the 30% share, removed.
		b.write(t, rows[1:]...)
		res, err := b.sync(t, importer.Request{})
		must(t, err)
		if res.Run.Removed != 1 || b.users(t)["user00"].RemovedAt == nil {
			t.Fatalf("small removal: %+v", res.Run)
		}

		// The file breaks on a later page: the run fails and removes nothing.
		b.write(t, append(rows[1:4], "user99,Z\xffrn,Doe,,,true,false,,\n")...)
		res, err = b.sync(t, importer.Request{})
		if err == nil || res.Run.Status != store.RunFailed || res.Run.Removed != 0 {
			t.Fatalf("broken file: err=%v run=%+v, want failed with no removals", err, res.Run)
		}
		if n := present(b.users(t)); n != 9 {
			t.Fatalf("%d users present after a failed run, want 9", n)
		}

		// Six of nine gone: above the share, held for confirmation.
		b.write(t, rows[1:4]...)
		res, err = b.sync(t, importer.Request{})
		must(t, err)
		if res.Run.Status != store.RunNeedsConfirmation || res.Run.PendingRemovals != 6 || res.Run.Removed != 0 {
			t.Fatalf("large removal: %+v", res.Run)
		}
		if n := present(b.users(t)); n != 9 {
			t.Fatalf("%d users present after a held run, want 9", n)
		}
		res, err = b.sync(t, importer.Request{ConfirmRemovals: true})
		must(t, err)
		if res.Run.Status != store.RunSucceeded || res.Run.Removed != 6 || present(b.users(t)) != 3 {
			t.Fatalf("confirmed removal: %+v", res.Run)
		}

		// An empty file would remove everyone: held.
		b.write(t)
		res, err = b.sync(t, importer.Request{})
		must(t, err)
		if res.Run.Status != store.RunNeedsConfirmation || present(b.users(t)) != 3 {
			t.Fatalf("empty source: %+v", res.Run)
		}
	})
}

// A removal share of 0 (SELFSERVE_MAX_REMOVAL_SHARE=0) means no removal
// without confirmation: not even one user of a hundred.
func TestZeroRemovalShareHoldsEveryRemoval(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, open func(*testing.T) *store.Store) {
		b := setup(t, open, 50)
		b.im.MaxRemovalShare = 0
		var rows []string
		for i := range 100 {
			rows = append(rows, row(fmt.Sprintf("user%03d", i), ""))
		}
		b.write(t, rows...)
		_, err := b.sync(t, importer.Request{})
		must(t, err)
		b.write(t, rows[1:]...)
		res, err := b.sync(t, importer.Request{Full: true})
		must(t, err)
		if res.Run.Status != store.RunNeedsConfirmation || res.Run.PendingRemovals != 1 || res.Run.Removed != 0 {
			t.Fatalf("one of 100 gone with share 0: %+v, want held for confirmation", res.Run)
		}
		if n := present(b.users(t)); n != 100 {
			t.Fatalf("%d users present, want 100", n)
		}
		res, err = b.sync(t, importer.Request{Full: true, ConfirmRemovals: true})
		must(t, err)
		if res.Run.Status != store.RunSucceeded || res.Run.Removed != 1 {
			t.Fatalf("confirmed: %+v", res.Run)
		}
	})
}

// A row the connector cannot read is not a user gone from the source: its
// end user is kept when the row's key is readable, and when it is not, the
// run removes nobody and says why.
func TestUnreadableRowsRemoveNobody(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, open func(*testing.T) *store.Store) {
		const n, k = 3000, 1500 // k: the row that goes bad
		b := setup(t, open, 500)
		rows := make([]string, n)
		for i := range rows {
			rows[i] = row(fmt.Sprintf("user%04d", i), "")
		}
		b.write(t, rows...)
		_, err := b.sync(t, importer.Request{})
		must(t, err)
		victim := fmt.Sprintf("user%04d", k)

		// Two extra fields: the columns may be shifted, so which user the
		// row is cannot be told.
		edited := slices.Clone(rows)
		edited[k] = strings.TrimSuffix(rows[k], "\n") + ",oops,again\n"
		b.write(t, edited...)
		res, err := b.sync(t, importer.Request{Full: true})
		must(t, err)
		r := res.Run
		if r.Status != store.RunSucceeded || r.Invalid != 1 || r.Unidentified != 1 || r.Removed != 0 || !strings.Contains(r.Error, "no end user was removed") {
			t.Fatalf("run with an unidentified row: %+v", r)
		}
		if got, err := b.st.Run(context.Background(), b.tenant.ID, r.ID); err != nil || got.Unidentified != 1 || got.Error != r.Error {
			t.Fatalf("stored run: %+v, %v", got, err)
		}
		if u := b.users(t)[victim]; u.RemovedAt != nil {
			t.Fatalf("the end user of the unreadable row was removed: %+v", u)
		}

		// A bad value with a readable username, and another user really
		// gone: the first is kept, the second removed.
		edited = slices.Clone(rows)
		edited[k] = strings.Replace(rows[k], ",true,", ",maybe,", 1)
		edited = slices.Delete(edited, 10, 11)
		b.write(t, edited...)
		res, err = b.sync(t, importer.Request{Full: true})
		must(t, err)
		r = res.Run
		if r.Status != store.RunSucceeded || r.Invalid != 1 || r.Unidentified != 0 || r.Removed != 1 || r.Error != "" {
			t.Fatalf("run with an invalid but identified row: %+v", r)
		}
		us := b.users(t)
		if us[victim].RemovedAt != nil || us["user0010"].RemovedAt == nil || present(us) != n-1 {
			t.Fatalf("removals: %s removed at %v, user0010 removed at %v, %d present", victim, us[victim].RemovedAt, us["user0010"].RemovedAt, present(us))
		}
	})
}

// A file that breaks part way is not half applied: the run fails naming
// the row, and no end user has a value from the broken file.
func TestBrokenFileAppliesNothing(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, open func(*testing.T) *store.Store) {
		b := setup(t, open, 500)
		rows := make([]string, 3000)
		for i := range rows {
			rows[i] = row(fmt.Sprintf("user%04d", i), "")
		}
		b.write(t, rows...)
		_, err := b.sync(t, importer.Request{})
		must(t, err)

		renamed := make([]string, len(rows))
		for i, r := range rows {
			renamed[i] = strings.Replace(r, ",User", ",Renamed", 1)
		}
		renamed[2498] = `"` + renamed[2498] // row 2500: a quote never closed
		b.write(t, renamed...)
		res, err := b.sync(t, importer.Request{Full: true})
		if err == nil || res.Run.Status != store.RunFailed || !strings.Contains(res.Run.Error, "row 2500") {
			t.Fatalf("err=%v run=%+v, want a failed run naming row 2500", err, res.Run)
		}
		if res.Run.Pages != 0 || res.Run.Updated != 0 {
			t.Errorf("run applied pages of the broken file: %+v", res.Run)
		}
		for name, u := range b.users(t) {
			if !strings.HasPrefix(u.FirstName, "User") || u.RemovedAt != nil {
				t.Fatalf("%s changed by the broken file: first name %q, removed at %v", name, u.FirstName, u.RemovedAt)
			}
		}
	})
}

func present(us map[string]store.EndUser) int {
	n := 0
	for _, u := range us {
		if u.RemovedAt == nil {
			n++
		}
	}
	return n
}

func TestLockoutTransitions(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, open func(*testing.T) *store.Store) {
		b := setup(t, open, 100)
		b.write(t, row("alice", ""), row("bob", ""))
		_, err := b.sync(t, importer.Request{})
		must(t, err)
		locked := strings.Replace(row("alice", ""), "true,false", "true,true", 1)
		b.write(t, locked, row("bob", ""))
		res, err := b.sync(t, importer.Request{})
		must(t, err)
		if len(res.Lockouts) != 1 || res.Lockouts[0].EndUserID != b.users(t)["alice"].ID {
			t.Fatalf("lockouts %+v, want alice's", res.Lockouts)
		}
		res, err = b.sync(t, importer.Request{})
		must(t, err)
		if len(res.Lockouts) != 0 {
			t.Fatalf("still locked reported again: %+v", res.Lockouts)
		}
	})
}

func TestInterruptedRunResumes(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, open func(*testing.T) *store.Store) {
		b := setup(t, open, 2)
		var rows []string
		for i := range 7 {
			rows = append(rows, row(fmt.Sprintf("user%02d", i), ""))
		}
		b.write(t, rows...)
		ctx, cancel := context.WithCancel(context.Background())
		res, err := b.im.Sync(ctx, importer.Request{TenantID: b.tenant.ID, ConnectionID: b.conn.ID, KeepRunOnCancel: true,
			OnProgress: func(r store.SyncRun) {
				if r.Pages == 2 {
					cancel()
				}
			}})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("interrupted run: %v", err)
		}
		run, err := b.st.Run(context.Background(), b.tenant.ID, res.Run.ID)
		must(t, err)
		if run.Status != store.RunRunning || run.Resume == "" || run.Processed != 4 {
			t.Fatalf("interrupted run state: %+v", run)
		}
		res, err = b.sync(t, importer.Request{RunID: run.ID})
		must(t, err)
		if res.Run.Status != store.RunSucceeded || res.Run.Processed != 7 || res.Run.Created != 7 || res.Run.Pages != 4 {
			t.Fatalf("resumed run: %+v, want 7 processed over 4 pages", res.Run)
		}
		if n := present(b.users(t)); n != 7 {
			t.Fatalf("%d users after resume, want 7", n)
		}
	})
}

func ptr[T any](v T) *T { return &v }

// TestOversizedFieldsAreLimited: a 5 MB first name is cut to MaxNameBytes
// with a problem naming the field; an oversized username (the file's external id) refuses its record
// (naming the field); an oversized email is not used; the run's problems
// stay small.
func TestOversizedFieldsAreLimited(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, open func(*testing.T) *store.Store) {
		b := setup(t, open, 100)
		huge := strings.Repeat("é", 5<<20/2) // 5 MB of two-byte runes
		b.write(t,
			"alice,"+huge+",Doe,alice@contoso.example,,true,false,2026-11-01T09:00:00Z,2026-12-13T09:00:00Z\n",
			strings.Repeat("b", importer.MaxKeyBytes+1)+",Bob,Doe,bob@contoso.example,,true,false,,\n",
			"carol,Carol,Doe,"+strings.Repeat("c", importer.MaxEmailBytes)+"@contoso.example,,true,false,,\n")
		res, err := b.sync(t, importer.Request{Full: true})
		must(t, err)
		us := b.users(t)
		alice, carol := us["alice"], us["carol"]
		if len(alice.FirstName) != importer.MaxNameBytes || !strings.HasPrefix(huge, alice.FirstName) {
			t.Errorf("alice's first name: %d bytes stored, want the first %d", len(alice.FirstName), importer.MaxNameBytes)
		}
		if len(us) != 2 || carol.Email != "" {
			t.Errorf("end users %d, carol's email %q: want alice and carol, carol without an email", len(us), carol.Email)
		}
		var reasons []string
		for _, p := range res.Run.Problems() {
			reasons = append(reasons, p.Reason)
			if len(p.Ref)+len(p.Reason) > 1100 {
				t.Errorf("a problem of %d bytes", len(p.Ref)+len(p.Reason))
			}
		}
		all := strings.Join(reasons, "\n")
		for _, want := range []string{"first_name: 5242880 bytes, more than 256: cut to the first 256", "external_id: 1025 bytes, more than 1024: the record was skipped", "email: 336 bytes, more than 320: not used"} {
			if !strings.Contains(all, want) {
				t.Errorf("problems do not say %q:\n%s", want, all)
			}
		}
	})
}
