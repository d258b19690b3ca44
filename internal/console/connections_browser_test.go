package console

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"selfserve/internal/store"
)

// byID selects an element by id (ours hold dots: settings.url).
func byID(id string) chromedp.CSS { return chromedp.CSS(fmt.Sprintf(`[id=%q]`, id)) }

// silentLDAP is an endpoint that accepts connections and closes them at
// once: a domain controller that is not there.
func silentLDAP(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return ln.Addr().String()
}

func TestBrowserCreateLDAPConnectionAndTest(t *testing.T) {
	b := setup(t, 0)
	ctx := context.Background()
	addr := silentLDAP(t)
	tb := tab(t, browser(t))
	b.browserSignIn(t, tb, "super@acme.example")
	run(t, tb, chromedp.Navigate(b.srv.URL+"/connections"), chromedp.WaitVisible(chromedp.CSS("#new-connection")))
	check(t, tb, "connections")
	run(t, tb, chromedp.Click(chromedp.CSS("#new-connection")), chromedp.WaitVisible(chromedp.CSS(`a[href="/connections/new?kind=ad"]`)))
	check(t, tb, "connection-kinds")
	run(t, tb, chromedp.Click(chromedp.CSS(`a[href="/connections/new?kind=ad"]`)), chromedp.WaitVisible(byID("settings.url")))
	if n := get(t, tb, chromedp.Evaluate[int](`document.querySelectorAll("input[type=password]").length`)); n != 2 {
		t.Errorf("%d secret fields on the AD form, want 2 (bind_dn, bind_password)", n)
	}
	run(t, tb, chromedp.SendKeys(byID("name"), "contoso-dc"),
		chromedp.SetValue(byID("customer_id"), fmt.Sprint(b.cust.ID)),
		chromedp.SendKeys(byID("settings.url"), "ldap://"+addr),
		chromedp.SendKeys(byID("settings.base_dn"), "DC=contoso,DC=example"),
		chromedp.Click(byID("settings.allow_insecure")),
		chromedp.SendKeys(byID("settings.group_dns"), "CN=Staff,DC=contoso,DC=example"+kb.Enter+"CN=Temps,DC=contoso,DC=example"),
		chromedp.SendKeys(byID("secrets.bind_dn"), `CONTOSO\svc-selfserve`),
		chromedp.SendKeys(byID("secrets.bind_password"), "S3cret-bind!"))
	check(t, tb, "connection-new-ad")
	run(t, tb, chromedp.EmulateViewport(390, 844))
	if get(t, tb, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth + 1`)) {
		t.Error("the connection form scrolls sideways at 390 px")
	}
	check(t, tb, "connection-new-ad-390px")
	run(t, tb, chromedp.EmulateViewport(1280, 900))
	run(t, tb, chromedp.Submit(byID("connection-form")), chromedp.WaitVisible(chromedp.CSS("#test-button")))
	body := get(t, tb, chromedp.Text(chromedp.CSS("main")))
	if !strings.Contains(body, "Connection created") || !strings.Contains(body, "set (never shown)") || strings.Contains(body, "S3cret-bind!") || strings.Contains(body, "svc-selfserve") {
		t.Errorf("connection page after create: %q", body)
	}
	conns, err := b.st.Connections(ctx, b.tenant.ID)
	must(t, err)
	var conn store.Connection
	for _, c := range conns {
		if c.Name == "contoso-dc" {
			conn = c
		}
	}
	if conn.ID == 0 || len(conn.SealedSecrets) == 0 || strings.Contains(string(conn.Settings), "S3cret") || !strings.Contains(string(conn.Settings), `"group_dns":["CN=Staff,DC=contoso,DC=example","CN=Temps,DC=contoso,DC=example"]`) {
		t.Fatalf("stored connection: %+v settings %s", conn, conn.Settings)
	}

	// The test runs the API's test and shows its category, not the
	// network's error.
	run(t, tb, htmxReady(), chromedp.Click(chromedp.CSS("#test-button")), chromedp.WaitVisible(chromedp.CSS("#test-result .test-result")))
	result := get(t, tb, chromedp.Text(chromedp.CSS("#test-result")))
	if !strings.Contains(result, "Test failed: unavailable") || strings.Contains(result, addr) || strings.Contains(strings.ToLower(result), "eof") {
		t.Errorf("test result: %q", result)
	}
	check(t, tb, "connection-test")

	// Editing with the secrets left empty keeps them.
	run(t, tb, chromedp.Click(chromedp.CSS("#edit-connection")), chromedp.WaitVisible(byID("settings.page_size")))
	if v := get(t, tb, chromedp.Evaluate[string](`document.getElementById("secrets.bind_password").value`)); v != "" {
		t.Errorf("the edit form shows a secret: %q", v)
	}
	check(t, tb, "connection-edit")
	run(t, tb, chromedp.SendKeys(byID("settings.page_size"), "200"), chromedp.Submit(byID("connection-form")), chromedp.WaitVisible(chromedp.CSS(".notice")))
	after, err := b.st.Connection(ctx, b.tenant.ID, conn.ID)
	must(t, err)
	if string(after.SealedSecrets) != string(conn.SealedSecrets) || !strings.Contains(string(after.Settings), `"page_size":200`) {
		t.Errorf("after the edit: settings %s, secrets kept %v", after.Settings, string(after.SealedSecrets) == string(conn.SealedSecrets))
	}

	// A new address without the secrets drops them (they never follow the
	// connection somewhere new); one typed secret is kept, the other asked
	// for by the test.
	run(t, tb, chromedp.Click(chromedp.CSS("#edit-connection")), chromedp.WaitVisible(byID("settings.url")),
		chromedp.SetValue(byID("settings.url"), "ldap://"+silentLDAP(t)), chromedp.Submit(byID("connection-form")),
		chromedp.WaitVisible(chromedp.CSS("main .warning")))
	if after, _ = b.st.Connection(ctx, b.tenant.ID, conn.ID); len(after.SealedSecrets) != 0 {
		t.Error("the secrets followed the connection to a new address")
	}
	run(t, tb, chromedp.Click(chromedp.CSS("#edit-connection")), chromedp.WaitVisible(byID("secrets.bind_dn")),
		chromedp.SendKeys(byID("secrets.bind_dn"), `CONTOSO\svc-selfserve`), chromedp.Submit(byID("connection-form")),
		chromedp.WaitVisible(chromedp.CSS(".notice")), htmxReady(), chromedp.Click(chromedp.CSS("#test-button")),
		chromedp.WaitVisible(chromedp.CSS("#test-result .test-result")))
	if result := get(t, tb, chromedp.Text(chromedp.CSS("#test-result"))); !strings.Contains(result, "Test failed:") {
		t.Errorf("test with one secret of two: %q", result)
	}
	if after, _ = b.st.Connection(ctx, b.tenant.ID, conn.ID); len(after.SealedSecrets) == 0 {
		t.Error("the typed secret was not stored")
	}
}

func TestBrowserConnectionBadInput(t *testing.T) {
	b := setup(t, 0)
	ctx := context.Background()
	before, err := b.st.Connections(ctx, b.tenant.ID)
	must(t, err)
	tb := tab(t, browser(t))
	b.browserSignIn(t, tb, "super@acme.example")
	run(t, tb, chromedp.Navigate(b.srv.URL+"/connections/new?kind=nope"), chromedp.WaitVisible(chromedp.CSS("main h1")))
	if body := get(t, tb, chromedp.Text(chromedp.CSS("main"))); !strings.Contains(body, "not a connector kind") {
		t.Errorf("unknown kind page: %q", body)
	}
	if status := post(t, tb, "/connections", "kind=nope&name=x", true); status != http.StatusBadRequest {
		t.Errorf("POST of an unknown kind: %d, want 400", status)
	}
	if status := post(t, tb, "/connections", "kind=hudu&name=x&colour=red", true); status != http.StatusBadRequest {
		t.Errorf("POST with an unknown field: %d, want 400", status)
	}

	// A script for a name: refused next to the field, shown as text.
	run(t, tb, chromedp.Navigate(b.srv.URL+"/connections/new?kind=hudu"), chromedp.WaitVisible(byID("name")),
		chromedp.SendKeys(byID("name"), `<script>window.pwned=1</script>`),
		chromedp.SendKeys(byID("settings.base_url"), "https://acme.huducloud.com"),
		chromedp.SendKeys(byID("settings.page_size"), "lots"),
		chromedp.SendKeys(byID("secrets.api_key"), "hudu-key-1"),
		chromedp.Submit(byID("connection-form")), chromedp.WaitVisible(byID("settings.page_size-error")))
	if msg := get(t, tb, chromedp.Text(byID("settings.page_size-error"))); !strings.Contains(msg, "must be a number") {
		t.Errorf("page_size error: %q", msg)
	}
	if v := get(t, tb, chromedp.Evaluate[string](`document.getElementById("secrets.api_key").value`)); v != "" {
		t.Errorf("the form shows the typed secret again: %q", v)
	}
	run(t, tb, chromedp.SetValue(byID("settings.page_size"), "50"), chromedp.SendKeys(byID("secrets.api_key"), "hudu-key-1"),
		chromedp.Submit(byID("connection-form")), chromedp.WaitVisible(byID("name-error")))
	msg := get(t, tb, chromedp.Text(byID("name-error")))
	if !strings.Contains(msg, `"<script>window.pwned=1</script>" is not a valid name`) {
		t.Errorf("name error: %q", msg)
	}
	if pwned := get(t, tb, chromedp.Evaluate[bool](`window.pwned === 1 || document.querySelectorAll("main script").length > 0`)); pwned {
		t.Fatal("a script typed as a name ran")
	}
	check(t, tb, "connection-form-errors")

	// Too long a value: refused next to its field.
	run(t, tb, chromedp.Navigate(b.srv.URL+"/connections/new?kind=ad"), chromedp.WaitVisible(byID("name")),
		chromedp.SendKeys(byID("name"), "long-dc"), chromedp.SetValue(byID("customer_id"), fmt.Sprint(b.cust.ID)),
		chromedp.SendKeys(byID("settings.url"), "ldaps://dc.contoso.example"),
		chromedp.SetValue(byID("settings.base_dn"), "DC="+strings.Repeat("x", 3000)),
		chromedp.Submit(byID("connection-form")), chromedp.WaitVisible(byID("settings.base_dn-error")))
	if msg := get(t, tb, chromedp.Text(byID("settings.base_dn-error"))); !strings.Contains(msg, "longer than 2048") {
		t.Errorf("base_dn error: %q", msg)
	}
	after, err := b.st.Connections(ctx, b.tenant.ID)
	must(t, err)
	if len(after) != len(before) {
		t.Fatalf("refused forms saved %d connections", len(after)-len(before))
	}
}

func TestBrowserConnectionHelpdeskAndOtherTenant(t *testing.T) {
	b := setup(t, 0)
	bctx := browser(t)
	tb := tab(t, bctx)
	b.browserSignIn(t, tb, "helpdesk@acme.example")
	conn := fmt.Sprintf("/connections/%d", b.conn.ID)
	run(t, tb, chromedp.Navigate(b.srv.URL+"/connections"), chromedp.WaitVisible(chromedp.CSS("main h1")))
	run(t, tb, chromedp.Navigate(b.srv.URL+conn), chromedp.WaitVisible(chromedp.CSS("#import")))
	if n := get(t, tb, chromedp.Evaluate[int](`document.querySelectorAll("#new-connection, #edit-connection, #test-button, #install-code-button").length`)); n != 0 {
		t.Errorf("helpdesk sees %d controls to create, edit or test", n)
	}
	check(t, tb, "connection-helpdesk")
	for _, p := range []struct{ path, body string }{
		{"/connections", "kind=file&name=forged&customer_id=" + fmt.Sprint(b.cust.ID) + "&settings.path=x.csv"},
		{conn, "settings.path=y.csv"},
		{conn + "/test", ""},
	} {
		if status := post(t, tb, p.path, p.body, true); status != http.StatusForbidden {
			t.Errorf("helpdesk's forged POST %s: %d, want 403", p.path, status)
		}
	}
	if status := get(t, tb, chromedp.Evaluate[int](`fetch("/connections/new?kind=file").then(r => r.status)`, chromedp.EvalAwaitPromise)); status != http.StatusForbidden {
		t.Errorf("helpdesk's new-connection page: %d, want 403", status)
	}

	rival := tab(t, bctx)
	b.browserSignIn(t, rival, "super@rival.example")
	for _, path := range []string{conn, conn + "/edit"} {
		if status := get(t, rival, chromedp.Evaluate[int](fmt.Sprintf(`fetch(%q).then(r => r.status)`, path), chromedp.EvalAwaitPromise)); status != http.StatusNotFound {
			t.Errorf("another tenant's %s: %d, want 404", path, status)
		}
	}
	for _, path := range []string{conn, conn + "/test", conn + "/agent/install-code"} {
		if status := post(t, rival, path, "", true); status != http.StatusNotFound {
			t.Errorf("another tenant's POST %s: %d, want 404", path, status)
		}
	}
}

func TestBrowserAgentInstallCodeAndRevoke(t *testing.T) {
	b := setup(t, 0)
	ctx := context.Background()
	tb := tab(t, browser(t))
	b.browserSignIn(t, tb, "super@acme.example")
	run(t, tb, chromedp.Navigate(b.srv.URL+"/connections/new?kind=agent"), chromedp.WaitVisible(byID("name")),
		chromedp.SendKeys(byID("name"), "contoso-agent"), chromedp.SetValue(byID("customer_id"), fmt.Sprint(b.cust.ID)),
		chromedp.SendKeys(byID("settings.directory"), "ad"),
		chromedp.Submit(byID("connection-form")), chromedp.WaitVisible(chromedp.CSS("#agent-state")))
	if state := get(t, tb, chromedp.Text(chromedp.CSS("#agent-state"))); state != "not enrolled" {
		t.Errorf("a new agent connection's agent: %q", state)
	}
	page := get(t, tb, chromedp.Location())
	run(t, tb, chromedp.Click(chromedp.CSS("#install-code-button")), chromedp.WaitVisible(chromedp.CSS("#install-code")))
	code := get(t, tb, chromedp.Text(chromedp.CSS("#install-code-value")))
	command := get(t, tb, chromedp.Text(chromedp.CSS("#install-command")))
	if !strings.HasPrefix(code, "ssa_") || !strings.Contains(command, "selfserve agent enrol --server https://selfserve.example --code "+code) {
		t.Fatalf("install code %q, command %q", code, command)
	}
	check(t, tb, "agent-install-code")
	// The POST redirected: refreshing the page it led to neither shows the
	// code again nor makes another.
	conn, _, _ := strings.Cut(page, "?")
	if at := get(t, tb, chromedp.Location()); at != conn+"?done=install-code" {
		t.Errorf("the install code's POST led to %s, want a redirect to %s?done=install-code", at, conn)
	}
	run(t, tb, chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("#install-code-gone")))
	if html := get(t, tb, chromedp.Evaluate[string](`document.documentElement.outerHTML`)); strings.Contains(html, code) || strings.Contains(html, `id="install-code-value"`) {
		t.Error("the install code is shown again after a refresh")
	}
	if es, err := b.st.AuditLog(ctx, b.tenant.ID, store.AuditFilter{Action: "agent.install_code_created", Limit: 10}); err != nil || len(es) != 1 {
		t.Errorf("%d install codes made (%v), want 1: a refresh made another", len(es), err)
	}
	// Shown once: the connection's page does not show it again.
	run(t, tb, chromedp.Navigate(page), chromedp.WaitVisible(chromedp.CSS("#agent-state")))
	if html := get(t, tb, chromedp.Evaluate[string](`document.documentElement.outerHTML`)); strings.Contains(html, code) {
		t.Error("the install code is shown again")
	}

	// The agent enrols with it (as `selfserve agent enrol` would) and shows.
	sum := sha256.Sum256([]byte(code))
	agent, err := b.st.EnrolAgent(ctx, sum[:], make([]byte, 32), make([]byte, 32), "DC01", "1.4.2")
	must(t, err)
	run(t, tb, chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("#revoke-agent")))
	body := get(t, tb, chromedp.Text(chromedp.CSS("#agent")))
	if !strings.Contains(body, "offline since") || !strings.Contains(body, "DC01") || !strings.Contains(body, "1.4.2") || !regexp.MustCompile(`Last sync\s+never`).MatchString(body) {
		t.Errorf("enrolled agent: %q", body)
	}
	check(t, tb, "agent-enrolled")
	run(t, tb, chromedp.Navigate(b.srv.URL+"/connections"), chromedp.WaitVisible(chromedp.CSS("main table")))
	if list := get(t, tb, chromedp.Text(chromedp.CSS("main table"))); !strings.Contains(list, "agent offline since") {
		t.Errorf("the connections list does not show the agent's state: %q", list)
	}
	run(t, tb, chromedp.Navigate(page), chromedp.WaitVisible(chromedp.CSS("#revoke-agent")))
	run(t, tb, chromedp.Click(chromedp.CSS("#revoke-agent")), chromedp.WaitVisible(chromedp.CSS("#revoked")))
	if state := get(t, tb, chromedp.Text(chromedp.CSS("#agent-state"))); state != "not enrolled" {
		t.Errorf("after revoking: %q", state)
	}
	if a, err := b.st.AgentForAuth(ctx, agent.ID); err == nil && a.RevokedAt == nil {
		t.Error("the agent is not revoked")
	}
}
