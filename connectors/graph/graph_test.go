package graph_test

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"selfserve/connectors"
	"selfserve/connectors/connectortest"
	"selfserve/connectors/graph"
	"selfserve/connectors/graph/fakegraph"
	"selfserve/internal/redact"
)

// azureSource is what an opened azure connection offers.
type azureSource interface {
	connectors.DeltaSource
	connectors.Pinger
}

type fixture struct {
	srv *fakegraph.Server
	cfg graph.Config
}

// newFixture starts a fake Graph and a Config pointing at it.
func newFixture(t *testing.T, opts fakegraph.Options) *fixture {
	t.Helper()
	srv := fakegraph.New(opts)
	t.Cleanup(srv.Close)
	ca, err := srv.WriteCAFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{srv: srv, cfg: graph.Config{
		AzureTenantID:     srv.TenantID(),
		ClientID:          srv.ClientID(),
		ClientSecret:      redact.Secret(srv.ClientSecret()),
		GraphURL:          srv.GraphURL(),
		AuthorityURL:      srv.AuthorityURL(),
		CAFile:            ca,
		RequestsPerSecond: 1000, // the budget has its own test
	}}
}

// open opens a source on a copy of the fixture's config changed by edit.
func (f *fixture) open(t *testing.T, edit ...func(*graph.Config)) azureSource {
	t.Helper()
	cfg := f.cfg
	for _, e := range edit {
		e(&cfg)
	}
	src, err := cfg.Open(connectors.Env{ID: "test", Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = src.Close() })
	return src.(azureSource)
}

// collect runs a listing to its end.
func collect(seq iter.Seq2[connectors.UserPage, error]) ([]connectors.UserPage, error) {
	var pages []connectors.UserPage
	for p, err := range seq {
		if err != nil {
			return pages, err
		}
		pages = append(pages, p)
	}
	return pages, nil
}

func mustCollect(t *testing.T, seq iter.Seq2[connectors.UserPage, error]) []connectors.UserPage {
	t.Helper()
	pages, err := collect(seq)
	if err != nil {
		t.Fatalf("listing failed after %d pages: %v", len(pages), err)
	}
	return pages
}

// flatten returns the users (by external id), invalid records and removals
// of pages.
func flatten(pages []connectors.UserPage) (map[string]connectors.User, []connectors.InvalidRecord, []connectors.Removal) {
	users := map[string]connectors.User{}
	var invalid []connectors.InvalidRecord
	var removed []connectors.Removal
	for _, p := range pages {
		for _, u := range p.Users {
			users[u.ExternalID] = u
		}
		invalid = append(invalid, p.Invalid...)
		removed = append(removed, p.Removed...)
	}
	return users, invalid, removed
}

func lastCursor(t *testing.T, pages []connectors.UserPage) string {
	t.Helper()
	if len(pages) == 0 {
		t.Fatal("no pages")
	}
	for _, p := range pages[:len(pages)-1] {
		if p.Cursor != "" {
			t.Fatalf("a page before the last carries a cursor %q", p.Cursor)
		}
	}
	c := pages[len(pages)-1].Cursor
	if c == "" {
		t.Fatal("the last page carries no cursor")
	}
	return c
}

func TestConformance(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fakegraph.Options{Users: 2100})
	f.srv.AddUser(fakegraph.User{DisplayName: "No UPN", AccountEnabled: true})
	f.srv.AddUser(fakegraph.User{UserPrincipalName: "bad.date@contoso.example", LastPasswordChangeDateTime: "yesterday", AccountEnabled: true})
	connectortest.RunUserSource(t, connectortest.UserSourceCase{
		Open:        func(t *testing.T) connectors.UserSource { return f.open(t) },
		WantUsers:   2100,
		WantInvalid: 2,
		MinPages:    3,
	})
}

// An invalid user still names its id, so that a full sync keeps its end
// user rather than removing it.
func TestInvalidUsersCarryTheirID(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fakegraph.Options{Users: 3})
	noUPN := f.srv.AddUser(fakegraph.User{DisplayName: "No UPN", AccountEnabled: true})
	badDate := f.srv.AddUser(fakegraph.User{UserPrincipalName: "bad.date@contoso.example", LastPasswordChangeDateTime: "yesterday", AccountEnabled: true})
	_, invalid, _ := flatten(mustCollect(t, f.open(t).Users(context.Background(), "")))
	var got []string
	for _, inv := range invalid {
		got = append(got, inv.ExternalID)
	}
	if want := []string{noUPN.ID, badDate.ID}; !slices.Equal(got, want) {
		t.Fatalf("invalid records' ids %q, want %q", got, want)
	}
}

func TestUsersPagingAndResume(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fakegraph.Options{Users: 450})
	src := f.open(t, func(c *graph.Config) { c.PageSize = 100 })
	pages := mustCollect(t, src.Users(context.Background(), ""))
	if len(pages) != 5 {
		t.Fatalf("got %d pages of 100, want 5", len(pages))
	}
	for i, p := range pages[:4] {
		if p.Resume == "" || len(p.Users) != 100 {
			t.Errorf("page %d: %d users, resume %q; want 100 users and a resume position", i+1, len(p.Users), p.Resume)
		}
	}
	if pages[4].Resume != "" {
		t.Errorf("the last page has a resume position %q", pages[4].Resume)
	}
	lastCursor(t, pages)
	all, _, _ := flatten(pages)
	if len(all) != 450 {
		t.Fatalf("got %d distinct users, want 450", len(all))
	}

	// An interrupted run resumes after its last committed page.
	resumed := mustCollect(t, src.Users(context.Background(), pages[1].Resume))
	got, _, _ := flatten(resumed)
	if len(resumed) != 3 || len(got) != 250 {
		t.Fatalf("resumed after page 2: %d pages, %d users; want 3 pages, 250 users", len(resumed), len(got))
	}
	for id := range got {
		if _, ok := all[id]; !ok {
			t.Errorf("resumed listing yields unknown user %s", id)
		}
	}
	if c := lastCursor(t, resumed); c != lastCursor(t, pages) {
		t.Errorf("resumed run's cursor %q differs from the run's delta link %q", c, lastCursor(t, pages))
	}

	// A resume position Graph no longer honours, or a foreign one, starts over.
	f.srv.ExpireDeltaTokens()
	for _, resume := range []string{`{"next":"` + f.srv.GraphURL() + `/users?$skiptoken=garbage","delta":"` + f.srv.GraphURL() + `/users/delta?$deltatoken=x"}`, "not json"} {
		again := mustCollect(t, src.Users(context.Background(), resume))
		if n, _, _ := flatten(again); len(n) != 450 {
			t.Errorf("resume %q: got %d users, want a fresh listing of 450", resume, len(n))
		}
	}
}

func TestUsersRequestShape(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fakegraph.Options{Users: 10})
	mustCollect(t, f.open(t).Users(context.Background(), ""))
	if n := f.srv.Requests("domains"); n != 1 {
		t.Errorf("GET /domains ran %d times, want once per run", n)
	}
	if n := f.srv.Requests("users/delta"); n != 1 {
		t.Errorf("GET /users/delta ran %d times, want once ($deltatoken=latest)", n)
	}
	if n := f.srv.Requests("phoneMethods"); n != 0 {
		t.Errorf("phone methods read %d times with fetch_auth_phone off", n)
	}
}

func int32p(v int32) *int32 { return &v }

func TestExpiryAndMapping(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fakegraph.Options{Domains: []fakegraph.Domain{
		{ID: "default.example"},
		{ID: "long.example", PasswordValidityPeriodInDays: int32p(180)},
		{ID: "never.example", PasswordValidityPeriodInDays: int32p(fakegraph.NeverExpires)},
	}})
	changed := "2026-05-01T08:30:00Z"
	at := time.Date(2026, 5, 1, 8, 30, 0, 0, time.UTC)
	add := func(u fakegraph.User) string {
		if u.LastPasswordChangeDateTime == "" {
			u.LastPasswordChangeDateTime = changed
		}
		u.AccountEnabled = true
		return f.srv.AddUser(u).ID
	}
	unset := add(fakegraph.User{UserPrincipalName: "ann@default.example", Mail: "ann@default.example", MobilePhone: "+1 555 0100", BusinessPhones: []string{"+1 555 0199"}})
	long := add(fakegraph.User{UserPrincipalName: "bob@LONG.example"})
	never := add(fakegraph.User{UserPrincipalName: "cat@never.example"})
	policy := add(fakegraph.User{UserPrincipalName: "dan@default.example", PasswordPolicies: "DisableStrongPassword, DisablePasswordExpiration"})
	synced := add(fakegraph.User{UserPrincipalName: "eve@default.example", OnPremisesSyncEnabled: true, OnPremisesImmutableID: "AAECAwQFBgcICQoLDA0ODw==", OnPremisesSamAccountName: "EVE01"})
	officeOnly := add(fakegraph.User{UserPrincipalName: "fay@default.example", BusinessPhones: []string{"+1 555 0177"}})
	disabled := f.srv.AddUser(fakegraph.User{UserPrincipalName: "gus@default.example", LastPasswordChangeDateTime: changed}).ID
	noDate := f.srv.AddUser(fakegraph.User{UserPrincipalName: "hal@default.example", AccountEnabled: true}).ID
	add(fakegraph.User{UserPrincipalName: "ivy@unknown.example"})
	add(fakegraph.User{UserPrincipalName: "jo@default.example", LastPasswordChangeDateTime: "2026-13-45T99:00:00Z"})
	add(fakegraph.User{UserPrincipalName: ""})
	add(fakegraph.User{UserPrincipalName: "nodomain"})

	users, invalid, _ := flatten(mustCollect(t, f.open(t).Users(context.Background(), "")))
	day := 24 * time.Hour
	checks := []struct {
		name      string
		id        string
		expiresAt time.Time
		never     bool
	}{
		{"domain validity unset: 90 days", unset, at.Add(90 * day), false},
		{"domain validity 180 days (domain matched case-insensitively)", long, at.Add(180 * day), false},
		{"domain validity 2147483647: never", never, time.Time{}, true},
		{"DisablePasswordExpiration: never", policy, time.Time{}, true},
		{"synced from AD: unknown, AD decides", synced, time.Time{}, false},
		{"no lastPasswordChangeDateTime: unknown", noDate, time.Time{}, false},
	}
	for _, c := range checks {
		u, ok := users[c.id]
		if !ok {
			t.Errorf("%s: user missing", c.name)
			continue
		}
		if !u.PasswordExpiresAt.Equal(c.expiresAt) || u.PasswordNeverExpires != c.never {
			t.Errorf("%s: expires %v never %v; want %v never %v", c.name, u.PasswordExpiresAt, u.PasswordNeverExpires, c.expiresAt, c.never)
		}
		if c.id != noDate && !u.PasswordLastSet.Equal(at) {
			t.Errorf("%s: password last set %v, want %v", c.name, u.PasswordLastSet, at)
		}
	}

	if u := users[unset]; u.Username != "ann" || u.Email != "ann@default.example" || u.Mobile != "+1 555 0100" || !u.Enabled || u.SyncedFromOnPremises || u.UPN != "ann@default.example" {
		t.Errorf("cloud user mapped as %+v", u)
	}
	if u := users[synced]; u.Username != "EVE01" || !u.SyncedFromOnPremises || u.ImmutableID != "AAECAwQFBgcICQoLDA0ODw==" {
		t.Errorf("synced user mapped as %+v", u)
	}
	if u := users[officeOnly]; u.Mobile != "" || u.Email != "" {
		t.Errorf("business phone taken as mobile, or UPN as email: %+v", u)
	}
	if u := users[disabled]; u.Enabled || u.LockedOut {
		t.Errorf("disabled user mapped as enabled=%v locked=%v", u.Enabled, u.LockedOut)
	}

	wantReasons := []string{"not a domain of the tenant", "not an RFC 3339 date", "no userPrincipalName", "not of the form name@domain"}
	if len(invalid) != len(wantReasons) {
		t.Fatalf("got %d invalid records, want %d: %+v", len(invalid), len(wantReasons), invalid)
	}
	for _, want := range wantReasons {
		found := false
		for _, r := range invalid {
			found = found || strings.Contains(r.Reason, want) && r.Ref != ""
		}
		if !found {
			t.Errorf("no invalid record with reason %q and a ref in %+v", want, invalid)
		}
	}
}

func TestDelta(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fakegraph.Options{Users: 30, DeltaPageSize: 2})
	src := f.open(t)
	cursor := lastCursor(t, mustCollect(t, src.Users(context.Background(), "")))

	// Nothing changed: one empty page with a new cursor. Graph may write
	// the function's qualified name in its links: such a cursor is valid.
	qualified := strings.Replace(cursor, "/users/delta?", "/users/microsoft.graph.delta()?", 1)
	pages := mustCollect(t, src.Changes(context.Background(), qualified))
	if users, _, removed := flatten(pages); len(users)+len(removed) != 0 {
		t.Fatalf("no changes, but got %d users and %d removals", len(users), len(removed))
	}
	cursor = lastCursor(t, pages)
	if !strings.Contains(cursor, "/users/microsoft.graph.delta()?") {
		t.Fatalf("the fake did not echo the qualified name: %s", cursor)
	}

	added := f.srv.AddUser(fakegraph.User{UserPrincipalName: "new@contoso.example", AccountEnabled: true, LastPasswordChangeDateTime: "2026-05-01T00:00:00Z"})
	changedID := f.srv.UserAt(3).ID
	if err := f.srv.UpdateUser(changedID, func(u *fakegraph.User) { u.MobilePhone = "+44 7700 900123" }); err != nil {
		t.Fatal(err)
	}
	soft, hard := f.srv.UserAt(4).ID, f.srv.UserAt(5).ID
	if err := f.srv.DeleteUser(soft, false); err != nil {
		t.Fatal(err)
	}
	if err := f.srv.DeleteUser(hard, true); err != nil {
		t.Fatal(err)
	}

	pages = mustCollect(t, src.Changes(context.Background(), cursor))
	if len(pages) < 2 {
		t.Errorf("4 changes at 2 per page came in %d page(s)", len(pages))
	}
	next := lastCursor(t, pages)
	users, invalid, removed := flatten(pages)
	if len(users) != 2 || len(invalid) != 0 {
		t.Fatalf("got users %v and invalid %v, want the added and the changed user", users, invalid)
	}
	if users[added.ID].UPN != "new@contoso.example" {
		t.Errorf("added user missing: %v", users)
	}
	if users[changedID].Mobile != "+44 7700 900123" {
		t.Errorf("changed user has mobile %q", users[changedID].Mobile)
	}
	wantRemoved := map[string]bool{soft: false, hard: true}
	if len(removed) != 2 {
		t.Fatalf("got removals %+v, want %s (soft) and %s (permanent)", removed, soft, hard)
	}
	for _, r := range removed {
		if perm, ok := wantRemoved[r.ExternalID]; !ok || perm != r.Permanent {
			t.Errorf("removal %+v, want permanent=%v", r, perm)
		}
	}

	// A soft-deleted user deleted for good later is reported again, permanently.
	if err := f.srv.DeleteUser(soft, true); err != nil {
		t.Fatal(err)
	}
	_, _, removed = flatten(mustCollect(t, src.Changes(context.Background(), next)))
	if len(removed) != 1 || removed[0].ExternalID != soft || !removed[0].Permanent {
		t.Errorf("got removals %+v, want %s permanently", removed, soft)
	}
}

func TestChangesMadeDuringAFullListingAreNotLost(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fakegraph.Options{Users: 20})
	src := f.open(t, func(c *graph.Config) { c.PageSize = 5 })
	var pages []connectors.UserPage
	var target string
	for p, err := range src.Users(context.Background(), "") {
		if err != nil {
			t.Fatal(err)
		}
		if len(pages) == 1 {
			// Change a user on an already listed page while the run goes on.
			target = f.srv.UserAt(0).ID
			if err := f.srv.UpdateUser(target, func(u *fakegraph.User) { u.Mail = "changed@contoso.example" }); err != nil {
				t.Fatal(err)
			}
		}
		pages = append(pages, p)
	}
	users, _, _ := flatten(mustCollect(t, src.Changes(context.Background(), lastCursor(t, pages))))
	if users[target].Email != "changed@contoso.example" {
		t.Fatalf("the change made during the listing is not in the next delta: %v", users)
	}
}

func TestStaleCursorNeedsResync(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fakegraph.Options{Users: 5})
	src := f.open(t)
	cursor := lastCursor(t, mustCollect(t, src.Users(context.Background(), "")))
	f.srv.ExpireDeltaTokens()
	for name, c := range map[string]string{
		"expired token":   cursor,
		"unknown token":   f.srv.GraphURL() + "/users/delta?$deltatoken=bm90LWEtdG9rZW4",
		"empty cursor":    "",
		"not a delta URL": f.srv.GraphURL() + "/users",
		"another host":    "https://graph.example.net/v1.0/users/delta?$deltatoken=x",
	} {
		_, err := collect(src.Changes(context.Background(), c))
		if !errors.Is(err, connectors.ErrResyncRequired) {
			t.Errorf("%s: got %v, want ErrResyncRequired", name, err)
		}
	}
	if !strings.Contains(fmt.Sprint(collect(src.Changes(context.Background(), cursor))), "syncStateNotFound") {
		t.Error("the resync error does not quote Graph's code")
	}
}

func TestThrottling(t *testing.T) {
	t.Parallel()
	t.Run("short Retry-After is ridden out", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, fakegraph.Options{Users: 30})
		f.srv.InjectFault(fakegraph.Fault{Path: "/v1.0/users", After: 2, Status: 429, RetryAfter: time.Second})
		start := time.Now()
		pages := mustCollect(t, f.open(t, func(c *graph.Config) { c.PageSize = 10 }).Users(context.Background(), ""))
		if users, _, _ := flatten(pages); len(users) != 30 {
			t.Errorf("got %d users, want 30", len(users))
		}
		if d := time.Since(start); d < time.Second {
			t.Errorf("listing took %v: the Retry-After of 1s was not honoured", d)
		}
	})
	// An inline run (a ThrottleWaiter in the context) hands every 429 to
	// the run's waiter, which shows it, and asks for the same page again.
	for _, retryAfter := range []time.Duration{5 * time.Second, 0} {
		t.Run(fmt.Sprintf("inline run waits, Retry-After %s", retryAfter), func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, fakegraph.Options{Users: 30})
			f.srv.InjectFault(fakegraph.Fault{Path: "/v1.0/users", After: 2, Status: 429, RetryAfter: retryAfter})
			var waits []time.Duration
			var said []string
			budget := &connectors.ThrottleBudget{
				Max:    10 * time.Minute,
				Sleep:  func(ctx context.Context, d time.Duration) error { waits = append(waits, d); return ctx.Err() },
				Report: func(ctx context.Context, th connectors.Throttle) { said = append(said, th.Describe(ctx)) },
			}
			ctx := connectors.WithThrottleSubject(connectors.WithThrottleWaiter(context.Background(), budget), "users of contoso-entra")
			start := time.Now()
			pages := mustCollect(t, f.open(t, func(c *graph.Config) { c.PageSize = 10 }).Users(ctx, ""))
			if users, _, _ := flatten(pages); len(users) != 30 {
				t.Errorf("got %d users, want 30", len(users))
			}
			want := cmp.Or(retryAfter, 2*time.Second)
			if !slices.Equal(waits, []time.Duration{want}) || time.Since(start) > 5*time.Second {
				t.Errorf("waits %v in %s, want [%s] handed to the run (none ridden out by the SDK)", waits, time.Since(start), want)
			}
			if len(said) != 1 || !strings.HasPrefix(said[0], fmt.Sprintf("Microsoft Graph asked us to slow down: waiting %d s, page 2 of users of contoso-entra", want/time.Second)) {
				t.Errorf("messages %q", said)
			}
		})
	}
	t.Run("long Retry-After surfaces as RateLimitError", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, fakegraph.Options{Users: 30})
		f.srv.InjectFault(fakegraph.Fault{Path: "/v1.0/users", After: 2, Status: 429, RetryAfter: 2 * time.Minute})
		start := time.Now()
		pages, err := collect(f.open(t, func(c *graph.Config) { c.PageSize = 10 }).Users(context.Background(), ""))
		wait, limited := connectors.RetryAfter(err)
		if !limited || wait != 2*time.Minute {
			t.Fatalf("got %v (retry after %v), want a RateLimitError of 2m", err, wait)
		}
		if len(pages) != 1 || pages[0].Cursor != "" {
			t.Errorf("got %d pages before the error (cursor %q); want 1 page, no cursor", len(pages), pages[0].Cursor)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("surfacing the rate limit took %v", d)
		}
	})
	t.Run("503 with Retry-After surfaces as RateLimitError", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, fakegraph.Options{Users: 3})
		f.srv.InjectFault(fakegraph.Fault{Path: "/v1.0/users/delta", Status: 503, RetryAfter: time.Minute, Times: -1})
		_, err := collect(f.open(t).Users(context.Background(), ""))
		if wait, limited := connectors.RetryAfter(err); !limited || wait != time.Minute {
			t.Fatalf("got %v, want a RateLimitError of 1m", err)
		}
	})
}

func TestRequestBudget(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fakegraph.Options{Users: 14})
	// 14 pages + /domains + delta = 16 requests; a burst of 10, then 5/s.
	src := f.open(t, func(c *graph.Config) { c.PageSize = 1; c.RequestsPerSecond = 5 })
	start := time.Now()
	mustCollect(t, src.Users(context.Background(), ""))
	if d := time.Since(start); d < time.Second {
		t.Errorf("16 requests at 5/s (burst 10) took %v, want at least 1.2s", d)
	}
}

func TestAuthErrors(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fakegraph.Options{Users: 3})
	cases := []struct {
		name  string
		edit  func(*graph.Config)
		fault *fakegraph.Fault
		want  error
		says  string
	}{
		{name: "wrong secret", edit: func(c *graph.Config) { c.ClientSecret = "wrong-secret-value" }, want: connectors.ErrUnauthorized, says: "AADSTS7000215"},
		{name: "unknown tenant", edit: func(c *graph.Config) { c.AzureTenantID = "elsewhere.example" }, want: connectors.ErrInvalidConfig, says: "AADSTS90002"},
		{name: "unknown client id", edit: func(c *graph.Config) { c.ClientID = "00000000-0000-0000-0000-000000000001" }, want: connectors.ErrInvalidConfig, says: "AADSTS700016"},
		{name: "401 from Graph", fault: &fakegraph.Fault{Status: 401, Code: "InvalidAuthenticationToken", Message: "Access token has expired or is not yet valid.", Times: -1}, want: connectors.ErrUnauthorized, says: "InvalidAuthenticationToken"},
		{name: "403 from Graph", fault: &fakegraph.Fault{Path: "/v1.0/users", Status: 403, Times: -1}, want: connectors.ErrUnauthorized, says: "User.Read.All"},
		{name: "403 on domains", fault: &fakegraph.Fault{Path: "/v1.0/domains", Status: 403, Times: -1}, want: connectors.ErrUnauthorized, says: "Domain.Read.All"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := f
			if c.fault != nil {
				f = newFixture(t, fakegraph.Options{Users: 3})
				f.srv.InjectFault(*c.fault)
			}
			var edits []func(*graph.Config)
			if c.edit != nil {
				edits = append(edits, c.edit)
			}
			src := f.open(t, edits...)
			pages, err := collect(src.Users(context.Background(), ""))
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.says) {
				t.Fatalf("got %v, want %v saying %q", err, c.want, c.says)
			}
			if len(pages) != 0 {
				t.Errorf("got %d pages before the error", len(pages))
			}
			if !connectors.IsPermanent(err) {
				t.Errorf("%v is not permanent", err)
			}
			if strings.Contains(err.Error(), f.srv.ClientSecret()) || strings.Contains(err.Error(), "wrong-secret-value") {
				t.Errorf("the error reveals the client secret: %v", err)
			}
			if perr := src.Ping(context.Background()); !errors.Is(perr, c.want) {
				t.Errorf("ping: got %v, want %v", perr, c.want)
			}
		})
	}
	t.Run("revoked token", func(t *testing.T) {
		f := newFixture(t, fakegraph.Options{Users: 3})
		src := f.open(t)
		mustCollect(t, src.Users(context.Background(), ""))
		f.srv.RevokeTokens() // the credential's cached token is now refused
		_, err := collect(src.Users(context.Background(), ""))
		if !errors.Is(err, connectors.ErrUnauthorized) || !strings.Contains(err.Error(), "InvalidAuthenticationToken") {
			t.Fatalf("got %v, want ErrUnauthorized quoting InvalidAuthenticationToken", err)
		}
	})
}

func TestBadResponses(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		fault fakegraph.Fault
		says  string
	}{
		{"HTML gateway error", fakegraph.Fault{Path: "/v1.0/users", After: 1, Status: 502, HTML: true, Times: -1}, "HTML page"},
		{"HTML with 200", fakegraph.Fault{Path: "/v1.0/users", After: 1, Status: 200, HTML: true}, "instead of JSON"},
		{"truncated body", fakegraph.Fault{Path: "/v1.0/users", After: 1, Truncate: true}, "truncated"},
		{"truncated error body", fakegraph.Fault{Path: "/v1.0/users", After: 1, Status: 400, Truncate: true, Times: -1}, "without its error envelope"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, fakegraph.Options{Users: 30})
			f.srv.InjectFault(c.fault)
			pages, err := collect(f.open(t, func(cfg *graph.Config) { cfg.PageSize = 10 }).Users(context.Background(), ""))
			if !errors.Is(err, connectors.ErrBadResponse) || !strings.Contains(err.Error(), c.says) {
				t.Fatalf("got %v, want ErrBadResponse saying %q", err, c.says)
			}
			// "/v1.0/users" also matches the delta request, which comes
			// first: the fault hits the first page of users.
			if len(pages) != 0 {
				t.Errorf("a failed listing yielded %d pages", len(pages))
			}
		})
	}
	t.Run("5xx JSON is unavailable", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, fakegraph.Options{Users: 3})
		f.srv.InjectFault(fakegraph.Fault{Path: "/v1.0/users", After: 1, Status: 500, Times: -1})
		_, err := collect(f.open(t).Users(context.Background(), ""))
		if !errors.Is(err, connectors.ErrUnavailable) || !strings.Contains(err.Error(), "generalException") {
			t.Fatalf("got %v, want ErrUnavailable quoting generalException", err)
		}
	})
}

func TestFetchAuthPhone(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fakegraph.Options{})
	with := f.srv.AddUser(fakegraph.User{UserPrincipalName: "a@contoso.example", MobilePhone: "+1 555 0101", PhoneMethods: []fakegraph.PhoneMethod{{PhoneType: "mobile", PhoneNumber: "+1 5550000000"}}})
	auth := f.srv.AddUser(fakegraph.User{UserPrincipalName: "b@contoso.example", PhoneMethods: []fakegraph.PhoneMethod{
		{PhoneType: "office", PhoneNumber: "+1 5550000001"}, {PhoneType: "alternateMobile", PhoneNumber: "+1 5550000002"}, {PhoneType: "mobile", PhoneNumber: "+1 5550000003"},
	}})
	alt := f.srv.AddUser(fakegraph.User{UserPrincipalName: "c@contoso.example", PhoneMethods: []fakegraph.PhoneMethod{{PhoneType: "alternateMobile", PhoneNumber: "+1 5550000004"}}})
	office := f.srv.AddUser(fakegraph.User{UserPrincipalName: "d@contoso.example", PhoneMethods: []fakegraph.PhoneMethod{{PhoneType: "office", PhoneNumber: "+1 5550000005"}}})

	users, _, _ := flatten(mustCollect(t, f.open(t, func(c *graph.Config) { c.FetchAuthPhone = true }).Users(context.Background(), "")))
	want := map[string]string{with.ID: "+1 555 0101", auth.ID: "+1 5550000003", alt.ID: "+1 5550000004", office.ID: ""}
	for id, mobile := range want {
		if users[id].Mobile != mobile {
			t.Errorf("%s: mobile %q, want %q", users[id].UPN, users[id].Mobile, mobile)
		}
	}
	if n := f.srv.Requests("phoneMethods"); n != 3 {
		t.Errorf("phone methods read %d times, want 3 (one per user without mobilePhone)", n)
	}

	f.srv.InjectFault(fakegraph.Fault{Path: "/v1.0/users/" + auth.ID + "/authentication", Status: 403, Times: -1})
	_, err := collect(f.open(t, func(c *graph.Config) { c.FetchAuthPhone = true }).Users(context.Background(), ""))
	if !errors.Is(err, connectors.ErrUnauthorized) || !strings.Contains(err.Error(), "UserAuthenticationMethod.Read.All") {
		t.Errorf("got %v, want ErrUnauthorized naming UserAuthenticationMethod.Read.All", err)
	}
}

func TestPing(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fakegraph.Options{Users: 3})
	if err := f.open(t).Ping(context.Background()); err != nil {
		t.Fatalf("ping: %v", err)
	}
	if f.srv.Requests("domains") != 1 || f.srv.Requests("users") != 1 {
		t.Errorf("ping read domains %d times and users %d times, want 1 and 1", f.srv.Requests("domains"), f.srv.Requests("users"))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := f.open(t).Ping(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("ping with a cancelled context: %v", err)
	}
}

func TestCancelledDuringListing(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fakegraph.Options{Users: 30})
	src := f.open(t, func(c *graph.Config) { c.PageSize = 10 })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pages := 0
	for _, err := range src.Changes(ctx, "") {
		if !errors.Is(err, connectors.ErrResyncRequired) {
			t.Fatalf("Changes without cursor: %v", err)
		}
	}
	for _, err := range src.Users(ctx, "") {
		if err != nil {
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("got %v, want context.Canceled", err)
			}
			break
		}
		pages++
		cancel()
	}
	if pages != 1 {
		t.Errorf("got %d pages, want 1 before the cancellation took effect", pages)
	}
}

func TestConfig(t *testing.T) {
	t.Parallel()
	reg := connectors.NewRegistry(map[connectors.Kind]func() connectors.Config{connectors.KindAzure: func() connectors.Config { return new(graph.Config) }})
	open := func(settings, secrets string) error {
		return reg.Check(connectors.KindAzure, json.RawMessage(settings), json.RawMessage(secrets))
	}
	ok := `{"azure_tenant_id":"contoso.onmicrosoft.com","client_id":"0f8b5a3e-2c4d-4e6f-8a9b-1c2d3e4f5a6b"}`
	if err := open(ok, `{"client_secret":"s3cret-value"}`); err != nil {
		t.Fatalf("a minimal valid config: %v", err)
	}

	err := open(`{"graph_url":"http://graph.example.com/v1.0","authority_url":"login","page_size":1000,"requests_per_second":-1,"ca_file":"/nonexistent.pem"}`, `{}`)
	if !errors.Is(err, connectors.ErrInvalidConfig) {
		t.Fatalf("got %v, want ErrInvalidConfig", err)
	}
	for _, want := range []string{"azure_tenant_id is required", "client_id is required", "client_secret is required", "graph_url", "authority_url", "page_size 1000", "requests_per_second", "ca_file"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not mention %q: %v", want, err)
		}
	}

	for name, settings := range map[string]string{
		"multi-tenant alias":   `{"azure_tenant_id":"common","client_id":"0f8b5a3e-2c4d-4e6f-8a9b-1c2d3e4f5a6b"}`,
		"client id not a GUID": `{"azure_tenant_id":"contoso.onmicrosoft.com","client_id":"my app"}`,
		"unknown key":          `{"azure_tenant_id":"contoso.onmicrosoft.com","client_id":"0f8b5a3e-2c4d-4e6f-8a9b-1c2d3e4f5a6b","tenant":"x"}`,
		"secret as setting":    `{"azure_tenant_id":"contoso.onmicrosoft.com","client_id":"0f8b5a3e-2c4d-4e6f-8a9b-1c2d3e4f5a6b","client_secret":"s3cret-value"}`,
	} {
		err := open(settings, `{"client_secret":"s3cret-value"}`)
		if !errors.Is(err, connectors.ErrInvalidConfig) {
			t.Errorf("%s: got %v, want ErrInvalidConfig", name, err)
		} else if strings.Contains(err.Error(), "s3cret-value") {
			t.Errorf("%s: the error reveals the secret: %v", name, err)
		}
	}

	cfg := graph.Config{AzureTenantID: "t", ClientSecret: "s3cret-value"}
	b, _ := json.Marshal(cfg)
	for _, out := range []string{fmt.Sprintf("%v %+v %#v", cfg, cfg, cfg), string(b)} {
		if strings.Contains(out, "s3cret-value") {
			t.Errorf("the config prints its secret: %s", out)
		}
	}
}

func TestConnectivityErrors(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fakegraph.Options{Users: 3})
	closed := fakegraph.New(fakegraph.Options{})
	closedURL := closed.AuthorityURL()
	closed.Close()
	cases := []struct {
		name string
		edit func(*graph.Config)
		want error
		says string
	}{
		{"untrusted certificate", func(c *graph.Config) { c.CAFile = "" }, connectors.ErrInvalidConfig, "ca_file"},
		{"authority unreachable", func(c *graph.Config) { c.AuthorityURL = closedURL }, connectors.ErrUnavailable, "authority_url"},
		{"graph unreachable", func(c *graph.Config) { c.GraphURL = closedURL + "/v1.0" }, connectors.ErrUnavailable, "GET /domains"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := f.open(t, c.edit).Ping(context.Background())
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.says) {
				t.Fatalf("got %v, want %v saying %q", err, c.want, c.says)
			}
			t.Log(err)
		})
	}
}
