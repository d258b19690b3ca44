package worker_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"selfserve/internal/notify"
	"selfserve/internal/notify/faketwilio"
	"selfserve/internal/notify/smtpsink"
	"selfserve/internal/rules"
	"selfserve/internal/store"
)

// TestOverrideOffWithNoticesQueued: notices planned and queued while the
// tenant override was ON are not sent once it is OFF, nor after the end
// user changed the password: they are skipped with the reason.
func TestOverrideOffWithNoticesQueued(t *testing.T) {
	t.Parallel()
	requireServices(t)
	st, _ := postgresStore(t)
	rd := testRedis(t)
	now := time.Date(2026, 12, 1, 15, 0, 0, 0, time.UTC)
	clk := newClock(now)
	f := newFixture(t, st, "override", 2)
	other := newFixture(t, st, "unaffected", 1)
	var recs []store.UserRecord
	for i := range 20 {
		recs = append(recs, userRec(i, now.Add(time.Duration(1+i%5)*24*time.Hour)))
	}
	f.put(t, st, 0, recs[:10]...)
	f.put(t, st, 1, recs[10:]...)
	other.put(t, st, 0, userRec(100, now.Add(2*24*time.Hour)))
	ch := newChannels(t, smtpsink.Options{})
	n := newNode(t, nodeOptions{redis: rd, st: st, clock: clk.Now, ch: ch.senders()})
	res, err := n.scanner.Scan(context.Background())
	must(t, err)
	if res.Created != 42 {
		t.Fatalf("scan created %d rows, want 42", res.Created)
	}
	// While the notices wait in the queue: the technician turns the override
	// OFF for the tenant, and user 100 of the other tenant changes the
	// password.
	must(t, st.UpdateTenant(context.Background(), store.Tenant{ID: f.tenant.ID, Subscription: f.tenant.Subscription, SelfServe: false, TimeZone: "UTC", SendHour: 9, ReminderDays: 10}))
	changed := userRec(100, now.Add(90*24*time.Hour))
	other.put(t, st, 0, changed)

	n.start(t)
	drain(t, rd, time.Minute)
	if ch.sink.Count() != 0 || len(ch.twilio.Messages()) != 0 {
		t.Fatalf("%d emails and %d SMS went out", ch.sink.Count(), len(ch.twilio.Messages()))
	}
	for _, nt := range notices(t, st, f.tenant.ID) {
		if nt.Status != store.NoticeSkipped || nt.Error != string(rules.ReasonTenantOverride) {
			t.Fatalf("notice %+v: want skipped because of the override", nt)
		}
	}
	for _, nt := range notices(t, st, other.tenant.ID) {
		if nt.Status != store.NoticeSkipped || !strings.Contains(nt.Error, "password was changed") {
			t.Fatalf("notice %+v: want skipped because the password changed", nt)
		}
	}
}

// TestProviderFailures: an SMTP server refusing a recipient for the time
// being, an SMS API throttling and another failing are retried, then marked
// failed with the reason; throttling does not use up retries; the other
// notices go out unaffected.
func TestProviderFailures(t *testing.T) {
	t.Parallel()
	requireServices(t)
	st, _ := postgresStore(t)
	rd := testRedis(t)
	now := time.Date(2026, 12, 1, 15, 0, 0, 0, time.UTC)
	clk := newClock(now)
	f := newFixture(t, st, "failures", 1)
	var recs []store.UserRecord
	for i := range 10 {
		recs = append(recs, userRec(i, now.Add(3*24*time.Hour)))
	}
	f.put(t, st, 0, recs...)
	// u00001's mailbox is refused for the time being (451), u00002's for
	// good (550); u00003's SMS is throttled 12 times (more than the retries)
	// then accepted; u00004's SMS always fails with 500.
	ch := newChannels(t, smtpsink.Options{Refuse: func(stage smtpsink.Stage, arg string) smtpsink.Reply {
		switch {
		case stage == smtpsink.StageRcpt && strings.HasPrefix(arg, "u00001@"):
			return smtpsink.Reply{Code: 451, Text: "4.2.1 mailbox busy, try later"}
		case stage == smtpsink.StageRcpt && strings.HasPrefix(arg, "u00002@"):
			return smtpsink.Reply{Code: 550, Text: "5.1.1 no such user"}
		}
		return smtpsink.Reply{}
	}})
	var mu sync.Mutex
	throttled := 0
	ch.twilio.SetFault(func(to string, _ int) *faketwilio.Fault {
		switch to {
		case "+447700900003":
			mu.Lock()
			defer mu.Unlock()
			if throttled < 12 {
				throttled++
				return &faketwilio.Fault{Status: http.StatusTooManyRequests, RetryAfter: "0", Code: 20429, Message: "Too Many Requests"}
			}
		case "+447700900004":
			return &faketwilio.Fault{Status: http.StatusInternalServerError, Code: 20500, Message: "An internal server error has occurred"}
		}
		return nil
	})
	n := newNode(t, nodeOptions{redis: rd, st: st, clock: clk.Now, ch: ch.senders()})
	n.start(t)
	_, err := n.scanner.Scan(context.Background())
	must(t, err)
	drain(t, rd, 2*time.Minute)

	users := usernames(t, st, f.tenant.ID)
	for _, nt := range notices(t, st, f.tenant.ID) {
		who := users[nt.EndUserID] + "/" + string(nt.Channel)
		switch who {
		case "u00001/email":
			if nt.Status != store.NoticeFailed || !strings.Contains(nt.Error, "451") || nt.Attempts != 9 {
				t.Errorf("%s: %s after %d attempts (%s); want failed after 9 attempts with the 451", who, nt.Status, nt.Attempts, nt.Error)
			}
		case "u00002/email":
			if nt.Status != store.NoticeFailed || !strings.Contains(nt.Error, "no such user") || nt.Attempts != 1 {
				t.Errorf("%s: %s after %d attempts (%s); want failed at once with the 550", who, nt.Status, nt.Attempts, nt.Error)
			}
		case "u00003/sms":
			if nt.Status != store.NoticeSent || nt.Attempts != 13 {
				t.Errorf("%s: %s after %d attempts (%s); want sent on the 13th attempt, throttles not counted as failures", who, nt.Status, nt.Attempts, nt.Error)
			}
		case "u00004/sms":
			if nt.Status != store.NoticeFailed || !strings.Contains(nt.Error, "HTTP 500") || nt.Attempts != 9 {
				t.Errorf("%s: %s after %d attempts (%s); want failed after 9 attempts with the 500", who, nt.Status, nt.Attempts, nt.Error)
			}
		default:
			if nt.Status != store.NoticeSent || nt.Attempts != 1 {
				t.Errorf("%s: %s after %d attempts (%s); want sent at once", who, nt.Status, nt.Attempts, nt.Error)
			}
		}
	}
	if ch.sink.Count() != 8 || len(ch.twilio.Messages()) != 9 {
		t.Errorf("%d emails and %d SMS delivered, want 8 and 9", ch.sink.Count(), len(ch.twilio.Messages()))
	}
}

// panickySender is a channel whose Send panics for one recipient and hands
// the other messages to the real channel.
type panickySender struct {
	next notify.Sender
	to   string
}

func (p panickySender) Send(ctx context.Context, m notify.Message) error {
	if m.To == p.to {
		panic("boom: provider library bug")
	}
	return p.next.Send(ctx, m)
}

// lockedBuffer is a bytes.Buffer safe for the worker's goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestProviderPanic: an SMS provider panicking inside the send does not
// take the worker down: the notice is retried then failed as after any
// provider error, with the panic as its reason, the panic is logged with
// its stack at error level, and the other notices go out.
func TestProviderPanic(t *testing.T) {
	t.Parallel()
	requireServices(t)
	st, _ := postgresStore(t)
	rd := testRedis(t)
	now := time.Date(2026, 12, 1, 15, 0, 0, 0, time.UTC)
	f := newFixture(t, st, "panic", 1)
	var recs []store.UserRecord
	for i := range 5 {
		recs = append(recs, userRec(i, now.Add(3*24*time.Hour)))
	}
	f.put(t, st, 0, recs...)
	ch := newChannels(t, smtpsink.Options{})
	senders := ch.senders()
	senders[store.ChannelSMS] = panickySender{next: senders[store.ChannelSMS], to: "+447700900002"}
	var logs lockedBuffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	n := newNode(t, nodeOptions{redis: rd, st: st, clock: newClock(now).Now, ch: senders, logger: logger})
	n.start(t)
	_, err := n.scanner.Scan(context.Background())
	must(t, err)
	drain(t, rd, 2*time.Minute)

	users := usernames(t, st, f.tenant.ID)
	for _, nt := range notices(t, st, f.tenant.ID) {
		who := users[nt.EndUserID] + "/" + string(nt.Channel)
		if who == "u00002/sms" {
			if nt.Status != store.NoticeFailed || nt.Error != "provider panicked: boom: provider library bug" || nt.Attempts != 9 {
				t.Errorf("%s: %s after %d attempts (%q); want failed after 9 attempts with the panic", who, nt.Status, nt.Attempts, nt.Error)
			}
			continue
		}
		if nt.Status != store.NoticeSent || nt.Attempts != 1 {
			t.Errorf("%s: %s after %d attempts (%s); want sent at once", who, nt.Status, nt.Attempts, nt.Error)
		}
	}
	if ch.sink.Count() != 5 || len(ch.twilio.Messages()) != 4 {
		t.Errorf("%d emails and %d SMS delivered, want 5 and 4", ch.sink.Count(), len(ch.twilio.Messages()))
	}
	var logged bool
	for line := range strings.Lines(logs.String()) {
		var rec struct {
			Level, Msg, Err, Stack string
		}
		must(t, json.Unmarshal([]byte(line), &rec))
		if rec.Level == "ERROR" && rec.Err == "provider panicked: boom: provider library bug" && strings.Contains(rec.Stack, "panickySender.Send") {
			logged = true
		}
	}
	if !logged {
		t.Errorf("no error-level log of the panic with its stack in:\n%s", logs.String())
	}
}

// usernames maps the tenant's end users' ids to their user names.
func usernames(t *testing.T, st *store.Store, tenantID int64) map[int64]string {
	t.Helper()
	us, err := st.EndUsers(context.Background(), tenantID, store.EndUserFilter{})
	must(t, err)
	users := map[int64]string{}
	for _, u := range us {
		users[u.ID] = u.Username
	}
	return users
}
