package worker_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"selfserve/internal/notify"
	"selfserve/internal/store"
	"selfserve/internal/store/storetest"
	"selfserve/worker"
)

// TestEmbeddedRedisFullLoop runs the whole pipeline on the embedded
// in-process Redis and SQLite: asynq's servers, the scan, the fan-out and
// the senders, with the outbox as channel (the demo's setup).
func TestEmbeddedRedisFullLoop(t *testing.T) {
	t.Parallel()
	r, err := worker.OpenRedis("embedded")
	must(t, err)
	t.Cleanup(func() { r.Close() })
	if !r.Embedded() {
		t.Fatal("embedded Redis not embedded")
	}
	must(t, r.Ping(context.Background()))
	st := storetest.OpenMigrated(t, "sqlite:"+filepath.Join(t.TempDir(), "test.db"))
	now := time.Date(2026, 12, 1, 15, 0, 0, 0, time.UTC) // 10:00 in New York, 15:00 in London
	clk := newClock(now)
	f := newFixture(t, st, "embedded", 2)
	f.put(t, st, 0, userRec(1, now.Add(3*24*time.Hour)), userRec(2, now.Add(40*24*time.Hour)))
	locked := userRec(3, now.Add(60*24*time.Hour))
	locked.LockedOut, locked.LockedOutAt = true, now.Add(-10*time.Minute)
	f.put(t, st, 1, userRec(4, now.Add(5*time.Hour)), locked)

	outbox := t.TempDir()
	n := newNode(t, nodeOptions{redis: r.Opt, st: st, clock: clk.Now, ch: map[store.Channel]notify.Sender{
		store.ChannelEmail: &notify.Outbox{Dir: outbox, Channel: "email"},
		store.ChannelSMS:   &notify.Outbox{Dir: outbox, Channel: "sms"},
	}})
	n.start(t)
	res, err := n.scanner.Scan(context.Background())
	must(t, err)
	// u00001: reminder (3 days); u00004: expiry day (today in London);
	// u00003: lockout. u00002 is not due.
	if res.Due != 3 || res.Created != 6 || res.Tasks != 2 {
		t.Fatalf("scan %+v, want 3 due, 6 rows, 2 dispatch tasks (critical and normal)", res)
	}
	drain(t, r.Opt, 30*time.Second)
	files, _ := os.ReadDir(outbox)
	if len(files) != 6 {
		t.Fatalf("outbox holds %d files, want 6", len(files))
	}
	for _, nt := range notices(t, st, f.tenant.ID) {
		if nt.Status != store.NoticeSent || nt.SentAt == nil || !nt.SentAt.Equal(now) {
			t.Fatalf("notice %+v not sent at the clock's instant", nt)
		}
	}
	again, err := n.scanner.Scan(context.Background())
	must(t, err)
	if again.Created != 0 || again.Tasks != 0 {
		t.Fatalf("second scan created %d rows, %d tasks", again.Created, again.Tasks)
	}
}
