package connectors

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
)

// Config is a connector's configuration: settings and secrets decoded from a
// stored connection. Open validates it, fills defaults and opens the source.
type Config interface {
	Open(env Env) (Source, error)
}

// Env is what opening a source needs besides its configuration.
type Env struct {
	// ID identifies the connection uniquely in the process (a stored
	// connection's id, never its name: names are unique per tenant only). It
	// keys per-connection state such as rate limiters and names the
	// connection in logs and errors. Empty means "state of its own".
	ID string
	// Logger receives the source's logs. Nil discards.
	Logger *slog.Logger
	// Limiters holds the rate limiters shared by the sources opened on the
	// same connection. Nil gives each source a limiter of its own.
	Limiters *Limiters
}

// Registry maps a connector kind to a constructor of its empty Config and
// carries the per-connection state shared by the sources it opens (rate
// limiters). It is built once next to main and passed to whatever opens
// connections; there is no global registration.
type Registry struct {
	configs  map[Kind]func() Config
	limiters *Limiters
}

// NewRegistry returns a registry of the given kinds with an empty set of
// per-connection limiters.
func NewRegistry(configs map[Kind]func() Config) Registry {
	return Registry{configs: configs, limiters: NewLimiters()}
}

// Has reports whether kind is registered.
func (r Registry) Has(kind Kind) bool {
	_, ok := r.configs[kind]
	return ok
}

// Kinds returns the registered kinds, sorted.
func (r Registry) Kinds() []string {
	kinds := make([]string, 0, len(r.configs))
	for k := range r.configs {
		kinds = append(kinds, string(k))
	}
	sort.Strings(kinds)
	return kinds
}

// Decode builds the Config of kind from settings and secrets, both JSON
// objects (either may be empty). Unknown keys are errors, and a key may not be
// both a setting and a secret.
func (r Registry) Decode(kind Kind, settings, secrets json.RawMessage) (Config, error) {
	newConfig, ok := r.configs[kind]
	if !ok {
		return nil, fmt.Errorf("%w: unknown connector kind %q (known: %s)", ErrInvalidConfig, kind, strings.Join(r.Kinds(), ", "))
	}
	if err := disjointKeys(settings, secrets); err != nil {
		return nil, err
	}
	cfg := newConfig()
	if err := decodeStrict(settings, cfg); err != nil {
		return nil, fmt.Errorf("%w: settings: %w", ErrInvalidConfig, err)
	}
	if err := decodeStrict(secrets, cfg); err != nil {
		// The decoder's message may quote the offending value: keep only the
		// field name.
		return nil, fmt.Errorf("%w: secrets: %s", ErrInvalidConfig, redactDecodeError(err))
	}
	return cfg, nil
}

// Open decodes the connection's settings and secrets and opens its source
// with the registry's limiters. id is the connection's process-wide unique id
// (see Env.ID); the caller names the connection in errors.
func (r Registry) Open(kind Kind, id string, settings, secrets json.RawMessage, logger *slog.Logger) (Source, error) {
	cfg, err := r.Decode(kind, settings, secrets)
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return cfg.Open(Env{ID: id, Logger: logger.With("connector", string(kind), "connection_id", id), Limiters: r.limiters})
}

func decodeStrict(raw json.RawMessage, into any) error {
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	return dec.Decode(into)
}

func disjointKeys(settings, secrets json.RawMessage) error {
	keys := func(raw json.RawMessage) (map[string]json.RawMessage, error) {
		m := map[string]json.RawMessage{}
		if len(bytes.TrimSpace(raw)) == 0 {
			return m, nil
		}
		err := json.Unmarshal(raw, &m)
		return m, err
	}
	s, err := keys(settings)
	if err != nil {
		return fmt.Errorf("%w: settings must be a JSON object: %w", ErrInvalidConfig, err)
	}
	p, err := keys(secrets)
	if err != nil {
		return fmt.Errorf("%w: secrets must be a JSON object", ErrInvalidConfig)
	}
	for k := range p {
		if _, ok := s[k]; ok {
			return fmt.Errorf("%w: %q is given both as a setting and as a secret", ErrInvalidConfig, k)
		}
	}
	return nil
}

func redactDecodeError(err error) string {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		return fmt.Sprintf("field %q must be a %s", typeErr.Field, typeErr.Type)
	}
	msg := err.Error()
	if strings.HasPrefix(msg, "json: unknown field") {
		return strings.TrimPrefix(msg, "json: ")
	}
	return "not a valid JSON object"
}
