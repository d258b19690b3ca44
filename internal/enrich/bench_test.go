package enrich_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"selfserve/connectors"
	"selfserve/internal/enrich"
	"selfserve/internal/store"
	"selfserve/internal/store/storetest"
)

// benchBackends are SQLite and, with TEST_DATABASE_URL, PostgreSQL.
func benchBackends() map[string]func(testing.TB) *store.Store {
	m := map[string]func(testing.TB) *store.Store{
		"sqlite": func(tb testing.TB) *store.Store {
			return storetest.OpenMigrated(tb, "sqlite:"+filepath.Join(tb.TempDir(), "bench.db"))
		},
	}
	if base := os.Getenv("TEST_DATABASE_URL"); base != "" {
		m["postgres"] = func(tb testing.TB) *store.Store {
			return storetest.OpenMigrated(tb, storetest.FreshPostgresSchema(tb, base))
		}
	}
	return m
}

// BenchmarkCustomerImport imports 2000 IT Glue organizations (2 pages of
// 1000) into an empty tenant per iteration.
func BenchmarkCustomerImport(b *testing.B) {
	const n = 2000
	for name, open := range benchBackends() {
		b.Run(name, func(b *testing.B) {
			f := startFake(b, connectors.KindITGlue, size{companies: n, people: -1})
			f.settings["page_size"] = 1000
			st := open(b)
			i := 0
			for b.Loop() {
				i++
				b.StopTimer()
				bb := setupOn(b, st, fmt.Sprintf("tenant-%d", i), f)
				b.StartTimer()
				run, err := bb.run(b, store.RunKindCustomers, 0)
				must(b, err)
				if run.Created != n {
					b.Fatalf("created %d customers, want %d", run.Created, n)
				}
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "customers/s")
		})
	}
}

// BenchmarkEnrichment enriches a customer of 1000 end users, each missing
// its mobile, from its 1000 IT Glue contacts (1 page), in a fresh tenant
// per iteration.
func BenchmarkEnrichment(b *testing.B) {
	const n = 1000
	for name, open := range benchBackends() {
		b.Run(name, func(b *testing.B) {
			f := startFake(b, connectors.KindITGlue, size{companies: 1, people: n, seed: 12})
			f.settings["page_size"] = 1000
			st := open(b)
			i := 0
			filled := 0
			for b.Loop() {
				i++
				b.StopTimer()
				bb := setupOn(b, st, fmt.Sprintf("tenant-%d", i), f)
				_, err := bb.run(b, store.RunKindCustomers, 0)
				must(b, err)
				c := bb.customerOf(b, f.companies[0], "US")
				var users []connectors.User
				for j, p := range f.companies[0].people {
					users = append(users, connectors.User{ExternalID: fmt.Sprint(j), Username: fmt.Sprint("user", j), FirstName: p.first, LastName: p.last, Email: p.emails[0]})
				}
				bb.directory(b, c, users...)
				b.StartTimer()
				run, err := bb.run(b, store.RunKindContacts, 0)
				must(b, err)
				filled = run.Counts[enrich.CountMobilesFilled]
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "contacts/s")
			b.ReportMetric(float64(filled), "filled/run")
		})
	}
}
