package worker_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"selfserve/internal/notify"
	"selfserve/internal/notify/smtpsink"
	"selfserve/internal/redact"
	"selfserve/internal/store"
)

// childEnv names the variables that make the test binary a worker process
// (TestMain), for the kill test.
const childEnv = "SELFSERVE_TEST_WORKER"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(runChild())
	}
	os.Exit(m.Run())
}

// runChild is a worker process configured from the environment; it runs
// until it is killed.
func runChild() int {
	env := func(k string) string { return os.Getenv(childEnv + "_" + k) }
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("process", "child")
	ctx := context.Background()
	st, err := store.Open(ctx, env("DB"))
	if err != nil {
		logger.Error("store", "err", err)
		return 1
	}
	db, _ := strconv.Atoi(env("REDIS_DB"))
	port, _ := strconv.Atoi(env("SMTP_PORT"))
	at, _ := time.Parse(time.RFC3339, env("CLOCK"))
	email, err := notify.NewEmail(notify.EmailConfig{Host: "127.0.0.1", Port: port, TLS: notify.TLSNone, From: "Reminders <noreply@msp.example>"})
	if err != nil {
		logger.Error("email", "err", err)
		return 1
	}
	sms, err := notify.NewSMS(notify.SMSConfig{BaseURL: env("TWILIO_URL"), AccountSID: env("TWILIO_SID"), AuthToken: redact.Secret(env("TWILIO_TOKEN")), From: "+12025550100"})
	if err != nil {
		logger.Error("sms", "err", err)
		return 1
	}
	n := buildNode(nodeOptions{redis: asynq.RedisClientOpt{Addr: env("REDIS_ADDR"), DB: db}, st: st, clock: func() time.Time { return at },
		ch: map[store.Channel]notify.Sender{store.ChannelEmail: email, store.ChannelSMS: sms}, logger: logger, lease: killLease})
	if err := n.worker.Start(n.mux); err != nil {
		logger.Error("start", "err", err)
		return 1
	}
	fmt.Println("child worker started")
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	<-sig
	n.worker.Shutdown()
	return 0
}

// killLease is the ledger lease of the kill test's senders.
const killLease = 3 * time.Second

// TestWorkerKilledMidSyncAndMidSend runs a worker as a separate process,
// SIGKILLs it while it is in the middle of a sync and of sending notices,
// and lets a new worker take over: the run resumes from its last saved page,
// no notice is lost, and a notice is delivered twice only if it was in
// flight at the kill (the documented duplicate window).
func TestWorkerKilledMidSyncAndMidSend(t *testing.T) {
	t.Parallel()
	requireServices(t)
	if testing.Short() {
		t.Skip("takes over a minute (asynq recovers a dead worker's tasks after its 30s lease plus 30s)")
	}
	ctx := context.Background()
	st, dbURL := postgresStore(t)
	rd := testRedis(t)
	now := time.Date(2026, 12, 1, 15, 0, 0, 0, time.UTC)
	f := newFixture(t, st, "kill", 2)

	// Customer 0: 300 end users due now. Customer 1: a 12,000-user file
	// synced 20 users a page.
	var due []store.UserRecord
	for i := range 300 {
		due = append(due, userRec(i, now.Add(time.Duration(1+i%9)*24*time.Hour)))
	}
	f.put(t, st, 0, due...)
	const rows, pageSize = 12000, 20
	path := writeFile(t, t.TempDir(), "big.csv", usersCSV("big-", rows, func(i int) time.Time { return now.Add(100 * 24 * time.Hour) }))
	conn := pointAt(t, st, f.conns[1], path, pageSize)
	run, err := st.CreateRun(ctx, f.tenant.ID, conn.ID, store.ModeFull, "api", store.RunQueued, false, time.Hour)
	must(t, err)

	// A slow mail server: each message takes 150ms to be accepted.
	ch := newPlainChannels(t, smtpsink.Options{Refuse: func(stage smtpsink.Stage, _ string) smtpsink.Reply {
		if stage == smtpsink.StageData {
			time.Sleep(150 * time.Millisecond)
		}
		return smtpsink.Reply{}
	}})
	plain := ch.sink

	clk := newClock(now)
	parent := newNode(t, nodeOptions{redis: rd, st: st, clock: clk.Now, ch: ch.senders(), lease: killLease})
	must(t, parent.client.EnqueueSync(ctx, run))
	res, err := parent.scanner.Scan(ctx)
	must(t, err)
	if res.Created != 600 {
		t.Fatalf("scan created %d rows, want 600", res.Created)
	}

	child := exec.Command(os.Args[0])
	child.Env = append(os.Environ(), childEnv+"=1",
		childEnv+"_DB="+dbURL, childEnv+"_REDIS_ADDR="+rd.Addr, childEnv+"_REDIS_DB="+strconv.Itoa(rd.DB),
		childEnv+"_SMTP_PORT="+strconv.Itoa(plain.Port()), childEnv+"_TWILIO_URL="+ch.twilio.URL,
		childEnv+"_TWILIO_SID="+ch.twilio.AccountSID, childEnv+"_TWILIO_TOKEN="+ch.twilio.AuthToken, childEnv+"_CLOCK="+now.Format(time.RFC3339))
	child.Stdout, child.Stderr = t.Output(), t.Output()
	must(t, child.Start())
	t.Cleanup(func() { child.Process.Kill(); child.Wait() })

	// Kill it once it is well into both.
	deadline := time.Now().Add(time.Minute)
	for {
		r, err := st.Run(ctx, f.tenant.ID, run.ID)
		must(t, err)
		if r.Pages >= 30 && plain.Count() >= 20 {
			break
		}
		if r.Status.Finished() || time.Now().After(deadline) {
			t.Fatalf("the child did not get into the sync and the sends: run %s at page %d, %d emails", r.Status, r.Pages, plain.Count())
		}
		time.Sleep(5 * time.Millisecond)
	}
	must(t, child.Process.Signal(syscall.SIGKILL))
	child.Wait()
	killedAt := time.Now()
	atKill, err := st.Run(ctx, f.tenant.ID, run.ID)
	must(t, err)
	inFlight := map[int64]bool{}
	for _, nt := range notices(t, st, f.tenant.ID) {
		if nt.Status == store.NoticeSending {
			inFlight[nt.ID] = true
		}
	}
	t.Logf("killed at page %d of %d (resume %q), %d emails delivered, %d notices in flight", atKill.Pages, rows/pageSize, atKill.Resume, plain.Count(), len(inFlight))
	if atKill.Status != store.RunRunning || atKill.Pages == 0 {
		t.Fatalf("run at the kill: %+v", atKill)
	}

	// As if a minute had passed since the kill: asynq hands a dead worker's
	// tasks over once their lease has been expired for 30s (a worker's
	// recoverer looks at start-up), the store takes over a run whose
	// heartbeat is HeartbeatTimeout old and a notice whose ledger lease is
	// over.
	expireAsynqLeases(t, rd, killedAt.Add(-time.Minute))
	st.SetClock(func() time.Time { return time.Now().Add(time.Minute) })
	defer st.SetClock(time.Now)
	parent.start(t)
	deadline = time.Now().Add(2 * time.Minute)
	for {
		r, err := st.Run(ctx, f.tenant.ID, run.ID)
		must(t, err)
		var open int
		must(t, st.DB().Get(&open, `SELECT COUNT(*) FROM notices WHERE status IN ('pending', 'sending')`))
		if r.Status.Finished() && open == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the takeover: run %s at page %d, %d notices open", r.Status, r.Pages, open)
		}
		time.Sleep(20 * time.Millisecond)
	}
	final, err := st.Run(ctx, f.tenant.ID, run.ID)
	must(t, err)
	if final.Status != store.RunSucceeded || final.Pages != rows/pageSize || final.Processed != rows || final.Created != rows {
		t.Fatalf("final run %+v: want succeeded with %d pages and %d rows once (resumed, not restarted)", final, rows/pageSize, rows)
	}
	users, err := st.EndUsers(ctx, f.tenant.ID, store.EndUserFilter{ConnectionID: conn.ID})
	must(t, err)
	if len(users) != rows {
		t.Fatalf("%d end users imported, want %d", len(users), rows)
	}

	emails := map[string]int{}
	for _, m := range plain.Messages() {
		emails[m.MessageID]++
	}
	texts := map[string]int{}
	for _, m := range ch.twilio.Messages() {
		texts[m.IdempotencyKey]++
	}
	dups := 0
	for _, nt := range notices(t, st, f.tenant.ID) {
		if nt.Status != store.NoticeSent {
			t.Fatalf("notice %+v not sent", nt)
		}
		id := fmt.Sprintf("notice-%d-%s", nt.ID, nt.Channel)
		n := texts[id]
		if nt.Channel == store.ChannelEmail {
			n = emails["<"+id+"@msp.example>"]
		}
		switch {
		case n == 1:
		case n == 2 && inFlight[nt.ID]:
			dups++
		default:
			t.Errorf("notice %d (%s) delivered %d times (in flight at the kill: %v)", nt.ID, nt.Channel, n, inFlight[nt.ID])
		}
	}
	t.Logf("after the takeover: run resumed to page %d; 600 notices sent, %d delivered twice (all in flight at the kill)", final.Pages, dups)
	if strings.Contains(final.Error, "abandoned") {
		t.Fatalf("run was abandoned: %s", final.Error)
	}
}

// expireAsynqLeases sets the asynq leases of every queue's active tasks to
// at, as if their worker had stopped extending them then.
func expireAsynqLeases(t *testing.T, rd asynq.RedisClientOpt, at time.Time) {
	t.Helper()
	ctx := context.Background()
	c := redis.NewClient(&redis.Options{Addr: rd.Addr, Username: rd.Username, Password: rd.Password, DB: rd.DB})
	defer c.Close()
	keys, err := c.Keys(ctx, "asynq:{*}:lease").Result()
	must(t, err)
	for _, k := range keys {
		ids, err := c.ZRange(ctx, k, 0, -1).Result()
		must(t, err)
		for _, id := range ids {
			must(t, c.ZAdd(ctx, k, redis.Z{Score: float64(at.Unix()), Member: id}).Err())
		}
	}
}
