package admin

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"selfserve/internal/admin/link"
	"selfserve/internal/report"
	"selfserve/internal/rules"
	"selfserve/internal/store"
)

// Endpoints of the self-serve apps: an app client reports an end user's
// first access; an end user confirms their mobile through the welcome
// email's link.

type firstAccessRequest struct {
	// At is when the end user first signed in (RFC 3339); default now.
	At *string `json:"at"`
}

// clockSkew is how far in the future a reported time may be.
const clockSkew = 5 * time.Minute

func (a *api) firstAccess(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var req firstAccessRequest
	if err := a.decodeOptionalBody(w, r, &req); err != nil {
		return err
	}
	now := a.Now()
	at := now
	if req.At != nil {
		t, err := time.Parse(time.RFC3339, *req.At)
		if err != nil {
			return badField("at", "%q is not an RFC 3339 time such as 2026-11-24T09:00:00Z", truncate(*req.At, 40))
		}
		if t.After(now.Add(clockSkew)) {
			return badField("at", "at %s is in the future", t.Format(time.RFC3339))
		}
		at = t
	}
	if err := selfServeAvailable(p.tenant); err != nil {
		return err
	}
	ctx := r.Context()
	var row report.EndUser
	err = a.Store.InTx(ctx, func(tx *store.Store) error {
		before, err := tx.EndUser(ctx, p.tenant.ID, id)
		if err != nil {
			return err
		}
		newly, err := tx.MarkFirstAccess(ctx, p.tenant.ID, id, at)
		if err != nil {
			return err
		}
		after, err := tx.EndUser(ctx, p.tenant.ID, id)
		if err != nil {
			return err
		}
		if newly {
			type accessView struct {
				FirstAccessAt *time.Time   `json:"first_access_at"`
				Status        rules.Status `json:"status"`
			}
			if err := audit(ctx, tx, p, "end_user.first_access", "end_user", id,
				accessView{before.FirstAccessAt, rules.StatusOf(before.Rules())},
				accessView{after.FirstAccessAt, rules.StatusOf(after.Rules())}); err != nil {
				return err
			}
		}
		row, err = a.endUserRow(ctx, tx, p.tenant, after)
		return err
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, row)
	return nil
}

type confirmRequest struct {
	// Token is the link token of the welcome email.
	Token string `json:"token"`
	// Mobile is the number the end user confirms or gives; absent confirms
	// the number on file.
	Mobile *string `json:"mobile"`
}

func (a *api) confirmMobile(w http.ResponseWriter, r *http.Request, _ *principal) error {
	var req confirmRequest
	if err := a.decodeBody(w, r, &req); err != nil {
		return err
	}
	if a.Links == nil {
		return unavailable("this server has no encryption key (SELFSERVE_ENCRYPTION_KEY), so it cannot check links")
	}
	if req.Token == "" {
		return badField("token", "token is required: the token of the welcome email's link")
	}
	claims, err := a.Links.Verify(req.Token, link.PurposeConfirmMobile, a.Now())
	switch {
	case errors.Is(err, link.ErrExpired):
		return &apiError{Status: http.StatusGone, Code: "link_expired", Field: "token", Message: "this link has expired; ask your IT provider for a new welcome email"}
	case errors.Is(err, link.ErrBadSignature):
		return &apiError{Status: http.StatusUnauthorized, Code: "invalid_link", Field: "token", Message: "this link is not valid"}
	case err != nil:
		return badField("token", "%v", err)
	}
	ctx := r.Context()
	tenant, err := a.Store.Tenant(ctx, claims.TenantID)
	if err != nil {
		return err
	}
	if err := selfServeAvailable(tenant); err != nil {
		return err
	}
	u, err := a.Store.EndUser(ctx, tenant.ID, claims.EndUserID)
	if err != nil {
		return err
	}
	customer, err := a.Store.Customer(ctx, tenant.ID, u.CustomerID)
	if err != nil {
		return err
	}
	raw := u.Mobile
	if req.Mobile != nil {
		raw = *req.Mobile
	}
	if raw == "" {
		return badField("mobile", "mobile is required: there is no number on file to confirm")
	}
	_, mobile, err := normalizeContact(contactEdit{Mobile: &raw}, customer.DefaultRegion)
	if err != nil {
		return err
	}
	actor := fmt.Sprintf("end_user:%d", u.ID)
	err = a.Store.InTx(ctx, func(tx *store.Store) error {
		if err := tx.UseLinkToken(ctx, tenant.ID, u.ID, claims.Nonce, a.Now()); err != nil {
			return err
		}
		before, after, err := tx.SetContact(ctx, tenant.ID, u.ID, nil, mobile, rules.ProvenanceEndUser)
		if err != nil {
			return err
		}
		return tx.Audit(ctx, tenant.ID, nil, actor, "end_user.mobile_confirmed", "end_user", fmt.Sprint(u.ID), newContactView(before), newContactView(after))
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"confirmed": true, "end_user_id": u.ID, "mobile": *mobile})
	return nil
}
