package console

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"selfserve/connectors"
	"selfserve/internal/store"
)

func TestSignInNeedsTOTPOnceAndSessionsEnd(t *testing.T) {
	t.Parallel()
	b := setup(t, 3)
	c := b.client(t)
	email := "super@acme.example"

	status, body, _ := c.do(http.MethodPost, "/signin", url.Values{"csrf": {c.csrf("/signin")}, "email": {email}, "password": {"wrong password!"}}, nil)
	if status != http.StatusUnauthorized || !strings.Contains(body, "Wrong email or password") {
		t.Fatalf("wrong password: %d", status)
	}
	status, _, h := c.do(http.MethodPost, "/signin", url.Values{"csrf": {c.csrf("/signin")}, "email": {email}, "password": {testPassword}, "next": {"/"}}, nil)
	if status != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), "/signin/totp") {
		t.Fatalf("password step: %d → %s", status, h.Get("Location"))
	}
	if status, _, _ := c.do(http.MethodGet, "/settings", nil, nil); status != http.StatusSeeOther {
		t.Fatalf("settings before the second factor: %d, want a redirect to sign-in", status)
	}
	code := b.code(t, email)
	token := c.csrf("/signin/totp")
	if status, body, _ := c.do(http.MethodPost, "/signin/totp", url.Values{"csrf": {token}, "code": {code}, "next": {"/"}}, nil); status != http.StatusSeeOther {
		t.Fatalf("TOTP: %d\n%s", status, body)
	}
	if status, _, _ := c.do(http.MethodGet, "/settings", nil, nil); status != http.StatusOK {
		t.Fatalf("settings after sign-in: %d", status)
	}

	// The same code again, from a second browser: refused (replay).
	c2 := b.client(t)
	c2.do(http.MethodPost, "/signin", url.Values{"csrf": {c2.csrf("/signin")}, "email": {email}, "password": {testPassword}}, nil)
	status, body, _ = c2.do(http.MethodPost, "/signin/totp", url.Values{"csrf": {c2.csrf("/signin/totp")}, "code": {code}}, nil)
	if status != http.StatusUnauthorized || !strings.Contains(body, "used already") {
		t.Fatalf("replayed TOTP code: %d", status)
	}

	// A password change ends every session.
	must(t, b.st.SetPassword(context.Background(), b.tenant.ID, b.logins[store.RoleSuper].ID, hashPassword("another long password")))
	if status, _, _ := c.do(http.MethodGet, "/settings", nil, nil); status != http.StatusSeeOther {
		t.Fatalf("after a password change: %d, want a redirect to sign-in", status)
	}
}

func TestSignInThrottled(t *testing.T) {
	t.Parallel()
	b := setup(t, 0)
	c := b.client(t)
	for range maxLoginFailures {
		c.do(http.MethodPost, "/signin", url.Values{"csrf": {c.csrf("/signin")}, "email": {"helpdesk@acme.example"}, "password": {"nope"}}, nil)
	}
	status, body, _ := c.do(http.MethodPost, "/signin", url.Values{"csrf": {c.csrf("/signin")}, "email": {"helpdesk@acme.example"}, "password": {testPassword}}, nil)
	if status != http.StatusTooManyRequests || !strings.Contains(body, "Too many failed attempts") {
		t.Fatalf("after %d failures: %d", maxLoginFailures, status)
	}
}

func TestCSRFAndCrossOriginRefused(t *testing.T) {
	t.Parallel()
	b := setup(t, 2)
	c := b.client(t)
	c.signIn("helpdesk@acme.example")
	users, err := b.st.EndUsers(context.Background(), b.tenant.ID, store.EndUserFilter{})
	must(t, err)
	path := fmt.Sprintf("/end-users/%d/self-serve", users[0].ID)
	if status, _, _ := c.do(http.MethodPost, path, url.Values{"enabled": {"true"}}, nil); status != http.StatusForbidden {
		t.Errorf("POST without the CSRF token: %d, want 403", status)
	}
	token := c.csrf("/")
	if status, _, _ := c.do(http.MethodPost, path, url.Values{"enabled": {"true"}, "csrf": {token}}, map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}); status != http.StatusForbidden {
		t.Errorf("POST from another origin: %d, want 403", status)
	}
	if u, _ := b.st.EndUser(context.Background(), b.tenant.ID, users[0].ID); u.SelfServe {
		t.Fatal("a refused POST changed the switch")
	}
	if status, _, _ := c.do(http.MethodPost, path, url.Values{"enabled": {"true"}, "csrf": {token}}, nil); status != http.StatusSeeOther {
		t.Errorf("POST with the token: %d, want 303", status)
	}
}

func TestRolesAndTenantScope(t *testing.T) {
	t.Parallel()
	b := setup(t, 2)
	ctx := context.Background()
	desk := b.client(t)
	desk.signIn("helpdesk@acme.example")
	_, body, _ := desk.do(http.MethodGet, "/settings", nil, nil)
	if strings.Contains(body, `id="tenant-switch"`) {
		t.Error("helpdesk sees the tenant switch control")
	}
	status, _, _ := desk.do(http.MethodPost, "/settings", url.Values{"csrf": {desk.csrf("/settings")}, "self_serve": {"false"}}, nil)
	if status != http.StatusForbidden {
		t.Errorf("helpdesk forging the tenant switch: %d, want 403", status)
	}
	if tn, _ := b.st.Tenant(ctx, b.tenant.ID); !tn.SelfServe {
		t.Fatal("the forged POST turned self-serve off")
	}
	rival := b.client(t)
	rival.signIn("super@rival.example")
	if status, _, _ := rival.do(http.MethodGet, fmt.Sprintf("/customers/%d", b.cust.ID), nil, nil); status != http.StatusNotFound {
		t.Errorf("another tenant's customer: %d, want 404", status)
	}
	users, _ := b.st.EndUsers(ctx, b.tenant.ID, store.EndUserFilter{})
	if status, _, _ := rival.do(http.MethodPost, fmt.Sprintf("/end-users/%d/self-serve", users[0].ID), url.Values{"csrf": {rival.csrf("/")}, "enabled": {"true"}}, nil); status != http.StatusNotFound {
		t.Errorf("another tenant's end user: %d, want 404", status)
	}
}

func TestSwitchLockedByOverride(t *testing.T) {
	t.Parallel()
	b := setup(t, 3)
	ctx := context.Background()
	c := b.client(t)
	c.signIn("super@acme.example")
	if status, _, _ := c.do(http.MethodPost, "/settings", url.Values{"csrf": {c.csrf("/settings")}, "self_serve": {"false"}}, nil); status != http.StatusSeeOther {
		t.Fatalf("turning the override off: %d", status)
	}
	_, body, _ := c.do(http.MethodGet, fmt.Sprintf("/customers/%d", b.cust.ID), nil, nil)
	if n := strings.Count(body, `aria-disabled="true"`); n != 3 {
		t.Errorf("%d greyed switches, want 3", n)
	}
	if !strings.Contains(body, "Contoso &lt;b&gt;Ltd&lt;/b&gt;") {
		t.Error("the customer's name is not escaped")
	}
	users, _ := b.st.EndUsers(ctx, b.tenant.ID, store.EndUserFilter{})
	status, body, _ := c.do(http.MethodPost, fmt.Sprintf("/end-users/%d/self-serve", users[0].ID), url.Values{"csrf": {c.csrf("/settings")}, "enabled": {"true"}}, nil)
	if status != http.StatusConflict || !strings.Contains(body, "locked by the tenant override") {
		t.Errorf("forged toggle while locked: %d", status)
	}
}

func TestInlineEditRefusesBadPhone(t *testing.T) {
	t.Parallel()
	b := setup(t, 1)
	ctx := context.Background()
	c := b.client(t)
	c.signIn("helpdesk@acme.example")
	users, _ := b.st.EndUsers(ctx, b.tenant.ID, store.EndUserFilter{})
	u := users[0]
	token := c.csrf("/")
	status, body, _ := c.do(http.MethodPost, fmt.Sprintf("/end-users/%d/contact", u.ID), url.Values{"csrf": {token}, "field": {"mobile"}, "value": {"+1 555 0000001"}}, map[string]string{"HX-Request": "true"})
	if status != http.StatusUnprocessableEntity || !strings.Contains(body, `role="alert"`) {
		t.Fatalf("bad phone: %d\n%s", status, body)
	}
	if after, _ := b.st.EndUser(ctx, b.tenant.ID, u.ID); after.Mobile != u.Mobile {
		t.Fatalf("a refused edit saved %q", after.Mobile)
	}
	status, _, _ = c.do(http.MethodPost, fmt.Sprintf("/end-users/%d/contact", u.ID), url.Values{"csrf": {token}, "field": {"mobile"}, "value": {"+1 202 555 0199"}, "extra": {"x"}}, nil)
	if status != http.StatusBadRequest {
		t.Errorf("unknown field: %d, want 400", status)
	}
	status, body, _ = c.do(http.MethodPost, fmt.Sprintf("/end-users/%d/contact", u.ID), url.Values{"csrf": {token}, "field": {"mobile"}, "value": {"+1 202 555 0199"}}, map[string]string{"HX-Request": "true"})
	if status != http.StatusOK || !strings.Contains(body, "12025550199") || !strings.Contains(body, "typed") {
		t.Fatalf("good phone: %d\n%s", status, body)
	}
}

func TestEndUsersPageWeighsUnder150KB(t *testing.T) {
	t.Parallel()
	b := setup(t, pageSize+5)
	c := b.client(t)
	c.signIn("helpdesk@acme.example")
	status, body, _ := c.do(http.MethodGet, fmt.Sprintf("/customers/%d", b.cust.ID), nil, nil)
	if status != http.StatusOK || strings.Count(body, `class="pick"`) != pageSize {
		t.Fatalf("page: %d with %d rows", status, strings.Count(body, `class="pick"`))
	}
	// What travels: the browser asks for gzip.
	gz := map[string]string{"Accept-Encoding": "gzip"}
	_, zipped, h := c.do(http.MethodGet, fmt.Sprintf("/customers/%d", b.cust.ID), nil, gz)
	if h.Get("Content-Encoding") != "gzip" {
		t.Fatal("the page is not compressed")
	}
	total := len(zipped)
	for _, asset := range []string{"/static/console.css", "/static/console.js", "/static/htmx.min.js"} {
		status, b, _ := c.do(http.MethodGet, asset, nil, gz)
		if status != http.StatusOK {
			t.Fatalf("%s: %d", asset, status)
		}
		total += len(b)
	}
	t.Logf("first load of a page of %d end users: %d bytes compressed (the page alone %d bytes uncompressed)", pageSize, total, len(body))
	if total > 150<<10 {
		t.Errorf("first load weighs %d bytes, over 150 KB", total)
	}
}

// TestInstallCodePostRedirectGet: the install code is made by a POST that
// needs the CSRF token and redirects; the page it leads to shows the code
// once, and refreshing it shows none and makes none.
func TestInstallCodePostRedirectGet(t *testing.T) {
	t.Parallel()
	b := setup(t, 0)
	ctx := context.Background()
	co, _, err := b.st.UpsertConnection(ctx, store.Connection{TenantID: b.tenant.ID, CustomerID: &b.cust.ID, Name: "contoso-agent", Kind: connectors.KindAgent,
		Settings: []byte(`{"directory":"ad"}`)}, false)
	must(t, err)
	c := b.client(t)
	c.signIn("super@acme.example")
	page := fmt.Sprintf("/connections/%d", co.ID)
	made := func() int {
		t.Helper()
		es, err := b.st.AuditLog(ctx, b.tenant.ID, store.AuditFilter{Action: "agent.install_code_created", Limit: 10})
		must(t, err)
		return len(es)
	}
	if status, _, _ := c.do(http.MethodPost, page+"/agent/install-code", url.Values{}, nil); status != http.StatusForbidden || made() != 0 {
		t.Fatalf("POST without the CSRF token: %d, %d codes made; want 403 and none", status, made())
	}
	status, body, h := c.do(http.MethodPost, page+"/agent/install-code", url.Values{"csrf": {c.csrf(page)}}, nil)
	if status != http.StatusSeeOther || h.Get("Location") != page+"?done=install-code" || strings.Contains(body, "ssa_") {
		t.Fatalf("POST: %d to %q, want 303 to %s?done=install-code without the code\n%s", status, h.Get("Location"), page, body)
	}
	status, body, h = c.do(http.MethodGet, page+"?done=install-code", nil, nil)
	code := regexp.MustCompile(`id="install-code-value">(ssa_[^<]+)<`).FindStringSubmatch(body)
	if status != http.StatusOK || code == nil || h.Get("Cache-Control") != "no-store" {
		t.Fatalf("the page the POST led to: %d, cache %q, code %v\n%s", status, h.Get("Cache-Control"), code, body)
	}
	for range 2 {
		status, body, _ = c.do(http.MethodGet, page+"?done=install-code", nil, nil)
		if status != http.StatusOK || strings.Contains(body, code[1]) || !strings.Contains(body, `id="install-code-gone"`) {
			t.Fatalf("refreshed: %d, the code shown again or no word of it\n%s", status, body)
		}
	}
	if n := made(); n != 1 {
		t.Fatalf("%d install codes made, want 1", n)
	}
}

// TestConnectionFormHelp: each connector field shows its help text under
// its label, and the field is described by it (and by its error, when it
// has one).
func TestConnectionFormHelp(t *testing.T) {
	t.Parallel()
	b := setup(t, 0)
	c := b.client(t)
	c.signIn("super@acme.example")
	status, body, _ := c.do(http.MethodGet, "/connections/new?kind=hudu", nil, nil)
	if status != http.StatusOK {
		t.Fatalf("form: %d", status)
	}
	for _, want := range []string{
		`<p class="hint field-help" id="settings.base_url-help">Your Hudu address, e.g. https://acme.huducloud.com.</p>`,
		`<input id="settings.base_url" name="settings.base_url" value=""  autocomplete="off" aria-describedby="settings.base_url-help">`,
		`id="secrets.api_key-help">Hudu API key, from Admin › API Keys.</p>`,
		`<textarea id="settings.email_fields" name="settings.email_fields" rows="3" aria-describedby="settings.email_fields-help">`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the form lacks %s", want)
		}
	}
	status, body, _ = c.do(http.MethodPost, "/connections", url.Values{"csrf": {c.csrf("/connections/new?kind=hudu")}, "kind": {"hudu"}, "name": {"h"},
		"settings.base_url": {"https://acme.huducloud.com"}, "settings.page_size": {"lots"}, "secrets.api_key": {"k"}}, nil)
	if want := `aria-invalid="true" aria-describedby="settings.page_size-help settings.page_size-error"`; status != http.StatusBadRequest || !strings.Contains(body, want) {
		t.Errorf("refused form: %d, lacks %s", status, want)
	}
}
