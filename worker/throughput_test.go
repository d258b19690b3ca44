package worker_test

import (
	"context"
	"testing"
	"time"

	"selfserve/internal/notify/smtpsink"
	"selfserve/internal/population"
)

// TestSendPath sends 1,200 generated end users' reminders through the
// worker's real send path: the scan writes and queues the ledger rows,
// dispatch tasks fan them out in batches, and the sender claims, re-checks,
// renders and delivers them over STARTTLS to an SMTP sink and to the SMS
// API. Every notice reaches its channel exactly once and the ledger records
// each one sent. Measuring throughput against a no-op handler is the
// benchmark's job: go run ./cmd/bench -run notices.
func TestSendPath(t *testing.T) {
	requireServices(t)
	ctx := context.Background()
	st, _ := postgresStore(t)
	rd := testRedis(t)
	const users = 1200
	at := time.Date(2026, 12, 1, 15, 0, 0, 0, time.UTC) // past 09:00 in New York and London
	must(t, population.Spec{Users: users, Customers: 12, Seed: 20261124, At: at, FirstExpiryDay: 1, ExpiryDays: 8,
		Zones: []string{"America/New_York", "Europe/London"}}.Load(ctx, st))
	ch := newChannels(t, smtpsink.Options{})
	n := newNode(t, nodeOptions{redis: rd, st: st, clock: func() time.Time { return at }, ch: ch.senders()})
	res, err := n.scanner.Scan(ctx)
	must(t, err)
	if res.Created != 2*users {
		t.Fatalf("the scan wrote %d ledger rows for %d end users each due one email and one SMS", res.Created, users)
	}
	n.start(t)
	drain(t, rd, 2*time.Minute)

	var sent int
	must(t, st.DB().GetContext(ctx, &sent, `SELECT COUNT(*) FROM notices WHERE status = 'sent'`))
	emails := map[string]bool{}
	for _, m := range ch.sink.Messages() {
		emails[m.MessageID] = true
	}
	texts := map[string]bool{}
	for _, m := range ch.twilio.Messages() {
		texts[m.IdempotencyKey] = true
	}
	if sent != 2*users || ch.sink.Count() != users || len(emails) != users || len(ch.twilio.Messages()) != users || len(texts) != users {
		t.Fatalf("%d of %d notices recorded sent; %d emails (%d distinct), %d SMS (%d distinct) for %d end users",
			sent, 2*users, ch.sink.Count(), len(emails), len(ch.twilio.Messages()), len(texts), users)
	}
}
