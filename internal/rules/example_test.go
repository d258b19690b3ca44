package rules_test

import (
	"fmt"
	"time"

	"selfserve/internal/rules"
)

// ExamplePlan runs the planner for one end user of a London customer whose
// password expires on 20 June at 14:00, at a few instants around the
// reminder window. Daily notices go out from the tenant's send hour (09:00
// local); the occasion is the local date, so later runs the same day plan the
// same notice again and the ledger sends it once.
func ExamplePlan() {
	london, err := time.LoadLocation("Europe/London")
	if err != nil {
		fmt.Println(err)
		return
	}
	tenant := rules.Tenant{
		Subscription: rules.SubscriptionBundle,
		SelfServe:    true,
		SendHour:     9,
		ReminderDays: 10,
	}
	user := rules.EndUser{
		Source:            rules.SourceAD,
		Email:             "ann.lee@contoso.example",
		Mobile:            "+447400123456",
		SelfServe:         true,
		Enabled:           true,
		PasswordExpiresAt: time.Date(2025, 6, 20, 14, 0, 0, 0, london),
	}
	for _, at := range []string{
		"2025-06-09T12:00:00+01:00", // 11 days before
		"2025-06-10T08:59:00+01:00", // before the send hour
		"2025-06-10T09:00:00+01:00",
		"2025-06-10T17:30:00+01:00", // same day, same occasion
		"2025-06-19T09:15:00+01:00",
		"2025-06-20T16:00:00+01:00", // expired two hours ago
		"2025-06-21T09:00:00+01:00",
	} {
		now, err := time.Parse(time.RFC3339, at)
		if err != nil {
			fmt.Println(err)
			return
		}
		notices := rules.Plan(tenant, london, user, now)
		if len(notices) == 0 {
			fmt.Printf("%s  nothing due\n", at)
		}
		for _, n := range notices {
			fmt.Printf("%s  %s occasion=%s days_left=%d due=%s\n",
				at, n.Kind, n.Occasion, n.DaysLeft, n.DueAt.In(london).Format("15:04"))
		}
	}

	// A lockout is due at once, keyed by its instant.
	user.LockedOut = true
	user.LockedOutAt = time.Date(2025, 6, 12, 6, 30, 0, 0, london)
	for _, n := range rules.Plan(tenant, london, user, time.Date(2025, 6, 12, 6, 31, 0, 0, london)) {
		fmt.Printf("lockout at 06:30  %s occasion=%s\n", n.Kind, n.Occasion)
	}
	// Output:
	// 2025-06-09T12:00:00+01:00  nothing due
	// 2025-06-10T08:59:00+01:00  nothing due
	// 2025-06-10T09:00:00+01:00  expiry_reminder occasion=2025-06-10 days_left=10 due=09:00
	// 2025-06-10T17:30:00+01:00  expiry_reminder occasion=2025-06-10 days_left=10 due=09:00
	// 2025-06-19T09:15:00+01:00  expiry_reminder occasion=2025-06-19 days_left=1 due=09:00
	// 2025-06-20T16:00:00+01:00  expiry_day occasion=2025-06-20 days_left=0 due=09:00
	// 2025-06-21T09:00:00+01:00  nothing due
	// lockout at 06:30  lockout occasion=2025-06-12T05:30:00Z
}
