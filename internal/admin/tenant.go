package admin

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"selfserve/internal/apitoken"
	"selfserve/internal/service"
	"selfserve/internal/store"
)

// audit records a change of the caller in the audit log, in tx (the
// transaction of the change).
func audit(ctx context.Context, tx *store.Store, p *principal, action, objectType string, objectID any, before, after any) error {
	return service.Audit(ctx, tx, p.asActor(), action, objectType, objectID, before, after)
}

func (a *api) getTenant(w http.ResponseWriter, r *http.Request, p *principal) error {
	writeJSON(w, http.StatusOK, service.NewTenantView(p.tenant))
	return nil
}

func (a *api) patchTenant(w http.ResponseWriter, r *http.Request, p *principal) error {
	var req service.TenantPatch
	if err := a.decodeBody(w, r, &req); err != nil {
		return err
	}
	after, err := a.svc.UpdateTenant(r.Context(), p.asActor(), req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, service.NewTenantView(after))
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
	// LoginID makes the token for another login (super only).
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
		if p.login.Role != store.RoleSuper {
			return &apiError{Status: http.StatusForbidden, Code: "forbidden", Field: "login_id", Message: fmt.Sprintf("the %s role may make tokens for its own login only: tokens for another login need the super role", p.login.Role)}
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
	token, hash, prefix := apitoken.Login.New()
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
	token, hash, prefix := apitoken.AppClient.New()
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
