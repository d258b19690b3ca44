package worker_test

import (
	"context"
	"testing"

	"selfserve/internal/bench"
)

// TestSendPath sends the benchmark's notices (internal/bench, scenario
// "notices", at a small size) through the worker's real send path: the scan
// writes and queues the ledger rows, dispatch tasks fan them out in
// batches, and the sender claims, re-checks, renders and delivers them over
// STARTTLS to an SMTP sink. Send fails unless every notice reached the sink
// exactly once and the ledger records each one sent. Measuring throughput
// against a no-op handler is the benchmark's job: go run ./cmd/bench -run
// notices.
func TestSendPath(t *testing.T) {
	requireServices(t)
	st, _ := postgresStore(t)
	run := bench.NoticeRun{Redis: testRedis(t), Notices: 1200, Seed: 20261124, Logger: testLogger(t)}
	if _, err := run.Send(context.Background(), st); err != nil {
		t.Fatal(err)
	}
}
