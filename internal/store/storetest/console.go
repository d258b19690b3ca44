package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"selfserve/internal/rules"
	"selfserve/internal/store"
)

// testConsoleAuth checks the console's credentials, codes, invites,
// sessions and sign-in throttling.
func testConsoleAuth(t *testing.T, s *store.Store) {
	ctx := context.Background()
	f := newFixture(t, s, "console-auth")
	other := newFixture(t, s, "console-auth-other")
	l, _, err := s.UpsertLogin(ctx, f.tenant.ID, "lead@console.example", store.RoleSuper)
	must(t, err)
	if _, err := s.Credentials(ctx, f.tenant.ID, l.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("credentials before any: %v, want ErrNotFound", err)
	}
	if err := s.SetPassword(ctx, other.tenant.ID, l.ID, "x"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("set password across tenants: %v, want ErrNotFound", err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	sess := store.Session{ID: "s1", SecretHash: []byte("h"), TenantID: f.tenant.ID, LoginID: l.ID, Stage: store.StageFull, CSRFToken: "c",
		CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(time.Hour)}
	must(t, s.CreateSession(ctx, sess))
	got, err := s.Session(ctx, "s1")
	must(t, err)
	if got.LoginID != l.ID || got.Stage != store.StageFull || !got.ExpiresAt.Equal(sess.ExpiresAt) {
		t.Fatalf("session = %+v", got)
	}
	must(t, s.SetPassword(ctx, f.tenant.ID, l.ID, "$argon2id$x"))
	if _, err := s.Session(ctx, "s1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("session after password change: %v, want ErrNotFound", err)
	}
	c, err := s.Credentials(ctx, f.tenant.ID, l.ID)
	must(t, err)
	if c.PasswordHash != "$argon2id$x" || c.PasswordChangedAt == nil {
		t.Fatalf("credentials = %+v", c)
	}

	must(t, s.SetTOTP(ctx, f.tenant.ID, l.ID, []byte("sealed"), 100))
	if err := s.UseTOTPStep(ctx, f.tenant.ID, l.ID, 100); !errors.Is(err, store.ErrCodeUsed) {
		t.Fatalf("replayed step: %v, want ErrCodeUsed", err)
	}
	must(t, s.UseTOTPStep(ctx, f.tenant.ID, l.ID, 101))
	if err := s.UseTOTPStep(ctx, f.tenant.ID, l.ID, 100); !errors.Is(err, store.ErrCodeUsed) {
		t.Fatalf("older step: %v, want ErrCodeUsed", err)
	}

	must(t, s.ReplaceRecoveryCodes(ctx, f.tenant.ID, l.ID, [][]byte{[]byte("a"), []byte("b")}))
	must(t, s.UseRecoveryCode(ctx, f.tenant.ID, l.ID, []byte("a")))
	if err := s.UseRecoveryCode(ctx, f.tenant.ID, l.ID, []byte("a")); !errors.Is(err, store.ErrCodeUsed) {
		t.Fatalf("spent code: %v, want ErrCodeUsed", err)
	}
	if n, err := s.UnusedRecoveryCodes(ctx, f.tenant.ID, l.ID); err != nil || n != 1 {
		t.Fatalf("unused codes = %d, %v", n, err)
	}

	inv, err := s.CreateInvite(ctx, f.tenant.ID, l.ID, []byte("inv"), "cli", now.Add(time.Hour))
	must(t, err)
	if _, err := s.AcceptInvite(ctx, []byte("inv"), "$argon2id$y", now.Add(2*time.Hour)); !errors.Is(err, store.ErrTokenInvalid) {
		t.Fatalf("expired invite: %v, want ErrTokenInvalid", err)
	}
	got2, err := s.AcceptInvite(ctx, []byte("inv"), "$argon2id$y", now)
	must(t, err)
	if got2.ID != inv.ID {
		t.Fatalf("accepted invite %d, want %d", got2.ID, inv.ID)
	}
	if _, err := s.AcceptInvite(ctx, []byte("inv"), "$argon2id$z", now); !errors.Is(err, store.ErrTokenInvalid) {
		t.Fatalf("second use: %v, want ErrTokenInvalid", err)
	}
	if c, _ := s.Credentials(ctx, f.tenant.ID, l.ID); c.PasswordHash != "$argon2id$y" {
		t.Fatalf("password after invite = %q", c.PasswordHash)
	}
	ls, err := s.LoginsByEmail(ctx, "LEAD@console.example")
	must(t, err)
	if len(ls) != 1 || ls[0].ID != l.ID {
		t.Fatalf("logins by email = %+v", ls)
	}

	must(t, s.RecordSigninFailure(ctx, now, time.Hour, "login:x", "ip:1"))
	must(t, s.RecordSigninFailure(ctx, now, time.Hour, "login:x"))
	if n, _ := s.SigninFailures(ctx, "login:x", now.Add(-time.Minute)); n != 2 {
		t.Fatalf("failures = %d, want 2", n)
	}
	must(t, s.ClearSigninFailures(ctx, "login:x"))
	if n, _ := s.SigninFailures(ctx, "login:x", now.Add(-time.Minute)); n != 0 {
		t.Fatalf("failures after clear = %d", n)
	}
}

// testEndUserPage checks the console's end-user page: the status in SQL
// agrees with rules.StatusOf, filters, search, sort, count, refusals.
func testEndUserPage(t *testing.T, s *store.Store) {
	ctx := context.Background()
	f := newFixture(t, s, "console-page")
	other := newFixture(t, s, "console-page-other")
	var recs []store.UserRecord
	for i := range 12 {
		mobile := ""
		if i%2 == 0 {
			mobile = fmt.Sprintf("+4479%08d", i)
		}
		r := user(fmt.Sprintf("u%02d", i), mobile)
		if i%3 == 0 {
			r.Email = ""
		}
		r.DisplayName = fmt.Sprintf("Name %02d", 11-i)
		r.LockedOut = i == 5
		recs = append(recs, r)
	}
	applyPage(t, s, f, 0, recs...)
	applyPage(t, s, other, 0, user("u00", "+447900000000"))
	users := endUsers(t, s, f.tenant.ID)
	now := time.Now()
	_, _, err := s.MarkFirstAccess(ctx, f.tenant.ID, users["u02"].ID, now)
	must(t, err)
	must(t, s.MarkWelcomeSent(ctx, f.tenant.ID, users["u01"].ID, now))
	_, err = s.SetSelfServe(ctx, f.tenant.ID, []int64{users["u04"].ID}, false)
	must(t, err)
	users = endUsers(t, s, f.tenant.ID)

	want := map[rules.Status]int{}
	for _, u := range users {
		want[rules.StatusOf(u.Rules())]++
	}
	for _, st := range []rules.Status{rules.StatusIncomplete, rules.StatusWelcomeSent, rules.StatusRegistrationComplete, rules.StatusAccessedSelfServe} {
		page, err := s.EndUserPage(ctx, f.tenant.ID, store.EndUserQuery{CustomerID: f.customer.ID, Status: st, Limit: 100})
		rows, total := page.Rows, page.Total
		must(t, err)
		if total != want[st] || len(rows) != total {
			t.Errorf("status %s: %d rows, total %d; rules say %d", st, len(rows), total, want[st])
		}
		for _, u := range rows {
			if got := rules.StatusOf(u.Rules()); got != st {
				t.Errorf("status %s lists %s whose status is %s", st, u.Username, got)
			}
		}
	}
	yes := true
	page, err := s.EndUserPage(ctx, f.tenant.ID, store.EndUserQuery{CustomerID: f.customer.ID, Active: &yes})
	rows, total := page.Rows, page.Total
	must(t, err)
	tenantRules := f.tenant.Rules()
	activeWant := 0
	for _, u := range users {
		if rules.Active(tenantRules, u.Rules()) {
			activeWant++
		}
	}
	if total != activeWant || len(rows) != activeWant {
		t.Errorf("active: %d rows, total %d; rules say %d", len(rows), total, activeWant)
	}
	page, err = s.EndUserPage(ctx, f.tenant.ID, store.EndUserQuery{CustomerID: f.customer.ID, LockedOut: &yes})
	rows, total = page.Rows, page.Total
	must(t, err)
	if total != 1 || rows[0].Username != "u05" {
		t.Errorf("locked: %+v", rows)
	}

	page, err = s.EndUserPage(ctx, f.tenant.ID, store.EndUserQuery{CustomerID: f.customer.ID, Sort: store.SortName, Limit: 5, Offset: 5})
	rows, total = page.Rows, page.Total
	must(t, err)
	if total != 12 || len(rows) != 5 || rows[0].DisplayName != "Name 05" {
		t.Errorf("sorted page: total %d, %d rows, first %q", total, len(rows), rows[0].DisplayName)
	}
	page, err = s.EndUserPage(ctx, f.tenant.ID, store.EndUserQuery{CustomerID: f.customer.ID, Search: "U1", Sort: store.SortUsername, Desc: true})
	rows, total = page.Rows, page.Total
	must(t, err)
	if total != 2 || rows[0].Username != "u11" || rows[1].Username != "u10" {
		t.Errorf("search u1: total %d, rows %+v", total, rows)
	}
	page, err = s.EndUserPage(ctx, f.tenant.ID, store.EndUserQuery{CustomerID: f.customer.ID, Limit: 5, Offset: 20})
	rows, total = page.Rows, page.Total
	must(t, err)
	if total != 12 || len(rows) != 0 {
		t.Errorf("past the last page: total %d, %d rows; want 12 and none", total, len(rows))
	}
	page, err = s.EndUserPage(ctx, f.tenant.ID, store.EndUserQuery{CustomerID: f.customer.ID, Search: "NAME 0", Sort: store.SortName})
	rows, total = page.Rows, page.Total
	must(t, err)
	if total != 10 || len(rows) != 10 || rows[0].DisplayName != "Name 00" {
		t.Errorf("search by display name: total %d, %d rows", total, len(rows))
	}
	if page, _ = s.EndUserPage(ctx, f.tenant.ID, store.EndUserQuery{CustomerID: f.customer.ID, Search: "u_"}); page.Total != 0 || page.Customer.ID != f.customer.ID {
		t.Errorf("search u_ matched %d: LIKE wildcards must be literal", page.Total)
	}
	if page, err = s.EndUserPage(ctx, f.tenant.ID, store.EndUserQuery{CustomerID: other.customer.ID}); !errors.Is(err, store.ErrNotFound) || len(page.Rows) != 0 {
		t.Errorf("another tenant's customer: %d end users, %v; want ErrNotFound", len(page.Rows), err)
	}
	ids, err := s.EndUserIDs(ctx, f.tenant.ID, store.EndUserQuery{CustomerID: f.customer.ID, Search: "u0"}, 100)
	must(t, err)
	if len(ids) != 10 {
		t.Errorf("ids of u0*: %d, want 10", len(ids))
	}
	if _, err := s.EndUserIDs(ctx, f.tenant.ID, store.EndUserQuery{CustomerID: f.customer.ID}, 5); !errors.Is(err, store.ErrConflict) {
		t.Errorf("ids over max: %v, want ErrConflict", err)
	}

	counts, err := s.CustomerCounts(ctx, f.tenant.ID)
	must(t, err)
	if c := counts[f.customer.ID]; c.EndUsers != 12 || c.Locked != 1 || c.UserActive != activeWant || c.Incomplete != want[rules.StatusIncomplete] {
		t.Errorf("counts = %+v", c)
	}

	u := users["u03"]
	must(t, s.SetRefusal(ctx, f.tenant.ID, u.ID, "mobile", "+1 555 0000001", "not a valid number in US"))
	must(t, s.SetRefusal(ctx, f.tenant.ID, u.ID, "mobile", "+1 555 0000002", "not a valid number in US"))
	page, err = s.EndUserPage(ctx, f.tenant.ID, store.EndUserQuery{CustomerID: f.customer.ID, Search: "u03"})
	rows, _ = page.Rows, page.Total
	must(t, err)
	if len(rows) != 1 || rows[0].RefusedMobile == nil || *rows[0].RefusedMobile != "+1 555 0000002" || rows[0].RefusedEmail != nil {
		t.Errorf("the page's row of u03 does not carry its refused mobile: %+v", rows)
	}
	refs, err := s.Refusals(ctx, f.tenant.ID, []int64{u.ID})
	must(t, err)
	if len(refs[u.ID]) != 1 || refs[u.ID][0].Value != "+1 555 0000002" {
		t.Errorf("refusals = %+v", refs)
	}
	if refs, _ := s.Refusals(ctx, other.tenant.ID, []int64{u.ID}); len(refs) != 0 {
		t.Errorf("another tenant sees refusals %+v", refs)
	}
	must(t, s.SetRefusal(ctx, f.tenant.ID, u.ID, "mobile", "", ""))
	if refs, _ := s.Refusals(ctx, f.tenant.ID, []int64{u.ID}); len(refs) != 0 {
		t.Errorf("refusal kept after clearing: %+v", refs)
	}
	// A sync page keeps what it refused, and forgets it once the source
	// gives a good value.
	bad := user("u07", "+1 555 0000001")
	bad.MobileInvalid, bad.MobileRefused = true, "not a valid number in US"
	applyPage(t, s, f, 0, bad)
	u7 := users["u07"]
	refs, err = s.Refusals(ctx, f.tenant.ID, []int64{u7.ID})
	must(t, err)
	if len(refs[u7.ID]) != 1 || refs[u7.ID][0].Field != "mobile" || refs[u7.ID][0].Value != "+1 555 0000001" || refs[u7.ID][0].Reason != "not a valid number in US" {
		t.Errorf("refusal of a sync page = %+v", refs[u7.ID])
	}
	applyPage(t, s, f, 0, user("u07", "+447900000007"))
	if refs, _ := s.Refusals(ctx, f.tenant.ID, []int64{u7.ID}); len(refs) != 0 {
		t.Errorf("refusal kept after a good value: %+v", refs)
	}
}

// testActiveSQL checks that the store's active condition (the console's
// Active filter and the customers' counts) agrees with rules.Active over a
// table of tenants and end users: the subscription, the override, the
// policy for privileged end users, and each of an end user's reasons.
func testActiveSQL(t *testing.T, s *store.Store) {
	ctx := context.Background()
	tenants := []struct {
		name   string
		change func(*store.Tenant)
	}{
		{"bundle-deny", func(*store.Tenant) {}},
		{"bundle-two-factors", func(tn *store.Tenant) { tn.PrivilegedSelfServe = rules.PrivilegedTwoFactors }},
		{"qdesk-deny", func(tn *store.Tenant) { tn.Subscription = rules.SubscriptionQDesk }},
		{"no-subscription", func(tn *store.Tenant) {
			tn.Subscription, tn.PrivilegedSelfServe = rules.SubscriptionNone, rules.PrivilegedTwoFactors
		}},
		{"override-off", func(tn *store.Tenant) { tn.SelfServe, tn.PrivilegedSelfServe = false, rules.PrivilegedTwoFactors }},
	}
	users := []struct {
		id     string
		change func(*store.UserRecord)
		off    bool // self-serve switched off after import
	}{
		{"served", func(*store.UserRecord) {}, false},
		{"switch-off", func(*store.UserRecord) {}, true},
		{"no-email", func(r *store.UserRecord) { r.Email = "" }, false},
		{"no-mobile", func(r *store.UserRecord) { r.Mobile = "" }, false},
		{"disabled", func(r *store.UserRecord) { r.Enabled = false }, false},
		{"privileged", func(r *store.UserRecord) { r.Privileged, r.PrivilegedReason = true, "member of Domain Admins" }, false},
		{"privileged-no-mobile", func(r *store.UserRecord) { r.Privileged, r.PrivilegedReason, r.Mobile = true, "adminCount=1", "" }, false},
		{"privileged-switch-off", func(r *store.UserRecord) { r.Privileged, r.PrivilegedReason = true, "adminCount=1" }, true},
		{"privileged-disabled", func(r *store.UserRecord) { r.Privileged, r.PrivilegedReason, r.Enabled = true, "adminCount=1", false }, false},
	}
	for _, tc := range tenants {
		f := newFixture(t, s, "active-"+tc.name)
		tn := f.tenant
		tc.change(&tn)
		tn, _, err := s.UpsertTenant(ctx, tn)
		must(t, err)
		var recs []store.UserRecord
		for i, u := range users {
			r := user(u.id, fmt.Sprintf("+4479%08d", i))
			u.change(&r)
			recs = append(recs, r)
		}
		applyPage(t, s, f, 0, recs...)
		stored := endUsers(t, s, tn.ID)
		for _, u := range users {
			if u.off {
				_, err := s.SetSelfServe(ctx, tn.ID, []int64{stored[u.id].ID}, false)
				must(t, err)
			}
		}
		stored = endUsers(t, s, tn.ID)
		want := map[int64]bool{}
		byID := map[int64]string{}
		for _, u := range stored {
			want[u.ID] = rules.Active(tn.Rules(), u.Rules())
			byID[u.ID] = u.ExternalID
		}
		for _, active := range []bool{true, false} {
			ids, err := s.EndUserIDs(ctx, tn.ID, store.EndUserQuery{CustomerID: f.customer.ID, Active: &active}, 100)
			must(t, err)
			got := map[int64]bool{}
			for _, id := range ids {
				got[id] = true
			}
			for id, w := range want {
				if got[id] != (w == active) {
					t.Errorf("tenant %s, end user %s: rules.Active says %v (%q); the filter active=%v lists it: %v",
						tc.name, byID[id], w, rules.InactiveReason(tn.Rules(), stored[byID[id]].Rules()), active, got[id])
				}
			}
		}
		n := 0
		for _, w := range want {
			if w {
				n++
			}
		}
		counts, err := s.CustomerCounts(ctx, tn.ID)
		must(t, err)
		if c := counts[f.customer.ID]; c.UserActive != n {
			t.Errorf("tenant %s: the customer counts %d active, rules.Active %d", tc.name, c.UserActive, n)
		}
		page, err := s.EndUserPage(ctx, tn.ID, store.EndUserQuery{CustomerID: f.customer.ID, Active: ptr(true), Privileged: ptr(true)})
		total := page.Total
		must(t, err)
		np := 0
		for _, u := range stored {
			if u.Privileged && want[u.ID] {
				np++
			}
		}
		if total != np {
			t.Errorf("tenant %s: active and privileged: %d, rules say %d", tc.name, total, np)
		}
	}
}
