// Package store keeps selfserve's data in SQL through sqlx: PostgreSQL (pgx)
// in production, SQLite (pure Go, no cgo) as the embedded default. Both run
// the same queries, written with ? placeholders and rebound per dialect; only
// the DDL of the embedded, versioned migrations differs.
//
// Every method that reads or writes tenant data takes the tenant's id and
// filters on it: an object of another tenant is ErrNotFound, never visible.
//
// The store reads and writes; it does not decide. What a sync stores is
// decided by package rules and the sync engine (internal/importer), which
// calls the store's narrow page methods in one transaction. Where a write
// can race a person or the PSA, its SQL keeps a guard that mirrors the rule
// (UpsertEndUsers' contact guard, ApplyContactFills), and the conformance
// suite (storetest) checks each guard agrees with its rule.
package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"path"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	"github.com/jmoiron/sqlx"
	"modernc.org/sqlite" // registers the "sqlite" driver
	sqlite3 "modernc.org/sqlite/lib"

	"selfserve/internal/dburl"
)

// Dialect is the SQL database in use.
type Dialect string

// The supported dialects.
const (
	Postgres Dialect = "postgres"
	SQLite   Dialect = "sqlite"
)

// Errors of the store. Methods wrap them with %w and context.
var (
	// ErrNotFound: no such object in this tenant.
	ErrNotFound = errors.New("not found")
	// ErrConflict: the write collides with an existing object or state (a
	// duplicate name, a sync already running).
	ErrConflict = errors.New("conflict")
)

//go:embed migrations
var migrations embed.FS

// Store is the database handle. It is safe for concurrent use.
type Store struct {
	db *sqlx.DB
	// relaxed is a small second pool of PostgreSQL sessions that commit
	// without waiting for the disk and plan once (Ephemeral, EphemeralTx);
	// nil on SQLite.
	relaxed *sqlx.DB
	tx      *sqlx.Tx
	q       sqlx.ExtContext // db, or tx inside InTx
	dialect Dialect
	now     func() time.Time
}

// Open connects to the database named by url: "postgres://…" (or
// "postgresql://…") or "sqlite:PATH" ("sqlite::memory:" for a private
// in-memory database). It does not migrate: call Migrate.
func Open(ctx context.Context, databaseURL string) (*Store, error) {
	dialect, dsn, err := ParseURL(databaseURL)
	if err != nil {
		return nil, err
	}
	var db *sqlx.DB
	switch dialect {
	case Postgres:
		db, err = sqlx.Open("pgx", dsn)
		if err == nil {
			db.SetMaxOpenConns(16)
			// Keep every connection idle between uses: a worker's many
			// short statements would otherwise open and close PostgreSQL
			// connections (a fork and an authentication each) all the time.
			db.SetMaxIdleConns(16)
			db.SetConnMaxIdleTime(5 * time.Minute)
		}
	case SQLite:
		db, err = sqlx.Open("sqlite", dsn)
		if err == nil {
			// One writer at a time is SQLite's nature: transactions begin
			// IMMEDIATE and wait on busy_timeout instead of failing.
			db.SetMaxOpenConns(4)
			if strings.Contains(dsn, "mode=memory") {
				db.SetMaxOpenConns(1)
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("open %s database: %w", dialect, err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.PingContext(pingCtx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to %s database: %w", dialect, err)
	}
	st := &Store{db: db, q: db, dialect: dialect, now: time.Now}
	if dialect == Postgres {
		// connects on first use
		// Its statements are the self-serve flow's key lookups: a prepared
		// statement's generic plan serves every call, where PostgreSQL
		// would otherwise plan each call anew (custom plans won on cost).
		relaxed := withRuntimeParam(withRuntimeParam(dsn, "synchronous_commit", "off"), "plan_cache_mode", "force_generic_plan")
		if st.relaxed, err = sqlx.Open("pgx", relaxed); err != nil {
			db.Close()
			return nil, fmt.Errorf("open %s database: %w", dialect, err)
		}
		st.relaxed.SetMaxOpenConns(8)
		st.relaxed.SetMaxIdleConns(8)
		st.relaxed.SetConnMaxIdleTime(5 * time.Minute)
	}
	return st, nil
}

// ParseURL splits a database URL (as dburl.Parse reads it) into
// its dialect and the driver's DSN.
func ParseURL(databaseURL string) (Dialect, string, error) {
	dialect, target, err := dburl.Parse(databaseURL)
	if err != nil {
		return "", "", fmt.Errorf("database URL: %w", err)
	}
	if dialect == dburl.Postgres {
		return Postgres, withCustomPlans(target), nil
	}
	path, extra, _ := strings.Cut(target, "?")
	params := "_pragma=foreign_keys(1)&_pragma=busy_timeout(15000)&_txlock=immediate&_time_format=sqlite"
	if extra != "" {
		params += "&" + extra
	}
	if path == ":memory:" {
		return SQLite, "file::memory:?mode=memory&" + params, nil
	}
	return SQLite, "file:" + path + "?" + params + "&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)", nil
}

// withCustomPlans sets plan_cache_mode=force_custom_plan unless the URL sets
// it. pgx caches prepared statements, and PostgreSQL plans a cached
// statement once generically after five runs: a plan made while a table was
// small (a first import into an empty table) then scans the whole table on
// every page, and an import turns quadratic. Custom plans cost a little
// planning per query and keep index lookups.
func withCustomPlans(pgURL string) string {
	u, err := url.Parse(pgURL)
	if err != nil {
		return pgURL
	}
	q := u.Query()
	if q.Get("plan_cache_mode") == "" {
		q.Set("plan_cache_mode", "force_custom_plan")
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// withRuntimeParam sets a session parameter in a PostgreSQL URL (pgx sends
// parameters it does not know at connection start).
func withRuntimeParam(pgURL, name, value string) string {
	u, err := url.Parse(pgURL)
	if err != nil {
		return pgURL
	}
	q := u.Query()
	q.Set(name, value)
	u.RawQuery = q.Encode()
	return u.String()
}

// Dialect returns the database dialect.
func (s *Store) Dialect() Dialect { return s.dialect }

// DB returns the underlying handle, for benchmarks and tests that measure the
// bare SQL baseline.
func (s *Store) DB() *sqlx.DB { return s.db }

// SetClock replaces the clock used for created/updated stamps (tests).
func (s *Store) SetClock(now func() time.Time) { s.now = now }

// Close closes the database.
func (s *Store) Close() error {
	if s.relaxed != nil {
		s.relaxed.Close()
	}
	return s.db.Close()
}

// Ping checks the database answers (readiness).
func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

func (s *Store) stamp() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

func (s *Store) rebind(q string) string { return s.db.Rebind(q) }

// Migrate applies the embedded migrations not yet applied, each in its own
// transaction. Concurrent callers are serialised (an advisory lock on
// PostgreSQL, an immediate transaction on SQLite).
func (s *Store) Migrate(ctx context.Context) (applied []int, err error) {
	files, err := s.migrationFiles()
	if err != nil {
		return nil, err
	}
	conn, err := s.db.Connx(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if s.dialect == Postgres {
		if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock(7357001)`); err != nil {
			return nil, fmt.Errorf("migrate: lock: %w", err)
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(7357001)`)
	}
	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)`); err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	for _, f := range files {
		tx, err := conn.BeginTxx(ctx, nil)
		if err != nil {
			return applied, fmt.Errorf("migrate: %w", err)
		}
		var n int
		if err := tx.GetContext(ctx, &n, s.rebind(`SELECT COUNT(*) FROM schema_migrations WHERE version = ?`), f.version); err != nil {
			tx.Rollback()
			return applied, fmt.Errorf("migrate: %w", err)
		}
		if n > 0 {
			tx.Rollback()
			continue
		}
		if _, err := tx.ExecContext(ctx, f.sql); err != nil {
			tx.Rollback()
			return applied, fmt.Errorf("migrate: version %d (%s): %w", f.version, f.name, err)
		}
		if _, err := tx.ExecContext(ctx, s.rebind(`INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`), f.version, s.stamp().Format(time.RFC3339)); err != nil {
			tx.Rollback()
			return applied, fmt.Errorf("migrate: version %d: %w", f.version, err)
		}
		if err := tx.Commit(); err != nil {
			return applied, fmt.Errorf("migrate: version %d: %w", f.version, err)
		}
		applied = append(applied, f.version)
	}
	return applied, nil
}

// ErrSchemaBehind: a migration of this build is not applied to the
// database (run `selfserve migrate`).
var ErrSchemaBehind = errors.New("the database schema is behind this build")

// CheckSchema checks that every migration of this build is applied
// (readiness): it is ErrSchemaBehind naming the missing versions otherwise.
func (s *Store) CheckSchema(ctx context.Context) error {
	files, err := s.migrationFiles()
	if err != nil {
		return err
	}
	var applied []int
	if err := sqlx.SelectContext(ctx, s.db, &applied, `SELECT version FROM schema_migrations`); err != nil {
		return fmt.Errorf("%w: no migrations table (%v): run selfserve migrate", ErrSchemaBehind, err)
	}
	have := make(map[int]bool, len(applied))
	for _, v := range applied {
		have[v] = true
	}
	var missing []string
	for _, f := range files {
		if !have[f.version] {
			missing = append(missing, strconv.Itoa(f.version))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: migrations %s are not applied: run selfserve migrate", ErrSchemaBehind, strings.Join(missing, ", "))
	}
	return nil
}

type migration struct {
	version int
	name    string
	sql     string
}

func (s *Store) migrationFiles() ([]migration, error) {
	dir := path.Join("migrations", string(s.dialect))
	entries, err := fs.ReadDir(migrations, dir)
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || !strings.HasSuffix(e.Name(), ".sql") {
			return nil, fmt.Errorf("migration file %s: want NNNN_name.sql", e.Name())
		}
		b, err := migrations.ReadFile(path.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: e.Name(), sql: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	return out, nil
}

// InTx runs fn with a Store bound to one transaction, committing when fn
// returns nil and rolling back otherwise. Inside a transaction InTx simply
// calls fn: the outer transaction decides.
func (s *Store) InTx(ctx context.Context, fn func(tx *Store) error) error {
	if s.tx != nil {
		return fn(s)
	}
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	inner := *s
	inner.tx, inner.q = tx, tx
	if err := fn(&inner); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

func (s *Store) get(ctx context.Context, dest any, query string, args ...any) error {
	return sqlx.GetContext(ctx, s.q, dest, s.rebind(query), args...)
}

func (s *Store) list(ctx context.Context, dest any, query string, args ...any) error {
	return sqlx.SelectContext(ctx, s.q, dest, s.rebind(query), args...)
}

func (s *Store) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return s.q.ExecContext(ctx, s.rebind(query), args...)
}

// insertID runs an INSERT … RETURNING id and returns the id.
func (s *Store) insertID(ctx context.Context, query string, args ...any) (int64, error) {
	var id int64
	err := sqlx.GetContext(ctx, s.q, &id, s.rebind(query+" RETURNING id"), args...)
	return id, err
}

// ErrUnavailable: the database cannot be reached (see IsUnavailable).
var ErrUnavailable = errors.New("the database cannot be reached")

// IsUnavailable reports whether err says the database could not be reached
// or dropped the connection (refused or reset connections, a server
// shutting down or refusing connections, a broken pooled connection), as
// opposed to a failed query: callers answer "try again later" (503).
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	var netErr *net.OpError
	var pgErr *pgconn.PgError
	var connectErr *pgconn.ConnectError
	switch {
	case errors.Is(err, ErrUnavailable), errors.As(err, &netErr), errors.As(err, &connectErr),
		errors.Is(err, driver.ErrBadConn), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return true
	case errors.As(err, &pgErr):
		// Class 08: connection exception; 57P01-57P03: the server is
		// shutting down or not accepting connections; 53300: too many
		// connections.
		return strings.HasPrefix(pgErr.Code, "08") || pgErr.Code == "57P01" || pgErr.Code == "57P02" || pgErr.Code == "57P03" || pgErr.Code == "53300"
	}
	return false
}

// isUniqueViolation reports whether err is a unique-constraint failure.
func isUniqueViolation(err error) bool {
	if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok {
		return pgErr.Code == pgUniqueViolation
	}
	if liteErr, ok := errors.AsType[*sqlite.Error](err); ok {
		code := liteErr.Code()
		return code == sqlite3.SQLITE_CONSTRAINT_UNIQUE || code == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

// pgUniqueViolation is PostgreSQL's SQLSTATE unique_violation.
const pgUniqueViolation = "23505"

// notFound turns sql.ErrNoRows into ErrNotFound with a message.
func notFound(err error, what string, id any) error {
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%s %v: %w", what, id, ErrNotFound)
	}
	return fmt.Errorf("%s %v: %w", what, id, err)
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Truncate(time.Microsecond)
}

func timeOrZero(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

// EphemeralTx runs fn in a transaction whose commit does not wait for the
// disk on PostgreSQL (synchronous_commit off; SQLite is unchanged): for
// writes whose loss in a crash is harmless, such as a challenge or its
// verification (the end user asks again). Atomicity and isolation are
// those of any transaction.
func (s *Store) EphemeralTx(ctx context.Context, fn func(tx *Store) error) error {
	if s.tx == nil && s.relaxed != nil {
		return s.Ephemeral().InTx(ctx, fn)
	}
	return s.InTx(ctx, func(tx *Store) error {
		if tx.dialect == Postgres {
			if _, err := tx.exec(ctx, `SET LOCAL synchronous_commit TO off`); err != nil {
				return fmt.Errorf("relax the commit: %w", err)
			}
		}
		return fn(tx)
	})
}

// Ephemeral returns the store whose single writes commit without waiting
// for the disk (PostgreSQL sessions with synchronous_commit off; the store
// itself on SQLite or inside a transaction): a one-statement write of the
// kind EphemeralTx is for, in one round trip instead of four. Its sessions
// use generic plans: meant for key lookups (the self-serve flow's reads
// too), not for searches whose best plan depends on the values.
func (s *Store) Ephemeral() *Store {
	if s.tx != nil || s.relaxed == nil {
		return s
	}
	e := *s
	e.db, e.q = s.relaxed, s.relaxed
	return &e
}

// batchSize bounds the rows of one multi-row statement (29 parameters a row
// stays well under PostgreSQL's 65535 and SQLite's 32766 parameters).
const batchSize = 500

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}
