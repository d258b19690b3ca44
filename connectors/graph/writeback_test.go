package graph_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"selfserve/connectors"
	"selfserve/connectors/graph"
	"selfserve/connectors/graph/fakegraph"
)

// writer opens the fixture's source as a PasswordWriter logging to logs.
func (f *fixture) writer(t *testing.T, logs *bytes.Buffer) connectors.PasswordWriter {
	t.Helper()
	cfg := f.cfg
	src, err := cfg.Open(connectors.Env{ID: "wb", Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = src.Close() })
	return src.(connectors.PasswordWriter)
}

func TestSetPasswordCloudUser(t *testing.T) {
	f := newFixture(t, fakegraph.Options{})
	var logs bytes.Buffer
	w := f.writer(t, &logs)
	u := f.srv.AddUser(fakegraph.User{UserPrincipalName: "ann.lee@contoso.example", AccountEnabled: true,
		LastPasswordChangeDateTime: "2026-01-01T00:00:00Z"})
	const pw = "Tulip-Harbor-93"
	if err := w.SetPassword(context.Background(), connectors.Account{ExternalID: u.ID}, pw); err != nil {
		t.Fatalf("SetPassword: %v", err)
	}
	changes := f.srv.PasswordChanges()
	if len(changes) != 1 || changes[0].UserID != u.ID || changes[0].Password != pw ||
		changes[0].ForceChangePasswordNextSignIn || changes[0].ForceChangePasswordNextSignInWithMfa {
		t.Fatalf("PATCH recorded %+v, want the password for %s without a forced change", changes, u.ID)
	}
	if after, _ := f.srv.User(u.ID); after.LastPasswordChangeDateTime == u.LastPasswordChangeDateTime {
		t.Error("the user's lastPasswordChangeDateTime did not move")
	}
	if strings.Contains(logs.String(), pw) {
		t.Fatalf("the logs contain the password: %s", logs.String())
	}
}

func TestSetPasswordRefusals(t *testing.T) {
	f := newFixture(t, fakegraph.Options{})
	w := f.writer(t, &bytes.Buffer{})
	ctx := context.Background()
	cloud := f.srv.AddUser(fakegraph.User{UserPrincipalName: "cloud@contoso.example", AccountEnabled: true})
	synced := f.srv.AddUser(fakegraph.User{UserPrincipalName: "synced@contoso.example", AccountEnabled: true,
		OnPremisesSyncEnabled: true, OnPremisesImmutableID: "c2VjcmV0LWd1aWQtYnl0ZXM="})

	t.Run("weak password", func(t *testing.T) {
		for _, pw := range []string{"short1A", "alllowercase", "Pässwort-123"} {
			err := w.SetPassword(ctx, connectors.Account{ExternalID: cloud.ID}, pw)
			var rej *connectors.PasswordRejectedError
			if !errors.As(err, &rej) || rej.Reason != graph.RejectedReason {
				t.Errorf("SetPassword(%q) = %v, want a *PasswordRejectedError with the plain reason", pw, err)
			}
		}
	})
	t.Run("synced from on-premises", func(t *testing.T) {
		patches := f.srv.Requests("patchUser")
		err := w.SetPassword(ctx, connectors.Account{ExternalID: synced.ID}, "Tulip-Harbor-93")
		if !errors.Is(err, connectors.ErrUnsupported) || !strings.Contains(err.Error(), "linked AD account") {
			t.Fatalf("SetPassword = %v, want ErrUnsupported pointing to the linked AD account", err)
		}
		if f.srv.Requests("patchUser") != patches {
			t.Fatal("a PATCH was sent for a synced user")
		}
	})
	t.Run("missing permission", func(t *testing.T) {
		f.srv.DenyPasswordWrites(true)
		defer f.srv.DenyPasswordWrites(false)
		err := w.SetPassword(ctx, connectors.Account{ExternalID: cloud.ID}, "Tulip-Harbor-93")
		if !errors.Is(err, connectors.ErrUnauthorized) || !strings.Contains(err.Error(), "User-PasswordProfile.ReadWrite.All") {
			t.Fatalf("SetPassword = %v, want ErrUnauthorized naming User-PasswordProfile.ReadWrite.All", err)
		}
	})
	t.Run("unknown or malformed id", func(t *testing.T) {
		for _, id := range []string{"00000000-0000-4000-8000-00000000ffff", "ann.lee@contoso.example", "../users", ""} {
			if err := w.SetPassword(ctx, connectors.Account{ExternalID: id}, "Tulip-Harbor-93"); !errors.Is(err, connectors.ErrNotFound) {
				t.Errorf("SetPassword(%q) = %v, want ErrNotFound", id, err)
			}
		}
	})
	if n := len(f.srv.PasswordChanges()); n != 0 {
		t.Fatalf("%d passwords were set by refused requests", n)
	}
}

func TestUnlockAndPolicy(t *testing.T) {
	f := newFixture(t, fakegraph.Options{Users: 1})
	w := f.writer(t, &bytes.Buffer{})
	acct := connectors.Account{ExternalID: f.srv.UserAt(0).ID}
	if err := w.Unlock(context.Background(), acct); !errors.Is(err, connectors.ErrUnsupported) || !strings.Contains(err.Error(), "no lockout to clear") {
		t.Errorf("Unlock = %v, want ErrUnsupported: Entra ID has no lockout to clear", err)
	}
	pol, err := w.Policy(context.Background(), acct)
	if err != nil || pol != (connectors.PasswordPolicy{MinLength: 8, Complexity: true}) {
		t.Errorf("Policy = %+v, %v", pol, err)
	}
}

func TestCheckWriteAccess(t *testing.T) {
	f := newFixture(t, fakegraph.Options{Users: 1})
	ctx := context.Background()
	checker := func() connectors.WriteAccessChecker {
		return f.writer(t, &bytes.Buffer{}).(connectors.WriteAccessChecker)
	}
	if err := checker().CheckWriteAccess(ctx); err != nil {
		t.Fatalf("CheckWriteAccess with the permission: %v", err)
	}
	f.srv.DenyPasswordWrites(true)
	err := checker().CheckWriteAccess(ctx)
	if !errors.Is(err, connectors.ErrUnauthorized) || !strings.Contains(err.Error(), fakegraph.RolePasswordWrite) ||
		!strings.Contains(err.Error(), "User.Read.All") {
		t.Fatalf("CheckWriteAccess without the permission = %v, want ErrUnauthorized naming it and the roles granted", err)
	}
	f.srv.DenyPasswordWrites(false)
	f.cfg.ClientSecret = "wrong-secret"
	if err := checker().CheckWriteAccess(ctx); !errors.Is(err, connectors.ErrUnauthorized) || strings.Contains(err.Error(), "wrong-secret") {
		t.Fatalf("CheckWriteAccess with a wrong secret = %v, want ErrUnauthorized without the secret", err)
	}
}
