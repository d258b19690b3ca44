package restclient

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ID is a record id as an API sends it: a JSON string ("72", JSON:API) or a
// non-negative integer (72). Both name the same record, so both are accepted;
// anything else (a fraction, a boolean, an object, an empty string) is an
// error naming the value. JSON null leaves the ID empty.
type ID string

// UnmarshalJSON implements json.Unmarshaler.
func (id *ID) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case string(b) == "null":
		return nil
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		s = strings.TrimSpace(s)
		if s == "" {
			return errors.New("empty id")
		}
		*id = ID(s)
		return nil
	default:
		if _, err := strconv.ParseUint(string(b), 10, 64); err != nil {
			return fmt.Errorf("id %s is not a string or a whole number", shorten(string(b)))
		}
		*id = ID(b)
		return nil
	}
}

// Int returns the id as a number, for APIs that page by id.
func (id ID) Int() (int64, bool) {
	n, err := strconv.ParseInt(string(id), 10, 64)
	return n, err == nil && n >= 0
}

// DecodeRecord decodes one record into v. Its error is a reason for a
// connectors.InvalidRecord: the field that has the wrong type and what came
// instead ("field attributes.first-name is a number, want a string"). After
// a type error the other fields are still decoded, so v's id can name the
// record in the report.
func DecodeRecord(raw json.RawMessage, v any) error {
	err := json.Unmarshal(raw, v)
	if err == nil {
		return nil
	}
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		if typeErr.Field == "" {
			return fmt.Errorf("the record is a JSON %s, not an object", typeErr.Value)
		}
		return fmt.Errorf("field %s is a JSON %s, want %s", typeErr.Field, typeErr.Value, jsonKind(typeErr.Type.Kind().String()))
	}
	return fmt.Errorf("cannot decode the record: %v", err)
}

// jsonKind names a Go kind in JSON terms.
func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "slice", "array":
		return "a list"
	case "struct", "map":
		return "an object"
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64", "float32", "float64":
		return "a number"
	}
	return goKind
}

// ParseTime reads an API timestamp (RFC 3339, with or without fractional
// seconds) into UTC. An empty string gives the zero time.
func ParseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time", s)
	}
	return t.UTC(), nil
}

// Dedup remembers the ids a listing yielded so that a record an API repeats
// on a later page (offset paging while records are added) is reported once
// as invalid instead of yielded twice. The zero value is ready to use.
type Dedup struct {
	seen map[string]struct{}
}

// Seen records id and reports whether it was already recorded.
func (d *Dedup) Seen(id string) bool {
	if d.seen == nil {
		d.seen = map[string]struct{}{}
	}
	if _, ok := d.seen[id]; ok {
		return true
	}
	d.seen[id] = struct{}{}
	return false
}

// DuplicateReason is the InvalidRecord reason of a repeated id.
func DuplicateReason(id string) string {
	return fmt.Sprintf("duplicate: id %s was already listed earlier in this listing; skipped", id)
}

// SplitName splits a display name into first and last name: "Doe, Jane" →
// Jane, Doe; "Jane van Doe" → Jane van, Doe (the last word is the last
// name); a single word is a first name.
func SplitName(name string) (first, last string) {
	if before, after, ok := strings.Cut(name, ","); ok {
		return strings.Join(strings.Fields(after), " "), strings.Join(strings.Fields(before), " ")
	}
	words := strings.Fields(name)
	switch len(words) {
	case 0:
		return "", ""
	case 1:
		return words[0], ""
	}
	return strings.Join(words[:len(words)-1], " "), words[len(words)-1]
}
