// Package rules holds selfserve's domain rules as pure functions: whether an
// end user gets notices (NoticesAllowed) and may use self-serve (Active, and
// with which factors: RequiredFactors), their registration status, which notices are
// due at an instant (Plan, and ScanPlan for the expiry scan and the preview,
// within ExpiryWindow and LockoutLookback), how imported contact values merge with what is
// stored (MergeContactField) and how a hybrid AD↔Entra identity's values
// merge (hybrid.go), and phone normalisation, with the lists the store's
// candidate query binds (SelfServeSubscriptions, DirectorySources). Nothing
// here does I/O: the API, the planner and the sender all call the same
// functions.
package rules

import (
	"slices"
	"time"
)

// Subscription is a tenant's plan. Self-serve exists only on qdesk and bundle.
type Subscription string

// The subscriptions.
const (
	SubscriptionNone   Subscription = "none"
	SubscriptionQDesk  Subscription = "qdesk"
	SubscriptionBundle Subscription = "bundle"
)

// Subscriptions lists every subscription.
func Subscriptions() []Subscription {
	return []Subscription{SubscriptionNone, SubscriptionQDesk, SubscriptionBundle}
}

// Valid reports whether s is a known subscription (one of Subscriptions).
func (s Subscription) Valid() bool { return slices.Contains(Subscriptions(), s) }

// AllowsSelfServe reports whether the plan includes self-serve features.
func (s Subscription) AllowsSelfServe() bool {
	return s == SubscriptionQDesk || s == SubscriptionBundle
}

// SelfServeSubscriptions lists the subscriptions that allow self-serve: the
// store's candidate queries filter tenants on it.
func SelfServeSubscriptions() []Subscription {
	return slices.DeleteFunc(Subscriptions(), func(s Subscription) bool { return !s.AllowsSelfServe() })
}

// Source is where an end user comes from.
type Source string

// The end-user sources. local, ad and azure are directory sources.
const (
	SourceLocal  Source = "local"
	SourceAD     Source = "ad"
	SourceAzure  Source = "azure"
	SourceManual Source = "manual"
)

// Sources lists every end-user source.
func Sources() []Source { return []Source{SourceLocal, SourceAD, SourceAzure, SourceManual} }

// IsDirectory reports whether the source is a directory (one that owns a
// password and so gets expiry and lockout notices).
func (s Source) IsDirectory() bool {
	return s == SourceLocal || s == SourceAD || s == SourceAzure
}

// DirectorySources lists the directory sources: the store's candidate
// queries filter end users on it.
func DirectorySources() []Source {
	return slices.DeleteFunc(Sources(), func(s Source) bool { return !s.IsDirectory() })
}

// Provenance is where an email or mobile value came from.
type Provenance string

// The provenances, from least to most authoritative for imports: an import
// never overwrites a manual or end_user value, and a PSA value never
// overwrites a directory value.
const (
	ProvenanceNone      Provenance = ""
	ProvenanceDirectory Provenance = "directory"
	ProvenancePSA       Provenance = "psa"
	ProvenanceManual    Provenance = "manual"
	ProvenanceEndUser   Provenance = "end_user"
)

// IsHuman reports whether a person typed the value (a technician or the end
// user): no sync may overwrite it.
func (p Provenance) IsHuman() bool { return p == ProvenanceManual || p == ProvenanceEndUser }

// Tenant is what the rules need of a tenant's settings.
type Tenant struct {
	Subscription Subscription
	// SelfServe is the global override: false disables every end user.
	SelfServe bool
	// SendHour is the local hour (0-23) daily notices go out at.
	SendHour int
	// ReminderDays is how many days before expiry reminders start (default 10).
	ReminderDays int
	// PrivilegedSelfServe says whether privileged end users may use
	// self-serve; "" means PrivilegedDeny.
	PrivilegedSelfServe PrivilegedSelfServe
	// Verification is how every end user verifies; "" means VerifySMS.
	Verification Verification
}

// PrivilegedSelfServe is a tenant's policy for privileged end users (domain
// admins, Entra role holders): an SMS code must never be the only key to an
// account that can take over the customer.
type PrivilegedSelfServe string

// The privileged self-serve policies.
const (
	// PrivilegedDeny keeps privileged end users out of self-serve (the
	// default); notices still go to them.
	PrivilegedDeny PrivilegedSelfServe = "deny"
	// PrivilegedTwoFactors lets them in after verifying both an SMS and an
	// email code.
	PrivilegedTwoFactors PrivilegedSelfServe = "two_factors"
)

// Valid reports whether p is a known policy ("" is not: stored values are
// explicit).
func (p PrivilegedSelfServe) Valid() bool { return p == PrivilegedDeny || p == PrivilegedTwoFactors }

// Verification is how end users of a tenant prove who they are before a
// self-serve reset or unlock.
type Verification string

// The verification policies.
const (
	// VerifySMS: one code, by SMS to the mobile on file.
	VerifySMS Verification = "sms"
	// VerifySMSEmail: two codes, one by SMS and one by email.
	VerifySMSEmail Verification = "sms+email"
)

// Valid reports whether v is a known policy.
func (v Verification) Valid() bool { return v == VerifySMS || v == VerifySMSEmail }

// DefaultSendHour and DefaultReminderDays are the tenant defaults.
const (
	DefaultSendHour     = 9
	DefaultReminderDays = 10
)

// EndUser is what the rules need of an end user.
type EndUser struct {
	Source Source
	Email  string
	Mobile string
	// SelfServe is the per-user switch.
	SelfServe bool
	Enabled   bool
	// Removed is set once the user vanished from its source.
	Removed bool
	// Privileged is set for accounts with administrative power in their
	// directory (or that could not be checked).
	Privileged           bool
	LockedOut            bool
	LockedOutAt          time.Time
	PasswordNeverExpires bool
	// PasswordExpiresAt is zero when unknown or never.
	PasswordExpiresAt time.Time
	FirstAccessAt     time.Time
	WelcomeSentAt     time.Time
}

// Status is the derived registration status ("QP Status").
type Status string

// The statuses.
const (
	StatusIncomplete           Status = "incomplete"
	StatusWelcomeSent          Status = "welcome_sent"
	StatusRegistrationComplete Status = "registration_complete"
	StatusAccessedSelfServe    Status = "accessed_self_serve"
)

// Label is the status as the product shows it.
func (s Status) Label() string {
	switch s {
	case StatusAccessedSelfServe:
		return "Accessed Self-Serve"
	case StatusRegistrationComplete:
		return "Registration Complete"
	case StatusWelcomeSent:
		return "Welcome Email Sent"
	default:
		return "Incomplete"
	}
}

// Valid reports whether s is a known status.
func (s Status) Valid() bool {
	switch s {
	case StatusIncomplete, StatusWelcomeSent, StatusRegistrationComplete, StatusAccessedSelfServe:
		return true
	}
	return false
}

// StatusOf derives an end user's registration status.
func StatusOf(u EndUser) Status {
	switch {
	case !u.FirstAccessAt.IsZero():
		return StatusAccessedSelfServe
	case u.Email != "" && u.Mobile != "":
		return StatusRegistrationComplete
	case !u.WelcomeSentAt.IsZero():
		return StatusWelcomeSent
	default:
		return StatusIncomplete
	}
}

// Reason says why an end user is not active. The zero Reason means active.
type Reason string

// The reasons an end user is not served, in the order they are checked.
const (
	ReasonNone            Reason = ""
	ReasonSubscription    Reason = "the tenant's subscription does not include self-serve"
	ReasonTenantOverride  Reason = "self-serve is turned off for the whole tenant"
	ReasonSwitchOff       Reason = "self-serve is disallowed for this end user"
	ReasonMissingEmail    Reason = "no email address"
	ReasonMissingMobile   Reason = "no mobile number"
	ReasonDisabled        Reason = "the account is disabled"
	ReasonRemovedAtSource Reason = "the account was removed from its source"
	// ReasonPrivileged turns off self-serve only: notices still go out.
	ReasonPrivileged Reason = "privileged account"
)

// NoticesReason returns why notices (reminders, lockout and welcome
// messages) are off for u, or ReasonNone when they go out.
func NoticesReason(t Tenant, u EndUser) Reason {
	switch {
	case !t.Subscription.AllowsSelfServe():
		return ReasonSubscription
	case !t.SelfServe:
		return ReasonTenantOverride
	case !u.SelfServe:
		return ReasonSwitchOff
	case u.Email == "":
		return ReasonMissingEmail
	case u.Mobile == "":
		return ReasonMissingMobile
	case !u.Enabled:
		return ReasonDisabled
	case u.Removed:
		return ReasonRemovedAtSource
	}
	return ReasonNone
}

// NoticesAllowed reports whether notices go to u: the subscription allows
// self-serve, the tenant override is on, the user's switch is on, email and
// mobile are both present, and the account is enabled and still in its
// source.
func NoticesAllowed(t Tenant, u EndUser) bool { return NoticesReason(t, u) == ReasonNone }

// WelcomeReason returns why a welcome email to u would not be sent, or
// ReasonNone when it goes out: every reason notices are off except a missing
// mobile, since the welcome email is how the end user confirms one. The API
// refuses a welcome request for the same reasons the sender skips one, so a
// request it accepts is an email sent.
func WelcomeReason(t Tenant, u EndUser) Reason {
	if r := NoticesReason(t, u); r != ReasonMissingMobile {
		return r
	}
	// Past the missing mobile, NoticesReason checks the account itself.
	switch {
	case !u.Enabled:
		return ReasonDisabled
	case u.Removed:
		return ReasonRemovedAtSource
	}
	return ReasonNone
}

// WelcomeCooldown is how long after a welcome email went out another one to
// the same end user is refused (a double click, two technicians).
const WelcomeCooldown = 10 * time.Minute

// InactiveReason returns why self-serve (reset, unlock) is off for u, or
// ReasonNone when u may use it: every reason notices are off, then a
// privileged account unless the tenant lets privileged end users in with
// two factors.
func InactiveReason(t Tenant, u EndUser) Reason {
	if r := NoticesReason(t, u); r != ReasonNone {
		return r
	}
	if u.Privileged && t.PrivilegedSelfServe != PrivilegedTwoFactors {
		return ReasonPrivileged
	}
	return ReasonNone
}

// Active reports whether u may use self-serve ("active" in the product):
// notices go to u, and u is not a privileged account kept out by the tenant.
func Active(t Tenant, u EndUser) bool { return InactiveReason(t, u) == ReasonNone }

// Factor is a channel a self-serve verification code is sent to.
type Factor string

// The factors.
const (
	FactorSMS   Factor = "sms"
	FactorEmail Factor = "email"
)

// RequiredFactors returns the channels on which u must verify a code before
// a reset or unlock, in the order they are asked: the mobile, and the email
// too for a privileged end user (let in by PrivilegedTwoFactors) or where
// the tenant's verification is sms+email. It returns nil when self-serve
// is off for u (InactiveReason).
func RequiredFactors(t Tenant, u EndUser) []Factor {
	if !Active(t, u) {
		return nil
	}
	if u.Privileged || t.Verification == VerifySMSEmail {
		return []Factor{FactorSMS, FactorEmail}
	}
	return []Factor{FactorSMS}
}

// SwitchLocked reports whether per-user switches are locked ("greyed out") by
// the tenant override.
func SwitchLocked(t Tenant) bool { return !t.SelfServe }
