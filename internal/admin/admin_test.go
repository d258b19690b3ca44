package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"selfserve/internal/importer"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"selfserve/connectors"
	agentconn "selfserve/connectors/agent"
	"selfserve/connectors/file"
	"selfserve/connectors/itglue"
	"selfserve/connectors/itglue/fakeitglue"
	"selfserve/connectors/ldap"
	"selfserve/internal/agentserver"
	"selfserve/internal/apitoken"
	"selfserve/internal/rules"
	"selfserve/internal/secretbox"
	"selfserve/internal/store"
	"selfserve/internal/store/storetest"
)

// recorder is an in-memory Enqueuer: it records what the API queued and can
// be told to fail.
type recorder struct {
	mu       sync.Mutex
	syncs    []store.SyncRun
	imports  []store.SyncRun
	welcomes []int64
	fail     error
}

func (q *recorder) EnqueueSync(_ context.Context, run store.SyncRun) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.fail != nil {
		return q.fail
	}
	q.syncs = append(q.syncs, run)
	return nil
}

func (q *recorder) EnqueueCustomerImport(_ context.Context, run store.SyncRun) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.fail != nil {
		return q.fail
	}
	q.imports = append(q.imports, run)
	return nil
}

// EnqueueWelcome queues one welcome per end user, as worker.Client does
// within one minute (the tests' clock stands still).
func (q *recorder) EnqueueWelcome(_ context.Context, _, endUserID int64) (bool, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.fail != nil {
		return false, q.fail
	}
	if slices.Contains(q.welcomes, endUserID) {
		return false, nil
	}
	q.welcomes = append(q.welcomes, endUserID)
	return true, nil
}

// switchOn turns the self-serve switch of f's end users ids on.
func (b *bundle) switchOn(f tenantFixture, ids ...int64) {
	b.t.Helper()
	_, err := b.st.SetSelfServe(context.Background(), f.tenant.ID, ids, true)
	must(b.t, err)
}

// forgetWelcomes empties the welcomes queued, as a minute passing does.
func (q *recorder) forgetWelcomes() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.welcomes = nil
}

// tenantFixture is one tenant's objects.
type tenantFixture struct {
	tenant   store.Tenant
	customer store.Customer
	conn     store.Connection // a file connection of the customer
	psa      store.Connection // an IT Glue connection
	agent    store.Connection // an agent connection of the customer
	users    []store.EndUser  // alice (complete), bob (no mobile), carol (no email)
	tokens   map[store.Role]string
	app      string // an app client token
	appID    int64
	tokenIDs map[store.Role]int64
}

// bundle is a running API over a real store with two tenants.
type bundle struct {
	t      testing.TB
	st     *store.Store
	h      http.Handler
	queue  *recorder
	box    *secretbox.Box
	itglue *fakeitglue.Server
	a, b   tenantFixture
	// importDir is the server's SELFSERVE_FILE_IMPORT_DIR: each tenant's
	// file connection reads <importDir>/<tenant>/accounts.csv.
	importDir string
}

var testKey = bytes.Repeat([]byte{7}, 32)

func registry() connectors.Registry {
	return connectors.NewRegistry(map[connectors.Kind]func() connectors.Config{
		connectors.KindFile:   func() connectors.Config { return new(file.Config) },
		connectors.KindITGlue: func() connectors.Config { return new(itglue.Config) },
		connectors.KindAD:     func() connectors.Config { return new(ldap.Config) },
		connectors.KindAgent:  func() connectors.Config { return new(agentconn.Config) },
	})
}

// setup builds a bundle on st.
func setup(t testing.TB, st *store.Store) *bundle {
	t.Helper()
	box, err := secretbox.New(testKey)
	must(t, err)
	b := &bundle{t: t, st: st, queue: &recorder{}, box: box}
	b.itglue = fakeitglue.New(fakeitglue.Options{})
	t.Cleanup(b.itglue.Close)
	b.importDir = t.TempDir()
	b.a = b.tenant("acme")
	b.b = b.tenant("globex")
	h, err := New(Options{Store: st, Registry: registry(), Secrets: box, Enqueuer: b.queue, FileImportDir: b.importDir,
		AllowedPSAHosts: []string{"127.0.0.1"}, Agents: &agentserver.Service{Store: st}, PublicURL: "https://selfserve.example",
		Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))})
	must(t, err)
	b.h = h
	return b
}

func (b *bundle) tenant(name string) tenantFixture {
	t, st := b.t, b.st
	ctx := context.Background()
	var f tenantFixture
	var err error
	f.tenant, _, err = st.UpsertTenant(ctx, store.Tenant{Name: name, Subscription: rules.SubscriptionBundle, SelfServe: true, TimeZone: "UTC", SendHour: 9, ReminderDays: 10})
	must(t, err)
	f.customer, _, err = st.UpsertCustomer(ctx, store.Customer{TenantID: f.tenant.ID, Name: "Contoso", TimeZone: "Europe/London", DefaultRegion: "GB"})
	must(t, err)
	must(t, os.Mkdir(filepath.Join(b.importDir, name), 0o700))
	must(t, os.WriteFile(b.csvPath(name), []byte("username,email,mobile\nzed,zed@contoso.example,07400123456\n"), 0o600))
	settings, _ := json.Marshal(map[string]string{"path": b.csvPath(name)})
	f.conn, _, err = st.UpsertConnection(ctx, store.Connection{TenantID: f.tenant.ID, CustomerID: &f.customer.ID, Name: name + "-local", Kind: connectors.KindFile,
		Settings: settings, EnableSelfServe: true, ScheduleSeconds: 10800}, false)
	must(t, err)
	sealed, err := b.box.Seal([]byte(`{"api_key":"`+fakeitglue.DefaultAPIKey+`"}`), "selfserve/connection-secrets/v1")
	must(t, err)
	psaSettings, _ := json.Marshal(map[string]string{"base_url": b.itglue.URL})
	f.psa, _, err = st.UpsertConnection(ctx, store.Connection{TenantID: f.tenant.ID, Name: name + "-itglue", Kind: connectors.KindITGlue,
		Settings: psaSettings, SealedSecrets: sealed}, false)
	must(t, err)
	f.agent, _, err = st.UpsertConnection(ctx, store.Connection{TenantID: f.tenant.ID, CustomerID: &f.customer.ID, Name: name + "-agent", Kind: connectors.KindAgent,
		Settings: json.RawMessage(`{"directory":"ad"}`)}, false)
	must(t, err)
	run, err := st.CreateRun(ctx, f.tenant.ID, f.conn.ID, store.ModeFull, "test", store.RunRunning, false, 0)
	must(t, err)
	recs := []store.UserRecord{
		{User: connectors.User{ExternalID: "alice", Username: "alice", Email: "alice@contoso.example", Mobile: "+447400123001", Enabled: true}},
		{User: connectors.User{ExternalID: "bob", Username: "bob", Email: "bob@contoso.example", Enabled: true}},
		{User: connectors.User{ExternalID: "carol", Username: "carol", Mobile: "+447400123003", Enabled: true, LockedOut: true}},
	}
	_, err = importer.ApplyPage(ctx, st, store.PageTarget{TenantID: f.tenant.ID, CustomerID: f.customer.ID, ConnectionID: f.conn.ID, RunID: run.ID,
		Source: rules.SourceLocal, EnableSelfServe: false}, recs, nil)
	must(t, err)
	run.Status = store.RunSucceeded
	must(t, st.FinishRun(ctx, &run))
	users, err := st.EndUsers(ctx, f.tenant.ID, store.EndUserFilter{CustomerID: f.customer.ID})
	must(t, err)
	f.users = users
	f.tokens = map[store.Role]string{}
	f.tokenIDs = map[store.Role]int64{}
	for _, role := range store.Roles {
		login, _, err := st.UpsertLogin(ctx, f.tenant.ID, string(role)+"@"+name+".example", role)
		must(t, err)
		tok, hash, prefix := apitoken.Login.New()
		row, err := st.CreateAPIToken(ctx, f.tenant.ID, login.ID, hash, prefix, time.Time{})
		must(t, err)
		f.tokens[role] = tok
		f.tokenIDs[role] = row.ID
	}
	tok, hash, prefix := apitoken.AppClient.New()
	app, err := st.CreateAppClient(ctx, f.tenant.ID, "mobile-app", hash, prefix)
	must(t, err)
	f.app, f.appID = tok, app.ID
	return f
}

// csvPath is the accounts file in the import folder of the tenant named
// tenant.
func (b *bundle) csvPath(tenant string) string {
	return filepath.Join(b.importDir, tenant, "accounts.csv")
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// response is a decoded reply.
type response struct {
	status int
	body   map[string]any
	raw    []byte
	header http.Header
}

// errField returns error.field and error.code.
func (r response) errField() (field, code string) {
	e, _ := r.body["error"].(map[string]any)
	field, _ = e["field"].(string)
	code, _ = e["code"].(string)
	return field, code
}

func (r response) errMessage() string {
	e, _ := r.body["error"].(map[string]any)
	m, _ := e["message"].(string)
	return m
}

// do sends a request to the handler; body is marshalled unless it is a
// string or []byte.
func (b *bundle) do(method, path, token string, body any) response {
	b.t.Helper()
	var rd io.Reader
	switch v := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(v)
	case []byte:
		rd = bytes.NewReader(v)
	default:
		data, err := json.Marshal(v)
		must(b.t, err)
		rd = bytes.NewReader(data)
	}
	req := httptest.NewRequest(method, path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return b.serve(req)
}

// serve runs a request through the handler and decodes the reply.
func (b *bundle) serve(req *http.Request) response {
	b.t.Helper()
	rec := httptest.NewRecorder()
	b.h.ServeHTTP(rec, req)
	res := response{status: rec.Code, raw: rec.Body.Bytes(), header: rec.Header()}
	if len(res.raw) > 0 && res.raw[0] == '{' {
		if err := json.Unmarshal(res.raw, &res.body); err != nil {
			b.t.Fatalf("%s %s: reply is not JSON: %v\n%s", req.Method, req.URL, err, res.raw)
		}
	}
	if res.status >= 500 && res.status != http.StatusServiceUnavailable {
		b.t.Errorf("%s %s: %d %s", req.Method, req.URL, res.status, res.raw)
	}
	return res
}

// snapshot is everything of a tenant the API may change, as JSON, to prove
// a refused request changed nothing.
func (b *bundle) snapshot(f tenantFixture) string {
	b.t.Helper()
	ctx := context.Background()
	tn, err := b.st.Tenant(ctx, f.tenant.ID)
	must(b.t, err)
	cs, err := b.st.Customers(ctx, f.tenant.ID)
	must(b.t, err)
	conns, err := b.st.Connections(ctx, f.tenant.ID)
	must(b.t, err)
	users, err := b.st.EndUsers(ctx, f.tenant.ID, store.EndUserFilter{IncludeRemoved: true})
	must(b.t, err)
	toks, err := b.st.APITokens(ctx, f.tenant.ID, 0)
	must(b.t, err)
	apps, err := b.st.AppClients(ctx, f.tenant.ID)
	must(b.t, err)
	audit, err := b.st.AuditLog(ctx, f.tenant.ID, store.AuditFilter{Limit: 1000})
	must(b.t, err)
	for i := range toks {
		toks[i].LastUsedAt = nil
	}
	for i := range apps {
		apps[i].LastUsedAt = nil
	}
	type connSecrets struct {
		ID      int64
		Secrets []byte
		Cursor  string
	}
	var cx []connSecrets
	for _, c := range conns {
		cx = append(cx, connSecrets{c.ID, c.SealedSecrets, c.Cursor})
	}
	data, err := json.Marshal([]any{tn, cs, conns, cx, users, toks, apps, len(audit)})
	must(b.t, err)
	return string(data)
}

// auditCount counts the tenant's audit entries with action.
func (b *bundle) auditCount(f tenantFixture, action string) int {
	b.t.Helper()
	es, err := b.st.AuditLog(context.Background(), f.tenant.ID, store.AuditFilter{Action: action, Limit: 1000})
	must(b.t, err)
	return len(es)
}

func (b *bundle) endUser(f tenantFixture, id int64) store.EndUser {
	b.t.Helper()
	u, err := b.st.EndUser(context.Background(), f.tenant.ID, id)
	must(b.t, err)
	return u
}

// eachBackend runs fn on SQLite, and on PostgreSQL when TEST_DATABASE_URL
// is set.
func eachBackend(t *testing.T, fn func(t *testing.T, b *bundle)) {
	t.Helper()
	for _, be := range storetest.Backends() {
		t.Run(be.Name, func(t *testing.T) {
			t.Parallel()
			fn(t, setup(t, be.Open(t)))
		})
	}
}

// sqliteOnly runs fn on SQLite (for tests whose point is not the SQL).
func sqliteOnly(t testing.TB) *bundle {
	t.Helper()
	return setup(t, storetest.OpenMigrated(t, "sqlite:"+filepath.Join(t.TempDir(), "test.db")))
}

func id(v int64) string { return fmt.Sprint(v) }
