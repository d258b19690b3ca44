package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"selfserve/internal/service"
)

// apiError is an error the API reports to the client, as
// {"error": {"code", "message", "field", "items"}}.
type apiError = service.Error

var errInternal = &apiError{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error; the server log has the details"}

// The shared constructors: badField is a 400 naming the field, conflict a
// 409.
var (
	badField = service.BadField
	conflict = service.Conflict
)

// apiErrorOf maps an error to what the client sees. Errors that are not the
// client's doing are logged and reported as a bare 500.
func (a *api) apiErrorOf(r *http.Request, err error) *apiError {
	if e, ok := service.Classify(err); ok {
		if e.Status == http.StatusServiceUnavailable {
			a.log.Warn("request refused: a dependency is unavailable", "method", r.Method, "path", r.URL.Path, "err", err)
		}
		return e
	}
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		return &apiError{Status: 499, Code: "canceled", Message: "the client went away"}
	}
	a.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	return errInternal
}

// writeJSON writes v with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, e *apiError) {
	if e.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="selfserve"`)
	}
	writeJSON(w, e.Status, map[string]*apiError{"error": e})
}

// decodeBody reads a JSON object into dst strictly: the body must be a
// single JSON object of at most MaxBodyBytes, with no unknown keys and every
// value of its field's type. Errors name the field.
func (a *api) decodeBody(w http.ResponseWriter, r *http.Request, dst any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return &apiError{Status: http.StatusUnsupportedMediaType, Code: "unsupported_media_type", Message: fmt.Sprintf("Content-Type %q: send application/json", ct)}
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, a.MaxBodyBytes))
	if err != nil {
		return err
	}
	return decodeStrict(body, dst)
}

// decodeOptionalBody is decodeBody where an empty body means {}.
func (a *api) decodeOptionalBody(w http.ResponseWriter, r *http.Request, dst any) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, a.MaxBodyBytes))
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	return a.decodeBody(w, r, dst)
}

// decodeStrict decodes one JSON object into dst (a pointer to a struct).
func decodeStrict(body []byte, dst any) error {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return &apiError{Status: http.StatusBadRequest, Code: "invalid_json", Message: "the request body is empty; send a JSON object"}
	}
	if !utf8.Valid(trimmed) {
		return &apiError{Status: http.StatusBadRequest, Code: "invalid_json", Message: "the request body is not UTF-8"}
	}
	if trimmed[0] != '{' {
		return &apiError{Status: http.StatusBadRequest, Code: "invalid_json", Message: "the request body must be a JSON object ({…})"}
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return &apiError{Status: http.StatusBadRequest, Code: "invalid_json", Message: "the request body holds more than one JSON value; send a single object"}
	}
	if key := duplicateKey(trimmed); key != "" {
		return &apiError{Status: http.StatusBadRequest, Code: "duplicate_key", Field: key, Message: fmt.Sprintf("%s is given more than once; send each key once", key)}
	}
	return nil
}

// jsonError turns a decoding error into a 400 naming the field.
func jsonError(err error) *apiError {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			return &apiError{Status: http.StatusBadRequest, Code: "invalid_json", Message: fmt.Sprintf("the request body must be a JSON object, not %s", typ.Value)}
		}
		return &apiError{Status: http.StatusBadRequest, Code: "invalid_field", Field: field,
			Message: fmt.Sprintf("%s must be %s, not %s", field, jsonTypeName(typ.Type), typ.Value)}
	case errors.As(err, &syn):
		return &apiError{Status: http.StatusBadRequest, Code: "invalid_json", Message: fmt.Sprintf("malformed JSON at byte %d: %s", syn.Offset, strings.TrimPrefix(syn.Error(), "json: "))}
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return &apiError{Status: http.StatusBadRequest, Code: "invalid_json", Message: "malformed JSON: the body ends before the object does"}
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		name, _ = strconv.Unquote(name)
		return &apiError{Status: http.StatusBadRequest, Code: "unknown_field", Field: name, Message: fmt.Sprintf("unknown field %q (see /openapi.json for this request's fields)", name)}
	}
	return &apiError{Status: http.StatusBadRequest, Code: "invalid_json", Message: "malformed JSON: " + strings.TrimPrefix(err.Error(), "json: ")}
}

func jsonTypeName(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		return "an array"
	default:
		return "an object"
	}
}

// pathID reads the positive integer path parameter name.
func pathID(r *http.Request, name string) (int64, error) {
	v := r.PathValue(name)
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil || id <= 0 {
		return 0, badField(name, "%q is not an id (a positive integer)", truncate(v, 40))
	}
	return id, nil
}

// query reads a request's query parameters, refusing unknown ones.
type query struct {
	values map[string][]string
}

func newQuery(r *http.Request, known ...string) (query, error) {
	q := r.URL.Query()
	for k, v := range q {
		if !contains(known, k) {
			return query{}, &apiError{Status: http.StatusBadRequest, Code: "unknown_field", Field: k,
				Message: fmt.Sprintf("unknown query parameter %q (known: %s)", truncate(k, 40), strings.Join(known, ", "))}
		}
		if len(v) > 1 {
			return query{}, badField(k, "give %s once", k)
		}
	}
	return query{values: q}, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (q query) str(name string) string {
	if v := q.values[name]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func (q query) int(name string, min, max, def int64) (int64, error) {
	s := q.str(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < min || n > max {
		return 0, badField(name, "%q is not an integer in %d..%d", truncate(s, 40), min, max)
	}
	return n, nil
}

func (q query) boolean(name string) (*bool, error) {
	s := q.str(name)
	if s == "" {
		return nil, nil
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		return nil, badField(name, "%q is not true or false", truncate(s, 40))
	}
	return &b, nil
}

func (q query) time(name string) (time.Time, error) {
	s := q.str(name)
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, badField(name, "%q is not an RFC 3339 time such as 2026-11-24T09:00:00Z", truncate(s, 40))
	}
	return t, nil
}

var truncate = service.Truncate

// Validation of string fields. Every string an API request carries is
// checked against what its field can hold, so that SQL or LDAP
// metacharacters (quotes, ;, *, parentheses, backslashes, NUL) are refused
// with a 400 naming the field before anything is stored.

// checkSlug checks an identifier such as a connection's name.
var checkSlug = service.CheckSlug

// checkExternalID checks a PSA id (service.CheckExternalID).
var checkExternalID = service.CheckExternalID

// checkCode checks an identifier of ours used as a filter (an audit
// action or object type).
var checkCode = service.CheckCode
