package enrich_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"strconv"
	"strings"
	"testing"

	"selfserve/connectors"
	"selfserve/connectors/connectwise"
	"selfserve/connectors/connectwise/fakeconnectwise"
	"selfserve/connectors/file"
	"selfserve/connectors/hudu"
	"selfserve/connectors/hudu/fakehudu"
	"selfserve/connectors/itglue"
	"selfserve/connectors/itglue/fakeitglue"
	"selfserve/internal/connection"
	"selfserve/internal/enrich"
	"selfserve/internal/rules"
	"selfserve/internal/secretbox"
	"selfserve/internal/store"
	"selfserve/internal/store/storetest"
)

// company and person are a fake PSA's data, the same for the three PSAs.
type company struct {
	id, name string
	people   []person
}

type person struct {
	id, first, last string
	emails, mobiles []string
}

// fake is one of the three fake PSA servers (real HTTP servers speaking the
// vendor's wire format), seen uniformly.
type fake struct {
	kind      connectors.Kind
	settings  map[string]any
	secrets   map[string]any
	companies []company
	// setFaults injects request-level failures, numbered from the
	// server's first request.
	setFaults func(faults)
	requests  func() int
}

// faults are request-level failures by request number: an HTTP status, a
// 429 without Retry-After (throttle) or with one (retryAfter), an HTML page,
// a body without its envelope.
type faults struct {
	status                     map[int]int
	throttle, html, noEnvelope []int
	retryAfter                 map[int]string
}

// size is how much data a fake serves.
type size struct {
	companies, people int
	seed              uint64
	// itglueRecords injects record defects (IT Glue only).
	itglueRecords map[string]fakeitglue.RecordFault
}

var kinds = []connectors.Kind{connectors.KindITGlue, connectors.KindHudu, connectors.KindConnectWise}

// startFake starts a fake of kind serving sz, paged 2 records at a time.
func startFake(t testing.TB, kind connectors.Kind, sz size) *fake {
	t.Helper()
	throttles := func(x faults) map[int]string {
		m := maps.Clone(x.retryAfter)
		if m == nil {
			m = map[int]string{}
		}
		for _, n := range x.throttle {
			m[n] = ""
		}
		return m
	}
	// Each fake's Options.Faults is the same type, named only inside the
	// connectors: fill it through a zero Options of that fake.
	f := &fake{kind: kind, settings: map[string]any{"page_size": 2, "requests_per_minute": 100000}}
	switch kind {
	case connectors.KindITGlue:
		srv := fakeitglue.New(fakeitglue.Options{Seed: sz.seed, Organizations: sz.companies, ContactsPerOrganization: sz.people, Records: sz.itglueRecords})
		t.Cleanup(srv.Close)
		f.settings["base_url"] = srv.URL
		f.secrets = map[string]any{"api_key": fakeitglue.DefaultAPIKey}
		for _, o := range srv.Organizations() {
			c := company{id: o.ID, name: o.Name}
			for _, p := range srv.Contacts(o.ID) {
				c.people = append(c.people, person{p.ID, p.FirstName, p.LastName, p.WantEmails, p.WantMobiles})
			}
			f.companies = append(f.companies, c)
		}
		f.setFaults = func(x faults) {
			var o fakeitglue.Options
			o.Faults.Status, o.Faults.Throttle, o.Faults.HTML, o.Faults.NoEnvelope = x.status, throttles(x), x.html, x.noEnvelope
			srv.SetFaults(o.Faults)
		}
		f.requests = srv.RequestCount
	case connectors.KindHudu:
		srv := fakehudu.New(fakehudu.Options{Seed: sz.seed, Companies: sz.companies, PeoplePerCompany: sz.people})
		t.Cleanup(srv.Close)
		f.settings["base_url"] = srv.URL
		f.secrets = map[string]any{"api_key": fakehudu.DefaultAPIKey}
		for _, co := range srv.Companies() {
			c := company{id: co.ID, name: co.Name}
			for _, p := range srv.People(co.ID) {
				c.people = append(c.people, person{p.ID, p.WantFirstName, p.WantLastName, p.WantEmails, p.WantMobiles})
			}
			f.companies = append(f.companies, c)
		}
		f.setFaults = func(x faults) {
			var o fakehudu.Options
			o.Faults.Status, o.Faults.Throttle, o.Faults.HTML, o.Faults.NoEnvelope = x.status, throttles(x), x.html, x.noEnvelope
			srv.SetFaults(o.Faults)
		}
		f.requests = srv.RequestCount
	case connectors.KindConnectWise:
		srv := fakeconnectwise.New(fakeconnectwise.Options{Seed: sz.seed, Companies: sz.companies, ContactsPerCompany: sz.people})
		t.Cleanup(srv.Close)
		f.settings["base_url"] = srv.APIRoot()
		f.settings["company_id"] = fakeconnectwise.DefaultCompanyID
		f.settings["client_id"] = fakeconnectwise.DefaultClientID
		f.secrets = map[string]any{"public_key": fakeconnectwise.DefaultPublicKey, "private_key": fakeconnectwise.DefaultPrivateKey}
		for _, co := range srv.Companies() {
			c := company{id: strconv.Itoa(co.ID), name: co.Name}
			for _, p := range srv.Contacts(co.ID) {
				c.people = append(c.people, person{strconv.Itoa(p.ID), p.FirstName, p.LastName, p.WantEmails, p.WantMobiles})
			}
			f.companies = append(f.companies, c)
		}
		f.setFaults = func(x faults) {
			var o fakeconnectwise.Options
			o.Faults.Status, o.Faults.Throttle, o.Faults.HTML, o.Faults.NoEnvelope = x.status, throttles(x), x.html, x.noEnvelope
			srv.SetFaults(o.Faults)
		}
		f.requests = srv.RequestCount
	default:
		t.Fatalf("no fake for %s", kind)
	}
	return f
}

// registry knows the three PSAs and the file connector.
func registry() connectors.Registry {
	return connectors.NewRegistry(map[connectors.Kind]func() connectors.Config{
		connectors.KindITGlue:      func() connectors.Config { return new(itglue.Config) },
		connectors.KindHudu:        func() connectors.Config { return new(hudu.Config) },
		connectors.KindConnectWise: func() connectors.Config { return new(connectwise.Config) },
		connectors.KindFile:        func() connectors.Config { return new(file.Config) },
	})
}

// bundle is a store with a tenant and a PSA connection to a fake.
type bundle struct {
	st     *store.Store
	en     *enrich.Enricher
	box    *secretbox.Box
	tenant store.Tenant
	conn   store.Connection
	fake   *fake
}

func setup(t *testing.T, open func(*testing.T) *store.Store, f *fake) *bundle {
	t.Helper()
	return setupOn(t, open(t), "msp", f)
}

// setupOn adds a tenant named tenant with a connection to f to st.
func setupOn(t testing.TB, st *store.Store, tenant string, f *fake) *bundle {
	t.Helper()
	ctx := context.Background()
	box, err := secretbox.New(bytes.Repeat([]byte{7}, 32))
	must(t, err)
	b := &bundle{st: st, box: box, fake: f}
	b.tenant, _, err = st.UpsertTenant(ctx, store.Tenant{Name: tenant, Subscription: rules.SubscriptionBundle, SelfServe: true, TimeZone: "America/New_York", SendHour: 9, ReminderDays: 10})
	must(t, err)
	settings, err := json.Marshal(f.settings)
	must(t, err)
	secrets, err := json.Marshal(f.secrets)
	must(t, err)
	sealed, err := connection.Opener{Box: box}.SealSecrets(secrets)
	must(t, err)
	// The name keys the connectors' shared request budget: one per test.
	name := fmt.Sprintf("%s-%s-%s", f.kind, strings.ReplaceAll(t.Name(), "/", "-"), tenant)
	b.conn, _, err = st.UpsertConnection(ctx, store.Connection{TenantID: b.tenant.ID, Name: name, Kind: f.kind, Settings: settings, SealedSecrets: sealed}, false)
	must(t, err)
	b.en = &enrich.Enricher{Store: st, Registry: registry(), Secrets: box, Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))}
	return b
}

// run records and runs a PSA run of kind (customerID 0: all customers).
func (b *bundle) run(t testing.TB, kind store.RunKind, customerID int64) (store.PSARun, error) {
	t.Helper()
	return b.runIn(context.Background(), t, kind, customerID)
}

// runIn is run with ctx (which may carry a ThrottleWaiter, as the CLI's
// does).
func (b *bundle) runIn(ctx context.Context, t testing.TB, kind store.RunKind, customerID int64) (store.PSARun, error) {
	t.Helper()
	var cid *int64
	if customerID != 0 {
		cid = &customerID
	}
	run, err := b.en.Start(ctx, b.tenant.ID, b.conn.ID, kind, cid, "test")
	must(t, err)
	switch kind {
	case store.RunKindCustomers:
		return b.en.ImportCustomers(ctx, b.tenant.ID, b.conn.ID, run.ID)
	case store.RunKindContacts:
		return b.en.EnrichContacts(ctx, b.tenant.ID, b.conn.ID, run.ID)
	default:
		return b.en.Sync(ctx, b.tenant.ID, b.conn.ID, run.ID)
	}
}

func (b *bundle) customers(t testing.TB) map[string]store.Customer {
	t.Helper()
	cs, err := b.st.Customers(context.Background(), b.tenant.ID)
	must(t, err)
	m := map[string]store.Customer{}
	for _, c := range cs {
		key := "manual:" + c.Name
		if c.ExternalID != "" {
			key = c.Source + ":" + c.ExternalID
		}
		if _, dup := m[key]; dup {
			t.Fatalf("customer %s twice", key)
		}
		m[key] = c
	}
	return m
}

func forEachBackend(t *testing.T, fn func(t *testing.T, open func(*testing.T) *store.Store)) {
	for _, be := range storetest.Backends() {
		t.Run(be.Name, func(t *testing.T) {
			t.Parallel()
			fn(t, be.Open)
		})
	}
}

// forEachPSA runs fn for each PSA kind on each backend.
func forEachPSA(t *testing.T, fn func(t *testing.T, kind connectors.Kind, open func(*testing.T) *store.Store)) {
	for _, kind := range kinds {
		t.Run(string(kind), func(t *testing.T) {
			t.Parallel()
			forEachBackend(t, func(t *testing.T, open func(*testing.T) *store.Store) { fn(t, kind, open) })
		})
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func problems(run store.PSARun) string {
	var b strings.Builder
	for _, p := range run.Problems() {
		fmt.Fprintf(&b, "%s: %s\n", p.Ref, p.Reason)
	}
	return b.String()
}

// usable returns the person's first mobile in E.164 for region, if any.
func usable(p person, region string) (string, bool) {
	for _, m := range p.mobiles {
		if e164, err := rules.NormalizePhone(m, region); err == nil && e164 != "" {
			return e164, true
		}
	}
	return "", false
}

// uniqueNames returns the people whose first and last name no other person
// of the company shares, with at least one email address.
func uniqueNames(c company) []person {
	count := map[string]int{}
	key := func(p person) string { return strings.ToLower(p.first + " " + p.last) }
	for _, p := range c.people {
		count[key(p)]++
	}
	var out []person
	for _, p := range c.people {
		if count[key(p)] == 1 && len(p.emails) > 0 && p.first != "" && p.last != "" {
			out = append(out, p)
		}
	}
	return out
}
