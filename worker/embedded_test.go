package worker_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"selfserve/internal/admin/link"
	"selfserve/internal/notify"
	"selfserve/internal/rules"
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

// TestSyncLockoutAndWelcome: a sync that sees an account become locked
// queues its lockout notice (critical queue) without waiting for a scan; a
// technician's welcome email goes to an end user who has no mobile yet and
// stamps the end user; requests within the same minute are one email.
func TestSyncLockoutAndWelcome(t *testing.T) {
	t.Parallel()
	r, err := worker.OpenRedis("embedded")
	must(t, err)
	t.Cleanup(func() { r.Close() })
	st := storetest.OpenMigrated(t, "sqlite:"+filepath.Join(t.TempDir(), "test.db"))
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	f := newFixture(t, st, "lockwelcome", 1)
	dir := t.TempDir()
	csv := func(locked bool) string {
		lockedAt := ""
		if locked {
			lockedAt = now.Add(-time.Minute).Format(time.RFC3339)
		}
		return "username,email,mobile,enabled,locked_out,locked_out_at,password_expires_at\n" +
			"ann,ann@customer.example,+447400123401,true," + fmt.Sprint(locked) + "," + lockedAt + "," + now.Add(60*24*time.Hour).Format(time.RFC3339) + "\n" +
			"bob,bob@customer.example,,true,false,," + now.Add(60*24*time.Hour).Format(time.RFC3339) + "\n"
	}
	path := writeFile(t, dir, "users.csv", csv(false))
	conn := pointAt(t, st, f.conns[0], path, 10)
	outbox := t.TempDir()
	n := newNode(t, nodeOptions{redis: r.Opt, st: st, ch: map[store.Channel]notify.Sender{
		store.ChannelEmail: &notify.Outbox{Dir: outbox, Channel: "email"},
		store.ChannelSMS:   &notify.Outbox{Dir: outbox, Channel: "sms"},
	}})
	n.start(t)
	sync := func() {
		run, err := st.CreateRun(ctx, f.tenant.ID, conn.ID, store.ModeFull, "api", store.RunQueued, false, time.Hour)
		must(t, err)
		must(t, n.client.EnqueueSync(ctx, run))
		drain(t, r.Opt, 30*time.Second)
		done, err := st.Run(ctx, f.tenant.ID, run.ID)
		must(t, err)
		if done.Status != store.RunSucceeded {
			t.Fatalf("run %+v", done)
		}
	}
	sync()
	writeFile(t, dir, "users.csv", csv(true))
	sync()
	var lockouts []store.Notice
	for _, nt := range notices(t, st, f.tenant.ID) {
		if nt.Kind == rules.KindLockout {
			lockouts = append(lockouts, nt)
		}
	}
	if len(lockouts) != 2 || lockouts[0].Status != store.NoticeSent || lockouts[1].Status != store.NoticeSent {
		t.Fatalf("lockout notices after the sync: %+v", lockouts)
	}

	users, err := st.EndUsers(ctx, f.tenant.ID, store.EndUserFilter{})
	must(t, err)
	var bob store.EndUser
	for _, u := range users {
		if u.Username == "bob" {
			bob = u
		}
	}
	queued, err := n.client.EnqueueWelcome(ctx, f.tenant.ID, bob.ID)
	must(t, err)
	again, err := n.client.EnqueueWelcome(ctx, f.tenant.ID, bob.ID) // a double click
	must(t, err)
	if !queued || again {
		t.Fatalf("welcome queued %v, double click queued %v: want true, false", queued, again)
	}
	drain(t, r.Opt, 30*time.Second)
	ns, err := st.NoticesOfEndUser(ctx, f.tenant.ID, bob.ID, 0)
	must(t, err)
	if len(ns) != 1 || ns[0].Kind != rules.KindWelcome || ns[0].Channel != store.ChannelEmail || ns[0].Status != store.NoticeSent {
		t.Fatalf("welcome notices of bob: %+v", ns)
	}
	bob, err = st.EndUser(ctx, f.tenant.ID, bob.ID)
	must(t, err)
	if bob.WelcomeSentAt == nil {
		t.Fatal("the welcome email did not stamp the end user")
	}
	b, err := os.ReadFile(filepath.Join(outbox, fmt.Sprintf("notice-%d-email.txt", ns[0].ID)))
	must(t, err)
	_, after, ok := strings.Cut(string(b), "confirm your mobile number at https://reset.msp.example/"+url.PathEscape(f.tenant.Name)+"/enrol?t=")
	if !ok {
		t.Fatalf("welcome email:\n%s", b)
	}
	token, _ := url.QueryUnescape(strings.Fields(after)[0])
	if c, err := testLinks.Verify(strings.TrimSuffix(token, "."), link.PurposeConfirmMobile, time.Now()); err != nil || c.EndUserID != bob.ID {
		t.Fatalf("welcome link token: %+v %v", c, err)
	}
}
