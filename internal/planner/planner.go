// Package planner finds the notices due at an instant across a tenant's end
// users, applying rules.Plan to each with its customer's time zone. It reads
// the store and sends nothing: the preview shows its result, the expiry scan
// writes it to the ledger.
package planner

import (
	"context"
	"fmt"
	"time"

	"selfserve/internal/rules"
	"selfserve/internal/store"
)

// Due is one notice due for one end user.
type Due struct {
	Tenant     string           `json:"tenant"`
	TenantID   int64            `json:"tenant_id"`
	Customer   string           `json:"customer"`
	CustomerID int64            `json:"customer_id"`
	EndUserID  int64            `json:"end_user_id"`
	Username   string           `json:"username"`
	Name       string           `json:"name"`
	Kind       rules.NoticeKind `json:"kind"`
	Occasion   string           `json:"occasion"`
	DaysLeft   int              `json:"days_left"`
	DueAt      time.Time        `json:"due_at"`
	ExpiresAt  *time.Time       `json:"expires_at,omitempty"`
	Channels   []store.Channel  `json:"channels"`
}

// Channels returns the channels a notice to u goes out on: email and SMS
// when the address and number are there (an active user has both).
func Channels(u store.EndUser) []store.Channel {
	var ch []store.Channel
	if u.Email != "" {
		ch = append(ch, store.ChannelEmail)
	}
	if u.Mobile != "" {
		ch = append(ch, store.ChannelSMS)
	}
	return ch
}

// pageSize bounds how many end users are read at once.
const pageSize = 2000

// Tenant returns the notices due at the instant at for every end user of
// tenant, customer by customer.
func Tenant(ctx context.Context, s *store.Store, tenant store.Tenant, at time.Time) ([]Due, error) {
	customers, err := s.Customers(ctx, tenant.ID)
	if err != nil {
		return nil, fmt.Errorf("plan tenant %q: %w", tenant.Name, err)
	}
	var due []Due
	for _, c := range customers {
		d, err := Customer(ctx, s, tenant, c, at)
		if err != nil {
			return nil, err
		}
		due = append(due, d...)
	}
	return due, nil
}

// Customer returns the notices due at the instant at for the customer's end
// users.
func Customer(ctx context.Context, s *store.Store, tenant store.Tenant, c store.Customer, at time.Time) ([]Due, error) {
	loc := c.Location(tenant)
	rt := tenant.Rules()
	var due []Due
	var after int64
	for {
		users, err := s.EndUsers(ctx, tenant.ID, store.EndUserFilter{CustomerID: c.ID, AfterID: after, Limit: pageSize})
		if err != nil {
			return nil, fmt.Errorf("plan customer %q: %w", c.Name, err)
		}
		for _, u := range users {
			for _, n := range rules.Plan(rt, loc, u.Rules(), at) {
				d := Due{
					Tenant: tenant.Name, TenantID: tenant.ID, Customer: c.Name, CustomerID: c.ID,
					EndUserID: u.ID, Username: u.Username, Name: displayName(u),
					Kind: n.Kind, Occasion: n.Occasion, DaysLeft: n.DaysLeft, DueAt: n.DueAt.UTC(), Channels: Channels(u),
				}
				if !n.ExpiresAt.IsZero() {
					e := n.ExpiresAt.UTC()
					d.ExpiresAt = &e
				}
				due = append(due, d)
			}
		}
		if len(users) < pageSize {
			return due, nil
		}
		after = users[len(users)-1].ID
	}
}

func displayName(u store.EndUser) string {
	switch {
	case u.DisplayName != "":
		return u.DisplayName
	case u.FirstName != "" || u.LastName != "":
		return u.FirstName + " " + u.LastName
	default:
		return u.Username
	}
}
