package storetest_test

import (
	"context"
	"encoding/json"
	"errors"
	"selfserve/internal/importer"
	"testing"
	"time"

	"selfserve/connectors"
	"selfserve/internal/rules"
	"selfserve/internal/store"
	"selfserve/internal/store/storetest"
)

// TestAdminMethods checks, on every backend, the store methods the admin
// API adds: create-only customers and connections (conflicts), PSA links,
// connection updates, token listings, app clients and single-use links, all
// scoped by tenant.
func TestAdminMethods(t *testing.T) {
	for _, be := range storetest.Backends() {
		t.Run(be.Name, func(t *testing.T) {
			t.Parallel()
			testAdminMethods(t, be.Open(t))
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func testAdminMethods(t *testing.T, s *store.Store) {
	ctx := context.Background()
	a, _, err := s.UpsertTenant(ctx, store.Tenant{Name: "a", Subscription: rules.SubscriptionBundle, SelfServe: true, TimeZone: "UTC", SendHour: 9, ReminderDays: 10})
	must(t, err)
	b, _, err := s.UpsertTenant(ctx, store.Tenant{Name: "b", Subscription: rules.SubscriptionBundle, SelfServe: true, TimeZone: "UTC", SendHour: 9, ReminderDays: 10})
	must(t, err)

	// Customers: create, duplicate, link, link conflicts, tenant scope.
	c1, err := s.CreateCustomer(ctx, store.Customer{TenantID: a.ID, Name: "Contoso", DefaultRegion: "GB"})
	must(t, err)
	if c1.Source != "manual" || c1.ID == 0 {
		t.Fatalf("created %+v", c1)
	}
	if _, err := s.CreateCustomer(ctx, store.Customer{TenantID: a.ID, Name: "Contoso"}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("duplicate customer: %v", err)
	}
	if _, err := s.CreateCustomer(ctx, store.Customer{TenantID: b.ID, Name: "Contoso"}); err != nil {
		t.Errorf("same name in another tenant: %v", err)
	}
	c2, err := s.CreateCustomer(ctx, store.Customer{TenantID: a.ID, Name: "Fabrikam"})
	must(t, err)
	before, after, err := s.LinkCustomer(ctx, a.ID, c1.ID, "itglue", "42")
	must(t, err)
	if before.ExternalID != "" || after.Source != "itglue" || after.ExternalID != "42" {
		t.Errorf("link: %+v → %+v", before, after)
	}
	if _, _, err := s.LinkCustomer(ctx, a.ID, c2.ID, "itglue", "42"); !errors.Is(err, store.ErrConflict) {
		t.Errorf("second customer with the same PSA id: %v", err)
	}
	if _, _, err := s.LinkCustomer(ctx, a.ID, c1.ID, "hudu", "7"); !errors.Is(err, store.ErrConflict) {
		t.Errorf("relinking a linked customer: %v", err)
	}
	if _, _, err := s.LinkCustomer(ctx, b.ID, c2.ID, "hudu", "7"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("linking another tenant's customer: %v", err)
	}

	// Connections: create, duplicate, update (cursor dropped when the
	// settings change, secrets kept or replaced).
	conn, err := s.CreateConnection(ctx, store.Connection{TenantID: a.ID, CustomerID: &c1.ID, Name: "c-local", Kind: connectors.KindFile,
		Settings: json.RawMessage(`{"path":"a.csv"}`), SealedSecrets: []byte("sealed-1"), ScheduleSeconds: 3600})
	must(t, err)
	if _, err := s.CreateConnection(ctx, store.Connection{TenantID: a.ID, Name: "c-local", Kind: connectors.KindFile}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("duplicate connection: %v", err)
	}
	must(t, s.SetConnectionCursor(ctx, a.ID, conn.ID, "cursor-1"))
	next := conn
	next.ScheduleSeconds = 600
	_, after2, err := s.UpdateConnection(ctx, next, true)
	must(t, err)
	if after2.Cursor != "cursor-1" || string(after2.SealedSecrets) != "sealed-1" || after2.ScheduleSeconds != 600 {
		t.Errorf("schedule change: %+v", after2)
	}
	next.Settings = json.RawMessage(`{"path":"b.csv"}`)
	next.SealedSecrets = []byte("sealed-2")
	_, after3, err := s.UpdateConnection(ctx, next, false)
	must(t, err)
	if after3.Cursor != "" || string(after3.SealedSecrets) != "sealed-2" {
		t.Errorf("settings change: cursor %q secrets %q", after3.Cursor, after3.SealedSecrets)
	}
	next.TenantID = b.ID
	if _, _, err := s.UpdateConnection(ctx, next, true); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("updating another tenant's connection: %v", err)
	}
	if n, err := s.CountConnectionUsers(ctx, a.ID, conn.ID); err != nil || n != 0 {
		t.Errorf("count: %d %v", n, err)
	}

	// Tokens of one login, or of all.
	l1, _, err := s.UpsertLogin(ctx, a.ID, "one@a.example", store.RoleSuper)
	must(t, err)
	l2, _, err := s.UpsertLogin(ctx, a.ID, "two@a.example", store.RoleHelpdesk)
	must(t, err)
	_, err = s.CreateAPIToken(ctx, a.ID, l1.ID, []byte("hash-1-0123456789012345678901234"), "ss_aaa", time.Time{})
	must(t, err)
	_, err = s.CreateAPIToken(ctx, a.ID, l2.ID, []byte("hash-2-0123456789012345678901234"), "ss_bbb", time.Time{})
	must(t, err)
	if ts, err := s.APITokens(ctx, a.ID, l1.ID); err != nil || len(ts) != 1 {
		t.Errorf("tokens of one login: %d %v", len(ts), err)
	}
	if ts, err := s.APITokens(ctx, a.ID, 0); err != nil || len(ts) != 2 {
		t.Errorf("tokens of the tenant: %d %v", len(ts), err)
	}
	if ts, err := s.APITokens(ctx, b.ID, 0); err != nil || len(ts) != 0 {
		t.Errorf("tokens seen from another tenant: %d %v", len(ts), err)
	}
	if ls, err := s.Logins(ctx, a.ID); err != nil || len(ls) != 2 {
		t.Errorf("logins: %d %v", len(ls), err)
	}

	// App clients.
	app, err := s.CreateAppClient(ctx, a.ID, "mobile", []byte("app-hash-012345678901234567890123"), "ssapp_x")
	must(t, err)
	if _, err := s.CreateAppClient(ctx, a.ID, "mobile", []byte("app-hash-other"), "ssapp_y"); !errors.Is(err, store.ErrConflict) {
		t.Errorf("duplicate app client: %v", err)
	}
	got, err := s.AuthenticateAppClient(ctx, []byte("app-hash-012345678901234567890123"))
	if err != nil || got.ID != app.ID || got.TenantID != a.ID {
		t.Errorf("authenticate app: %+v %v", got, err)
	}
	if _, err := s.AuthenticateAppClient(ctx, []byte("unknown")); !errors.Is(err, store.ErrTokenInvalid) {
		t.Errorf("unknown app token: %v", err)
	}
	if _, err := s.RevokeAppClient(ctx, b.ID, app.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("revoking another tenant's app: %v", err)
	}
	if _, err := s.RevokeAppClient(ctx, a.ID, app.ID); err != nil {
		t.Errorf("revoke: %v", err)
	}
	if _, err := s.RevokeAppClient(ctx, a.ID, app.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("revoke twice: %v", err)
	}
	if _, err := s.AuthenticateAppClient(ctx, []byte("app-hash-012345678901234567890123")); !errors.Is(err, store.ErrTokenInvalid) {
		t.Errorf("revoked app token: %v", err)
	}
	if cs, err := s.AppClients(ctx, a.ID); err != nil || len(cs) != 1 || cs[0].RevokedAt == nil {
		t.Errorf("app clients: %+v %v", cs, err)
	}

	// Single-use links: the second use collides, also when racing; a
	// rolled-back use leaves the link usable.
	run, err := s.CreateRun(ctx, a.ID, conn.ID, store.ModeFull, "test", store.RunRunning, false, 0)
	must(t, err)
	_, err = importer.ApplyPage(ctx, s, store.PageTarget{TenantID: a.ID, CustomerID: c1.ID, ConnectionID: conn.ID, RunID: run.ID, Source: rules.SourceLocal},
		[]store.UserRecord{{User: connectors.User{ExternalID: "u1", Username: "u1", Enabled: true}}}, nil)
	must(t, err)
	users, err := s.EndUsers(ctx, a.ID, store.EndUserFilter{})
	must(t, err)
	u := users[0]
	now := time.Now()
	rollback := errors.New("rollback")
	if err := s.InTx(ctx, func(tx *store.Store) error {
		if err := tx.UseLinkToken(ctx, a.ID, u.ID, "nonce-1", now); err != nil {
			return err
		}
		return rollback
	}); !errors.Is(err, rollback) {
		t.Fatalf("rolled back use: %v", err)
	}
	if err := s.UseLinkToken(ctx, b.ID, u.ID, "nonce-1", now); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("link for another tenant's end user: %v", err)
	}
	results := make(chan error, 4)
	for range 4 {
		go func() { results <- s.UseLinkToken(ctx, a.ID, u.ID, "nonce-1", now) }()
	}
	used, collided := 0, 0
	for range 4 {
		switch err := <-results; {
		case err == nil:
			used++
		case errors.Is(err, store.ErrLinkUsed):
			collided++
		default:
			t.Errorf("racing use: %v", err)
		}
	}
	if used != 1 || collided != 3 {
		t.Errorf("4 racing uses: %d succeeded, %d collided; want 1 and 3", used, collided)
	}
}
