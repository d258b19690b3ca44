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
	for _, f := range FieldsOf(cfg) {
		if f.Secret {
			k.Secrets = append(k.Secrets, f.Key)
			continue
		}
		k.Settings = append(k.Settings, f.Key)
		if f.Endpoint {
			k.Endpoint = append(k.Endpoint, f.Key)
		}
		if f.File {
			k.Files = append(k.Files, f.Key)
		}
	}
	slices.Sort(k.Settings)
	slices.Sort(k.Secrets)
	slices.Sort(k.Endpoint)
	slices.Sort(k.Files)
	return k
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

// FieldType is the JSON shape of a Config field's value, as a form asks
// for it.
type FieldType string

// The field types.
const (
	// FieldString is a JSON string.
	FieldString FieldType = "string"
	// FieldNumber is a JSON number.
	FieldNumber FieldType = "number"
	// FieldBool is true or false.
	FieldBool FieldType = "bool"
	// FieldList is a list of strings.
	FieldList FieldType = "list"
	// FieldText is a value with a decoder of its own that takes a number
	// or a string (a duration: 30 or "30s").
	FieldText FieldType = "text"
)

// Field is one key of a connector's Config with what a form needs to ask
// for it; the marks are those of Keys.
type Field struct {
	Key  string
	Type FieldType
	// Secret, Endpoint and File are the key's marks (see Keys).
	Secret, Endpoint, File bool
	// Help is the field's `help:"…"` tag: what the value is and where the
	// technician finds it, in a sentence or two ("" when untagged).
	Help string
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

// FieldsOf returns the fields of cfg, a pointer to a struct, in the order
// the struct declares them, each with its help text (the `help:"…"` tag);
// an embedded struct without a JSON name contributes its own fields, as
// encoding/json decodes it.
func FieldsOf(cfg Config) []Field {
	t := reflect.TypeOf(cfg)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return fieldsOf(t, nil)
}

func fieldsOf(t reflect.Type, out []Field) []Field {
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			out = fieldsOf(f.Type, out)
			continue
		}
		if !f.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		marks := strings.Split(f.Tag.Get("connector"), ",")
		field := Field{Key: name, Type: FieldString, Secret: f.Type == secretType,
			Endpoint: slices.Contains(marks, "endpoint"), File: slices.Contains(marks, "file"), Help: f.Tag.Get("help")}
		switch k := f.Type.Kind(); {
		case field.Secret:
		case reflect.PointerTo(f.Type).Implements(unmarshalerType):
			field.Type = FieldText
		case k == reflect.Bool:
			field.Type = FieldBool
		case k >= reflect.Int && k <= reflect.Float64:
			field.Type = FieldNumber
		case k == reflect.Slice && f.Type.Elem().Kind() == reflect.String:
			field.Type = FieldList
		}
		out = append(out, field)
	}
	return out
}

// Fields returns the fields of kind's Config, and whether kind is known.
func (r Registry) Fields(kind Kind) ([]Field, bool) {
	newConfig, ok := r.configs[kind]
	if !ok {
		return nil, false
	}
	return FieldsOf(newConfig()), true
}
