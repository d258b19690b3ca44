package worker_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"selfserve/internal/notify/smtpsink"
	"selfserve/internal/store"
	"selfserve/worker"
)

// usersCSV is a file connector export of n users whose passwords expire
// expires(i).
func usersCSV(prefix string, n int, expires func(i int) time.Time) string {
	var b strings.Builder
	b.WriteString("username,display_name,email,mobile,enabled,locked_out,password_last_set,password_expires_at\n")
	for i := range n {
		e := expires(i).UTC()
		fmt.Fprintf(&b, "%s%05d,%s user %d,%s%05d@customer.example,+4474001%05d,true,false,%s,%s\n",
			prefix, i, prefix, i, prefix, i, i, e.Add(-90*24*time.Hour).Format(time.RFC3339), e.Format(time.RFC3339))
	}
	return b.String()
}

// pointAt sets the file connection's path.
func pointAt(t *testing.T, st *store.Store, conn store.Connection, path string, pageSize int) store.Connection {
	t.Helper()
	conn.Settings = []byte(fmt.Sprintf(`{"path":%q,"page_size":%d}`, path, pageSize))
	conn.SealedSecrets = nil
	c, _, err := st.UpsertConnection(context.Background(), conn, false)
	must(t, err)
	return c
}

func counter(t *testing.T, c prometheus.Counter) int {
	t.Helper()
	var m dto.Metric
	must(t, c.Write(&m))
	return int(m.GetCounter().GetValue())
}

// TestTwoSchedulersTwoWorkers runs two scheduler replicas and two workers
// at once: each schedule occurrence becomes one run (never two runs of a
// connection at a time), the scheduled scan is enqueued once, and scans
// racing each other send every notice once.
func TestTwoSchedulersTwoWorkers(t *testing.T) {
	t.Parallel()
	requireServices(t)
	ctx := context.Background()
	st, _ := postgresStore(t)
	rd := testRedis(t)
	now := time.Date(2026, 12, 1, 15, 0, 0, 0, time.UTC)
	clk := newClock(now)
	f := newFixture(t, st, "replicas", 2)
	dir := t.TempDir()
	for i, conn := range f.conns {
		path := writeFile(t, dir, fmt.Sprintf("c%d.csv", i), usersCSV(fmt.Sprintf("c%d-", i), 60, func(j int) time.Time {
			return now.Add(time.Duration(j%15) * 24 * time.Hour)
		}))
		f.conns[i] = pointAt(t, st, conn, path, 20)
	}
	ch := newChannels(t, smtpsink.Options{})
	a := newNode(t, nodeOptions{redis: rd, st: st, clock: clk.Now, ch: ch.senders()})
	b := newNode(t, nodeOptions{redis: rd, st: st, clock: clk.Now, ch: ch.senders()})
	a.start(t)
	b.start(t)

	const every = 2 * time.Second
	var schedulers []*asynq.PeriodicTaskManager
	for range 2 {
		ptm, err := worker.NewScheduler(worker.SchedulerOptions{Redis: rd, SyncInterval: time.Second, Logger: testLogger(t)},
			&worker.Schedules{Store: st, Every: every})
		must(t, err)
		must(t, ptm.Start())
		schedulers = append(schedulers, ptm)
	}
	began := time.Now()
	// Both schedulers run until three occurrences have been processed for
	// each connection.
	ticked := func() int {
		return counter(t, a.metrics.Tasks.WithLabelValues(worker.TypeScheduledSync, "ok")) + counter(t, b.metrics.Tasks.WithLabelValues(worker.TypeScheduledSync, "ok"))
	}
	poll := time.NewTicker(20 * time.Millisecond)
	for deadline := time.After(time.Minute); ticked() < 3*len(f.conns); {
		select {
		case <-deadline:
			t.Fatalf("%d schedule ticks processed in a minute", ticked())
		case <-poll.C:
		}
	}
	poll.Stop()
	for _, s := range schedulers {
		s.Shutdown()
	}
	elapsed := time.Since(began)
	drain(t, rd, time.Minute)

	occurrences := int(elapsed/every) + 1
	ticks := ticked()
	total := 0
	for _, conn := range f.conns {
		runs, err := st.Runs(ctx, f.tenant.ID, conn.ID, 100)
		must(t, err)
		if len(runs) == 0 || len(runs) > occurrences {
			t.Fatalf("connection %d: %d runs for %d schedule occurrences", conn.ID, len(runs), occurrences)
		}
		for i, r := range runs {
			if r.Status != store.RunSucceeded || r.Trigger != "schedule" {
				t.Fatalf("run %+v", r)
			}
			if i > 0 && runs[i-1].StartedAt.Before(*r.FinishedAt) {
				t.Fatalf("runs %d and %d of connection %d overlap", r.ID, runs[i-1].ID, conn.ID)
			}
		}
		t.Logf("connection %d: %d runs for %d occurrences", conn.ID, len(runs), occurrences)
		total += len(runs)
	}
	if ticks != total {
		t.Fatalf("%d schedule ticks processed for %d runs: an occurrence was enqueued twice", ticks, total)
	}
	insp := asynq.NewInspector(rd)
	defer insp.Close()
	scans, err := insp.ListCompletedTasks(worker.QueueScan, asynq.PageSize(1000))
	must(t, err)
	nScans := 0
	for _, s := range scans {
		if s.Type == worker.TypeScan {
			nScans++
		}
	}
	if nScans != 1 {
		t.Fatalf("the scheduled scan ran %d times, want once", nScans)
	}

	// Scans racing on both workers, as several schedulers' scans would.
	var wg sync.WaitGroup
	for _, n := range []*node{a, b, a, b} {
		wg.Go(func() {
			if _, err := n.scanner.Scan(ctx); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	drain(t, rd, time.Minute)
	rows := notices(t, st, f.tenant.ID)
	if len(rows) != 2*2*44 { // 44 of each 60 users are due (0..10 days of 0..14), two channels
		t.Fatalf("%d ledger rows, want %d", len(rows), 2*2*44)
	}
	for _, nt := range rows {
		if nt.Status != store.NoticeSent || nt.Attempts != 1 {
			t.Fatalf("notice %+v", nt)
		}
	}
	ids := map[string]bool{}
	for _, m := range ch.sink.Messages() {
		ids[m.MessageID] = true
	}
	keys := map[string]bool{}
	for _, m := range ch.twilio.Messages() {
		keys[m.IdempotencyKey] = true
	}
	if ch.sink.Count() != len(rows)/2 || len(ids) != len(rows)/2 || len(ch.twilio.Messages()) != len(rows)/2 || len(keys) != len(rows)/2 {
		t.Fatalf("%d rows: %d emails (%d distinct), %d SMS (%d distinct)", len(rows), ch.sink.Count(), len(ids), len(ch.twilio.Messages()), len(keys))
	}
}
