package dburl

import "testing"

func TestParse(t *testing.T) {
	t.Parallel()
	cases := []struct {
		raw     string
		dialect Dialect
		dsn     string
	}{
		{"sqlite:selfserve.db", SQLite, "selfserve.db"},
		{"sqlite:///var/lib/selfserve/db.sqlite", SQLite, "/var/lib/selfserve/db.sqlite"},
		{"sqlite:data/x.db?_pragma=busy_timeout(5000)", SQLite, "data/x.db?_pragma=busy_timeout(5000)"},
		{"SQLite:x.db", SQLite, "x.db"},
		{"postgres://u:p@db:5432/selfserve", Postgres, "postgres://u:p@db:5432/selfserve"},
		{"postgresql:///selfserve?host=/var/run/postgresql", Postgres, "postgresql:///selfserve?host=/var/run/postgresql"},
	}
	for _, tc := range cases {
		d, dsn, err := Parse(tc.raw)
		if err != nil || d != tc.dialect || dsn != tc.dsn {
			t.Errorf("Parse(%q) = %q, %q, %v; want %q, %q", tc.raw, d, dsn, err, tc.dialect, tc.dsn)
		}
	}
	for _, bad := range []string{"", "sqlite:", "sqlite://", "postgres:db", "mysql://x", "file.db"} {
		if _, _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted it", bad)
		}
	}
}
