package connectwise

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"selfserve/connectors"
	"selfserve/connectors/connectortest"
	"selfserve/connectors/connectwise/fakeconnectwise"
	"selfserve/connectors/internal/restclient/restfake"
)

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func newServer(t *testing.T, opts fakeconnectwise.Options) *fakeconnectwise.Server {
	t.Helper()
	srv := fakeconnectwise.New(opts)
	t.Cleanup(srv.Close)
	return srv
}

// testConfig is a config for srv's default credentials with a fast limiter.
func testConfig(srv *fakeconnectwise.Server) *Config {
	return &Config{
		BaseURL:           srv.URL,
		CompanyID:         fakeconnectwise.DefaultCompanyID,
		ClientID:          fakeconnectwise.DefaultClientID,
		PublicKey:         fakeconnectwise.DefaultPublicKey,
		PrivateKey:        fakeconnectwise.DefaultPrivateKey,
		RequestsPerMinute: 60000,
	}
}

func openSource(t *testing.T, srv *fakeconnectwise.Server, edit func(*Config)) *source {
	t.Helper()
	cfg := testConfig(srv)
	if edit != nil {
		edit(cfg)
	}
	src, err := cfg.Open(connectors.Env{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = src.Close() })
	return src.(*source)
}

type listing struct {
	customers []connectors.Customer
	contacts  []connectors.Contact
	invalid   []connectors.InvalidRecord
	pages     int
	err       error
}

func listCustomers(src connectors.CustomerSource) listing {
	var l listing
	for page, err := range src.Customers(context.Background()) {
		if err != nil {
			l.err = err
			break
		}
		l.pages++
		l.customers = append(l.customers, page.Customers...)
		l.invalid = append(l.invalid, page.Invalid...)
	}
	return l
}

func listContacts(src connectors.ContactSource, companyID int, since time.Time) listing {
	var l listing
	for page, err := range src.Contacts(context.Background(), strconv.Itoa(companyID), since) {
		if err != nil {
			l.err = err
			break
		}
		l.pages++
		l.contacts = append(l.contacts, page.Contacts...)
		l.invalid = append(l.invalid, page.Invalid...)
	}
	return l
}

func TestConformance(t *testing.T) {
	t.Parallel()
	srv := newServer(t, fakeconnectwise.Options{Seed: 1, Companies: 9, ContactsPerCompany: 10})
	connectortest.RunCustomerSource(t, connectortest.CustomerSourceCase{
		Open: func(t *testing.T) connectors.CustomerSource {
			return openSource(t, srv, func(c *Config) { c.PageSize = 3 })
		},
		WantCustomers: 8, // the seventh is deleted
		MinPages:      3,
	})
	connectortest.RunContactSource(t, connectortest.ContactSourceCase{
		Open: func(t *testing.T) connectors.ContactSource {
			return openSource(t, srv, func(c *Config) { c.PageSize = 3 })
		},
		CustomerExternalID: "251",
		WantContacts:       8, // every fifth is inactive
		MinPages:           3,
	})
}

func TestRequestShape(t *testing.T) {
	t.Parallel()
	srv := newServer(t, fakeconnectwise.Options{})
	if err := listCustomers(openSource(t, srv, func(c *Config) { c.APIVersion = "2024.1" })).err; err != nil {
		t.Fatal(err)
	}
	req := srv.Requests()[0]
	wantAuth := "Basic " + base64.StdEncoding.EncodeToString([]byte("contoso+pubKEY123:privKEY456"))
	checks := map[string][2]string{
		"path":            {req.Path, "/v4_6_release/apis/3.0/company/companies"},
		"Authorization":   {req.Header.Get("Authorization"), wantAuth},
		"clientId":        {req.Header.Get("clientId"), fakeconnectwise.DefaultClientID},
		"Accept":          {req.Header.Get("Accept"), "application/vnd.connectwise.com+json; version=2024.1"},
		"pagination-type": {req.Header.Get("pagination-type"), "forward-only"},
		"pageSize":        {req.Query.Get("pageSize"), "1000"},
		"conditions":      {req.Query.Get("conditions"), "deletedFlag=False"},
		"orderBy":         {req.Query.Get("orderBy"), ""},
	}
	for name, c := range checks {
		if c[0] != c[1] {
			t.Errorf("%s = %q, want %q", name, c[0], c[1])
		}
	}
}

func TestCustomersMatchTheServer(t *testing.T) {
	t.Parallel()
	srv := newServer(t, fakeconnectwise.Options{Seed: 2, Companies: 8})
	l := listCustomers(openSource(t, srv, nil))
	if l.err != nil {
		t.Fatal(l.err)
	}
	want := srv.Companies()
	if len(l.customers) != len(want) {
		t.Fatalf("got %d customers, want %d", len(l.customers), len(want))
	}
	for i, c := range l.customers {
		w := want[i]
		var types []string
		for _, ty := range w.Types {
			types = append(types, ty.Name)
		}
		if c.ExternalID != strconv.Itoa(w.ID) || c.Name != w.Name || c.Status != w.Status.Name || c.Type != strings.Join(types, ", ") ||
			c.Ref != fmt.Sprintf("company %d (%s)", w.ID, w.Identifier) {
			t.Errorf("customer %d = %+v, want %+v", i, c, w)
		}
	}
}

func TestCustomerFilters(t *testing.T) {
	t.Parallel()
	srv := newServer(t, fakeconnectwise.Options{Seed: 3, Companies: 24})
	cases := []struct {
		status, typ string
	}{
		{"Active", ""},
		{"", "Client"},
		{"Not Approved", "partner"},
		{`He said "hi" [x] \ 100%`, ""},
	}
	for _, tc := range cases {
		l := listCustomers(openSource(t, srv, func(c *Config) {
			c.CompanyStatus = tc.status
			c.CompanyType = tc.typ
		}))
		if l.err != nil {
			t.Fatalf("%+v: %v", tc, l.err)
		}
		var want, got []string
		for _, c := range srv.Companies() {
			statusOK := tc.status == "" || strings.EqualFold(c.Status.Name, tc.status)
			typeOK := tc.typ == "" || slices.ContainsFunc(c.Types, func(n fakeconnectwise.Named) bool { return strings.EqualFold(n.Name, tc.typ) })
			if statusOK && typeOK {
				want = append(want, strconv.Itoa(c.ID))
			}
		}
		for _, c := range l.customers {
			got = append(got, c.ExternalID)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%+v: customers %v, want %v", tc, got, want)
		}
	}
	reqs := srv.Requests()
	if q := reqs[2].Query; q.Get("conditions") != `deletedFlag=False AND status/name="Not Approved"` || q.Get("childConditions") != `types/name="partner"` {
		t.Errorf("filters sent as %v", q)
	}
	if got := reqs[3].Query.Get("conditions"); got != `deletedFlag=False AND status/name="He said \"hi\" [[]x] \\ 100%"` {
		t.Errorf("quoted value sent as %s", got)
	}
}

func TestQuote(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"Active":       `"Active"`,
		`a "b"`:        `"a \"b\""`,
		`c:\temp`:      `"c:\\temp"`,
		"[x]":          `"[[]x]"`,
		"50% & +more'": `"50% & +more'"`,
	} {
		if got := quote(in); got != want {
			t.Errorf("quote(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestContactsMatchTheServer(t *testing.T) {
	t.Parallel()
	srv := newServer(t, fakeconnectwise.Options{Seed: 4, Companies: 3, ContactsPerCompany: 15})
	l := listContacts(openSource(t, srv, func(c *Config) { c.PageSize = 4 }), 252, time.Time{})
	if l.err != nil {
		t.Fatal(l.err)
	}
	want := srv.Contacts(252)
	if len(l.contacts) != len(want) || len(l.invalid) != 0 {
		t.Fatalf("got %d contacts and %d invalid, want %d", len(l.contacts), len(l.invalid), len(want))
	}
	for i, c := range l.contacts {
		w := want[i]
		if c.ExternalID != strconv.Itoa(w.ID) || c.CustomerExternalID != "252" || c.FirstName != w.FirstName || c.LastName != w.LastName || !c.UpdatedAt.Equal(w.LastUpdated) {
			t.Errorf("contact %d = %+v, want %+v", i, c, w)
		}
		if !slices.Equal(c.Emails, w.WantEmails) || !slices.Equal(c.Mobiles, w.WantMobiles) {
			t.Errorf("contact %d: emails %q mobiles %q, want %q %q", w.ID, c.Emails, c.Mobiles, w.WantEmails, w.WantMobiles)
		}
	}
	if q := srv.Requests()[0].Query.Get("conditions"); q != "company/id=252 AND inactiveFlag=False" {
		t.Errorf("conditions=%q", q)
	}
}

func TestMobileTypes(t *testing.T) {
	t.Parallel()
	srv := newServer(t, fakeconnectwise.Options{Seed: 5, Companies: 1, ContactsPerCompany: 5})
	l := listContacts(openSource(t, srv, func(c *Config) { c.MobileTypes = []string{"direct"} }), 250, time.Time{})
	if l.err != nil {
		t.Fatal(l.err)
	}
	for i, c := range l.contacts {
		var want []string
		for _, it := range srv.Contacts(250)[i].CommunicationItems {
			if it.Type.Name == "Direct" {
				want = append(want, it.Value)
			}
		}
		if !slices.Equal(c.Mobiles, want) {
			t.Errorf("contact %s: mobiles %q, want the Direct numbers %q", c.ExternalID, c.Mobiles, want)
		}
	}
}

// TestPaginationEnds checks each way a forward-only listing ends, by the
// number of requests it takes.
func TestPaginationEnds(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name         string
		companies    int
		noLink       bool
		wantRequests int
	}{
		{"short page", 8, false, 3},                         // 3 + 3 + 1: the seventh is deleted
		{"empty page after full ones", 6, false, 3},         // 3 + 3 + 0
		{"no next link after a full last page", 6, true, 2}, // 3 + 3
		{"no companies", -1, false, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// Fewer than 7 companies: none deleted.
			srv := newServer(t, fakeconnectwise.Options{Seed: 6, Companies: tc.companies, NoLinkOnLastPage: tc.noLink})
			l := listCustomers(openSource(t, srv, func(c *Config) { c.PageSize = 3 }))
			if l.err != nil {
				t.Fatal(l.err)
			}
			if want := len(srv.Companies()); len(l.customers) != want {
				t.Errorf("got %d customers, want %d", len(l.customers), want)
			}
			reqs := srv.Requests()
			if len(reqs) != tc.wantRequests {
				t.Errorf("took %d requests, want %d", len(reqs), tc.wantRequests)
			}
			for i, r := range reqs {
				if i == 0 && r.Query.Has("pageId") {
					t.Error("first request has a pageId")
				}
				if i > 0 && r.Query.Get("pageId") != strconv.Itoa(250+3*i-1) {
					t.Errorf("request %d pageId=%s", i+1, r.Query.Get("pageId"))
				}
			}
		})
	}
}

func TestNextLink(t *testing.T) {
	t.Parallel()
	cases := []struct {
		values []string
		want   string
	}{
		{[]string{`<https://x/a?pageSize=3&pageId=252>; rel="next"`}, "https://x/a?pageSize=3&pageId=252"},
		{[]string{`<https://x/a?page=1>; rel="first", <https://x/a?conditions=id%20in%20(1,2)&page=2>; rel="next"`}, "https://x/a?conditions=id%20in%20(1,2)&page=2"},
		{[]string{`<https://x/a?page=1>; rel="prev"`, `<https://x/b>; rel=next`}, "https://x/b"},
		{[]string{`<https://x/a?page=1>; rel="first", <https://x/a?page=9>; rel="last"`}, ""},
		{nil, ""},
		{[]string{`garbage <`}, ""},
	}
	for _, tc := range cases {
		got, ok := nextLink(tc.values)
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("nextLink(%q) = %q, %v; want %q", tc.values, got, ok, tc.want)
		}
	}
	if _, err := nextPageID("https://x/a?page=2"); err == nil || !strings.Contains(err.Error(), "no pageId") {
		t.Errorf("link without pageId: %v", err)
	}
	if _, err := nextPageID("https://x/a?pageId=abc"); err == nil {
		t.Error("non-numeric pageId accepted")
	}
}

func TestThrottledMidListing(t *testing.T) {
	t.Parallel()
	srv := newServer(t, fakeconnectwise.Options{Seed: 7, Companies: 6, Faults: restfake.Faults{Throttle: map[int]string{2: "1"}}})
	start := time.Now()
	l := listCustomers(openSource(t, srv, func(c *Config) { c.PageSize = 2 }))
	if l.err != nil {
		t.Fatal(l.err)
	}
	if len(l.customers) != 6 {
		t.Errorf("got %d customers, want 6", len(l.customers))
	}
	if d := time.Since(start); d < time.Second {
		t.Errorf("listing took %s: the 1s Retry-After was not waited", d)
	}
	reqs := srv.Requests()
	if reqs[1].Query.Get("pageId") != reqs[2].Query.Get("pageId") {
		t.Error("the throttled page was not asked again")
	}
}

func TestThrottledBeyondInlineWait(t *testing.T) {
	t.Parallel()
	srv := newServer(t, fakeconnectwise.Options{Seed: 7, Companies: 6, Faults: restfake.Faults{Throttle: map[int]string{2: "90"}}})
	l := listCustomers(openSource(t, srv, func(c *Config) { c.PageSize = 2 }))
	wait, ok := connectors.RetryAfter(l.err)
	if !ok || wait != 90*time.Second {
		t.Fatalf("error %v, want a rate limit of 90s", l.err)
	}
	if !strings.Contains(l.err.Error(), "Please try again in 90 seconds") {
		t.Errorf("error %q does not quote ConnectWise", l.err)
	}
}

func TestBadCredentials(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		opts     fakeconnectwise.Options
		edit     func(*Config)
		want     error
		text     string
		notFound bool
	}{
		{"wrong private key", fakeconnectwise.Options{}, func(c *Config) { c.PrivateKey = "nope-private" }, connectors.ErrUnauthorized, "check company_id, public_key, private_key and client_id", false},
		{"wrong company id", fakeconnectwise.Options{}, func(c *Config) { c.CompanyID = "other" }, connectors.ErrUnauthorized, "HTTP 401", false},
		{"wrong client id", fakeconnectwise.Options{}, func(c *Config) { c.ClientID = "0000" }, connectors.ErrUnauthorized, "clientId is not valid", false},
		{"cloud 404 for bad auth", fakeconnectwise.Options{NotFoundForBadAuth: true}, func(c *Config) { c.PrivateKey = "nope-private" }, connectors.ErrNotFound, "usually means the credentials were refused", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := newServer(t, tc.opts)
			src := openSource(t, srv, tc.edit)
			for name, err := range map[string]error{"ping": src.Ping(context.Background()), "customers": listCustomers(src).err, "contacts": listContacts(src, 250, time.Time{}).err} {
				if !errors.Is(err, tc.want) || !connectors.IsPermanent(err) {
					t.Errorf("%s: error %v, want %v", name, err, tc.want)
					continue
				}
				if !strings.Contains(err.Error(), tc.text) || strings.Contains(err.Error(), "nope-private") {
					t.Errorf("%s: error %q", name, err)
				}
			}
		})
	}
}

// TestFakeRequiresClientID checks the fake refuses a request without the
// clientId header, which the connector cannot send (its config requires
// client_id).
func TestFakeRequiresClientID(t *testing.T) {
	t.Parallel()
	srv := newServer(t, fakeconnectwise.Options{})
	req, _ := http.NewRequest(http.MethodGet, srv.APIRoot()+"/company/companies", nil)
	req.SetBasicAuth("contoso+pubKEY123", "privKEY456")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct{ Message string }
	_ = json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body.Message, "clientId") {
		t.Errorf("status %d, message %q", resp.StatusCode, body.Message)
	}
}

func TestSites(t *testing.T) {
	t.Parallel()
	creds := func(c Config) *Config {
		c.CompanyID, c.ClientID, c.PublicKey, c.PrivateKey = "co", "client", "pub", "priv"
		return &c
	}
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Site: "na"}, "https://api-na.myconnectwise.net/v4_6_release/apis/3.0"},
		{Config{Site: "EU"}, "https://api-eu.myconnectwise.net/v4_6_release/apis/3.0"},
		{Config{Site: "au"}, "https://api-au.myconnectwise.net/v4_6_release/apis/3.0"},
		{Config{Site: "staging"}, "https://api-staging.connectwisedev.com/v4_6_release/apis/3.0"},
		{Config{Site: "na.myconnectwise.net"}, "https://api-na.myconnectwise.net/v4_6_release/apis/3.0"},
		{Config{Site: "https://eu.myconnectwise.net/"}, "https://api-eu.myconnectwise.net/v4_6_release/apis/3.0"},
		{Config{Site: "cw.example.com"}, "https://cw.example.com/v4_6_release/apis/3.0"},
		{Config{Site: "https://cw.example.com/v2024_1/apis/3.0"}, "https://cw.example.com/v2024_1/apis/3.0"},
		{Config{Site: "na", BaseURL: "https://proxy.example"}, "https://proxy.example/v4_6_release/apis/3.0"},
	} {
		src, err := creds(tc.cfg).Open(connectors.Env{})
		if err != nil {
			t.Errorf("%+v: %v", tc.cfg, err)
			continue
		}
		if got := src.(*source).client.BaseURL(); got != tc.want {
			t.Errorf("site %q base_url %q: %s, want %s", tc.cfg.Site, tc.cfg.BaseURL, got, tc.want)
		}
	}
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	_, err := (&Config{CompanyID: "a:b", PublicKey: "x", APIVersion: "latest", PageSize: 1001, MobileTypes: []string{""}}).Open(connectors.Env{})
	if !errors.Is(err, connectors.ErrInvalidConfig) {
		t.Fatalf("error %v", err)
	}
	for _, want := range []string{"site is required", "company_id must not contain", "client_id is required", "private_key is required", `api_version "latest"`, "page_size 1001", "mobile_types has an empty name"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	_, err = (&Config{Site: "http://cw.example.com", CompanyID: "c", ClientID: "x", PublicKey: "p", PrivateKey: "q"}).Open(connectors.Env{})
	if err == nil || !strings.Contains(err.Error(), "https") {
		t.Errorf("plain http site: %v", err)
	}
}

func TestRegistryDecodeKeepsTheKeysSecret(t *testing.T) {
	t.Parallel()
	srv := newServer(t, fakeconnectwise.Options{PrivateKey: "cw-topsecret"})
	reg := connectors.NewRegistry(map[connectors.Kind]func() connectors.Config{connectors.KindConnectWise: func() connectors.Config { return new(Config) }})
	settings := json.RawMessage(fmt.Sprintf(`{"site":"na","base_url":%q,"company_id":"contoso","client_id":%q,"api_version":"2025.1","mobile_types":["Mobile"],"requests_per_minute":6000}`, srv.URL, fakeconnectwise.DefaultClientID))
	secrets := json.RawMessage(`{"public_key":"pubKEY123","private_key":"cw-topsecret"}`)
	cfg, err := reg.Decode(connectors.KindConnectWise, settings, secrets)
	if err != nil {
		t.Fatal(err)
	}
	if s := fmt.Sprintf("%+v %#v", cfg, cfg); strings.Contains(s, "topsecret") {
		t.Errorf("config prints the key: %s", s)
	}
	src, err := reg.Open(connectors.KindConnectWise, "conn-1", settings, secrets, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if err := src.(connectors.Pinger).Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestWrongTypesAndMissingIDs(t *testing.T) {
	t.Parallel()
	srv := newServer(t, fakeconnectwise.Options{Seed: 8, Companies: 6, ContactsPerCompany: 4, Records: map[string]fakeconnectwise.RecordFault{
		"251": fakeconnectwise.WrongType,
		"252": fakeconnectwise.StringIDs, // tolerated
		"253": fakeconnectwise.MissingID,
		"47":  fakeconnectwise.WrongType, // contacts of 250: 41, 47, 53, 59
		"53":  fakeconnectwise.StringIDs,
		"59":  fakeconnectwise.MissingID,
	}})
	src := openSource(t, srv, func(c *Config) { c.PageSize = 4 })
	l := listCustomers(src)
	if l.err != nil {
		t.Fatal(l.err)
	}
	if len(l.customers) != 4 || len(l.invalid) != 2 {
		t.Fatalf("got %d customers and %d invalid, want 4 and 2: %+v", len(l.customers), len(l.invalid), l.invalid)
	}
	if r := l.invalid[0]; !strings.HasPrefix(r.Ref, "company 251 (") || !strings.Contains(r.Reason, "field name is a JSON number, want a string") {
		t.Errorf("invalid[0] = %+v", r)
	}
	if r := l.invalid[1]; !strings.Contains(r.Ref, "record 4 of GET /v4_6_release/apis/3.0/company/companies") || !strings.Contains(r.Reason, "no id") {
		t.Errorf("invalid[1] = %+v", r)
	}
	lc := listContacts(src, 250, time.Time{})
	if lc.err != nil {
		t.Fatal(lc.err)
	}
	if len(lc.contacts) != 2 || len(lc.invalid) != 2 {
		t.Fatalf("got %d contacts and %d invalid, want 2 and 2: %+v", len(lc.contacts), len(lc.invalid), lc.invalid)
	}
	if r := lc.invalid[0]; r.Ref != "contact 47" || !strings.Contains(r.Reason, "firstName") {
		t.Errorf("invalid[0] = %+v", r)
	}
	if c := lc.contacts[1]; c.ExternalID != "53" || c.CustomerExternalID != "250" {
		t.Errorf("contact 53 with string ids: %+v", c)
	}
}

func TestDuplicateAcrossPages(t *testing.T) {
	t.Parallel()
	// Companies 250..255 by pages of 2: 251 ends page 1 and an inclusive
	// pageId serves it again at the start of page 2.
	srv := newServer(t, fakeconnectwise.Options{Seed: 9, Companies: 6, Records: map[string]fakeconnectwise.RecordFault{"251": fakeconnectwise.Duplicate}})
	l := listCustomers(openSource(t, srv, func(c *Config) { c.PageSize = 2 }))
	if l.err != nil {
		t.Fatal(l.err)
	}
	if len(l.customers) != 6 || len(l.invalid) != 1 {
		t.Fatalf("got %d customers and %d invalid, want 6 and 1", len(l.customers), len(l.invalid))
	}
	if r := l.invalid[0]; !strings.HasPrefix(r.Ref, "company 251") || !strings.Contains(r.Reason, "duplicate") {
		t.Errorf("invalid = %+v", r)
	}
}

func TestBadPagesEndTheListing(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		faults restfake.Faults
		text   string
	}{
		{"html page", restfake.Faults{HTML: []int{2}}, "HTML page instead of JSON"},
		{"object instead of array", restfake.Faults{NoEnvelope: []int{2}}, "the body is a JSON object, not a list of records"},
		{"truncated body", restfake.Faults{Truncate: []int{2}}, "truncated"},
		{"server error", restfake.Faults{Status: map[int]int{2: 503}}, "HTTP 503"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := newServer(t, fakeconnectwise.Options{Seed: 10, Companies: 6, Faults: tc.faults})
			l := listCustomers(openSource(t, srv, func(c *Config) { c.PageSize = 2 }))
			if l.err == nil || !strings.Contains(l.err.Error(), tc.text) || !strings.Contains(l.err.Error(), "pageId=251") {
				t.Fatalf("error %v, want one saying %q on the second page", l.err, tc.text)
			}
			if l.pages != 1 {
				t.Errorf("%d pages before the error, want 1", l.pages)
			}
		})
	}
}

func TestIncrementalContacts(t *testing.T) {
	t.Parallel()
	srv := newServer(t, fakeconnectwise.Options{Seed: 11, Companies: 2, ContactsPerCompany: 20})
	all := srv.Contacts(251)
	times := make([]time.Time, len(all))
	for i, c := range all {
		times[i] = c.LastUpdated
	}
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	since := times[len(times)/2]
	l := listContacts(openSource(t, srv, nil), 251, since)
	if l.err != nil {
		t.Fatal(l.err)
	}
	var got, want []string
	for _, c := range l.contacts {
		got = append(got, c.ExternalID)
	}
	for _, c := range all {
		if c.LastUpdated.After(since) {
			want = append(want, strconv.Itoa(c.ID))
		}
	}
	if len(want) == 0 || !slices.Equal(got, want) {
		t.Errorf("incremental contacts %v, want %v", got, want)
	}
	wantCond := "company/id=251 AND inactiveFlag=False AND lastUpdated>[" + since.Format(time.RFC3339) + "]"
	if q := srv.Requests()[0].Query.Get("conditions"); q != wantCond {
		t.Errorf("conditions=%q, want %q", q, wantCond)
	}
}

func TestContactsOfBadCompanyID(t *testing.T) {
	t.Parallel()
	srv := newServer(t, fakeconnectwise.Options{})
	src := openSource(t, srv, nil)
	for page, err := range src.Contacts(context.Background(), "250 OR 1=1", time.Time{}) {
		if !errors.Is(err, connectors.ErrNotFound) {
			t.Errorf("page %+v, error %v", page, err)
		}
	}
	if srv.RequestCount() != 0 {
		t.Error("a malformed id reached the server")
	}
}
