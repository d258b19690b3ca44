package storetest

import (
	"context"
	"testing"

	"selfserve/internal/rules"
	"selfserve/internal/store"
)

func privilegedUser(id, reason string) store.UserRecord {
	r := user(id, "+447700900009")
	r.Privileged, r.PrivilegedReason = true, reason
	return r
}

// testPrivileged: the flag and its reason are stored from the page, their
// changes (and new users imported privileged) are reported for the audit,
// the listing filters on the flag, and a source's complete set reconciles
// the connection's end users both ways.
func testPrivileged(t *testing.T, s *store.Store) {
	ctx := context.Background()
	f := newFixture(t, s, "privileged")
	res := applyPage(t, s, f, 1, privilegedUser("da", "member of Domain Admins"), user("plain", "+447700900010"))
	got := endUsers(t, s, f.tenant.ID)
	da, plain := got["da"], got["plain"]
	if !da.Privileged || da.PrivilegedReason != "member of Domain Admins" || plain.Privileged || plain.PrivilegedReason != "" {
		t.Fatalf("stored: da %v %q, plain %v %q", da.Privileged, da.PrivilegedReason, plain.Privileged, plain.PrivilegedReason)
	}
	if len(res.Privileges) != 1 || res.Privileges[0].EndUserID != da.ID || !res.Privileges[0].After.Privileged || res.Privileges[0].Before.Privileged {
		t.Fatalf("new privileged user: changes %+v", res.Privileges)
	}
	if !da.Rules().Privileged {
		t.Fatal("Rules() drops the flag")
	}
	// the same page (in the next run): nothing changes
	if res := applyPage(t, s, f, 2, privilegedUser("da", "member of Domain Admins"), user("plain", "+447700900010")); res.Unchanged != 2 || len(res.Privileges) != 0 {
		t.Fatalf("same page: %+v", res)
	}
	// a new reason alone is an update, not a privilege change
	if res := applyPage(t, s, f, 1, privilegedUser("da", "adminCount=1")); res.Updated != 1 || len(res.Privileges) != 0 {
		t.Fatalf("new reason: %+v", res)
	}
	// plain becomes privileged, da stops
	res = applyPage(t, s, f, 1, user("da", "+447700900009"), privilegedUser("plain", "member of Backup Operators"))
	if len(res.Privileges) != 2 {
		t.Fatalf("swap: changes %+v", res.Privileges)
	}
	for _, c := range res.Privileges {
		if c.EndUserID == da.ID && (c.After.Privileged || !c.Before.Privileged || c.Before.Reason != "adminCount=1") ||
			c.EndUserID == plain.ID && (!c.After.Privileged || c.After.Reason != "member of Backup Operators") {
			t.Errorf("change %+v", c)
		}
	}
	list, err := s.EndUsers(ctx, f.tenant.ID, store.EndUserFilter{Privileged: ptr(true)})
	must(t, err)
	if len(list) != 1 || list[0].ID != plain.ID {
		t.Fatalf("privileged=true lists %+v", list)
	}
	list, err = s.EndUsers(ctx, f.tenant.ID, store.EndUserFilter{Privileged: ptr(false)})
	must(t, err)
	if len(list) != 1 || list[0].ID != da.ID {
		t.Fatalf("privileged=false lists %+v", list)
	}

	// Reconcile with the source's complete set: da in, plain out.
	changes, err := s.ReconcilePrivileged(ctx, f.target(1), map[string]string{"da": "holds Global Administrator", "unknown": "x"})
	must(t, err)
	if len(changes) != 2 || changes[0].EndUserID != da.ID || !changes[0].After.Privileged || changes[1].EndUserID != plain.ID || changes[1].After.Privileged {
		t.Fatalf("reconcile: %+v", changes)
	}
	got = endUsers(t, s, f.tenant.ID)
	if !got["da"].Privileged || got["da"].PrivilegedReason != "holds Global Administrator" || got["plain"].Privileged || got["plain"].PrivilegedReason != "" {
		t.Fatalf("after reconcile: da %+v, plain %+v", got["da"], got["plain"])
	}
	if changes, err := s.ReconcilePrivileged(ctx, f.target(1), map[string]string{"da": "holds Global Administrator"}); err != nil || len(changes) != 0 {
		t.Fatalf("reconcile again: %+v, %v", changes, err)
	}
	// another tenant's connection is untouched
	other := newFixture(t, s, "privileged-other")
	applyPage(t, s, other, 1, privilegedUser("x", "r"))
	if _, err := s.ReconcilePrivileged(ctx, f.target(1), map[string]string{}); err != nil {
		t.Fatal(err)
	}
	if !endUsers(t, s, other.tenant.ID)["x"].Privileged {
		t.Fatal("reconciling one connection changed another tenant's end user")
	}
}

// testTenantPrivilegedSelfServe: the tenant setting defaults to deny and is
// stored.
func testTenantPrivilegedSelfServe(t *testing.T, s *store.Store) {
	ctx := context.Background()
	f := newFixture(t, s, "privileged-setting")
	if f.tenant.PrivilegedSelfServe != rules.PrivilegedDeny {
		t.Fatalf("new tenant: %q, want deny", f.tenant.PrivilegedSelfServe)
	}
	tn := f.tenant
	tn.PrivilegedSelfServe = rules.PrivilegedTwoFactors
	_, changed, err := s.UpsertTenant(ctx, tn)
	must(t, err)
	got, err := s.Tenant(ctx, tn.ID)
	must(t, err)
	if !changed || got.PrivilegedSelfServe != rules.PrivilegedTwoFactors || got.Rules().PrivilegedSelfServe != rules.PrivilegedTwoFactors {
		t.Fatalf("two_factors: changed %v, stored %q", changed, got.PrivilegedSelfServe)
	}
}
