package console

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"selfserve/connectors/shipped"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"selfserve/connectors"
	"selfserve/internal/agentserver"
	"selfserve/internal/importer"
	"selfserve/internal/rules"
	"selfserve/internal/secretbox"
	"selfserve/internal/service"
	"selfserve/internal/store"
	"selfserve/internal/store/storetest"
)

// queue is an in-memory Enqueuer recording welcome emails; with an
// importer it runs syncs in the background, after delay (as a worker
// would pick them up).
type queue struct {
	mu       sync.Mutex
	welcome  []int64
	importer *importer.Importer
	delay    time.Duration
}

func (q *queue) EnqueueSync(_ context.Context, run store.SyncRun) error {
	if q.importer == nil {
		return nil
	}
	go func() {
		time.Sleep(q.delay)
		_, _ = q.importer.Sync(context.Background(), importer.Request{TenantID: run.TenantID, ConnectionID: run.ConnectionID, RunID: run.ID, Trigger: "test"})
	}()
	return nil
}

func (q *queue) EnqueueCustomerImport(context.Context, store.SyncRun) error { return nil }
func (q *queue) EnqueueWelcome(_ context.Context, _, id int64) (bool, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.welcome = append(q.welcome, id)
	return true, nil
}

// testPassword is every test login's password.
const testPassword = "correct horse battery"

// bundle is a running console with two tenants.
type bundle struct {
	st      *store.Store
	srv     *httptest.Server
	box     *secretbox.Box
	queue   *queue
	tenant  store.Tenant
	other   store.Tenant
	cust    store.Customer
	otherCu store.Customer
	conn    store.Connection
	// logins by role of tenant; secrets holds TOTP secrets by email.
	logins  map[store.Role]store.Login
	secrets map[string]string
}

func setup(t *testing.T, users int) *bundle {
	t.Helper()
	ctx := context.Background()
	var st *store.Store
	if base := os.Getenv("TEST_DATABASE_URL"); base != "" {
		st = storetest.OpenMigrated(t, storetest.FreshPostgresSchema(t, base))
	} else {
		st = storetest.OpenMigrated(t, "sqlite:"+filepath.Join(t.TempDir(), "console.db"))
	}
	box, err := secretbox.New([]byte(strings.Repeat("k", 32)))
	if err != nil {
		t.Fatal(err)
	}
	b := &bundle{st: st, box: box, queue: &queue{}, logins: map[store.Role]store.Login{}, secrets: map[string]string{}}
	b.tenant, _, err = st.UpsertTenant(ctx, store.Tenant{Name: "acme-msp", Subscription: rules.SubscriptionBundle, SelfServe: true, TimeZone: "UTC", SendHour: 9, ReminderDays: 10})
	must(t, err)
	b.other, _, err = st.UpsertTenant(ctx, store.Tenant{Name: "rival-msp", Subscription: rules.SubscriptionBundle, SelfServe: true, TimeZone: "UTC", SendHour: 9, ReminderDays: 10})
	must(t, err)
	b.cust, _, err = st.UpsertCustomer(ctx, store.Customer{TenantID: b.tenant.ID, Name: "Contoso <b>Ltd</b>", TimeZone: "UTC", DefaultRegion: "US"})
	must(t, err)
	b.otherCu, _, err = st.UpsertCustomer(ctx, store.Customer{TenantID: b.other.ID, Name: "Rival Co", TimeZone: "UTC", DefaultRegion: "GB"})
	must(t, err)
	b.conn, _, err = st.UpsertConnection(ctx, store.Connection{TenantID: b.tenant.ID, CustomerID: &b.cust.ID, Name: "contoso-file", Kind: connectors.KindFile,
		Settings: []byte(`{"path":"x.csv"}`), EnableSelfServe: true, ScheduleSeconds: 0}, false)
	must(t, err)
	var recs []store.UserRecord
	for i := range users {
		mobile := fmt.Sprintf("+1202555%04d", i)
		if i%4 == 3 {
			mobile = ""
		}
		recs = append(recs, store.UserRecord{User: connectors.User{ExternalID: fmt.Sprintf("u%04d", i), Username: fmt.Sprintf("user%04d", i),
			DisplayName: fmt.Sprintf("User %04d", i), Email: fmt.Sprintf("user%04d@contoso.example", i), Mobile: mobile, Enabled: true,
			PasswordExpiresAt: time.Date(2027, 1, 1+i%28, 0, 0, 0, 0, time.UTC)}})
	}
	if len(recs) > 0 {
		_, err = importer.ApplyPage(ctx, st, store.PageTarget{TenantID: b.tenant.ID, CustomerID: b.cust.ID, ConnectionID: b.conn.ID, Source: rules.SourceLocal, EnableSelfServe: false}, recs, nil)
		must(t, err)
	}
	for _, role := range []store.Role{store.RoleSuper, store.RoleHelpdesk} {
		b.logins[role] = b.addLogin(t, b.tenant, string(role)+"@acme.example", role, role == store.RoleSuper)
	}
	b.addLogin(t, b.other, "super@rival.example", store.RoleSuper, true)
	svc := &service.Service{Store: st, Enqueuer: b.queue, Registry: shipped.Registry(), Secrets: box,
		Agents: &agentserver.Service{Store: st}, PublicURL: "https://selfserve.example"}
	con, err := New(Options{Service: svc, Secrets: box, MonitoringPath: "/monitoring"})
	must(t, err)
	b.srv = httptest.NewServer(con)
	t.Cleanup(b.srv.Close)
	return b
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// addLogin makes a login with testPassword and, withTOTP, a second factor.
func (b *bundle) addLogin(t *testing.T, tn store.Tenant, email string, role store.Role, withTOTP bool) store.Login {
	t.Helper()
	ctx := context.Background()
	l, _, err := b.st.UpsertLogin(ctx, tn.ID, email, role)
	must(t, err)
	must(t, b.st.SetPassword(ctx, tn.ID, l.ID, hashPassword(testPassword)))
	if withTOTP {
		key, err := totp.Generate(totp.GenerateOpts{Issuer: "test", AccountName: email})
		must(t, err)
		sealed, err := b.box.Seal([]byte(key.Secret()), sealContext(l.ID))
		must(t, err)
		must(t, b.st.SetTOTP(ctx, tn.ID, l.ID, sealed, 0))
		b.secrets[email] = key.Secret()
	}
	return l
}

// code is the current TOTP code of email.
func (b *bundle) code(t *testing.T, email string) string {
	t.Helper()
	c, err := totp.GenerateCode(b.secrets[email], time.Now())
	must(t, err)
	return c
}

// client is a browser-like HTTP client: cookies, no redirects followed,
// and an Origin header matching the server.
type client struct {
	t    *testing.T
	b    *bundle
	http *http.Client
}

func (b *bundle) client(t *testing.T) *client {
	jar, _ := cookiejar.New(nil)
	return &client{t: t, b: b, http: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (c *client) do(method, path string, form url.Values, header map[string]string) (int, string, http.Header) {
	c.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, c.b.srv.URL+path, body)
	must(c.t, err)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if method != http.MethodGet {
		req.Header.Set("Origin", c.b.srv.URL)
		req.Header.Set("Sec-Fetch-Site", "same-origin")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.http.Do(req)
	must(c.t, err)
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out), resp.Header
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf fetches path and returns the page's CSRF token.
func (c *client) csrf(path string) string {
	c.t.Helper()
	_, body, _ := c.do(http.MethodGet, path, nil, nil)
	m := csrfRE.FindStringSubmatch(body)
	if m == nil {
		c.t.Fatalf("no csrf token on %s:\n%s", path, body)
	}
	return m[1]
}

// signIn signs in email (with its TOTP code when it has one).
func (c *client) signIn(email string) {
	c.t.Helper()
	status, body, h := c.do(http.MethodPost, "/signin", url.Values{"csrf": {c.csrf("/signin")}, "email": {email}, "password": {testPassword}, "next": {"/"}}, nil)
	if status != http.StatusSeeOther {
		c.t.Fatalf("sign-in of %s: %d\n%s", email, status, body)
	}
	if loc := h.Get("Location"); strings.HasPrefix(loc, "/signin/totp") {
		status, body, _ = c.do(http.MethodPost, "/signin/totp", url.Values{"csrf": {c.csrf(loc)}, "code": {c.b.code(c.t, email)}, "next": {"/"}}, nil)
		if status != http.StatusSeeOther {
			c.t.Fatalf("TOTP of %s: %d\n%s", email, status, body)
		}
	}
}
