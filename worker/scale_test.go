package worker_test

import (
	"context"
	"testing"
	"time"

	"selfserve/internal/population"
	"selfserve/worker"
)

// TestScanGeneratedPopulation runs the expiry scan over a generated
// population (internal/population, as the scan benchmark's at its quick
// size: 20,000 end users in 200 customers of five time zones, some
// unserved): every due notice gets one ledger row per channel and one
// queued task batch, the due users are among those the bare query selects,
// and a second scan at the same instant creates nothing. Timing the scan
// against the bare query is the benchmark's job: go run ./cmd/bench -run
// scan.
func TestScanGeneratedPopulation(t *testing.T) {
	requireServices(t)
	ctx := context.Background()
	st, _ := postgresStore(t)
	rd := testRedis(t)
	at := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC) // past 09:00 in London, Kolkata, Sydney and UTC, not in New York
	must(t, population.Spec{Users: 20_000, Customers: 200, Seed: 20261124, At: at, FirstExpiryDay: -1, ExpiryDays: 250, Mixed: true}.Load(ctx, st))
	selected, err := population.CountDue(ctx, st, at)
	must(t, err)

	client := worker.NewClient(rd, nil, nil)
	defer client.Close()
	scanner := &worker.Scanner{Store: st, Enqueue: client, Now: func() time.Time { return at }}
	res, err := scanner.Scan(ctx)
	must(t, err)
	if res.Due == 0 || res.Due > selected {
		t.Fatalf("%d notices due, %d users selected by the bare query: want 0 < due <= selected", res.Due, selected)
	}
	var rows int
	must(t, st.DB().Get(&rows, `SELECT COUNT(*) FROM notices`))
	if res.Created != 2*res.Due || rows != res.Created {
		t.Fatalf("%d due notices: scan created %d ledger rows, the ledger holds %d; want 2 per notice (email and SMS)", res.Due, res.Created, rows)
	}
	if want := (res.Created + worker.DispatchBatch - 1) / worker.DispatchBatch; res.Tasks != want {
		t.Fatalf("%d rows queued in %d dispatch tasks, want %d", res.Created, res.Tasks, want)
	}
	again, err := scanner.Scan(ctx)
	must(t, err)
	if again.Created != 0 || again.Due != res.Due {
		t.Fatalf("second scan at the same instant: %d due, %d rows created; want %d due, none created", again.Due, again.Created, res.Due)
	}
}
