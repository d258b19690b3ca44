package hudu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"selfserve/connectors"
	"selfserve/connectors/connectortest"
	"selfserve/connectors/hudu/fakehudu"
	"selfserve/connectors/internal/restclient/restfake"
)

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func newServer(t *testing.T, opts fakehudu.Options) *fakehudu.Server {
	t.Helper()
	srv := fakehudu.New(opts)
	t.Cleanup(srv.Close)
	return srv
}

// openSource opens a source on srv with a fast limiter; edit adjusts the
// config.
func openSource(t *testing.T, srv *fakehudu.Server, edit func(*Config)) *source {
	t.Helper()
	cfg := &Config{BaseURL: srv.URL, APIKey: fakehudu.DefaultAPIKey, RequestsPerMinute: 60000}
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

func listContacts(src connectors.ContactSource, companyID string, since time.Time) listing {
	var l listing
	for page, err := range src.Contacts(context.Background(), companyID, since) {
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

// assetRequests returns the requests for /api/v1/assets.
func assetRequests(srv *fakehudu.Server) []restfake.Request {
	var out []restfake.Request
	for _, r := range srv.Requests() {
		if r.Path == "/api/v1/assets" {
			out = append(out, r)
		}
	}
	return out
}

func TestConformance(t *testing.T) {
	t.Parallel()
	srv := newServer(t, fakehudu.Options{Seed: 1, Companies: 8, PeoplePerCompany: 7})
	companyID := srv.Companies()[1].ID
	connectortest.RunCustomerSource(t, connectortest.CustomerSourceCase{
		Open: func(t *testing.T) connectors.CustomerSource {
			return openSource(t, srv, func(c *Config) { c.PageSize = 3 })
		},
		WantCustomers: 8,
		MinPages:      3,
	})
	connectortest.RunContactSource(t, connectortest.ContactSourceCase{
		Open: func(t *testing.T) connectors.ContactSource {
			return openSource(t, srv, func(c *Config) { c.PageSize = 3 })
		},
		CustomerExternalID: companyID,
		WantContacts:       7,
		MinPages:           3,
	})
}

func TestCustomersMatchTheServer(t *testing.T) {
	t.Parallel()
	srv := newServer(t, fakehudu.Options{Seed: 2, Companies: 5})
	l := listCustomers(openSource(t, srv, nil))
	if l.err != nil {
		t.Fatal(l.err)
	}
	want := srv.Companies()
	if len(l.customers) != len(want) || len(l.invalid) != 0 {
		t.Fatalf("got %d customers and %d invalid, want %d", len(l.customers), len(l.invalid), len(want))
	}
	for i, c := range l.customers {
		if w := want[i]; c.ExternalID != w.ID || c.Name != w.Name || c.Type != w.CompanyType || c.Ref != "company "+w.ID {
			t.Errorf("customer %d = %+v, want %+v", i, c, w)
		}
	}
	req := srv.Requests()[0]
	if req.Path != "/api/v1/companies" || req.Query.Get("page_size") != "1000" || req.Query.Get("page") != "1" || req.Query.Get("archived") != "false" {
		t.Errorf("request %s %v", req.Path, req.Query)
	}
	if req.Header.Get("x-api-key") != fakehudu.DefaultAPIKey {
		t.Error("x-api-key not sent")
	}
}

// TestContactsMatchTheServer covers every field shape the fake serves:
// plain values, label variants, HTML, IT Glue migration tables, JSON
// strings, numbers and names split from the asset name.
func TestContactsMatchTheServer(t *testing.T) {
	t.Parallel()
	srv := newServer(t, fakehudu.Options{Seed: 3, Companies: 2, PeoplePerCompany: 14})
	company := srv.Companies()[1]
	l := listContacts(openSource(t, srv, func(c *Config) { c.PageSize = 5 }), company.ID, time.Time{})
	if l.err != nil {
		t.Fatal(l.err)
	}
	want := srv.People(company.ID)
	if len(l.contacts) != len(want) || len(l.invalid) != 0 {
		t.Fatalf("got %d contacts and %d invalid, want %d", len(l.contacts), len(l.invalid), len(want))
	}
	for i, c := range l.contacts {
		w := want[i]
		if c.ExternalID != w.ID || c.CustomerExternalID != company.ID || c.FirstName != w.WantFirstName || c.LastName != w.WantLastName || !c.UpdatedAt.Equal(w.UpdatedAt) {
			t.Errorf("contact %d (shape %d) = %+v, want %+v", i, i%7, c, w)
		}
		if !slices.Equal(c.Emails, w.WantEmails) {
			t.Errorf("contact %s (shape %d): emails %q, want %q", c.ExternalID, i%7, c.Emails, w.WantEmails)
		}
		if !slices.Equal(c.Mobiles, w.WantMobiles) {
			t.Errorf("contact %s (shape %d): mobiles %q, want %q", c.ExternalID, i%7, c.Mobiles, w.WantMobiles)
		}
	}
	q := assetRequests(srv)[0].Query
	if q.Get("asset_layout_id") != "7" || q.Get("company_id") != company.ID || q.Get("archived") != "false" {
		t.Errorf("asset query %v", q)
	}
	if n := len(srv.Requests()) - len(assetRequests(srv)); n != 1 {
		t.Errorf("%d layout lookups, want 1", n)
	}
}

func TestConfiguredLabelsAndLayout(t *testing.T) {
	t.Parallel()
	srv := newServer(t, fakehudu.Options{Seed: 4, Companies: 1, PeoplePerCompany: 7, PeopleLayout: "Contacts"})
	company := srv.Companies()[0]
	src := openSource(t, srv, func(c *Config) {
		c.PeopleLayout = "contacts" // case differs
		c.EmailFields = []string{"emails"}
		c.MobileFields = []string{"PHONES"}
	})
	l := listContacts(src, company.ID, time.Time{})
	if l.err != nil {
		t.Fatal(l.err)
	}
	people := srv.People(company.ID)
	for i, c := range l.contacts {
		p := people[i]
		switch i % 7 {
		case 0, 1: // Email/Mobile/EMAIL/cell fields are not configured
			if len(c.Mobiles) != 0 {
				t.Errorf("contact %s: mobiles %q from unconfigured fields", c.ExternalID, c.Mobiles)
			}
		case 2, 3, 6: // Phones fields: only the mobile-labelled numbers
			if !slices.Equal(c.Mobiles, p.WantMobiles) {
				t.Errorf("contact %s: mobiles %q, want %q", c.ExternalID, c.Mobiles, p.WantMobiles)
			}
		}
		if i%7 == 1 && len(c.Emails) != 0 {
			t.Errorf("contact %s: emails %q from an unconfigured EMAIL field", c.ExternalID, c.Emails)
		}
	}
}

func TestMissingLayout(t *testing.T) {
	t.Parallel()
	srv := newServer(t, fakehudu.Options{Seed: 5})
	src := openSource(t, srv, func(c *Config) { c.PeopleLayout = "Peop" })
	for name, err := range map[string]error{
		"ping":     src.Ping(context.Background()),
		"contacts": listContacts(src, "1", time.Time{}).err,
	} {
		if !errors.Is(err, connectors.ErrNotFound) {
			t.Fatalf("%s: error %v, want ErrNotFound", name, err)
		}
		for _, want := range []string{`"Peop"`, "people_layout", `similar layouts: "People", "People Archive"`} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: error %q does not say %s", name, err, want)
			}
		}
	}
	if err := openSource(t, srv, nil).Ping(context.Background()); err != nil {
		t.Errorf("ping with the default layout: %v", err)
	}
}

// TestPaginationEnds checks each way a Hudu listing ends, by the number of
// asset requests it takes.
func TestPaginationEnds(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name         string
		people       int
		pageSize     int
		ignoreSize   bool
		wantRequests int
	}{
		{"short page", 7, 3, false, 3},
		{"empty page after full ones", 6, 3, false, 3},
		{"no people", -1, 3, false, 1},
		{"server ignores page_size: 25s then short", 30, 1000, true, 2},
		{"server ignores page_size: 25 then empty", 25, 1000, true, 2},
		{"page of 25 when 25 were asked is full", 25, 25, false, 2},
		{"page_size honoured: 30 of 1000 is short", 30, 1000, false, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := newServer(t, fakehudu.Options{Seed: 6, Companies: 1, PeoplePerCompany: tc.people, IgnorePageSize: tc.ignoreSize})
			l := listContacts(openSource(t, srv, func(c *Config) { c.PageSize = tc.pageSize }), "1", time.Time{})
			if l.err != nil {
				t.Fatal(l.err)
			}
			if len(l.contacts) != max(tc.people, 0) {
				t.Errorf("got %d contacts, want %d", len(l.contacts), tc.people)
			}
			if n := len(assetRequests(srv)); n != tc.wantRequests {
				t.Errorf("took %d asset requests, want %d", n, tc.wantRequests)
			}
		})
	}
}

func TestThrottledMidListing(t *testing.T) {
	t.Parallel()
	// Request 1 looks up the layout; request 3 is the second page.
	srv := newServer(t, fakehudu.Options{Seed: 7, Companies: 1, PeoplePerCompany: 7, Faults: restfake.Faults{Throttle: map[int]string{3: "1"}}})
	start := time.Now()
	l := listContacts(openSource(t, srv, func(c *Config) { c.PageSize = 3 }), "1", time.Time{})
	if l.err != nil {
		t.Fatal(l.err)
	}
	if len(l.contacts) != 7 {
		t.Errorf("got %d contacts, want 7", len(l.contacts))
	}
	if d := time.Since(start); d < time.Second {
		t.Errorf("listing took %s: the 1s Retry-After was not waited", d)
	}
}

func TestThrottledWithoutRetryAfter(t *testing.T) {
	t.Parallel()
	srv := newServer(t, fakehudu.Options{Seed: 7, Companies: 7, Faults: restfake.Faults{Throttle: map[int]string{2: ""}}})
	l := listCustomers(openSource(t, srv, func(c *Config) { c.PageSize = 3 }))
	wait, ok := connectors.RetryAfter(l.err)
	if !ok || wait != time.Minute {
		t.Fatalf("error %v: want a rate limit of 1m", l.err)
	}
	if !strings.Contains(l.err.Error(), "Retry later") {
		t.Errorf("error %q does not quote Hudu", l.err)
	}
	if len(l.customers) != 3 {
		t.Errorf("%d customers before the throttle, want 3", len(l.customers))
	}
}

func TestBadCredentials(t *testing.T) {
	t.Parallel()
	srv := newServer(t, fakehudu.Options{APIKey: "right"})
	src := openSource(t, srv, func(c *Config) { c.APIKey = "wrong-key-value" })
	for name, err := range map[string]error{
		"ping":      src.Ping(context.Background()),
		"customers": listCustomers(src).err,
		"contacts":  listContacts(src, "1", time.Time{}).err,
	} {
		if !errors.Is(err, connectors.ErrUnauthorized) {
			t.Errorf("%s: error %v, want ErrUnauthorized", name, err)
			continue
		}
		if !strings.Contains(err.Error(), "403") || !strings.Contains(err.Error(), "scope") || strings.Contains(err.Error(), "wrong-key-value") {
			t.Errorf("%s: error %q", name, err)
		}
	}
}

func TestConfig(t *testing.T) {
	t.Parallel()
	_, err := (&Config{PageSize: 2000, EmailFields: []string{"Email", " "}}).Open(connectors.Env{})
	if !errors.Is(err, connectors.ErrInvalidConfig) {
		t.Fatalf("error %v", err)
	}
	for _, want := range []string{"base_url is required", "api_key is required", "page_size 2000", "email_fields has an empty label"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if _, err := (&Config{BaseURL: "http://hudu.example", APIKey: "k"}).Open(connectors.Env{}); err == nil || !strings.Contains(err.Error(), "https") {
		t.Errorf("plain http to a remote host: %v", err)
	}
	for in, want := range map[string]string{
		"https://acme.huducloud.com":             "https://acme.huducloud.com/api/v1",
		"https://acme.huducloud.com/api/v1/":     "https://acme.huducloud.com/api/v1",
		"https://docs.example.com/hudu/api/v1":   "https://docs.example.com/hudu/api/v1",
		"  https://acme.huducloud.com/         ": "https://acme.huducloud.com/api/v1",
	} {
		src, err := (&Config{BaseURL: in, APIKey: "k"}).Open(connectors.Env{})
		if err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		if got := src.(*source).client.BaseURL(); got != want {
			t.Errorf("%q: base %s, want %s", in, got, want)
		}
	}
	src, _ := (&Config{BaseURL: "https://x.example", APIKey: "k"}).Open(connectors.Env{})
	s := src.(*source)
	if s.layoutName != "People" || !slices.Equal(s.emailFields, DefaultEmailFields) || !slices.Equal(s.mobileFields, DefaultMobileFields) || s.pageSize != 1000 {
		t.Errorf("defaults: %+v", s)
	}
}

func TestRegistryDecodeKeepsTheKeySecret(t *testing.T) {
	t.Parallel()
	srv := newServer(t, fakehudu.Options{APIKey: "hudu-topsecret"})
	reg := connectors.NewRegistry(map[connectors.Kind]func() connectors.Config{connectors.KindHudu: func() connectors.Config { return new(Config) }})
	settings := json.RawMessage(fmt.Sprintf(`{"base_url":%q,"people_layout":"People","email_fields":["Email"],"mobile_fields":["Mobile"],"requests_per_minute":6000}`, srv.URL))
	secrets := json.RawMessage(`{"api_key":"hudu-topsecret"}`)
	cfg, err := reg.Decode(connectors.KindHudu, settings, secrets)
	if err != nil {
		t.Fatal(err)
	}
	if s := fmt.Sprintf("%+v %#v", cfg, cfg); strings.Contains(s, "topsecret") {
		t.Errorf("config prints the key: %s", s)
	}
	src, err := reg.Open(connectors.KindHudu, "conn-1", settings, secrets, testLogger(t))
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
	srv := newServer(t, fakehudu.Options{Seed: 8, Companies: 6, PeoplePerCompany: 5, Records: map[string]fakehudu.RecordFault{
		"2":    fakehudu.WrongType,
		"3":    fakehudu.StringIDs, // tolerated
		"4":    fakehudu.MissingID,
		"1002": fakehudu.WrongType,
		"1003": fakehudu.StringIDs,
		"1004": fakehudu.MissingID,
	}})
	src := openSource(t, srv, func(c *Config) { c.PageSize = 4 })
	l := listCustomers(src)
	if l.err != nil {
		t.Fatal(l.err)
	}
	if len(l.customers) != 4 || len(l.invalid) != 2 {
		t.Fatalf("got %d customers and %d invalid, want 4 and 2: %+v", len(l.customers), len(l.invalid), l.invalid)
	}
	if r := l.invalid[0]; r.Ref != "company 2" || !strings.Contains(r.Reason, "field name is a JSON number, want a string") {
		t.Errorf("invalid[0] = %+v", r)
	}
	if r := l.invalid[1]; !strings.Contains(r.Ref, "record 4 of GET /api/v1/companies") || !strings.Contains(r.Reason, "no id") {
		t.Errorf("invalid[1] = %+v", r)
	}
	lc := listContacts(src, "1", time.Time{})
	if lc.err != nil {
		t.Fatal(lc.err)
	}
	if len(lc.contacts) != 3 || len(lc.invalid) != 2 {
		t.Fatalf("got %d contacts and %d invalid, want 3 and 2: %+v", len(lc.contacts), len(lc.invalid), lc.invalid)
	}
	if r := lc.invalid[0]; r.Ref != "asset 1002" || !strings.Contains(r.Reason, "fields is a JSON string, want a list") {
		t.Errorf("invalid[0] = %+v", r)
	}
	if lc.contacts[1].ExternalID != "1003" || lc.contacts[1].CustomerExternalID != "1" {
		t.Errorf("asset 1003 with string ids: %+v", lc.contacts[1])
	}
}

func TestDuplicateAcrossPages(t *testing.T) {
	t.Parallel()
	srv := newServer(t, fakehudu.Options{Seed: 9, Companies: 1, PeoplePerCompany: 7, Records: map[string]fakehudu.RecordFault{"1003": fakehudu.Duplicate}})
	l := listContacts(openSource(t, srv, func(c *Config) { c.PageSize = 3 }), "1", time.Time{})
	if l.err != nil {
		t.Fatal(l.err)
	}
	if len(l.contacts) != 7 || len(l.invalid) != 1 {
		t.Fatalf("got %d contacts and %d invalid, want 7 and 1", len(l.contacts), len(l.invalid))
	}
	if r := l.invalid[0]; r.Ref != "asset 1003" || !strings.Contains(r.Reason, "duplicate") {
		t.Errorf("invalid = %+v", r)
	}
}

func TestServerIgnoringPagesIsAnError(t *testing.T) {
	t.Parallel()
	// A server that ignores page serves page 1 again and again; with a
	// short-page end condition that would never stop. Marking every record
	// of page 1 Duplicate makes page 2 repeat page 1 exactly.
	faults := map[string]fakehudu.RecordFault{}
	for id := 1001; id <= 1003; id++ {
		faults[fmt.Sprint(id)] = fakehudu.Duplicate
	}
	srv := newServer(t, fakehudu.Options{Seed: 10, Companies: 1, PeoplePerCompany: 3, Records: faults})
	l := listContacts(openSource(t, srv, func(c *Config) { c.PageSize = 3 }), "1", time.Time{})
	if !errors.Is(l.err, connectors.ErrBadResponse) || !strings.Contains(l.err.Error(), "ignore the paging") {
		t.Fatalf("error %v, want a paging error", l.err)
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
		{"missing envelope", restfake.Faults{NoEnvelope: []int{2}}, `the body is a JSON array, not the documented object`},
		{"truncated body", restfake.Faults{Truncate: []int{2}}, "truncated"},
		{"server error", restfake.Faults{Status: map[int]int{2: 500}}, "HTTP 500"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := newServer(t, fakehudu.Options{Seed: 11, Companies: 7, Faults: tc.faults})
			l := listCustomers(openSource(t, srv, func(c *Config) { c.PageSize = 3 }))
			if l.err == nil || !strings.Contains(l.err.Error(), tc.text) || !strings.Contains(l.err.Error(), "page=2") {
				t.Fatalf("error %v, want one saying %q on page 2", l.err, tc.text)
			}
			if l.pages != 1 {
				t.Errorf("%d pages before the error, want 1", l.pages)
			}
		})
	}
}

func TestIncrementalContacts(t *testing.T) {
	t.Parallel()
	srv := newServer(t, fakehudu.Options{Seed: 12, Companies: 1, PeoplePerCompany: 14})
	people := srv.People("1")
	times := make([]time.Time, len(people))
	for i, p := range people {
		times[i] = p.UpdatedAt
	}
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	since := times[len(times)/2]
	l := listContacts(openSource(t, srv, nil), "1", since)
	if l.err != nil {
		t.Fatal(l.err)
	}
	var want []string
	for _, p := range people {
		if p.UpdatedAt.After(since) {
			want = append(want, p.ID)
		}
	}
	var got []string
	for _, c := range l.contacts {
		got = append(got, c.ExternalID)
	}
	if !slices.Equal(got, want) {
		t.Errorf("incremental contacts %v, want %v", got, want)
	}
	if v := assetRequests(srv)[0].Query.Get("updated_at"); v != since.Format(time.RFC3339)+"," {
		t.Errorf("updated_at=%q", v)
	}
}

func TestContactsOfBadCompanyID(t *testing.T) {
	t.Parallel()
	srv := newServer(t, fakehudu.Options{})
	if err := listContacts(openSource(t, srv, nil), "1 OR 1=1", time.Time{}).err; !errors.Is(err, connectors.ErrNotFound) {
		t.Errorf("error %v", err)
	}
	if srv.RequestCount() != 0 {
		t.Error("a malformed id reached the server")
	}
}
