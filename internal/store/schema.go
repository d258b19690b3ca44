package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
)

// NewSchema creates an empty PostgreSQL schema named prefix_<random> in the
// database of baseURL and returns a URL whose search_path is that schema,
// and a function that drops it. Tests and benchmarks use it to get an
// isolated database without creating databases.
func NewSchema(ctx context.Context, baseURL, prefix string) (string, func(), error) {
	b := make([]byte, 6)
	rand.Read(b)
	schema := prefix + "_" + hex.EncodeToString(b)
	admin, err := Open(ctx, baseURL)
	if err != nil {
		return "", nil, err
	}
	if admin.dialect != Postgres {
		admin.Close()
		return "", nil, fmt.Errorf("schemas need PostgreSQL, not %s", admin.dialect)
	}
	if _, err := admin.db.ExecContext(ctx, `CREATE SCHEMA `+schema); err != nil {
		admin.Close()
		return "", nil, fmt.Errorf("create schema: %w", err)
	}
	drop := func() {
		admin.db.ExecContext(context.WithoutCancel(ctx), `DROP SCHEMA `+schema+` CASCADE`)
		admin.Close()
	}
	u, err := url.Parse(baseURL)
	if err != nil {
		drop()
		return "", nil, err
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), drop, nil
}
