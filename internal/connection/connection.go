// Package connection is the one seam that opens a stored connection: it
// decrypts the connection's sealed secrets, looks its kind up in the
// connector registry and opens its source under the connection's id (never
// its name, which is unique per tenant only), so that per-connection state
// such as rate limiters is never shared between tenants. It is also the one
// place that knows how connection secrets are sealed.
package connection

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"

	"selfserve/connectors"
	"selfserve/internal/secretbox"
	"selfserve/internal/store"
)

// secretsContext binds sealed connection secrets to their purpose.
const secretsContext = "selfserve/connection-secrets/v1"

// ErrNoKey means a connection has (or is given) secrets but the process has
// no encryption key (SELFSERVE_ENCRYPTION_KEY).
var ErrNoKey = errors.New("no encryption key is configured (SELFSERVE_ENCRYPTION_KEY)")

// Opener opens stored connections. Registry is required; Box may be nil when
// no connection has secrets.
type Opener struct {
	Registry connectors.Registry
	Box      *secretbox.Box
}

// Open decrypts conn's secrets and opens its source. Errors name the
// connection.
func (o Opener) Open(conn store.Connection, logger *slog.Logger) (connectors.Source, error) {
	secrets, err := o.DecryptSecrets(conn)
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	src, err := o.Registry.Open(conn.Kind, ID(conn), conn.Settings, secrets, logger.With("connection", conn.Name))
	if err != nil {
		return nil, fmt.Errorf("connection %q: %w", conn.Name, err)
	}
	return src, nil
}

// ID is the id a stored connection's source is opened with: the
// connection's database id, unique across tenants.
func ID(conn store.Connection) string {
	return strconv.FormatInt(conn.ID, 10)
}

// DecryptSecrets returns conn's secrets as a JSON object, or nil when it has
// none.
func (o Opener) DecryptSecrets(conn store.Connection) (json.RawMessage, error) {
	if len(conn.SealedSecrets) == 0 {
		return nil, nil
	}
	if o.Box == nil {
		return nil, fmt.Errorf("connection %q has secrets but %w", conn.Name, ErrNoKey)
	}
	plain, err := o.Box.Open(conn.SealedSecrets, secretsContext)
	if err != nil {
		return nil, fmt.Errorf("connection %q secrets: %w", conn.Name, err)
	}
	return plain, nil
}

// SealSecrets encrypts a secrets JSON object for storing on a connection.
func (o Opener) SealSecrets(plain json.RawMessage) ([]byte, error) {
	if o.Box == nil {
		return nil, ErrNoKey
	}
	return o.Box.Seal(plain, secretsContext)
}
