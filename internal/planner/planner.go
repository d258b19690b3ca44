// Package planner finds the notices due at an instant. It is the one path
// behind both the expiry scan (worker.Scanner writes what Plan finds to the
// ledger) and the preview (GET /v1/notices/preview and `selfserve preview`
// show what Preview finds), so what the preview says at an instant is what
// the scan writes at that instant.
//
// Plan selects the candidates with the store's one candidate query
// (Store.ScanCandidates: its SQL filter mirrors the rules as a guard, within
// rules.ExpiryWindow and rules.LockoutLookback) and applies rules.ScanPlan
// to each in its customer's time zone. It reads the store and sends
// nothing.
package planner

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"selfserve/internal/rules"
	"selfserve/internal/store"
)

// Planner plans the notices due at an instant.
type Planner struct {
	Store *store.Store
	// Channels are the channels each notice goes out on (nil:
	// DefaultChannels). The scan passes the channels that have a provider,
	// so a channel without one gets no rows.
	Channels []store.Channel
}

// DefaultChannels are the channels notices go out on when a Planner names
// none: email and SMS (every end user the rules serve has both).
func DefaultChannels() []store.Channel { return []store.Channel{store.ChannelEmail, store.ChannelSMS} }

func (p *Planner) channels() []store.Channel {
	if p.Channels == nil {
		return DefaultChannels()
	}
	return p.Channels
}

// Scope narrows a plan. The zero Scope is every tenant; TenantID is one
// tenant, and CustomerID with it one of its customers.
type Scope struct {
	TenantID   int64
	CustomerID int64
}

// Notice is one notice due for one end user.
type Notice struct {
	TenantID   int64
	CustomerID int64
	EndUserID  int64
	rules.Notice
}

// Plan is what the planner found due at an instant.
type Plan struct {
	At time.Time
	// Candidates counts the end users the candidate query selected.
	Candidates int
	// Notices are the notices due, each to go out on every one of Channels.
	Notices  []Notice
	Channels []store.Channel
	// Query and Rules are how long the candidate query and the rules took.
	Query, Rules time.Duration
}

// Rows returns the plan's ledger rows: each notice on each channel.
func (p Plan) Rows() []store.NewNotice {
	rows := make([]store.NewNotice, 0, len(p.Notices)*len(p.Channels))
	for _, n := range p.Notices {
		for _, ch := range p.Channels {
			rows = append(rows, store.NewNotice{TenantID: n.TenantID, EndUserID: n.EndUserID, Kind: n.Kind, Occasion: n.Occasion, Channel: ch})
		}
	}
	return rows
}

// Plan returns the notices due at the instant at within scope: the
// candidates of the served tenants (subscription with self-serve, override
// on), each planned by rules.ScanPlan in its customer's time zone.
func (p *Planner) Plan(ctx context.Context, scope Scope, at time.Time) (Plan, error) {
	plan := Plan{At: at, Channels: p.channels()}
	start := time.Now()
	var tenants []store.Tenant
	if scope.TenantID != 0 {
		t, err := p.Store.Tenant(ctx, scope.TenantID)
		if err != nil {
			return plan, fmt.Errorf("plan notices: %w", err)
		}
		tenants = []store.Tenant{t}
	} else {
		var err error
		if tenants, err = p.Store.Tenants(ctx); err != nil {
			return plan, fmt.Errorf("plan notices: %w", err)
		}
	}
	served := map[int64]rules.Tenant{}
	byID := map[int64]store.Tenant{}
	var ids []int64
	reminders := 0
	for _, t := range tenants {
		if t.Subscription.AllowsSelfServe() && t.SelfServe {
			rt := t.Rules()
			served[t.ID], byID[t.ID] = rt, t
			ids = append(ids, t.ID)
			reminders = max(reminders, rt.Reminders())
		}
	}
	if len(ids) == 0 {
		return plan, nil
	}
	// The customers' zones load beside the candidates.
	var customers []store.Customer
	var customersErr error
	loaded := make(chan struct{})
	go func() {
		defer close(loaded)
		customers, customersErr = p.Store.ScanCustomers(ctx, ids)
	}()
	w := store.ScanWindow{LockedSince: at.Add(-rules.LockoutLookback), LockedUntil: at, TenantID: scope.TenantID, CustomerID: scope.CustomerID}
	w.ExpiresFrom, w.ExpiresBefore = rules.ExpiryWindow(reminders, at)
	users, err := p.Store.ScanCandidates(ctx, w)
	<-loaded
	if err != nil {
		return plan, fmt.Errorf("plan notices: %w", err)
	}
	if customersErr != nil {
		return plan, fmt.Errorf("plan notices: %w", customersErr)
	}
	plan.Candidates = len(users)
	plan.Query = time.Since(start)

	start = time.Now()
	zones := map[string]*time.Location{}
	locs := make(map[int64]*time.Location, len(customers))
	for _, c := range customers {
		t := byID[c.TenantID]
		name := c.TimeZone
		if name == "" {
			name = t.TimeZone
		}
		loc, ok := zones[name]
		if !ok {
			loc = c.Location(t)
			zones[name] = loc
		}
		locs[c.ID] = loc
	}
	plan.Notices = make([]Notice, 0, len(users)/2)
	for _, u := range users {
		t, ok := served[u.TenantID]
		if !ok {
			continue
		}
		for _, n := range rules.ScanPlan(t, locs[u.CustomerID], u.Rules(), at) {
			plan.Notices = append(plan.Notices, Notice{TenantID: u.TenantID, CustomerID: u.CustomerID, EndUserID: u.ID, Notice: n})
		}
	}
	plan.Rules = time.Since(start)
	return plan, nil
}

// Due is one notice due for one end user, as the preview shows it.
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

// describeBatch bounds the end users described per statement.
const describeBatch = 500

// Preview returns the notices Plan finds due at the instant at within
// scope, with the names of their tenant, customer and end user, ordered by
// customer name, then end user id.
func (p *Planner) Preview(ctx context.Context, scope Scope, at time.Time) ([]Due, error) {
	plan, err := p.Plan(ctx, scope, at)
	if err != nil {
		return nil, err
	}
	contexts := map[int64]store.NoticeContext{}
	var keys []store.NoticeKey
	seen := map[int64]bool{}
	for _, n := range plan.Notices {
		if !seen[n.EndUserID] {
			seen[n.EndUserID] = true
			keys = append(keys, store.NoticeKey{TenantID: n.TenantID, ID: n.EndUserID})
		}
	}
	for start := 0; start < len(keys); start += describeBatch {
		ncs, err := p.Store.NoticeContexts(ctx, keys[start:min(start+describeBatch, len(keys))])
		if err != nil {
			return nil, fmt.Errorf("preview notices: %w", err)
		}
		maps.Copy(contexts, ncs)
	}
	due := make([]Due, 0, len(plan.Notices))
	for _, n := range plan.Notices {
		nc, ok := contexts[n.EndUserID]
		if !ok {
			continue // deleted since the candidate query
		}
		d := Due{
			Tenant: nc.Tenant.Name, TenantID: n.TenantID, Customer: nc.Customer.Name, CustomerID: n.CustomerID,
			EndUserID: n.EndUserID, Username: nc.EndUser.Username, Name: displayName(nc.EndUser),
			Kind: n.Kind, Occasion: n.Occasion, DaysLeft: n.DaysLeft, DueAt: n.DueAt.UTC(), Channels: plan.Channels,
		}
		if !n.ExpiresAt.IsZero() {
			e := n.ExpiresAt.UTC()
			d.ExpiresAt = &e
		}
		due = append(due, d)
	}
	slices.SortStableFunc(due, func(a, b Due) int {
		return cmp.Or(cmp.Compare(a.Customer, b.Customer), cmp.Compare(a.CustomerID, b.CustomerID), cmp.Compare(a.EndUserID, b.EndUserID))
	})
	return due, nil
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
