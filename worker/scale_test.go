package worker_test

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"selfserve/internal/store"
	"selfserve/worker"
)

// TestScanAtScale measures the expiry scan over a large population against
// the bare SQL query that selects the due users. It runs only when
// SELFSERVE_SCALE_USERS is set (e.g. 1000000; the population is spread over
// 10,000 customers of 100 tenants in five time zones, with expiry dates over
// 300 days, so about 3% are due), as it loads that many rows.
func TestScanAtScale(t *testing.T) {
	size, _ := strconv.Atoi(os.Getenv("SELFSERVE_SCALE_USERS"))
	if size <= 0 {
		t.Skip("set SELFSERVE_SCALE_USERS (e.g. 1000000) to measure the expiry scan at scale")
	}
	requireServices(t)
	ctx := context.Background()
	st, _ := postgresStore(t)
	rd := testRedis(t)
	base := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	at := base.Add(12 * time.Hour)
	customers := min(10000, max(size/100, 1))
	tenants := max(customers/100, 1)

	start := time.Now()
	db := st.DB()
	_, err := db.Exec(`INSERT INTO tenants (name, subscription, self_serve, timezone, send_hour, reminder_days, created_at, updated_at)
		SELECT 'tenant-' || g, 'bundle', TRUE, 'UTC', 9, 10, now(), now() FROM generate_series(1, $1) g`, tenants)
	must(t, err)
	_, err = db.Exec(`INSERT INTO customers (tenant_id, name, timezone, default_region, source, created_at, updated_at)
		SELECT t.id, 'customer-' || g, (ARRAY['America/New_York', 'Europe/London', 'Asia/Kolkata', 'Australia/Sydney', 'UTC'])[1 + g % 5], 'GB', 'manual', now(), now()
		FROM generate_series(1, $1) g JOIN tenants t ON t.name = 'tenant-' || (1 + (g - 1) % $2)`, customers, tenants)
	must(t, err)
	_, err = db.Exec(`INSERT INTO end_users (tenant_id, customer_id, source, external_id, username, email, email_source, mobile, mobile_source, enabled, self_serve, password_expires_at, created_at, updated_at)
		SELECT c.tenant_id, c.id, 'ad', 'u' || g, 'u' || g, 'u' || g || '@customer.example', 'directory', '+4474' || lpad(g::text, 8, '0'), 'directory', TRUE, TRUE,
			$1::timestamptz + ((g::bigint * 7919) % (300 * 24 * 60)) * interval '1 minute', now(), now()
		FROM generate_series(1, $2) g JOIN customers c ON c.name = 'customer-' || (1 + g % $3)`, base, size, customers)
	must(t, err)
	_, err = db.Exec(`ANALYZE`)
	must(t, err)
	t.Logf("loaded %d end users in %d customers of %d tenants in %s", size, customers, tenants, time.Since(start).Round(time.Millisecond))

	// The baseline: the bare query selecting the users whose password
	// expires within the reminder window, read into memory.
	bare := func() (time.Duration, int) {
		start := time.Now()
		rows, err := db.Query(`SELECT e.id, e.tenant_id, e.customer_id, e.password_expires_at FROM end_users e JOIN tenants t ON t.id = e.tenant_id
			WHERE t.self_serve AND e.removed_at IS NULL AND e.enabled AND e.self_serve AND e.email <> '' AND e.mobile <> ''
			AND e.password_expires_at >= $1 AND e.password_expires_at < $2`, at.Add(-24*time.Hour), at.Add(11*24*time.Hour))
		must(t, err)
		n := 0
		for rows.Next() {
			var id, tid, cid int64
			var exp time.Time
			must(t, rows.Scan(&id, &tid, &cid, &exp))
			n++
		}
		must(t, rows.Err())
		rows.Close()
		return time.Since(start), n
	}
	bare() // warm the cache as the scan will find it
	baseline, selected := bare()

	client := worker.NewClient(rd, nil, nil)
	defer client.Close()
	scanner := &worker.Scanner{Store: st, Enqueue: client, Now: func() time.Time { return at }}
	res, err := scanner.Scan(ctx)
	must(t, err)
	total := res.Query + res.Plan + res.Ledger + res.Enqueue
	t.Logf("bare query: %s for %d users; scan: %s (query %s, plan %s, ledger %s, enqueue %s) for %d candidates, %d due, %d ledger rows, %d tasks; ratio %.2f",
		baseline.Round(time.Millisecond), selected, total.Round(time.Millisecond), res.Query.Round(time.Millisecond), res.Plan.Round(time.Millisecond),
		res.Ledger.Round(time.Millisecond), res.Enqueue.Round(time.Millisecond), res.Candidates, res.Due, res.Created, res.Tasks, float64(total)/float64(baseline))
	again, err := scanner.Scan(ctx)
	must(t, err)
	t.Logf("second scan (everything already in the ledger): %s, %d rows created", (again.Query + again.Plan + again.Ledger + again.Enqueue).Round(time.Millisecond), again.Created)
	if again.Created != 0 {
		t.Fatalf("second scan created %d rows", again.Created)
	}
	var rows int
	must(t, db.Get(&rows, `SELECT COUNT(*) FROM notices`))
	if rows != res.Created || res.Created != 2*res.Due {
		t.Fatalf("%d ledger rows for %d due notices", rows, res.Due)
	}
	_ = store.ChannelEmail
}
