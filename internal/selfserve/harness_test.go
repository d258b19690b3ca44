package selfserve_test

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"selfserve/internal/connection"
	"selfserve/internal/importer"
	"selfserve/internal/secretbox"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"selfserve/config"
	"selfserve/connectors"
	"selfserve/internal/admin/link"
	"selfserve/internal/notify"
	"selfserve/internal/rules"
	"selfserve/internal/selfserve"
	"selfserve/internal/store"
	"selfserve/internal/store/storetest"
)

var testKey = bytes.Repeat([]byte{7}, 32)

// syncBuffer is a log sink safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// harness is one tenant ("acme", customer Contoso, a local file
// connection) with end users, a self-serve service on a test server, the
// outbox where codes go, and the captured log.
type harness struct {
	t      *testing.T
	st     *store.Store
	rd     redis.UniversalClient
	svc    *selfserve.Service
	srv    *httptest.Server
	outbox string
	log    *syncBuffer
	tenant store.Tenant
	users  map[string]store.EndUser
	links  *link.Signer
	// ip is the client address the harness's requests claim through
	// X-Forwarded-For (the test server's peer, loopback, is a trusted
	// proxy).
	ip string
}

type harnessOptions struct {
	st     *store.Store
	rd     redis.UniversalClient
	outbox string
	// demo records write-backs in the outbox (local end users).
	demo  bool
	floor time.Duration
	dirs  selfserve.Directories
	now   func() time.Time
	// tenantTTL is the service's (0: none, so a test's tenant change
	// applies at once).
	tenantTTL time.Duration
	// sms replaces the SMS outbox.
	sms notify.Sender
}

// backends runs fn on each store backend.
func backends(t *testing.T, fn func(t *testing.T, st *store.Store)) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			fn(t, b.Open(t))
		})
	}
}

func miniRedis(t *testing.T) redis.UniversalClient {
	t.Helper()
	m := miniredis.RunT(t)
	c := redis.NewClient(&redis.Options{Addr: m.Addr()})
	t.Cleanup(func() { c.Close() })
	return c
}

// realRedis is the test Redis (TEST_REDIS_URL), or a skip.
func realRedis(t *testing.T) redis.UniversalClient {
	t.Helper()
	u := os.Getenv("TEST_REDIS_URL")
	if u == "" {
		t.Skip("TEST_REDIS_URL is not set")
	}
	opt, err := redis.ParseURL(u)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opt)
	t.Cleanup(func() { c.Close() })
	return c
}

// seed creates the tenant, customer, connection and end users in st.
func seed(t *testing.T, st *store.Store) (store.Tenant, map[string]store.EndUser) {
	t.Helper()
	ctx := context.Background()
	tn, _, err := st.UpsertTenant(ctx, store.Tenant{Name: "acme", Subscription: rules.SubscriptionBundle, SelfServe: true, TimeZone: "UTC", SendHour: 9, ReminderDays: 10})
	must(t, err)
	cu, _, err := st.UpsertCustomer(ctx, store.Customer{TenantID: tn.ID, Name: "Contoso", TimeZone: "Europe/London", DefaultRegion: "GB"})
	must(t, err)
	co, _, err := st.UpsertConnection(ctx, store.Connection{TenantID: tn.ID, CustomerID: &cu.ID, Name: "contoso-local", Kind: connectors.KindFile,
		Settings: []byte(`{"path":"x.csv"}`), EnableSelfServe: true}, false)
	must(t, err)
	user := func(name, mobile string, enabled bool) store.UserRecord {
		return store.UserRecord{User: connectors.User{ExternalID: name, Username: name, UPN: name + "@contoso.example",
			DisplayName: strings.ToUpper(name[:1]) + name[1:] + " Example", Email: name + "@contoso.example", Mobile: mobile, Enabled: enabled}}
	}
	_, err = importer.ApplyPage(ctx, st, store.PageTarget{TenantID: tn.ID, CustomerID: cu.ID, ConnectionID: co.ID, RunID: 1, Source: rules.SourceLocal, EnableSelfServe: true},
		[]store.UserRecord{
			user("alice", "+447700900101", true), // active
			user("carol", "+447700900103", true), // switch off (below)
			user("dave", "+447700900104", false), // disabled
			user("erin", "", true),               // no mobile: enrols through the welcome link
		}, nil)
	must(t, err)
	users := map[string]store.EndUser{}
	all, err := st.EndUsers(ctx, tn.ID, store.EndUserFilter{})
	must(t, err)
	for _, u := range all {
		users[u.Username] = u
	}
	_, err = st.SetSelfServe(ctx, tn.ID, []int64{users["carol"].ID}, false)
	must(t, err)
	return tn, users
}

func newHarness(t *testing.T, o harnessOptions) *harness {
	t.Helper()
	if o.rd == nil {
		o.rd = miniRedis(t)
	}
	if o.outbox == "" {
		o.outbox = t.TempDir()
	}
	if o.floor == 0 {
		o.floor = 20 * time.Millisecond
	}
	h := &harness{t: t, st: o.st, rd: o.rd, outbox: o.outbox, log: &syncBuffer{}, ip: "203.0.113.7"}
	h.tenant, h.users = seed(t, o.st)
	if tn, err := o.st.TenantByName(context.Background(), "acme"); err == nil {
		h.tenant = tn
	}
	h.links, _ = link.NewSigner(testKey)
	h.svc = h.service(o)
	h.srv = httptest.NewServer(h.svc.Handler())
	t.Cleanup(h.srv.Close)
	return h
}

// service makes a service on the harness's store and Redis (a second one
// plays a second serve process).
func (h *harness) service(o harnessOptions) *selfserve.Service {
	h.t.Helper()
	opts := selfserve.Options{
		Store: h.st, Redis: h.rd, EncryptionKey: testKey, Links: h.links, Directories: o.dirs,
		Channels: map[store.Channel]notify.Sender{
			store.ChannelSMS:   &notify.Outbox{Dir: h.outbox, Channel: "sms"},
			store.ChannelEmail: &notify.Outbox{Dir: h.outbox, Channel: "email"},
		},
		TrustedProxies: mustPrefixes(h.t, "127.0.0.0/8, ::1"),
		ChallengeFloor: o.floor, PublicURL: "https://reset.example",
		Logger:    slog.New(slog.NewJSONHandler(h.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:       o.now,
		TenantTTL: cmp.Or(o.tenantTTL, -1),
	}
	if o.demo {
		opts.DemoOutbox = h.outbox
	}
	if o.sms != nil {
		opts.Channels[store.ChannelSMS] = o.sms
	}
	svc, err := selfserve.New(opts)
	must(h.t, err)
	h.t.Cleanup(svc.Close)
	return svc
}

// reply is a decoded answer.
type reply struct {
	status int
	header http.Header
	raw    string
	body   map[string]any
}

func (r reply) errCode() string {
	e, _ := r.body["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

func (r reply) errField() string {
	e, _ := r.body["error"].(map[string]any)
	c, _ := e["field"].(string)
	return c
}

// post sends a JSON body (a string is sent as it is) to the API of the
// harness's tenant on srv (nil: the harness's).
func (h *harness) post(srv *httptest.Server, path string, body any) reply {
	h.t.Helper()
	var raw []byte
	switch b := body.(type) {
	case string:
		raw = []byte(b)
	case []byte:
		raw = b
	default:
		raw, _ = json.Marshal(b)
	}
	return h.request(srv, "POST", path, bytes.NewReader(raw), nil)
}

func (h *harness) request(srv *httptest.Server, method, path string, body io.Reader, hdr http.Header) reply {
	h.t.Helper()
	if srv == nil {
		srv = h.srv
	}
	req, err := http.NewRequest(method, srv.URL+path, body)
	must(h.t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Forwarded-For", h.ip)
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	resp, err := srv.Client().Do(req)
	must(h.t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	r := reply{status: resp.StatusCode, header: resp.Header, raw: string(b)}
	_ = json.Unmarshal(b, &r.body)
	return r
}

func api(path string) string { return "/self-serve/v1/acme" + path }

// challenge asks for a challenge for login.
func (h *harness) challenge(login, purpose string) reply {
	h.t.Helper()
	return h.post(nil, api("/challenges"), map[string]any{"login": login, "purpose": purpose})
}

var codeRE = regexp.MustCompile(`\b\d{6}\b`)

// code waits for the code of the challenge on channel in the outbox and
// returns it and the number or address it went to.
func (h *harness) code(challengeID, channel string) (code, to string) {
	h.t.Helper()
	path := filepath.Join(h.outbox, "code-"+challengeID+"-"+channel+".txt")
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, err := os.ReadFile(path)
		if err == nil {
			text := string(b)
			_, body, _ := strings.Cut(text, "\n\n")
			m := codeRE.FindAllString(body, -1)
			if len(m) != 1 {
				h.t.Fatalf("the %s message holds %d 6-digit numbers, want 1:\n%s", channel, len(m), text)
			}
			for _, line := range strings.Split(text, "\n") {
				if v, ok := strings.CutPrefix(line, "To: "); ok {
					to = v
				}
			}
			return m[0], to
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("no %s code for challenge %s in the outbox", channel, challengeID)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// codeFiles lists the code messages in the outbox.
func (h *harness) codeFiles() []string {
	h.t.Helper()
	m, err := filepath.Glob(filepath.Join(h.outbox, "code-*.txt"))
	must(h.t, err)
	return m
}

// verify posts a code.
func (h *harness) verify(challengeID, channel, code string) reply {
	h.t.Helper()
	return h.post(nil, api("/challenges/"+challengeID+"/verify"), map[string]any{"channel": channel, "code": code})
}

// grant walks a challenge for login to its grant.
func (h *harness) grant(login, purpose string) (grant string, codes []string) {
	h.t.Helper()
	r := h.challenge(login, purpose)
	if r.status != http.StatusAccepted {
		h.t.Fatalf("challenge: %d %s", r.status, r.raw)
	}
	id := r.body["challenge_id"].(string)
	factors := r.body["factors"].([]any)
	for len(factors) > 0 {
		ch := factors[0].(map[string]any)["channel"].(string)
		factors = factors[1:]
		c, _ := h.code(id, ch)
		codes = append(codes, c)
		v := h.verify(id, ch, c)
		if v.status != http.StatusOK {
			h.t.Fatalf("verify %s: %d %s", ch, v.status, v.raw)
		}
		if g, ok := v.body["grant"].(string); ok {
			return g, codes
		}
		if next, ok := v.body["factors"].([]any); ok { // asked for only now
			factors = append(factors, next...)
		}
	}
	h.t.Fatal("no grant after every factor")
	return "", nil
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func mustPrefixes(t testing.TB, s string) []netip.Prefix {
	t.Helper()
	p, err := config.ParsePrefixes(strings.Split(s, ","))
	must(t, err)
	return p
}

// directoryTenant is a tenant with one customer and that customer's
// self-serve directory connection, its secrets sealed, in a store of its
// own: what the directory write-back tests (AD, Entra) start from.
type directoryTenant struct {
	st       *store.Store
	reg      connectors.Registry
	box      *secretbox.Box
	tenant   store.Tenant
	customer store.Customer
	conn     store.Connection
}

// newDirectoryTenant stores tenant "acme", customer cu and its connection
// name of kind (built by config) with settings and secrets.
func newDirectoryTenant(t *testing.T, kind connectors.Kind, config func() connectors.Config, cu store.Customer, name string, settings, secrets json.RawMessage) directoryTenant {
	t.Helper()
	ctx := context.Background()
	d := directoryTenant{st: storeForTest(t), reg: connectors.NewRegistry(map[connectors.Kind]func() connectors.Config{kind: config})}
	var err error
	d.box, err = secretbox.New(testKey)
	must(t, err)
	d.tenant, _, err = d.st.UpsertTenant(ctx, store.Tenant{Name: "acme", Subscription: rules.SubscriptionBundle, SelfServe: true, TimeZone: "UTC", SendHour: 9, ReminderDays: 10})
	must(t, err)
	cu.TenantID = d.tenant.ID
	d.customer, _, err = d.st.UpsertCustomer(ctx, cu)
	must(t, err)
	sealed, err := d.opener().SealSecrets(secrets)
	must(t, err)
	d.conn, _, err = d.st.UpsertConnection(ctx, store.Connection{TenantID: d.tenant.ID, CustomerID: &d.customer.ID, Name: name, Kind: kind,
		Settings: settings, SealedSecrets: sealed, EnableSelfServe: true}, false)
	must(t, err)
	return d
}

func (d directoryTenant) opener() connection.Opener {
	return connection.Opener{Registry: d.reg, Box: d.box}
}

// importAll runs a full sync of the connection.
func (d directoryTenant) importAll(t *testing.T) importer.Result {
	t.Helper()
	im := &importer.Importer{Store: d.st, Registry: d.reg, Secrets: d.box}
	res, err := im.Sync(context.Background(), importer.Request{TenantID: d.tenant.ID, ConnectionID: d.conn.ID, Full: true, Trigger: "test"})
	must(t, err)
	return res
}

// serve returns a harness serving the tenant with the real directory
// writers, its requests coming from ip.
func (d directoryTenant) serve(t *testing.T, ip string) *harness {
	t.Helper()
	h := &harness{t: t, st: d.st, rd: miniRedis(t), outbox: t.TempDir(), log: &syncBuffer{}, ip: ip, tenant: d.tenant}
	dirs := &selfserve.ConnectionWriters{Opener: d.opener()}
	t.Cleanup(dirs.Close)
	h.svc = h.service(harnessOptions{dirs: dirs, floor: -1})
	h.srv = httptest.NewServer(h.svc.Handler())
	t.Cleanup(h.srv.Close)
	return h
}
