package selfserve

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"selfserve/internal/admin/link"
	"selfserve/internal/rules"
	"selfserve/internal/store"
)

// Enrolment: the welcome email carries a signed, single-use link to a page
// where the end user confirms the mobile on file or types theirs; a code
// sent to that number proves they hold it, and only then is it stored, as
// the end user's own value (provenance end_user), which makes the end user
// Registration Complete. It is not a first access (Accessed Self-Serve
// comes with the first verified reset or unlock).

var (
	errLinkExpired = &Error{Status: 410, Code: "link_expired", Field: "token", Message: "this link has expired; ask your IT provider for a new welcome email"}
	errLinkUsed    = &Error{Status: 410, Code: "link_used", Field: "token", Message: "this link was already used; your mobile number is confirmed"}
	errLinkBad     = &Error{Status: 401, Code: "invalid_link", Field: "token", Message: "this link is not valid; open the link from your welcome email"}
)

// Enrolment is what the enrolment page shows.
type Enrolment struct {
	// Mobile is the number on file, if any, for the end user to confirm.
	Mobile string `json:"mobile"`
	Name   string `json:"name"`
}

// enrolee checks a welcome link token for the tenant and returns its end
// user and claims.
func (s *Service) enrolee(ctx context.Context, t store.Tenant, token string) (store.EndUser, link.Claims, error) {
	if s.opt.Links == nil {
		return store.EndUser{}, link.Claims{}, &Error{Status: 503, Code: "unavailable", Message: "enrolment is not available on this server"}
	}
	// A mail client may take the sentence's full stop into the link.
	token = strings.TrimRight(strings.TrimSpace(token), ".")
	claims, err := s.opt.Links.Verify(token, link.PurposeConfirmMobile, s.opt.Now())
	switch {
	case errors.Is(err, link.ErrExpired):
		return store.EndUser{}, claims, errLinkExpired
	case err != nil || claims.TenantID != t.ID:
		return store.EndUser{}, claims, errLinkBad
	}
	used, err := s.opt.Store.LinkTokenUsed(ctx, claims.Nonce)
	if err != nil {
		return store.EndUser{}, claims, err
	}
	if used {
		return store.EndUser{}, claims, errLinkUsed
	}
	u, err := s.opt.Store.EndUser(ctx, t.ID, claims.EndUserID)
	if errors.Is(err, store.ErrNotFound) {
		return u, claims, errLinkBad
	}
	if err != nil {
		return u, claims, err
	}
	switch r := rules.InactiveReason(t.Rules(), u.Rules()); r {
	case rules.ReasonNone, rules.ReasonMissingMobile:
	default:
		return u, claims, &Error{Status: 403, Code: "not_allowed", Message: "self-serve is not available for your account: " + string(r)}
	}
	return u, claims, nil
}

// EnrolmentOf checks a welcome link and returns what its page shows.
func (s *Service) EnrolmentOf(ctx context.Context, tenantName, token string) (Enrolment, error) {
	t, err := s.Tenant(ctx, tenantName)
	if err != nil {
		return Enrolment{}, err
	}
	u, _, err := s.enrolee(ctx, t, token)
	if err != nil {
		return Enrolment{}, err
	}
	return Enrolment{Mobile: u.Mobile, Name: cmpString(u.DisplayName, u.Username)}, nil
}

// StartEnrolment sends a code to mobile (the number on file when empty)
// for the end user of the welcome link token.
func (s *Service) StartEnrolment(ctx context.Context, tenantName, token, mobile, ip string) (ChallengeStarted, error) {
	t, err := s.Tenant(ctx, tenantName)
	if err != nil {
		return ChallengeStarted{}, err
	}
	if token == "" {
		return ChallengeStarted{}, fieldError("token", "token is required: the token of the welcome email's link")
	}
	u, claims, err := s.enrolee(ctx, t, token)
	if err != nil {
		return ChallengeStarted{}, err
	}
	raw := strings.TrimSpace(mobile)
	if raw == "" {
		raw = u.Mobile
	}
	if raw == "" {
		return ChallengeStarted{}, fieldError("mobile", "mobile is required: type your mobile number")
	}
	if len(raw) > 40 {
		return ChallengeStarted{}, fieldError("mobile", "the mobile number is longer than 40 characters")
	}
	customer, err := s.opt.Store.Customer(ctx, t.ID, u.CustomerID)
	if err != nil {
		return ChallengeStarted{}, err
	}
	e164, err := rules.NormalizePhone(raw, customer.DefaultRegion)
	if err != nil {
		return ChallengeStarted{}, fieldError("mobile", "%v", err)
	}
	if err := s.rateLimit(ctx, t.ID, "enrol:"+claims.Nonce, ip); err != nil {
		return ChallengeStarted{}, err
	}
	return s.newChallenge(ctx, t, u, true, "", store.PurposeEnrol, e164, claims.Nonce)
}

// completeEnrolment stores the proved mobile, once per link, in st's
// transaction.
func (s *Service) completeEnrolment(ctx context.Context, st *store.Store, t store.Tenant, c store.Challenge, ip string) error {
	if c.EndUserID == nil || c.Mobile == "" || c.LinkNonce == "" {
		return errDeadChallenge
	}
	type contactView struct {
		Mobile       string           `json:"mobile"`
		MobileSource rules.Provenance `json:"mobile_source"`
		Status       rules.Status     `json:"status"`
		ClientIP     string           `json:"client_ip"`
	}
	err := st.InTx(ctx, func(tx *store.Store) error {
		if err := tx.UseLinkToken(ctx, t.ID, *c.EndUserID, c.LinkNonce, s.opt.Now()); err != nil {
			return err
		}
		mobile := c.Mobile
		before, after, err := tx.SetContact(ctx, t.ID, *c.EndUserID, nil, &mobile, rules.ProvenanceEndUser)
		if err != nil {
			return err
		}
		return tx.Audit(ctx, store.AuditRecord{
			TenantID:   t.ID,
			Actor:      endUserActor(before.ID),
			Action:     "end_user.mobile_confirmed",
			ObjectType: "end_user",
			ObjectID:   fmt.Sprint(before.ID),
			Before:     contactView{before.Mobile, before.MobileSource, rules.StatusOf(before.Rules()), ip},
			After:      contactView{after.Mobile, after.MobileSource, rules.StatusOf(after.Rules()), ip},
		})
	})
	if errors.Is(err, store.ErrLinkUsed) {
		return errLinkUsed
	}
	return err
}
