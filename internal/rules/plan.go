package rules

import (
	"slices"
	"strconv"
	"strings"
	"time"
)

// NoticeKind is the kind of a notification.
type NoticeKind string

// The notice kinds.
const (
	KindExpiryReminder NoticeKind = "expiry_reminder"
	KindExpiryDay      NoticeKind = "expiry_day"
	KindLockout        NoticeKind = "lockout"
	KindWelcome        NoticeKind = "welcome"
	// KindPasswordChanged and KindAccountUnlocked tell the end user, after a
	// self-serve reset or unlock, that it happened (Occasion: ChangeOccasion).
	KindPasswordChanged NoticeKind = "password_changed"
	KindAccountUnlocked NoticeKind = "account_unlocked"
)

// Valid reports whether k is a known kind.
func (k NoticeKind) Valid() bool {
	switch k {
	case KindExpiryReminder, KindExpiryDay, KindLockout, KindWelcome, KindPasswordChanged, KindAccountUnlocked:
		return true
	}
	return false
}

// OccasionDateLayout formats the local date that keys daily notices.
const OccasionDateLayout = "2006-01-02"

// Notice is a notification due for an end user. (end user, Kind, Occasion)
// identifies it in the ledger: it is sent once per channel.
type Notice struct {
	Kind NoticeKind
	// Occasion is the local date (YYYY-MM-DD) for expiry notices, the lockout
	// instant (RFC 3339, UTC) for lockout notices.
	Occasion string
	// DaysLeft counts local days until the password expires (0 on the day);
	// zero for lockouts.
	DaysLeft int
	// DueAt is the instant the notice became due.
	DueAt time.Time
	// ExpiresAt is the password expiry instant, for expiry notices.
	ExpiresAt time.Time
}

// Plan returns the notices due for u at the instant now, with loc the
// customer's time zone (nil means UTC). Daily expiry notices are due from the
// tenant's send hour of each local day: reminders on each of the ReminderDays
// days before the expiry date, the expiry-day notice on that date (also when
// the password already expired earlier that day). On a day when the send hour
// is skipped by a DST change they are due from the change; when it is
// repeated, from its first occurrence. A lockout notice is due as soon as the
// account is locked. End users whose notices are off (NoticesReason: a
// privileged account still gets them), never-expiring and non-directory end
// users get nothing. The result is deterministic, so running the planner
// again at any later instant of the same local day yields the same
// occasions.
func Plan(t Tenant, loc *time.Location, u EndUser, now time.Time) []Notice {
	if !u.Source.IsDirectory() || !NoticesAllowed(t, u) {
		return nil
	}
	if loc == nil {
		loc = time.UTC
	}
	var due []Notice
	if u.LockedOut && !u.LockedOutAt.IsZero() && !u.LockedOutAt.After(now) {
		due = append(due, Notice{
			Kind:     KindLockout,
			Occasion: LockoutOccasion(u.LockedOutAt),
			DueAt:    u.LockedOutAt,
		})
	}
	if n, ok := expiryNotice(t, loc, u, now); ok {
		due = append(due, n)
	}
	return due
}

// LockoutLookback is how long after a lockout began the expiry scan still
// writes its notice. Lockouts normally arrive through the sync's lockout
// tasks as they happen; the scan only catches the ones that were missed.
const LockoutLookback = 24 * time.Hour

// ScanPlan returns the notices the expiry scan writes for u at the instant
// now, and so what the preview shows: Plan's, less a lockout that began
// more than LockoutLookback before now.
func ScanPlan(t Tenant, loc *time.Location, u EndUser, now time.Time) []Notice {
	due := Plan(t, loc, u, now)
	return slices.DeleteFunc(due, func(n Notice) bool {
		return n.Kind == KindLockout && n.DueAt.Before(now.Add(-LockoutLookback))
	})
}

// Reminders is how many days before expiry the tenant's reminders start
// (ReminderDays, or DefaultReminderDays when unset).
func (t Tenant) Reminders() int {
	if t.ReminderDays <= 0 {
		return DefaultReminderDays
	}
	return t.ReminderDays
}

// ExpiryWindow bounds the password expiry instants that can make an expiry
// notice due at now, in any time zone, for tenants whose reminders start at
// most reminders days ahead: expiries in [from, before). A local date is
// never more than 26 hours from the UTC instant's (zones run from UTC-12 to
// UTC+14), so two days of margin on either side keep every due password.
// The store's candidate query selects on it; Plan decides.
func ExpiryWindow(reminders int, now time.Time) (from, before time.Time) {
	return now.Add(-48 * time.Hour), now.Add(time.Duration(reminders+2) * 24 * time.Hour)
}

// ChangeOccasion is the ledger occasion of the notices that follow the
// self-serve write-back job jobID, done at the instant at: "RFC3339 job N",
// one per job, so each change is told exactly once.
func ChangeOccasion(at time.Time, jobID int64) string {
	return at.UTC().Truncate(time.Second).Format(time.RFC3339) + " job " + strconv.FormatInt(jobID, 10)
}

// ChangeTime reads the instant of a ChangeOccasion.
func ChangeTime(occasion string) (time.Time, error) {
	at, _, _ := strings.Cut(occasion, " ")
	return time.Parse(time.RFC3339, at)
}

// LockoutOccasion is the ledger occasion of a lockout that began at.
func LockoutOccasion(at time.Time) string {
	return at.UTC().Truncate(time.Second).Format(time.RFC3339)
}

func expiryNotice(t Tenant, loc *time.Location, u EndUser, now time.Time) (Notice, bool) {
	if u.PasswordNeverExpires || u.PasswordExpiresAt.IsZero() {
		return Notice{}, false
	}
	local := now.In(loc)
	today := civilDate(local)
	sendAt := sendInstant(today, sendHour(t), loc)
	if local.Before(sendAt) {
		return Notice{}, false
	}
	days := daysBetween(today, civilDate(u.PasswordExpiresAt.In(loc)))
	window := t.Reminders()
	n := Notice{Occasion: local.Format(OccasionDateLayout), DaysLeft: days, DueAt: sendAt, ExpiresAt: u.PasswordExpiresAt}
	switch {
	case days == 0:
		n.Kind = KindExpiryDay
	case days >= 1 && days <= window:
		n.Kind = KindExpiryReminder
	default:
		return Notice{}, false
	}
	return n, true
}

func sendHour(t Tenant) int {
	if t.SendHour < 0 || t.SendHour > 23 {
		return DefaultSendHour
	}
	return t.SendHour
}

// sendInstant returns the first instant of local day d at which the wall
// clock reads hour:00 or later. time.Date alone is not enough on DST days:
// for a skipped wall time it may return an instant an hour early (01:00 EST
// for 02:00 on the day New York springs forward), and for a repeated one it
// does not promise the first occurrence.
func sendInstant(d date, hour int, loc *time.Location) time.Time {
	at := time.Date(d.year, d.month, d.day, hour, 0, 0, 0, loc)
	if at.Hour() != hour || at.Minute() != 0 || civilDate(at) != d {
		// The wall time was skipped: the first instant past it is the
		// zone change that skipped it.
		start, end := at.ZoneBounds()
		if wallBefore(at, d, hour) && !end.IsZero() {
			return end
		}
		if !start.IsZero() {
			return start
		}
		return at
	}
	// The wall time may be repeated: take the occurrence in the zone in
	// effect before this one if that also reads hour:00 on day d.
	start, _ := at.ZoneBounds()
	if start.IsZero() {
		return at
	}
	_, offset := at.Zone()
	_, prevOffset := start.Add(-time.Nanosecond).Zone()
	earlier := at.Add(time.Duration(offset-prevOffset) * time.Second)
	if earlier.Before(start) && earlier.Hour() == hour && earlier.Minute() == 0 && civilDate(earlier) == d {
		return earlier
	}
	return at
}

// wallBefore reports whether the wall clock of at is before hour:00 on d.
func wallBefore(at time.Time, d date, hour int) bool {
	if c := civilDate(at); c != d {
		return daysBetween(c, d) > 0
	}
	return at.Hour() < hour
}

type date struct {
	year  int
	month time.Month
	day   int
}

func civilDate(t time.Time) date {
	y, m, d := t.Date()
	return date{y, m, d}
}

// daysBetween counts calendar days from a to b, independent of DST (both are
// placed at noon UTC, where every day has 24 hours).
func daysBetween(a, b date) int {
	ta := time.Date(a.year, a.month, a.day, 12, 0, 0, 0, time.UTC)
	tb := time.Date(b.year, b.month, b.day, 12, 0, 0, 0, time.UTC)
	return int(tb.Sub(ta).Hours() / 24)
}
