package itglue

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
	"selfserve/connectors/internal/restclient/restfake"
	"selfserve/connectors/itglue/fakeitglue"
)

// testLogger sends the connector's logs to the test's output.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// openSource opens a source on srv with a fast limiter; edit adjusts the
// config.
func openSource(t *testing.T, srv *fakeitglue.Server, edit func(*Config)) *source {
	t.Helper()
	cfg := &Config{BaseURL: srv.URL, APIKey: fakeitglue.DefaultAPIKey, RequestsPerMinute: 60000}
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

func newServer(t *testing.T, opts fakeitglue.Options) *fakeitglue.Server {
	t.Helper()
	srv := fakeitglue.New(opts)
	t.Cleanup(srv.Close)
	return srv
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

func listContacts(src connectors.ContactSource, orgID string, since time.Time) listing {
	var l listing
	for page, err := range src.Contacts(context.Background(), orgID, since) {
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
	srv := newServer(t, fakeitglue.Options{Seed: 1, Organizations: 7, ContactsPerOrganization: 8})
	orgID := srv.Organizations()[2].ID
	connectortest.RunCustomerSource(t, connectortest.CustomerSourceCase{
		Open: func(t *testing.T) connectors.CustomerSource {
			return openSource(t, srv, func(c *Config) { c.PageSize = 3 })
		},
		WantCustomers: 7,
		MinPages:      3,
	})
	connectortest.RunContactSource(t, connectortest.ContactSourceCase{
		Open: func(t *testing.T) connectors.ContactSource {
			return openSource(t, srv, func(c *Config) { c.PageSize = 3 })
		},
		CustomerExternalID: orgID,
		WantContacts:       8,
		MinPages:           3,
	})
}

func TestCustomersMatchTheServer(t *testing.T) {
	t.Parallel()
	srv := newServer(t, fakeitglue.Options{Seed: 2, Organizations: 4})
	l := listCustomers(openSource(t, srv, nil))
	if l.err != nil {
		t.Fatal(l.err)
	}
	want := srv.Organizations()
	if len(l.customers) != len(want) {
		t.Fatalf("got %d customers, want %d", len(l.customers), len(want))
	}
	for i, c := range l.customers {
		w := want[i]
		if c.ExternalID != w.ID || c.Name != w.Name || c.Type != w.TypeName || c.Status != w.StatusName || c.Ref == "" {
			t.Errorf("customer %d = %+v, want %+v", i, c, w)
		}
	}
	req := srv.Requests()[0]
	if req.Path != "/organizations" || req.Query.Get("page[size]") != "1000" || req.Query.Get("page[number]") != "1" || req.Query.Get("sort") != "id" {
		t.Errorf("first request %s %v", req.Path, req.Query)
	}
	if req.Header.Get("x-api-key") != fakeitglue.DefaultAPIKey {
		t.Error("x-api-key not sent")
	}
}

func TestCustomerFilters(t *testing.T) {
	t.Parallel()
	srv := newServer(t, fakeitglue.Options{Seed: 3, Organizations: 12})
	l := listCustomers(openSource(t, srv, func(c *Config) {
		c.OrganizationTypeID = 1
		c.OrganizationStatusID = 2
	}))
	if l.err != nil {
		t.Fatal(l.err)
	}
	var want []string
	for _, o := range srv.Organizations() {
		if o.TypeID == 1 && o.StatusID == 2 {
			want = append(want, o.ID)
		}
	}
	var got []string
	for _, c := range l.customers {
		got = append(got, c.ExternalID)
	}
	if len(want) == 0 || !slices.Equal(got, want) {
		t.Errorf("filtered customers %v, want %v", got, want)
	}
	q := srv.Requests()[0].Query
	if q.Get("filter[organization_type_id]") != "1" || q.Get("filter[organization_status_id]") != "2" {
		t.Errorf("filters not sent: %v", q)
	}
}

func TestContactsMatchTheServer(t *testing.T) {
	t.Parallel()
	srv := newServer(t, fakeitglue.Options{Seed: 4, Organizations: 2, ContactsPerOrganization: 12})
	org := srv.Organizations()[1]
	l := listContacts(openSource(t, srv, func(c *Config) { c.PageSize = 5 }), org.ID, time.Time{})
	if l.err != nil {
		t.Fatal(l.err)
	}
	want := srv.Contacts(org.ID)
	if len(l.contacts) != len(want) || l.pages != 3 {
		t.Fatalf("got %d contacts in %d pages, want %d in 3", len(l.contacts), l.pages, len(want))
	}
	mobiles := 0
	for i, c := range l.contacts {
		w := want[i]
		if c.ExternalID != w.ID || c.CustomerExternalID != org.ID || c.FirstName != w.FirstName || c.LastName != w.LastName || !c.UpdatedAt.Equal(w.UpdatedAt) {
			t.Errorf("contact %d = %+v, want %+v", i, c, w)
		}
		if !slices.Equal(c.Emails, w.WantEmails) {
			t.Errorf("contact %s emails %q, want %q", c.ExternalID, c.Emails, w.WantEmails)
		}
		if !slices.Equal(c.Mobiles, w.WantMobiles) {
			t.Errorf("contact %s mobiles %q, want %q (phones %+v)", c.ExternalID, c.Mobiles, w.WantMobiles, w.Phones)
		}
		mobiles += len(c.Mobiles)
	}
	if mobiles == 0 {
		t.Error("no mobile found at all")
	}
	if p := srv.Requests()[0].Path; p != "/organizations/"+org.ID+"/relationships/contacts" {
		t.Errorf("path %s", p)
	}
}

func TestMobileLabels(t *testing.T) {
	t.Parallel()
	for label, want := range map[string]bool{"Mobile": true, "Cell": true, "mobile": true, "CELL": true, " Cell ": true, "Work": false, "Home": false, "Mobile Fax": false, "": false} {
		if got := isMobileLabel(label); got != want {
			t.Errorf("isMobileLabel(%q) = %v", label, got)
		}
	}
}

// TestPaginationEnds checks each way IT Glue's meta ends a listing, by the
// number of requests it takes.
func TestPaginationEnds(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name         string
		meta         fakeitglue.MetaStyle
		orgs         int
		wantRequests int
	}{
		{"total pages reached", fakeitglue.MetaFull, 7, 3},
		{"next page null", fakeitglue.MetaNoTotals, 7, 3},
		{"current page equals total pages though next page set", fakeitglue.MetaNextAlways, 7, 3},
		{"no meta, short page", fakeitglue.MetaNone, 7, 3},
		{"no meta, empty page after full ones", fakeitglue.MetaNone, 6, 3},
		{"empty listing", fakeitglue.MetaFull, 0, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			opts := fakeitglue.Options{Seed: 5, Organizations: tc.orgs, Meta: tc.meta}
			if tc.orgs == 0 {
				opts.Organizations = -1 // none
			}
			srv := newServer(t, opts)
			l := listCustomers(openSource(t, srv, func(c *Config) { c.PageSize = 3 }))
			if l.err != nil {
				t.Fatal(l.err)
			}
			if len(l.customers) != max(tc.orgs, 0) {
				t.Errorf("got %d customers, want %d", len(l.customers), tc.orgs)
			}
			if n := srv.RequestCount(); n != tc.wantRequests {
				t.Errorf("took %d requests, want %d", n, tc.wantRequests)
			}
		})
	}
}

func TestThrottledMidListing(t *testing.T) {
	t.Parallel()
	srv := newServer(t, fakeitglue.Options{Seed: 6, Organizations: 9, Faults: restfake.Faults{Throttle: map[int]string{2: "1"}}})
	start := time.Now()
	l := listCustomers(openSource(t, srv, func(c *Config) { c.PageSize = 3 }))
	if l.err != nil {
		t.Fatal(l.err)
	}
	if len(l.customers) != 9 {
		t.Errorf("got %d customers, want 9", len(l.customers))
	}
	if d := time.Since(start); d < time.Second {
		t.Errorf("listing took %s: the 1s Retry-After was not waited", d)
	}
	if n := srv.RequestCount(); n != 4 {
		t.Errorf("%d requests, want 4 (3 pages + 1 throttled)", n)
	}
}

func TestThrottledWithoutRetryAfter(t *testing.T) {
	t.Parallel()
	srv := newServer(t, fakeitglue.Options{Seed: 6, Organizations: 9, Faults: restfake.Faults{Throttle: map[int]string{2: ""}}})
	l := listCustomers(openSource(t, srv, func(c *Config) { c.PageSize = 3 }))
	wait, ok := connectors.RetryAfter(l.err)
	if !ok || wait != time.Minute {
		t.Fatalf("error %v: want a rate limit of 1m", l.err)
	}
	if len(l.customers) != 3 || l.pages != 1 {
		t.Errorf("before the throttle: %d customers in %d pages, want 3 in 1", len(l.customers), l.pages)
	}
}

func TestClientSideRate(t *testing.T) {
	t.Parallel()
	srv := newServer(t, fakeitglue.Options{Seed: 7, Organizations: 10})
	start := time.Now()
	l := listCustomers(openSource(t, srv, func(c *Config) {
		c.PageSize = 1
		c.RequestsPerMinute = 600 // 10 per second
	}))
	if l.err != nil {
		t.Fatal(l.err)
	}
	// 11 requests (10 pages, then meta says stop at 10) at one per 100ms.
	if d := time.Since(start); d < 900*time.Millisecond {
		t.Errorf("%d requests took %s at 600/minute", srv.RequestCount(), d)
	}
}

func TestBadCredentials(t *testing.T) {
	t.Parallel()
	srv := newServer(t, fakeitglue.Options{APIKey: "right"})
	src := openSource(t, srv, func(c *Config) { c.APIKey = "wrong-key-value" })
	for name, err := range map[string]error{
		"ping":      src.Ping(context.Background()),
		"customers": listCustomers(src).err,
		"contacts":  listContacts(src, "101", time.Time{}).err,
	} {
		if !errors.Is(err, connectors.ErrUnauthorized) || !connectors.IsPermanent(err) {
			t.Errorf("%s: error %v, want ErrUnauthorized", name, err)
			continue
		}
		if !strings.Contains(err.Error(), "403") || !strings.Contains(err.Error(), "check api_key") {
			t.Errorf("%s: error %q does not explain", name, err)
		}
		if strings.Contains(err.Error(), "wrong-key-value") {
			t.Errorf("%s: error leaks the key", name)
		}
	}
	if err := openSource(t, srv, func(c *Config) { c.APIKey = "right" }).Ping(context.Background()); err != nil {
		t.Errorf("ping with the right key: %v", err)
	}
}

func TestRegions(t *testing.T) {
	t.Parallel()
	for region, want := range map[string]string{
		"":    "https://api.itglue.com",
		"us":  "https://api.itglue.com",
		"EU":  "https://api.eu.itglue.com",
		"au ": "https://api.au.itglue.com",
	} {
		src, err := (&Config{Region: region, APIKey: "k"}).Open(connectors.Env{})
		if err != nil {
			t.Fatalf("region %q: %v", region, err)
		}
		if got := src.(*source).client.BaseURL(); got != want {
			t.Errorf("region %q: base %s, want %s", region, got, want)
		}
	}
	src, err := (&Config{Region: "eu", BaseURL: "https://itglue-proxy.example/", APIKey: "k"}).Open(connectors.Env{})
	if err != nil {
		t.Fatal(err)
	}
	if got := src.(*source).client.BaseURL(); got != "https://itglue-proxy.example" {
		t.Errorf("base_url override: %s", got)
	}
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	_, err := (&Config{Region: "mars", PageSize: 5000, BaseURL: "http://itglue.example", RequestsPerMinute: -1}).Open(connectors.Env{ID: "c1"})
	if !errors.Is(err, connectors.ErrInvalidConfig) {
		t.Fatalf("error %v, want ErrInvalidConfig", err)
	}
	for _, want := range []string{"api_key is required", `region "mars"`, "page_size 5000", "base_url", "must use https", "requests_per_minute"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

func TestRegistryDecodeKeepsTheKeySecret(t *testing.T) {
	t.Parallel()
	srv := newServer(t, fakeitglue.Options{APIKey: "ITG.topsecret"})
	reg := connectors.NewRegistry(map[connectors.Kind]func() connectors.Config{connectors.KindITGlue: func() connectors.Config { return new(Config) }})
	settings := json.RawMessage(fmt.Sprintf(`{"region":"eu","base_url":%q,"page_size":10,"requests_per_minute":6000}`, srv.URL))
	secrets := json.RawMessage(`{"api_key":"ITG.topsecret"}`)
	cfg, err := reg.Decode(connectors.KindITGlue, settings, secrets)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{fmt.Sprintf("%v", cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg)} {
		if strings.Contains(s, "topsecret") {
			t.Errorf("config prints the key: %s", s)
		}
	}
	src, err := reg.Open(connectors.KindITGlue, "conn-1", settings, secrets, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if err := src.(connectors.Pinger).Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Decode(connectors.KindITGlue, json.RawMessage(`{"regoin":"eu"}`), nil); !errors.Is(err, connectors.ErrInvalidConfig) {
		t.Errorf("unknown setting: %v", err)
	}
}

func TestWrongTypesAndMissingIDs(t *testing.T) {
	t.Parallel()
	srv := newServer(t, fakeitglue.Options{Seed: 8, Organizations: 6, ContactsPerOrganization: 6, Records: map[string]fakeitglue.RecordFault{
		"102":  fakeitglue.WrongType,
		"103":  fakeitglue.NumericIDs, // tolerated: the same id either way
		"104":  fakeitglue.MissingID,
		"1002": fakeitglue.WrongType,
		"1003": fakeitglue.NumericIDs,
		"1004": fakeitglue.MissingID,
	}})
	src := openSource(t, srv, func(c *Config) { c.PageSize = 4 })
	l := listCustomers(src)
	if l.err != nil {
		t.Fatal(l.err)
	}
	if len(l.customers) != 4 || len(l.invalid) != 2 {
		t.Fatalf("got %d customers and %d invalid, want 4 and 2: %+v", len(l.customers), len(l.invalid), l.invalid)
	}
	if !slices.ContainsFunc(l.customers, func(c connectors.Customer) bool { return c.ExternalID == "103" }) {
		t.Error("organization 103 with a numeric id was dropped")
	}
	if r := l.invalid[0]; r.Ref != "organization 102" || !strings.Contains(r.Reason, "attributes.name is a JSON number, want a string") {
		t.Errorf("invalid[0] = %+v", r)
	}
	if r := l.invalid[1]; !strings.Contains(r.Ref, "record 4 of GET /organizations") || !strings.Contains(r.Reason, "no id") {
		t.Errorf("invalid[1] = %+v", r)
	}

	lc := listContacts(src, "101", time.Time{})
	if lc.err != nil {
		t.Fatal(lc.err)
	}
	if len(lc.contacts) != 4 || len(lc.invalid) != 2 {
		t.Fatalf("got %d contacts and %d invalid, want 4 and 2: %+v", len(lc.contacts), len(lc.invalid), lc.invalid)
	}
	if r := lc.invalid[0]; r.Ref != "contact 1002" || !strings.Contains(r.Reason, "first-name") {
		t.Errorf("invalid[0] = %+v", r)
	}
}

func TestDuplicateAcrossPages(t *testing.T) {
	t.Parallel()
	// Organization 103 ends page 1 (size 3) and is served again on page 2.
	srv := newServer(t, fakeitglue.Options{Seed: 9, Organizations: 7, Records: map[string]fakeitglue.RecordFault{"103": fakeitglue.Duplicate}})
	l := listCustomers(openSource(t, srv, func(c *Config) { c.PageSize = 3 }))
	if l.err != nil {
		t.Fatal(l.err)
	}
	if len(l.customers) != 7 || len(l.invalid) != 1 {
		t.Fatalf("got %d customers and %d invalid, want 7 and 1", len(l.customers), len(l.invalid))
	}
	if r := l.invalid[0]; r.Ref != "organization 103" || !strings.Contains(r.Reason, "duplicate") {
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
		{"html page", restfake.Faults{HTML: []int{2}}, `HTML page instead of JSON (title "Sign in – Company Portal")`},
		{"missing envelope", restfake.Faults{NoEnvelope: []int{2}}, `no "data" list (members: links, meta)`},
		{"truncated body", restfake.Faults{Truncate: []int{2}}, "truncated"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := newServer(t, fakeitglue.Options{Seed: 10, Organizations: 9, Faults: tc.faults})
			l := listCustomers(openSource(t, srv, func(c *Config) { c.PageSize = 3 }))
			if !errors.Is(l.err, connectors.ErrBadResponse) {
				t.Fatalf("error %v, want ErrBadResponse", l.err)
			}
			if !strings.Contains(l.err.Error(), tc.text) || !strings.Contains(l.err.Error(), "page[number]=2") {
				t.Errorf("error %q does not say %q on page 2", l.err, tc.text)
			}
			if l.pages != 1 {
				t.Errorf("%d pages before the error, want 1", l.pages)
			}
		})
	}
}

func TestServerErrorIsTemporary(t *testing.T) {
	t.Parallel()
	srv := newServer(t, fakeitglue.Options{Faults: restfake.Faults{Status: map[int]int{1: 502}}})
	err := listCustomers(openSource(t, srv, nil)).err
	if !errors.Is(err, connectors.ErrUnavailable) || connectors.IsPermanent(err) {
		t.Fatalf("error %v, want ErrUnavailable", err)
	}
}

func TestIncrementalContacts(t *testing.T) {
	t.Parallel()
	srv := newServer(t, fakeitglue.Options{Seed: 11, Organizations: 1, ContactsPerOrganization: 20})
	org := srv.Organizations()[0]
	all := srv.Contacts(org.ID)
	slices.SortFunc(all, func(a, b fakeitglue.Contact) int { return b.UpdatedAt.Compare(a.UpdatedAt) })
	since := all[5].UpdatedAt // five contacts are newer
	l := listContacts(openSource(t, srv, func(c *Config) { c.PageSize = 3 }), org.ID, since)
	if l.err != nil {
		t.Fatal(l.err)
	}
	var got, want []string
	for _, c := range l.contacts {
		got = append(got, c.ExternalID)
	}
	for _, c := range all[:5] {
		want = append(want, c.ID)
	}
	if !slices.Equal(got, want) {
		t.Errorf("incremental contacts %v, want %v", got, want)
	}
	if n := srv.RequestCount(); n != 2 {
		t.Errorf("%d requests, want 2: paging must stop at the checkpoint", n)
	}
	if s := srv.Requests()[0].Query.Get("sort"); s != "-updated_at" {
		t.Errorf("sort=%q, want -updated_at", s)
	}
}

func TestContactsOfUnknownOrganization(t *testing.T) {
	t.Parallel()
	srv := newServer(t, fakeitglue.Options{})
	src := openSource(t, srv, nil)
	if err := listContacts(src, "999", time.Time{}).err; !errors.Is(err, connectors.ErrNotFound) || !strings.Contains(err.Error(), "organization 999") {
		t.Errorf("unknown organization: %v", err)
	}
	if err := listContacts(src, "../etc", time.Time{}).err; !errors.Is(err, connectors.ErrNotFound) {
		t.Errorf("malformed id: %v", err)
	}
	if srv.RequestCount() != 1 {
		t.Errorf("a malformed id reached the server")
	}
}

func TestFakeDataIsDeterministic(t *testing.T) {
	t.Parallel()
	a := newServer(t, fakeitglue.Options{Seed: 42})
	b := newServer(t, fakeitglue.Options{Seed: 42})
	c := newServer(t, fakeitglue.Options{Seed: 43})
	if !slices.Equal(a.Organizations(), b.Organizations()) {
		t.Error("the same seed gave different organizations")
	}
	if slices.Equal(a.Organizations(), c.Organizations()) {
		t.Error("different seeds gave the same organizations")
	}
	for i, ct := range a.Contacts("101") {
		if ct.ID != b.Contacts("101")[i].ID || !slices.Equal(ct.WantMobiles, b.Contacts("101")[i].WantMobiles) {
			t.Errorf("the same seed gave different contact %d", i)
		}
	}
}
