package graph

import (
	"context"
	"fmt"
	"strings"
	"time"

	"selfserve/connectors"
)

const (
	// defaultValidityDays applies when a domain's
	// passwordValidityPeriodInDays is unset.
	defaultValidityDays = 90
	// neverExpires is Graph's passwordValidityPeriodInDays for "never"
	// (Int32 max).
	neverExpires = 2147483647
)

// graphUser is a user as /users and /users/delta return it with userSelect.
// businessPhones is selected but not read: it is never a mobile.
type graphUser struct {
	ID                         string `json:"id"`
	UserPrincipalName          string `json:"userPrincipalName"`
	Mail                       string `json:"mail"`
	MobilePhone                string `json:"mobilePhone"`
	AccountEnabled             *bool  `json:"accountEnabled"`
	LastPasswordChangeDateTime string `json:"lastPasswordChangeDateTime"`
	PasswordPolicies           string `json:"passwordPolicies"`
	OnPremisesSyncEnabled      *bool  `json:"onPremisesSyncEnabled"`
	OnPremisesImmutableID      string `json:"onPremisesImmutableId"`
	OnPremisesSamAccountName   string `json:"onPremisesSamAccountName"`
	GivenName                  string `json:"givenName"`
	Surname                    string `json:"surname"`
	DisplayName                string `json:"displayName"`
	// Removed is set on delta entries of deleted users.
	Removed *struct {
		Reason string `json:"reason"`
	} `json:"@removed"`
}

// convertPage turns one Graph page into a UserPage, reading authentication
// phones when configured. Removals are accepted only from delta pages.
func (s *source) convertPage(ctx context.Context, doms domainPolicy, holders roleHolders, value []graphUser, delta bool) (connectors.UserPage, error) {
	up := connectors.UserPage{Users: make([]connectors.User, 0, len(value))}
	for k := range value {
		g := &value[k]
		if g.Removed != nil {
			if !delta || g.ID == "" {
				up.Invalid = append(up.Invalid, connectors.InvalidRecord{Ref: ref(g, k), Reason: "an @removed entry outside a delta query, or without id", ExternalID: g.ID})
				continue
			}
			// "deleted": gone for good; "changed": soft-deleted, restorable.
			up.Removed = append(up.Removed, connectors.Removal{ExternalID: g.ID, Permanent: strings.EqualFold(g.Removed.Reason, "deleted")})
			continue
		}
		u, reason := toUser(g, doms)
		if reason != "" {
			up.Invalid = append(up.Invalid, connectors.InvalidRecord{Ref: ref(g, k), Reason: reason, ExternalID: g.ID})
			continue
		}
		if u.Mobile == "" && s.fetchAuthPhone {
			phone, err := s.authPhone(ctx, u.ExternalID)
			if err != nil {
				return connectors.UserPage{}, err
			}
			u.Mobile = phone
		}
		holders.classify(&u)
		up.Users = append(up.Users, u)
	}
	return up, nil
}

// ref locates a Graph user in error reports.
func ref(g *graphUser, k int) string {
	switch {
	case g.ID != "" && g.UserPrincipalName != "":
		return g.UserPrincipalName + " (id " + g.ID + ")"
	case g.ID != "":
		return "users/" + g.ID
	default:
		return fmt.Sprintf("item %d of the page", k+1)
	}
}

// toUser maps a Graph user and computes its password expiry. A non-empty
// reason says why the user cannot be imported.
func toUser(g *graphUser, doms domainPolicy) (connectors.User, string) {
	if g.ID == "" {
		return connectors.User{}, "no id"
	}
	if g.UserPrincipalName == "" {
		return connectors.User{}, "no userPrincipalName"
	}
	local, domain, ok := strings.Cut(g.UserPrincipalName, "@")
	if !ok || local == "" || domain == "" {
		return connectors.User{}, fmt.Sprintf("userPrincipalName %q is not of the form name@domain", g.UserPrincipalName)
	}
	u := connectors.User{
		ExternalID:  g.ID,
		Username:    g.OnPremisesSamAccountName,
		UPN:         g.UserPrincipalName,
		FirstName:   g.GivenName,
		LastName:    g.Surname,
		DisplayName: g.DisplayName,
		Email:       g.Mail,
		Mobile:      g.MobilePhone,
		// accountEnabled is always returned when selected; if it were not,
		// a disabled user is the safe reading (no notifications).
		Enabled:              g.AccountEnabled != nil && *g.AccountEnabled,
		ImmutableID:          g.OnPremisesImmutableID,
		SyncedFromOnPremises: g.OnPremisesSyncEnabled != nil && *g.OnPremisesSyncEnabled,
		Ref:                  g.UserPrincipalName,
	}
	if u.Username == "" {
		u.Username = local
	}
	if g.LastPasswordChangeDateTime != "" {
		t, err := time.Parse(time.RFC3339, g.LastPasswordChangeDateTime)
		if err != nil {
			return connectors.User{}, fmt.Sprintf("lastPasswordChangeDateTime %q is not an RFC 3339 date", g.LastPasswordChangeDateTime)
		}
		u.PasswordLastSet = t.UTC()
	}
	if u.SyncedFromOnPremises {
		// On-premises AD decides the password's expiry: left unknown here.
		return u, ""
	}
	if hasPolicy(g.PasswordPolicies, "DisablePasswordExpiration") {
		u.PasswordNeverExpires = true
		return u, ""
	}
	validity, known := doms[strings.ToLower(domain)]
	if !known {
		return connectors.User{}, fmt.Sprintf("the UPN's domain %q is not a domain of the tenant, so its password validity is unknown", domain)
	}
	days := int64(defaultValidityDays)
	if validity != nil {
		days = int64(*validity)
	}
	switch {
	case days == neverExpires:
		u.PasswordNeverExpires = true
	case days <= 0:
		return connectors.User{}, fmt.Sprintf("domain %q has an invalid passwordValidityPeriodInDays %d", domain, days)
	case !u.PasswordLastSet.IsZero():
		u.PasswordExpiresAt = u.PasswordLastSet.Add(time.Duration(days) * 24 * time.Hour)
	}
	return u, ""
}

// hasPolicy reports whether the comma-separated passwordPolicies holds p.
func hasPolicy(policies, p string) bool {
	for _, v := range strings.Split(policies, ",") {
		if strings.EqualFold(strings.TrimSpace(v), p) {
			return true
		}
	}
	return false
}
