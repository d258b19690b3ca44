package connectors

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"selfserve/internal/redact"
)

// Keys are the JSON keys of a connector's Config, read from its struct
// fields by KeysOf. The Config declares them where it declares the fields:
//
//   - a field of type redact.Secret is a secret: it is accepted only under a
//     connection's secrets, stored encrypted and never shown;
//   - every other JSON field is a setting;
//   - a setting tagged `connector:"endpoint"` decides where the connection
//     connects or what it trusts (a URL, a host, a region, a CA file, TLS
//     options): changing it without sending the secrets again drops the
//     stored secrets, so that they cannot be sent somewhere new.
//   - a setting tagged `connector:"file"` names a file on the server (a CSV
//     to import, a CA bundle): the admin API confines it to the tenant's
//     import folder.
//
// A field may carry both marks: `connector:"endpoint,file"`.
type Keys struct {
	Settings []string
	Secrets  []string
	Endpoint []string
	Files    []string
}

var secretType = reflect.TypeFor[redact.Secret]()

// KeysOf returns the keys of cfg, a pointer to a struct, each list sorted.
func KeysOf(cfg Config) Keys {
	var k Keys
	t := reflect.TypeOf(cfg)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	k.add(t)
	slices.Sort(k.Settings)
	slices.Sort(k.Secrets)
	slices.Sort(k.Endpoint)
	slices.Sort(k.Files)
	return k
}

// add records the keys of struct type t; an embedded struct without a JSON
// name contributes its own keys, as encoding/json decodes it.
func (k *Keys) add(t reflect.Type) {
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			k.add(f.Type)
			continue
		}
		if !f.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		switch {
		case f.Type == secretType:
			k.Secrets = append(k.Secrets, name)
		default:
			k.Settings = append(k.Settings, name)
			marks := strings.Split(f.Tag.Get("connector"), ",")
			if slices.Contains(marks, "endpoint") {
				k.Endpoint = append(k.Endpoint, name)
			}
			if slices.Contains(marks, "file") {
				k.Files = append(k.Files, name)
			}
		}
	}
}

// KeyError is a problem with one key of a connection's settings or secrets.
// It wraps ErrInvalidConfig and never quotes a secret's value.
type KeyError struct {
	// Section is "settings" or "secrets".
	Section string
	// Key is the offending key.
	Key string
	// Problem says what is wrong, for a technician.
	Problem string
}

// Error implements error.
func (e *KeyError) Error() string {
	return fmt.Sprintf("%s.%s: %s", e.Section, e.Key, e.Problem)
}

// Unwrap makes a KeyError an ErrInvalidConfig.
func (e *KeyError) Unwrap() error { return ErrInvalidConfig }

// Field returns where the problem is, as "settings.key" or "secrets.key".
func (e *KeyError) Field() string { return e.Section + "." + e.Key }

// checkKeys refuses keys of settings and secrets that are not theirs: a
// secret under settings, a setting under secrets, an unknown key.
func (k Keys) checkKeys(settings, secrets map[string]json.RawMessage) error {
	var errs []error
	for _, key := range sortedKeys(settings) {
		switch {
		case slices.Contains(k.Settings, key):
		case slices.Contains(k.Secrets, key):
			errs = append(errs, &KeyError{"settings", key, fmt.Sprintf("%s is a secret: put %s under secrets, where it is stored encrypted", key, key)})
		default:
			errs = append(errs, &KeyError{"settings", key, fmt.Sprintf("unknown key %q (known settings: %s)", key, listOrNone(k.Settings))})
		}
	}
	for _, key := range sortedKeys(secrets) {
		switch {
		case slices.Contains(k.Secrets, key):
		case slices.Contains(k.Settings, key):
			errs = append(errs, &KeyError{"secrets", key, fmt.Sprintf("%s is a setting, not a secret: put %s under settings", key, key)})
		default:
			errs = append(errs, &KeyError{"secrets", key, fmt.Sprintf("unknown key %q (known secrets: %s)", key, listOrNone(k.Secrets))})
		}
	}
	return errors.Join(errs...)
}

func sortedKeys(m map[string]json.RawMessage) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func listOrNone(keys []string) string {
	if len(keys) == 0 {
		return "none"
	}
	return strings.Join(keys, ", ")
}

// SettingsEqual reports whether two JSON documents (a connection's settings
// or its secrets) hold the same value: key order and spacing do not count.
// Text that is not JSON equals only identical text.
func SettingsEqual(a, b json.RawMessage) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return bytes.Equal(a, b)
	}
	ca, _ := json.Marshal(x)
	cb, _ := json.Marshal(y)
	return bytes.Equal(ca, cb)
}
