package service

import (
	"context"
	"errors"
	"fmt"
	"time"

	"selfserve/internal/apitoken"
	"selfserve/internal/rules"
	"selfserve/internal/store"
)

// InviteTTL is how long an invite link stays good.
const InviteTTL = 72 * time.Hour

// Invite makes a single-use invite for the login of the actor's tenant
// with email, creating the login with role when it has none yet (role is
// required then). Only super and primary logins (and the CLI) may invite.
// It returns the token, shown once: the console's /invite/TOKEN page lets
// the login set its password.
func (s *Service) Invite(ctx context.Context, a Actor, email string, role store.Role) (string, store.Login, error) {
	if err := a.RequireSettings(); err != nil {
		return "", store.Login{}, err
	}
	if len(email) > MaxEmailLength {
		return "", store.Login{}, BadField("email", "the email address is longer than %d characters", MaxEmailLength)
	}
	norm, err := rules.NormalizeEmail(email)
	if err != nil || norm == "" {
		return "", store.Login{}, BadField("email", "%q is not an email address", Truncate(email, 60))
	}
	if role != "" && !role.Valid() {
		return "", store.Login{}, BadField("role", "%q is not a role; use one of super, primary, manager, engineer, helpdesk", Truncate(string(role), 20))
	}
	if role == store.RoleSuper && a.System == "" && a.Login.Role != store.RoleSuper {
		return "", store.Login{}, BadField("role", "only a super login may invite a super login")
	}
	token, tokenHash, _ := apitoken.Invite.New()
	var login store.Login
	err = s.Store.InTx(ctx, func(tx *store.Store) error {
		var err error
		login, err = tx.LoginByEmail(ctx, a.Tenant.ID, norm)
		switch {
		case errors.Is(err, store.ErrNotFound) && role == "":
			return BadField("role", "%s has no login yet: give its role", norm)
		case errors.Is(err, store.ErrNotFound):
			if login, _, err = tx.UpsertLogin(ctx, a.Tenant.ID, norm, role); err != nil {
				return err
			}
			if err := Audit(ctx, tx, a, "login.created", "login", login.ID, nil, login); err != nil {
				return err
			}
		case err != nil:
			return err
		case login.DisabledAt != nil:
			return Conflict("disabled", "the login %s is disabled", norm)
		}
		inv, err := tx.CreateInvite(ctx, a.Tenant.ID, login.ID, tokenHash, a.Name(), s.now().Add(InviteTTL))
		if err != nil {
			return err
		}
		return Audit(ctx, tx, a, "login.invited", "login", login.ID, nil, map[string]any{"email": login.Email, "expires_at": inv.ExpiresAt})
	})
	if err != nil {
		return "", store.Login{}, err
	}
	return token, login, nil
}

// LooksLikeInvite reports whether s has the shape of an invite token.
func LooksLikeInvite(s string) bool {
	return apitoken.Invite.LooksValid(s)
}

// AcceptInvite spends the invite token and sets its login's password hash
// (made by the caller), ending the login's sessions, with an audit entry.
// A used, expired or unknown token is store.ErrTokenInvalid.
func (s *Service) AcceptInvite(ctx context.Context, token, passwordHash string) (store.Login, error) {
	var login store.Login
	err := s.Store.InTx(ctx, func(tx *store.Store) error {
		inv, err := tx.AcceptInvite(ctx, apitoken.Hash(token), passwordHash, s.now())
		if err != nil {
			return err
		}
		if login, err = tx.Login(ctx, inv.TenantID, inv.LoginID); err != nil {
			return err
		}
		return tx.Audit(ctx, store.AuditRecord{
			TenantID:   inv.TenantID,
			LoginID:    &login.ID,
			Actor:      "login:" + login.Email,
			Action:     "login.password_set",
			ObjectType: "login",
			ObjectID:   fmt.Sprint(login.ID),
			After:      map[string]any{"invite_id": inv.ID},
		})
	})
	return login, err
}

// InviteLogin returns the login an unused invite token is for.
func (s *Service) InviteLogin(ctx context.Context, token string) (store.Login, error) {
	inv, err := s.Store.Invite(ctx, apitoken.Hash(token), s.now())
	if err != nil {
		return store.Login{}, err
	}
	return s.Store.Login(ctx, inv.TenantID, inv.LoginID)
}
