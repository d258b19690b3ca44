package config

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"

	"gopkg.in/yaml.v3"

	"selfserve/internal/redact"
)

// KeySize is the length in bytes of the encryption key (AES-256).
const KeySize = 32

// EncryptionKey is the key that encrypts connection secrets at rest, as
// configured: the base64 text of KeySize bytes. It never prints, logs or
// marshals its value; Bytes decodes it.
type EncryptionKey struct {
	text string
}

// GenerateEncryptionKey returns a new random key (for the demo, which keeps
// one).
func GenerateEncryptionKey() EncryptionKey {
	raw := make([]byte, KeySize)
	_, _ = rand.Read(raw) // crypto/rand.Read never fails (it aborts the program instead)
	return EncryptionKey{text: base64.StdEncoding.EncodeToString(raw)}
}

// ParseEncryptionKey reads a key from its base64 text (standard or URL
// alphabet, padded or not, surrounding spaces ignored) and checks that it is
// KeySize bytes. Errors never quote the text.
func ParseEncryptionKey(text string) (EncryptionKey, error) {
	k := EncryptionKey{text: text}
	if _, err := k.Bytes(); err != nil {
		return EncryptionKey{}, err
	}
	return k, nil
}

// IsSet reports whether a key was configured (valid or not).
func (k EncryptionKey) IsSet() bool { return strings.TrimSpace(k.text) != "" }

// Errors of EncryptionKey.Bytes.
var (
	// ErrNoEncryptionKey: no key is configured.
	ErrNoEncryptionKey = errors.New("no encryption key is set: set SELFSERVE_ENCRYPTION_KEY to the output of `openssl rand -base64 32` and keep it (secrets stored under one key cannot be read with another)")
	// ErrBadEncryptionKey: the configured key is not base64 of KeySize bytes.
	ErrBadEncryptionKey = errors.New("invalid encryption key")
)

// Bytes returns the KeySize raw bytes of the key. The error wraps
// ErrNoEncryptionKey when none is set, ErrBadEncryptionKey when the text is
// not base64 or does not decode to exactly KeySize bytes.
func (k EncryptionKey) Bytes() ([]byte, error) {
	text := strings.TrimSpace(k.text)
	if text == "" {
		return nil, ErrNoEncryptionKey
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		raw, err := enc.DecodeString(text)
		if err != nil {
			continue
		}
		if len(raw) != KeySize {
			return nil, fmt.Errorf("%w: it decodes to %d bytes, it must be exactly %d (generate one with `openssl rand -base64 32`)", ErrBadEncryptionKey, len(raw), KeySize)
		}
		return raw, nil
	}
	return nil, fmt.Errorf("%w: it is not base64 text (%d characters; generate one with `openssl rand -base64 32`)", ErrBadEncryptionKey, len(text))
}

// Encoded returns the key's base64 text, for the demo to keep the key it
// generated. Do not log it.
func (k EncryptionKey) Encoded() string { return strings.TrimSpace(k.text) }

// String implements fmt.Stringer without revealing the key ("" when unset).
func (k EncryptionKey) String() string {
	if !k.IsSet() {
		return ""
	}
	return redact.Redacted
}

// GoString implements fmt.GoStringer without revealing the key.
func (k EncryptionKey) GoString() string { return k.String() }

// LogValue implements slog.LogValuer without revealing the key.
func (k EncryptionKey) LogValue() slog.Value { return slog.StringValue(k.String()) }

// MarshalJSON writes the redacted form.
func (k EncryptionKey) MarshalJSON() ([]byte, error) { return json.Marshal(k.String()) }

// MarshalYAML writes the redacted form.
func (k EncryptionKey) MarshalYAML() (any, error) { return k.String(), nil }

// UnmarshalYAML reads the key's text from a YAML string; Validate checks it.
func (k *EncryptionKey) UnmarshalYAML(node *yaml.Node) error {
	if node.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: encryption_key must be a string (base64 of %d bytes)", node.Line, KeySize)
	}
	k.text = node.Value
	return nil
}

// CredentialURL is a URL that may carry a password (the database and Redis
// URLs). It prints, logs and marshals with the password replaced by
// "xxxxx"; Reveal returns it whole for the driver.
type CredentialURL string

// Reveal returns the URL with its credentials.
func (u CredentialURL) Reveal() string { return string(u) }

// String implements fmt.Stringer: the URL without its password (in the
// userinfo or a password= query parameter). A URL that does not parse prints
// as its scheme only, since where its password sits is unknown.
func (u CredentialURL) String() string {
	s := string(u)
	if s == "" || s == "embedded" || strings.HasPrefix(s, "sqlite:") {
		return s
	}
	p, err := url.Parse(s)
	if err != nil {
		scheme, _, _ := strings.Cut(s, ":")
		if len(scheme) > 20 || strings.ContainsAny(scheme, "/@ ") {
			return redact.Redacted
		}
		return scheme + "://" + redact.Redacted
	}
	if p.User != nil {
		if _, has := p.User.Password(); has {
			p.User = url.UserPassword(p.User.Username(), "xxxxx")
		}
	}
	if p.RawQuery != "" {
		q := p.Query()
		changed := false
		for name := range q {
			if strings.Contains(strings.ToLower(name), "password") {
				q.Set(name, "xxxxx")
				changed = true
			}
		}
		if changed {
			p.RawQuery = q.Encode()
		}
	}
	return p.String()
}

// GoString implements fmt.GoStringer without revealing the password.
func (u CredentialURL) GoString() string { return u.String() }

// LogValue implements slog.LogValuer without revealing the password.
func (u CredentialURL) LogValue() slog.Value { return slog.StringValue(u.String()) }

// MarshalJSON writes the URL without its password.
func (u CredentialURL) MarshalJSON() ([]byte, error) { return json.Marshal(u.String()) }

// MarshalYAML writes the URL without its password.
func (u CredentialURL) MarshalYAML() (any, error) { return u.String(), nil }
