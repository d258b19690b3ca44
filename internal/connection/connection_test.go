package connection_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"selfserve/connectors"
	"selfserve/connectors/itglue"
	"selfserve/connectors/itglue/fakeitglue"
	"selfserve/internal/connection"
	"selfserve/internal/secretbox"
	"selfserve/internal/store"
)

func newBox(t *testing.T, b byte) *secretbox.Box {
	t.Helper()
	box, err := secretbox.New(bytes.Repeat([]byte{b}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return box
}

// Two tenants may each name a connection "IT Glue": their sources must not
// share a rate limiter, while two sources on one connection must.
func TestSameNamedConnectionsOfTwoTenantsHaveSeparateLimiters(t *testing.T) {
	t.Parallel()
	srv := fakeitglue.New(fakeitglue.Options{})
	t.Cleanup(srv.Close)
	opener := connection.Opener{
		Registry: connectors.NewRegistry(map[connectors.Kind]func() connectors.Config{
			connectors.KindITGlue: func() connectors.Config { return new(itglue.Config) },
		}),
		Box: newBox(t, 1),
	}
	sealed, err := opener.SealSecrets(json.RawMessage(`{"api_key":"` + fakeitglue.DefaultAPIKey + `"}`))
	if err != nil {
		t.Fatal(err)
	}
	// One request per minute: a second request on the same limiter within
	// the test's deadlines cannot be paced in.
	settings := json.RawMessage(`{"base_url":"` + srv.URL + `","requests_per_minute":1}`)
	tenantA := store.Connection{ID: 11, TenantID: 1, Name: "IT Glue", Kind: connectors.KindITGlue, Settings: settings, SealedSecrets: sealed}
	tenantB := store.Connection{ID: 12, TenantID: 2, Name: "IT Glue", Kind: connectors.KindITGlue, Settings: settings, SealedSecrets: sealed}

	ping := func(conn store.Connection) error {
		t.Helper()
		src, err := opener.Open(conn, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		return src.(connectors.Pinger).Ping(ctx)
	}
	if err := ping(tenantA); err != nil {
		t.Fatalf("tenant A's first request: %v", err)
	}
	if err := ping(tenantB); err != nil {
		t.Fatalf("tenant B's first request waited on tenant A's limiter: %v", err)
	}
	if err := ping(tenantA); err == nil {
		t.Fatal("a second source on tenant A's connection did not share its limiter (two requests in a minute at 1/min)")
	}
}

func TestSecretsNeedTheRightKey(t *testing.T) {
	t.Parallel()
	box, other := newBox(t, 1), newBox(t, 2)
	sealed, err := connection.Opener{Box: box}.SealSecrets([]byte(`{"api_key":"k"}`))
	if err != nil {
		t.Fatal(err)
	}
	conn := store.Connection{Name: "psa", SealedSecrets: sealed}
	if _, err := (connection.Opener{Box: other}).DecryptSecrets(conn); !errors.Is(err, secretbox.ErrWrongKey) || !strings.Contains(err.Error(), `"psa"`) {
		t.Fatalf("wrong key: %v", err)
	}
	if _, err := (connection.Opener{}).DecryptSecrets(conn); !errors.Is(err, connection.ErrNoKey) || !strings.Contains(err.Error(), "SELFSERVE_ENCRYPTION_KEY") {
		t.Fatalf("no key: %v", err)
	}
	if _, err := (connection.Opener{}).SealSecrets([]byte(`{}`)); !errors.Is(err, connection.ErrNoKey) {
		t.Fatalf("sealing without a key: %v", err)
	}
	plain, err := connection.Opener{Box: box}.DecryptSecrets(conn)
	if err != nil {
		t.Fatal(err)
	}
	if string(plain) != `{"api_key":"k"}` {
		t.Fatalf("opened %q", plain)
	}
	if plain, err := (connection.Opener{}).DecryptSecrets(store.Connection{Name: "none"}); err != nil || plain != nil {
		t.Fatalf("no secrets: %q, %v", plain, err)
	}
}

// Opening errors name the connection, never its secrets.
func TestOpenErrorsNameTheConnection(t *testing.T) {
	t.Parallel()
	opener := connection.Opener{Registry: connectors.NewRegistry(map[connectors.Kind]func() connectors.Config{
		connectors.KindITGlue: func() connectors.Config { return new(itglue.Config) },
	})}
	_, err := opener.Open(store.Connection{ID: 3, Name: "Glue", Kind: connectors.KindITGlue, Settings: json.RawMessage(`{"region":"mars"}`)}, nil)
	if !errors.Is(err, connectors.ErrInvalidConfig) || !strings.Contains(err.Error(), `connection "Glue"`) {
		t.Fatalf("error %v, want invalid config naming the connection", err)
	}
}

// TestOpenChecksTheAllowedHosts: a stored PSA connection whose host the
// operator does not (or no longer) allow is refused when opened for a sync
// or an enrichment, not only when written; an allowed host opens.
func TestOpenChecksTheAllowedHosts(t *testing.T) {
	t.Parallel()
	reg := connectors.NewRegistry(map[connectors.Kind]func() connectors.Config{
		connectors.KindITGlue: func() connectors.Config { return new(itglue.Config) },
	})
	box := newBox(t, 1)
	sealed, err := connection.Opener{Box: box}.SealSecrets(json.RawMessage(`{"api_key":"k"}`))
	if err != nil {
		t.Fatal(err)
	}
	conn := store.Connection{ID: 7, TenantID: 1, Name: "IT Glue", Kind: connectors.KindITGlue,
		Settings: json.RawMessage(`{"base_url":"http://127.0.0.1:18080"}`), SealedSecrets: sealed}
	_, err = connection.Opener{Registry: reg.WithAllowedHosts(nil), Box: box}.Open(conn, nil)
	var ke *connectors.KeyError
	if !errors.As(err, &ke) || ke.Key != "base_url" || !strings.Contains(err.Error(), `connection "IT Glue"`) {
		t.Fatalf("a host not allowed: %v", err)
	}
	for _, r := range []connectors.Registry{reg.WithAllowedHosts([]string{"127.0.0.1"}), reg} {
		src, err := connection.Opener{Registry: r, Box: box}.Open(conn, nil)
		if err != nil {
			t.Fatalf("an allowed host (or no allow-list): %v", err)
		}
		src.Close()
	}
}
