package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestIsUniqueViolation checks the drivers' error codes: a duplicate key
// (unique index or primary key) is a unique violation on both databases; a
// NOT NULL failure is not, nor is an error that only says so in its text.
func TestIsUniqueViolation(t *testing.T) {
	ctx := context.Background()
	urls := map[string]string{"sqlite": "sqlite:" + filepath.Join(t.TempDir(), "u.db")}
	if base := os.Getenv("TEST_DATABASE_URL"); base != "" {
		u, drop, err := NewSchema(ctx, base, "u")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(drop)
		urls["postgres"] = u
	}
	for name, url := range urls {
		t.Run(name, func(t *testing.T) {
			s, err := Open(ctx, url)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if _, err := s.db.ExecContext(ctx, `CREATE TABLE uv (id INTEGER PRIMARY KEY, k TEXT NOT NULL UNIQUE)`); err != nil {
				t.Fatal(err)
			}
			if _, err := s.exec(ctx, `INSERT INTO uv (id, k) VALUES (1, 'a')`); err != nil {
				t.Fatal(err)
			}
			for _, c := range []struct {
				sql    string
				unique bool
			}{
				{`INSERT INTO uv (id, k) VALUES (2, 'a')`, true},
				{`INSERT INTO uv (id, k) VALUES (1, 'b')`, true},
				{`INSERT INTO uv (id, k) VALUES (3, NULL)`, false},
			} {
				_, err := s.exec(ctx, c.sql)
				if err == nil {
					t.Fatalf("%s: no error", c.sql)
				}
				if got := isUniqueViolation(fmt.Errorf("wrapped: %w", err)); got != c.unique {
					t.Errorf("%s: isUniqueViolation(%v) = %v, want %v", c.sql, err, got, c.unique)
				}
			}
		})
	}
	if isUniqueViolation(errors.New("UNIQUE constraint failed: uv.k (SQLSTATE 23505)")) || isUniqueViolation(nil) {
		t.Error("an error's text alone made a unique violation")
	}
}
