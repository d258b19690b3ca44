package console

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"golang.org/x/net/html"

	"selfserve/connectors"
	"selfserve/internal/importer"
	"selfserve/internal/rules"
	"selfserve/internal/store"
)

// hostile is text that would run or inject markup if it were not escaped.
const hostile = `"><img src=x onerror=alert(1)><script>alert('x')</script>&`

// addHostileUsers imports, into the bundle's customer, an end user whose
// every text field is hostile, and a privileged one (with a hostile
// reason, a refused mobile and a hostile display name).
func (b *bundle) addHostileUsers(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	target := store.PageTarget{TenantID: b.tenant.ID, CustomerID: b.cust.ID, ConnectionID: b.conn.ID, Source: rules.SourceLocal, EnableSelfServe: true}
	evil := store.UserRecord{User: connectors.User{ExternalID: "evil", Username: "evil" + hostile, DisplayName: hostile,
		Email: "evil@contoso.example", Mobile: "+12025550100", Enabled: true}}
	admin := store.UserRecord{User: connectors.User{ExternalID: "admin", Username: "zz-admin", DisplayName: "Admin " + hostile,
		Email: "admin@contoso.example", Mobile: "+1 555 0000001", Enabled: true, Privileged: true, PrivilegedReason: "member of Domain Admins " + hostile},
		MobileInvalid: true, MobileRefused: "not a valid number " + hostile}
	_, err := importer.ApplyPage(ctx, b.st, target, []store.UserRecord{evil, admin}, nil)
	must(t, err)
}

// elements counts the page's elements by tag name.
func elements(t *testing.T, body string) map[string]int {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(body))
	must(t, err)
	n := map[string]int{}
	for e := range doc.Descendants() {
		if e.Type == html.ElementNode {
			n[e.Data]++
		}
	}
	return n
}

func TestEndUsersPageEscapesEveryValue(t *testing.T) {
	t.Parallel()
	b := setup(t, 3)
	b.addHostileUsers(t)
	c := b.client(t)
	c.signIn("super@acme.example")
	status, body, _ := c.do(http.MethodGet, fmt.Sprintf("/customers/%d", b.cust.ID), nil, nil)
	if status != http.StatusOK || strings.Count(body, `class="pick"`) != 5 {
		t.Fatalf("page: %d with %d rows\n%s", status, strings.Count(body, `class="pick"`), body)
	}
	if n := elements(t, body); n["img"] != 0 || n["script"] != 2 {
		t.Errorf("hostile values made markup: %d img, %d script elements (the layout has 2 scripts)", n["img"], n["script"])
	}
	if !strings.Contains(body, "&lt;img src=x onerror=alert(1)&gt;&lt;script&gt;") || !strings.Contains(body, "member of Domain Admins &#34;&gt;&lt;img") {
		t.Error("the hostile values are not shown as text")
	}
	// The cell the in-place edit swaps in escapes the same way.
	users, _ := b.st.EndUsers(context.Background(), b.tenant.ID, store.EndUserFilter{Privileged: ptr(true)})
	status, cell, _ := c.do(http.MethodGet, fmt.Sprintf("/end-users/%d/cell?field=mobile", users[0].ID), nil, map[string]string{"HX-Request": "true"})
	if status != http.StatusOK || !strings.Contains(cell, "not a valid number &#34;&gt;&lt;img") || elements(t, cell)["img"] != 0 {
		t.Errorf("cell: %d\n%s", status, cell)
	}
}

func ptr[T any](v T) *T { return &v }

// TestEndUsersPagePrivileged: the page shows the privileged flag with its
// reason and filters by it; a helpdesk login sees a privileged end user's
// switch and contact cells locked (the service refuses its changes), a
// super login does not; the Active filter follows rules.Active, which
// keeps privileged end users out unless the tenant lets them in with two
// factors.
func TestEndUsersPagePrivileged(t *testing.T) {
	t.Parallel()
	b := setup(t, 3)
	b.addHostileUsers(t)
	desk := b.client(t)
	desk.signIn("helpdesk@acme.example")
	page := fmt.Sprintf("/customers/%d", b.cust.ID)
	status, body, _ := desk.do(http.MethodGet, page+"?privileged=yes", nil, nil)
	if status != http.StatusOK || strings.Count(body, `class="pick"`) != 1 || !strings.Contains(body, "zz-admin") {
		t.Fatalf("privileged=yes: %d with %d rows", status, strings.Count(body, `class="pick"`))
	}
	if !strings.Contains(body, `<span class="badge bad">Privileged</span><span class="prov">member of Domain Admins`) {
		t.Error("the privileged row does not show the flag with its reason")
	}
	if !strings.Contains(body, `aria-disabled="true"`) || !strings.Contains(body, "only super and primary logins may change it") || strings.Contains(body, `class="cellbtn"`) {
		t.Error("a helpdesk login is offered changes to a privileged end user")
	}
	if _, body, _ = desk.do(http.MethodGet, page+"?privileged=no", nil, nil); strings.Count(body, `class="pick"`) != 4 || strings.Contains(body, "zz-admin") {
		t.Errorf("privileged=no: %d rows", strings.Count(body, `class="pick"`))
	}
	if status, _, _ = desk.do(http.MethodGet, page+"?privileged=maybe", nil, nil); status != http.StatusBadRequest {
		t.Errorf("privileged=maybe: %d, want 400", status)
	}
	lead := b.client(t)
	lead.signIn("super@acme.example")
	if _, body, _ = lead.do(http.MethodGet, page+"?privileged=yes", nil, nil); strings.Contains(body, `aria-disabled="true"`) || strings.Count(body, `class="cellbtn"`) != 2 {
		t.Error("a super login cannot change a privileged end user from the page")
	}

	// Active: the tenant keeps privileged end users out (deny), then lets
	// them in with two factors.
	active := func() string {
		_, body, _ := lead.do(http.MethodGet, page+"?active=yes&privileged=yes", nil, nil)
		return body
	}
	if body := active(); strings.Contains(body, "zz-admin") {
		t.Error("active=yes lists a privileged end user the tenant keeps out")
	}
	tn := b.tenant
	tn.PrivilegedSelfServe = rules.PrivilegedTwoFactors
	_, _, err := b.st.UpsertTenant(context.Background(), tn)
	must(t, err)
	// (its mobile was refused, so it has none and stays out; give it one)
	users, _ := b.st.EndUsers(context.Background(), b.tenant.ID, store.EndUserFilter{Privileged: ptr(true)})
	mobile := "+12025550111"
	_, _, err = b.st.SetContact(context.Background(), b.tenant.ID, users[0].ID, nil, &mobile, rules.ProvenanceManual)
	must(t, err)
	if body := active(); !strings.Contains(body, "zz-admin") {
		t.Error("active=yes does not list a privileged end user the tenant lets in with two factors")
	}
}

func TestEndUsersSearchRefusesBadText(t *testing.T) {
	t.Parallel()
	b := setup(t, 3)
	c := b.client(t)
	c.signIn("helpdesk@acme.example")
	if status, _, _ := c.do(http.MethodGet, fmt.Sprintf("/customers/%d?q=%%ff", b.cust.ID), nil, nil); status != http.StatusBadRequest {
		t.Errorf("a search that is not UTF-8: %d, want 400", status)
	}
	if status, body, _ := c.do(http.MethodGet, fmt.Sprintf("/customers/%d?q=USER000", b.cust.ID), nil, nil); status != http.StatusOK || strings.Count(body, `class="pick"`) != 3 {
		t.Errorf("search USER000: %d with %d rows", status, strings.Count(body, `class="pick"`))
	}
}

// TestBrowserPrivilegedFilterAndSearch: in the browser, a helpdesk login
// filters the end users by the privileged flag (the row shows the flag
// with its reason and a locked switch), then searches by the start of a
// username; axe finds no serious or critical violation on either page.
func TestBrowserPrivilegedFilterAndSearch(t *testing.T) {
	b := setup(t, 12)
	b.addHostileUsers(t)
	ctx := tab(t, browser(t))
	b.browserSignIn(t, ctx, "helpdesk@acme.example")
	rows := func() int {
		return get(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll("table.endusers tbody tr").length`))
	}
	run(t, ctx, chromedp.Navigate(fmt.Sprintf("%s/customers/%d", b.srv.URL, b.cust.ID)), chromedp.WaitVisible(chromedp.CSS("table.endusers")),
		chromedp.SetValue(chromedp.CSS("#f-privileged"), "yes"), chromedp.Click(chromedp.CSS(`.filters button[type=submit]`)),
		chromedp.WaitNotPresent(chromedp.CSS(`input.pick[aria-label="Select user0000"]`)))
	if n := rows(); n != 1 {
		t.Fatalf("privileged=yes shows %d rows, want 1", n)
	}
	row := get(t, ctx, chromedp.Text(chromedp.CSS("table.endusers tbody tr")))
	if !strings.Contains(row, "zz-admin") || !strings.Contains(row, "Privileged") || !strings.Contains(row, "member of Domain Admins") {
		t.Errorf("the privileged row: %q", row)
	}
	run(t, ctx, chromedp.Focus(chromedp.CSS(".switch.locked")))
	tip := get(t, ctx, chromedp.Evaluate[string](`document.activeElement.querySelector(".tip").textContent`))
	if !strings.Contains(tip, "only super and primary logins") {
		t.Errorf("the privileged row's switch says %q", tip)
	}
	check(t, ctx, "endusers-privileged")

	run(t, ctx, chromedp.SetValue(chromedp.CSS("#f-privileged"), ""), chromedp.SendKeys(chromedp.CSS("#f-q"), "USER001"+kb.Enter),
		chromedp.WaitVisible(chromedp.CSS(`input.pick[aria-label="Select user0010"]`)))
	if n := rows(); n != 2 {
		t.Fatalf("search USER001 shows %d rows, want 2 (user0010, user0011)", n)
	}
	if body := get(t, ctx, chromedp.Text(chromedp.CSS("table.endusers tbody"))); !strings.Contains(body, "user0010") || !strings.Contains(body, "user0011") {
		t.Errorf("search USER001 shows %q", body)
	}
	check(t, ctx, "endusers-search")
}
