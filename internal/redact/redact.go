// Package redact holds Secret, the one type for a credential held in memory
// (a configured token or password, a connection's API key or bind password).
// A Secret prints, logs and marshals (JSON and YAML) as "[redacted]"; only
// Reveal returns its value. It is a leaf: config, connectors and the
// notifiers all use it.
package redact

import (
	"encoding/json"
	"log/slog"
)

// Redacted is what a set Secret prints as.
const Redacted = "[redacted]"

// Secret is a credential. It prints, logs and marshals as Redacted ("" when
// unset), so a configuration can be logged or shown without leaking it;
// Reveal returns the value for the one place that needs it.
type Secret string

// Reveal returns the secret's value.
func (s Secret) Reveal() string { return string(s) }

// String implements fmt.Stringer without revealing the value ("" when unset).
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return Redacted
}

// GoString implements fmt.GoStringer without revealing the value.
func (s Secret) GoString() string { return s.String() }

// LogValue implements slog.LogValuer without revealing the value.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalJSON writes the redacted form, never the value.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// UnmarshalJSON reads the value from a JSON string.
func (s *Secret) UnmarshalJSON(b []byte) error {
	var v string
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*s = Secret(v)
	return nil
}

// MarshalYAML writes the redacted form, never the value.
func (s Secret) MarshalYAML() (any, error) { return s.String(), nil }
