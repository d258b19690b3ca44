// Package connectortest is the conformance suite every connector passes. A
// connector's test builds a source against its fixture (a fake server, a
// Samba DC, a file) and hands it to the Run functions, which check the
// contract of package connectors: pages stream and stop when asked, records
// are well formed, context cancellation ends the listing with the context's
// error, and nothing panics.
package connectortest

import (
	"context"
	"errors"
	"testing"
	"time"

	"selfserve/connectors"
)

// UserSourceCase describes what a UserSource under test is expected to yield.
type UserSourceCase struct {
	// Open returns a fresh source; the suite closes it.
	Open func(t *testing.T) connectors.UserSource
	// WantUsers is the number of valid users the full listing yields.
	WantUsers int
	// WantInvalid is the number of invalid records it reports.
	WantInvalid int
	// MinPages is the least number of pages the listing must take (set it
	// above 1 to prove paging works).
	MinPages int
}

// RunUserSource runs the user-source conformance checks.
func RunUserSource(t *testing.T, c UserSourceCase) {
	t.Helper()
	t.Run("full listing", func(t *testing.T) {
		src := open(t, c.Open)
		users, invalid, pages := 0, 0, 0
		seen := map[string]bool{}
		for page, err := range src.Users(context.Background(), "") {
			if err != nil {
				t.Fatalf("page %d: %v", pages+1, err)
			}
			pages++
			for _, u := range page.Users {
				checkUser(t, u)
				if seen[u.ExternalID] {
					t.Errorf("external id %q yielded twice", u.ExternalID)
				}
				seen[u.ExternalID] = true
			}
			for _, r := range page.Invalid {
				if r.Reason == "" || r.Ref == "" {
					t.Errorf("invalid record without ref or reason: %+v", r)
				}
			}
			users += len(page.Users)
			invalid += len(page.Invalid)
			if len(page.Removed) != 0 {
				t.Errorf("a full listing reported %d removals", len(page.Removed))
			}
		}
		if users != c.WantUsers {
			t.Errorf("got %d users, want %d", users, c.WantUsers)
		}
		if invalid != c.WantInvalid {
			t.Errorf("got %d invalid records, want %d", invalid, c.WantInvalid)
		}
		if pages < c.MinPages {
			t.Errorf("got %d pages, want at least %d", pages, c.MinPages)
		}
	})
	t.Run("stops when the consumer stops", func(t *testing.T) {
		src := open(t, c.Open)
		n := 0
		for _, err := range src.Users(context.Background(), "") {
			if err != nil {
				t.Fatal(err)
			}
			n++
			break
		}
		if n != 1 {
			t.Fatalf("consumer saw %d pages before breaking, want 1", n)
		}
	})
	t.Run("cancelled context", func(t *testing.T) {
		src := open(t, c.Open)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		var last error
		for _, err := range src.Users(ctx, "") {
			if err != nil {
				last = err
				break
			}
		}
		if last == nil {
			t.Fatal("listing with a cancelled context ended without error")
		}
		if !errors.Is(last, context.Canceled) {
			t.Fatalf("error %v does not wrap context.Canceled", last)
		}
	})
}

func checkUser(t *testing.T, u connectors.User) {
	t.Helper()
	if u.ExternalID == "" {
		t.Errorf("user %q (%s) has no external id", u.Username, u.Ref)
	}
	if u.PasswordNeverExpires && !u.PasswordExpiresAt.IsZero() {
		t.Errorf("user %s never expires but has expiry %s", u.ExternalID, u.PasswordExpiresAt)
	}
	if !u.LockedOut && !u.LockedOutAt.IsZero() {
		t.Errorf("user %s is not locked out but has a lockout time", u.ExternalID)
	}
	for _, ts := range []time.Time{u.PasswordExpiresAt, u.PasswordLastSet, u.LockedOutAt} {
		if !ts.IsZero() && ts.Location() != time.UTC {
			t.Errorf("user %s: time %s is not in UTC", u.ExternalID, ts)
		}
	}
}

// CustomerSourceCase describes what a CustomerSource under test yields.
type CustomerSourceCase struct {
	Open          func(t *testing.T) connectors.CustomerSource
	WantCustomers int
	WantInvalid   int
	MinPages      int
}

// RunCustomerSource runs the customer-source conformance checks.
func RunCustomerSource(t *testing.T, c CustomerSourceCase) {
	t.Helper()
	t.Run("customers", func(t *testing.T) {
		src := open(t, c.Open)
		n, invalid, pages := 0, 0, 0
		seen := map[string]bool{}
		for page, err := range src.Customers(context.Background()) {
			if err != nil {
				t.Fatalf("page %d: %v", pages+1, err)
			}
			pages++
			for _, cu := range page.Customers {
				if cu.ExternalID == "" || cu.Name == "" {
					t.Errorf("customer without id or name: %+v", cu)
				}
				if seen[cu.ExternalID] {
					t.Errorf("customer %q yielded twice", cu.ExternalID)
				}
				seen[cu.ExternalID] = true
			}
			n += len(page.Customers)
			invalid += len(page.Invalid)
		}
		if n != c.WantCustomers || invalid != c.WantInvalid {
			t.Errorf("got %d customers and %d invalid, want %d and %d", n, invalid, c.WantCustomers, c.WantInvalid)
		}
		if pages < c.MinPages {
			t.Errorf("got %d pages, want at least %d", pages, c.MinPages)
		}
	})
	t.Run("customers with a cancelled context", func(t *testing.T) {
		src := open(t, c.Open)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		for _, err := range src.Customers(ctx) {
			if err == nil {
				continue
			}
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("error %v does not wrap context.Canceled", err)
			}
			return
		}
		t.Fatal("listing with a cancelled context ended without error")
	})
}

// ContactSourceCase describes what a ContactSource under test yields for one
// customer.
type ContactSourceCase struct {
	Open               func(t *testing.T) connectors.ContactSource
	CustomerExternalID string
	WantContacts       int
	WantInvalid        int
	MinPages           int
}

// RunContactSource runs the contact-source conformance checks.
func RunContactSource(t *testing.T, c ContactSourceCase) {
	t.Helper()
	t.Run("contacts", func(t *testing.T) {
		src := open(t, c.Open)
		n, invalid, pages := 0, 0, 0
		for page, err := range src.Contacts(context.Background(), c.CustomerExternalID, time.Time{}) {
			if err != nil {
				t.Fatalf("page %d: %v", pages+1, err)
			}
			pages++
			for _, ct := range page.Contacts {
				if ct.ExternalID == "" {
					t.Errorf("contact without id: %+v", ct)
				}
				if ct.CustomerExternalID != c.CustomerExternalID {
					t.Errorf("contact %s belongs to customer %q, asked for %q", ct.ExternalID, ct.CustomerExternalID, c.CustomerExternalID)
				}
			}
			n += len(page.Contacts)
			invalid += len(page.Invalid)
		}
		if n != c.WantContacts || invalid != c.WantInvalid {
			t.Errorf("got %d contacts and %d invalid, want %d and %d", n, invalid, c.WantContacts, c.WantInvalid)
		}
		if pages < c.MinPages {
			t.Errorf("got %d pages, want at least %d", pages, c.MinPages)
		}
	})
}

func open[S connectors.Source](t *testing.T, openFn func(t *testing.T) S) S {
	t.Helper()
	src := openFn(t)
	t.Cleanup(func() {
		if err := src.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return src
}
