package console

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"selfserve/connectors"
	"selfserve/connectors/hudu"
	"selfserve/connectors/hudu/fakehudu"
	"selfserve/internal/connection"
	"selfserve/internal/enrich"
	"selfserve/internal/ops"
	"selfserve/internal/service"
	"selfserve/internal/store"
)

// testOpsToken opens /monitoring/ in the tests.
const testOpsToken = "ops-token-for-the-console-tests"

// dashboard stands in for asynqmon behind /monitoring/.
var dashboard = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	fmt.Fprint(w, "<!doctype html><title>queues</title><p>queue dashboard</p>")
})

// restart serves b's store through a console with opts changed, the ops
// dashboard mounted beside it at /monitoring/ as `selfserve serve` does
// (the ops token, or the console session of a login that may open it).
func (b *bundle) restart(t *testing.T, change func(*Options)) {
	t.Helper()
	opts := Options{Service: &service.Service{Store: b.st, Enqueuer: b.queue}, Secrets: b.box, MonitoringPath: "/monitoring"}
	change(&opts)
	con, err := New(opts)
	must(t, err)
	mux := http.NewServeMux()
	mux.Handle("/monitoring/", con.Monitoring(dashboard, ops.RequireToken(testOpsToken, dashboard)))
	mux.Handle("/", con)
	b.srv.Close()
	b.srv = httptest.NewServer(mux)
	t.Cleanup(b.srv.Close)
}

// huduConnection adds a Hudu connection of b's tenant to a fake Hudu with
// companies companies, and returns it with the fake and an enricher that
// reads it.
func (b *bundle) huduConnection(t *testing.T, companies int) (store.Connection, *fakehudu.Server, *enrich.Enricher) {
	t.Helper()
	srv := fakehudu.New(fakehudu.Options{Seed: 3, Companies: companies, PeoplePerCompany: 1})
	t.Cleanup(srv.Close)
	settings, err := json.Marshal(map[string]any{"base_url": srv.URL, "page_size": 2, "requests_per_minute": 100000})
	must(t, err)
	sealed, err := connection.Opener{Box: b.box}.SealSecrets([]byte(fmt.Sprintf(`{"api_key":%q}`, fakehudu.DefaultAPIKey)))
	must(t, err)
	conn, err := b.st.CreateConnection(context.Background(), store.Connection{TenantID: b.tenant.ID, Name: "hudu-" + strings.ReplaceAll(t.Name(), "/", "-"),
		Kind: connectors.KindHudu, Settings: settings, SealedSecrets: sealed})
	must(t, err)
	en := &enrich.Enricher{Store: b.st, Secrets: b.box, Registry: connectors.NewRegistry(map[connectors.Kind]func() connectors.Config{
		connectors.KindHudu: func() connectors.Config { return new(hudu.Config) }})}
	return conn, srv, en
}

func TestCustomerFormsRefuseBadInput(t *testing.T) {
	t.Parallel()
	b := setup(t, 0)
	ctx := context.Background()
	c := b.client(t)
	c.signIn("helpdesk@acme.example")
	token := c.csrf("/")
	for _, tc := range []struct {
		name string
		form url.Values
		want int
		says string
	}{
		{"too long", url.Values{"name": {strings.Repeat("a", 201)}}, http.StatusBadRequest, "at most 200"},
		{"markup", url.Values{"name": {`<script>alert(1)</script>`}}, http.StatusBadRequest, "&#39;&lt;&#39;"},
		{"bad zone", url.Values{"name": {"Fabrikam"}, "timezone": {"Mars/Olympus"}}, http.StatusBadRequest, "not an IANA time zone"},
		{"bad region", url.Values{"name": {"Fabrikam"}, "default_region": {"XX"}}, http.StatusBadRequest, "two-letter region"},
		{"unknown field", url.Values{"name": {"Fabrikam"}, "admin": {"1"}}, http.StatusBadRequest, "unknown field"},
		{"taken", url.Values{"name": {"Contoso <b>Ltd</b>"}}, http.StatusBadRequest, "letters, digits"},
	} {
		tc.form.Set("csrf", token)
		status, body, _ := c.do(http.MethodPost, "/customers", tc.form, nil)
		if status != tc.want || !strings.Contains(body, tc.says) {
			t.Errorf("%s: %d, want %d saying %q:\n%.2000s", tc.name, status, tc.want, tc.says, body)
		}
	}
	if cs, _ := b.st.Customers(ctx, b.tenant.ID); len(cs) != 1 {
		t.Fatalf("refused forms stored customers: %d", len(cs))
	}
	if status, _, _ := c.do(http.MethodPost, "/customers", url.Values{"name": {"Fabrikam"}}, nil); status != http.StatusForbidden {
		t.Errorf("create without the CSRF token: %d, want 403", status)
	}
	status, _, h := c.do(http.MethodPost, "/customers", url.Values{"csrf": {token}, "name": {"Fabrikam (UK) Ltd."}, "default_region": {"gb"}}, nil)
	if status != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), "/?created=") {
		t.Fatalf("create: %d %s", status, h.Get("Location"))
	}
	if status, body, _ := c.do(http.MethodPost, "/customers", url.Values{"csrf": {token}, "name": {"Fabrikam (UK) Ltd."}}, nil); status != http.StatusConflict || !strings.Contains(body, "exists already") {
		t.Errorf("a second customer of that name: %d\n%.1500s", status, body)
	}
	fab, err := b.st.CustomerByName(ctx, b.tenant.ID, "Fabrikam (UK) Ltd.")
	must(t, err)
	if fab.DefaultRegion != "GB" || fab.Source != "manual" {
		t.Errorf("created %+v", fab)
	}

	// Linking: a bad id, then a good one, then again (409); another
	// tenant's customer is a 404.
	link := fmt.Sprintf("/customers/%d/link", fab.ID)
	if status, body, _ := c.do(http.MethodPost, link, url.Values{"csrf": {token}, "source": {"hudu"}, "external_id": {"1; DROP"}}, nil); status != http.StatusBadRequest || !strings.Contains(body, "not a PSA id") {
		t.Errorf("bad PSA id: %d\n%.1500s", status, body)
	}
	if status, _, _ := c.do(http.MethodPost, link, url.Values{"csrf": {token}, "source": {"autotask"}, "external_id": {"42"}}, nil); status != http.StatusBadRequest {
		t.Errorf("unknown PSA: %d", status)
	}
	if status, _, h := c.do(http.MethodPost, link, url.Values{"csrf": {token}, "source": {"hudu"}, "external_id": {"42"}}, nil); status != http.StatusSeeOther || h.Get("Location") != fmt.Sprintf("/?linked=%d", fab.ID) {
		t.Errorf("link: %d %s", status, h.Get("Location"))
	}
	if status, body, _ := c.do(http.MethodPost, link, url.Values{"csrf": {token}, "source": {"itglue"}, "external_id": {"43"}}, nil); status != http.StatusConflict || !strings.Contains(body, "already linked") {
		t.Errorf("link again: %d\n%.1500s", status, body)
	}
	if fab, _ = b.st.Customer(ctx, b.tenant.ID, fab.ID); fab.Source != "hudu" || fab.ExternalID != "42" {
		t.Errorf("after linking: %+v", fab)
	}
	rival := b.client(t)
	rival.signIn("super@rival.example")
	for _, path := range []string{link, "/customers/import?connection=" + fmt.Sprint(b.conn.ID)} {
		if status, _, _ := rival.do(http.MethodGet, path, nil, nil); status != http.StatusNotFound {
			t.Errorf("another tenant's %s: %d, want 404", path, status)
		}
	}
	if status, _, _ := rival.do(http.MethodPost, fmt.Sprintf("/customers/%d/link", b.cust.ID), url.Values{"csrf": {rival.csrf("/")}, "source": {"hudu"}, "external_id": {"7"}}, nil); status != http.StatusNotFound {
		t.Errorf("linking another tenant's customer: %d, want 404", status)
	}
	if cu, _ := b.st.Customer(ctx, b.tenant.ID, b.cust.ID); cu.ExternalID != "" {
		t.Fatal("another tenant linked the customer")
	}
}

func TestSettingsFormSavesAllOrNothing(t *testing.T) {
	t.Parallel()
	b := setup(t, 0)
	ctx := context.Background()
	c := b.client(t)
	c.signIn("super@acme.example")
	token := c.csrf("/settings")
	good := url.Values{"csrf": {token}, "send_hour": {"7"}, "reminder_days": {"14"}, "timezone": {"Europe/London"},
		"verification": {"sms+email"}, "privileged_self_serve": {"two_factors"}}
	for field, bad := range map[string]string{"send_hour": "24", "reminder_days": "x", "timezone": "<b>UTC</b>",
		"verification": "email", "privileged_self_serve": "always"} {
		form := url.Values{}
		for k, v := range good {
			form[k] = v
		}
		form.Set(field, bad)
		status, body, _ := c.do(http.MethodPost, "/settings", form, nil)
		if status != http.StatusBadRequest || !strings.Contains(body, `id="`+field+`-error"`) {
			t.Errorf("%s=%q: %d, want 400 with the error next to the field\n%.3000s", field, bad, status, body)
		}
		if strings.Contains(body, "<b>UTC") {
			t.Errorf("%s: the typed markup is not escaped", field)
		}
		if tn, _ := b.st.Tenant(ctx, b.tenant.ID); tn.TimeZone != "UTC" || tn.SendHour != 9 || tn.Verification == "sms+email" {
			t.Fatalf("a refused form saved part of itself: %+v", tn)
		}
	}
	form := url.Values{"csrf": {token}, "subscription": {"bundle"}}
	if status, body, _ := c.do(http.MethodPost, "/settings", form, nil); status != http.StatusBadRequest || !strings.Contains(body, "unknown field") {
		t.Errorf("a forged subscription change: %d, want 400 (the operator sets it)", status)
	}
	if status, _, _ := c.do(http.MethodPost, "/settings", good, nil); status != http.StatusSeeOther {
		t.Fatalf("good settings: %d", status)
	}
	tn, _ := b.st.Tenant(ctx, b.tenant.ID)
	if tn.TimeZone != "Europe/London" || tn.SendHour != 7 || tn.ReminderDays != 14 || tn.Verification != "sms+email" || tn.PrivilegedSelfServe != "two_factors" {
		t.Errorf("saved %+v", tn)
	}

	desk := b.client(t)
	desk.signIn("helpdesk@acme.example")
	_, body, _ := desk.do(http.MethodGet, "/settings", nil, nil)
	if strings.Contains(body, `action="/settings`) || !strings.Contains(body, "Europe/London") || !strings.Contains(body, "two codes") {
		t.Errorf("helpdesk's settings page:\n%.3000s", body)
	}
	form = url.Values{"csrf": {desk.csrf("/settings")}, "send_hour": {"3"}}
	if status, _, _ := desk.do(http.MethodPost, "/settings", form, nil); status != http.StatusForbidden {
		t.Errorf("helpdesk's forged settings POST: %d, want 403", status)
	}
	form = url.Values{"csrf": {desk.csrf("/settings")}, "email": {"mole@acme.example"}, "role": {"super"}}
	if status, _, _ := desk.do(http.MethodPost, "/settings/invite", form, nil); status != http.StatusForbidden {
		t.Errorf("helpdesk's forged invite: %d, want 403", status)
	}
	if _, err := b.st.LoginByEmail(ctx, b.tenant.ID, "mole@acme.example"); err == nil {
		t.Fatal("the forged invite made a login")
	}
}

func TestInviteShowsTheLinkOnce(t *testing.T) {
	t.Parallel()
	b := setup(t, 0)
	ctx := context.Background()
	primary := b.addLogin(t, b.tenant, "primary@acme.example", store.RolePrimary, true)
	c := b.client(t)
	c.signIn(primary.Email)
	token := c.csrf("/settings")
	_, page, _ := c.do(http.MethodGet, "/settings", nil, nil)
	if strings.Contains(page, `<option value="super"`) {
		t.Error("a primary login is offered to invite a super login")
	}
	for _, tc := range []struct{ email, role, field string }{
		{"not an address", "engineer", "email"},
		{strings.Repeat("a", 250) + "@x.example", "engineer", "email"},
		{"new@acme.example", "super", "role"},
		{"new@acme.example", "owner", "role"},
	} {
		status, body, _ := c.do(http.MethodPost, "/settings/invite", url.Values{"csrf": {token}, "email": {tc.email}, "role": {tc.role}}, nil)
		if status != http.StatusBadRequest || !strings.Contains(body, `id="`+tc.field+`-error"`) {
			t.Errorf("invite %q as %q: %d, want 400 next to %s\n%.2000s", tc.email, tc.role, status, tc.field, body)
		}
	}
	if _, err := b.st.LoginByEmail(ctx, b.tenant.ID, "new@acme.example"); err == nil {
		t.Fatal("a refused invite made a login")
	}
	status, body, _ := c.do(http.MethodPost, "/settings/invite", url.Values{"csrf": {token}, "email": {"New@Acme.example"}, "role": {"engineer"}}, nil)
	link := inviteLinkRE.FindStringSubmatch(body)
	if status != http.StatusOK || link == nil {
		t.Fatalf("invite: %d\n%.3000s", status, body)
	}
	if !strings.HasPrefix(link[1], b.srv.URL+"/invite/ss") {
		t.Errorf("invite link %q", link[1])
	}
	if _, again, _ := c.do(http.MethodGet, "/settings", nil, nil); strings.Contains(again, link[1]) {
		t.Error("the invite link is shown again")
	}
	l, err := b.st.LoginByEmail(ctx, b.tenant.ID, "new@acme.example")
	if err != nil || l.Role != store.RoleEngineer {
		t.Fatalf("invited login: %+v %v", l, err)
	}
	anon := b.client(t)
	if status, body, _ := anon.do(http.MethodGet, strings.TrimPrefix(link[1], b.srv.URL), nil, nil); status != http.StatusOK || !strings.Contains(body, "new@acme.example") {
		t.Errorf("the invite link: %d\n%.1500s", status, body)
	}
}

func TestMonitoringOpensForSuperOfOpsTenantOnly(t *testing.T) {
	t.Parallel()
	b := setup(t, 0)
	b.restart(t, func(o *Options) { o.OpsTenant = b.tenant.Name })
	b.addLogin(t, b.tenant, "primary@acme.example", store.RolePrimary, true)
	get := func(c *client, header map[string]string) (int, string) {
		status, body, _ := c.do(http.MethodGet, "/monitoring/", nil, header)
		return status, body
	}
	anon := b.client(t)
	if status, _ := get(anon, nil); status != http.StatusUnauthorized {
		t.Errorf("no session, no token: %d, want 401", status)
	}
	if status, body := get(anon, map[string]string{"Authorization": "Bearer " + testOpsToken}); status != http.StatusOK || !strings.Contains(body, "queue dashboard") {
		t.Errorf("the ops token: %d", status)
	}
	for _, email := range []string{"helpdesk@acme.example", "primary@acme.example", "super@rival.example"} {
		c := b.client(t)
		c.signIn(email)
		if status, _ := get(c, nil); status != http.StatusUnauthorized {
			t.Errorf("%s: /monitoring/ %d, want 401", email, status)
		}
		if _, home, _ := c.do(http.MethodGet, "/", nil, nil); strings.Contains(home, `href="/monitoring/"`) {
			t.Errorf("%s is shown the Ops link", email)
		}
	}
	super := b.client(t)
	super.signIn("super@acme.example")
	if _, home, _ := super.do(http.MethodGet, "/", nil, nil); !strings.Contains(home, `href="/monitoring/"`) {
		t.Error("the super login is not shown the Ops link")
	}
	if status, body := get(super, nil); status != http.StatusOK || !strings.Contains(body, "queue dashboard") {
		t.Errorf("super's session: /monitoring/ %d", status)
	}
	status, _, _ := super.do(http.MethodPost, "/monitoring/api/queues/default:pause", url.Values{}, map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"})
	if status != http.StatusForbidden {
		t.Errorf("a cross-site POST with super's session: %d, want 403", status)
	}
	// Without OpsTenant no session opens it (the same session: sessions
	// live in the database).
	b.restart(t, func(*Options) {})
	if status, _ := get(super, nil); status != http.StatusUnauthorized {
		t.Errorf("super's session without an ops tenant: %d, want 401", status)
	}
}

func TestImportPreviewStoresNothing(t *testing.T) {
	t.Parallel()
	b := setup(t, 0)
	ctx := context.Background()
	conn, srv, en := b.huduConnection(t, 5)
	b.restart(t, func(o *Options) { o.Service.Registry, o.Service.Secrets = en.Registry, en.Secrets })
	first := srv.Companies()[0]
	_, _, err := b.st.UpsertCustomer(ctx, store.Customer{TenantID: b.tenant.ID, Name: first.Name, TimeZone: "UTC"})
	must(t, err)
	before, _ := b.st.Customers(ctx, b.tenant.ID)
	c := b.client(t)
	c.signIn("helpdesk@acme.example")
	status, body, _ := c.do(http.MethodGet, fmt.Sprintf("/customers/import?connection=%d", conn.ID), nil, nil)
	if status != http.StatusOK || !strings.Contains(body, "Links the manual customer") || strings.Count(body, "New customer") != 4 {
		t.Fatalf("preview: %d\n%.4000s", status, body)
	}
	if after, _ := b.st.Customers(ctx, b.tenant.ID); len(after) != len(before) {
		t.Fatalf("the preview stored customers: %d, then %d", len(before), len(after))
	}
	if runs, _ := b.st.Runs(ctx, b.tenant.ID, conn.ID, 5); len(runs) != 0 {
		t.Fatalf("the preview recorded runs: %+v", runs)
	}
	for _, tc := range []struct {
		query string
		want  int
		says  string
	}{
		{"x", http.StatusBadRequest, "Pick one of the PSA connections"},
		{fmt.Sprint(b.conn.ID), http.StatusConflict, "directory connection"},
		{"999999", http.StatusNotFound, "not yours to see"},
	} {
		status, body, _ := c.do(http.MethodGet, "/customers/import?connection="+tc.query, nil, nil)
		if status != tc.want || !strings.Contains(body, tc.says) {
			t.Errorf("preview of %q: %d, want %d saying %q\n%.2000s", tc.query, status, tc.want, tc.says, body)
		}
	}
	// A PSA refusing the key: a 502 saying so next to the field, not the
	// connector's raw error.
	bad := conn
	bad.ID, bad.Name = 0, conn.Name+"-badkey"
	sealed, err := connection.Opener{Box: b.box}.SealSecrets([]byte(`{"api_key":"wrong-key"}`))
	must(t, err)
	bad.SealedSecrets = sealed
	bad, err = b.st.CreateConnection(ctx, bad)
	must(t, err)
	status, body, _ = c.do(http.MethodGet, fmt.Sprintf("/customers/import?connection=%d", bad.ID), nil, nil)
	if status != http.StatusBadGateway || !strings.Contains(body, `id="connection_id-error"`) || !strings.Contains(body, "refused the credentials") || strings.Contains(body, srv.URL) {
		t.Errorf("preview with a wrong key: %d\n%.3000s", status, body)
	}
	token := c.csrf("/customers/import")
	if status, _, _ := c.do(http.MethodPost, "/customers/import", url.Values{"connection_id": {fmt.Sprint(conn.ID)}}, nil); status != http.StatusForbidden {
		t.Errorf("import without the CSRF token: %d, want 403", status)
	}
	status, _, h := c.do(http.MethodPost, "/customers/import", url.Values{"csrf": {token}, "connection_id": {fmt.Sprint(conn.ID)}}, nil)
	if status != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), "/runs/") {
		t.Fatalf("import: %d %s", status, h.Get("Location"))
	}
	if status, body, _ := c.do(http.MethodPost, "/customers/import", url.Values{"csrf": {token}, "connection_id": {fmt.Sprint(conn.ID)}}, nil); status != http.StatusConflict || !strings.Contains(body, `id="connection_id-error"`) {
		t.Errorf("a second import while one is queued: %d\n%.2000s", status, body)
	}
}

var inviteLinkRE = regexp.MustCompile(`<code class="key" id="invite-link">([^<]+)</code>`)
