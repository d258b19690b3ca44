package fakeconnectwise

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The subset of the conditions language the fake understands: comparisons
// joined by AND.
//
//	company/id=250 AND inactiveFlag=False AND lastUpdated>[2024-05-01T00:00:00Z]
//	status/name="Active"
//
// Strings are in double quotes with \" and \\ escapes and "[[]" for a
// literal "["; datetimes are in brackets; booleans are True/False; numbers
// are bare.

// condition is one comparison.
type condition struct {
	field string
	op    string
	value any // string, float64, bool, time.Time
}

// getter returns what a record holds for a field: a string, float64, bool
// or time.Time, or a []any of them for child conditions on a list.
type getter func(field string) (any, bool)

// parseConditions parses a conditions string.
func parseConditions(s string) ([]condition, error) {
	var out []condition
	p := &parser{s: s}
	for {
		p.skipSpace()
		if p.done() {
			if len(out) == 0 {
				return nil, fmt.Errorf("empty conditions")
			}
			return out, nil
		}
		if len(out) > 0 {
			word := p.word()
			if !strings.EqualFold(word, "and") {
				return nil, fmt.Errorf("expected AND at %d, found %q (the fake supports AND only)", p.i, word)
			}
			p.skipSpace()
		}
		c, err := p.condition()
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
}

type parser struct {
	s string
	i int
}

func (p *parser) done() bool { return p.i >= len(p.s) }

func (p *parser) skipSpace() {
	for !p.done() && p.s[p.i] == ' ' {
		p.i++
	}
}

func (p *parser) word() string {
	start := p.i
	for !p.done() && p.s[p.i] != ' ' {
		p.i++
	}
	return p.s[start:p.i]
}

func (p *parser) condition() (condition, error) {
	start := p.i
	for !p.done() && (isIdent(p.s[p.i])) {
		p.i++
	}
	field := p.s[start:p.i]
	if field == "" {
		return condition{}, fmt.Errorf("expected a field name at %d", start)
	}
	p.skipSpace()
	var op string
	for _, candidate := range []string{"!=", "<=", ">=", "=", "<", ">"} {
		if strings.HasPrefix(p.s[p.i:], candidate) {
			op = candidate
			break
		}
	}
	if op == "" {
		return condition{}, fmt.Errorf("expected an operator after %s", field)
	}
	p.i += len(op)
	p.skipSpace()
	value, err := p.value()
	if err != nil {
		return condition{}, fmt.Errorf("%s%s: %w", field, op, err)
	}
	return condition{field: field, op: op, value: value}, nil
}

func isIdent(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '/' || b == '_'
}

func (p *parser) value() (any, error) {
	if p.done() {
		return nil, fmt.Errorf("missing value")
	}
	switch p.s[p.i] {
	case '"':
		var b strings.Builder
		for p.i++; !p.done(); p.i++ {
			switch c := p.s[p.i]; {
			case c == '\\' && p.i+1 < len(p.s):
				p.i++
				b.WriteByte(p.s[p.i])
			case c == '[' && strings.HasPrefix(p.s[p.i:], "[[]"):
				b.WriteByte('[')
				p.i += 2
			case c == '"':
				p.i++
				return b.String(), nil
			default:
				b.WriteByte(c)
			}
		}
		return nil, fmt.Errorf("unterminated string")
	case '[':
		end := strings.IndexByte(p.s[p.i:], ']')
		if end < 0 {
			return nil, fmt.Errorf("unterminated datetime")
		}
		t, err := time.Parse(time.RFC3339, p.s[p.i+1:p.i+end])
		if err != nil {
			return nil, fmt.Errorf("bad datetime %q", p.s[p.i+1:p.i+end])
		}
		p.i += end + 1
		return t, nil
	}
	word := p.word()
	switch strings.ToLower(word) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	n, err := strconv.ParseFloat(word, 64)
	if err != nil {
		return nil, fmt.Errorf("%q is not a value (strings need double quotes)", word)
	}
	return n, nil
}

// match reports whether a record satisfies every condition. A field the
// record lacks is an error, as ConnectWise answers 400 for unknown fields.
func match(conds []condition, get getter) (bool, error) {
	for _, c := range conds {
		v, ok := get(c.field)
		if !ok {
			return false, fmt.Errorf("unknown field %q", c.field)
		}
		values, isList := v.([]any)
		if !isList {
			values = []any{v}
		}
		matched := false
		for _, v := range values {
			ok, err := compare(v, c.op, c.value)
			if err != nil {
				return false, fmt.Errorf("%s: %w", c.field, err)
			}
			matched = matched || ok
		}
		if !matched {
			return false, nil
		}
	}
	return true, nil
}

func compare(have any, op string, want any) (bool, error) {
	var cmp int
	switch h := have.(type) {
	case string:
		w, ok := want.(string)
		if !ok {
			return false, fmt.Errorf("a string field compared with %T", want)
		}
		cmp = strings.Compare(strings.ToLower(h), strings.ToLower(w))
	case float64:
		w, ok := want.(float64)
		if !ok {
			return false, fmt.Errorf("a number field compared with %T", want)
		}
		cmp = compareFloat(h, w)
	case bool:
		w, ok := want.(bool)
		if !ok {
			return false, fmt.Errorf("a boolean field compared with %T", want)
		}
		if op != "=" && op != "!=" {
			return false, fmt.Errorf("booleans compare with = or != only")
		}
		if h != w {
			cmp = 1
		}
	case time.Time:
		w, ok := want.(time.Time)
		if !ok {
			return false, fmt.Errorf("a datetime field compared with %T (datetimes go in brackets)", want)
		}
		cmp = h.Compare(w)
	default:
		return false, fmt.Errorf("field of unsupported type %T", have)
	}
	switch op {
	case "=":
		return cmp == 0, nil
	case "!=":
		return cmp != 0, nil
	case "<":
		return cmp < 0, nil
	case "<=":
		return cmp <= 0, nil
	case ">":
		return cmp > 0, nil
	case ">=":
		return cmp >= 0, nil
	}
	return false, fmt.Errorf("unknown operator %s", op)
}

func compareFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
