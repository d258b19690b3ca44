package rules_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"selfserve/internal/rules"
)

// loadLocation loads an IANA zone or stops the test.
func loadLocation(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("load time zone %s: %v", name, err)
	}
	return loc
}

// utc parses an RFC 3339 instant or stops the test.
func utc(t testing.TB, s string) time.Time {
	t.Helper()
	at, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("parse instant %q: %v", s, err)
	}
	return at
}

// brief renders notices as "kind occasion days_left" for comparison.
func brief(notices []rules.Notice) []string {
	var out []string
	for _, n := range notices {
		out = append(out, fmt.Sprintf("%s %s %d", n.Kind, n.Occasion, n.DaysLeft))
	}
	return out
}

// checkPlan runs Plan and compares the result with want (brief form). When
// wantDueAt is not zero, the first notice must be due at that instant.
func checkPlan(t *testing.T, tenant rules.Tenant, loc *time.Location, user rules.EndUser, now time.Time, want []string, wantDueAt time.Time) []rules.Notice {
	t.Helper()
	got := rules.Plan(tenant, loc, user, now)
	if !slices.Equal(brief(got), want) {
		t.Fatalf("Plan at %s (%s) = %q, want %q", now.UTC().Format(time.RFC3339Nano), now.In(loc).Format("2006-01-02 15:04:05 MST"), brief(got), want)
	}
	if !wantDueAt.IsZero() && len(got) > 0 && !got[0].DueAt.Equal(wantDueAt) {
		t.Errorf("DueAt = %s, want %s", got[0].DueAt.UTC().Format(time.RFC3339), wantDueAt.UTC().Format(time.RFC3339))
	}
	for _, n := range got {
		if n.DueAt.After(now) {
			t.Errorf("%s notice due at %s, after now %s", n.Kind, n.DueAt.UTC(), now.UTC())
		}
		if n.Kind != rules.KindLockout && !n.ExpiresAt.Equal(user.PasswordExpiresAt) {
			t.Errorf("%s notice ExpiresAt = %s, want %s", n.Kind, n.ExpiresAt, user.PasswordExpiresAt)
		}
	}
	return got
}

func TestPlanReminderDays(t *testing.T) {
	t.Parallel()
	london := loadLocation(t, "Europe/London")
	user := servedUser()
	user.PasswordExpiresAt = time.Date(2025, 6, 20, 14, 0, 0, 0, london)
	tests := []struct {
		day  string // local date, planner run at 09:00 local
		want []string
	}{
		{day: "2025-06-08", want: nil},
		{day: "2025-06-09", want: nil}, // 11 days before
		{day: "2025-06-10", want: []string{"expiry_reminder 2025-06-10 10"}},
		{day: "2025-06-11", want: []string{"expiry_reminder 2025-06-11 9"}},
		{day: "2025-06-12", want: []string{"expiry_reminder 2025-06-12 8"}},
		{day: "2025-06-13", want: []string{"expiry_reminder 2025-06-13 7"}},
		{day: "2025-06-14", want: []string{"expiry_reminder 2025-06-14 6"}},
		{day: "2025-06-15", want: []string{"expiry_reminder 2025-06-15 5"}},
		{day: "2025-06-16", want: []string{"expiry_reminder 2025-06-16 4"}},
		{day: "2025-06-17", want: []string{"expiry_reminder 2025-06-17 3"}},
		{day: "2025-06-18", want: []string{"expiry_reminder 2025-06-18 2"}},
		{day: "2025-06-19", want: []string{"expiry_reminder 2025-06-19 1"}},
		{day: "2025-06-20", want: []string{"expiry_day 2025-06-20 0"}},
		{day: "2025-06-21", want: nil}, // nothing after the expiry day
		{day: "2025-06-22", want: nil},
		{day: "2025-07-20", want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.day, func(t *testing.T) {
			t.Parallel()
			d, err := time.ParseInLocation("2006-01-02", tt.day, london)
			if err != nil {
				t.Fatal(err)
			}
			sendAt := d.Add(9 * time.Hour)
			checkPlan(t, servedTenant(), london, user, sendAt, tt.want, sendAt)
			// Later the same day the same occasion is planned again.
			checkPlan(t, servedTenant(), london, user, sendAt.Add(14*time.Hour+59*time.Minute), tt.want, sendAt)
		})
	}
}

func TestPlanExpiryDay(t *testing.T) {
	t.Parallel()
	london := loadLocation(t, "Europe/London")
	at := func(s string) time.Time {
		v, err := time.ParseInLocation("2006-01-02 15:04:05", s, london)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		name    string
		expires string
		now     string
		want    []string
	}{
		{name: "expired earlier that day", expires: "2025-06-20 03:00:00", now: "2025-06-20 09:00:00", want: []string{"expiry_day 2025-06-20 0"}},
		{name: "expired at local midnight", expires: "2025-06-20 00:00:00", now: "2025-06-20 09:00:00", want: []string{"expiry_day 2025-06-20 0"}},
		{name: "expires later that day", expires: "2025-06-20 23:59:59", now: "2025-06-20 09:00:00", want: []string{"expiry_day 2025-06-20 0"}},
		{name: "expired minutes before the run", expires: "2025-06-20 10:00:00", now: "2025-06-20 10:05:00", want: []string{"expiry_day 2025-06-20 0"}},
		{name: "late evening of the expiry day", expires: "2025-06-20 03:00:00", now: "2025-06-20 23:59:59", want: []string{"expiry_day 2025-06-20 0"}},
		{name: "before the send hour of the expiry day", expires: "2025-06-20 03:00:00", now: "2025-06-20 08:59:59", want: nil},
		{name: "the day after", expires: "2025-06-20 23:59:59", now: "2025-06-21 09:00:00", want: nil},
		{name: "one second before local midnight is the day before", expires: "2025-06-19 23:59:59", now: "2025-06-20 09:00:00", want: nil},
		{name: "long expired", expires: "2025-05-01 12:00:00", now: "2025-06-20 09:00:00", want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			user := servedUser()
			user.PasswordExpiresAt = at(tt.expires)
			checkPlan(t, servedTenant(), london, user, at(tt.now), tt.want, time.Time{})
		})
	}
}

func TestPlanReminderWindow(t *testing.T) {
	t.Parallel()
	london := loadLocation(t, "Europe/London")
	expires := time.Date(2025, 6, 20, 14, 0, 0, 0, london)
	tests := []struct {
		name     string
		window   int
		daysLeft int
		want     []string
	}{
		{name: "window 5, day 6", window: 5, daysLeft: 6, want: nil},
		{name: "window 5, day 5", window: 5, daysLeft: 5, want: []string{"expiry_reminder 2025-06-15 5"}},
		{name: "window 5, day 1", window: 5, daysLeft: 1, want: []string{"expiry_reminder 2025-06-19 1"}},
		{name: "window 5, day 0", window: 5, daysLeft: 0, want: []string{"expiry_day 2025-06-20 0"}},
		{name: "window 1, day 2", window: 1, daysLeft: 2, want: nil},
		{name: "window 1, day 1", window: 1, daysLeft: 1, want: []string{"expiry_reminder 2025-06-19 1"}},
		{name: "window 14, day 14", window: 14, daysLeft: 14, want: []string{"expiry_reminder 2025-06-06 14"}},
		{name: "window 14, day 15", window: 14, daysLeft: 15, want: nil},
		{name: "unset window defaults to 10, day 10", window: 0, daysLeft: 10, want: []string{"expiry_reminder 2025-06-10 10"}},
		{name: "unset window defaults to 10, day 11", window: 0, daysLeft: 11, want: nil},
		{name: "negative window defaults to 10", window: -3, daysLeft: 10, want: []string{"expiry_reminder 2025-06-10 10"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tenant := servedTenant()
			tenant.ReminderDays = tt.window
			user := servedUser()
			user.PasswordExpiresAt = expires
			now := time.Date(2025, 6, 20-tt.daysLeft, 9, 30, 0, 0, london)
			checkPlan(t, tenant, london, user, now, tt.want, time.Time{})
		})
	}
}

func TestPlanPasswordChangeEndsReminders(t *testing.T) {
	t.Parallel()
	ny := loadLocation(t, "America/New_York")
	oldExpiry := time.Date(2025, 6, 20, 17, 0, 0, 0, ny)
	changedAt := time.Date(2025, 6, 17, 11, 0, 0, 0, ny)
	newExpiry := changedAt.AddDate(0, 0, 90) // 2025-09-15
	tests := []struct {
		name    string
		expires time.Time
		now     time.Time
		want    []string
	}{
		{name: "reminder before the change", expires: oldExpiry, now: time.Date(2025, 6, 17, 9, 0, 0, 0, ny), want: []string{"expiry_reminder 2025-06-17 3"}},
		{name: "same day after the change", expires: newExpiry, now: time.Date(2025, 6, 17, 12, 0, 0, 0, ny), want: nil},
		{name: "next day", expires: newExpiry, now: time.Date(2025, 6, 18, 9, 0, 0, 0, ny), want: nil},
		{name: "old expiry day", expires: newExpiry, now: time.Date(2025, 6, 20, 9, 0, 0, 0, ny), want: nil},
		{name: "11 days before the new expiry", expires: newExpiry, now: time.Date(2025, 9, 4, 9, 0, 0, 0, ny), want: nil},
		{name: "reminders resume for the new expiry", expires: newExpiry, now: time.Date(2025, 9, 5, 9, 0, 0, 0, ny), want: []string{"expiry_reminder 2025-09-05 10"}},
		{name: "new expiry day", expires: newExpiry, now: time.Date(2025, 9, 15, 9, 0, 0, 0, ny), want: []string{"expiry_day 2025-09-15 0"}},
		{name: "changed and now never expires", expires: time.Time{}, now: time.Date(2025, 6, 18, 9, 0, 0, 0, ny), want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			user := servedUser()
			user.PasswordExpiresAt = tt.expires
			checkPlan(t, servedTenant(), ny, user, tt.now, tt.want, time.Time{})
		})
	}
}

func TestPlanWhoGetsNotices(t *testing.T) {
	t.Parallel()
	london := loadLocation(t, "Europe/London")
	now := time.Date(2025, 6, 18, 9, 30, 0, 0, london)
	lockedAt := now.Add(-time.Hour)
	lockout := "lockout " + lockedAt.UTC().Format(time.RFC3339) + " 0"
	reminder := "expiry_reminder 2025-06-18 2"
	tests := []struct {
		name   string
		tenant func(*rules.Tenant)
		user   func(*rules.EndUser)
		want   []string
	}{
		{name: "ad user gets both", want: []string{lockout, reminder}},
		{name: "local user gets both", user: func(u *rules.EndUser) { u.Source = rules.SourceLocal }, want: []string{lockout, reminder}},
		{name: "azure user gets both", user: func(u *rules.EndUser) { u.Source = rules.SourceAzure }, want: []string{lockout, reminder}},
		{name: "qdesk tenant", tenant: func(t *rules.Tenant) { t.Subscription = rules.SubscriptionQDesk }, want: []string{lockout, reminder}},
		{name: "never expiring with a stale expiry date", user: func(u *rules.EndUser) { u.PasswordNeverExpires = true }, want: []string{lockout}},
		{name: "never expiring", user: func(u *rules.EndUser) { u.PasswordNeverExpires = true; u.PasswordExpiresAt = time.Time{} }, want: []string{lockout}},
		{name: "unknown expiry", user: func(u *rules.EndUser) { u.PasswordExpiresAt = time.Time{} }, want: []string{lockout}},
		{name: "never expiring and not locked", user: func(u *rules.EndUser) { u.PasswordNeverExpires = true; u.LockedOut = false }, want: nil},
		{name: "disabled", user: func(u *rules.EndUser) { u.Enabled = false }, want: nil},
		{name: "removed from source", user: func(u *rules.EndUser) { u.Removed = true }, want: nil},
		{name: "manual source", user: func(u *rules.EndUser) { u.Source = rules.SourceManual }, want: nil},
		{name: "unknown source", user: func(u *rules.EndUser) { u.Source = "" }, want: nil},
		{name: "switch off", user: func(u *rules.EndUser) { u.SelfServe = false }, want: nil},
		{name: "missing email", user: func(u *rules.EndUser) { u.Email = "" }, want: nil},
		{name: "missing mobile", user: func(u *rules.EndUser) { u.Mobile = "" }, want: nil},
		{name: "tenant override off", tenant: func(t *rules.Tenant) { t.SelfServe = false }, want: nil},
		{name: "subscription none", tenant: func(t *rules.Tenant) { t.Subscription = rules.SubscriptionNone }, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tenant := servedTenant()
			user := servedUser()
			user.PasswordExpiresAt = time.Date(2025, 6, 20, 14, 0, 0, 0, london)
			user.LockedOut = true
			user.LockedOutAt = lockedAt
			if tt.tenant != nil {
				tt.tenant(&tenant)
			}
			if tt.user != nil {
				tt.user(&user)
			}
			checkPlan(t, tenant, london, user, now, tt.want, time.Time{})
		})
	}
}

func TestPlanSendHour(t *testing.T) {
	t.Parallel()
	london := loadLocation(t, "Europe/London")
	at := func(day, hour, minute, second, nsec int) time.Time {
		return time.Date(2025, 6, day, hour, minute, second, nsec, london)
	}
	expires := time.Date(2025, 6, 20, 12, 0, 0, 0, london)
	tests := []struct {
		name      string
		sendHour  int
		now       time.Time
		want      []string
		wantDueAt time.Time
	}{
		{name: "local midnight", sendHour: 9, now: at(15, 0, 0, 0, 0), want: nil},
		{name: "just before the send hour", sendHour: 9, now: at(15, 8, 59, 59, 999999999), want: nil},
		{name: "at the send hour", sendHour: 9, now: at(15, 9, 0, 0, 0), want: []string{"expiry_reminder 2025-06-15 5"}, wantDueAt: at(15, 9, 0, 0, 0)},
		{name: "a second after", sendHour: 9, now: at(15, 9, 0, 1, 0), want: []string{"expiry_reminder 2025-06-15 5"}, wantDueAt: at(15, 9, 0, 0, 0)},
		{name: "afternoon", sendHour: 9, now: at(15, 15, 30, 0, 0), want: []string{"expiry_reminder 2025-06-15 5"}, wantDueAt: at(15, 9, 0, 0, 0)},
		{name: "last instant of the day", sendHour: 9, now: at(15, 23, 59, 59, 999999999), want: []string{"expiry_reminder 2025-06-15 5"}, wantDueAt: at(15, 9, 0, 0, 0)},
		{name: "next local midnight", sendHour: 9, now: at(16, 0, 0, 0, 0), want: nil},
		{name: "next day at the send hour", sendHour: 9, now: at(16, 9, 0, 0, 0), want: []string{"expiry_reminder 2025-06-16 4"}, wantDueAt: at(16, 9, 0, 0, 0)},
		{name: "send hour 0 at midnight", sendHour: 0, now: at(15, 0, 0, 0, 0), want: []string{"expiry_reminder 2025-06-15 5"}, wantDueAt: at(15, 0, 0, 0, 0)},
		{name: "send hour 0 just before midnight", sendHour: 0, now: at(14, 23, 59, 59, 0), want: []string{"expiry_reminder 2025-06-14 6"}, wantDueAt: at(14, 0, 0, 0, 0)},
		{name: "send hour 23 before", sendHour: 23, now: at(15, 22, 59, 59, 0), want: nil},
		{name: "send hour 23 at", sendHour: 23, now: at(15, 23, 0, 0, 0), want: []string{"expiry_reminder 2025-06-15 5"}, wantDueAt: at(15, 23, 0, 0, 0)},
		{name: "out-of-range send hour uses the default 9, before", sendHour: 24, now: at(15, 8, 59, 0, 0), want: nil},
		{name: "out-of-range send hour uses the default 9, at", sendHour: 24, now: at(15, 9, 0, 0, 0), want: []string{"expiry_reminder 2025-06-15 5"}, wantDueAt: at(15, 9, 0, 0, 0)},
		{name: "negative send hour uses the default 9", sendHour: -1, now: at(15, 9, 0, 0, 0), want: []string{"expiry_reminder 2025-06-15 5"}, wantDueAt: at(15, 9, 0, 0, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tenant := servedTenant()
			tenant.SendHour = tt.sendHour
			user := servedUser()
			user.PasswordExpiresAt = expires
			checkPlan(t, tenant, london, user, tt.now, tt.want, tt.wantDueAt)
		})
	}
}

// TestPlanIdempotentAllDay runs the planner every minute of one local day:
// nothing before the send hour, then one and the same notice until midnight.
func TestPlanIdempotentAllDay(t *testing.T) {
	t.Parallel()
	london := loadLocation(t, "Europe/London")
	user := servedUser()
	user.PasswordExpiresAt = time.Date(2025, 6, 20, 12, 0, 0, 0, london)
	start := time.Date(2025, 6, 15, 0, 0, 0, 0, london)
	sendAt := start.Add(9 * time.Hour)
	seen := map[string]int{}
	for now := start; now.Before(start.AddDate(0, 0, 1)); now = now.Add(time.Minute) {
		got := rules.Plan(servedTenant(), london, user, now)
		if now.Before(sendAt) {
			if len(got) != 0 {
				t.Fatalf("at %s before the send hour: %q", now, brief(got))
			}
			continue
		}
		if len(got) != 1 || !got[0].DueAt.Equal(sendAt) {
			t.Fatalf("at %s: %q (due %v), want one notice due at %s", now, brief(got), got, sendAt)
		}
		seen[brief(got)[0]]++
	}
	want := map[string]int{"expiry_reminder 2025-06-15 5": 15 * 60}
	if fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Errorf("notices over the day = %v, want %v", seen, want)
	}
}

func TestPlanDaylightSaving(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		zone      string
		sendHour  int
		expires   string // RFC 3339
		now       string // RFC 3339
		want      []string
		wantDueAt string // RFC 3339, optional
	}{
		// America/New_York springs forward on 2025-03-09 at 02:00 EST
		// (07:00Z) to 03:00 EDT.
		{name: "NY day before spring forward", zone: "America/New_York", sendHour: 9, expires: "2025-03-12T16:00:00Z",
			now: "2025-03-08T14:00:00Z", want: []string{"expiry_reminder 2025-03-08 4"}, wantDueAt: "2025-03-08T14:00:00Z"},
		{name: "NY day before spring forward, 08:59 EST", zone: "America/New_York", sendHour: 9, expires: "2025-03-12T16:00:00Z",
			now: "2025-03-08T13:59:59Z", want: nil},
		{name: "NY spring forward 08:59 EDT", zone: "America/New_York", sendHour: 9, expires: "2025-03-12T16:00:00Z",
			now: "2025-03-09T12:59:59Z", want: nil},
		{name: "NY spring forward 09:00 EDT", zone: "America/New_York", sendHour: 9, expires: "2025-03-12T16:00:00Z",
			now: "2025-03-09T13:00:00Z", want: []string{"expiry_reminder 2025-03-09 3"}, wantDueAt: "2025-03-09T13:00:00Z"},
		{name: "NY spring forward 23:59 EDT", zone: "America/New_York", sendHour: 9, expires: "2025-03-12T16:00:00Z",
			now: "2025-03-10T03:59:59Z", want: []string{"expiry_reminder 2025-03-09 3"}, wantDueAt: "2025-03-09T13:00:00Z"},
		{name: "NY day after spring forward, midnight", zone: "America/New_York", sendHour: 9, expires: "2025-03-12T16:00:00Z",
			now: "2025-03-10T04:00:00Z", want: nil},
		{name: "NY 23-hour day: expiry just after local midnight is tomorrow", zone: "America/New_York", sendHour: 9, expires: "2025-03-10T04:30:00Z",
			now: "2025-03-09T13:00:00Z", want: []string{"expiry_reminder 2025-03-09 1"}},
		{name: "NY 23-hour day: expiry late that evening is today", zone: "America/New_York", sendHour: 9, expires: "2025-03-10T03:30:00Z",
			now: "2025-03-09T13:00:00Z", want: []string{"expiry_day 2025-03-09 0"}},
		// Send hour 2: 02:00-03:00 does not exist on 2025-03-09.
		{name: "NY skipped send hour, 01:00 EST", zone: "America/New_York", sendHour: 2, expires: "2025-03-12T16:00:00Z",
			now: "2025-03-09T06:00:00Z", want: nil},
		{name: "NY skipped send hour, 01:59:59 EST", zone: "America/New_York", sendHour: 2, expires: "2025-03-12T16:00:00Z",
			now: "2025-03-09T06:59:59Z", want: nil},
		{name: "NY skipped send hour, 03:00 EDT", zone: "America/New_York", sendHour: 2, expires: "2025-03-12T16:00:00Z",
			now: "2025-03-09T07:00:00Z", want: []string{"expiry_reminder 2025-03-09 3"}, wantDueAt: "2025-03-09T07:00:00Z"},
		{name: "NY skipped send hour, later that day", zone: "America/New_York", sendHour: 2, expires: "2025-03-12T16:00:00Z",
			now: "2025-03-09T20:00:00Z", want: []string{"expiry_reminder 2025-03-09 3"}, wantDueAt: "2025-03-09T07:00:00Z"},
		{name: "NY send hour 2 the day before", zone: "America/New_York", sendHour: 2, expires: "2025-03-12T16:00:00Z",
			now: "2025-03-08T07:00:00Z", want: []string{"expiry_reminder 2025-03-08 4"}, wantDueAt: "2025-03-08T07:00:00Z"},
		{name: "NY send hour 2 the day after, 01:59 EDT", zone: "America/New_York", sendHour: 2, expires: "2025-03-12T16:00:00Z",
			now: "2025-03-10T05:59:59Z", want: nil},
		{name: "NY send hour 2 the day after, 02:00 EDT", zone: "America/New_York", sendHour: 2, expires: "2025-03-12T16:00:00Z",
			now: "2025-03-10T06:00:00Z", want: []string{"expiry_reminder 2025-03-10 2"}, wantDueAt: "2025-03-10T06:00:00Z"},

		// America/New_York falls back on 2025-11-02 at 02:00 EDT (06:00Z)
		// to 01:00 EST: 01:00-02:00 happens twice.
		{name: "NY day before fall back", zone: "America/New_York", sendHour: 9, expires: "2025-11-05T17:00:00Z",
			now: "2025-11-01T13:00:00Z", want: []string{"expiry_reminder 2025-11-01 4"}, wantDueAt: "2025-11-01T13:00:00Z"},
		{name: "NY fall back 08:59 EST", zone: "America/New_York", sendHour: 9, expires: "2025-11-05T17:00:00Z",
			now: "2025-11-02T13:59:59Z", want: nil},
		{name: "NY fall back 09:00 EST", zone: "America/New_York", sendHour: 9, expires: "2025-11-05T17:00:00Z",
			now: "2025-11-02T14:00:00Z", want: []string{"expiry_reminder 2025-11-02 3"}, wantDueAt: "2025-11-02T14:00:00Z"},
		{name: "NY 25-hour day: expiry at 23:59:59 EST is today", zone: "America/New_York", sendHour: 9, expires: "2025-11-03T04:59:59Z",
			now: "2025-11-02T14:00:00Z", want: []string{"expiry_day 2025-11-02 0"}},
		{name: "NY 25-hour day: expiry at the next midnight is tomorrow", zone: "America/New_York", sendHour: 9, expires: "2025-11-03T05:00:00Z",
			now: "2025-11-02T14:00:00Z", want: []string{"expiry_reminder 2025-11-02 1"}},
		// Send hour 1: 01:00-02:00 is repeated; the first 01:00 (EDT) counts.
		{name: "NY repeated send hour, 00:59:59 EDT", zone: "America/New_York", sendHour: 1, expires: "2025-11-05T17:00:00Z",
			now: "2025-11-02T04:59:59Z", want: nil},
		{name: "NY repeated send hour, first 01:00 EDT", zone: "America/New_York", sendHour: 1, expires: "2025-11-05T17:00:00Z",
			now: "2025-11-02T05:00:00Z", want: []string{"expiry_reminder 2025-11-02 3"}, wantDueAt: "2025-11-02T05:00:00Z"},
		{name: "NY repeated send hour, second 01:00 EST", zone: "America/New_York", sendHour: 1, expires: "2025-11-05T17:00:00Z",
			now: "2025-11-02T06:00:00Z", want: []string{"expiry_reminder 2025-11-02 3"}, wantDueAt: "2025-11-02T05:00:00Z"},
		{name: "NY repeated send hour, 01:30 EST", zone: "America/New_York", sendHour: 1, expires: "2025-11-05T17:00:00Z",
			now: "2025-11-02T06:30:00Z", want: []string{"expiry_reminder 2025-11-02 3"}, wantDueAt: "2025-11-02T05:00:00Z"},
		// Send hour 2 on the fall-back day: 02:00 EST comes after both 01:xx.
		{name: "NY send hour 2 fall back, 01:30 EDT", zone: "America/New_York", sendHour: 2, expires: "2025-11-05T17:00:00Z",
			now: "2025-11-02T05:30:00Z", want: nil},
		{name: "NY send hour 2 fall back, 01:30 EST", zone: "America/New_York", sendHour: 2, expires: "2025-11-05T17:00:00Z",
			now: "2025-11-02T06:30:00Z", want: nil},
		{name: "NY send hour 2 fall back, 02:00 EST", zone: "America/New_York", sendHour: 2, expires: "2025-11-05T17:00:00Z",
			now: "2025-11-02T07:00:00Z", want: []string{"expiry_reminder 2025-11-02 3"}, wantDueAt: "2025-11-02T07:00:00Z"},

		// Europe/London springs forward on 2025-03-30 at 01:00 GMT to 02:00
		// BST: 01:00-02:00 does not exist.
		{name: "London day before spring forward", zone: "Europe/London", sendHour: 9, expires: "2025-04-02T12:00:00Z",
			now: "2025-03-29T09:00:00Z", want: []string{"expiry_reminder 2025-03-29 4"}, wantDueAt: "2025-03-29T09:00:00Z"},
		{name: "London spring forward 08:59 BST", zone: "Europe/London", sendHour: 9, expires: "2025-04-02T12:00:00Z",
			now: "2025-03-30T07:59:59Z", want: nil},
		{name: "London spring forward 09:00 BST", zone: "Europe/London", sendHour: 9, expires: "2025-04-02T12:00:00Z",
			now: "2025-03-30T08:00:00Z", want: []string{"expiry_reminder 2025-03-30 3"}, wantDueAt: "2025-03-30T08:00:00Z"},
		{name: "London skipped send hour, 00:30 GMT", zone: "Europe/London", sendHour: 1, expires: "2025-04-02T12:00:00Z",
			now: "2025-03-30T00:30:00Z", want: nil},
		{name: "London skipped send hour, 00:59:59 GMT", zone: "Europe/London", sendHour: 1, expires: "2025-04-02T12:00:00Z",
			now: "2025-03-30T00:59:59Z", want: nil},
		{name: "London skipped send hour, 02:00 BST", zone: "Europe/London", sendHour: 1, expires: "2025-04-02T12:00:00Z",
			now: "2025-03-30T01:00:00Z", want: []string{"expiry_reminder 2025-03-30 3"}, wantDueAt: "2025-03-30T01:00:00Z"},

		// Europe/London falls back on 2025-10-26 at 02:00 BST to 01:00 GMT.
		{name: "London day before fall back", zone: "Europe/London", sendHour: 9, expires: "2025-10-29T12:00:00Z",
			now: "2025-10-25T08:00:00Z", want: []string{"expiry_reminder 2025-10-25 4"}, wantDueAt: "2025-10-25T08:00:00Z"},
		{name: "London fall back 08:59:59 GMT", zone: "Europe/London", sendHour: 9, expires: "2025-10-29T12:00:00Z",
			now: "2025-10-26T08:59:59Z", want: nil},
		{name: "London fall back 09:00 GMT", zone: "Europe/London", sendHour: 9, expires: "2025-10-29T12:00:00Z",
			now: "2025-10-26T09:00:00Z", want: []string{"expiry_reminder 2025-10-26 3"}, wantDueAt: "2025-10-26T09:00:00Z"},
		{name: "London repeated send hour, 00:59:59 BST", zone: "Europe/London", sendHour: 1, expires: "2025-10-29T12:00:00Z",
			now: "2025-10-25T23:59:59Z", want: nil},
		{name: "London repeated send hour, first 01:00 BST", zone: "Europe/London", sendHour: 1, expires: "2025-10-29T12:00:00Z",
			now: "2025-10-26T00:00:00Z", want: []string{"expiry_reminder 2025-10-26 3"}, wantDueAt: "2025-10-26T00:00:00Z"},
		{name: "London repeated send hour, 01:30 GMT", zone: "Europe/London", sendHour: 1, expires: "2025-10-29T12:00:00Z",
			now: "2025-10-26T01:30:00Z", want: []string{"expiry_reminder 2025-10-26 3"}, wantDueAt: "2025-10-26T00:00:00Z"},

		// America/Havana changes at midnight: on 2025-03-09 the day starts
		// at 01:00 CDT (05:00Z); on 2025-11-02 00:00-01:00 happens twice
		// (from 04:00Z, then from 05:00Z).
		{name: "Havana skipped midnight, last instant of the day before", zone: "America/Havana", sendHour: 0, expires: "2025-03-12T16:00:00Z",
			now: "2025-03-09T04:59:59Z", want: []string{"expiry_reminder 2025-03-08 4"}, wantDueAt: "2025-03-08T05:00:00Z"},
		{name: "Havana skipped midnight, first instant of the day", zone: "America/Havana", sendHour: 0, expires: "2025-03-12T16:00:00Z",
			now: "2025-03-09T05:00:00Z", want: []string{"expiry_reminder 2025-03-09 3"}, wantDueAt: "2025-03-09T05:00:00Z"},
		{name: "Havana repeated midnight, first 00:00 CDT", zone: "America/Havana", sendHour: 0, expires: "2025-11-05T17:00:00Z",
			now: "2025-11-02T04:00:00Z", want: []string{"expiry_reminder 2025-11-02 3"}, wantDueAt: "2025-11-02T04:00:00Z"},
		{name: "Havana repeated midnight, second 00:00 CST", zone: "America/Havana", sendHour: 0, expires: "2025-11-05T17:00:00Z",
			now: "2025-11-02T05:00:00Z", want: []string{"expiry_reminder 2025-11-02 3"}, wantDueAt: "2025-11-02T04:00:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			loc := loadLocation(t, tt.zone)
			tenant := servedTenant()
			tenant.SendHour = tt.sendHour
			user := servedUser()
			user.PasswordExpiresAt = utc(t, tt.expires)
			var wantDueAt time.Time
			if tt.wantDueAt != "" {
				wantDueAt = utc(t, tt.wantDueAt)
			}
			checkPlan(t, tenant, loc, user, utc(t, tt.now), tt.want, wantDueAt)
		})
	}
}

// TestPlanFarZones checks that days are counted in the customer's local date
// at UTC+14 and UTC-12, where the local and UTC dates differ most of the day.
func TestPlanFarZones(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		zone      string
		sendHour  int
		expires   string
		now       string
		want      []string
		wantDueAt string
	}{
		// Pacific/Kiritimati is UTC+14: local 2025-06-20 09:00 is
		// 2025-06-19T19:00Z.
		{name: "UTC+14 expiry 23:59:59 local today", zone: "Pacific/Kiritimati", sendHour: 9,
			expires: "2025-06-20T09:59:59Z", now: "2025-06-19T19:00:00Z", want: []string{"expiry_day 2025-06-20 0"}, wantDueAt: "2025-06-19T19:00:00Z"},
		{name: "UTC+14 expiry at local midnight is tomorrow", zone: "Pacific/Kiritimati", sendHour: 9,
			expires: "2025-06-20T10:00:00Z", now: "2025-06-19T19:00:00Z", want: []string{"expiry_reminder 2025-06-20 1"}},
		{name: "UTC+14 expired yesterday local, same UTC date", zone: "Pacific/Kiritimati", sendHour: 9,
			expires: "2025-06-19T09:59:59Z", now: "2025-06-19T19:00:00Z", want: nil},
		{name: "UTC+14 expired at local midnight, previous UTC date", zone: "Pacific/Kiritimati", sendHour: 9,
			expires: "2025-06-19T10:00:00Z", now: "2025-06-19T19:00:00Z", want: []string{"expiry_day 2025-06-20 0"}},
		{name: "UTC+14 before the send hour", zone: "Pacific/Kiritimati", sendHour: 9,
			expires: "2025-06-20T09:59:59Z", now: "2025-06-19T18:59:59Z", want: nil},
		{name: "UTC+14 send hour 0, 23:59:59 local", zone: "Pacific/Kiritimati", sendHour: 0,
			expires: "2025-06-20T05:00:00Z", now: "2025-06-19T09:59:59Z", want: []string{"expiry_reminder 2025-06-19 1"}, wantDueAt: "2025-06-18T10:00:00Z"},
		{name: "UTC+14 send hour 0, local midnight", zone: "Pacific/Kiritimati", sendHour: 0,
			expires: "2025-06-20T05:00:00Z", now: "2025-06-19T10:00:00Z", want: []string{"expiry_day 2025-06-20 0"}, wantDueAt: "2025-06-19T10:00:00Z"},
		{name: "UTC+14 send hour 0, end of the expiry day", zone: "Pacific/Kiritimati", sendHour: 0,
			expires: "2025-06-20T05:00:00Z", now: "2025-06-20T09:59:59Z", want: []string{"expiry_day 2025-06-20 0"}, wantDueAt: "2025-06-19T10:00:00Z"},
		{name: "UTC+14 send hour 0, day after", zone: "Pacific/Kiritimati", sendHour: 0,
			expires: "2025-06-20T05:00:00Z", now: "2025-06-20T10:00:00Z", want: nil},

		// Etc/GMT+12 is UTC-12: local 2025-06-20 09:00 is 2025-06-20T21:00Z.
		{name: "UTC-12 expiry 23:59:59 local today, next UTC date", zone: "Etc/GMT+12", sendHour: 9,
			expires: "2025-06-21T11:59:59Z", now: "2025-06-20T21:00:00Z", want: []string{"expiry_day 2025-06-20 0"}, wantDueAt: "2025-06-20T21:00:00Z"},
		{name: "UTC-12 expiry at local midnight is tomorrow", zone: "Etc/GMT+12", sendHour: 9,
			expires: "2025-06-21T12:00:00Z", now: "2025-06-20T21:00:00Z", want: []string{"expiry_reminder 2025-06-20 1"}},
		{name: "UTC-12 expired yesterday local, same UTC date", zone: "Etc/GMT+12", sendHour: 9,
			expires: "2025-06-20T11:59:59Z", now: "2025-06-20T21:00:00Z", want: nil},
		{name: "UTC-12 before the send hour", zone: "Etc/GMT+12", sendHour: 9,
			expires: "2025-06-21T11:59:59Z", now: "2025-06-20T20:59:59Z", want: nil},
		{name: "UTC-12 send hour 0, 23:59:59 local", zone: "Etc/GMT+12", sendHour: 0,
			expires: "2025-06-22T00:00:00Z", now: "2025-06-21T11:59:59Z", want: []string{"expiry_reminder 2025-06-20 1"}, wantDueAt: "2025-06-20T12:00:00Z"},
		{name: "UTC-12 send hour 0, local midnight", zone: "Etc/GMT+12", sendHour: 0,
			expires: "2025-06-22T00:00:00Z", now: "2025-06-21T12:00:00Z", want: []string{"expiry_day 2025-06-21 0"}, wantDueAt: "2025-06-21T12:00:00Z"},
		{name: "UTC-12 send hour 0, end of the expiry day", zone: "Etc/GMT+12", sendHour: 0,
			expires: "2025-06-22T00:00:00Z", now: "2025-06-22T11:59:59Z", want: []string{"expiry_day 2025-06-21 0"}},
		{name: "UTC-12 send hour 0, day after", zone: "Etc/GMT+12", sendHour: 0,
			expires: "2025-06-22T00:00:00Z", now: "2025-06-22T12:00:00Z", want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			loc := loadLocation(t, tt.zone)
			tenant := servedTenant()
			tenant.SendHour = tt.sendHour
			user := servedUser()
			user.PasswordExpiresAt = utc(t, tt.expires)
			var wantDueAt time.Time
			if tt.wantDueAt != "" {
				wantDueAt = utc(t, tt.wantDueAt)
			}
			checkPlan(t, tenant, loc, user, utc(t, tt.now), tt.want, wantDueAt)
		})
	}
}

func TestPlanLockout(t *testing.T) {
	t.Parallel()
	london := loadLocation(t, "Europe/London")
	lockedAt := time.Date(2025, 6, 15, 3, 4, 5, 678000000, london) // 02:04:05.678Z
	const occasion = "2025-06-15T02:04:05Z"
	tests := []struct {
		name   string
		tenant func(*rules.Tenant)
		user   func(*rules.EndUser)
		now    time.Time
		want   []string
	}{
		{name: "due at once, before the send hour", now: lockedAt.Add(time.Minute), want: []string{"lockout " + occasion + " 0"}},
		{name: "due at the lockout instant", now: lockedAt, want: []string{"lockout " + occasion + " 0"}},
		{name: "same occasion a week later", now: lockedAt.AddDate(0, 0, 7), want: []string{"lockout " + occasion + " 0"}},
		{name: "not yet at now", now: lockedAt.Add(-time.Second), want: nil},
		{name: "locked without a lockout time", user: func(u *rules.EndUser) { u.LockedOutAt = time.Time{} }, now: lockedAt.Add(time.Minute), want: nil},
		{name: "not locked, stale lockout time", user: func(u *rules.EndUser) { u.LockedOut = false }, now: lockedAt.Add(time.Minute), want: nil},
		{name: "another lockout event", user: func(u *rules.EndUser) { u.LockedOutAt = time.Date(2025, 6, 16, 14, 0, 0, 0, time.UTC) },
			now: time.Date(2025, 6, 16, 14, 0, 1, 0, time.UTC), want: []string{"lockout 2025-06-16T14:00:00Z 0"}},
		{name: "inactive: switch off", user: func(u *rules.EndUser) { u.SelfServe = false }, now: lockedAt.Add(time.Minute), want: nil},
		{name: "inactive: override off", tenant: func(t *rules.Tenant) { t.SelfServe = false }, now: lockedAt.Add(time.Minute), want: nil},
		{name: "inactive: subscription none", tenant: func(t *rules.Tenant) { t.Subscription = rules.SubscriptionNone }, now: lockedAt.Add(time.Minute), want: nil},
		{name: "inactive: no mobile", user: func(u *rules.EndUser) { u.Mobile = "" }, now: lockedAt.Add(time.Minute), want: nil},
		{name: "disabled", user: func(u *rules.EndUser) { u.Enabled = false }, now: lockedAt.Add(time.Minute), want: nil},
		{name: "removed", user: func(u *rules.EndUser) { u.Removed = true }, now: lockedAt.Add(time.Minute), want: nil},
		{name: "manual source", user: func(u *rules.EndUser) { u.Source = rules.SourceManual }, now: lockedAt.Add(time.Minute), want: nil},
		{name: "with an expiry reminder the same day", user: func(u *rules.EndUser) { u.PasswordExpiresAt = time.Date(2025, 6, 18, 12, 0, 0, 0, london) },
			now: time.Date(2025, 6, 15, 10, 0, 0, 0, london), want: []string{"lockout " + occasion + " 0", "expiry_reminder 2025-06-15 3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tenant := servedTenant()
			user := servedUser()
			user.LockedOut = true
			user.LockedOutAt = lockedAt
			if tt.tenant != nil {
				tt.tenant(&tenant)
			}
			if tt.user != nil {
				tt.user(&user)
			}
			got := checkPlan(t, tenant, london, user, tt.now, tt.want, time.Time{})
			for _, n := range got {
				if n.Kind != rules.KindLockout {
					continue
				}
				if !n.DueAt.Equal(user.LockedOutAt) {
					t.Errorf("lockout DueAt = %s, want the lockout instant %s", n.DueAt, user.LockedOutAt)
				}
				if n.Occasion != rules.LockoutOccasion(user.LockedOutAt) {
					t.Errorf("lockout Occasion = %q, want LockoutOccasion() = %q", n.Occasion, rules.LockoutOccasion(user.LockedOutAt))
				}
				if !n.ExpiresAt.IsZero() {
					t.Errorf("lockout ExpiresAt = %s, want zero", n.ExpiresAt)
				}
			}
		})
	}
}

func TestLockoutOccasion(t *testing.T) {
	t.Parallel()
	tokyo := loadLocation(t, "Asia/Tokyo")
	tests := []struct {
		name string
		at   time.Time
		want string
	}{
		{name: "UTC", at: time.Date(2025, 6, 15, 2, 4, 5, 0, time.UTC), want: "2025-06-15T02:04:05Z"},
		{name: "other zone in UTC", at: time.Date(2025, 6, 15, 9, 0, 0, 0, tokyo), want: "2025-06-15T00:00:00Z"},
		{name: "sub-second dropped", at: time.Date(2025, 6, 15, 2, 4, 5, 999999999, time.UTC), want: "2025-06-15T02:04:05Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := rules.LockoutOccasion(tt.at); got != tt.want {
				t.Errorf("LockoutOccasion(%s) = %q, want %q", tt.at, got, tt.want)
			}
		})
	}
}

func TestPlanNilLocationIsUTC(t *testing.T) {
	t.Parallel()
	user := servedUser()
	user.PasswordExpiresAt = time.Date(2025, 6, 20, 23, 0, 0, 0, time.UTC)
	now := time.Date(2025, 6, 20, 9, 0, 0, 0, time.UTC)
	checkPlan(t, servedTenant(), nil, user, now, []string{"expiry_day 2025-06-20 0"}, now)
}

// expectedNotice is one notice as the independent computation in
// TestPlanProperty sees it.
type expectedNotice struct {
	kind     rules.NoticeKind
	occasion string
	daysLeft int
}

// dayNumber numbers the calendar date t shows (in its own location) as days
// since 1970-01-01.
func dayNumber(t time.Time) int {
	y, m, d := t.Date()
	return int(time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400)
}

// expectedNotices is a straightforward restatement of DESIGN.md's rules,
// written without looking at how Plan computes them.
func expectedNotices(tenant rules.Tenant, loc *time.Location, u rules.EndUser, now time.Time) []expectedNotice {
	subscribed := tenant.Subscription == rules.SubscriptionQDesk || tenant.Subscription == rules.SubscriptionBundle
	directory := u.Source == rules.SourceLocal || u.Source == rules.SourceAD || u.Source == rules.SourceAzure
	served := subscribed && tenant.SelfServe && u.SelfServe && u.Email != "" && u.Mobile != "" && u.Enabled && !u.Removed
	if !served || !directory {
		return nil
	}
	var out []expectedNotice
	if u.LockedOut && !u.LockedOutAt.IsZero() && !now.Before(u.LockedOutAt) {
		out = append(out, expectedNotice{rules.KindLockout, u.LockedOutAt.UTC().Format("2006-01-02T15:04:05Z"), 0})
	}
	if u.PasswordNeverExpires || u.PasswordExpiresAt.IsZero() {
		return out
	}
	sendHour := tenant.SendHour
	if sendHour < 0 || sendHour > 23 {
		sendHour = 9
	}
	window := tenant.ReminderDays
	if window <= 0 {
		window = 10
	}
	local := now.In(loc)
	if local.Hour() < sendHour {
		return out
	}
	left := dayNumber(u.PasswordExpiresAt.In(loc)) - dayNumber(local)
	occasion := fmt.Sprintf("%04d-%02d-%02d", local.Year(), local.Month(), local.Day())
	switch {
	case left == 0:
		out = append(out, expectedNotice{rules.KindExpiryDay, occasion, 0})
	case left >= 1 && left <= window:
		out = append(out, expectedNotice{rules.KindExpiryReminder, occasion, left})
	}
	return out
}

// TestPlanProperty runs the planner every hour over 30 days for a random
// sample of tenants and users and compares each result with an independent
// computation; it then checks that every expiry occasion was planned on its
// own local day, and on every expected local day inside the scanned range.
func TestPlanProperty(t *testing.T) {
	t.Parallel()
	zones := []string{
		"America/New_York", "Europe/London", "Pacific/Kiritimati", "Etc/GMT+12",
		"Asia/Kathmandu", "Australia/Lord_Howe", "Australia/Sydney", "America/St_Johns", "UTC",
		"America/Havana", "America/Santiago", // DST changes at midnight
	}
	starts := []time.Time{
		time.Date(2025, 2, 25, 0, 0, 0, 0, time.UTC),  // NY, Havana and London spring forward
		time.Date(2025, 3, 25, 0, 0, 0, 0, time.UTC),  // Australian and Chilean DST end
		time.Date(2025, 9, 1, 0, 0, 0, 0, time.UTC),   // Chilean DST starts
		time.Date(2025, 9, 25, 0, 0, 0, 0, time.UTC),  // Australian DST starts
		time.Date(2025, 10, 20, 0, 0, 0, 0, time.UTC), // London, NY and Havana fall back
		time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC),   // no transition
	}
	directories := []rules.Source{rules.SourceAD, rules.SourceAzure, rules.SourceLocal}
	sources := []rules.Source{rules.SourceAD, rules.SourceAzure, rules.SourceLocal, rules.SourceManual}
	subscriptions := []rules.Subscription{rules.SubscriptionBundle, rules.SubscriptionQDesk, rules.SubscriptionNone}
	rng := rand.New(rand.NewPCG(20250601, 2))
	chance := func(p float64) bool { return rng.Float64() < p }
	// within returns a random instant in [from, from+d).
	within := func(from time.Time, d time.Duration) time.Time {
		return from.Add(time.Duration(rng.Int64N(int64(d))))
	}

	type sample struct {
		loc    *time.Location
		start  time.Time
		tenant rules.Tenant
		user   rules.EndUser
	}
	// Every zone, period and send hour, each with one served end user
	// whose expiry falls near the period's DST changes and one random end
	// user who may be inactive, never-expiring or not from a directory.
	var samples []sample
	for _, zone := range zones {
		loc := loadLocation(t, zone)
		for _, start := range starts {
			for hour := range 24 {
				for _, served := range []bool{true, false} {
					s := sample{
						loc: loc,
						// Start on a random quarter hour so that the hourly
						// runs meet the half- and quarter-hour zones at
						// different minutes.
						start: start.Add(time.Duration(rng.IntN(4)) * 15 * time.Minute),
						tenant: rules.Tenant{
							Subscription: subscriptions[rng.IntN(2)],
							SelfServe:    true,
							SendHour:     hour,
							ReminderDays: rng.IntN(16), // 0 means the default
						},
						user: rules.EndUser{
							Source:            directories[rng.IntN(len(directories))],
							Email:             "user@contoso.example",
							Mobile:            "+447400123456",
							SelfServe:         true,
							Enabled:           true,
							PasswordExpiresAt: within(start.AddDate(0, 0, 4), 16*24*time.Hour),
						},
					}
					if !served {
						s.tenant.Subscription = subscriptions[rng.IntN(len(subscriptions))]
						s.tenant.SelfServe = !chance(0.1)
						u := &s.user
						u.Source = sources[rng.IntN(len(sources))]
						u.SelfServe = !chance(0.1)
						u.Enabled = !chance(0.1)
						u.Removed = chance(0.05)
						u.Privileged = chance(0.2) // notices still go to privileged end users
						u.PasswordNeverExpires = chance(0.1)
						u.PasswordExpiresAt = within(start.AddDate(0, 0, -3), 36*24*time.Hour)
						if chance(0.05) {
							u.Email = ""
						}
						if chance(0.05) {
							u.Mobile = ""
						}
						if chance(0.05) {
							u.PasswordExpiresAt = time.Time{}
						}
					}
					if chance(0.3) {
						s.user.LockedOut = true
						s.user.LockedOutAt = within(start.AddDate(0, 0, -2), 34*24*time.Hour)
					}
					samples = append(samples, s)
				}
			}
		}
	}

	const days = 30
	for i, s := range samples {
		loc, start, tenant, u := s.loc, s.start, s.tenant, s.user
		end := start.AddDate(0, 0, days)
		name := fmt.Sprintf("%d %s start %s send %d window %d expires %s", i, loc, start.Format("2006-01-02"),
			tenant.SendHour, tenant.ReminderDays, u.PasswordExpiresAt.Format(time.RFC3339))

		// planned maps each expiry occasion to the local dates on which the
		// planner returned it.
		planned := map[expectedNotice]map[string]bool{}
		for now := start; now.Before(end); now = now.Add(time.Hour) {
			got := rules.Plan(tenant, loc, u, now)
			var gotKeys []expectedNotice
			for _, n := range got {
				gotKeys = append(gotKeys, expectedNotice{n.Kind, n.Occasion, n.DaysLeft})
				if n.Kind == rules.KindLockout {
					continue
				}
				key := expectedNotice{n.Kind, n.Occasion, n.DaysLeft}
				if planned[key] == nil {
					planned[key] = map[string]bool{}
				}
				planned[key][now.In(loc).Format("2006-01-02")] = true
				// DueAt is the first instant of the local day at or after
				// the send hour.
				due, before := n.DueAt.In(loc), n.DueAt.Add(-time.Nanosecond).In(loc)
				if due.After(now) || due.Format("2006-01-02") != n.Occasion || due.Hour() < tenant.SendHour {
					t.Fatalf("%s: at %s %s notice due at %s", name, now.In(loc), n.Kind, due)
				}
				if before.Format("2006-01-02") == n.Occasion && before.Hour() >= tenant.SendHour {
					t.Fatalf("%s: at %s %s notice due at %s, but the send hour had already come at %s", name, now.In(loc), n.Kind, due, before)
				}
			}
			want := expectedNotices(tenant, loc, u, now)
			if !slices.Equal(gotKeys, want) {
				t.Fatalf("%s: at %s (%s) Plan = %v, want %v", name, now.Format(time.RFC3339), now.In(loc).Format("2006-01-02 15:04 MST"), gotKeys, want)
			}
		}

		// Each expiry occasion appears only on its own local date, and on
		// each expected local date that lies wholly within the scan.
		for key, localDays := range planned {
			if len(localDays) != 1 || !localDays[key.occasion] {
				t.Errorf("%s: %v planned on local days %v, want only %s", name, key, localDays, key.occasion)
			}
		}
		served := rules.NoticesAllowed(tenant, u) && u.Source.IsDirectory() && !u.PasswordNeverExpires && !u.PasswordExpiresAt.IsZero()
		if !served {
			if len(planned) != 0 {
				t.Errorf("%s: planned %v for an end user who gets no expiry notices", name, planned)
			}
			continue
		}
		window := tenant.ReminderDays
		if window <= 0 {
			window = 10
		}
		ey, em, ed := u.PasswordExpiresAt.In(loc).Date()
		for k := 0; k <= window; k++ {
			dayStart := time.Date(ey, em, ed-k, 0, 0, 0, 0, loc)
			dayEnd := time.Date(ey, em, ed-k+1, 0, 0, 0, 0, loc)
			if dayStart.Before(start) || dayEnd.After(end) {
				continue
			}
			// The date is computed in UTC: in a zone whose DST starts at
			// midnight, dayStart may fall on the evening before.
			occasion := time.Date(ey, em, ed-k, 0, 0, 0, 0, time.UTC).Format("2006-01-02")
			key := expectedNotice{rules.KindExpiryReminder, occasion, k}
			if k == 0 {
				key.kind = rules.KindExpiryDay
			}
			if !planned[key][key.occasion] {
				t.Errorf("%s: %v never planned on its day", name, key)
			}
			delete(planned, key)
		}
		for key := range planned {
			// What remains lies on days cut by the scan's edges.
			d, err := time.ParseInLocation("2006-01-02", key.occasion, loc)
			if err != nil {
				t.Fatal(err)
			}
			if !d.Before(start) && !d.AddDate(0, 0, 1).After(end) {
				t.Errorf("%s: unexpected %v", name, key)
			}
		}
	}
}

// TestScanPlanLockoutLookback: the scan writes a lockout's notice until
// LockoutLookback after it began, and every expiry notice Plan gives.
func TestScanPlanLockoutLookback(t *testing.T) {
	t.Parallel()
	tenant := rules.Tenant{Subscription: rules.SubscriptionBundle, SelfServe: true, SendHour: 9, ReminderDays: 10}
	now := utc(t, "2026-12-05T12:00:00Z")
	user := rules.EndUser{Source: rules.SourceAD, Email: "a@example.com", Mobile: "+447700900100", SelfServe: true, Enabled: true,
		LockedOut: true, PasswordExpiresAt: now.Add(3 * 24 * time.Hour)}
	for _, c := range []struct {
		lockedAt time.Time
		want     []string
	}{
		{now, []string{"lockout 2026-12-05T12:00:00Z 0", "expiry_reminder 2026-12-05 3"}},
		{now.Add(-rules.LockoutLookback), []string{"lockout 2026-12-04T12:00:00Z 0", "expiry_reminder 2026-12-05 3"}},
		{now.Add(-rules.LockoutLookback - time.Nanosecond), []string{"expiry_reminder 2026-12-05 3"}},
		{now.Add(time.Second), []string{"expiry_reminder 2026-12-05 3"}}, // not yet locked
	} {
		u := user
		u.LockedOutAt = c.lockedAt
		if got := brief(rules.ScanPlan(tenant, time.UTC, u, now)); !slices.Equal(got, c.want) {
			t.Errorf("locked at %s: ScanPlan = %q, want %q", c.lockedAt.Format(time.RFC3339Nano), got, c.want)
		}
		if got, all := len(rules.ScanPlan(tenant, time.UTC, u, now)), len(rules.Plan(tenant, time.UTC, u, now)); got > all {
			t.Errorf("ScanPlan gave %d notices, Plan %d", got, all)
		}
	}
}

// TestExpiryWindowHoldsEveryDueExpiry: whatever the zone (the extremes
// UTC-12 and UTC+14 included), DST days and the reminder window, a password
// with an expiry notice due at now expires within ExpiryWindow, and one
// just outside it has none.
func TestExpiryWindowHoldsEveryDueExpiry(t *testing.T) {
	t.Parallel()
	var zones []*time.Location
	for _, name := range []string{"Etc/GMT+12", "Pacific/Kiritimati", "America/New_York", "Europe/London", "Australia/Lord_Howe", "Asia/Kolkata", "UTC"} {
		zones = append(zones, loadLocation(t, name))
	}
	r := rand.New(rand.NewPCG(12, 2))
	start := utc(t, "2026-01-01T00:00:00Z")
	for range 20000 {
		loc := zones[r.IntN(len(zones))]
		tenant := rules.Tenant{Subscription: rules.SubscriptionQDesk, SelfServe: true, SendHour: r.IntN(24), ReminderDays: r.IntN(15)}
		now := start.Add(time.Duration(r.Int64N(int64(365 * 24 * time.Hour))))
		from, before := rules.ExpiryWindow(tenant.Reminders(), now)
		for _, expires := range []time.Time{
			from.Add(-time.Nanosecond), before,
			from.Add(time.Duration(r.Int64N(int64(before.Sub(from))))),
			now.Add(time.Duration(r.Int64N(int64(30*24*time.Hour))) - 10*24*time.Hour),
		} {
			u := rules.EndUser{Source: rules.SourceLocal, Email: "a@example.com", Mobile: "+447700900100", SelfServe: true, Enabled: true, PasswordExpiresAt: expires}
			due := len(rules.Plan(tenant, loc, u, now)) > 0
			inside := !expires.Before(from) && expires.Before(before)
			if due && !inside {
				t.Fatalf("%s, send hour %d, %d reminder days: a password expiring %s has a notice due at %s, outside the window [%s, %s)",
					loc, tenant.SendHour, tenant.ReminderDays, expires.Format(time.RFC3339), now.Format(time.RFC3339), from.Format(time.RFC3339), before.Format(time.RFC3339))
			}
		}
	}
}
