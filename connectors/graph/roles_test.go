package graph_test

import (
	"context"
	"errors"
	"maps"
	"strings"
	"testing"

	"selfserve/connectors"
	"selfserve/connectors/graph/fakegraph"
)

// TestDirectoryRoles: a user holding a directory role is privileged with
// the role's name (the assignments span several pages); the last page of a
// full and of an incremental run carries every holder, so a role granted or
// removed since is seen though the users themselves did not change.
func TestDirectoryRoles(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fakegraph.Options{Users: 30})
	admin, helper, reader, other := f.srv.UserAt(0).ID, f.srv.UserAt(1).ID, f.srv.UserAt(2).ID, f.srv.UserAt(3).ID
	for _, a := range [][2]string{{admin, "Global Administrator"}, {helper, "User Administrator"}, {helper, "Helpdesk Administrator"}, {reader, "Global Reader"}} {
		if err := f.srv.AssignRole(a[0], a[1]); err != nil {
			t.Fatal(err)
		}
	}
	src := f.open(t)
	if err := src.Ping(context.Background()); err != nil {
		t.Fatalf("ping: %v", err)
	}
	pages := mustCollect(t, src.Users(context.Background(), ""))
	users, _, _ := flatten(pages)
	want := map[string]string{
		admin:  "holds the Entra ID directory role Global Administrator",
		helper: "holds the Entra ID directory roles Helpdesk Administrator, User Administrator",
		reader: "holds the Entra ID directory role Global Reader",
	}
	for id, u := range users {
		if u.Privileged != (want[id] != "") || u.PrivilegedReason != want[id] || u.PrivilegeUnknown {
			t.Errorf("%s: privileged %t %q, want %q", u.UPN, u.Privileged, u.PrivilegedReason, want[id])
		}
	}
	last := pages[len(pages)-1]
	if !maps.Equal(last.Privileged, want) {
		t.Errorf("last page's holders %v, want %v", last.Privileged, want)
	}
	for _, p := range pages[:len(pages)-1] {
		if p.Privileged != nil {
			t.Error("a page before the last carries the holders")
		}
	}
	if f.srv.Requests("roleAssignments") < 2 {
		t.Errorf("role assignments read in %d requests, want several pages", f.srv.Requests("roleAssignments"))
	}

	// A role removed and another granted: no user changed, the holders did.
	if err := f.srv.UnassignRole(admin, "Global Administrator"); err != nil {
		t.Fatal(err)
	}
	if err := f.srv.AssignRole(other, "Privileged Role Administrator"); err != nil {
		t.Fatal(err)
	}
	delta := mustCollect(t, src.Changes(context.Background(), lastCursor(t, pages)))
	changed, _, _ := flatten(delta)
	delete(want, admin)
	want[other] = "holds the Entra ID directory role Privileged Role Administrator"
	if got := delta[len(delta)-1].Privileged; len(changed) != 0 || !maps.Equal(got, want) {
		t.Errorf("incremental: %d users changed, holders %v, want none and %v", len(changed), got, want)
	}
}

// TestDirectoryRolesForbidden: without RoleManagement.Read.Directory the
// connection test names the permission, and a run goes on with every user
// privileged as unknown and no holder set.
func TestDirectoryRolesForbidden(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fakegraph.Options{Users: 5})
	f.srv.InjectFault(fakegraph.Fault{Path: "/v1.0/roleManagement", Status: 403, Times: -1,
		Code: "Authorization_RequestDenied", Message: "Insufficient privileges to complete the operation."})
	src := f.open(t)
	err := src.Ping(context.Background())
	if !errors.Is(err, connectors.ErrUnauthorized) || !strings.Contains(err.Error(), "RoleManagement.Read.Directory") {
		t.Errorf("ping: %v, want ErrUnauthorized naming RoleManagement.Read.Directory", err)
	}
	pages := mustCollect(t, src.Users(context.Background(), ""))
	users, _, _ := flatten(pages)
	if len(users) != 5 {
		t.Fatalf("%d users", len(users))
	}
	for _, u := range users {
		if !u.Privileged || !u.PrivilegeUnknown || !strings.Contains(u.PrivilegedReason, "RoleManagement.Read.Directory") {
			t.Errorf("%s: %+v", u.UPN, u)
		}
	}
	if pages[len(pages)-1].Privileged != nil {
		t.Error("the last page carries a holder set though the roles could not be read")
	}
}
