package connectors

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"sort"
	"strings"

	"selfserve/internal/redact"
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
	// hosts is the operator's PSA host allow-list Open enforces (see
	// CheckHost); nil when WithAllowedHosts was not called.
	hosts *[]string
}

// WithAllowedHosts returns the registry (sharing its limiters) whose Open
// also refuses a vendor-hosted connection whose host is neither its vendor's
// cloud nor matched by allowed (CheckHost): a stored connection is checked
// each time it is opened for a sync or an enrichment, not only when written.
// The server and the CLI set it from the configuration; a registry without
// it checks no hosts (tests against fake servers).
func (r Registry) WithAllowedHosts(allowed []string) Registry {
	hosts := slices.Clone(allowed)
	r.hosts = &hosts
	return r
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

// Keys returns the keys of kind's Config, and whether kind is known.
func (r Registry) Keys(kind Kind) (Keys, bool) {
	newConfig, ok := r.configs[kind]
	if !ok {
		return Keys{}, false
	}
	return KeysOf(newConfig()), true
}

// Decode builds the Config of kind from settings and secrets, both JSON
// objects (either may be empty). Each key must be in its place: a secret
// under settings, a setting under secrets and an unknown key are errors
// (*KeyError, wrapping ErrInvalidConfig), as is a value of the wrong type.
// It checks only the shape: Check validates the values.
func (r Registry) Decode(kind Kind, settings, secrets json.RawMessage) (Config, error) {
	newConfig, ok := r.configs[kind]
	if !ok {
		return nil, fmt.Errorf("%w: unknown connector kind %q (known: %s)", ErrInvalidConfig, kind, strings.Join(r.Kinds(), ", "))
	}
	s, err := objectKeys(settings)
	if err != nil {
		return nil, fmt.Errorf("%w: settings must be a JSON object", ErrInvalidConfig)
	}
	p, err := objectKeys(secrets)
	if err != nil {
		return nil, fmt.Errorf("%w: secrets must be a JSON object", ErrInvalidConfig)
	}
	cfg := newConfig()
	if err := KeysOf(cfg).checkKeys(s, p); err != nil {
		return nil, err
	}
	if err := decodeStrict(settings, cfg); err != nil {
		return nil, decodeError("settings", err)
	}
	if err := decodeStrict(secrets, cfg); err != nil {
		return nil, decodeError("secrets", err)
	}
	return cfg, nil
}

// Check decodes settings and secrets and validates them with the
// connector's own checks, as Open does, without contacting the system: a
// connection that can never work is refused before it is stored. The
// source it opens has state of its own and is closed at once.
func (r Registry) Check(kind Kind, settings, secrets json.RawMessage) error {
	cfg, err := r.Decode(kind, settings, secrets)
	if err != nil {
		return err
	}
	src, err := cfg.Open(Env{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	return src.Close()
}

// Open decodes the connection's stored settings and secrets and opens its
// source with the registry's limiters. id is the connection's process-wide
// unique id (see Env.ID); the caller names the connection in errors. A
// secret found under the stored settings (written before secrets and
// settings were told apart) is used as a secret, with a warning to move it.
func (r Registry) Open(kind Kind, id string, settings, secrets json.RawMessage, logger *slog.Logger) (Source, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("connector", string(kind), "connection_id", id)
	if keys, ok := r.Keys(kind); ok {
		var moved []string
		settings, secrets, moved = liftSecrets(keys, settings, secrets)
		if len(moved) > 0 {
			logger.Warn("the connection keeps secrets under its settings, in clear: send them again under secrets", "keys", moved)
		}
	}
	cfg, err := r.Decode(kind, settings, secrets)
	if err != nil {
		return nil, err
	}
	if r.hosts != nil {
		if err := CheckHost(cfg, *r.hosts); err != nil {
			return nil, err
		}
	}
	return cfg.Open(Env{ID: id, Logger: logger, Limiters: r.limiters})
}

// liftSecrets moves the secret keys of settings into secrets (where secrets
// does not have them already) and returns the keys moved.
func liftSecrets(keys Keys, settings, secrets json.RawMessage) (json.RawMessage, json.RawMessage, []string) {
	s, err := objectKeys(settings)
	if err != nil {
		return settings, secrets, nil
	}
	var moved []string
	for _, k := range keys.Secrets {
		if _, ok := s[k]; ok {
			moved = append(moved, k)
		}
	}
	if len(moved) == 0 {
		return settings, secrets, nil
	}
	p, err := objectKeys(secrets)
	if err != nil {
		return settings, secrets, nil
	}
	for _, k := range moved {
		if _, ok := p[k]; !ok {
			p[k] = s[k]
		}
		delete(s, k)
	}
	settings, _ = json.Marshal(s)
	secrets, _ = json.Marshal(p)
	return settings, secrets, moved
}

// RedactSettings returns settings with the value of every secret key of
// kind replaced by "[redact.Redacted]": stored settings may hold a secret written
// before secrets and settings were told apart, and must never show it.
func (r Registry) RedactSettings(kind Kind, settings json.RawMessage) json.RawMessage {
	keys, ok := r.Keys(kind)
	if !ok {
		return settings
	}
	s, err := objectKeys(settings)
	if err != nil {
		return settings
	}
	changed := false
	for _, k := range keys.Secrets {
		if _, ok := s[k]; ok {
			s[k] = json.RawMessage(`"` + redact.Redacted + `"`)
			changed = true
		}
	}
	if !changed {
		return settings
	}
	out, err := json.Marshal(s)
	if err != nil {
		return settings
	}
	return out
}

// objectKeys splits a JSON object (empty or null: no keys) into its keys.
func objectKeys(raw json.RawMessage) (map[string]json.RawMessage, error) {
	m := map[string]json.RawMessage{}
	t := bytes.TrimSpace(raw)
	if len(t) == 0 || string(t) == "null" {
		return m, nil
	}
	if t[0] != '{' {
		return nil, errors.New("not a JSON object")
	}
	if err := json.Unmarshal(t, &m); err != nil {
		return nil, err
	}
	return m, nil
}

func decodeStrict(raw json.RawMessage, into any) error {
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	return dec.Decode(into)
}

// decodeError names the key a decoding error is about. The decoder's
// message may quote the offending value: a secret's is never kept.
func decodeError(section string, err error) error {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) && typeErr.Field != "" {
		return &KeyError{Section: section, Key: typeErr.Field, Problem: fmt.Sprintf("%s must be a %s", typeErr.Field, jsonTypeName(typeErr.Type.Kind()))}
	}
	if section == "secrets" {
		return fmt.Errorf("%w: secrets: not a valid JSON object of strings", ErrInvalidConfig)
	}
	return fmt.Errorf("%w: settings: %s", ErrInvalidConfig, strings.TrimPrefix(err.Error(), "json: "))
}

// jsonTypeName names a Go kind as JSON calls it.
func jsonTypeName(k reflect.Kind) string {
	switch k {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean (true or false)"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "whole number"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Slice, reflect.Array:
		return "list"
	case reflect.Map, reflect.Struct:
		return "object"
	}
	return k.String()
}
