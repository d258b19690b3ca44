package graph

// Self-serve write-back to Entra ID: the source is a
// connectors.PasswordWriter for cloud-only users.
//
// SetPassword reads the user (GET /users/{id}, $select
// id,userPrincipalName,onPremisesSyncEnabled) and, for a cloud-only user,
// sends PATCH /users/{id} {"passwordProfile": {"password": …,
// "forceChangePasswordNextSignIn": false}}; Graph answers 204. The app
// registration needs the User-PasswordProfile.ReadWrite.All application
// permission with admin consent (Graph answers 403 without it; User.Read.All
// is not enough, and User.ReadWrite.All alone is reported to be refused
// since that permission exists); Entra ID also refuses to let an app reset
// the password of an administrator unless it holds a privileged role.
//
// A user synced from on-premises AD (onPremisesSyncEnabled) is never written
// to Entra ID: AD is authoritative and Graph refuses it anyway. The flow
// writes such a user's password to the linked AD account and lets the sync
// carry it to Entra; SetPassword refuses it with an error wrapping
// connectors.ErrUnsupported. Unlock always wraps ErrUnsupported: Entra's
// smart lockout is service-side and no admin API clears it.
//
// CheckWriteAccess, for "test connection", reads the roles claim of the
// app's access token (the application permissions granted with admin
// consent, as Entra lists them in app-only tokens) and reports a missing
// User-PasswordProfile.ReadWrite.All, without writing anything. The claim
// is read, not verified: the token comes straight from the identity
// platform over TLS and only Graph needs to trust it.
//
// Graph's refusal of a password by policy (400 Request_BadRequest, "The
// specified password does not comply with password complexity
// requirements") becomes a *connectors.PasswordRejectedError.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	abs "github.com/microsoft/kiota-abstractions-go"
	"github.com/microsoftgraph/msgraph-sdk-go/users"

	"selfserve/connectors"
)

var (
	_ connectors.PasswordWriter     = (*source)(nil)
	_ connectors.WriteAccessChecker = (*source)(nil)
)

// rolePasswordWrite is the application permission SetPassword needs.
const rolePasswordWrite = "User-PasswordProfile.ReadWrite.All"

// EntraPolicy is Entra ID's documented password policy for cloud users: 8
// to 256 characters, three of lower case, upper case, digits and symbols;
// on a reset the last password may be used again, so no history applies.
var EntraPolicy = connectors.PasswordPolicy{MinLength: 8, Complexity: true}

// RejectedReason is the plain-words reason of a password Graph refused by
// policy.
const RejectedReason = "does not meet Entra ID's password rules: 8 to 256 characters with three of upper case, lower case, digits and symbols, and not a commonly used or banned password"

// whatPatchPassword names the PATCH in errors; decodeResponse maps its 400
// answers.
const whatPatchPassword = "PATCH /users/{id} passwordProfile"

// Policy implements connectors.PasswordWriter: Entra ID's documented
// policy, the same for every cloud user.
func (s *source) Policy(context.Context, connectors.Account) (connectors.PasswordPolicy, error) {
	return EntraPolicy, nil
}

// SetPassword implements connectors.PasswordWriter for cloud-only users.
func (s *source) SetPassword(ctx context.Context, acct connectors.Account, newPassword string) error {
	id := acct.ExternalID
	if !guidPattern.MatchString(id) {
		return fmt.Errorf("azure connection %s: %w: the account id %q is not an Entra object id", s.id, connectors.ErrNotFound, id)
	}
	if newPassword == "" {
		return &connectors.PasswordRejectedError{Reason: "the password is empty"}
	}
	item := users.NewUsersRequestBuilderInternal(map[string]string{}, s.adapter).ByUserId(id)
	info, err := item.ToGetRequestInformation(ctx, &users.UserItemRequestBuilderGetRequestConfiguration{
		QueryParameters: &users.UserItemRequestBuilderGetQueryParameters{Select: []string{"id", "userPrincipalName", "onPremisesSyncEnabled"}}})
	if err != nil {
		return fmt.Errorf("azure connection %s: building GET /users/{id}: %w", s.id, err)
	}
	var user struct {
		UserPrincipalName     string `json:"userPrincipalName"`
		OnPremisesSyncEnabled *bool  `json:"onPremisesSyncEnabled"`
	}
	if err := s.get(ctx, "GET /users/{id}", info, &user); err != nil {
		return fmt.Errorf("azure connection %s: %w", s.id, err)
	}
	if user.OnPremisesSyncEnabled != nil && *user.OnPremisesSyncEnabled {
		return fmt.Errorf("azure connection %s: %w: %s is synced from on-premises Active Directory: its password is written to the linked AD account, never to Entra ID",
			s.id, connectors.ErrUnsupported, user.UserPrincipalName)
	}

	body, err := json.Marshal(map[string]any{"passwordProfile": map[string]any{
		"password": newPassword, "forceChangePasswordNextSignIn": false}})
	if err != nil {
		return err
	}
	patch := abs.NewRequestInformationWithMethodAndUrlTemplateAndPathParameters(abs.PATCH, item.UrlTemplate, item.PathParameters)
	patch.Headers.TryAdd("Accept", "application/json")
	patch.SetStreamContentAndContentType(body, "application/json")
	if err := s.get(ctx, whatPatchPassword, patch, nil); err != nil {
		return fmt.Errorf("azure connection %s: %w", s.id, err)
	}
	s.logger.Info("entra password reset", "user", user.UserPrincipalName)
	return nil
}

// Unlock implements connectors.PasswordWriter: Entra ID has no lockout an
// application can clear.
func (s *source) Unlock(context.Context, connectors.Account) error {
	return fmt.Errorf("azure connection %s: %w: Entra ID has no lockout to clear (its smart lockout ends by itself)", s.id, connectors.ErrUnsupported)
}

// CheckWriteAccess implements connectors.WriteAccessChecker: nil when the
// app's token carries User-PasswordProfile.ReadWrite.All, else an error
// wrapping connectors.ErrUnauthorized naming it.
func (s *source) CheckWriteAccess(ctx context.Context) error {
	scope := s.graphURL.Scheme + "://" + s.graphURL.Host + "/.default"
	tok, err := s.cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{scope}})
	if err != nil {
		return fmt.Errorf("azure connection %s: %w", s.id, s.classifyError(ctx, "getting an access token", err))
	}
	roles, err := tokenRoles(tok.Token)
	if err != nil {
		return fmt.Errorf("azure connection %s: %w: the access token cannot be read to check the app's permissions: %v", s.id, connectors.ErrBadResponse, err)
	}
	if !slices.Contains(roles, rolePasswordWrite) {
		return fmt.Errorf("azure connection %s: %w: the app lacks the %s application permission, which password write-back needs (granted: %s); add it with admin consent",
			s.id, connectors.ErrUnauthorized, rolePasswordWrite, strings.Join(roles, ", "))
	}
	return nil
}

// tokenRoles returns the roles claim of a JWT access token.
func tokenRoles(token string) ([]string, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, errors.New("not a JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return nil, errors.New("the JWT payload is not base64url")
	}
	var claims struct {
		Roles []string `json:"roles"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		return nil, errors.New("the JWT payload is not JSON")
	}
	return claims.Roles, nil
}

// passwordPatchError maps Graph's 400 answer to the password PATCH.
func passwordPatchError(status int, code, message string) error {
	lower := strings.ToLower(message)
	switch {
	case strings.Contains(lower, "on-premises mastered"):
		return fmt.Errorf("%w: %s: the user is synced from on-premises Active Directory: write its password to the linked AD account (Graph says: %s)",
			connectors.ErrUnsupported, whatPatchPassword, message)
	case strings.Contains(lower, "password") && (strings.Contains(lower, "complexity") || strings.Contains(lower, "policy") ||
		strings.Contains(lower, "banned") || strings.Contains(lower, "history")):
		return &connectors.PasswordRejectedError{Reason: RejectedReason}
	}
	return fmt.Errorf("%w: %s: Graph rejected the request (HTTP %d %s: %s)", connectors.ErrInvalidConfig, whatPatchPassword, status, code, message)
}

// isNoContent reports a success answer without a body.
func isNoContent(resp *http.Response) bool {
	return resp.StatusCode == http.StatusNoContent || resp.ContentLength == 0
}
