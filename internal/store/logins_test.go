package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"selfserve/internal/rules"
	"selfserve/internal/store"
	"selfserve/internal/store/storetest"
)

// TestLastSuper runs testLastSuper on every backend.
func TestLastSuper(t *testing.T) {
	t.Parallel()
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			testLastSuper(t, b.Open(t))
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func tenant(t *testing.T, s *store.Store, name string) store.Tenant {
	t.Helper()
	tn, _, err := s.UpsertTenant(context.Background(), store.Tenant{Name: name, Subscription: rules.SubscriptionBundle, SelfServe: true, TimeZone: "UTC", SendHour: 9, ReminderDays: 10})
	must(t, err)
	return tn
}

// testLastSuper: a tenant keeps at least one enabled super login; the
// check holds against two concurrent demotions.
func testLastSuper(t *testing.T, s *store.Store) {
	ctx := context.Background()
	tn := tenant(t, s, "lastsuper")
	other := tenant(t, s, "lastsuper-other")
	login := func(email string, role store.Role) {
		t.Helper()
		_, _, err := s.UpsertLogin(ctx, tn.ID, email, role)
		must(t, err)
	}
	login("a@msp.example", store.RoleSuper)
	login("b@msp.example", store.RoleSuper)
	// Another tenant's super does not count.
	_, _, err := s.UpsertLogin(ctx, other.ID, "a@msp.example", store.RoleSuper)
	must(t, err)

	login("a@msp.example", store.RolePrimary)
	_, _, err = s.UpsertLogin(ctx, tn.ID, "b@msp.example", store.RoleManager)
	var last *store.LastSuperError
	if !errors.As(err, &last) || !errors.Is(err, store.ErrConflict) || last.Email != "b@msp.example" ||
		!strings.Contains(err.Error(), "a tenant keeps at least one super login: promote another first") {
		t.Fatalf("demoting the last super: %v, want a *LastSuperError", err)
	}
	if l, _ := s.LoginByEmail(ctx, tn.ID, "b@msp.example"); l.Role != store.RoleSuper {
		t.Fatalf("the refused demotion left the role %s", l.Role)
	}
	// Inside a caller's transaction too, and nothing of it is kept.
	err = s.InTx(ctx, func(tx *store.Store) error {
		if _, _, err := tx.UpsertLogin(ctx, tn.ID, "c@msp.example", store.RoleHelpdesk); err != nil {
			return err
		}
		_, _, err := tx.UpsertLogin(ctx, tn.ID, "b@msp.example", store.RolePrimary)
		return err
	})
	if !errors.As(err, &last) {
		t.Fatalf("demoting the last super in a transaction: %v", err)
	}
	if _, err := s.LoginByEmail(ctx, tn.ID, "c@msp.example"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the refused transaction kept its other write: %v", err)
	}
	// Promote another first, then the demotion goes through.
	login("a@msp.example", store.RoleSuper)
	login("b@msp.example", store.RoleHelpdesk)

	// Two supers demoted at the same instant: exactly one demotion passes,
	// round after round.
	for round := range 10 {
		emails := []string{fmt.Sprintf("r%d-x@msp.example", round), fmt.Sprintf("r%d-y@msp.example", round)}
		for _, e := range emails {
			login(e, store.RoleSuper)
		}
		login("a@msp.example", store.RoleEngineer)
		var wg sync.WaitGroup
		errs := make([]error, len(emails))
		start := make(chan struct{})
		for i, e := range emails {
			wg.Go(func() {
				<-start
				errs[i] = s.InTx(ctx, func(tx *store.Store) error {
					_, _, err := tx.UpsertLogin(ctx, tn.ID, e, store.RolePrimary)
					return err
				})
			})
		}
		close(start)
		wg.Wait()
		passed, refused := 0, 0
		for _, err := range errs {
			switch {
			case err == nil:
				passed++
			case errors.As(err, &last):
				refused++
			default:
				t.Fatalf("round %d: %v", round, err)
			}
		}
		supers := 0
		ls, err := s.Logins(ctx, tn.ID)
		must(t, err)
		for _, l := range ls {
			if l.Role == store.RoleSuper {
				supers++
			}
		}
		if passed != 1 || refused != 1 || supers != 1 {
			t.Fatalf("round %d: %d demotions passed, %d refused, %d super logins left; want 1, 1, 1", round, passed, refused, supers)
		}
		// The survivor hands over to a for the next round.
		login("a@msp.example", store.RoleSuper)
		for _, e := range emails {
			login(e, store.RoleHelpdesk)
		}
	}
}
