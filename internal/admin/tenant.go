package admin

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"selfserve/internal/apitoken"
	"selfserve/internal/rules"
	"selfserve/internal/store"
)

// audit records a change of the caller in the audit log, in tx (the
// transaction of the change).
func audit(ctx context.Context, tx *store.Store, p *principal, action, objectType string, objectID any, before, after any) error {
	return tx.Audit(ctx, p.tenant.ID, p.loginID(), p.actor(), action, objectType, fmt.Sprint(objectID), before, after)
}

// tenantView is the tenant's settings as the API shows them.
type tenantView struct {
	ID           int64              `json:"id"`
	Name         string             `json:"name"`
	Subscription rules.Subscription `json:"subscription"`
	// SelfServeAvailable: the subscription includes self-serve.
	SelfServeAvailable bool `json:"self_serve_available"`
	// SelfServe is the global override.
	SelfServe bool `json:"self_serve"`
	// SwitchesLocked: end-user switches are locked by the override.
	SwitchesLocked bool      `json:"switches_locked"`
	TimeZone       string    `json:"timezone"`
	SendHour       int       `json:"send_hour"`
	ReminderDays   int       `json:"reminder_days"`
	UpdatedAt      time.Time `json:"updated_at"`
}

func newTenantView(t store.Tenant) tenantView {
	return tenantView{
		ID: t.ID, Name: t.Name, Subscription: t.Subscription, SelfServeAvailable: t.Subscription.AllowsSelfServe(),
		SelfServe: t.SelfServe, SwitchesLocked: rules.SwitchLocked(t.Rules()), TimeZone: t.TimeZone,
		SendHour: t.SendHour, ReminderDays: t.ReminderDays, UpdatedAt: t.UpdatedAt,
	}
}

func (a *api) getTenant(w http.ResponseWriter, r *http.Request, p *principal) error {
	writeJSON(w, http.StatusOK, newTenantView(p.tenant))
	return nil
}

// tenantPatch changes tenant settings; absent fields stay.
type tenantPatch struct {
	SelfServe    *bool   `json:"self_serve"`
	SendHour     *int    `json:"send_hour"`
	ReminderDays *int    `json:"reminder_days"`
	TimeZone     *string `json:"timezone"`
}

func (a *api) patchTenant(w http.ResponseWriter, r *http.Request, p *principal) error {
	var req tenantPatch
	if err := a.decodeBody(w, r, &req); err != nil {
		return err
	}
	switch {
	case req.SelfServe == nil && req.SendHour == nil && req.ReminderDays == nil && req.TimeZone == nil:
		return badField("", "nothing to change: give self_serve, send_hour, reminder_days or timezone")
	case req.SendHour != nil && (*req.SendHour < 0 || *req.SendHour > 23):
		return badField("send_hour", "send_hour %d is not an hour 0..23", *req.SendHour)
	case req.ReminderDays != nil && (*req.ReminderDays < 1 || *req.ReminderDays > 90):
		return badField("reminder_days", "reminder_days %d is out of range 1..90", *req.ReminderDays)
	}
	if req.TimeZone != nil {
		if err := checkTimeZone("timezone", *req.TimeZone, false); err != nil {
			return err
		}
	}
	ctx := r.Context()
	var after store.Tenant
	err := a.Store.InTx(ctx, func(tx *store.Store) error {
		before, err := tx.Tenant(ctx, p.tenant.ID)
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
		if next == before {
			after = before
			return nil
		}
		if err := tx.UpdateTenant(ctx, next); err != nil {
			return err
		}
		if after, err = tx.Tenant(ctx, p.tenant.ID); err != nil {
			return err
		}
		return audit(ctx, tx, p, "tenant.updated", "tenant", p.tenant.ID, newTenantView(before), newTenantView(after))
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newTenantView(after))
	return nil
}

// tokenView is a token as listed (never the token itself).
type tokenView struct {
	ID         int64      `json:"id"`
	LoginID    int64      `json:"login_id"`
	Prefix     string     `json:"prefix"`
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  *time.Time `json:"expires_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
}

func newTokenView(t store.APIToken) tokenView {
	return tokenView{ID: t.ID, LoginID: t.LoginID, Prefix: t.Prefix, CreatedAt: t.CreatedAt, ExpiresAt: t.ExpiresAt, RevokedAt: t.RevokedAt, LastUsedAt: t.LastUsedAt}
}

// listTokens lists the caller's tokens; super and primary see every
// login's.
func (a *api) listTokens(w http.ResponseWriter, r *http.Request, p *principal) error {
	if _, err := newQuery(r); err != nil {
		return err
	}
	loginID := p.login.ID
	if p.canAdminister() {
		loginID = 0
	}
	toks, err := a.Store.APITokens(r.Context(), p.tenant.ID, loginID)
	if err != nil {
		return err
	}
	out := make([]tokenView, len(toks))
	for i, t := range toks {
		out[i] = newTokenView(t)
	}
	writeJSON(w, http.StatusOK, map[string]any{"tokens": out})
	return nil
}

type tokenRequest struct {
	// LoginID makes the token for another login (super and primary only).
	LoginID *int64 `json:"login_id"`
	// ExpiresAt is an RFC 3339 time; absent: the token never expires.
	ExpiresAt *string `json:"expires_at"`
}

// maxTokenLifetime bounds expires_at.
const maxTokenLifetime = 2 * 366 * 24 * time.Hour

func (a *api) createToken(w http.ResponseWriter, r *http.Request, p *principal) error {
	var req tokenRequest
	if err := a.decodeOptionalBody(w, r, &req); err != nil {
		return err
	}
	loginID := p.login.ID
	if req.LoginID != nil && *req.LoginID != p.login.ID {
		if *req.LoginID <= 0 {
			return badField("login_id", "login_id must be a positive integer")
		}
		if !p.canAdminister() {
			return &apiError{Status: http.StatusForbidden, Code: "forbidden", Field: "login_id", Message: fmt.Sprintf("the %s role may make tokens for its own login only", p.login.Role)}
		}
		loginID = *req.LoginID
	}
	now := a.Now()
	var expires time.Time
	if req.ExpiresAt != nil {
		t, err := time.Parse(time.RFC3339, *req.ExpiresAt)
		switch {
		case err != nil:
			return badField("expires_at", "%q is not an RFC 3339 time such as 2027-01-31T00:00:00Z", truncate(*req.ExpiresAt, 40))
		case !t.After(now):
			return badField("expires_at", "expires_at %s is not in the future", t.Format(time.RFC3339))
		case t.Sub(now) > maxTokenLifetime:
			return badField("expires_at", "expires_at is more than two years away")
		}
		expires = t
	}
	token, hash, prefix := apitoken.New()
	ctx := r.Context()
	var tok store.APIToken
	err := a.Store.InTx(ctx, func(tx *store.Store) error {
		var err error
		if tok, err = tx.CreateAPIToken(ctx, p.tenant.ID, loginID, hash, prefix, expires); err != nil {
			return err
		}
		return audit(ctx, tx, p, "token.created", "token", tok.ID, nil, newTokenView(tok))
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, struct {
		tokenView
		// Token is shown once.
		Token string `json:"token"`
	}{newTokenView(tok), token})
	return nil
}

func (a *api) revokeToken(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	ctx := r.Context()
	var after store.APIToken
	err = a.Store.InTx(ctx, func(tx *store.Store) error {
		before, err := tx.APIToken(ctx, p.tenant.ID, id)
		if err != nil {
			return err
		}
		if before.LoginID != p.login.ID && !p.canAdminister() {
			return &apiError{Status: http.StatusForbidden, Code: "forbidden", Message: fmt.Sprintf("the %s role may revoke its own tokens only", p.login.Role)}
		}
		if before.RevokedAt != nil {
			return conflict("conflict", "token %d was revoked already", id)
		}
		if err := tx.RevokeAPIToken(ctx, p.tenant.ID, id); err != nil {
			return err
		}
		if after, err = tx.APIToken(ctx, p.tenant.ID, id); err != nil {
			return err
		}
		return audit(ctx, tx, p, "token.revoked", "token", id, newTokenView(before), newTokenView(after))
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newTokenView(after))
	return nil
}

func (a *api) listAppClients(w http.ResponseWriter, r *http.Request, p *principal) error {
	if _, err := newQuery(r); err != nil {
		return err
	}
	cs, err := a.Store.AppClients(r.Context(), p.tenant.ID)
	if err != nil {
		return err
	}
	if cs == nil {
		cs = []store.AppClient{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"app_clients": cs})
	return nil
}

type appClientRequest struct {
	Name string `json:"name"`
}

func (a *api) createAppClient(w http.ResponseWriter, r *http.Request, p *principal) error {
	var req appClientRequest
	if err := a.decodeBody(w, r, &req); err != nil {
		return err
	}
	if err := checkSlug("name", req.Name); err != nil {
		return err
	}
	token, hash, prefix := newAppToken()
	ctx := r.Context()
	var c store.AppClient
	err := a.Store.InTx(ctx, func(tx *store.Store) error {
		var err error
		if c, err = tx.CreateAppClient(ctx, p.tenant.ID, req.Name, hash, prefix); err != nil {
			return err
		}
		return audit(ctx, tx, p, "app_client.created", "app_client", c.ID, nil, c)
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, struct {
		store.AppClient
		// Token is shown once.
		Token string `json:"token"`
	}{c, token})
	return nil
}

func (a *api) revokeAppClient(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	ctx := r.Context()
	var after store.AppClient
	err = a.Store.InTx(ctx, func(tx *store.Store) error {
		before, err := tx.AppClient(ctx, p.tenant.ID, id)
		if err != nil {
			return err
		}
		if before.RevokedAt != nil {
			return conflict("conflict", "app client %d was revoked already", id)
		}
		if _, err := tx.RevokeAppClient(ctx, p.tenant.ID, id); err != nil {
			return err
		}
		if after, err = tx.AppClient(ctx, p.tenant.ID, id); err != nil {
			return err
		}
		return audit(ctx, tx, p, "app_client.revoked", "app_client", id, before, after)
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, after)
	return nil
}
