package service

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"selfserve/internal/rules"
	"selfserve/internal/store"
)

// ContactEdit changes an end user's email and/or mobile; an absent field
// stays, "" clears it.
type ContactEdit struct {
	Email  *string `json:"email"`
	Mobile *string `json:"mobile"`
}

// ContactView is what a contact change audits.
type ContactView struct {
	Email        string           `json:"email"`
	EmailSource  rules.Provenance `json:"email_source"`
	Mobile       string           `json:"mobile"`
	MobileSource rules.Provenance `json:"mobile_source"`
}

// NewContactView is the audited contact of u.
func NewContactView(u store.EndUser) ContactView {
	return ContactView{Email: u.Email, EmailSource: u.EmailSource, Mobile: u.Mobile, MobileSource: u.MobileSource}
}

// MaxEmailLength is the longest address accepted (RFC 5321's path limit).
const MaxEmailLength = 254

// MaxMobileLength is the longest mobile number input accepted.
const MaxMobileLength = 40

// NormalizeContact checks and normalises an edit: the email must be a bare
// address, the mobile a valid number (read in region when it has no country
// code), stored in E.164.
func NormalizeContact(req ContactEdit, region string) (email, mobile *string, err error) {
	if req.Email != nil {
		if len(*req.Email) > MaxEmailLength {
			return nil, nil, BadField("email", "the email address is longer than %d characters", MaxEmailLength)
		}
		e, err := rules.NormalizeEmail(*req.Email)
		if err != nil || !utf8.ValidString(e) {
			return nil, nil, BadField("email", "%v", err)
		}
		email = &e
	}
	if req.Mobile != nil {
		if len(*req.Mobile) > MaxMobileLength {
			return nil, nil, BadField("mobile", "the mobile number is longer than %d characters", MaxMobileLength)
		}
		m, err := rules.NormalizePhone(*req.Mobile, region)
		if err != nil {
			return nil, nil, BadField("mobile", "%v", err)
		}
		mobile = &m
	}
	return email, mobile, nil
}

// UpdateContact sets the email and/or mobile of the actor's tenant's end
// user id as typed by a technician (provenance manual), with its audit
// entry; a bad value is a 400 naming the field and changes nothing, a
// privileged end user is a 403 for roles other than super and primary. It
// returns the end user after the change.
func (s *Service) UpdateContact(ctx context.Context, a Actor, id int64, req ContactEdit) (store.EndUser, error) {
	if req.Email == nil && req.Mobile == nil {
		return store.EndUser{}, BadField("", "nothing to change: give email and/or mobile")
	}
	u, err := s.Store.EndUser(ctx, a.Tenant.ID, id)
	if err != nil {
		return store.EndUser{}, err
	}
	if err := a.mayEdit(u); err != nil {
		return store.EndUser{}, err
	}
	customer, err := s.Store.Customer(ctx, a.Tenant.ID, u.CustomerID)
	if err != nil {
		return store.EndUser{}, err
	}
	email, mobile, err := NormalizeContact(req, customer.DefaultRegion)
	if err != nil {
		return store.EndUser{}, err
	}
	var after store.EndUser
	err = s.Store.InTx(ctx, func(tx *store.Store) error {
		var before store.EndUser
		var err error
		before, after, err = tx.SetContact(ctx, a.Tenant.ID, id, email, mobile, rules.ProvenanceManual)
		if err != nil {
			return err
		}
		if err := a.mayEdit(before); err != nil {
			return err // became privileged since it was read
		}
		if bv, av := NewContactView(before), NewContactView(after); bv != av {
			return Audit(ctx, tx, a, "end_user.contact_updated", "end_user", id, bv, av)
		}
		return nil
	})
	return after, err
}

// mayEdit refuses a change of a privileged end user's contact fields or
// switch to roles other than super and primary (403 with the reason).
func (a Actor) mayEdit(u store.EndUser) error {
	if !u.Privileged || a.Login.Role.CanEditPrivilegedEndUsers() {
		return nil
	}
	return &Error{Status: http.StatusForbidden, Code: "privileged_end_user",
		Message: fmt.Sprintf("end user %d is a privileged account (%s): only super and primary logins may change its email, mobile or self-serve switch, not the %s role",
			u.ID, u.PrivilegedReason, a.Login.Role)}
}

// ErrLocked is the 409 of a switch change while the override is OFF.
var ErrLocked = &Error{Status: http.StatusConflict, Code: "locked_by_override",
	Message: "locked by the tenant override: self-serve is turned off for the whole tenant, so end-user switches cannot change; a super or primary login can turn it on (PATCH /v1/tenant {\"self_serve\": true})"}

// SelfServeAvailable refuses self-serve features on subscriptions without
// them.
func SelfServeAvailable(t store.Tenant) error {
	if !t.Subscription.AllowsSelfServe() {
		return Conflict("not_in_subscription", "the tenant's %q subscription does not include self-serve; it needs qdesk or bundle", t.Subscription)
	}
	return nil
}

// switchable checks, inside the change's transaction, that switches may
// change now.
func switchable(ctx context.Context, tx *store.Store, tenantID int64) error {
	t, err := tx.Tenant(ctx, tenantID)
	if err != nil {
		return err
	}
	if err := SelfServeAvailable(t); err != nil {
		return err
	}
	if rules.SwitchLocked(t.Rules()) {
		return ErrLocked
	}
	return nil
}

// SwitchAudit is what a switch change audits.
type SwitchAudit struct {
	SelfServe bool `json:"self_serve"`
}

// CheckIDs validates a bulk request's ids: given, positive, unique, at most
// max.
func CheckIDs(ids []int64, max int) error {
	if len(ids) == 0 {
		return BadField("ids", "ids is required: a list of end-user ids")
	}
	if len(ids) > max {
		return BadField("ids", "%d ids; at most %d per request", len(ids), max)
	}
	seen := make(map[int64]bool, len(ids))
	var items []ItemError
	for _, id := range ids {
		switch {
		case id <= 0:
			items = append(items, ItemError{ID: id, Code: "invalid", Message: "not an id (a positive integer)"})
		case seen[id]:
			items = append(items, ItemError{ID: id, Code: "duplicate", Message: "given more than once"})
		}
		seen[id] = true
	}
	if len(items) > 0 {
		return &Error{Status: http.StatusBadRequest, Code: "invalid_field", Field: "ids", Items: items,
			Message: fmt.Sprintf("%d of the ids are not valid (see items); nothing was changed", len(items))}
	}
	return nil
}

// SetSelfServe sets the self-serve switch of the actor's tenant's end users
// ids, all or none: an unknown id (404 listing them), a privileged end user
// and a role other than super and primary (403 listing them), a subscription
// without self-serve or the tenant override OFF (409) change nothing. Each
// change is audited. It returns the ids changed and those already so,
// sorted.
func (s *Service) SetSelfServe(ctx context.Context, a Actor, ids []int64, on bool) (changed, unchanged []int64, err error) {
	changed, unchanged = []int64{}, []int64{}
	err = s.Store.InTx(ctx, func(tx *store.Store) error {
		var items, refused []ItemError
		for _, id := range ids {
			u, err := tx.EndUser(ctx, a.Tenant.ID, id)
			switch {
			case errors.Is(err, store.ErrNotFound):
				items = append(items, ItemError{ID: id, Code: "not_found", Message: fmt.Sprintf("end user %d: not found", id)})
			case err != nil:
				return err
			case a.mayEdit(u) != nil:
				refused = append(refused, ItemError{ID: id, Code: "privileged_end_user", Message: fmt.Sprintf("end user %d is a privileged account (%s)", id, u.PrivilegedReason)})
			}
		}
		if len(items) > 0 {
			names := make([]string, len(items))
			for i, it := range items {
				names[i] = fmt.Sprint(it.ID)
			}
			return &Error{Status: http.StatusNotFound, Code: "not_found", Field: "ids", Items: items,
				Message: fmt.Sprintf("end users %s: not found; nothing was changed", strings.Join(names, ", "))}
		}
		if len(refused) > 0 {
			return &Error{Status: http.StatusForbidden, Code: "privileged_end_user", Field: "ids", Items: refused,
				Message: fmt.Sprintf("%d of the end users are privileged accounts (see items): only super and primary logins may change their self-serve switch, not the %s role; nothing was changed",
					len(refused), a.Login.Role)}
		}
		if err := switchable(ctx, tx, a.Tenant.ID); err != nil {
			return err
		}
		before, err := tx.SetSelfServe(ctx, a.Tenant.ID, ids, on)
		if err != nil {
			return err
		}
		for _, u := range before {
			if u.SelfServe == on {
				unchanged = append(unchanged, u.ID)
				continue
			}
			changed = append(changed, u.ID)
			if err := Audit(ctx, tx, a, "end_user.self_serve_changed", "end_user", u.ID, SwitchAudit{u.SelfServe}, SwitchAudit{on}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	slices.Sort(changed)
	slices.Sort(unchanged)
	return changed, unchanged, nil
}

// RequestWelcome queues the welcome email of the actor's tenant's end user
// id, with its audit entry. One rule: whenever the email would not be sent
// it is a 409 giving the reason (rules.WelcomeReason: subscription, tenant
// override, the end user's switch, no email, disabled, removed), and so is a
// repeat while one is on its way or within rules.WelcomeCooldown of the last
// one (saying when that went); a 503 without a queue.
func (s *Service) RequestWelcome(ctx context.Context, a Actor, id int64) error {
	u, err := s.Store.EndUser(ctx, a.Tenant.ID, id)
	if err != nil {
		return err
	}
	if err := SelfServeAvailable(a.Tenant); err != nil {
		return err
	}
	switch r := rules.WelcomeReason(a.Tenant.Rules(), u.Rules()); r {
	case rules.ReasonNone:
	case rules.ReasonTenantOverride:
		return Conflict("self_serve_off", "no welcome email: %s; none goes out while it is off", r)
	case rules.ReasonSwitchOff:
		return Conflict("switch_off", "no welcome email to end user %d: %s; turn its switch on first (PUT /v1/end-users/%d/self-serve)", id, r, id)
	case rules.ReasonMissingEmail:
		return Conflict("no_email", "end user %d has no email address: set one (PATCH /v1/end-users/%d) before sending a welcome email", id, id)
	case rules.ReasonRemovedAtSource:
		return Conflict("removed", "no welcome email to end user %d: %s", id, r)
	case rules.ReasonDisabled:
		return Conflict("disabled", "no welcome email to end user %d: %s", id, r)
	default:
		return Conflict("inactive", "no welcome email to end user %d: %s", id, r)
	}
	if err := s.welcomeCooldown(ctx, a, u); err != nil {
		return err
	}
	if s.Enqueuer == nil {
		return Unavailable("this server has no queue configured, so it cannot send welcome emails")
	}
	// The audit entry and the enqueue share the transaction: if the queue
	// refuses, no entry says the email was asked for.
	return s.Store.InTx(ctx, func(tx *store.Store) error {
		if err := Audit(ctx, tx, a, "end_user.welcome_requested", "end_user", id, nil, map[string]any{"email": u.Email}); err != nil {
			return err
		}
		queued, err := s.Enqueuer.EnqueueWelcome(ctx, a.Tenant.ID, id)
		if err != nil {
			s.log().Error("enqueue welcome failed", "end_user_id", id, "err", err)
			return Unavailable("the welcome email could not be queued (is Redis up?); try again")
		}
		if !queued {
			return Conflict("welcome_queued", "a welcome email to end user %d was asked for this minute already; it is on its way", id)
		}
		return nil
	})
}

// welcomeCooldown refuses a welcome email while another to u is on its way
// or went less than rules.WelcomeCooldown ago.
func (s *Service) welcomeCooldown(ctx context.Context, a Actor, u store.EndUser) error {
	notices, err := s.Store.NoticesOfEndUser(ctx, a.Tenant.ID, u.ID, 20)
	if err != nil {
		return err
	}
	for _, n := range notices {
		if n.Kind == rules.KindWelcome && (n.Status == store.NoticePending || n.Status == store.NoticeSending) {
			return Conflict("welcome_queued", "a welcome email to end user %d, asked for at %s, is on its way", u.ID, n.CreatedAt.UTC().Format(time.RFC3339))
		}
	}
	if last := u.WelcomeSentAt; last != nil && s.now().Before(last.Add(rules.WelcomeCooldown)) {
		return Conflict("welcome_recent", "a welcome email went to end user %d at %s; another may be sent from %s",
			u.ID, last.UTC().Format(time.RFC3339), last.Add(rules.WelcomeCooldown).UTC().Format(time.RFC3339))
	}
	return nil
}
