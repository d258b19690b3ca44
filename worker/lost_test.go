package worker_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"selfserve/internal/notify/smtpsink"
	"selfserve/internal/store"
	"selfserve/worker"
)

// flushRedis empties the test's Redis DB, as a Redis restarted without its
// data would be.
func flushRedis(t *testing.T, rd interface{ MakeRedisClient() any }) {
	t.Helper()
	c := rd.MakeRedisClient().(redis.UniversalClient)
	defer c.Close()
	must(t, c.FlushDB(context.Background()).Err())
}

// TestRunLostWithRedisIsResumed: a worker loses its sync task mid-run (its
// task is cancelled and Redis then loses its data), leaving the run
// running with nothing queued to resume it. The next sync of the connection
// (here its scheduled tick) queues that run again and a worker resumes it
// from its saved position: the same run, every user once.
func TestRunLostWithRedisIsResumed(t *testing.T) {
	t.Parallel()
	requireServices(t)
	ctx := context.Background()
	rd := testRedis(t)
	st, _ := postgresStore(t)
	now := time.Date(2026, 12, 1, 15, 0, 0, 0, time.UTC)
	clk := newClock(now)
	f := newFixture(t, st, "lost", 1)
	const rows, pageSize = 3000, 20
	path := writeFile(t, t.TempDir(), "big.csv", usersCSV("lost-", rows, func(i int) time.Time { return now.Add(100 * 24 * time.Hour) }))
	conn := pointAt(t, st, f.conns[0], path, pageSize)
	run, err := st.CreateRun(ctx, f.tenant.ID, conn.ID, store.ModeFull, "api", store.RunQueued, false, time.Hour)
	must(t, err)
	ch := newChannels(t, smtpsink.Options{})

	base, cancel := context.WithCancel(context.Background())
	first := newNode(t, nodeOptions{redis: rd, st: st, clock: clk.Now, ch: ch.senders(), base: func() context.Context { return base }})
	must(t, first.client.EnqueueSync(ctx, run))
	first.start(t)
	waitRun(t, st, run, "under way", func(r store.SyncRun) bool { return r.Pages >= 10 })
	cancel() // the task is interrupted ...
	waitRun(t, st, run, "released", func(r store.SyncRun) bool { return r.Lease == "" })
	first.worker.Shutdown()
	flushRedis(t, rd) // ... and Redis loses it
	lost, err := st.Run(ctx, f.tenant.ID, run.ID)
	must(t, err)
	if lost.Status != store.RunRunning || lost.Pages >= rows/pageSize {
		t.Fatalf("run after the loss: %+v", lost)
	}

	second := newNode(t, nodeOptions{redis: rd, st: st, clock: clk.Now, ch: ch.senders()})
	second.start(t)
	tick := &worker.ScheduledSyncHandler{Store: st, Client: second.client, Logger: testLogger(t)}
	task, _, err := worker.NewScheduledSyncTask(conn, time.Hour)
	must(t, err)
	must(t, tick.ProcessTask(ctx, task))
	final := waitRun(t, st, run, "finished", func(r store.SyncRun) bool { return r.Status.Finished() })
	if final.Status != store.RunSucceeded || final.Pages != rows/pageSize || final.Processed != rows || final.Created != rows {
		t.Fatalf("resumed run %+v: want succeeded, %d pages, %d users created once", final, rows/pageSize, rows)
	}
	t.Logf("lost at page %d of %d; resumed to the end", lost.Pages, rows/pageSize)
}

// waitRun waits (up to a minute) until run satisfies ok, and returns it.
func waitRun(t *testing.T, st *store.Store, run store.SyncRun, what string, ok func(store.SyncRun) bool) store.SyncRun {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(5 * time.Millisecond) {
		r, err := st.Run(context.Background(), run.TenantID, run.ID)
		must(t, err)
		if ok(r) {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %d not %s within a minute: %+v", run.ID, what, r)
		}
	}
}

// TestStrandedNoticesRequeued: ledger rows left pending when Redis lost its
// queues are queued again by the requeue task, which the scheduler fires
// every five minutes (not only by the hourly scan), and are sent once.
func TestStrandedNoticesRequeued(t *testing.T) {
	t.Parallel()
	requireServices(t)
	ctx := context.Background()
	rd := testRedis(t)
	st, _ := postgresStore(t)
	now := time.Date(2026, 12, 1, 15, 0, 0, 0, time.UTC)
	f := newFixture(t, st, "stranded", 1)
	var due []store.UserRecord
	for i := range 30 {
		due = append(due, userRec(i, now.Add(time.Duration(1+i%9)*24*time.Hour)))
	}
	f.put(t, st, 0, due...)
	ch := newChannels(t, smtpsink.Options{})
	n := newNode(t, nodeOptions{redis: rd, st: st, clock: newClock(now).Now, ch: ch.senders()})

	configs, err := (&worker.Schedules{Store: st}).GetConfigs()
	must(t, err)
	if !slices.ContainsFunc(configs, func(c *asynq.PeriodicTaskConfig) bool {
		return c.Task.Type() == worker.TypeRequeue && c.Cronspec == worker.RequeueCronspec
	}) || worker.RequeueCronspec != "*/5 * * * *" {
		t.Fatalf("the scheduler does not requeue stranded notices every five minutes: %d entries", len(configs))
	}

	// The scan wrote and queued the rows 11 minutes ago; Redis then lost
	// its queues.
	st.SetClock(func() time.Time { return now.Add(-worker.DefaultStrandedAfter - time.Minute) })
	res, err := n.scanner.Scan(ctx)
	must(t, err)
	st.SetClock(time.Now)
	flushRedis(t, rd)
	if res.Created != 60 {
		t.Fatalf("scan created %d rows, want 60", res.Created)
	}

	n.start(t)
	task, _ := worker.NewRequeueTask()
	must(t, (&worker.RequeueHandler{Scanner: n.scanner, Logger: testLogger(t)}).ProcessTask(ctx, task))
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
		counts, err := st.NoticeCounts(ctx, f.tenant.ID)
		must(t, err)
		if counts[store.NoticeSent] == 60 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the requeue: %v", counts)
		}
	}
	if ch.sink.Count() != 30 || len(ch.twilio.Messages()) != 30 {
		t.Fatalf("%d emails, %d SMS; want 30 of each", ch.sink.Count(), len(ch.twilio.Messages()))
	}
}

// TestStrandedFollowsTheClock: whether a row is stranded is judged at the
// scanner's clock, not the machine's: rows written at the scanner's instant
// are not requeued until that clock has moved past StrandedAfter.
func TestStrandedFollowsTheClock(t *testing.T) {
	t.Parallel()
	requireServices(t)
	ctx := context.Background()
	rd := testRedis(t)
	st, _ := postgresStore(t)
	now := time.Date(2026, 12, 1, 15, 0, 0, 0, time.UTC)
	clk := newClock(now)
	st.SetClock(clk.Now)
	f := newFixture(t, st, "stranded-clock", 1)
	var due []store.UserRecord
	for i := range 5 {
		due = append(due, userRec(i, now.Add(3*24*time.Hour)))
	}
	f.put(t, st, 0, due...)
	n := newNode(t, nodeOptions{redis: rd, st: st, clock: clk.Now, ch: newChannels(t, smtpsink.Options{}).senders()})
	res, err := n.scanner.Scan(ctx)
	must(t, err)
	if res.Created != 10 || res.Requeued != 0 {
		t.Fatalf("scan created %d rows and requeued %d, want 10 and 0", res.Created, res.Requeued)
	}
	flushRedis(t, rd)

	clk.Add(worker.DefaultStrandedAfter - time.Second)
	if got, err := n.scanner.Requeue(ctx); err != nil || got != 0 {
		t.Fatalf("requeue just before StrandedAfter: %d rows (%v), want none", got, err)
	}
	clk.Add(2 * time.Second)
	if got, err := n.scanner.Requeue(ctx); err != nil || got != 10 {
		t.Fatalf("requeue just past StrandedAfter: %d rows (%v), want 10", got, err)
	}
}
