package console

import (
	"context"
	_ "embed"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"selfserve/connectors"
	"selfserve/connectors/file"
	"selfserve/internal/importer"
	"selfserve/internal/rules"
	"selfserve/internal/store"
)

// axeSource is axe-core (npm axe-core 4.14.1, MPL-2.0), injected into each
// page to check accessibility.
//
//go:embed testdata/axe.min.js
var axeSource string

const chromiumPath = "/usr/bin/chromium"

// The package's tests share one headless Chromium (started by the first
// test that needs it, stopped by TestMain); each test works in tabs of its
// own browser context (own cookies).
var (
	chromium     context.Context
	chromiumErr  error
	chromiumOnce sync.Once
	stopChromium = func() {}
)

func TestMain(m *testing.M) {
	code := m.Run()
	stopChromium()
	os.Exit(code)
}

// browser returns the shared Chromium, starting it on first use.
func browser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Skip("chromium is not installed (apt install chromium)")
	}
	chromiumOnce.Do(func() {
		dir, err := os.MkdirTemp("", "console-chromium-")
		if err != nil {
			chromiumErr = err
			return
		}
		opts := []chromedp.ExecAllocatorOption{
			chromedp.ExecPath(chromiumPath), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
			chromedp.NoDefaultBrowserCheck, chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
			chromedp.Flag("disable-sync", true), chromedp.UserDataDir(dir), chromedp.WindowSize(1280, 900),
		}
		actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
		bctx, cancel2 := chromedp.NewContext(actx)
		stopChromium = func() { cancel2(); cancel(); os.RemoveAll(dir) }
		chromium, chromiumErr = bctx, chromedp.Do(bctx)
	})
	if chromiumErr != nil {
		t.Fatalf("start chromium: %v", chromiumErr)
	}
	return chromium
}

// tab opens an isolated tab (fresh cookies) with a time limit.
func tab(t *testing.T, bctx context.Context) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(bctx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	ctx, cancel2 := context.WithTimeout(ctx, 240*time.Second)
	t.Cleanup(cancel2)
	return ctx
}

func run(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		t.Fatalf("browser at %s: %v", loc, err)
	}
}

// get runs an action that returns a value.
func get[T any](t *testing.T, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	return v
}

// check runs axe-core on the page (no serious or critical violation) and
// saves a screenshot as name.png in the test's artifact directory.
func check(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	run(t, ctx, chromedp.Evaluate[chromedp.Void](axeSource))
	violations := get(t, ctx, chromedp.Evaluate[[]string](`axe.run(document, {resultTypes: ["violations"]}).then(r => r.violations.filter(v => v.impact === "serious" || v.impact === "critical").map(v => v.id + ": " + v.help + " at " + v.nodes.slice(0, 3).map(n => n.target.join(" ")).join(" | ")))`, chromedp.EvalAwaitPromise))
	for _, v := range violations {
		t.Errorf("axe on %s: %s", name, v)
	}
	png := get(t, ctx, chromedp.FullScreenshot(100))
	path := filepath.Join(t.ArtifactDir(), name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	if dir := os.Getenv("CONSOLE_SCREENSHOTS"); dir != "" {
		_ = os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644)
	}
}

// htmxReady waits until the page's scripts have run (htmx handles the
// in-place edits).
func htmxReady() chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Poll[bool]("window.htmx !== undefined && document.readyState === 'complete'")(ctx, t)
		return err
	})
}

// signIn signs email in through the sign-in form (and the TOTP form when
// the login has a second factor), with the keyboard only.
func (b *bundle) browserSignIn(t *testing.T, ctx context.Context, email string) {
	t.Helper()
	run(t, ctx, chromedp.Navigate(b.srv.URL+"/signin"), chromedp.WaitVisible(chromedp.CSS("#email")),
		chromedp.SendKeys(chromedp.CSS("#email"), email), chromedp.SendKeys(chromedp.CSS("#password"), testPassword+kb.Enter))
	if _, ok := b.secrets[email]; ok {
		run(t, ctx, chromedp.WaitVisible(chromedp.CSS("#code")), chromedp.SendKeys(chromedp.CSS("#code"), b.code(t, email)+kb.Enter))
	}
	run(t, ctx, chromedp.WaitVisible(chromedp.CSS("form.signout")))
}

// post sends a form POST from the page with its CSRF token (a forged
// request a script could send), returning the status.
func post(t *testing.T, ctx context.Context, path, body string, withToken bool) int {
	t.Helper()
	token := `""`
	if withToken {
		token = `document.querySelector("input[name=csrf]").value`
	}
	return get(t, ctx, chromedp.Evaluate[int](fmt.Sprintf(`fetch(%q, {method: "POST", headers: {"Content-Type": "application/x-www-form-urlencoded"}, body: "csrf=" + encodeURIComponent(%s) + "&" + %q}).then(r => r.status)`, path, token, body), chromedp.EvalAwaitPromise))
}

func TestBrowserSignInWithTOTP(t *testing.T) {
	b := setup(t, 20)
	ctx := tab(t, browser(t))
	run(t, ctx, chromedp.Navigate(b.srv.URL+"/signin"), chromedp.WaitVisible(chromedp.CSS("#email")))
	check(t, ctx, "signin")
	run(t, ctx, chromedp.SendKeys(chromedp.CSS("#email"), "super@acme.example"),
		chromedp.SendKeys(chromedp.CSS("#password"), testPassword+kb.Enter), chromedp.WaitVisible(chromedp.CSS("#code")))
	check(t, ctx, "totp")
	run(t, ctx, chromedp.SendKeys(chromedp.CSS("#code"), "000000"+kb.Enter), chromedp.WaitVisible(chromedp.CSS("#code-error")))
	run(t, ctx, chromedp.SendKeys(chromedp.CSS("#code"), b.code(t, "super@acme.example")+kb.Enter), chromedp.WaitVisible(chromedp.CSS("form.signout")))
	who := get(t, ctx, chromedp.Text(chromedp.CSS(".who")))
	if !strings.Contains(who, "super@acme.example") {
		t.Fatalf("signed in as %q", who)
	}
	check(t, ctx, "customers")
}

func TestBrowserOverrideGreysToggles(t *testing.T) {
	b := setup(t, 12)
	ctx := tab(t, browser(t))
	b.browserSignIn(t, ctx, "super@acme.example")
	run(t, ctx, chromedp.Navigate(b.srv.URL+"/settings"), chromedp.WaitVisible(chromedp.CSS("#tenant-switch")))
	check(t, ctx, "settings")
	run(t, ctx, chromedp.Focus(chromedp.CSS("#tenant-switch")), chromedp.KeyEvent(kb.Enter), chromedp.WaitVisible(chromedp.CSS(`#tenant-switch[aria-checked="false"]`)))
	run(t, ctx, chromedp.Navigate(fmt.Sprintf("%s/customers/%d", b.srv.URL, b.cust.ID)), chromedp.WaitVisible(chromedp.CSS("table.endusers")))
	total := get(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll("table.endusers tbody tr").length`))
	locked := get(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll("table.endusers tbody .switch.locked[aria-disabled=true]").length`))
	if total != 12 || locked != total {
		t.Fatalf("%d of %d toggles greyed", locked, total)
	}
	run(t, ctx, chromedp.Focus(chromedp.CSS(".switch.locked")))
	tip := get(t, ctx, chromedp.Evaluate[string](`getComputedStyle(document.activeElement.querySelector(".tip")).display + " " + document.activeElement.querySelector(".tip").textContent`))
	if !strings.HasPrefix(tip, "block") || !strings.Contains(tip, "turned off for the whole tenant") {
		t.Errorf("focused greyed toggle shows %q", tip)
	}
	check(t, ctx, "endusers-locked")
	users, _ := b.st.EndUsers(context.Background(), b.tenant.ID, store.EndUserFilter{})
	if status := post(t, ctx, fmt.Sprintf("/end-users/%d/self-serve", users[0].ID), "enabled=true", true); status != http.StatusConflict {
		t.Errorf("forged toggle POST while locked: %d, want 409", status)
	}
}

func TestBrowserBulkEnable(t *testing.T) {
	b := setup(t, 12)
	b.addLogin(t, b.tenant, "manager@acme.example", store.RoleManager, false)
	ctx := tab(t, browser(t))
	b.browserSignIn(t, ctx, "manager@acme.example")
	page := fmt.Sprintf("%s/customers/%d", b.srv.URL, b.cust.ID)
	run(t, ctx, chromedp.Navigate(page), chromedp.WaitVisible(chromedp.CSS("table.endusers")))
	check(t, ctx, "endusers")
	run(t, ctx, chromedp.EmulateViewport(390, 844), chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("table.endusers")))
	overflow := get(t, ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth + 1`))
	if overflow {
		t.Error("the end-users page scrolls sideways at 390 px (only its table may)")
	}
	check(t, ctx, "endusers-390px")
	run(t, ctx, chromedp.EmulateViewport(1280, 900), chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("table.endusers")))

	// Two selected rows.
	run(t, ctx, chromedp.Click(chromedp.CSS(`table.endusers tbody tr:nth-child(1) input.pick`)),
		chromedp.Click(chromedp.CSS(`table.endusers tbody tr:nth-child(2) input.pick`)),
		chromedp.Click(chromedp.CSS(`#bulk button[value="true"]`)), chromedp.WaitVisible(chromedp.CSS(".notice")))
	notice := get(t, ctx, chromedp.Text(chromedp.CSS(".notice")))
	if !strings.Contains(notice, "enabled for 2") {
		t.Errorf("notice after enabling two: %q", notice)
	}
	countOn := func() int {
		n := 0
		users, _ := b.st.EndUsers(context.Background(), b.tenant.ID, store.EndUserFilter{})
		for _, u := range users {
			if u.SelfServe {
				n++
			}
		}
		return n
	}
	if n := countOn(); n != 2 {
		t.Fatalf("%d end users on after enabling two", n)
	}

	// Every user matching a filter (those without a mobile: Incomplete).
	run(t, ctx, chromedp.Navigate(page+"?status="+string(rules.StatusIncomplete)), chromedp.WaitVisible(chromedp.CSS("table.endusers")),
		chromedp.Click(chromedp.CSS(`#bulk input[value="filter"]`)), chromedp.Click(chromedp.CSS(`#bulk button[value="true"]`)),
		chromedp.WaitVisible(chromedp.CSS(".notice")))
	notice = get(t, ctx, chromedp.Text(chromedp.CSS(".notice")))
	if !strings.Contains(notice, "enabled for 3") {
		t.Errorf("notice after enabling the filter: %q", notice)
	}
	if n := countOn(); n != 5 {
		t.Fatalf("%d end users on after enabling the 3 Incomplete ones, want 5", n)
	}
}

func TestBrowserInlineEditBadPhone(t *testing.T) {
	b := setup(t, 5)
	b.addLogin(t, b.tenant, "engineer@acme.example", store.RoleEngineer, false)
	ctx := tab(t, browser(t))
	b.browserSignIn(t, ctx, "engineer@acme.example")
	users, _ := b.st.EndUsers(context.Background(), b.tenant.ID, store.EndUserFilter{})
	u := users[0]
	cell := fmt.Sprintf("#c-mobile-%d", u.ID)
	run(t, ctx, chromedp.Navigate(fmt.Sprintf("%s/customers/%d", b.srv.URL, b.cust.ID)), chromedp.WaitVisible(chromedp.CSS("table.endusers")),
		htmxReady(), chromedp.Focus(chromedp.CSS(cell+" button.cellbtn")), chromedp.KeyEvent(kb.Enter),
		chromedp.WaitVisible(chromedp.CSS(cell+" input[name=value]")),
		chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.querySelector("%s input[name=value]").select()`, cell)),
		chromedp.SendKeys(chromedp.CSS(cell+" input[name=value]"), "+1 555 0000001"+kb.Enter),
		chromedp.WaitVisible(chromedp.CSS(cell+" .error")))
	msg := get(t, ctx, chromedp.Text(chromedp.CSS(cell+" .error")))
	if !strings.Contains(msg, "not a valid") {
		t.Errorf("error shown: %q", msg)
	}
	check(t, ctx, "endusers-edit-error")
	if after, _ := b.st.EndUser(context.Background(), b.tenant.ID, u.ID); after.Mobile != u.Mobile || after.MobileSource != u.MobileSource {
		t.Fatalf("the refused edit saved %q (%s)", after.Mobile, after.MobileSource)
	}
	// A good value saves, and the end user's page and the events show it.
	run(t, ctx, chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.querySelector("%s input[name=value]").select()`, cell)),
		chromedp.SendKeys(chromedp.CSS(cell+" input[name=value]"), "+1 202 555 0142"+kb.Enter),
		chromedp.WaitVisible(chromedp.CSS(cell+" button.cellbtn")))
	run(t, ctx, chromedp.Navigate(fmt.Sprintf("%s/end-users/%d", b.srv.URL, u.ID)), chromedp.WaitVisible(chromedp.CSS("main h1")))
	if body := get(t, ctx, chromedp.Text(chromedp.CSS("main"))); !strings.Contains(body, "+12025550142 (typed)") || !strings.Contains(body, "end_user.contact_updated") {
		t.Errorf("end user page: %q", body)
	}
	check(t, ctx, "enduser")
	run(t, ctx, chromedp.Navigate(b.srv.URL+"/events?action=end_user.contact_updated"), chromedp.WaitVisible(chromedp.CSS("main h1")))
	if body := get(t, ctx, chromedp.Text(chromedp.CSS("main table"))); !strings.Contains(body, "engineer@acme.example") {
		t.Errorf("events: %q", body)
	}
	check(t, ctx, "events")
}

func TestBrowserHelpdeskAndOtherTenant(t *testing.T) {
	b := setup(t, 3)
	bctx := browser(t)
	ctx := tab(t, bctx)
	b.browserSignIn(t, ctx, "helpdesk@acme.example")
	run(t, ctx, chromedp.Navigate(b.srv.URL+"/settings"), chromedp.WaitVisible(chromedp.CSS("#tenant-switch-state")))
	controls := get(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll("#tenant-switch, form[action='/settings']").length`))
	if controls != 0 {
		t.Errorf("helpdesk sees %d controls to change settings", controls)
	}
	check(t, ctx, "settings-helpdesk")
	if status := post(t, ctx, "/settings", "self_serve=false", true); status != http.StatusForbidden {
		t.Errorf("helpdesk's forged settings POST: %d, want 403", status)
	}
	if status := post(t, ctx, "/settings", "self_serve=false", false); status != http.StatusForbidden {
		t.Errorf("POST without the CSRF token: %d, want 403", status)
	}

	// A page of another site posting to the console is refused.
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `<!doctype html><form method="post" action="%s/end-users/1/self-serve"><input name="enabled" value="true"></form><script>document.forms[0].submit()</script>`, b.srv.URL)
	}))
	defer evil.Close()
	run(t, ctx, chromedp.Navigate(strings.Replace(evil.URL, "127.0.0.1", "localhost", 1)), chromedp.WaitReady(chromedp.CSS("body")), chromedp.Sleep(500*time.Millisecond))
	body := get(t, ctx, chromedp.Text(chromedp.CSS("body")))
	if !strings.Contains(strings.ToLower(body), "cross-origin") && !strings.Contains(body, "did not come from this console") {
		t.Errorf("a cross-site form post was not refused: %q", body)
	}
	users, _ := b.st.EndUsers(context.Background(), b.tenant.ID, store.EndUserFilter{})
	for _, u := range users {
		if u.SelfServe {
			t.Fatal("a cross-site form post changed a switch")
		}
	}

	rival := tab(t, bctx)
	b.browserSignIn(t, rival, "super@rival.example")
	run(t, rival, chromedp.Navigate(fmt.Sprintf("%s/customers/%d", b.srv.URL, b.cust.ID)), chromedp.WaitVisible(chromedp.CSS("main h1")))
	body = get(t, rival, chromedp.Text(chromedp.CSS("main")))
	if !strings.Contains(body, "not yours to see") {
		t.Errorf("another tenant's customer page shows %q", body)
	}
	status := get(t, rival, chromedp.Evaluate[int](fmt.Sprintf(`fetch("/customers/%d").then(r => r.status)`, b.cust.ID), chromedp.EvalAwaitPromise))
	if status != http.StatusNotFound {
		t.Errorf("another tenant's customer: %d, want 404", status)
	}
	check(t, rival, "not-found")
}

func TestBrowserImportShowsProgressAndSummary(t *testing.T) {
	b := setup(t, 0)
	ctx := context.Background()
	dir := t.TempDir()
	var csv strings.Builder
	csv.WriteString("username,display_name,email,mobile,enabled,password_expires_at\n")
	for i := range 600 {
		mobile := fmt.Sprintf("+1202555%04d", i)
		if i == 7 {
			mobile = "+1 555 0000001"
		}
		fmt.Fprintf(&csv, "imp%04d,Imported %d,imp%04d@contoso.example,%s,true,2027-01-15T09:00:00Z\n", i, i, i, mobile)
	}
	path := filepath.Join(dir, "people.csv")
	must(t, os.WriteFile(path, []byte(csv.String()), 0o600))
	conn, err := b.st.CreateConnection(ctx, store.Connection{TenantID: b.tenant.ID, CustomerID: &b.cust.ID, Name: "contoso-people", Kind: connectors.KindFile,
		Settings: []byte(fmt.Sprintf(`{"path":%q,"page_size":50}`, path))})
	must(t, err)
	b.queue.importer = &importer.Importer{Store: b.st, Registry: connectors.NewRegistry(map[connectors.Kind]func() connectors.Config{
		connectors.KindFile: func() connectors.Config { return new(file.Config) }})}
	b.queue.delay = 1500 * time.Millisecond
	b.addLogin(t, b.tenant, "engineer@acme.example", store.RoleEngineer, false)

	tb := tab(t, browser(t))
	b.browserSignIn(t, tb, "engineer@acme.example")
	run(t, tb, chromedp.Navigate(fmt.Sprintf("%s/connections/%d", b.srv.URL, conn.ID)), chromedp.WaitVisible(chromedp.CSS("#import")))
	check(t, tb, "connection")
	run(t, tb, chromedp.Click(chromedp.CSS(`#import input[name=enable_self_serve][value="true"]`)), chromedp.Click(chromedp.CSS(`#import button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS("#run-progress")))
	check(t, tb, "run-progress")
	run(t, tb, chromedp.WaitVisible(chromedp.CSS("#run-summary")))
	summary := get(t, tb, chromedp.Text(chromedp.CSS("#run-summary")))
	if !strings.Contains(summary, "Finished") || !strings.Contains(summary, "row 9") || !strings.Contains(summary, "not a valid") {
		t.Errorf("run summary: %q", summary)
	}
	check(t, tb, "run-summary")
	users, err := b.st.EndUsers(ctx, b.tenant.ID, store.EndUserFilter{ConnectionID: conn.ID})
	must(t, err)
	on := 0
	for _, u := range users {
		if u.SelfServe {
			on++
		}
	}
	if len(users) != 600 || on != 600 {
		t.Fatalf("%d end users imported, %d with Self-Serve on; want 600, 600", len(users), on)
	}
	// The refused mobile shows on the row.
	run(t, tb, chromedp.Navigate(fmt.Sprintf("%s/customers/%d?q=imp0007", b.srv.URL, b.cust.ID)), chromedp.WaitVisible(chromedp.CSS("table.endusers")))
	if row := get(t, tb, chromedp.Text(chromedp.CSS("table.endusers tbody"))); !strings.Contains(row, "+1 555 0000001") || !strings.Contains(row, "not a valid number") {
		t.Errorf("the refused mobile is not on the row: %q", row)
	}
}
