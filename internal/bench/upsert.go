package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"selfserve/connectors"
	"selfserve/internal/importer"
	"selfserve/internal/rules"
	"selfserve/internal/store"
)

// StoreUpsert measures the sync engine storing n directory users into
// PostgreSQL (normalising, classifying, one transaction per page of 500,
// provenance guards) against COPY of the same rows into the same table.
func StoreUpsert() Scenario {
	return Scenario{
		Name:     "store-upsert-postgres",
		Baseline: "COPY of the same rows",
		Ours:     "sync engine full import, pages of 500",
		Size:     100_000, Quick: 2_000, Unit: "users",
		Needs:   []string{"postgres"},
		Measure: measureStoreUpsert,
	}
}

func measureStoreUpsert(ctx context.Context, env *Env, side Side, size int) (time.Duration, error) {
	st, cleanup, err := FreshStore(ctx, env)
	if err != nil {
		return 0, err
	}
	defer cleanup()
	tgt, err := seedTenant(ctx, st, "bench", connectors.KindFile)
	if err != nil {
		return 0, err
	}
	epoch := time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)
	src := &SyntheticSource{N: size, PageSize: 500, Seed: env.Seed, Epoch: epoch}
	if side == SideOurs {
		im := &importer.Importer{MaxRemovalShare: 0.3, Store: st, Registry: connectors.NewRegistry(map[connectors.Kind]func() connectors.Config{
			connectors.KindFile: func() connectors.Config { return &staticConfig{src} },
		})}
		start := time.Now()
		res, err := im.Sync(ctx, importer.Request{TenantID: tgt.tenantID, ConnectionID: tgt.connectionID, Trigger: "bench"})
		if err != nil {
			return 0, err
		}
		if res.Run.Created != size-res.Run.Invalid {
			return 0, fmt.Errorf("imported %d of %d users", res.Run.Created, size)
		}
		return time.Since(start), nil
	}
	// Baseline: the same rows, already normalised, COPYed in one stream.
	rows := make([][]any, 0, size)
	now := time.Now().UTC()
	for page, err := range src.Users(ctx, "") {
		if err != nil {
			return 0, err
		}
		recs, _ := importer.Normalize(page.Users, "GB")
		for _, r := range recs {
			rows = append(rows, []any{tgt.tenantID, tgt.customerID, tgt.connectionID, string(rules.SourceLocal), r.ExternalID, r.Username, r.UPN,
				r.FirstName, r.LastName, r.DisplayName, r.Email, "directory", r.Mobile, "directory", r.Enabled, false,
				r.PasswordNeverExpires, nullable(r.PasswordLastSet), nullable(r.PasswordExpiresAt), true, now, now})
		}
	}
	cols := []string{"tenant_id", "customer_id", "connection_id", "source", "external_id", "username", "upn", "first_name", "last_name", "display_name",
		"email", "email_source", "mobile", "mobile_source", "enabled", "locked_out", "password_never_expires", "password_last_set", "password_expires_at",
		"self_serve", "created_at", "updated_at"}
	conn, err := st.DB().Conn(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	start := time.Now()
	err = conn.Raw(func(dc any) error {
		pc := dc.(*stdlib.Conn).Conn()
		n, err := pc.CopyFrom(ctx, pgx.Identifier{"end_users"}, cols, pgx.CopyFromRows(rows))
		if err == nil && int(n) != len(rows) {
			err = fmt.Errorf("copied %d of %d rows", n, len(rows))
		}
		return err
	})
	return time.Since(start), err
}

func nullable(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

// staticConfig opens an already-built source (the harness's synthetic
// directory) through the registry, like any connector.
type staticConfig struct{ src connectors.Source }

func (c *staticConfig) Open(connectors.Env) (connectors.Source, error) { return c.src, nil }

// target is a tenant with a customer and a connection.
type target struct {
	tenantID, customerID, connectionID int64
}

func seedTenant(ctx context.Context, st *store.Store, name string, kind connectors.Kind) (target, error) {
	var t target
	tn, _, err := st.UpsertTenant(ctx, store.Tenant{Name: name, Subscription: rules.SubscriptionBundle, SelfServe: true, TimeZone: "Europe/London", SendHour: 9, ReminderDays: 10})
	if err != nil {
		return t, err
	}
	cu, _, err := st.UpsertCustomer(ctx, store.Customer{TenantID: tn.ID, Name: name + "-customer", DefaultRegion: "GB"})
	if err != nil {
		return t, err
	}
	co, _, err := st.UpsertConnection(ctx, store.Connection{TenantID: tn.ID, CustomerID: &cu.ID, Name: name + "-conn", Kind: kind, Settings: []byte(`{}`), EnableSelfServe: true}, false)
	if err != nil {
		return t, err
	}
	return target{tn.ID, cu.ID, co.ID}, nil
}
