package service

import (
	"context"
	"regexp"
	"time"

	"selfserve/internal/rules"
	"selfserve/internal/store"
)

// TenantView is the tenant's settings as the API shows and the audit log
// records them.
type TenantView struct {
	ID           int64              `json:"id"`
	Name         string             `json:"name"`
	Subscription rules.Subscription `json:"subscription"`
	// SelfServeAvailable: the subscription includes self-serve.
	SelfServeAvailable bool `json:"self_serve_available"`
	// SelfServe is the global override.
	SelfServe bool `json:"self_serve"`
	// SwitchesLocked: end-user switches are locked by the override.
	SwitchesLocked bool   `json:"switches_locked"`
	TimeZone       string `json:"timezone"`
	SendHour       int    `json:"send_hour"`
	ReminderDays   int    `json:"reminder_days"`
	// PrivilegedSelfServe: deny keeps privileged end users out of
	// self-serve; two_factors lets them in with an SMS and an email code.
	PrivilegedSelfServe rules.PrivilegedSelfServe `json:"privileged_self_serve"`
	// Verification is how end users verify: sms, or sms+email (two codes).
	Verification rules.Verification `json:"verification"`
	UpdatedAt    time.Time          `json:"updated_at"`
}

// NewTenantView is the view of t.
func NewTenantView(t store.Tenant) TenantView {
	return TenantView{
		ID: t.ID, Name: t.Name, Subscription: t.Subscription, SelfServeAvailable: t.Subscription.AllowsSelfServe(),
		SelfServe: t.SelfServe, SwitchesLocked: rules.SwitchLocked(t.Rules()), TimeZone: t.TimeZone,
		SendHour: t.SendHour, ReminderDays: t.ReminderDays, PrivilegedSelfServe: t.PrivilegedSelfServe,
		Verification: t.Verification, UpdatedAt: t.UpdatedAt,
	}
}

// TenantPatch changes tenant settings; absent fields stay.
type TenantPatch struct {
	SelfServe    *bool   `json:"self_serve"`
	SendHour     *int    `json:"send_hour"`
	ReminderDays *int    `json:"reminder_days"`
	TimeZone     *string `json:"timezone"`
	// PrivilegedSelfServe is deny or two_factors.
	PrivilegedSelfServe *rules.PrivilegedSelfServe `json:"privileged_self_serve"`
	// Verification is sms or sms+email.
	Verification *rules.Verification `json:"verification"`
}

// UpdateTenant applies patch to the actor's tenant, with its audit entry:
// super and primary only (403), every value checked first (400 naming the
// field, nothing changed). It returns the tenant after.
func (s *Service) UpdateTenant(ctx context.Context, a Actor, req TenantPatch) (store.Tenant, error) {
	if err := a.RequireSettings(); err != nil {
		return store.Tenant{}, err
	}
	switch {
	case req.SelfServe == nil && req.SendHour == nil && req.ReminderDays == nil && req.TimeZone == nil && req.PrivilegedSelfServe == nil && req.Verification == nil:
		return store.Tenant{}, BadField("", "nothing to change: give self_serve, send_hour, reminder_days, timezone, privileged_self_serve or verification")
	case req.Verification != nil && !req.Verification.Valid():
		return store.Tenant{}, BadField("verification", "%q is not a verification: use %q (a code by SMS) or %q (a code by SMS and one by email)",
			Truncate(string(*req.Verification), 40), rules.VerifySMS, rules.VerifySMSEmail)
	case req.PrivilegedSelfServe != nil && !req.PrivilegedSelfServe.Valid():
		return store.Tenant{}, BadField("privileged_self_serve", "%q is not a policy: use %q (privileged end users never use self-serve) or %q (they verify an SMS and an email code)",
			Truncate(string(*req.PrivilegedSelfServe), 40), rules.PrivilegedDeny, rules.PrivilegedTwoFactors)
	case req.SendHour != nil && (*req.SendHour < 0 || *req.SendHour > 23):
		return store.Tenant{}, BadField("send_hour", "send_hour %d is not an hour 0..23", *req.SendHour)
	case req.ReminderDays != nil && (*req.ReminderDays < 1 || *req.ReminderDays > 90):
		return store.Tenant{}, BadField("reminder_days", "reminder_days %d is out of range 1..90", *req.ReminderDays)
	}
	if req.TimeZone != nil {
		if err := CheckTimeZone("timezone", *req.TimeZone, false); err != nil {
			return store.Tenant{}, err
		}
	}
	var after store.Tenant
	err := s.Store.InTx(ctx, func(tx *store.Store) error {
		before, err := tx.Tenant(ctx, a.Tenant.ID)
		if err != nil {
			return err
		}
		next := before
		if req.SelfServe != nil {
			next.SelfServe = *req.SelfServe
		}
		if req.SendHour != nil {
			next.SendHour = *req.SendHour
		}
		if req.ReminderDays != nil {
			next.ReminderDays = *req.ReminderDays
		}
		if req.TimeZone != nil {
			next.TimeZone = *req.TimeZone
		}
		if req.PrivilegedSelfServe != nil {
			next.PrivilegedSelfServe = *req.PrivilegedSelfServe
		}
		if req.Verification != nil {
			next.Verification = *req.Verification
		}
		if next == before {
			after = before
			return nil
		}
		if err := tx.UpdateTenant(ctx, next); err != nil {
			return err
		}
		if after, err = tx.Tenant(ctx, a.Tenant.ID); err != nil {
			return err
		}
		return Audit(ctx, tx, a, "tenant.updated", "tenant", a.Tenant.ID, NewTenantView(before), NewTenantView(after))
	})
	return after, err
}

var timeZoneRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+)*$`)

// CheckTimeZone checks an IANA time zone name ("" is allowed when
// allowEmpty).
func CheckTimeZone(field, s string, allowEmpty bool) error {
	if s == "" {
		if allowEmpty {
			return nil
		}
		return BadField(field, "%s is required: an IANA time zone such as Europe/London", field)
	}
	if len(s) > 64 || !timeZoneRE.MatchString(s) || s == "Local" {
		return BadField(field, "%q is not an IANA time zone such as Europe/London", Truncate(s, 40))
	}
	if _, err := time.LoadLocation(s); err != nil {
		return BadField(field, "%q is not an IANA time zone such as Europe/London", s)
	}
	return nil
}

// Truncate shortens s to n runes (with an ellipsis), for quoting input in
// messages.
func Truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}

var codeRE = regexp.MustCompile(`^[a-z][a-z0-9_.]{0,63}$`)

// CheckCode checks an identifier of ours used as a filter (an audit action
// or object type); "" passes.
func CheckCode(field, s string) error {
	if s != "" && !codeRE.MatchString(s) {
		return BadField(field, "%q is not a valid %s (lower-case letters, digits, '_' and '.')", Truncate(s, 40), field)
	}
	return nil
}
