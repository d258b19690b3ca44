package worker_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"selfserve/connectors"
	"selfserve/connectors/file"
	"selfserve/internal/admin/link"
	"selfserve/internal/importer"
	"selfserve/internal/notify"
	"selfserve/internal/notify/faketwilio"
	"selfserve/internal/notify/smtpsink"
	"selfserve/internal/redact"
	"selfserve/internal/rules"
	"selfserve/internal/store"
	"selfserve/internal/store/storetest"
	"selfserve/worker"
)

// clock is a controllable clock.
type clock struct{ ns atomic.Int64 }

// testLinks signs the welcome emails' links in the tests.
var testLinks = func() *link.Signer {
	s, err := link.NewSigner(bytes.Repeat([]byte{9}, 32))
	if err != nil {
		panic(err)
	}
	return s
}()

func newClock(t time.Time) *clock {
	c := &clock{}
	c.Set(t)
	return c
}

func (c *clock) Now() time.Time      { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) Set(t time.Time)     { c.ns.Store(t.UnixNano()) }
func (c *clock) Add(d time.Duration) { c.ns.Add(int64(d)) }

// requireServices skips a test that needs the real PostgreSQL and Redis.
func requireServices(t *testing.T) {
	t.Helper()
	if os.Getenv("TEST_DATABASE_URL") == "" || os.Getenv("TEST_REDIS_URL") == "" {
		t.Skip("TEST_DATABASE_URL and TEST_REDIS_URL are not both set: this test needs the real PostgreSQL and Redis (make test sets them)")
	}
}

// postgresStore opens a fresh migrated store in a schema of its own.
func postgresStore(t *testing.T) (*store.Store, string) {
	t.Helper()
	url := storetest.FreshPostgresSchema(t, os.Getenv("TEST_DATABASE_URL"))
	return storetest.OpenMigrated(t, url), url
}

// dbPool hands out Redis DB numbers 1..14 (15 is the shared test DB), one
// per test, so parallel tests never see each other's tasks.
var dbPool = make(chan int, 14)

func init() {
	for i := 1; i <= 14; i++ {
		dbPool <- i
	}
}

// testRedis returns an empty Redis DB of TEST_REDIS_URL's server for this
// test alone, flushed after it.
func testRedis(t *testing.T) asynq.RedisClientOpt {
	t.Helper()
	opt, err := asynq.ParseRedisURI(os.Getenv("TEST_REDIS_URL"))
	if err != nil {
		t.Fatalf("TEST_REDIS_URL: %v", err)
	}
	base := opt.(asynq.RedisClientOpt)
	for {
		var db int
		select {
		case db = <-dbPool:
		case <-time.After(2 * time.Minute):
			t.Fatal("no free Redis test DB")
		}
		o := base
		o.DB = db
		c := redis.NewClient(&redis.Options{Addr: o.Addr, Username: o.Username, Password: o.Password, DB: db})
		// Another test process may hold this DB: take it only if free.
		ok, err := c.SetNX(context.Background(), "selfserve:worker-test-lock", t.Name(), 15*time.Minute).Result()
		if err != nil {
			c.Close()
			t.Fatalf("redis: %v", err)
		}
		if !ok {
			c.Close()
			go func() { time.Sleep(time.Second); dbPool <- db }()
			continue
		}
		keys, _ := c.Keys(context.Background(), "asynq:*").Result()
		if len(keys) > 0 {
			c.Del(context.Background(), keys...)
		}
		t.Cleanup(func() {
			c.FlushDB(context.Background())
			c.Close()
			dbPool <- db
		})
		return o
	}
}

// fixture is a tenant with customers in several zones and a file
// connection per customer.
type fixture struct {
	tenant    store.Tenant
	customers []store.Customer
	conns     []store.Connection
}

var zones = []struct{ name, region string }{
	{"America/New_York", "US"}, {"Europe/London", "GB"}, {"Asia/Kolkata", "IN"}, {"Australia/Sydney", "AU"},
}

func newFixture(t *testing.T, st *store.Store, name string, customers int) fixture {
	t.Helper()
	ctx := context.Background()
	tn, _, err := st.UpsertTenant(ctx, store.Tenant{Name: name, Subscription: rules.SubscriptionBundle, SelfServe: true, TimeZone: "UTC", SendHour: 9, ReminderDays: 10})
	must(t, err)
	f := fixture{tenant: tn}
	for i := range customers {
		z := zones[i%len(zones)]
		cu, _, err := st.UpsertCustomer(ctx, store.Customer{TenantID: tn.ID, Name: fmt.Sprintf("Customer %d", i), TimeZone: z.name, DefaultRegion: z.region})
		must(t, err)
		co, _, err := st.UpsertConnection(ctx, store.Connection{TenantID: tn.ID, CustomerID: &cu.ID, Name: fmt.Sprintf("%s-local-%d", name, i),
			Kind: connectors.KindFile, Settings: []byte(`{"path":"unused.csv"}`), EnableSelfServe: true, ScheduleSeconds: 10800}, false)
		must(t, err)
		f.customers = append(f.customers, cu)
		f.conns = append(f.conns, co)
	}
	return f
}

// userRec is a directory user of the fixture.
func userRec(i int, expires time.Time) store.UserRecord {
	return store.UserRecord{User: connectors.User{
		ExternalID: fmt.Sprintf("u%05d", i), Username: fmt.Sprintf("u%05d", i), DisplayName: fmt.Sprintf("User %d", i),
		Email: fmt.Sprintf("u%05d@customer.example", i), Mobile: fmt.Sprintf("+4477009%05d", i), Enabled: true,
		PasswordLastSet: expires.Add(-90 * 24 * time.Hour), PasswordExpiresAt: expires,
	}}
}

// put stores users in the fixture's customer c.
func (f fixture) put(t *testing.T, st *store.Store, c int, recs ...store.UserRecord) {
	t.Helper()
	_, err := importer.ApplyPage(context.Background(), st, store.PageTarget{TenantID: f.tenant.ID, CustomerID: f.customers[c].ID,
		ConnectionID: f.conns[c].ID, Source: rules.SourceLocal, EnableSelfServe: true}, recs, nil)
	must(t, err)
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// channels are a real SMTP sink and a fake Twilio behind the notify
// channels.
type channels struct {
	sink   *smtpsink.Server
	twilio *faketwilio.Server
	email  *notify.Email
	sms    *notify.SMS
}

func newChannels(t *testing.T, opts smtpsink.Options) *channels {
	t.Helper()
	serverTLS, roots, err := smtpsink.SelfSignedTLS()
	must(t, err)
	opts.TLS = serverTLS
	return startChannels(t, opts, notify.EmailConfig{RootCAs: roots})
}

// newPlainChannels is newChannels with an SMTP server without TLS, for
// worker processes that cannot share the test's certificate pool.
func newPlainChannels(t *testing.T, opts smtpsink.Options) *channels {
	t.Helper()
	return startChannels(t, opts, notify.EmailConfig{TLS: notify.TLSNone})
}

func startChannels(t *testing.T, opts smtpsink.Options, ec notify.EmailConfig) *channels {
	t.Helper()
	sink, err := smtpsink.Start(opts)
	must(t, err)
	t.Cleanup(func() { sink.Close() })
	ec.Host, ec.Port, ec.From, ec.Timeout = "127.0.0.1", sink.Port(), "Reminders <noreply@msp.example>", 10*time.Second
	email, err := notify.NewEmail(ec)
	must(t, err)
	t.Cleanup(func() { email.Close() })
	tw := faketwilio.New("AC0123456789abcdef0123456789abcdef", "test-auth-token")
	t.Cleanup(tw.Close)
	sms, err := notify.NewSMS(notify.SMSConfig{BaseURL: tw.URL, AccountSID: tw.AccountSID, AuthToken: redact.Secret(tw.AuthToken), From: "+12025550100"})
	must(t, err)
	return &channels{sink: sink, twilio: tw, email: email, sms: sms}
}

func (c *channels) senders() map[store.Channel]notify.Sender {
	return map[store.Channel]notify.Sender{store.ChannelEmail: c.email, store.ChannelSMS: c.sms}
}

// node is one worker process's worth of parts, in this process.
type node struct {
	client  *worker.Client
	scanner *worker.Scanner
	sender  *worker.Sender
	worker  *worker.Worker
	mux     *asynq.ServeMux
	metrics *worker.Metrics
}

type nodeOptions struct {
	redis    asynq.RedisConnOpt
	st       *store.Store
	ch       map[store.Channel]notify.Sender
	clock    func() time.Time
	logger   *slog.Logger
	lease    time.Duration
	registry connectors.Registry
	retry    worker.RetryPolicy
	// base is the parent of the tasks' contexts (nil: background).
	base func() context.Context
}

func testRetry() worker.RetryPolicy {
	return worker.RetryPolicy{Base: 20 * time.Millisecond, Max: 500 * time.Millisecond, MinThrottle: 50 * time.Millisecond}
}

func newNode(t *testing.T, o nodeOptions) *node {
	t.Helper()
	if o.logger == nil {
		o.logger = testLogger(t)
	}
	n := buildNode(o)
	t.Cleanup(func() { n.client.Close() })
	return n
}

// buildNode wires a node as the worker role does.
func buildNode(o nodeOptions) *node {
	if o.logger == nil {
		o.logger = slog.New(slog.DiscardHandler)
	}
	if len(o.registry.Kinds()) == 0 {
		o.registry = connectors.NewRegistry(map[connectors.Kind]func() connectors.Config{connectors.KindFile: func() connectors.Config { return new(file.Config) }})
	}
	if o.retry == (worker.RetryPolicy{}) {
		o.retry = testRetry()
	}
	n := &node{metrics: worker.NewMetrics(nil)}
	n.client = worker.NewClient(o.redis, o.clock, o.logger)
	n.scanner = &worker.Scanner{Store: o.st, Enqueue: n.client, Now: o.clock, Logger: o.logger, Metrics: n.metrics}
	n.sender = &worker.Sender{Store: o.st, Channels: o.ch, PublicURL: "https://reset.msp.example", Links: testLinks, Now: o.clock, Lease: o.lease, Logger: o.logger, Metrics: n.metrics}
	n.mux = worker.NewServeMux(worker.Deps{
		Store: o.st, Importer: &importer.Importer{MaxRemovalShare: 0.3, Store: o.st, Registry: o.registry, Logger: o.logger},
		Client: n.client, Scanner: n.scanner, Sender: n.sender, Now: o.clock, Logger: o.logger, Metrics: n.metrics, Retry: o.retry,
	})
	n.worker = worker.NewWorker(worker.ServerOptions{Redis: o.redis, Logger: o.logger, Retry: o.retry, PollInterval: 20 * time.Millisecond,
		ShutdownTimeout: 5 * time.Second, NotifyConcurrency: 8, SyncConcurrency: 2, ErrorHandler: &worker.NoticeFinaliser{Store: o.st, Logger: o.logger},
		BaseContext: o.base})
	return n
}

func (n *node) start(t *testing.T) {
	t.Helper()
	must(t, n.worker.Start(n.mux))
	var once sync.Once
	t.Cleanup(func() { once.Do(n.worker.Shutdown) })
}

// testLogger writes warnings and errors to the test's output.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// drain waits until the queues hold no pending, active, scheduled or retry
// task.
func drain(t *testing.T, opt asynq.RedisConnOpt, timeout time.Duration, queues ...string) {
	t.Helper()
	insp := asynq.NewInspector(opt)
	defer insp.Close()
	if len(queues) == 0 {
		queues = []string{worker.QueueCritical, worker.QueueNotify, worker.QueueScan, worker.QueueSync}
	}
	deadline := time.Now().Add(timeout)
	clean := 0
	for {
		busy := 0
		var detail []string
		for _, q := range queues {
			info, err := insp.GetQueueInfo(q)
			if err != nil {
				if strings.Contains(err.Error(), "does not exist") || strings.Contains(err.Error(), "not found") {
					continue
				}
				t.Fatalf("queue %s: %v", q, err)
			}
			n := info.Pending + info.Active + info.Scheduled + info.Retry
			busy += n
			if n > 0 {
				detail = append(detail, fmt.Sprintf("%s: %d pending %d active %d scheduled %d retry", q, info.Pending, info.Active, info.Scheduled, info.Retry))
			}
		}
		// A task may queue another into a queue already looked at and
		// finish before its own queue is looked at: only several clean
		// passes in a row mean drained.
		if busy == 0 {
			if clean++; clean == 3 {
				return
			}
			time.Sleep(20 * time.Millisecond)
			continue
		}
		clean = 0
		if time.Now().After(deadline) {
			t.Fatalf("queues not drained after %s: %s", timeout, strings.Join(detail, "; "))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// notices returns every ledger row of the tenant's end users.
func notices(t *testing.T, st *store.Store, tenantID int64) []store.Notice {
	t.Helper()
	var ns []store.Notice
	must(t, st.DB().Select(&ns, st.DB().Rebind(`SELECT id, tenant_id, end_user_id, kind, occasion, channel, status, attempts, error, created_at, updated_at, sent_at FROM notices WHERE tenant_id = ? ORDER BY id`), tenantID))
	return ns
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	must(t, os.WriteFile(p, []byte(content), 0o600))
	return p
}
