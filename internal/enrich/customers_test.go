package enrich_test

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"selfserve/connectors"
	"selfserve/connectors/itglue/fakeitglue"
	"selfserve/internal/enrich"
	"selfserve/internal/store"
)

// TestCustomerImport: a multi-page import creates a customer per company,
// links the customer a technician created under the same name (case aside),
// and a second import changes nothing.
func TestCustomerImport(t *testing.T) {
	t.Parallel()
	forEachPSA(t, func(t *testing.T, kind connectors.Kind, open func(*testing.T) *store.Store) {
		ctx := context.Background()
		b := setup(t, open, startFake(t, kind, size{companies: 5, people: 1, seed: 1}))
		companies := b.fake.companies
		manual, err := b.st.CreateCustomer(ctx, store.Customer{TenantID: b.tenant.ID, Name: strings.ToUpper(companies[1].name), TimeZone: "Europe/Paris", DefaultRegion: "FR"})
		must(t, err)

		run, err := b.run(t, store.RunKindCustomers, 0)
		must(t, err)
		n := len(companies)
		if run.Status != store.RunSucceeded || run.Kind != store.RunKindCustomers || run.Pages < 3 ||
			run.Counts[enrich.CountCustomersCreated] != n-1 || run.Counts[enrich.CountCustomersLinked] != 1 || run.Created != n-1 || run.Processed != n {
			t.Fatalf("first import: %+v\n%s", run, problems(run))
		}
		if !strings.Contains(run.Summary, "existing customer linked by name") {
			t.Errorf("summary %q", run.Summary)
		}
		cs := b.customers(t)
		if len(cs) != n {
			t.Fatalf("%d customers, want %d: %v", len(cs), n, cs)
		}
		for _, co := range companies {
			c, ok := cs[string(kind)+":"+co.id]
			if !ok {
				t.Fatalf("company %s (%s) not imported", co.id, co.name)
			}
			if co.id == companies[1].id {
				if c.ID != manual.ID || c.Name != manual.Name || c.TimeZone != "Europe/Paris" || c.DefaultRegion != "FR" {
					t.Errorf("the manual customer was not linked as it was: %+v", c)
				}
			} else if c.Name != co.name || c.TimeZone != "" || c.DefaultRegion != "" {
				t.Errorf("created customer %+v, want %q with the tenant's time zone and no region", c, co.name)
			}
		}

		again, err := b.run(t, store.RunKindCustomers, 0)
		must(t, err)
		if again.Counts[enrich.CountCustomersUnchanged] != n || again.Created != 0 || again.Updated != 0 || len(b.customers(t)) != n {
			t.Fatalf("second import: %+v", again)
		}
	})
}

// TestCustomerImportFailsMidwayThenRetries: a server error on the third
// request leaves the pages committed before it and nothing of the failed
// one; the retry completes the import without duplicating anything.
func TestCustomerImportFailsMidwayThenRetries(t *testing.T) {
	t.Parallel()
	forEachPSA(t, func(t *testing.T, kind connectors.Kind, open func(*testing.T) *store.Store) {
		b := setup(t, open, startFake(t, kind, size{companies: 7, people: 1, seed: 2}))
		b.fake.setFaults(faults{status: map[int]int{3: http.StatusInternalServerError}})
		run, err := b.run(t, store.RunKindCustomers, 0)
		if !errors.Is(err, connectors.ErrUnavailable) || run.Status != store.RunFailed || !strings.Contains(run.Error, "500") {
			t.Fatalf("failed import: err=%v run=%+v", err, run)
		}
		before := len(b.customers(t))
		if before != 4 || run.Created != 4 || run.Pages != 2 {
			t.Fatalf("after the failure: %d customers, run %+v; want the 2 committed pages of 2", before, run)
		}
		b.fake.setFaults(faults{})
		retry, err := b.run(t, store.RunKindCustomers, 0)
		must(t, err)
		n := len(b.fake.companies)
		if got := len(b.customers(t)); got != n || retry.Created != n-before || retry.Counts[enrich.CountCustomersUnchanged] != before {
			t.Fatalf("retry: %d customers (want %d), run %+v", got, n, retry)
		}
	})
}

// TestRateLimitIsReturnedAndTheRunResumes: a throttle mid-listing ends the
// run with the connector's *RateLimitError (for the worker to wait without
// burning a retry); a worker's enricher keeps the run, and running it again
// resumes it without counting the replayed page twice.
func TestRateLimitIsReturnedAndTheRunResumes(t *testing.T) {
	t.Parallel()
	forEachPSA(t, func(t *testing.T, kind connectors.Kind, open func(*testing.T) *store.Store) {
		ctx := context.Background()
		b := setup(t, open, startFake(t, kind, size{companies: 5, people: 1, seed: 3}))
		b.en.KeepRunOnInterrupt = true
		b.fake.setFaults(faults{throttle: []int{2}})
		run, err := b.run(t, store.RunKindCustomers, 0)
		wait, throttled := connectors.RetryAfter(err)
		if !throttled || wait <= 0 || wait > 2*time.Minute {
			t.Fatalf("throttled import: err=%v, want a RateLimitError with a wait", err)
		}
		kept, err := b.st.PSARun(ctx, b.tenant.ID, run.ID)
		must(t, err)
		if kept.Status != store.RunRunning || kept.Resume != "customers:1" || kept.Created != 2 {
			t.Fatalf("interrupted run: %+v, want running after page 1", kept)
		}
		b.fake.setFaults(faults{})
		done, err := b.en.ImportCustomers(ctx, b.tenant.ID, b.conn.ID, run.ID)
		must(t, err)
		n := len(b.fake.companies)
		if done.Status != store.RunSucceeded || done.ID != run.ID || done.Created != n || done.Processed != n ||
			done.Counts[enrich.CountCustomersCreated] != n || done.Counts[enrich.CountCustomersUnchanged] != 0 || len(b.customers(t)) != n {
			t.Fatalf("resumed run: %+v", done)
		}
	})
}

// TestInlineRunWaitsOutThrottling: a run with a ThrottleWaiter in its
// context (as the CLI runs it) waits out a throttled customer page (no
// Retry-After: 2 s) and a throttled contact page (Retry-After: 3 s), goes on
// from the throttled page and ends as an unthrottled run does.
func TestInlineRunWaitsOutThrottling(t *testing.T) {
	t.Parallel()
	forEachPSA(t, func(t *testing.T, kind connectors.Kind, open func(*testing.T) *store.Store) {
		sz := size{companies: 5, people: 3, seed: 5}
		ref := setup(t, open, startFake(t, kind, sz))
		want, err := ref.run(t, store.RunKindPSA, 0)
		must(t, err)
		requests := ref.fake.requests()

		b := setup(t, open, startFake(t, kind, sz))
		b.fake.setFaults(faults{throttle: []int{2}, retryAfter: map[int]string{requests - 1: "3"}})
		var waits []time.Duration
		var said []string
		budget := &connectors.ThrottleBudget{
			Max:    10 * time.Minute,
			Sleep:  func(ctx context.Context, d time.Duration) error { waits = append(waits, d); return ctx.Err() },
			Report: func(ctx context.Context, th connectors.Throttle) { said = append(said, th.Describe(ctx)) },
		}
		got, err := b.runIn(connectors.WithThrottleWaiter(context.Background(), budget), t, store.RunKindPSA, 0)
		must(t, err)
		if got.Status != store.RunSucceeded || !maps.Equal(got.Counts, want.Counts) || got.Processed != want.Processed {
			t.Fatalf("throttled run %+v\nwant the counts of the unthrottled run %+v", got, want)
		}
		if !slices.Equal(waits, []time.Duration{2 * time.Second, 3 * time.Second}) || b.fake.requests() != requests+2 {
			t.Errorf("waits %v and %d requests, want [2s 3s] and %d", waits, b.fake.requests(), requests+2)
		}
		if len(said) != 2 || !strings.Contains(said[0], "asked us to slow down: waiting 2 s, page 2 of customers of "+b.conn.Name) ||
			!strings.Contains(said[1], "waiting 3 s, page ") || !strings.Contains(said[1], " of contacts of ") {
			t.Errorf("messages %q", said)
		}
	})
}

// TestRunsOfTheWrongConnection: a directory connection is not a PSA, and a
// finished run is not run again.
func TestRunsOfTheWrongConnection(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, open func(*testing.T) *store.Store) {
		ctx := context.Background()
		b := setup(t, open, startFake(t, connectors.KindITGlue, size{companies: 1, people: 1}))
		cu, err := b.st.CreateCustomer(ctx, store.Customer{TenantID: b.tenant.ID, Name: "Contoso"})
		must(t, err)
		dir, _, err := b.st.UpsertConnection(ctx, store.Connection{TenantID: b.tenant.ID, CustomerID: &cu.ID, Name: "contoso-local", Kind: connectors.KindFile, Settings: []byte(`{"path":"x.csv"}`)}, false)
		must(t, err)
		if _, err := b.en.Start(ctx, b.tenant.ID, dir.ID, store.RunKindCustomers, nil, "test"); !errors.Is(err, enrich.ErrNotPSA) {
			t.Fatalf("customer import of a file connection: %v, want ErrNotPSA", err)
		}
		queued, err := b.st.CreateRun(ctx, b.tenant.ID, dir.ID, store.ModeFull, "api", store.RunQueued, false, 0)
		must(t, err)
		run, err := b.en.ImportCustomers(ctx, b.tenant.ID, dir.ID, queued.ID)
		if !errors.Is(err, enrich.ErrNotPSA) || run.Status != store.RunFailed || !strings.Contains(run.Error, "sync it instead") {
			t.Fatalf("queued run of a file connection: err=%v run=%+v, want failed with ErrNotPSA", err, run)
		}
		done, err := b.run(t, store.RunKindCustomers, 0)
		must(t, err)
		if _, err := b.en.ImportCustomers(ctx, b.tenant.ID, b.conn.ID, done.ID); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("running a finished run again: %v, want ErrConflict", err)
		}
	})
}

// TestBadResponsesFailTheRun: an HTML page or a body without its envelope
// in the middle of a listing fails the run with ErrBadResponse; the pages
// before it stay, nothing of the bad one is stored.
func TestBadResponsesFailTheRun(t *testing.T) {
	t.Parallel()
	forEachPSA(t, func(t *testing.T, kind connectors.Kind, open func(*testing.T) *store.Store) {
		for name, f := range map[string]faults{"html": {html: []int{2}}, "no envelope": {noEnvelope: []int{2}}} {
			b := setup(t, open, startFake(t, kind, size{companies: 5, people: 1, seed: 8}))
			b.fake.setFaults(f)
			run, err := b.run(t, store.RunKindCustomers, 0)
			if !errors.Is(err, connectors.ErrBadResponse) || run.Status != store.RunFailed || run.Error == "" {
				t.Fatalf("%s: err=%v run=%+v, want a failed run with ErrBadResponse", name, err, run.SyncRun)
			}
			if n := len(b.customers(t)); n != 2 || run.Created != 2 {
				t.Fatalf("%s: %d customers after the failure, want the first page's 2", name, n)
			}
		}
	})
}

// TestBadRecordsAreReported: a record of the wrong type and an id listed
// again on the next page are reported per record; the rest is imported.
func TestBadRecordsAreReported(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, open func(*testing.T) *store.Store) {
		b := setup(t, open, startFake(t, connectors.KindITGlue, size{companies: 5, people: 1, seed: 9,
			itglueRecords: map[string]fakeitglue.RecordFault{"102": fakeitglue.WrongType, "104": fakeitglue.Duplicate}}))
		run, err := b.run(t, store.RunKindCustomers, 0)
		must(t, err)
		text := problems(run)
		if run.Status != store.RunSucceeded || run.Created != 4 || run.Invalid != 2 || run.Counts[enrich.CountCustomersInvalid] != 2 ||
			!strings.Contains(text, "organization 102") || !strings.Contains(text, "104") {
			t.Fatalf("import with bad records: %+v %v\n%s", run.SyncRun, run.Counts, text)
		}
		if _, ok := b.customers(t)["itglue:102"]; ok {
			t.Error("the record of the wrong type was imported")
		}
	})
}
