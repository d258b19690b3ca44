// Package dburl reads a database URL: which SQL database it names and what
// to hand that database's driver. It is a leaf, shared by config (which
// validates the URL) and store (which opens it).
package dburl

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Dialect is the SQL database a database URL names.
type Dialect string

// The supported dialects.
const (
	Postgres Dialect = "postgres"
	SQLite   Dialect = "sqlite"
)

// Parse tells which database raw names and returns what to hand
// its driver: for postgres://… and postgresql://…, the URL unchanged; for
// sqlite:PATH, PATH (sqlite:///var/lib/x.db gives /var/lib/x.db; anything
// after PATH such as ?_pragma=… is kept). Errors never quote raw, which may
// hold a password.
func Parse(raw string) (Dialect, string, error) {
	if raw == "" {
		return "", "", errors.New("required: postgres://user:password@host:5432/db or sqlite:PATH")
	}
	if rest, ok := cutPrefixFold(raw, "sqlite:"); ok {
		rest = strings.TrimPrefix(rest, "//") // sqlite:///abs/path → /abs/path
		if rest == "" || strings.HasPrefix(rest, "?") {
			return "", "", errors.New("sqlite: needs a file path, e.g. sqlite:selfserve.db or sqlite:///var/lib/selfserve/selfserve.db")
		}
		return SQLite, rest, nil
	}
	scheme, _, hasColon := strings.Cut(raw, ":")
	if !hasColon || !IsScheme(scheme) {
		return "", "", errors.New("not a database URL; use postgres://user:password@host:5432/db or sqlite:PATH")
	}
	switch strings.ToLower(scheme) {
	case "postgres", "postgresql":
	default:
		return "", "", fmt.Errorf("scheme %q is not supported; use postgres://, postgresql:// or sqlite:PATH", scheme)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", "", errors.New("not a valid URL (percent-encode special characters in the user name and password, e.g. @ as %40)")
	}
	if u.Opaque != "" {
		return "", "", fmt.Errorf("write %s://host/db, with two slashes", scheme)
	}
	return Postgres, raw, nil
}

// IsScheme reports whether s is a URL scheme (a letter, then letters,
// digits, "+", "-" or ".").
func IsScheme(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		case i > 0 && (r >= '0' && r <= '9' || r == '+' || r == '-' || r == '.'):
		default:
			return false
		}
	}
	return true
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return s, false
}
