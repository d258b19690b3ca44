package worker_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"selfserve/internal/notify/smtpsink"
	"selfserve/internal/rules"
	"selfserve/internal/store"
)

// simUser is the test's own view of an end user.
type simUser struct {
	rec       store.UserRecord
	customer  int
	selfServe bool
	id        int64
}

// simNotice is a notice as the test expects it: (user, kind, occasion).
type simNotice struct {
	user     int
	kind     rules.NoticeKind
	occasion string
}

// TestThirtyDaySimulation runs 30 days hour by hour with a controllable
// clock over 1,000 end users in four time zones (London and New York change
// from summer time within the window), with expiry dates spread over the
// window, password changes, lockouts and unlocks, and accounts disabled on
// the way. Every hour the expiry scan runs and the queues drain through the
// real senders. The notices sent must be exactly those the test computes on
// its own: each once per channel, on its local day at or after 09:00 there,
// none to an inactive end user, none after a password change.
func TestThirtyDaySimulation(t *testing.T) {
	t.Parallel()
	requireServices(t)
	ctx := context.Background()
	st, _ := postgresStore(t)
	rd := testRedis(t)
	start := time.Date(2026, 10, 20, 0, 0, 0, 0, time.UTC)
	const hours = 30 * 24
	clk := newClock(start)
	rng := rand.New(rand.NewPCG(6, 2026))

	f := newFixture(t, st, "sim", 8)
	locs := make([]*time.Location, len(f.customers))
	for i, c := range f.customers {
		locs[i] = c.Location(f.tenant)
	}
	users := make([]*simUser, 1000)
	for i := range users {
		expires := start.Add(time.Duration(rng.Int64N(int64(44*24*time.Hour))) - 2*24*time.Hour).Truncate(time.Second)
		u := &simUser{rec: userRec(i, expires), customer: i % len(f.customers), selfServe: true}
		switch r := rng.IntN(100); {
		case r < 8:
			u.rec.PasswordNeverExpires = true
		case r < 12:
			u.rec.Enabled = false
		case r < 16:
			u.rec.Mobile = ""
		case r < 20:
			u.selfServe = false
		}
		users[i] = u
	}
	for c := range f.customers {
		var recs []store.UserRecord
		for _, u := range users {
			if u.customer == c {
				recs = append(recs, u.rec)
			}
		}
		f.put(t, st, c, recs...)
	}
	stored, err := st.EndUsers(ctx, f.tenant.ID, store.EndUserFilter{})
	must(t, err)
	byExt := map[string]int64{}
	for _, s := range stored {
		byExt[s.ExternalID] = s.ID
	}
	var off []int64
	for _, u := range users {
		u.id = byExt[u.rec.ExternalID]
		if !u.selfServe {
			off = append(off, u.id)
		}
	}
	_, err = st.SetSelfServe(ctx, f.tenant.ID, off, false)
	must(t, err)

	// Events, at hour boundaries: password changes, lockouts (each unlocked
	// a few hours later), accounts disabled.
	type event struct {
		user int
		kind string
	}
	events := map[int][]event{}
	for range 300 {
		h := rng.IntN(hours)
		events[h] = append(events[h], event{rng.IntN(len(users)), "password"})
	}
	for range 200 {
		h, u := rng.IntN(hours), rng.IntN(len(users))
		events[h] = append(events[h], event{u, "lock"})
		events[h+1+rng.IntN(6)] = append(events[h+1+rng.IntN(6)], event{u, "unlock"})
	}
	for range 25 {
		h := rng.IntN(hours)
		events[h] = append(events[h], event{rng.IntN(len(users)), "disable"})
	}

	ch := newChannels(t, smtpsink.Options{})
	n := newNode(t, nodeOptions{redis: rd, st: st, clock: clk.Now, ch: ch.senders()})
	n.start(t)

	expected := map[simNotice]bool{}
	passwordChanged := map[int]time.Time{}
	for h := range hours {
		at := start.Add(time.Duration(h) * time.Hour)
		touched := map[int]bool{}
		for _, e := range events[h] {
			u := users[e.user]
			switch e.kind {
			case "password":
				u.rec.PasswordLastSet = at
				u.rec.PasswordExpiresAt = at.Add(90 * 24 * time.Hour)
				passwordChanged[e.user] = at
			case "lock":
				if u.rec.LockedOut {
					continue
				}
				u.rec.LockedOut = true
				u.rec.LockedOutAt = at.Add(-time.Duration(1+rng.IntN(50)) * time.Minute)
			case "unlock":
				u.rec.LockedOut, u.rec.LockedOutAt = false, time.Time{}
			case "disable":
				u.rec.Enabled = false
			}
			touched[e.user] = true
		}
		for c := range f.customers {
			var recs []store.UserRecord
			for i := range touched {
				if users[i].customer == c {
					recs = append(recs, users[i].rec)
				}
			}
			if len(recs) > 0 {
				f.put(t, st, c, recs...)
			}
		}
		// The test's own computation of what is due at this hour.
		for i, u := range users {
			active := u.selfServe && u.rec.Enabled && u.rec.Email != "" && u.rec.Mobile != ""
			if !active {
				continue
			}
			loc := locs[u.customer]
			day := at.In(loc).Format("2006-01-02")
			y, m, d := at.In(loc).Date()
			nine := time.Date(y, m, d, 9, 0, 0, 0, loc)
			if !u.rec.PasswordNeverExpires && !at.Before(nine) {
				ey, em, ed := u.rec.PasswordExpiresAt.In(loc).Date()
				days := int(time.Date(ey, em, ed, 12, 0, 0, 0, time.UTC).Sub(time.Date(y, m, d, 12, 0, 0, 0, time.UTC)) / (24 * time.Hour))
				switch {
				case days == 0:
					expected[simNotice{i, rules.KindExpiryDay, day}] = true
				case days >= 1 && days <= 10:
					expected[simNotice{i, rules.KindExpiryReminder, day}] = true
				}
			}
			if u.rec.LockedOut && at.Sub(u.rec.LockedOutAt) <= 24*time.Hour {
				expected[simNotice{i, rules.KindLockout, u.rec.LockedOutAt.UTC().Format(time.RFC3339)}] = true
			}
		}
		clk.Set(at)
		if _, err := n.scanner.Scan(ctx); err != nil {
			t.Fatalf("scan at %s: %v", at, err)
		}
		waitLedger(t, st, time.Minute)
	}

	// What was sent, from the ledger and from the providers.
	idx := map[int64]int{}
	for i, u := range users {
		idx[u.id] = i
	}
	got := map[simNotice]map[store.Channel]store.Notice{}
	for _, nt := range notices(t, st, f.tenant.ID) {
		if nt.Status != store.NoticeSent {
			t.Errorf("notice %+v is %s (%s), want sent", nt, nt.Status, nt.Error)
			continue
		}
		k := simNotice{idx[nt.EndUserID], nt.Kind, nt.Occasion}
		if got[k] == nil {
			got[k] = map[store.Channel]store.Notice{}
		}
		got[k][nt.Channel] = nt
		u := users[k.user]
		if nt.Kind != rules.KindLockout {
			loc := locs[u.customer]
			if local := nt.SentAt.In(loc); local.Format("2006-01-02") != nt.Occasion || local.Hour() < 9 {
				t.Errorf("%+v sent at %s local, not on its day from 09:00", k, local)
			}
			if changed, ok := passwordChanged[k.user]; ok && !nt.SentAt.Before(changed) && u.rec.PasswordExpiresAt.Sub(*nt.SentAt) > 80*24*time.Hour {
				t.Errorf("%+v sent at %s, after the password change at %s", k, nt.SentAt, changed)
			}
		}
	}
	var missing, extra []string
	for k := range expected {
		if len(got[k]) != 2 {
			missing = append(missing, fmt.Sprintf("%s %s %s (%d channels)", users[k.user].rec.ExternalID, k.kind, k.occasion, len(got[k])))
		}
	}
	for k := range got {
		if !expected[k] {
			extra = append(extra, fmt.Sprintf("%s %s %s", users[k.user].rec.ExternalID, k.kind, k.occasion))
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) > 0 || len(extra) > 0 {
		t.Fatalf("%d expected notices, %d sent; missing %d: %v; unexpected %d: %v", len(expected), len(got), len(missing), head(missing), len(extra), head(extra))
	}
	kinds := map[rules.NoticeKind]int{}
	for k := range expected {
		kinds[k.kind]++
	}
	if kinds[rules.KindExpiryReminder] < 1000 || kinds[rules.KindExpiryDay] < 100 || kinds[rules.KindLockout] < 100 {
		t.Fatalf("the simulation exercised too little: %v", kinds)
	}
	// Each delivered once: one email per email row, one SMS per SMS row.
	emails := map[string]int{}
	for _, m := range ch.sink.Messages() {
		emails[m.MessageID]++
	}
	smsKeys := map[string]int{}
	for _, m := range ch.twilio.Messages() {
		smsKeys[m.IdempotencyKey]++
	}
	if len(emails) != len(expected) || ch.sink.Count() != len(expected) || len(smsKeys) != len(expected) || len(ch.twilio.Messages()) != len(expected) {
		t.Fatalf("%d notices: %d emails (%d distinct), %d SMS (%d distinct)", len(expected), ch.sink.Count(), len(emails), len(ch.twilio.Messages()), len(smsKeys))
	}
	t.Logf("30 days: %d notices sent once on each channel (%v)", len(expected), kinds)
}

func head(s []string) []string { return s[:min(len(s), 10)] }

// waitLedger waits until no ledger row is pending or sending.
func waitLedger(t *testing.T, st *store.Store, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var open int
		must(t, st.DB().Get(&open, `SELECT COUNT(*) FROM notices WHERE status IN ('pending', 'sending')`))
		if open == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d notices still pending or sending after %s", open, timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
