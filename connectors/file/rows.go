package file

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"selfserve/connectors"
)

// record is one row of the file (a CSV record or a JSON object), its values
// by field, or what makes it unreadable.
type record struct {
	// n is the row number: the CSV header is row 1; JSON objects count from 1.
	n int
	// ref locates the row for reports: "row 7", "row 7 (line 9)", "object 3".
	ref    string
	values [numFields]string
	// problems make the row invalid before its values are even looked at
	// (wrong number of fields, not an object).
	problems []string
	// valueProblems are values of the wrong JSON type, reported with the
	// problems the conversion finds.
	valueProblems []string
	// blank is set for a row with no value at all (",,,," or {}): skipped.
	blank bool
	// badUsername and badExternalID are set when that value itself could
	// not be read (a JSON object or array where text belongs).
	badUsername, badExternalID bool
}

// key returns the external id of an invalid row when it can be told for
// certain which account the row is, "" otherwise: a row whose structure is
// broken (a wrong number of fields may have shifted its columns, a JSON
// value that is not an object) or whose key values are unusable has no key.
func (r *record) key() string {
	if len(r.problems) > 0 || r.badExternalID || (r.values[fExternalID] == "" && r.badUsername) {
		return ""
	}
	id := cmp.Or(r.values[fExternalID], r.values[fUsername])
	if strings.ContainsFunc(id, unicode.IsControl) {
		return ""
	}
	return id
}

// rowReader reads the rows of one format.
type rowReader interface {
	// next returns the next row, io.EOF after the last, or an error that
	// ends the listing.
	next() (record, error)
	// name names row n in messages ("row 5", "object 5").
	name(n int) string
	// explicitIDs reports whether rows may carry an external_id of their own.
	explicitIDs() bool
}

// normalizeName turns a header or key into a field name: trimmed, lower case,
// spaces and hyphens as underscores.
func normalizeName(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	return strings.NewReplacer(" ", "_", "-", "_").Replace(s)
}

// csvRows reads a CSV file with a header row.
type csvRows struct {
	cr    *csv.Reader
	path  string
	cols  []field // by column: the field it holds, or -1
	hasID bool
	n     int
}

func newCSVRows(r io.Reader, path string) (*csvRows, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	cr := csv.NewReader(br)
	cr.Comma = sniffDelimiter(br)
	cr.FieldsPerRecord = -1 // counted here, to make a bad row invalid rather than fatal
	cr.ReuseRecord = true
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: %s is empty; it needs a header row naming the columns (username, first_name, last_name, email, mobile, …)", connectors.ErrInvalidConfig, path)
	}
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return nil, fmt.Errorf("%w: %s: header row, line %d, column %d: %v", connectors.ErrInvalidConfig, path, pe.Line, pe.Column, pe.Err)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: reading %s: %w", connectors.ErrUnavailable, path, err)
	}
	line, _ := cr.FieldPos(0)
	c := &csvRows{cr: cr, path: path, cols: make([]field, len(header)), n: 1}
	where := map[field]int{}
	found := make([]string, 0, len(header))
	var misspelt error
	for i, h := range header {
		name := normalizeName(h)
		found = append(found, strconv.Quote(name))
		f, ok := lookupField(name)
		if !ok {
			if known, near := misspeltColumn(name); near && misspelt == nil {
				misspelt = fmt.Errorf("%w: %s: the header row (line %d) has the unknown column %q (column %d): did you mean %q? (columns: %s)",
					connectors.ErrInvalidConfig, path, line, name, i+1, known, strings.Join(fieldNames[:], ", "))
			}
			c.cols[i] = -1
			continue
		}
		if j, dup := where[f]; dup {
			return nil, fmt.Errorf("%w: %s: the header row (line %d) has the column %q twice (columns %d and %d)", connectors.ErrInvalidConfig, path, line, name, j+1, i+1)
		}
		where[f] = i
		c.cols[i] = f
		if f == fExternalID {
			c.hasID = true
		}
	}
	if _, ok := where[fUsername]; !ok {
		return nil, fmt.Errorf("%w: %s has no %q column; the header row (line %d) has %d column(s): %s",
			connectors.ErrInvalidConfig, path, fieldNames[fUsername], line, len(header), strings.Join(found, ", "))
	}
	if misspelt != nil {
		return nil, misspelt
	}
	return c, nil
}

// sniffDelimiter returns the header row's delimiter: a comma, or a
// semicolon or tab when the first line has no comma but one of those.
func sniffDelimiter(br *bufio.Reader) rune {
	head, _ := br.Peek(4096)
	if i := bytes.IndexByte(head, '\n'); i >= 0 {
		head = head[:i]
	}
	switch {
	case bytes.IndexByte(head, ',') >= 0:
		return ','
	case bytes.IndexByte(head, ';') >= 0:
		return ';'
	case bytes.IndexByte(head, '\t') >= 0:
		return '\t'
	}
	return ','
}

func (c *csvRows) name(n int) string { return "row " + strconv.Itoa(n) }

func (c *csvRows) explicitIDs() bool { return c.hasID }

func (c *csvRows) ref(line int) string {
	if line == c.n || line == 0 {
		return c.name(c.n)
	}
	return fmt.Sprintf("row %d (line %d)", c.n, line)
}

func (c *csvRows) next() (record, error) {
	fields, err := c.cr.Read()
	if errors.Is(err, io.EOF) {
		return record{}, io.EOF
	}
	c.n++
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		if pe.StartLine == pe.Line && (errors.Is(pe.Err, csv.ErrBareQuote) || errors.Is(pe.Err, csv.ErrQuote)) {
			// The reader skips to the next line: only this row is lost.
			return record{n: c.n, ref: c.ref(pe.StartLine), problems: []string{fmt.Sprintf(
				`line %d, column %d: %v; a field containing a quote must be enclosed in quotes, with the inner quote doubled ("")`,
				pe.Line, pe.Column, pe.Err)}}, nil
		}
		return record{}, fmt.Errorf("%w: %s: %s (line %d): %v at line %d, column %d; the rows after it cannot be read reliably: check the quotes of that row",
			connectors.ErrBadResponse, c.path, c.name(c.n), pe.StartLine, pe.Err, pe.Line, pe.Column)
	}
	if err != nil {
		return record{}, fmt.Errorf("%w: reading %s: %w", connectors.ErrUnavailable, c.path, err)
	}
	startLine, _ := c.cr.FieldPos(0)
	r := record{n: c.n, ref: c.ref(startLine), blank: true}
	multiline := false
	for i, v := range fields {
		if strings.ContainsAny(v, "\r\n") {
			multiline = true
		}
		v = strings.TrimSpace(v)
		if v != "" {
			r.blank = false
		}
		if i < len(c.cols) && c.cols[i] >= 0 {
			r.values[c.cols[i]] = v
		}
	}
	if r.blank {
		return r, nil
	}
	if len(fields) != len(c.cols) {
		if multiline {
			// A quote opened in one row and closed in a later one swallowed
			// the rows between: their accounts would silently go missing.
			return record{}, fmt.Errorf("%w: %s: %s (line %d) runs over several lines and has %d fields where the header has %d columns: a quote is probably not closed on line %d",
				connectors.ErrBadResponse, c.path, c.name(c.n), startLine, len(fields), len(c.cols), startLine)
		}
		r.problems = []string{fmt.Sprintf("the row has %d fields, the header has %d columns", len(fields), len(c.cols))}
	}
	return r, nil
}

// jsonRows reads a JSON array of objects, one object at a time.
type jsonRows struct {
	dec     *json.Decoder
	path    string
	bomLen  int
	n       int
	checked bool // the first object was checked for a username key
	done    bool
	obj     map[string]json.RawMessage
}

func newJSONRows(r io.Reader, path string, bomLen int) (*jsonRows, error) {
	j := &jsonRows{dec: json.NewDecoder(bufio.NewReaderSize(r, 64<<10)), path: path, bomLen: bomLen}
	tok, err := j.dec.Token()
	if errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: %s is empty; it needs a JSON array of user objects: [{\"username\": \"…\", …}, …]", connectors.ErrInvalidConfig, path)
	}
	if err != nil {
		return nil, j.syntaxError(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return nil, fmt.Errorf("%w: %s must hold a JSON array of user objects ([{\"username\": \"…\", …}, …]); it starts with %s",
			connectors.ErrInvalidConfig, path, describeToken(tok))
	}
	return j, nil
}

func describeToken(tok json.Token) string {
	switch t := tok.(type) {
	case json.Delim:
		if t == '{' {
			return "an object"
		}
		return string(t)
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return "a number"
}

func (j *jsonRows) name(n int) string { return "object " + strconv.Itoa(n) }

func (j *jsonRows) explicitIDs() bool { return true }

func (j *jsonRows) next() (record, error) {
	if j.done {
		return record{}, io.EOF
	}
	if !j.dec.More() {
		if _, err := j.dec.Token(); err != nil { // the closing ]
			return record{}, j.syntaxError(err)
		}
		if _, err := j.dec.Token(); !errors.Is(err, io.EOF) {
			return record{}, fmt.Errorf("%w: %s: there is more after the array's closing ]: the file must hold one JSON array", connectors.ErrBadResponse, j.path)
		}
		j.done = true
		return record{}, io.EOF
	}
	j.n++
	r := record{n: j.n, ref: j.name(j.n)}
	clear(j.obj) // reused: decoding adds to it
	if err := j.dec.Decode(&j.obj); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			r.problems = []string{"expected an object, found " + article(te.Value)}
			return r, nil
		}
		return record{}, j.syntaxError(err)
	}
	if j.obj == nil {
		r.problems = []string{"expected an object, found null"}
		return r, nil
	}
	var byField [numFields]json.RawMessage
	for k, raw := range j.obj {
		if f, ok := lookupField(normalizeName(k)); ok {
			byField[f] = raw
		}
	}
	r.blank = len(j.obj) == 0
	if r.blank {
		return r, nil
	}
	if !j.checked {
		j.checked = true
		if byField[fUsername] == nil {
			keys := make([]string, 0, len(j.obj))
			for k := range j.obj {
				keys = append(keys, strconv.Quote(k))
			}
			return record{}, fmt.Errorf("%w: %s: object %d has no %q key; its keys are: %s",
				connectors.ErrInvalidConfig, j.path, j.n, fieldNames[fUsername], strings.Join(slices.Sorted(slices.Values(keys)), ", "))
		}
	}
	for f, raw := range byField {
		if raw == nil {
			continue
		}
		v, problem := jsonText(raw)
		if problem != "" {
			r.valueProblems = append(r.valueProblems, fieldNames[f]+": "+problem)
			r.badUsername = r.badUsername || field(f) == fUsername
			r.badExternalID = r.badExternalID || field(f) == fExternalID
			continue
		}
		r.values[f] = strings.TrimSpace(v)
	}
	return r, nil
}

func article(jsonType string) string {
	switch jsonType {
	case "array":
		return "an array"
	case "":
		return "something else"
	}
	return "a " + jsonType
}

// jsonText returns a JSON value as text: strings as they are, numbers and
// booleans as written, null as "". Objects and arrays are a problem.
func jsonText(raw json.RawMessage) (string, string) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "", ""
	}
	switch raw[0] {
	case 'n':
		return "", ""
	case '"':
		if len(raw) >= 2 && bytes.IndexByte(raw, '\\') < 0 {
			return string(raw[1 : len(raw)-1]), "" // no escapes: the decoder already checked it
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", "not a valid JSON string"
		}
		return s, ""
	case '{':
		return "", "expected text, found an object"
	case '[':
		return "", "expected text, found an array"
	}
	return string(raw), "" // a number, true or false
}

// syntaxError turns a decoder error into one naming the line.
func (j *jsonRows) syntaxError(err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("%w: %s: line %d: %v (in %s)", connectors.ErrBadResponse, j.path, lineAt(j.path, int64(j.bomLen)+se.Offset), se, j.where())
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: %s ends in the middle of %s: the file is truncated (still being written?)", connectors.ErrBadResponse, j.path, j.where())
	}
	return fmt.Errorf("%w: reading %s: %w", connectors.ErrUnavailable, j.path, err)
}

func (j *jsonRows) where() string {
	if j.n == 0 {
		return "the opening of the array"
	}
	return j.name(j.n)
}

// lineAt returns the 1-based line of byte offset off in the file at path (0
// when the file cannot be read again).
func lineAt(path string, off int64) int {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	line := 1
	buf := make([]byte, 64<<10)
	r := io.LimitReader(f, off)
	for {
		n, err := r.Read(buf)
		line += bytes.Count(buf[:n], []byte{'\n'})
		if err != nil {
			return line
		}
	}
}
