package graph

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"strings"

	abs "github.com/microsoft/kiota-abstractions-go"

	"selfserve/connectors"
)

// Privileged users are those holding any Entra ID directory role (Global
// Administrator, User Administrator, Global Reader, …): every run reads
// GET /roleManagement/directory/roleDefinitions (the roles' names) and
// GET /roleManagement/directory/roleAssignments (who holds which), every
// page, before its first user page. That needs the application permission
// RoleManagement.Read.Directory (User.Read.All does not cover it); without
// it the run goes on, and every user comes privileged with PrivilegeUnknown
// and the reason, until the permission is granted; "test connection" (Ping)
// names the missing permission.
//
// Role changes do not show in /users/delta, so the last page of every run,
// full or incremental, carries the complete set of role holders
// (UserPage.Privileged): the sync engine flags them and unflags the others.
// Roles held through a role-assignable group (the assignment's principal is
// the group) are not expanded to the group's members. An Entra user linked
// to an AD end user (hybrid, store/links.go) is that AD end user: AD's
// verdict stands, the Entra roles of a synced account are not added.

// rolePermission is the application permission role reads need.
const rolePermission = "RoleManagement.Read.Directory"

// roleHolders are the users holding directory roles, principal id to
// reason, or why they could not be read.
type roleHolders struct {
	byPrincipal map[string]string
	unknown     string
}

// classify sets the privilege of u.
func (h roleHolders) classify(u *connectors.User) {
	if h.unknown != "" {
		u.Privileged, u.PrivilegeUnknown, u.PrivilegedReason = true, true, h.unknown
		return
	}
	if reason, ok := h.byPrincipal[u.ExternalID]; ok {
		u.Privileged, u.PrivilegedReason = true, reason
	}
}

// set is what a run's last page carries: nil when unknown.
func (h roleHolders) set() map[string]string {
	if h.unknown != "" {
		return nil
	}
	return h.byPrincipal
}

// linkRequest builds a GET of an absolute Graph URL (a first page or an
// @odata.nextLink checked with checkLink).
func linkRequest(link string) *abs.RequestInformation {
	u, err := url.Parse(link)
	if err != nil {
		return nil // get reports a nil request
	}
	info := abs.NewRequestInformation()
	info.Method = abs.GET
	info.SetUri(*u)
	info.Headers.TryAdd("Accept", "application/json")
	return info
}

// getAll reads every page of a collection from its first link.
func getAll[T any](ctx context.Context, s *source, what, link string, each func([]T)) error {
	for link != "" {
		var page struct {
			Value    []T    `json:"value"`
			NextLink string `json:"@odata.nextLink"`
		}
		if err := s.get(ctx, what, linkRequest(link), &page); err != nil {
			return err
		}
		each(page.Value)
		if page.NextLink != "" {
			if err := s.checkLink("@odata.nextLink", page.NextLink); err != nil {
				return err
			}
		}
		link = page.NextLink
	}
	return nil
}

// readRoleHolders reads the role definitions and assignments. A refusal
// (the permission missing) is not an error: the holders are then unknown.
func (s *source) readRoleHolders(ctx context.Context) (roleHolders, error) {
	base := s.graphURL.String() + "/roleManagement/directory/"
	type definition struct {
		ID          string `json:"id"`
		DisplayName string `json:"displayName"`
	}
	type assignment struct {
		PrincipalID      string `json:"principalId"`
		RoleDefinitionID string `json:"roleDefinitionId"`
	}
	names := map[string]string{}
	err := getAll(ctx, s, "GET /roleManagement/directory/roleDefinitions", base+"roleDefinitions?$select=id,displayName", func(v []definition) {
		for _, d := range v {
			names[d.ID] = d.DisplayName
		}
	})
	roles := map[string][]string{}
	if err == nil {
		err = getAll(ctx, s, "GET /roleManagement/directory/roleAssignments", base+"roleAssignments?$select=principalId,roleDefinitionId", func(v []assignment) {
			for _, a := range v {
				name := names[a.RoleDefinitionID]
				if name == "" {
					name = "role " + a.RoleDefinitionID
				}
				if a.PrincipalID != "" && !slices.Contains(roles[a.PrincipalID], name) {
					roles[a.PrincipalID] = append(roles[a.PrincipalID], name)
				}
			}
		})
	}
	if errors.Is(err, connectors.ErrUnauthorized) {
		s.logger.Warn("cannot read directory role assignments: every user is imported as privileged until the app has "+rolePermission, "error", err)
		return roleHolders{unknown: "the app cannot read directory role assignments (grant it the " + rolePermission + " application permission)"}, nil
	}
	if err != nil {
		return roleHolders{}, err
	}
	h := roleHolders{byPrincipal: make(map[string]string, len(roles))}
	for p, rs := range roles {
		slices.Sort(rs)
		if len(rs) == 1 {
			h.byPrincipal[p] = "holds the Entra ID directory role " + rs[0]
		} else {
			h.byPrincipal[p] = "holds the Entra ID directory roles " + strings.Join(rs, ", ")
		}
	}
	return h, nil
}

// pingRoles checks that role assignments can be read.
func (s *source) pingRoles(ctx context.Context) error {
	var page struct {
		Value []struct {
			PrincipalID string `json:"principalId"`
		} `json:"value"`
	}
	link := s.graphURL.String() + "/roleManagement/directory/roleAssignments?$select=principalId,roleDefinitionId"
	return s.get(ctx, "GET /roleManagement/directory/roleAssignments", linkRequest(link), &page)
}
