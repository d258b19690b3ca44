// Package population generates populations of directory end users and
// writes them straight into a PostgreSQL store with COPY: what the expiry
// scan and the senders find after syncs, without running them. The
// benchmarks (internal/bench) and the worker's scale tests share it.
package population

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"selfserve/internal/store"
)

// CountDue selects, with one bare SQL statement, the served end users whose
// password expires within the reminder window around at (from the day
// before to 11 days after), reads them into memory and returns how many.
// It is the scan benchmark's baseline, and a bound on what the scan finds
// due.
func CountDue(ctx context.Context, st *store.Store, at time.Time) (int, error) {
	rows, err := st.DB().QueryContext(ctx, `SELECT e.id, e.tenant_id, e.customer_id, e.password_expires_at
		FROM end_users e JOIN tenants t ON t.id = e.tenant_id
		WHERE t.self_serve AND t.subscription IN ('qdesk', 'bundle')
		AND e.removed_at IS NULL AND e.enabled AND e.self_serve AND e.email <> '' AND e.mobile <> ''
		AND NOT e.password_never_expires AND e.password_expires_at >= $1 AND e.password_expires_at < $2`,
		at.Add(-24*time.Hour), at.Add(11*24*time.Hour))
	if err != nil {
		return 0, fmt.Errorf("bare due query: %w", err)
	}
	defer rows.Close()
	type due struct {
		id, tenantID, customerID int64
		expires                  time.Time
	}
	var users []due
	for rows.Next() {
		var u due
		if err := rows.Scan(&u.id, &u.tenantID, &u.customerID, &u.expires); err != nil {
			return 0, fmt.Errorf("bare due query: %w", err)
		}
		users = append(users, u)
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("bare due query: %w", err)
	}
	return len(users), nil
}

// Spec describes a generated population of directory end users, which
// Load writes. The same fields and seed give the same rows.
type Spec struct {
	// Users is how many end users; they are dealt round-robin to the
	// customers.
	Users int
	// Customers is how many customers (at least 1), a hundred per tenant.
	Customers int
	// Seed makes the expiry dates and the mix deterministic.
	Seed uint64
	// At anchors the expiry dates (the instant a scan will run at).
	At time.Time
	// FirstExpiryDay and ExpiryDays place each password expiry uniformly
	// in [At + FirstExpiryDay days, At + (FirstExpiryDay+ExpiryDays) days),
	// to the minute. ExpiryDays 0 means 1.
	FirstExpiryDay, ExpiryDays int
	// Zones are the customers' time zones, dealt round-robin (default
	// America/New_York, Europe/London, Asia/Kolkata, Australia/Sydney and
	// UTC).
	Zones []string
	// Mixed makes about one end user in seven unserved, as in a real
	// directory: disabled (2%), no mobile (5%), a password that never
	// expires (4%), self-serve switched off (3%). Without it every end user
	// is served.
	Mixed bool
}

// DefaultZones are a Spec's default time zones.
var DefaultZones = []string{"America/New_York", "Europe/London", "Asia/Kolkata", "Australia/Sydney", "UTC"}

// regions are the customers' default phone regions by zone.
var regions = map[string]string{"America/New_York": "US", "Europe/London": "GB", "Asia/Kolkata": "IN", "Australia/Sydney": "AU"}

// Load writes the population into st (PostgreSQL, empty tables: ids start
// at 1) in one transaction, the way PostgreSQL's manual advises for bulk
// loads ("Populating a Database"): end_users' secondary indexes are dropped
// and built again after the rows arrive with COPY, and, when the database
// user is a superuser, the foreign-key triggers are skipped for the
// transaction (session_replication_role; the generated rows are valid by
// construction). Then it vacuums and analyses the tables as a database in
// service would have them. Loading a million users takes seconds this way
// instead of most of a minute.
func (p Spec) Load(ctx context.Context, st *store.Store) error {
	if st.Dialect() != store.Postgres {
		return fmt.Errorf("population: COPY needs PostgreSQL, not %s", st.Dialect())
	}
	if p.Users <= 0 {
		return fmt.Errorf("population: %d users: want at least 1", p.Users)
	}
	conn, err := st.DB().Conn(ctx)
	if err != nil {
		return fmt.Errorf("population: %w", err)
	}
	defer conn.Close()
	err = conn.Raw(func(dc any) error {
		pc := dc.(*stdlib.Conn).Conn()
		return pgx.BeginFunc(ctx, pc, func(tx pgx.Tx) error { return p.load(ctx, tx) })
	})
	if err != nil {
		return fmt.Errorf("population: %w", err)
	}
	if _, err := st.DB().ExecContext(ctx, `VACUUM ANALYZE tenants, customers, end_users`); err != nil {
		return fmt.Errorf("population: %w", err)
	}
	return nil
}

func (p Spec) load(ctx context.Context, tx pgx.Tx) error {
	customers := max(p.Customers, 1)
	tenants := (customers + 99) / 100
	zones := p.Zones
	if len(zones) == 0 {
		zones = DefaultZones
	}
	days := max(p.ExpiryDays, 1)
	now := time.Now().UTC()
	at := p.At.UTC()

	var super bool
	if err := tx.QueryRow(ctx, `SELECT current_setting('is_superuser') = 'on'`).Scan(&super); err != nil {
		return err
	}
	if super {
		if _, err := tx.Exec(ctx, `SET LOCAL session_replication_role = replica`); err != nil {
			return err
		}
	}
	// end_users' indexes other than its constraints', to build again after.
	rows, err := tx.Query(ctx, `SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() AND tablename = 'end_users'
		AND indexname NOT IN (SELECT c.relname FROM pg_constraint k JOIN pg_class c ON c.oid = k.conindid WHERE k.conrelid = 'end_users'::regclass)`)
	if err != nil {
		return err
	}
	var names, defs []string
	for rows.Next() {
		var name, def string
		if err := rows.Scan(&name, &def); err != nil {
			rows.Close()
			return err
		}
		names, defs = append(names, name), append(defs, def)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, name := range names {
		if _, err := tx.Exec(ctx, `DROP INDEX `+pgx.Identifier{name}.Sanitize()); err != nil {
			return err
		}
	}

	i := 0
	err = copyRows(ctx, tx, "tenants", []string{"id", "name", "subscription", "self_serve", "timezone", "send_hour", "reminder_days", "created_at", "updated_at"},
		tenants, func() []any {
			i++
			return []any{int64(i), fmt.Sprintf("tenant-%05d", i), "bundle", true, "UTC", 9, 10, now, now}
		})
	if err != nil {
		return err
	}
	i = 0
	err = copyRows(ctx, tx, "customers", []string{"id", "tenant_id", "name", "timezone", "default_region", "source", "created_at", "updated_at"},
		customers, func() []any {
			c := i
			i++
			zone := zones[c%len(zones)]
			region := regions[zone]
			if region == "" {
				region = "GB"
			}
			return []any{int64(c + 1), int64(c/100 + 1), fmt.Sprintf("customer-%05d", c+1), zone, region, "manual", now, now}
		})
	if err != nil {
		return err
	}
	i = 0
	err = copyRows(ctx, tx, "end_users", []string{"tenant_id", "customer_id", "source", "external_id", "username", "upn", "display_name",
		"email", "email_source", "mobile", "mobile_source", "enabled", "self_serve", "password_never_expires", "password_last_set", "password_expires_at",
		"created_at", "updated_at"},
		p.Users, func() []any {
			u := i
			i++
			c := u % customers
			r := rand.New(rand.NewPCG(p.Seed, uint64(u)))
			expires := at.Add(time.Duration(p.FirstExpiryDay)*24*time.Hour + time.Duration(r.Int64N(int64(days)*24*60))*time.Minute)
			name := fmt.Sprintf("u%07d", u)
			email := fmt.Sprintf("%s@customer%d.example", name, c+1)
			mobile := fmt.Sprintf("+4474%08d", u%100_000_000)
			enabled, selfServe, never := true, true, false
			if p.Mixed {
				switch k := r.IntN(100); {
				case k < 2:
					enabled = false
				case k < 7:
					mobile = ""
				case k < 11:
					never = true
				case k < 14:
					selfServe = false
				}
			}
			var expiresAt any = expires
			if never {
				expiresAt = nil
			}
			return []any{int64(c/100 + 1), int64(c + 1), "ad", "bench-" + name, name, email, "User " + name[1:],
				email, "directory", mobile, "directory", enabled, selfServe, never, expires.Add(-42 * 24 * time.Hour), expiresAt, now, now}
		})
	if err != nil {
		return err
	}
	for _, def := range defs {
		if _, err := tx.Exec(ctx, def); err != nil {
			return fmt.Errorf("rebuild index: %w", err)
		}
	}
	for _, table := range []string{"tenants", "customers"} {
		if _, err := tx.Exec(ctx, `SELECT setval(pg_get_serial_sequence($1, 'id'), (SELECT max(id) FROM `+table+`))`, table); err != nil {
			return err
		}
	}
	return nil
}

// copyRows COPYs n rows made by next into table.
func copyRows(ctx context.Context, tx pgx.Tx, table string, cols []string, n int, next func() []any) error {
	left := n
	copied, err := tx.CopyFrom(ctx, pgx.Identifier{table}, cols, pgx.CopyFromFunc(func() ([]any, error) {
		if left == 0 {
			return nil, nil
		}
		left--
		return next(), nil
	}))
	if err != nil {
		return fmt.Errorf("copy %s: %w", table, err)
	}
	if int(copied) != n {
		return fmt.Errorf("copy %s: %d of %d rows", table, copied, n)
	}
	return nil
}
