package storetest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"selfserve/internal/importer"
	"sync"
	"testing"
	"time"

	"selfserve/connectors"
	"selfserve/internal/rules"
	"selfserve/internal/store"
)

// testNoticeLedger checks the notice ledger: rows are created once per key
// whoever writes them, a claim is exclusive within its lease, final states
// stay final, reads are tenant-scoped, and the scan's prefilter keeps exactly
// the served candidates.
func testNoticeLedger(t *testing.T, s *store.Store) {
	ctx := context.Background()
	f := newFixture(t, s, "ledger")
	other := newFixture(t, s, "ledger-other")
	applyPage(t, s, f, 0, user("ann", "+447700900001"), user("bob", "+447700900002"))
	users := endUsers(t, s, f.tenant.ID)
	ann, bob := users["ann"], users["bob"]

	key := func(u store.EndUser, occasion string, ch store.Channel) store.NewNotice {
		return store.NewNotice{TenantID: f.tenant.ID, EndUserID: u.ID, Kind: rules.KindExpiryReminder, Occasion: occasion, Channel: ch}
	}
	first, err := s.CreateNotices(ctx, []store.NewNotice{key(ann, "2026-12-03", store.ChannelEmail), key(ann, "2026-12-03", store.ChannelSMS)})
	must(t, err)
	if len(first) != 2 || first[0].ID == 0 || first[0].Kind != rules.KindExpiryReminder || first[0].TenantID != f.tenant.ID {
		t.Fatalf("first write created %+v, want 2 rows", first)
	}
	again, err := s.CreateNotices(ctx, []store.NewNotice{key(ann, "2026-12-03", store.ChannelEmail), key(ann, "2026-12-03", store.ChannelSMS), key(ann, "2026-12-04", store.ChannelEmail)})
	must(t, err)
	if len(again) != 1 || again[0].ID == first[0].ID || again[0].ID == first[1].ID {
		t.Fatalf("second write created %+v, want only the new occasion", again)
	}
	if _, err := s.CreateNotices(ctx, []store.NewNotice{{TenantID: f.tenant.ID, EndUserID: ann.ID, Kind: "nagging", Occasion: "x", Channel: store.ChannelEmail}}); err == nil {
		t.Fatal("a row of an unknown kind was accepted")
	}

	// Several planners writing the same rows at once create each once.
	var batch []store.NewNotice
	for d := 10; d < 30; d++ {
		for _, u := range []store.EndUser{ann, bob} {
			occ := time.Date(2026, 11, d, 0, 0, 0, 0, time.UTC).Format(rules.OccasionDateLayout)
			batch = append(batch, key(u, occ, store.ChannelEmail), key(u, occ, store.ChannelSMS))
		}
	}
	var mu sync.Mutex
	total := 0
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			refs, err := s.CreateNotices(ctx, batch)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			total += len(refs)
			mu.Unlock()
		})
	}
	wg.Wait()
	if total != len(batch) {
		t.Fatalf("4 concurrent writers of %d rows created %d", len(batch), total)
	}

	// A claim is exclusive within its lease.
	id := first[0].ID
	var claims int
	var busy int
	for range 6 {
		wg.Go(func() {
			_, ok, err := s.ClaimNotice(ctx, f.tenant.ID, id, time.Minute)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case ok:
				claims++
			case errors.Is(err, store.ErrNoticeBusy):
				busy++
			default:
				t.Errorf("claim: ok=%v err=%v", ok, err)
			}
		})
	}
	wg.Wait()
	if claims != 1 || busy != 5 {
		t.Fatalf("6 concurrent claims: %d won, %d busy; want 1 and 5", claims, busy)
	}
	must(t, s.ReleaseNotice(ctx, f.tenant.ID, id, "451 try again later"))
	n, err := s.Notice(ctx, f.tenant.ID, id)
	must(t, err)
	if n.Status != store.NoticePending || n.Error != "451 try again later" || n.Attempts != 1 {
		t.Fatalf("released notice %+v", n)
	}
	n, ok, err := s.ClaimNotice(ctx, f.tenant.ID, id, time.Minute)
	must(t, err)
	if !ok || n.Status != store.NoticeSending || n.Attempts != 2 {
		t.Fatalf("second claim ok=%v %+v", ok, n)
	}
	// A sender that died leaves the row sending: a claim within the lease
	// is refused, one after the lease takes it over.
	if _, ok, err := s.ClaimNotice(ctx, f.tenant.ID, id, time.Minute); ok || !errors.Is(err, store.ErrNoticeBusy) {
		t.Fatalf("claim within the lease: ok=%v err=%v, want ErrNoticeBusy", ok, err)
	}
	leaseOver := time.Now().Add(time.Minute + time.Second)
	s.SetClock(func() time.Time { return leaseOver })
	_, ok, err = s.ClaimNotice(ctx, f.tenant.ID, id, time.Minute)
	s.SetClock(time.Now)
	if err != nil || !ok {
		t.Fatalf("claim after the lease: ok=%v err=%v", ok, err)
	}
	sentAt := time.Date(2026, 12, 3, 9, 0, 1, 0, time.UTC)
	must(t, s.MarkNoticeSent(ctx, f.tenant.ID, id, sentAt))
	must(t, s.MarkNoticeSent(ctx, f.tenant.ID, id, sentAt)) // idempotent
	if err := s.MarkNoticeFailed(ctx, f.tenant.ID, id, "late failure"); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("failing a sent notice: %v, want ErrConflict", err)
	}
	n, ok, err = s.ClaimNotice(ctx, f.tenant.ID, id, 0)
	must(t, err)
	if ok || n.Status != store.NoticeSent || n.SentAt == nil || !n.SentAt.Equal(sentAt) || n.Attempts != 3 {
		t.Fatalf("claim of a sent notice: ok=%v %+v", ok, n)
	}
	must(t, s.MarkNoticeSkipped(ctx, f.tenant.ID, first[1].ID, string(rules.ReasonTenantOverride)))
	if n, _ := s.Notice(ctx, f.tenant.ID, first[1].ID); n.Status != store.NoticeSkipped || n.Error != string(rules.ReasonTenantOverride) {
		t.Fatalf("skipped notice %+v", n)
	}
	must(t, s.MarkNoticeFailed(ctx, f.tenant.ID, again[0].ID, "550 mailbox unavailable"))

	// Tenant scoping.
	if _, err := s.Notice(ctx, other.tenant.ID, id); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("another tenant's notice: %v, want ErrNotFound", err)
	}
	if _, _, err := s.ClaimNotice(ctx, other.tenant.ID, again[0].ID, 0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("claiming another tenant's notice: %v, want ErrNotFound", err)
	}
	if ns, err := s.NoticesOfEndUser(ctx, other.tenant.ID, ann.ID, 0); err != nil || len(ns) != 0 {
		t.Fatalf("another tenant's end user's notices: %d, %v", len(ns), err)
	}

	ns, err := s.NoticesOfEndUser(ctx, f.tenant.ID, ann.ID, 5)
	must(t, err)
	if len(ns) != 5 {
		t.Fatalf("NoticesOfEndUser limit 5 gave %d", len(ns))
	}
	for i := 1; i < len(ns); i++ {
		if ns[i].CreatedAt.After(ns[i-1].CreatedAt) || (ns[i].CreatedAt.Equal(ns[i-1].CreatedAt) && ns[i].ID > ns[i-1].ID) {
			t.Fatalf("NoticesOfEndUser not newest first: %d then %d", ns[i-1].ID, ns[i].ID)
		}
	}
	counts, err := s.NoticeCounts(ctx, f.tenant.ID)
	must(t, err)
	if counts[store.NoticeSent] != 1 || counts[store.NoticeSkipped] != 1 || counts[store.NoticeFailed] != 1 || counts[store.NoticePending] != len(batch) {
		t.Fatalf("counts %v", counts)
	}

	stranded, err := s.StrandedNotices(ctx, time.Now().Add(time.Hour), time.Minute, 0)
	must(t, err)
	if len(stranded) != len(batch) {
		t.Fatalf("stranded: %d rows, want the %d pending", len(stranded), len(batch))
	}
	if stranded, _ := s.StrandedNotices(ctx, time.Now().Add(-time.Hour), time.Minute, 0); len(stranded) != 0 {
		t.Fatalf("rows written just now counted as stranded an hour ago: %d", len(stranded))
	}

	// Claims and reads in bulk, tenant-scoped.
	var keys []store.NoticeKey
	for _, r := range again {
		keys = append(keys, store.NoticeKey{TenantID: f.tenant.ID, ID: r.ID})
	}
	pend, err := s.NoticesOfEndUser(ctx, f.tenant.ID, bob.ID, 4)
	must(t, err)
	for _, n := range pend {
		keys = append(keys, store.NoticeKey{TenantID: f.tenant.ID, ID: n.ID})
	}
	keys = append(keys, store.NoticeKey{TenantID: other.tenant.ID, ID: pend[0].ID})
	claimed, err := s.ClaimNotices(ctx, keys, time.Minute)
	must(t, err)
	if len(claimed) != len(pend) {
		t.Fatalf("bulk claim of %d pending rows, a failed one and another tenant's: %d claimed", len(pend), len(claimed))
	}
	if again, _ := s.ClaimNotices(ctx, keys, time.Minute); len(again) != 0 {
		t.Fatalf("a second bulk claim within the lease claimed %d rows", len(again))
	}
	if got, _ := s.Notices(ctx, keys); len(got) != len(pend)+1 {
		t.Fatalf("Notices of %d keys (one of another tenant) returned %d rows", len(keys), len(got))
	}
	for _, n := range claimed {
		must(t, s.ReleaseNotice(ctx, f.tenant.ID, n.ID, ""))
	}
	ncs, err := s.NoticeContexts(ctx, []store.NoticeKey{{TenantID: f.tenant.ID, ID: ann.ID}, {TenantID: f.tenant.ID, ID: bob.ID}, {TenantID: other.tenant.ID, ID: ann.ID}})
	must(t, err)
	if len(ncs) != 2 || ncs[ann.ID].Customer.ID != f.customer.ID || ncs[bob.ID].Tenant.ID != f.tenant.ID {
		t.Fatalf("bulk contexts: %d", len(ncs))
	}

	// Deleting an end user deletes its notices.
	if ns, _ := s.NoticesOfEndUser(ctx, f.tenant.ID, bob.ID, 0); len(ns) == 0 {
		t.Fatal("bob has no notices to delete")
	}
	_, err = s.DB().ExecContext(ctx, s.DB().Rebind(`DELETE FROM end_users WHERE id = ?`), bob.ID)
	must(t, err)
	if ns, _ := s.NoticesOfEndUser(ctx, f.tenant.ID, bob.ID, 0); len(ns) != 0 {
		t.Fatalf("a deleted end user kept %d notices", len(ns))
	}

	nc, err := s.NoticeContextOf(ctx, f.tenant.ID, ann.ID)
	must(t, err)
	if nc.EndUser.ID != ann.ID || nc.Customer.ID != f.customer.ID || nc.Tenant.ID != f.tenant.ID || nc.Customer.TimeZone != "Europe/London" || nc.EndUser.Email == "" {
		t.Fatalf("notice context %+v", nc)
	}
	if _, err := s.NoticeContextOf(ctx, other.tenant.ID, ann.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("another tenant's end user context: %v", err)
	}
}

// testScanCandidates checks the expiry scan's prefilter.
func testScanCandidates(t *testing.T, s *store.Store) {
	ctx := context.Background()
	f := newFixture(t, s, "scan")
	off := newFixture(t, s, "scan-off")
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	in := func(id string, expires time.Time) store.UserRecord {
		u := user(id, "+447700900100")
		u.PasswordExpiresAt = expires
		return u
	}
	soon := now.Add(3 * 24 * time.Hour)
	late := now.Add(40 * 24 * time.Hour)
	locked := in("locked", late)
	locked.LockedOut, locked.LockedOutAt = true, now.Add(-time.Hour)
	oldLock := in("oldlock", late)
	oldLock.LockedOut, oldLock.LockedOutAt = true, now.Add(-30*24*time.Hour)
	lockedSoon := in("lockedsoon", soon)
	lockedSoon.LockedOut, lockedSoon.LockedOutAt = true, now.Add(-time.Minute)
	noMobile := in("nomobile", soon)
	noMobile.Mobile = ""
	disabled := in("disabled", soon)
	disabled.Enabled = false
	never := in("never", soon)
	never.PasswordNeverExpires = true
	applyPage(t, s, f, 0, in("due", soon), in("later", late), locked, oldLock, lockedSoon, noMobile, disabled, never, in("switchoff", soon), in("gone", soon))
	applyPage(t, s, off, 0, in("due", soon))
	users := endUsers(t, s, f.tenant.ID)
	_, err := s.SetSelfServe(ctx, f.tenant.ID, []int64{users["switchoff"].ID}, false)
	must(t, err)
	must(t, s.UpdateTenant(ctx, store.Tenant{ID: off.tenant.ID, Subscription: rules.SubscriptionBundle, SelfServe: false, TimeZone: "UTC", SendHour: 9, ReminderDays: 10}))
	n, err := s.RemoveUnseen(ctx, f.tenant.ID, f.conn.ID, -1)
	must(t, err)
	if n == 0 {
		t.Fatal("RemoveUnseen removed nobody")
	}
	// Every user but "gone" comes back in the next import.
	applyPage(t, s, f, 0, in("due", soon), in("later", late), locked, oldLock, lockedSoon, noMobile, disabled, never, in("switchoff", soon))

	got, err := s.ScanCandidates(ctx, store.ScanWindow{
		ExpiresFrom: now.Add(-48 * time.Hour), ExpiresBefore: now.Add(12 * 24 * time.Hour),
		LockedSince: now.Add(-24 * time.Hour), LockedUntil: now,
	})
	must(t, err)
	names := map[int64]string{}
	for name, u := range endUsers(t, s, f.tenant.ID) {
		names[u.ID] = name
	}
	seen := map[string]int{}
	for _, u := range got {
		name, ok := names[u.ID]
		if !ok {
			t.Fatalf("candidate %d is not of the served tenant", u.ID)
		}
		seen[name]++
		if u.TenantID != f.tenant.ID || u.CustomerID != f.customer.ID || u.Email == "" || u.Mobile == "" {
			t.Fatalf("candidate %+v", u)
		}
	}
	want := map[string]int{"due": 1, "locked": 1, "lockedsoon": 1}
	if len(seen) != len(want) {
		t.Fatalf("candidates %v, want %v", seen, want)
	}
	for k, v := range want {
		if seen[k] != v {
			t.Fatalf("candidates %v, want %v", seen, want)
		}
	}
	cs, err := s.ScanCustomers(ctx, []int64{f.tenant.ID, off.tenant.ID})
	must(t, err)
	if len(cs) != 2 {
		t.Fatalf("ScanCustomers: %d customers, want 2", len(cs))
	}
}

// testCandidatesFollowRules checks that the candidate query's filter in SQL
// and the rules agree: over tenants of every subscription with the override
// on and off, and end users of every source with each reason to be left
// out, the candidates are exactly the end users rules.NoticesReason serves
// from a directory source (rules.Source.IsDirectory) whose password expires
// or whose lockout began in the window, for every tenant and customer scope.
func testCandidatesFollowRules(t *testing.T, s *store.Store) {
	ctx := context.Background()
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	w := store.ScanWindow{ExpiresFrom: now.Add(-48 * time.Hour), ExpiresBefore: now.Add(12 * 24 * time.Hour), LockedSince: now.Add(-24 * time.Hour), LockedUntil: now}
	rec := func(id string) store.UserRecord {
		u := user(id, "+447700900100")
		u.PasswordExpiresAt = now.Add(3 * 24 * time.Hour)
		return u
	}
	variants := map[string]func(*store.UserRecord){
		"served":   func(*store.UserRecord) {},
		"switch":   func(*store.UserRecord) {}, // switched off below
		"removed":  func(*store.UserRecord) {}, // removed below
		"noemail":  func(u *store.UserRecord) { u.Email = "" },
		"nomobile": func(u *store.UserRecord) { u.Mobile = "" },
		"disabled": func(u *store.UserRecord) { u.Enabled = false },
		"never":    func(u *store.UserRecord) { u.PasswordNeverExpires = true },
		"later":    func(u *store.UserRecord) { u.PasswordExpiresAt = w.ExpiresBefore },
		"past":     func(u *store.UserRecord) { u.PasswordExpiresAt = w.ExpiresFrom.Add(-time.Microsecond) },
		"locked": func(u *store.UserRecord) {
			u.PasswordExpiresAt, u.LockedOut, u.LockedOutAt = w.ExpiresBefore.Add(time.Hour), true, w.LockedSince
		},
		"oldlock": func(u *store.UserRecord) {
			u.PasswordExpiresAt, u.LockedOut, u.LockedOutAt = w.ExpiresBefore.Add(time.Hour), true, w.LockedSince.Add(-time.Microsecond)
		},
	}
	type scope struct{ tenant, customer int64 }
	var tenants []store.Tenant
	var scopes []scope
	for _, sub := range rules.Subscriptions() {
		for _, override := range []bool{true, false} {
			f := newFixture(t, s, fmt.Sprintf("cand-%s-%v", sub, override))
			tn := f.tenant
			tn.Subscription, tn.SelfServe = sub, override
			must(t, s.UpdateTenant(ctx, tn))
			tenants = append(tenants, tn)
			scopes = append(scopes, scope{tn.ID, 0}, scope{tn.ID, f.customer.ID})
			for _, src := range rules.Sources() {
				co, _, err := s.UpsertConnection(ctx, store.Connection{TenantID: tn.ID, CustomerID: &f.customer.ID, Name: "cand-" + string(src),
					Kind: connectors.KindFile, Settings: []byte(`{"path":"x.csv"}`), EnableSelfServe: true, ScheduleSeconds: 10800}, false)
				must(t, err)
				target := store.PageTarget{TenantID: tn.ID, CustomerID: f.customer.ID, ConnectionID: co.ID, Source: src, EnableSelfServe: true}
				var all, kept []store.UserRecord
				for name, vary := range variants {
					u := rec(string(src) + "-" + name)
					vary(&u)
					all = append(all, u)
					if name != "removed" {
						kept = append(kept, u)
					}
				}
				_, err = importer.ApplyPage(ctx, s, target, all, nil)
				must(t, err)
				_, err = s.RemoveUnseen(ctx, tn.ID, co.ID, -1)
				must(t, err)
				_, err = importer.ApplyPage(ctx, s, target, kept, nil)
				must(t, err)
				_, err = s.SetSelfServe(ctx, tn.ID, []int64{endUsers(t, s, tn.ID)[string(src)+"-switch"].ID}, false)
				must(t, err)
			}
		}
	}
	want := map[scope]map[int64]bool{{}: {}}
	for _, tn := range tenants {
		us, err := s.EndUsers(ctx, tn.ID, store.EndUserFilter{IncludeRemoved: true})
		must(t, err)
		for _, u := range us {
			r := u.Rules()
			expiring := !r.PasswordNeverExpires && !r.PasswordExpiresAt.IsZero() && !r.PasswordExpiresAt.Before(w.ExpiresFrom) && r.PasswordExpiresAt.Before(w.ExpiresBefore)
			locked := r.LockedOut && !r.LockedOutAt.Before(w.LockedSince) && !r.LockedOutAt.After(w.LockedUntil)
			if rules.NoticesReason(tn.Rules(), r) != rules.ReasonNone || !r.Source.IsDirectory() || !(expiring || locked) {
				continue
			}
			for _, sc := range []scope{{}, {tn.ID, 0}, {tn.ID, u.CustomerID}} {
				if want[sc] == nil {
					want[sc] = map[int64]bool{}
				}
				want[sc][u.ID] = true
			}
		}
	}
	if len(want[scope{}]) == 0 {
		t.Fatal("no end user is a candidate: the test proves nothing")
	}
	for _, sc := range append(scopes, scope{}) {
		sw := w
		sw.TenantID, sw.CustomerID = sc.tenant, sc.customer
		got, err := s.ScanCandidates(ctx, sw)
		must(t, err)
		ids := map[int64]bool{}
		for _, u := range got {
			if ids[u.ID] {
				t.Errorf("scope %+v: candidate %d twice", sc, u.ID)
			}
			ids[u.ID] = true
		}
		if !maps.Equal(ids, want[sc]) && !(len(ids) == 0 && len(want[sc]) == 0) {
			t.Errorf("scope %+v: candidates %v, the rules serve %v", sc, ids, want[sc])
		}
	}
}
