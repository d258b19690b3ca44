package console

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"selfserve/internal/store"
)

// setValue sets a field's value from a script (to type past maxlength, as
// a forged form would).
func setValue(sel, value string) chromedp.Action[chromedp.Void] {
	return chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.querySelector(%q).value = %q`, sel, value))
}

// text is the text content of the first element matching sel.
func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	return get(t, ctx, chromedp.Evaluate[string](fmt.Sprintf(`document.querySelector(%q).textContent`, sel)))
}

func TestBrowserCustomerCreateAndLink(t *testing.T) {
	b := setup(t, 0)
	ctx := context.Background()
	evil := `<img src=x onerror="window.pwned=1">Evil & Co`
	_, _, err := b.st.UpsertCustomer(ctx, store.Customer{TenantID: b.tenant.ID, Name: evil, TimeZone: "UTC"})
	must(t, err)
	tb := tab(t, browser(t))
	b.browserSignIn(t, tb, "helpdesk@acme.example")
	run(t, tb, chromedp.Navigate(b.srv.URL+"/"), chromedp.WaitVisible(chromedp.CSS("#new-customer")))
	if list := text(t, tb, "main table"); !strings.Contains(list, evil) || !strings.Contains(list, "Contoso <b>Ltd</b>") {
		t.Errorf("names with markup are not shown as text: %q", list)
	}
	check(t, tb, "customers-list")

	// Too long (typed past maxlength by a script), then markup: the error
	// is next to the name, the value shown as text, nothing stored.
	run(t, tb, setValue("#name", strings.Repeat("a", 201)), chromedp.Submit(chromedp.CSS("#name")), chromedp.WaitVisible(chromedp.CSS("#name-error")))
	if msg := text(t, tb, "#name-error"); !strings.Contains(msg, "at most 200") {
		t.Errorf("too long a name: %q", msg)
	}
	run(t, tb, setValue("#name", `<script>window.pwned=1</script>`), chromedp.Submit(chromedp.CSS("#name")), chromedp.WaitVisible(chromedp.CSS("#name-error")))
	if msg := text(t, tb, "#name-error"); !strings.Contains(msg, `'<'`) {
		t.Errorf("a name with markup: %q", msg)
	}
	check(t, tb, "customers-new-error")
	if pwned := get(t, tb, chromedp.Evaluate[bool](`window.pwned !== undefined`)); pwned {
		t.Fatal("markup in a name ran")
	}
	if cs, _ := b.st.Customers(ctx, b.tenant.ID); len(cs) != 2 {
		t.Fatalf("refused forms stored customers: %d", len(cs))
	}
	if status := post(t, tb, "/customers", "name=Forged", false); status != http.StatusForbidden {
		t.Errorf("a create without the CSRF token: %d, want 403", status)
	}

	// A good one, with the keyboard.
	run(t, tb, setValue("#name", ""), chromedp.SendKeys(chromedp.CSS("#name"), "Fabrikam Ltd"), chromedp.SendKeys(chromedp.CSS("#default_region"), "GB"+kb.Enter),
		chromedp.WaitVisible(chromedp.CSS(".notice")))
	if msg := text(t, tb, ".notice"); !strings.Contains(msg, "Fabrikam Ltd created") {
		t.Errorf("after creating: %q", msg)
	}
	fab, err := b.st.CustomerByName(ctx, b.tenant.ID, "Fabrikam Ltd")
	must(t, err)

	// Link it: a bad PSA id, then a good one.
	run(t, tb, chromedp.Click(chromedp.CSS(fmt.Sprintf(`a[href="/customers/%d/link"]`, fab.ID))), chromedp.WaitVisible(chromedp.CSS("#external_id")))
	check(t, tb, "customer-link")
	run(t, tb, chromedp.SendKeys(chromedp.CSS("#external_id"), "12; DROP"+kb.Enter), chromedp.WaitVisible(chromedp.CSS("#external_id-error")))
	check(t, tb, "customer-link-error")
	run(t, tb, setValue("#external_id", ""), chromedp.SetValue(chromedp.CSS("#source"), "hudu"), chromedp.SendKeys(chromedp.CSS("#external_id"), "42"+kb.Enter),
		chromedp.WaitVisible(chromedp.CSS(".notice")))
	if msg := text(t, tb, ".notice"); !strings.Contains(msg, "linked to hudu id 42") {
		t.Errorf("after linking: %q", msg)
	}
	if fab, _ = b.st.Customer(ctx, b.tenant.ID, fab.ID); fab.ExternalID != "42" {
		t.Fatalf("not linked: %+v", fab)
	}

	rival := tab(t, browser(t))
	b.browserSignIn(t, rival, "super@rival.example")
	status := get(t, rival, chromedp.Evaluate[int](fmt.Sprintf(`fetch("/customers/%d/link").then(r => r.status)`, fab.ID), chromedp.EvalAwaitPromise))
	if status != http.StatusNotFound {
		t.Errorf("another tenant's link page: %d, want 404", status)
	}
}

func TestBrowserCustomerImportAfterPreview(t *testing.T) {
	b := setup(t, 0)
	ctx := context.Background()
	conn, srv, en := b.huduConnection(t, 5)
	b.restart(t, func(o *Options) { o.Service.Registry, o.Service.Secrets = en.Registry, en.Secrets })
	_, _, err := b.st.UpsertCustomer(ctx, store.Customer{TenantID: b.tenant.ID, Name: srv.Companies()[0].Name, TimeZone: "UTC"})
	must(t, err)
	tb := tab(t, browser(t))
	b.browserSignIn(t, tb, "helpdesk@acme.example")
	run(t, tb, chromedp.Navigate(b.srv.URL+"/"), chromedp.WaitVisible(chromedp.CSS("#new-customer")),
		chromedp.Click(chromedp.CSS(`a[href="/customers/import"]`)), chromedp.WaitVisible(chromedp.CSS("#connection_id")))
	check(t, tb, "customers-import")
	run(t, tb, chromedp.Submit(chromedp.CSS("#connection_id")), chromedp.WaitVisible(chromedp.CSS("#preview")))
	if rows := text(t, tb, "#preview tbody"); strings.Count(rows, "New customer") != 4 || !strings.Contains(rows, "Links the manual customer") {
		t.Errorf("preview: %q", rows)
	}
	check(t, tb, "customers-import-preview")
	if cs, _ := b.st.Customers(ctx, b.tenant.ID); len(cs) != 2 {
		t.Fatalf("the preview stored customers: %d", len(cs))
	}
	run(t, tb, chromedp.Click(chromedp.CSS("#import button")), chromedp.WaitVisible(chromedp.CSS("#run-status")))
	loc := get(t, tb, chromedp.Location())
	runID, err := strconv.ParseInt(loc[strings.LastIndex(loc, "/")+1:], 10, 64)
	must(t, err)
	// A worker runs the queued import; the page follows it to its summary.
	if _, err := en.ImportCustomers(ctx, b.tenant.ID, conn.ID, runID); err != nil {
		t.Fatal(err)
	}
	run(t, tb, chromedp.WaitVisible(chromedp.CSS("#run-summary")))
	if summary := text(t, tb, "#run-summary"); !strings.Contains(summary, "Finished") {
		t.Errorf("run summary: %q", summary)
	}
	check(t, tb, "customers-import-run")
	if cs, _ := b.st.Customers(ctx, b.tenant.ID); len(cs) != 6 {
		t.Errorf("%d customers after importing 5 (one linked), want 6", len(cs))
	}
}

func TestBrowserSettingsInviteAndOps(t *testing.T) {
	b := setup(t, 0)
	ctx := context.Background()
	b.restart(t, func(o *Options) { o.OpsTenant = b.tenant.Name })
	tb := tab(t, browser(t))
	b.browserSignIn(t, tb, "super@acme.example")
	run(t, tb, chromedp.Navigate(b.srv.URL+"/settings"), chromedp.WaitVisible(chromedp.CSS("#settings-form")))

	// A bad hour beside a good zone: the error next to the hour, nothing
	// saved.
	run(t, tb, setValue("#send_hour", "99"), setValue("#timezone", "Europe/Paris"), chromedp.Click(chromedp.CSS(`input[name=verification][value="sms+email"]`)),
		chromedp.Submit(chromedp.CSS("#send_hour")), chromedp.WaitVisible(chromedp.CSS("#send_hour-error")))
	check(t, tb, "settings-error")
	if tn, _ := b.st.Tenant(ctx, b.tenant.ID); tn.TimeZone != "UTC" || tn.Verification == "sms+email" {
		t.Fatalf("a refused form saved part of itself: %+v", tn)
	}
	run(t, tb, setValue("#send_hour", ""), chromedp.SendKeys(chromedp.CSS("#send_hour"), "8"+kb.Enter), chromedp.WaitVisible(chromedp.CSS(".notice")))
	if tn, _ := b.st.Tenant(ctx, b.tenant.ID); tn.TimeZone != "Europe/Paris" || tn.SendHour != 8 || tn.Verification != "sms+email" {
		t.Errorf("saved: %+v", tn)
	}

	// Invite an engineer: the link is shown once.
	run(t, tb, chromedp.SendKeys(chromedp.CSS("#invite-email"), "newtech@acme.example"), chromedp.SetValue(chromedp.CSS("#invite-role"), "engineer"),
		chromedp.Submit(chromedp.CSS("#invite-email")), chromedp.WaitVisible(chromedp.CSS("#invite-link")))
	link := text(t, tb, "#invite-link")
	check(t, tb, "settings-invite")
	if !strings.Contains(link, "/invite/") {
		t.Fatalf("invite link %q", link)
	}
	if l, err := b.st.LoginByEmail(ctx, b.tenant.ID, "newtech@acme.example"); err != nil || l.Role != store.RoleEngineer {
		t.Errorf("invited: %+v %v", l, err)
	}

	// The Ops link opens the dashboard with the console session.
	run(t, tb, chromedp.Click(chromedp.CSS(`a[href="/monitoring/"]`)), chromedp.WaitVisible(chromedp.CSS("p")))
	if body := text(t, tb, "body"); !strings.Contains(body, "queue dashboard") {
		t.Errorf("the Ops link shows %q", body)
	}

	desk := tab(t, browser(t))
	b.browserSignIn(t, desk, "helpdesk@acme.example")
	if n := get(t, desk, chromedp.Evaluate[int](`document.querySelectorAll('a[href="/monitoring/"]').length`)); n != 0 {
		t.Error("helpdesk is shown the Ops link")
	}
	if status := post(t, desk, "/settings/invite", "email=mole%40acme.example&role=super", true); status != http.StatusForbidden {
		t.Errorf("helpdesk's forged invite: %d, want 403", status)
	}
	if status := post(t, desk, "/settings", "send_hour=3", true); status != http.StatusForbidden {
		t.Errorf("helpdesk's forged settings: %d, want 403", status)
	}
}
