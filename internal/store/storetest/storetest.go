// Package storetest is the conformance suite of package store: every
// database the store runs on (PostgreSQL, SQLite) passes the same checks of
// not-found and conflict errors, idempotent upserts, tenant scoping,
// provenance (the SQL guards agree with package rules), concurrent writers,
// and the sync engine's page writes (importer.ApplyPage, hybrid links).
package storetest

import (
	"context"
	"errors"
	"fmt"
	"selfserve/internal/importer"
	"strings"
	"sync"
	"testing"
	"time"

	"selfserve/connectors"
	"selfserve/internal/rules"
	"selfserve/internal/store"
)

// Run runs the suite. open returns a fresh, migrated, empty store.
func Run(t *testing.T, open func(t *testing.T) *store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s *store.Store)
	}{
		{"MigrateIsIdempotent", testMigrate},
		{"TenantUpsert", testTenantUpsert},
		{"LoginsAndTokens", testLoginsAndTokens},
		{"CustomersAndConnections", testCustomersAndConnections},
		{"TenantScoping", testTenantScoping},
		{"UserPageUpsert", testUserPageUpsert},
		{"ProvenanceKeepsHumanValues", testProvenance}, {"ContactGuardMirrorsRule", testContactGuard},
		{"Removals", testRemovals},
		{"RunsOneActivePerConnection", testRuns}, {"RunLeases", testRunLeases},
		{"ConcurrentWriters", testConcurrentWriters},
		{"BulkSelfServeAllOrNothing", testBulkSelfServe},
		{"AuditLog", testAudit},
		{"Privileged", testPrivileged}, {"TenantPrivilegedSelfServe", testTenantPrivilegedSelfServe},
		{"NoticeLedger", testNoticeLedger}, {"ScanCandidates", testScanCandidates}, {"CandidatesFollowRules", testCandidatesFollowRules},
		{"PSACustomerPage", testPSACustomerPage}, {"PSARuns", testPSARuns}, {"ContactFillsGuard", testContactFillsGuard},
		{"LinkADFirst", testLinkADFirst}, {"LinkEntraFirst", testLinkEntraFirst}, {"LinkFold", testLinkFold}, {"LinkPSAEitherOrder", testLinkPSAEitherOrder},
		{"LinkRemovals", testLinkRemovals}, {"SelfServe", testSelfServe}, {"LinkConcurrentSources", testLinkConcurrentSources},
		{"ConsoleAuth", testConsoleAuth}, {"EndUserPage", testEndUserPage}, {"ActiveSQL", testActiveSQL},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open(t))
		})
	}
}

// fixture is a tenant with a customer and a file connection.
type fixture struct {
	tenant   store.Tenant
	customer store.Customer
	conn     store.Connection
}

func newFixture(t *testing.T, s *store.Store, name string) fixture {
	t.Helper()
	ctx := context.Background()
	tn, _, err := s.UpsertTenant(ctx, store.Tenant{Name: name, Subscription: rules.SubscriptionBundle, SelfServe: true, TimeZone: "UTC", SendHour: 9, ReminderDays: 10})
	must(t, err)
	cu, _, err := s.UpsertCustomer(ctx, store.Customer{TenantID: tn.ID, Name: "Contoso", TimeZone: "Europe/London", DefaultRegion: "GB"})
	must(t, err)
	co, _, err := s.UpsertConnection(ctx, store.Connection{TenantID: tn.ID, CustomerID: &cu.ID, Name: name + "-local", Kind: connectors.KindFile,
		Settings: []byte(`{"path":"x.csv"}`), EnableSelfServe: true, ScheduleSeconds: 10800}, false)
	must(t, err)
	return fixture{tn, cu, co}
}

func (f fixture) target(runID int64) store.PageTarget {
	return store.PageTarget{TenantID: f.tenant.ID, CustomerID: f.customer.ID, ConnectionID: f.conn.ID, RunID: runID, Source: rules.SourceLocal, EnableSelfServe: f.conn.EnableSelfServe}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func user(id, mobile string) store.UserRecord {
	return store.UserRecord{User: connectors.User{
		ExternalID: id, Username: id, Email: id + "@contoso.example", Mobile: mobile, Enabled: true,
		PasswordLastSet:   time.Date(2026, 11, 1, 8, 30, 0, 0, time.UTC),
		PasswordExpiresAt: time.Date(2026, 12, 13, 8, 30, 0, 123456000, time.UTC),
	}}
}

func applyPage(t *testing.T, s *store.Store, f fixture, runID int64, recs ...store.UserRecord) store.PageResult {
	t.Helper()
	res, err := importer.ApplyPage(context.Background(), s, f.target(runID), recs, nil)
	must(t, err)
	return res
}

func endUsers(t *testing.T, s *store.Store, tenantID int64) map[string]store.EndUser {
	t.Helper()
	us, err := s.EndUsers(context.Background(), tenantID, store.EndUserFilter{IncludeRemoved: true})
	must(t, err)
	m := map[string]store.EndUser{}
	for _, u := range us {
		m[u.ExternalID] = u
	}
	return m
}

func testMigrate(t *testing.T, s *store.Store) {
	applied, err := s.Migrate(context.Background())
	must(t, err)
	if len(applied) != 0 {
		t.Fatalf("second Migrate applied %v, want nothing", applied)
	}
	// Readiness: every migration of this build is applied; one missing
	// (a database an older build migrated) is named.
	must(t, s.CheckSchema(context.Background()))
	if _, err := s.DB().Exec(`DELETE FROM schema_migrations WHERE version = 6`); err != nil {
		t.Fatal(err)
	}
	if err := s.CheckSchema(context.Background()); !errors.Is(err, store.ErrSchemaBehind) || !strings.Contains(err.Error(), "migrations 6 are not applied") {
		t.Fatalf("CheckSchema without migration 6: %v", err)
	}
}

func testTenantUpsert(t *testing.T, s *store.Store) {
	ctx := context.Background()
	want := store.Tenant{Name: "acme", Subscription: rules.SubscriptionQDesk, SelfServe: true, TimeZone: "America/New_York", SendHour: 9, ReminderDays: 10}
	a, changed, err := s.UpsertTenant(ctx, want)
	must(t, err)
	if !changed || a.ID == 0 {
		t.Fatalf("create: changed=%v id=%d", changed, a.ID)
	}
	b, changed, err := s.UpsertTenant(ctx, want)
	must(t, err)
	if changed || b.ID != a.ID {
		t.Fatalf("same upsert again: changed=%v id=%d, want unchanged %d", changed, b.ID, a.ID)
	}
	want.SelfServe = false
	c, changed, err := s.UpsertTenant(ctx, want)
	must(t, err)
	if !changed || c.SelfServe {
		t.Fatalf("override off: changed=%v self_serve=%v", changed, c.SelfServe)
	}
	got, err := s.Tenant(ctx, a.ID)
	must(t, err)
	if got.SelfServe || got.TimeZone != "America/New_York" || got.Subscription != rules.SubscriptionQDesk {
		t.Fatalf("stored tenant %+v", got)
	}
	if _, err := s.TenantByName(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing tenant: %v, want ErrNotFound", err)
	}
	if _, err := s.Tenant(ctx, 987654); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing tenant id: %v, want ErrNotFound", err)
	}
}

func testLoginsAndTokens(t *testing.T, s *store.Store) {
	ctx := context.Background()
	f := newFixture(t, s, "tokens")
	l, changed, err := s.UpsertLogin(ctx, f.tenant.ID, "Lead@Acme.example", store.RoleSuper)
	must(t, err)
	if !changed || l.Email != "lead@acme.example" {
		t.Fatalf("login %+v changed=%v", l, changed)
	}
	if _, changed, _ := s.UpsertLogin(ctx, f.tenant.ID, "lead@acme.example", store.RoleSuper); changed {
		t.Fatal("same login again reported a change")
	}
	tok, err := s.CreateAPIToken(ctx, f.tenant.ID, l.ID, []byte("hash-1"), "ss_abcd", time.Time{})
	must(t, err)
	got, _, err := s.Authenticate(ctx, []byte("hash-1"))
	must(t, err)
	if got.ID != l.ID || got.TenantID != f.tenant.ID {
		t.Fatalf("authenticated as %+v", got)
	}
	if _, _, err := s.Authenticate(ctx, []byte("hash-2")); !errors.Is(err, store.ErrTokenInvalid) {
		t.Fatalf("unknown token: %v", err)
	}
	must(t, s.RevokeAPIToken(ctx, f.tenant.ID, tok.ID))
	if _, _, err := s.Authenticate(ctx, []byte("hash-1")); !errors.Is(err, store.ErrTokenInvalid) {
		t.Fatalf("revoked token: %v", err)
	}
	if err := s.RevokeAPIToken(ctx, f.tenant.ID, tok.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("revoking twice: %v", err)
	}
	_, err = s.CreateAPIToken(ctx, f.tenant.ID, l.ID, []byte("hash-3"), "ss_efgh", time.Now().Add(-time.Minute))
	must(t, err)
	if _, _, err := s.Authenticate(ctx, []byte("hash-3")); !errors.Is(err, store.ErrTokenInvalid) {
		t.Fatalf("expired token: %v", err)
	}
	if _, err := s.CreateAPIToken(ctx, f.tenant.ID, 99999, []byte("hash-4"), "x", time.Time{}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("token for unknown login: %v", err)
	}
}

func testCustomersAndConnections(t *testing.T, s *store.Store) {
	ctx := context.Background()
	f := newFixture(t, s, "conns")
	if _, changed, err := s.UpsertCustomer(ctx, f.customer); err != nil || changed {
		t.Fatalf("same customer again: changed=%v err=%v", changed, err)
	}
	c := f.conn
	c.SealedSecrets = nil
	got, changed, err := s.UpsertConnection(ctx, c, false)
	must(t, err)
	if changed {
		t.Fatal("same connection again reported a change")
	}
	must(t, s.SetConnectionCursor(ctx, f.tenant.ID, f.conn.ID, "usn:42"))
	c.SealedSecrets = []byte("sealed")
	got, changed, err = s.UpsertConnection(ctx, c, false)
	must(t, err)
	if !changed || string(got.SealedSecrets) != "sealed" || got.Cursor != "usn:42" {
		t.Fatalf("new secrets: changed=%v secrets=%q cursor=%q", changed, got.SealedSecrets, got.Cursor)
	}
	c.SealedSecrets = nil
	c.Settings = []byte(`{"path": "other.csv"}`)
	got, changed, err = s.UpsertConnection(ctx, c, false)
	must(t, err)
	if !changed || string(got.SealedSecrets) != "sealed" || got.Cursor != "" {
		t.Fatalf("new settings: changed=%v secrets=%q cursor=%q (want secrets kept, cursor reset)", changed, got.SealedSecrets, got.Cursor)
	}
	if _, err := s.ConnectionByName(ctx, f.tenant.ID, "missing"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing connection: %v", err)
	}
	if _, err := s.Customer(ctx, f.tenant.ID, 424242); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing customer: %v", err)
	}
}

func testTenantScoping(t *testing.T, s *store.Store) {
	ctx := context.Background()
	a := newFixture(t, s, "tenant-a")
	b := newFixture(t, s, "tenant-b")
	applyPage(t, s, a, 1, user("alice", "+447700900001"))
	ua := endUsers(t, s, a.tenant.ID)["alice"]
	checks := map[string]error{}
	_, checks["customer"] = s.Customer(ctx, b.tenant.ID, a.customer.ID)
	_, checks["connection"] = s.Connection(ctx, b.tenant.ID, a.conn.ID)
	_, checks["end user"] = s.EndUser(ctx, b.tenant.ID, ua.ID)
	_, _, checks["set contact"] = s.SetContact(ctx, b.tenant.ID, ua.ID, nil, ptr("+447700900999"), rules.ProvenanceManual)
	_, checks["set self-serve"] = s.SetSelfServe(ctx, b.tenant.ID, []int64{ua.ID}, false)
	_, _, checks["first access"] = s.MarkFirstAccess(ctx, b.tenant.ID, ua.ID, time.Now())
	checks["cursor"] = s.SetConnectionCursor(ctx, b.tenant.ID, a.conn.ID, "x")
	_, checks["run"] = s.CreateRun(ctx, b.tenant.ID, a.conn.ID, store.ModeFull, "test", store.RunRunning, false, 0)
	for what, err := range checks {
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("tenant B reaching tenant A's %s: %v, want ErrNotFound", what, err)
		}
	}
	if n := len(endUsers(t, s, b.tenant.ID)); n != 0 {
		t.Errorf("tenant B lists %d end users of tenant A", n)
	}
	after := endUsers(t, s, a.tenant.ID)["alice"]
	if after.Mobile != "+447700900001" || !after.SelfServe || after.FirstAccessAt != nil {
		t.Errorf("tenant B changed tenant A's user: %+v", after)
	}
}

func testUserPageUpsert(t *testing.T, s *store.Store) {
	ctx := context.Background()
	f := newFixture(t, s, "upsert")
	run, err := s.CreateRun(ctx, f.tenant.ID, f.conn.ID, store.ModeFull, "test", store.RunRunning, false, 0)
	must(t, err)
	recs := []store.UserRecord{user("alice", "+447700900001"), user("bob", "")}
	res := applyPage(t, s, f, run.ID, recs...)
	if res.Created != 2 || res.Updated != 0 || res.Unchanged != 0 {
		t.Fatalf("first page: %+v", res)
	}
	// The same page in the same run (a run listing its source again after an
	// interruption) counts nobody twice; in the next run, both are unchanged.
	res = applyPage(t, s, f, run.ID, recs...)
	if res.Created != 0 || res.Updated != 0 || res.Unchanged != 0 {
		t.Fatalf("same page again in the same run: %+v, want nothing counted", res)
	}
	res = applyPage(t, s, f, run.ID+1, recs...)
	if res.Created != 0 || res.Updated != 0 || res.Unchanged != 2 {
		t.Fatalf("same page in the next run: %+v, want 2 unchanged", res)
	}
	got := endUsers(t, s, f.tenant.ID)
	alice := got["alice"]
	if alice.MobileSource != rules.ProvenanceDirectory || alice.EmailSource != rules.ProvenanceDirectory || !alice.SelfServe {
		t.Fatalf("alice: %+v", alice)
	}
	if alice.PasswordExpiresAt == nil || !alice.PasswordExpiresAt.Equal(recs[0].PasswordExpiresAt) {
		t.Fatalf("expiry %v, want %v", alice.PasswordExpiresAt, recs[0].PasswordExpiresAt)
	}
	// The switch of an existing user never changes with an import.
	_, err = s.SetSelfServe(ctx, f.tenant.ID, []int64{alice.ID}, false)
	must(t, err)
	changed := user("alice", "+447700900002")
	changed.LockedOut = true
	res = applyPage(t, s, f, run.ID+2, changed)
	if res.Updated != 1 || len(res.Lockouts) != 1 || res.Lockouts[0].EndUserID != alice.ID {
		t.Fatalf("changed page: %+v, want 1 update and alice's lockout", res)
	}
	alice = endUsers(t, s, f.tenant.ID)["alice"]
	if alice.Mobile != "+447700900002" || alice.SelfServe || !alice.LockedOut || alice.LockedOutAt == nil {
		t.Fatalf("alice after change: %+v", alice)
	}
	lockedAt := *alice.LockedOutAt
	res = applyPage(t, s, f, run.ID+3, changed)
	if res.Unchanged != 1 || len(res.Lockouts) != 0 {
		t.Fatalf("still locked: %+v, want unchanged and no new lockout", res)
	}
	if a := endUsers(t, s, f.tenant.ID)["alice"]; !a.LockedOutAt.Equal(lockedAt) {
		t.Fatalf("lockout time moved from %v to %v", lockedAt, a.LockedOutAt)
	}
}

func testProvenance(t *testing.T, s *store.Store) {
	ctx := context.Background()
	f := newFixture(t, s, "provenance")
	applyPage(t, s, f, 1, user("carol", "+447700900003"), user("dave", ""))
	us := endUsers(t, s, f.tenant.ID)
	_, _, err := s.SetContact(ctx, f.tenant.ID, us["carol"].ID, ptr("carol.typed@contoso.example"), ptr("+447700900333"), rules.ProvenanceManual)
	must(t, err)
	_, _, err = s.SetContact(ctx, f.tenant.ID, us["dave"].ID, nil, ptr("+447700900444"), rules.ProvenanceEndUser)
	must(t, err)
	// The directory changes both; the typed values must survive.
	carol, dave := user("carol", "+447700900009"), user("dave", "+447700900010")
	carol.Email = "carol.new@contoso.example"
	applyPage(t, s, f, 2, carol, dave)
	us = endUsers(t, s, f.tenant.ID)
	if c := us["carol"]; c.Email != "carol.typed@contoso.example" || c.Mobile != "+447700900333" || c.MobileSource != rules.ProvenanceManual {
		t.Errorf("carol's typed values lost: email %q mobile %q (%s)", c.Email, c.Mobile, c.MobileSource)
	}
	if d := us["dave"]; d.Mobile != "+447700900444" || d.MobileSource != rules.ProvenanceEndUser {
		t.Errorf("dave's own mobile lost: %q (%s)", d.Mobile, d.MobileSource)
	}
	// An unusable incoming mobile keeps the stored one.
	bad := user("dave", "12")
	bad.MobileInvalid = true
	applyPage(t, s, f, 3, bad)
	if d := endUsers(t, s, f.tenant.ID)["dave"]; d.Mobile != "+447700900444" {
		t.Errorf("invalid incoming mobile replaced the stored one: %q", d.Mobile)
	}
}

func testRemovals(t *testing.T, s *store.Store) {
	ctx := context.Background()
	f := newFixture(t, s, "removals")
	applyPage(t, s, f, 1, user("a", ""), user("b", ""), user("c", ""), user("d", ""))
	applyPage(t, s, f, 2, user("a", ""), user("b", ""), user("c", ""))
	present, unseen, err := s.RemovalCheck(ctx, f.tenant.ID, f.conn.ID, 2)
	must(t, err)
	if present != 4 || unseen != 1 {
		t.Fatalf("removal check: present=%d unseen=%d, want 4 and 1", present, unseen)
	}
	n, err := s.RemoveUnseen(ctx, f.tenant.ID, f.conn.ID, 2)
	must(t, err)
	if n != 1 || endUsers(t, s, f.tenant.ID)["d"].RemovedAt == nil {
		t.Fatalf("removed %d, want d removed", n)
	}
	// d comes back: restored.
	res := applyPage(t, s, f, 3, user("d", ""))
	if res.Updated != 1 || endUsers(t, s, f.tenant.ID)["d"].RemovedAt != nil {
		t.Fatalf("d not restored: %+v", res)
	}
	// A delta removal.
	res, err = importer.ApplyPage(ctx, s, f.target(4), nil, []connectors.Removal{{ExternalID: "a", Permanent: true}, {ExternalID: "unknown"}})
	must(t, err)
	if res.Removed != 1 || endUsers(t, s, f.tenant.ID)["a"].RemovedAt == nil {
		t.Fatalf("delta removal: %+v", res)
	}
}

// testRunLeases: a running run is held by the process that started it
// while its heartbeat beats; a run whose heartbeat stopped for
// HeartbeatTimeout, or whose lease was released, is taken over by the next
// StartRun, and the old holder's writes are then refused.
func testRunLeases(t *testing.T, s *store.Store) {
	ctx := context.Background()
	f := newFixture(t, s, "leases")
	clock := time.Now()
	s.SetClock(func() time.Time { return clock })
	defer s.SetClock(time.Now)
	held, err := s.CreateRun(ctx, f.tenant.ID, f.conn.ID, store.ModeFull, "cli", store.RunRunning, false, time.Hour)
	must(t, err)
	held.Pages, held.Processed = 3, 60
	must(t, s.SaveRunProgress(ctx, &held))

	// Held: the refusal says since when, how far and the last heartbeat.
	clock = clock.Add(store.HeartbeatTimeout - time.Second)
	if !held.Claimable(clock.Add(2*time.Second)) || held.Claimable(clock) {
		t.Fatalf("claimable before/after the timeout: %v/%v", held.Claimable(clock), held.Claimable(clock.Add(2*time.Second)))
	}
	_, err = s.CreateRun(ctx, f.tenant.ID, f.conn.ID, store.ModeFull, "cli", store.RunRunning, false, time.Hour)
	var active *store.ActiveRunError
	if !errors.As(err, &active) || !errors.Is(err, store.ErrRunActive) || active.Run.ID != held.ID {
		t.Fatalf("second run: %v, want an ActiveRunError naming run %d", err, held.ID)
	}
	for _, want := range []string{"running since " + held.StartedAt.UTC().Format(time.RFC3339), "3 pages, 60 processed", "last heartbeat 29s ago"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal %q does not say %q", err, want)
		}
	}
	if _, err := s.StartRun(ctx, f.tenant.ID, held.ID); !errors.As(err, &active) {
		t.Fatalf("starting a held run: %v, want an ActiveRunError", err)
	}
	must(t, s.BeatRun(ctx, &held))

	// The heartbeat stops: the next StartRun takes the run over, with its
	// progress, and the old holder can no longer write.
	clock = clock.Add(store.HeartbeatTimeout + time.Second)
	taken, err := s.StartRun(ctx, f.tenant.ID, held.ID)
	must(t, err)
	if taken.Lease == "" || taken.Lease == held.Lease || taken.Pages != 3 || taken.Processed != 60 {
		t.Fatalf("taken over: %+v", taken)
	}
	if err := s.BeatRun(ctx, &held); !errors.Is(err, store.ErrLeaseLost) {
		t.Fatalf("old holder's heartbeat: %v, want ErrLeaseLost", err)
	}
	held.Pages = 99
	if err := s.SaveRunProgress(ctx, &held); !errors.Is(err, store.ErrLeaseLost) {
		t.Fatalf("old holder's progress: %v, want ErrLeaseLost", err)
	}
	held.Status = store.RunFailed
	if err := s.FinishRun(ctx, &held); !errors.Is(err, store.ErrLeaseLost) {
		t.Fatalf("old holder's finish: %v, want ErrLeaseLost", err)
	}

	// Released (its task went back to the queue): taken at once.
	must(t, s.ReleaseRun(ctx, &taken))
	again, err := s.StartRun(ctx, f.tenant.ID, held.ID)
	must(t, err)
	if got, _ := s.Run(ctx, f.tenant.ID, held.ID); got.Pages != 3 || got.Status != store.RunRunning {
		t.Fatalf("run after the takeovers: %+v", got)
	}
	again.Status = store.RunSucceeded
	must(t, s.FinishRun(ctx, &again))
	if got, _ := s.Run(ctx, f.tenant.ID, held.ID); got.Status != store.RunSucceeded || got.Lease != "" {
		t.Fatalf("finished run: %+v", got)
	}
}

func testRuns(t *testing.T, s *store.Store) {
	ctx := context.Background()
	f := newFixture(t, s, "runs")
	r1, err := s.CreateRun(ctx, f.tenant.ID, f.conn.ID, store.ModeFull, "api", store.RunQueued, false, time.Hour)
	must(t, err)
	if _, err := s.CreateRun(ctx, f.tenant.ID, f.conn.ID, store.ModeFull, "api", store.RunQueued, false, time.Hour); !errors.Is(err, store.ErrRunActive) || !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second active run: %v, want ErrRunActive", err)
	}
	started, err := s.StartRun(ctx, f.tenant.ID, r1.ID)
	must(t, err)
	if started.Status != store.RunRunning || started.StartedAt == nil {
		t.Fatalf("started run %+v", started)
	}
	started.Processed, started.Created, started.Resume = 10, 10, "row 11"
	started.AddProblems(store.Problem{Ref: "row 3", Reason: "bad boolean"})
	must(t, s.SaveRunProgress(ctx, &started))
	got, err := s.Run(ctx, f.tenant.ID, r1.ID)
	must(t, err)
	if got.Processed != 10 || got.Resume != "row 11" || len(got.Problems()) != 1 {
		t.Fatalf("progress not saved: %+v", got)
	}
	got.Status = store.RunSucceeded
	must(t, s.FinishRun(ctx, &got))
	if _, err := s.StartRun(ctx, f.tenant.ID, r1.ID); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("starting a finished run: %v", err)
	}
	// A run that stopped beating is taken over.
	stale, err := s.CreateRun(ctx, f.tenant.ID, f.conn.ID, store.ModeFull, "api", store.RunRunning, false, time.Hour)
	must(t, err)
	s.SetClock(func() time.Time { return time.Now().Add(2 * time.Hour) })
	defer s.SetClock(time.Now)
	fresh, err := s.CreateRun(ctx, f.tenant.ID, f.conn.ID, store.ModeFull, "api", store.RunRunning, false, time.Hour)
	must(t, err)
	old, err := s.Run(ctx, f.tenant.ID, stale.ID)
	must(t, err)
	if old.Status != store.RunFailed || fresh.ID == stale.ID {
		t.Fatalf("stale run %d is %s, want failed (abandoned)", old.ID, old.Status)
	}
	runs, err := s.Runs(ctx, f.tenant.ID, f.conn.ID, 10)
	must(t, err)
	if len(runs) != 3 || runs[0].ID != fresh.ID {
		t.Fatalf("runs listing: %d runs, first %d", len(runs), runs[0].ID)
	}
}

func testConcurrentWriters(t *testing.T, s *store.Store) {
	ctx := context.Background()
	f := newFixture(t, s, "concurrent")
	// Many goroutines race to start a run of one connection: exactly one wins.
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins, conflicts := 0, 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.CreateRun(ctx, f.tenant.ID, f.conn.ID, store.ModeFull, "test", store.RunQueued, false, time.Hour)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case errors.Is(err, store.ErrRunActive):
				conflicts++
			default:
				t.Errorf("CreateRun: %v", err)
			}
		}()
	}
	wg.Wait()
	if wins != 1 || conflicts != 7 {
		t.Fatalf("%d runs started and %d conflicts, want 1 and 7", wins, conflicts)
	}
	// Writers of overlapping pages in parallel, each in its own transaction.
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var recs []store.UserRecord
			for i := range 50 {
				recs = append(recs, user(fmt.Sprintf("u%03d", (w*25+i)%120), ""))
			}
			err := s.InTx(ctx, func(tx *store.Store) error {
				_, err := importer.ApplyPage(ctx, tx, f.target(int64(w+1)), recs, nil)
				return err
			})
			if err != nil {
				t.Errorf("writer %d: %v", w, err)
			}
		}()
	}
	wg.Wait()
	if n := len(endUsers(t, s, f.tenant.ID)); n != 120 {
		t.Fatalf("%d end users after concurrent writers, want 120", n)
	}
}

func testBulkSelfServe(t *testing.T, s *store.Store) {
	ctx := context.Background()
	f := newFixture(t, s, "bulk")
	applyPage(t, s, f, 1, user("a", ""), user("b", ""))
	us := endUsers(t, s, f.tenant.ID)
	_, err := s.SetSelfServe(ctx, f.tenant.ID, []int64{us["a"].ID, 777777, us["b"].ID}, false)
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("bulk with an unknown id: %v, want ErrNotFound", err)
	}
	for id, u := range endUsers(t, s, f.tenant.ID) {
		if !u.SelfServe {
			t.Errorf("%s changed although the bulk change failed", id)
		}
	}
	before, err := s.SetSelfServe(ctx, f.tenant.ID, []int64{us["a"].ID, us["b"].ID}, false)
	must(t, err)
	if len(before) != 2 || !before[0].SelfServe {
		t.Fatalf("before: %+v", before)
	}
	for id, u := range endUsers(t, s, f.tenant.ID) {
		if u.SelfServe {
			t.Errorf("%s still on", id)
		}
	}
}

func testAudit(t *testing.T, s *store.Store) {
	ctx := context.Background()
	f := newFixture(t, s, "audit")
	other := newFixture(t, s, "audit-other")
	must(t, s.Audit(ctx, store.AuditRecord{
		TenantID:   f.tenant.ID,
		Actor:      "lead@acme.example",
		Action:     "tenant.self_serve",
		ObjectType: "tenant",
		ObjectID:   "1",
		Before:     map[string]bool{"self_serve": true},
		After:      map[string]bool{"self_serve": false},
	}))
	must(t, s.Audit(ctx, store.AuditRecord{
		TenantID:   f.tenant.ID,
		Actor:      "lead@acme.example",
		Action:     "end_user.mobile",
		ObjectType: "end_user",
		ObjectID:   "7",
		After:      "+447700900001",
	}))
	must(t, s.Audit(ctx, store.AuditRecord{TenantID: other.tenant.ID, Actor: "x", Action: "tenant.self_serve", ObjectType: "tenant", ObjectID: "2"}))
	all, err := s.AuditLog(ctx, f.tenant.ID, store.AuditFilter{})
	must(t, err)
	if len(all) != 2 || all[0].Action != "end_user.mobile" {
		t.Fatalf("audit log: %+v", all)
	}
	only, err := s.AuditLog(ctx, f.tenant.ID, store.AuditFilter{Action: "tenant.self_serve"})
	must(t, err)
	if len(only) != 1 || only[0].Before != `{"self_serve":true}` || only[0].After != `{"self_serve":false}` {
		t.Fatalf("filtered audit log: %+v", only)
	}
}

func ptr[T any](v T) *T { return &v }
