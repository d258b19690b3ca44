package store_test

import (
	"os"
	"testing"

	"selfserve/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	backends := storetest.Backends()
	if len(backends) == 1 && os.Getenv("TEST_DATABASE_URL") == "" {
		t.Log("TEST_DATABASE_URL is not set: PostgreSQL skipped (make test sets it)")
	}
	for _, b := range backends {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			storetest.Run(t, b.Open)
		})
	}
}
