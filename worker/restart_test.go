package worker_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"selfserve/internal/notify/smtpsink"
	"selfserve/internal/store"
)

// ownRedis is a redis-server of this test's own on a free loopback port,
// with an append-only file so that a restart keeps its data.
type ownRedis struct {
	t    *testing.T
	port int
	dir  string
	cmd  *exec.Cmd
}

const redisServer = "/usr/bin/redis-server"

func startOwnRedis(t *testing.T) *ownRedis {
	t.Helper()
	if _, err := os.Stat(redisServer); err != nil {
		t.Skipf("%s is not installed: %v", redisServer, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	r := &ownRedis{t: t, port: port, dir: t.TempDir()}
	r.start()
	t.Cleanup(func() { r.stop() })
	return r
}

func (r *ownRedis) addr() string { return fmt.Sprintf("127.0.0.1:%d", r.port) }

func (r *ownRedis) start() {
	r.t.Helper()
	r.cmd = exec.Command(redisServer, "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1", "--dir", r.dir,
		"--appendonly", "yes", "--appendfsync", "always", "--save", "", "--daemonize", "no", "--logfile", "")
	must(r.t, r.cmd.Start())
	c := redis.NewClient(&redis.Options{Addr: r.addr()})
	defer c.Close()
	for range 200 {
		if c.Ping(context.Background()).Err() == nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	r.t.Fatal("own redis-server did not start")
}

// stop shuts the server down as an operator would (SIGTERM: it flushes
// its append-only file and exits).
func (r *ownRedis) stop() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	r.cmd.Process.Signal(os.Interrupt)
	r.cmd.Wait()
	r.cmd = nil
}

// TestRedisRestartedMidRun restarts Redis while a sync and sends are under
// way: the workers reconnect and finish, and nothing is lost or sent twice.
func TestRedisRestartedMidRun(t *testing.T) {
	t.Parallel()
	requireServices(t)
	ctx := context.Background()
	own := startOwnRedis(t)
	rd := asynq.RedisClientOpt{Addr: own.addr()}
	st, _ := postgresStore(t)
	now := time.Date(2026, 12, 1, 15, 0, 0, 0, time.UTC)
	clk := newClock(now)
	f := newFixture(t, st, "restart", 2)
	var due []store.UserRecord
	for i := range 200 {
		due = append(due, userRec(i, now.Add(time.Duration(1+i%9)*24*time.Hour)))
	}
	f.put(t, st, 0, due...)
	const rows, pageSize = 6000, 20
	path := writeFile(t, t.TempDir(), "big.csv", usersCSV("big-", rows, func(i int) time.Time { return now.Add(100 * 24 * time.Hour) }))
	conn := pointAt(t, st, f.conns[1], path, pageSize)
	run, err := st.CreateRun(ctx, f.tenant.ID, conn.ID, store.ModeFull, "api", store.RunQueued, false, time.Hour)
	must(t, err)
	ch := newChannels(t, smtpsink.Options{Refuse: func(stage smtpsink.Stage, _ string) smtpsink.Reply {
		if stage == smtpsink.StageData {
			time.Sleep(40 * time.Millisecond)
		}
		return smtpsink.Reply{}
	}})
	n := newNode(t, nodeOptions{redis: rd, st: st, clock: clk.Now, ch: ch.senders()})
	must(t, n.client.EnqueueSync(ctx, run))
	_, err = n.scanner.Scan(ctx)
	must(t, err)
	n.start(t)

	deadline := time.Now().Add(time.Minute)
	for {
		r, err := st.Run(ctx, f.tenant.ID, run.ID)
		must(t, err)
		if r.Pages >= 20 && ch.sink.Count() >= 20 {
			break
		}
		if r.Status.Finished() || time.Now().After(deadline) {
			t.Fatalf("not under way: run %s page %d, %d emails", r.Status, r.Pages, ch.sink.Count())
		}
		time.Sleep(5 * time.Millisecond)
	}
	own.stop()
	t.Logf("Redis stopped with %d emails delivered", ch.sink.Count())
	time.Sleep(2 * time.Second)
	own.start()
	t.Log("Redis restarted")

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
			t.Fatalf("after the restart: run %s at page %d, %d notices open", r.Status, r.Pages, open)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Log("run finished and every notice final; waiting for asynq to settle the tasks that were in flight during the outage")
	// Tasks whose completion could not be recorded while Redis was down
	// are handed out again by asynq's recoverer (up to a minute later); the
	// ledger makes those attempts no-ops.
	drain(t, rd, 3*time.Minute)
	final, err := st.Run(ctx, f.tenant.ID, run.ID)
	must(t, err)
	if final.Status != store.RunSucceeded || final.Pages != rows/pageSize || final.Created != rows {
		t.Fatalf("run %+v: want succeeded, %d pages, %d users", final, rows/pageSize, rows)
	}
	rowsSent := notices(t, st, f.tenant.ID)
	for _, nt := range rowsSent {
		if nt.Status != store.NoticeSent {
			t.Fatalf("notice %+v", nt)
		}
	}
	ids := map[string]bool{}
	for _, m := range ch.sink.Messages() {
		ids[m.MessageID] = true
	}
	if len(rowsSent) != 400 || ch.sink.Count() != 200 || len(ids) != 200 || len(ch.twilio.Messages()) != 200 {
		t.Fatalf("%d rows: %d emails (%d distinct), %d SMS", len(rowsSent), ch.sink.Count(), len(ids), len(ch.twilio.Messages()))
	}
}
