package admin

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"selfserve/internal/apitoken"
	"selfserve/internal/service"
	"selfserve/internal/store"
)

// access is who may call a route.
type access int

const (
	// accessLogin: any login of the tenant (every role).
	accessLogin access = iota
	// accessSettings: logins with the super or primary role.
	accessSettings
	// accessSuper: logins with the super role (logins' roles).
	accessSuper
	// accessApp: a self-serve app client.
	accessApp
	// accessPublic: anyone (the OpenAPI document).
	accessPublic
)

// principal is who is calling, inside which tenant.
type principal struct {
	tenant store.Tenant
	// login is set for technicians (accessLogin, accessSettings).
	login   store.Login
	tokenID int64
	// app is set for self-serve app clients.
	app store.AppClient
}

// asActor is the caller as the shared operations see it.
func (p *principal) asActor() service.Actor {
	return service.Actor{Tenant: p.tenant, Login: p.login, App: p.app}
}

// canAdminister reports whether the caller may change tenant settings.
func (p *principal) canAdminister() bool { return p.asActor().CanChangeSettings() }

var errNoToken = &apiError{Status: http.StatusUnauthorized, Code: "unauthorized", Message: "send an API token: Authorization: Bearer ss_…"}

var errBadToken = &apiError{Status: http.StatusUnauthorized, Code: "unauthorized", Message: "the token is unknown, revoked or expired, or its login is disabled"}

// bearer returns the request's bearer token.
func bearer(r *http.Request) string {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}

// authenticate finds the caller of a route.
func (a *api) authenticate(r *http.Request, acc access) (*principal, error) {
	ctx := r.Context()
	switch acc {
	case accessPublic:
		return &principal{}, nil
	case accessApp:
		token := bearer(r)
		if token == "" {
			return nil, &apiError{Status: http.StatusUnauthorized, Code: "unauthorized", Message: "send the app client's token: Authorization: Bearer " + string(apitoken.AppClient) + "…"}
		}
		if !apitoken.AppClient.LooksValid(token) {
			return nil, errBadToken
		}
		app, err := a.Store.AuthenticateAppClient(ctx, apitoken.Hash(token))
		if errors.Is(err, store.ErrTokenInvalid) {
			return nil, errBadToken
		}
		if err != nil {
			return nil, err
		}
		tenant, err := a.Store.Tenant(ctx, app.TenantID)
		if err != nil {
			return nil, err
		}
		return &principal{tenant: tenant, app: app}, nil
	}
	token := bearer(r)
	if token == "" {
		return nil, errNoToken
	}
	if !apitoken.Login.LooksValid(token) {
		return nil, errBadToken
	}
	login, tok, err := a.Store.Authenticate(ctx, apitoken.Hash(token))
	if errors.Is(err, store.ErrTokenInvalid) {
		return nil, errBadToken
	}
	if err != nil {
		return nil, err
	}
	tenant, err := a.Store.Tenant(ctx, login.TenantID)
	if err != nil {
		return nil, err
	}
	p := &principal{tenant: tenant, login: login, tokenID: tok.ID}
	switch {
	case acc == accessSettings:
		if err := p.asActor().RequireSettings(); err != nil {
			return nil, err
		}
	case acc == accessSuper && login.Role != store.RoleSuper:
		return nil, &apiError{Status: http.StatusForbidden, Code: "forbidden",
			Message: fmt.Sprintf("the %s role may not do this: it needs the super role", login.Role)}
	}
	return p, nil
}

// guard wraps a route's handler with authentication and error replies.
func (a *api) guard(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := a.authenticate(r, rt.access)
		if err == nil {
			err = rt.handle(a, w, r, p)
		}
		if err != nil {
			writeError(w, a.apiErrorOf(r, err))
		}
	})
}
