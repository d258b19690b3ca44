package fakegraph

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// Role management, as Graph v1.0 serves it:
//
//   - GET /v1.0/roleManagement/directory/roleDefinitions ($select; every
//     built-in role the fake knows, RoleDefinitions)
//   - GET /v1.0/roleManagement/directory/roleAssignments ($select; paged
//     RolePageSize entries at a time with an absolute @odata.nextLink
//     carrying $skiptoken)
//
// Both need the RoleManagement.Read.Directory application permission:
// inject a 403 Fault on "/v1.0/roleManagement" to play an app without it.

// RoleDefinition is a built-in Entra ID directory role (its template id
// is its id, as on Graph).
type RoleDefinition struct {
	ID          string
	DisplayName string
}

// RoleDefinitions are the built-in roles the fake serves.
var RoleDefinitions = []RoleDefinition{
	{"62e90394-69f5-4237-9190-012177145e10", "Global Administrator"},
	{"e8611ab8-c189-46e8-94e1-60213ab1f814", "Privileged Role Administrator"},
	{"fe930be7-5e62-47db-91af-98c3a49a38b1", "User Administrator"},
	{"729827e3-9c14-49f7-bb1b-9608f156bbb8", "Helpdesk Administrator"},
	{"f2ef992c-3afb-46b9-b7cf-a126ee74c451", "Global Reader"},
}

// RolePageSize is how many role assignments one page holds.
const RolePageSize = 2

// roleAssignment is one assignment of a role to a principal.
type roleAssignment struct {
	id, principalID, roleDefinitionID string
}

// roleID returns the id of the role named name.
func roleID(name string) (string, error) {
	for _, d := range RoleDefinitions {
		if strings.EqualFold(d.DisplayName, name) {
			return d.ID, nil
		}
	}
	return "", fmt.Errorf("fakegraph: no built-in role %q", name)
}

// AssignRole gives the principal (a user id) the built-in role named
// roleName at the tenant scope ("/").
func (s *Server) AssignRole(principalID, roleName string) error {
	id, err := roleID(roleName)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.roleSeq++
	s.roles = append(s.roles, roleAssignment{id: fmt.Sprintf("ra-%d", s.roleSeq), principalID: principalID, roleDefinitionID: id})
	return nil
}

// UnassignRole removes the principal's assignments of the role named
// roleName.
func (s *Server) UnassignRole(principalID, roleName string) error {
	id, err := roleID(roleName)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.roles = slices.DeleteFunc(s.roles, func(a roleAssignment) bool { return a.principalID == principalID && a.roleDefinitionID == id })
	return nil
}

// selectFields applies a $select to rendered objects: an unknown property is
// Graph's 400, an absent $select keeps them whole.
func selectFields(w http.ResponseWriter, raw, typ string, known []string, value []map[string]any) bool {
	if strings.TrimSpace(raw) == "" {
		return true
	}
	keep := map[string]bool{"id": true}
	for _, n := range strings.Split(raw, ",") {
		n = strings.TrimSpace(n)
		if !slices.Contains(known, n) {
			graphError(w, http.StatusBadRequest, "Request_BadRequest", fmt.Sprintf("Could not find a property named '%s' on type 'microsoft.graph.%s'.", n, typ))
			return false
		}
		keep[n] = true
	}
	for _, v := range value {
		for k := range v {
			if !keep[k] {
				delete(v, k)
			}
		}
	}
	return true
}

// roleDefinitions serves GET /roleManagement/directory/roleDefinitions.
func (s *Server) roleDefinitions(w http.ResponseWriter, r *http.Request) {
	value := make([]map[string]any, 0, len(RoleDefinitions))
	for _, d := range RoleDefinitions {
		value = append(value, map[string]any{"id": d.ID, "templateId": d.ID, "displayName": d.DisplayName, "isBuiltIn": true, "isEnabled": true,
			"description": "Built-in role " + d.DisplayName + "."})
	}
	if !selectFields(w, query(r)["$select"], "unifiedRoleDefinition", []string{"id", "templateId", "displayName", "isBuiltIn", "isEnabled", "description"}, value) {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"@odata.context": s.GraphURL() + "/$metadata#roleManagement/directory/roleDefinitions", "value": value})
}

// roleAssignments serves GET /roleManagement/directory/roleAssignments in
// pages of RolePageSize.
func (s *Server) roleAssignments(w http.ResponseWriter, r *http.Request) {
	q := query(r)
	sel, off := q["$select"], 0
	if raw, ok := q["$skiptoken"]; ok {
		t, valid := decodeToken(raw)
		if !valid || t.Kind != "roles" {
			graphError(w, http.StatusBadRequest, "Request_BadRequest", "Invalid paging token.")
			return
		}
		sel, off = t.Sel, t.Off
	}
	s.mu.Lock()
	all := append([]roleAssignment(nil), s.roles...)
	s.mu.Unlock()
	end := min(off+RolePageSize, len(all))
	value := make([]map[string]any, 0, RolePageSize)
	for _, a := range all[min(off, end):end] {
		value = append(value, map[string]any{"id": a.id, "principalId": a.principalID, "roleDefinitionId": a.roleDefinitionID, "directoryScopeId": "/"})
	}
	if !selectFields(w, sel, "unifiedRoleAssignment", []string{"id", "principalId", "roleDefinitionId", "directoryScopeId"}, value) {
		return
	}
	page := map[string]any{"@odata.context": s.GraphURL() + "/$metadata#roleManagement/directory/roleAssignments", "value": value}
	if end < len(all) {
		page["@odata.nextLink"] = s.link("/roleManagement/directory/roleAssignments", "$skiptoken", pageToken{Kind: "roles", Sel: sel, Off: end})
	}
	writeJSON(w, http.StatusOK, page)
}
