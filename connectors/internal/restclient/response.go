package restclient

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"mime"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"

	"selfserve/connectors"
)

// Response is a response whose body was read in full.
type Response struct {
	// Vendor and Request ("GET /organizations?page[number]=2") name the
	// exchange in errors.
	Vendor  string
	Request string
	Status  int
	Header  http.Header
	Body    []byte
}

func (r *Response) isOK() bool { return r.Status >= 200 && r.Status < 300 }

// Object decodes the body as a JSON object and returns its members.
func (r *Response) Object() (map[string]json.RawMessage, error) {
	if err := r.checkJSON(); err != nil {
		return nil, err
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(r.Body, &obj); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			return nil, r.badf("the body is a JSON %s, not the documented object", typeErr.Value)
		}
		return nil, r.jsonError(err)
	}
	if obj == nil {
		return nil, r.badf("the body is JSON null, not the documented object")
	}
	return obj, nil
}

// List returns the records of the envelope member key of a JSON object body
// ({"data":[...]}, {"companies":[...]}). A body without that member, or with
// something else than a list there, is an ErrBadResponse naming what came.
func (r *Response) List(key string) ([]json.RawMessage, error) {
	records, _, err := r.Envelope(key)
	return records, err
}

// Envelope is List that also returns the object's members, for the paging
// metadata beside the records.
func (r *Response) Envelope(key string) ([]json.RawMessage, map[string]json.RawMessage, error) {
	obj, err := r.Object()
	if err != nil {
		return nil, nil, err
	}
	raw, ok := obj[key]
	if !ok {
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		msg := fmt.Sprintf("the body has no %q list (members: %s)", key, strings.Join(keys, ", "))
		if len(keys) == 0 {
			msg = fmt.Sprintf("the body is an empty object, without the %q list", key)
		}
		if detail := r.message(); detail != "" {
			msg += fmt.Sprintf("; the API says %q", detail)
		}
		return nil, nil, r.badf("%s", msg)
	}
	records, err := r.records(raw, fmt.Sprintf("%q", key))
	if err != nil {
		return nil, nil, err
	}
	return records, obj, nil
}

// Array returns the records of a body that is a JSON array (ConnectWise).
func (r *Response) Array() ([]json.RawMessage, error) {
	if err := r.checkJSON(); err != nil {
		return nil, err
	}
	if !json.Valid(r.Body) {
		var v any
		return nil, r.jsonError(json.Unmarshal(r.Body, &v))
	}
	return r.records(r.Body, "the body")
}

func (r *Response) records(raw json.RawMessage, what string) ([]json.RawMessage, error) {
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			return nil, r.badf("%s is a JSON %s, not a list of records", what, typeErr.Value)
		}
		return nil, r.jsonError(err)
	}
	if list == nil {
		return nil, r.badf("%s is null, not a list of records", what)
	}
	return list, nil
}

// checkJSON rejects bodies that cannot be the JSON the API documents: empty
// ones and HTML pages (a proxy, a login or maintenance page, the web UI).
func (r *Response) checkJSON() error {
	trimmed := bytes.TrimSpace(r.Body)
	if len(trimmed) == 0 {
		return r.badf("empty body where JSON was expected")
	}
	if r.isHTML() {
		msg := "an HTML page instead of JSON"
		if title := htmlTitle(r.Body); title != "" {
			msg += fmt.Sprintf(" (title %q)", title)
		}
		return r.badf("%s; check that base_url points at the API, not the web interface, and that no proxy or login page is in between", msg)
	}
	return nil
}

func (r *Response) isHTML() bool {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err == nil && (mt == "text/html" || mt == "application/xhtml+xml") {
			return true
		}
	}
	trimmed := bytes.TrimSpace(r.Body)
	return len(trimmed) > 0 && trimmed[0] == '<'
}

// jsonError describes a decoding failure: truncation or a syntax error.
func (r *Response) jsonError(err error) error {
	var syntaxErr *json.SyntaxError
	if errors.As(err, &syntaxErr) {
		if syntaxErr.Offset >= int64(len(bytes.TrimRight(r.Body, " \t\r\n"))) {
			return r.badf("truncated JSON: the body ends after %d bytes in the middle of a value", len(r.Body))
		}
		return r.badf("invalid JSON at byte %d: %v", syntaxErr.Offset, syntaxErr)
	}
	return r.badf("cannot decode JSON: %v", err)
}

func (r *Response) badf(format string, args ...any) error {
	return fmt.Errorf("%s %s: %w: %s", r.Vendor, r.Request, connectors.ErrBadResponse, fmt.Sprintf(format, args...))
}

// message extracts the API's own words from an error body, shortened: the
// usual members of JSON error envelopes, the title of an HTML page, or the
// start of a plain-text body.
func (r *Response) message() string {
	body := bytes.TrimSpace(r.Body)
	if len(body) == 0 {
		return ""
	}
	if r.isHTML() {
		if title := htmlTitle(body); title != "" {
			return "HTML page: " + title
		}
		return "an HTML page"
	}
	if body[0] == '{' {
		var env struct {
			Message any `json:"message"`
			Error   any `json:"error"`
			Errors  []struct {
				Title  string `json:"title"`
				Detail string `json:"detail"`
			} `json:"errors"`
		}
		if json.Unmarshal(body, &env) == nil {
			var parts []string
			for _, v := range []any{env.Error, env.Message} {
				if s, ok := v.(string); ok && s != "" {
					parts = append(parts, s)
				}
			}
			for _, e := range env.Errors {
				parts = append(parts, strings.TrimSpace(strings.Join([]string{e.Title, e.Detail}, " ")))
			}
			if len(parts) > 0 {
				return shorten(strings.Join(parts, "; "))
			}
		}
	}
	return shorten(string(body))
}

// htmlTitle returns the text of the first <title> element, if any.
func htmlTitle(body []byte) string {
	head := body[:min(len(body), 8192)]
	lower := bytes.ToLower(head)
	start := bytes.Index(lower, []byte("<title"))
	if start < 0 {
		return ""
	}
	open := bytes.IndexByte(lower[start:], '>')
	if open < 0 {
		return ""
	}
	textStart := start + open + 1
	end := bytes.Index(lower[textStart:], []byte("</title"))
	if end < 0 {
		return ""
	}
	return shorten(strings.Join(strings.Fields(html.UnescapeString(string(head[textStart:textStart+end]))), " "))
}

// shorten keeps messages readable: one line, at most 200 characters.
func shorten(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	const limit = 200
	if len(s) <= limit {
		return s
	}
	cut := limit
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
