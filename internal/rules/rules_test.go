package rules_test

import (
	"slices"
	"testing"
	"time"

	"selfserve/internal/rules"
)

// servedTenant returns a tenant on which self-serve is allowed and on.
func servedTenant() rules.Tenant {
	return rules.Tenant{
		Subscription: rules.SubscriptionBundle,
		SelfServe:    true,
		SendHour:     9,
		ReminderDays: 10,
	}
}

// servedUser returns a directory end user that meets every condition of the
// active rule.
func servedUser() rules.EndUser {
	return rules.EndUser{
		Source:    rules.SourceAD,
		Email:     "ann.lee@contoso.example",
		Mobile:    "+447400123456",
		SelfServe: true,
		Enabled:   true,
	}
}

func TestInactiveReason(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		tenant func(*rules.Tenant)
		user   func(*rules.EndUser)
		want   rules.Reason
	}{
		{name: "all conditions met on bundle", want: rules.ReasonNone},
		{
			name:   "all conditions met on qdesk",
			tenant: func(t *rules.Tenant) { t.Subscription = rules.SubscriptionQDesk },
			want:   rules.ReasonNone,
		},
		{
			name:   "subscription none",
			tenant: func(t *rules.Tenant) { t.Subscription = rules.SubscriptionNone },
			want:   rules.ReasonSubscription,
		},
		{
			name:   "subscription empty",
			tenant: func(t *rules.Tenant) { t.Subscription = "" },
			want:   rules.ReasonSubscription,
		},
		{
			name:   "subscription unknown",
			tenant: func(t *rules.Tenant) { t.Subscription = "gold" },
			want:   rules.ReasonSubscription,
		},
		{
			name:   "tenant override off",
			tenant: func(t *rules.Tenant) { t.SelfServe = false },
			want:   rules.ReasonTenantOverride,
		},
		{
			name: "user switch off",
			user: func(u *rules.EndUser) { u.SelfServe = false },
			want: rules.ReasonSwitchOff,
		},
		{
			name: "missing email",
			user: func(u *rules.EndUser) { u.Email = "" },
			want: rules.ReasonMissingEmail,
		},
		{
			name: "missing mobile",
			user: func(u *rules.EndUser) { u.Mobile = "" },
			want: rules.ReasonMissingMobile,
		},
		{
			name: "account disabled",
			user: func(u *rules.EndUser) { u.Enabled = false },
			want: rules.ReasonDisabled,
		},
		{
			name: "removed from source",
			user: func(u *rules.EndUser) { u.Removed = true },
			want: rules.ReasonRemovedAtSource,
		},
		{
			name:   "override off wins over the user switch being on",
			tenant: func(t *rules.Tenant) { t.SelfServe = false },
			user:   func(u *rules.EndUser) { u.SelfServe = true },
			want:   rules.ReasonTenantOverride,
		},
		{
			name:   "several failures report the first in checking order",
			tenant: func(t *rules.Tenant) { t.Subscription = rules.SubscriptionNone; t.SelfServe = false },
			user:   func(u *rules.EndUser) { u.Email = ""; u.Enabled = false; u.Removed = true },
			want:   rules.ReasonSubscription,
		},
		{
			name: "locked out and never-expiring users can still be active",
			user: func(u *rules.EndUser) { u.LockedOut = true; u.PasswordNeverExpires = true },
			want: rules.ReasonNone,
		},
		{
			name: "manual end users can be active",
			user: func(u *rules.EndUser) { u.Source = rules.SourceManual },
			want: rules.ReasonNone,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tenant, user := servedTenant(), servedUser()
			if tt.tenant != nil {
				tt.tenant(&tenant)
			}
			if tt.user != nil {
				tt.user(&user)
			}
			if got := rules.InactiveReason(tenant, user); got != tt.want {
				t.Errorf("InactiveReason() = %q, want %q", got, tt.want)
			}
			if got, want := rules.Active(tenant, user), tt.want == rules.ReasonNone; got != want {
				t.Errorf("Active() = %v, want %v", got, want)
			}
		})
	}
}

func TestSwitchLocked(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		tenant rules.Tenant
		want   bool
	}{
		{name: "override on", tenant: rules.Tenant{Subscription: rules.SubscriptionQDesk, SelfServe: true}, want: false},
		{name: "override off", tenant: rules.Tenant{Subscription: rules.SubscriptionQDesk, SelfServe: false}, want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := rules.SwitchLocked(tt.tenant); got != tt.want {
				t.Errorf("SwitchLocked() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestStatusOf(t *testing.T) {
	t.Parallel()
	accessed := time.Date(2025, 6, 1, 10, 0, 0, 0, time.UTC)
	welcomed := time.Date(2025, 5, 30, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name      string
		user      rules.EndUser
		want      rules.Status
		wantLabel string
	}{
		{
			name:      "nothing known",
			user:      rules.EndUser{},
			want:      rules.StatusIncomplete,
			wantLabel: "Incomplete",
		},
		{
			name:      "email only",
			user:      rules.EndUser{Email: "a@contoso.example"},
			want:      rules.StatusIncomplete,
			wantLabel: "Incomplete",
		},
		{
			name:      "mobile only",
			user:      rules.EndUser{Mobile: "+447400123456"},
			want:      rules.StatusIncomplete,
			wantLabel: "Incomplete",
		},
		{
			name:      "welcome sent, mobile missing",
			user:      rules.EndUser{Email: "a@contoso.example", WelcomeSentAt: welcomed},
			want:      rules.StatusWelcomeSent,
			wantLabel: "Welcome Email Sent",
		},
		{
			name:      "welcome sent, nothing else",
			user:      rules.EndUser{WelcomeSentAt: welcomed},
			want:      rules.StatusWelcomeSent,
			wantLabel: "Welcome Email Sent",
		},
		{
			name:      "email and mobile",
			user:      rules.EndUser{Email: "a@contoso.example", Mobile: "+447400123456"},
			want:      rules.StatusRegistrationComplete,
			wantLabel: "Registration Complete",
		},
		{
			name:      "complete beats welcome sent",
			user:      rules.EndUser{Email: "a@contoso.example", Mobile: "+447400123456", WelcomeSentAt: welcomed},
			want:      rules.StatusRegistrationComplete,
			wantLabel: "Registration Complete",
		},
		{
			name:      "accessed beats complete and welcome sent",
			user:      rules.EndUser{Email: "a@contoso.example", Mobile: "+447400123456", WelcomeSentAt: welcomed, FirstAccessAt: accessed},
			want:      rules.StatusAccessedSelfServe,
			wantLabel: "Accessed Self-Serve",
		},
		{
			name:      "accessed beats incomplete",
			user:      rules.EndUser{FirstAccessAt: accessed},
			want:      rules.StatusAccessedSelfServe,
			wantLabel: "Accessed Self-Serve",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := rules.StatusOf(tt.user)
			if got != tt.want {
				t.Errorf("StatusOf() = %q, want %q", got, tt.want)
			}
			if !got.Valid() {
				t.Errorf("StatusOf() = %q, which is not Valid()", got)
			}
			if label := got.Label(); label != tt.wantLabel {
				t.Errorf("Label() = %q, want %q", label, tt.wantLabel)
			}
		})
	}
}

func TestEnumValid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		got  bool
		want bool
	}{
		{"subscription none", rules.SubscriptionNone.Valid(), true},
		{"subscription qdesk", rules.SubscriptionQDesk.Valid(), true},
		{"subscription bundle", rules.SubscriptionBundle.Valid(), true},
		{"subscription unknown", rules.Subscription("gold").Valid(), false},
		{"privileged deny", rules.PrivilegedDeny.Valid(), true},
		{"privileged two factors", rules.PrivilegedTwoFactors.Valid(), true},
		{"privileged empty", rules.PrivilegedSelfServe("").Valid(), false},
		{"privileged unknown", rules.PrivilegedSelfServe("allow").Valid(), false},
		{"subscription none allows", rules.SubscriptionNone.AllowsSelfServe(), false},
		{"subscription qdesk allows", rules.SubscriptionQDesk.AllowsSelfServe(), true},
		{"subscription bundle allows", rules.SubscriptionBundle.AllowsSelfServe(), true},
		{"status unknown", rules.Status("registered").Valid(), false},
		{"kind reminder", rules.KindExpiryReminder.Valid(), true},
		{"kind expiry day", rules.KindExpiryDay.Valid(), true},
		{"kind lockout", rules.KindLockout.Valid(), true},
		{"kind welcome", rules.KindWelcome.Valid(), true},
		{"kind unknown", rules.NoticeKind("expiry").Valid(), false},
		{"source local", rules.SourceLocal.IsDirectory(), true},
		{"source ad", rules.SourceAD.IsDirectory(), true},
		{"source azure", rules.SourceAzure.IsDirectory(), true},
		{"source manual", rules.SourceManual.IsDirectory(), false},
		{"provenance manual human", rules.ProvenanceManual.IsHuman(), true},
		{"provenance end_user human", rules.ProvenanceEndUser.IsHuman(), true},
		{"provenance directory human", rules.ProvenanceDirectory.IsHuman(), false},
		{"provenance psa human", rules.ProvenancePSA.IsHuman(), false},
		{"provenance none human", rules.ProvenanceNone.IsHuman(), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if tt.got != tt.want {
				t.Errorf("got %v, want %v", tt.got, tt.want)
			}
		})
	}
}

// TestNoticesAndSelfServe asks both questions of the same end users: a
// privileged account gets notices but no self-serve unless the tenant lets
// privileged end users in with two factors; every other reason turns off
// both, in the same order.
func TestNoticesAndSelfServe(t *testing.T) {
	t.Parallel()
	sms, both := []rules.Factor{rules.FactorSMS}, []rules.Factor{rules.FactorSMS, rules.FactorEmail}
	tests := []struct {
		name        string
		tenant      func(*rules.Tenant)
		user        func(*rules.EndUser)
		notices     rules.Reason
		selfServe   rules.Reason
		wantFactors []rules.Factor
	}{
		{name: "ordinary end user", wantFactors: sms},
		{
			name:      "privileged, tenant policy unset (deny)",
			user:      func(u *rules.EndUser) { u.Privileged = true },
			selfServe: rules.ReasonPrivileged,
		},
		{
			name:      "privileged, deny",
			tenant:    func(t *rules.Tenant) { t.PrivilegedSelfServe = rules.PrivilegedDeny },
			user:      func(u *rules.EndUser) { u.Privileged = true },
			selfServe: rules.ReasonPrivileged,
		},
		{
			name:        "privileged, two factors",
			tenant:      func(t *rules.Tenant) { t.PrivilegedSelfServe = rules.PrivilegedTwoFactors },
			user:        func(u *rules.EndUser) { u.Privileged = true },
			wantFactors: both,
		},
		{
			name:        "ordinary end user, two factors for privileged ones",
			tenant:      func(t *rules.Tenant) { t.PrivilegedSelfServe = rules.PrivilegedTwoFactors },
			wantFactors: sms,
		},
		{
			name:      "privileged and switched off: the switch is reported first",
			user:      func(u *rules.EndUser) { u.Privileged = true; u.SelfServe = false },
			notices:   rules.ReasonSwitchOff,
			selfServe: rules.ReasonSwitchOff,
		},
		{
			name:      "privileged, two factors, disabled",
			tenant:    func(t *rules.Tenant) { t.PrivilegedSelfServe = rules.PrivilegedTwoFactors },
			user:      func(u *rules.EndUser) { u.Privileged = true; u.Enabled = false },
			notices:   rules.ReasonDisabled,
			selfServe: rules.ReasonDisabled,
		},
		{
			name:      "privileged, no mobile",
			user:      func(u *rules.EndUser) { u.Privileged = true; u.Mobile = "" },
			notices:   rules.ReasonMissingMobile,
			selfServe: rules.ReasonMissingMobile,
		},
		{
			name:      "tenant override off",
			tenant:    func(t *rules.Tenant) { t.SelfServe = false },
			notices:   rules.ReasonTenantOverride,
			selfServe: rules.ReasonTenantOverride,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tenant, user := servedTenant(), servedUser()
			if tt.tenant != nil {
				tt.tenant(&tenant)
			}
			if tt.user != nil {
				tt.user(&user)
			}
			if got := rules.NoticesReason(tenant, user); got != tt.notices {
				t.Errorf("NoticesReason() = %q, want %q", got, tt.notices)
			}
			if got := rules.NoticesAllowed(tenant, user); got != (tt.notices == rules.ReasonNone) {
				t.Errorf("NoticesAllowed() = %v", got)
			}
			if got := rules.InactiveReason(tenant, user); got != tt.selfServe {
				t.Errorf("InactiveReason() = %q, want %q", got, tt.selfServe)
			}
			if got := rules.Active(tenant, user); got != (tt.selfServe == rules.ReasonNone) {
				t.Errorf("Active() = %v", got)
			}
			if got := rules.RequiredFactors(tenant, user); !slices.Equal(got, tt.wantFactors) {
				t.Errorf("RequiredFactors() = %v, want %v", got, tt.wantFactors)
			}
		})
	}
}

// TestPrivilegedNoticesPlanned: the planner plans reminders for a privileged
// end user kept out of self-serve.
func TestPrivilegedNoticesPlanned(t *testing.T) {
	t.Parallel()
	tenant, user := servedTenant(), servedUser()
	user.Privileged = true
	now := time.Date(2025, 6, 10, 12, 0, 0, 0, time.UTC)
	user.PasswordExpiresAt = now.Add(72 * time.Hour)
	if rules.Active(tenant, user) {
		t.Fatal("a privileged end user is active under the default policy")
	}
	if got := rules.Plan(tenant, time.UTC, user, now); len(got) != 1 || got[0].Kind != rules.KindExpiryReminder {
		t.Errorf("Plan() = %+v, want one expiry reminder", got)
	}
}

func TestWelcomeReason(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		tenant func(*rules.Tenant)
		user   func(*rules.EndUser)
		want   rules.Reason
	}{
		{name: "served", want: rules.ReasonNone},
		{name: "missing mobile is what the welcome fixes", user: func(u *rules.EndUser) { u.Mobile = "" }, want: rules.ReasonNone},
		{name: "privileged still gets it", user: func(u *rules.EndUser) { u.Privileged = true }, want: rules.ReasonNone},
		{name: "subscription", tenant: func(t *rules.Tenant) { t.Subscription = rules.SubscriptionNone }, want: rules.ReasonSubscription},
		{name: "override off", tenant: func(t *rules.Tenant) { t.SelfServe = false }, want: rules.ReasonTenantOverride},
		{name: "switch off", user: func(u *rules.EndUser) { u.SelfServe = false }, want: rules.ReasonSwitchOff},
		{name: "no email", user: func(u *rules.EndUser) { u.Email = "" }, want: rules.ReasonMissingEmail},
		{name: "disabled", user: func(u *rules.EndUser) { u.Enabled = false }, want: rules.ReasonDisabled},
		{name: "disabled without mobile", user: func(u *rules.EndUser) { u.Enabled, u.Mobile = false, "" }, want: rules.ReasonDisabled},
		{name: "removed without mobile", user: func(u *rules.EndUser) { u.Removed, u.Mobile = true, "" }, want: rules.ReasonRemovedAtSource},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tenant, user := servedTenant(), servedUser()
			if tt.tenant != nil {
				tt.tenant(&tenant)
			}
			if tt.user != nil {
				tt.user(&user)
			}
			if got := rules.WelcomeReason(tenant, user); got != tt.want {
				t.Errorf("WelcomeReason() = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestListsFollowPredicates: the lists the store's queries filter on are
// exactly the values the predicates accept.
func TestListsFollowPredicates(t *testing.T) {
	t.Parallel()
	for _, s := range rules.Subscriptions() {
		if !s.Valid() {
			t.Errorf("listed subscription %q is not valid", s)
		}
		if got := slices.Contains(rules.SelfServeSubscriptions(), s); got != s.AllowsSelfServe() {
			t.Errorf("subscription %q: in SelfServeSubscriptions %v, AllowsSelfServe %v", s, got, s.AllowsSelfServe())
		}
	}
	if len(rules.SelfServeSubscriptions()) == 0 || len(rules.DirectorySources()) == 0 {
		t.Fatal("an empty list")
	}
	for _, s := range rules.Sources() {
		if got := slices.Contains(rules.DirectorySources(), s); got != s.IsDirectory() {
			t.Errorf("source %q: in DirectorySources %v, IsDirectory %v", s, got, s.IsDirectory())
		}
	}
}
