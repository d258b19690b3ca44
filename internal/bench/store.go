package bench

import (
	"context"
	"errors"

	"selfserve/internal/store"
)

// FreshStore opens a migrated store in a new PostgreSQL schema of env's
// database; cleanup closes it and drops the schema.
func FreshStore(ctx context.Context, env *Env) (*store.Store, func(), error) {
	if env.PostgresURL == "" {
		return nil, nil, errors.New("no PostgreSQL: set TEST_DATABASE_URL")
	}
	u, drop, err := store.NewSchema(ctx, env.PostgresURL, "bench")
	if err != nil {
		return nil, nil, err
	}
	st, err := store.Open(ctx, u)
	if err == nil {
		_, err = st.Migrate(ctx)
	}
	if err != nil {
		drop()
		return nil, nil, err
	}
	return st, func() { st.Close(); drop() }, nil
}
