package storetest

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"selfserve/internal/store"
)

// Backend is a database the tests run against.
type Backend struct {
	Name string
	// Open returns a fresh, migrated, empty store, closed after the test.
	Open func(t *testing.T) *store.Store
}

// Backends returns SQLite always and PostgreSQL when TEST_DATABASE_URL is
// set (each store in a schema of its own, dropped after the test).
func Backends() []Backend {
	b := []Backend{{Name: "sqlite", Open: func(t *testing.T) *store.Store {
		return OpenMigrated(t, "sqlite:"+filepath.Join(t.TempDir(), "test.db"))
	}}}
	if base := os.Getenv("TEST_DATABASE_URL"); base != "" {
		b = append(b, Backend{Name: "postgres", Open: func(t *testing.T) *store.Store {
			return OpenMigrated(t, FreshPostgresSchema(t, base))
		}})
	}
	return b
}

// OpenMigrated opens and migrates a store, closed at the end of the test.
func OpenMigrated(t testing.TB, databaseURL string) *store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), databaseURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

// FreshPostgresSchema creates an empty schema, dropped after the test, and
// returns base with its search_path set to it.
func FreshPostgresSchema(t testing.TB, base string) string {
	t.Helper()
	u, drop, err := store.NewSchema(context.Background(), base, "t")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(drop)
	return u
}
