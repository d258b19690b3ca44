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
// id names the connection in logs and errors.
type Config interface {
	Open(id string, logger *slog.Logger) (Source, error)
}

// Registry maps a connector kind to a constructor of its empty Config. It is a
// plain map built next to main and passed to whatever opens connections; there
// is no global registration.
type Registry map[Kind]func() Config

// Kinds returns the registered kinds, sorted.
func (r Registry) Kinds() []string {
	kinds := make([]string, 0, len(r))
	for k := range r {
		kinds = append(kinds, string(k))
	}
	sort.Strings(kinds)
	return kinds
}

// Decode builds the Config of kind from settings and secrets, both JSON
// objects (either may be empty). Unknown keys are errors, and a key may not be
// both a setting and a secret.
func (r Registry) Decode(kind Kind, settings, secrets json.RawMessage) (Config, error) {
	newConfig, ok := r[kind]
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

// Open decodes the connection's settings and secrets and opens its source.
func (r Registry) Open(kind Kind, id string, settings, secrets json.RawMessage, logger *slog.Logger) (Source, error) {
	cfg, err := r.Decode(kind, settings, secrets)
	if err != nil {
		return nil, fmt.Errorf("connection %s: %w", id, err)
	}
	src, err := cfg.Open(id, logger.With("connector", string(kind), "connection", id))
	if err != nil {
		return nil, fmt.Errorf("connection %s: %w", id, err)
	}
	return src, nil
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
