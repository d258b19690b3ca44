package worker_test

import (
	"context"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"selfserve/internal/notify/smtpsink"
	"selfserve/internal/store"
	"selfserve/worker"
)

// TestSendThroughput measures notices sent through asynq to a local SMTP
// sink against a no-op asynq handler on the same queue with the same
// concurrency. It runs only when SELFSERVE_SEND_NOTICES is set (e.g.
// 30000).
func TestSendThroughput(t *testing.T) {
	count, _ := strconv.Atoi(os.Getenv("SELFSERVE_SEND_NOTICES"))
	if count <= 0 {
		t.Skip("set SELFSERVE_SEND_NOTICES (e.g. 30000) to measure sending throughput")
	}
	requireServices(t)
	ctx := context.Background()
	const concurrency = 10

	// Baseline: count no-op tasks enqueued and processed.
	noopRedis := testRedis(t)
	var done atomic.Int64
	mux := asynq.NewServeMux()
	mux.HandleFunc("bench:noop", func(context.Context, *asynq.Task) error { done.Add(1); return nil })
	client := asynq.NewClient(noopRedis)
	defer client.Close()
	start := time.Now()
	for i := range count {
		if _, err := client.Enqueue(asynq.NewTask("bench:noop", []byte(`{"tenant_id":1,"notice_id":`+strconv.Itoa(i)+`}`)), asynq.Queue(worker.QueueNotify)); err != nil {
			t.Fatal(err)
		}
	}
	enqueued := time.Since(start)
	w := worker.NewWorker(worker.ServerOptions{Redis: noopRedis, NotifyConcurrency: concurrency, PollInterval: 20 * time.Millisecond, Logger: testLogger(t)})
	processStart := time.Now()
	must(t, w.Start(mux))
	for done.Load() < int64(count) {
		time.Sleep(2 * time.Millisecond)
	}
	noopProcess := time.Since(processStart)
	noopTotal := time.Since(start)
	w.Shutdown()

	// Ours: the scan's rows fanned out and sent over STARTTLS to the sink.
	st, _ := postgresStore(t)
	rd := testRedis(t)
	now := time.Date(2026, 12, 1, 15, 0, 0, 0, time.UTC)
	f := newFixture(t, st, "throughput", 2)
	for c := range 2 {
		var recs []store.UserRecord
		for i := c; i < count; i += 2 {
			recs = append(recs, userRec(i, now.Add(time.Duration(1+i%9)*24*time.Hour)))
		}
		for start := 0; start < len(recs); start += 2000 {
			f.put(t, st, c, recs[start:min(start+2000, len(recs))]...)
		}
	}
	ch := newChannels(t, smtpsink.Options{Discard: true})
	n := newNode(t, nodeOptions{redis: rd, st: st, clock: func() time.Time { return now }, ch: ch.senders()})
	n.scanner.Channels = []store.Channel{store.ChannelEmail}
	n.worker = worker.NewWorker(worker.ServerOptions{Redis: rd, NotifyConcurrency: concurrency, PollInterval: 20 * time.Millisecond, Logger: testLogger(t)})
	start = time.Now()
	res, err := n.scanner.Scan(ctx)
	must(t, err)
	if res.Created != count {
		t.Fatalf("scan created %d rows, want %d", res.Created, count)
	}
	scanned := time.Since(start)
	sendStart := time.Now()
	n.start(t)
	if !ch.sink.WaitFor(count, 10*time.Minute) {
		t.Fatalf("only %d of %d emails arrived", ch.sink.Count(), count)
	}
	waitLedger(t, st, time.Minute)
	sendTotal := time.Since(sendStart)
	ours := float64(count) / sendTotal.Seconds()
	dbs := st.DB().Stats()
	t.Logf("database pool of %d: %d connections closed as surplus idle, %d waits for a connection (%s in all)", dbs.MaxOpenConnections, dbs.MaxIdleClosed, dbs.WaitCount, dbs.WaitDuration.Round(time.Millisecond))
	noop := float64(count) / noopProcess.Seconds()
	t.Logf("no-op handler: %d tasks enqueued in %s, processed in %s (%.0f/s; %.0f/s with the enqueueing)", count, enqueued.Round(time.Millisecond),
		noopProcess.Round(time.Millisecond), noop, float64(count)/noopTotal.Seconds())
	t.Logf("notices: scan %s (%d dispatch tasks), fan-out and %d SMTP sends (STARTTLS, %d sessions) in %s (%.0f/s); ratio %.2f of the no-op handler",
		scanned.Round(time.Millisecond), res.Tasks, count, ch.sink.Sessions(), sendTotal.Round(time.Millisecond), ours, ours/noop)
}
