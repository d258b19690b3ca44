package hudu

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// Hudu asset field values are untyped: a plain string, an HTML fragment (a
// RichText field, for example a table IT Glue's migration wrote), a JSON
// document inside a string (AssetTag, ListSelect), a number, null. This file
// turns any of them into entries, then entries into email addresses or phone
// numbers.

// entry is one value found in a field: its text, the label it carried inside
// the field if any ("Work: 555…", a table row's label-name), and whether it
// was marked primary.
type entry struct {
	label   string
	text    string
	primary bool
}

// fieldEntries extracts the entries of a raw field value.
func fieldEntries(raw json.RawMessage) []entry {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil
	}
	return valueEntries(v, 0)
}

// maxDepth bounds recursion through JSON nested in strings.
const maxDepth = 8

func valueEntries(v any, depth int) []entry {
	if depth > maxDepth {
		return nil
	}
	switch v := v.(type) {
	case json.Number:
		return []entry{{text: v.String()}}
	case string:
		return stringEntries(v, depth)
	case []any:
		var out []entry
		for _, item := range v {
			out = append(out, valueEntries(item, depth+1)...)
		}
		return out
	case map[string]any:
		return objectEntries(v, depth)
	}
	return nil // null, booleans
}

// objectEntries reads {"value":…, "label-name":…, "primary":…} shapes as one
// entry, and any other object as the entries of its members.
func objectEntries(m map[string]any, depth int) []entry {
	if value, ok := m["value"]; ok {
		var label string
		for _, k := range []string{"label-name", "label", "type"} {
			if s, ok := m[k].(string); ok && s != "" {
				label = s
				break
			}
		}
		primary, _ := m["primary"].(bool)
		var out []entry
		for _, e := range valueEntries(value, depth+1) {
			if e.label == "" {
				e.label = label
			}
			e.primary = e.primary || primary
			out = append(out, e)
		}
		return out
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var out []entry
	for _, k := range keys {
		out = append(out, valueEntries(m[k], depth+1)...)
	}
	return out
}

func stringEntries(s string, depth int) []entry {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil
	}
	if (s[0] == '[' || s[0] == '{' || s[0] == '"') && json.Valid([]byte(s)) {
		return fieldEntries(json.RawMessage(s)) // depth restarts: bounded by the string's length
	}
	if looksLikeHTML(s) {
		return htmlEntries(s)
	}
	return textEntries(s)
}

// textEntries splits plain text into entries: one per line or list item
// (newline, ";", ",", "|"), each with its "Label:" prefix, if any, as label.
func textEntries(s string) []entry {
	var out []entry
	for piece := range strings.FieldsFuncSeq(s, func(r rune) bool {
		return r == '\n' || r == '\r' || r == ';' || r == ',' || r == '|'
	}) {
		label, text := splitLabel(piece)
		if text != "" {
			out = append(out, entry{label: label, text: text})
		}
	}
	return out
}

// splitLabel splits "Mobile: +1 555 0100" into its label and value. A label
// is a short run of letters, spaces and dashes; URL schemes (tel:, mailto:)
// are not labels and are dropped.
func splitLabel(s string) (label, text string) {
	s = strings.TrimSpace(s)
	before, after, ok := strings.Cut(s, ":")
	if !ok {
		return "", s
	}
	before = strings.TrimSpace(before)
	switch strings.ToLower(before) {
	case "tel", "mailto", "sms", "callto":
		return "", strings.TrimSpace(after)
	}
	if before == "" || len(before) > 30 || strings.TrimSpace(after) == "" {
		return "", s
	}
	for _, r := range before {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == ' ' || r == '-' || r == '_' || r == '.') {
			return "", s
		}
	}
	return before, strings.TrimSpace(after)
}

// htmlTags are the tags whose presence makes a value HTML rather than text
// that happens to hold "<" (such as "Jane <jane@acme.com>").
var htmlTags = []string{"p", "br", "div", "span", "a", "table", "tr", "td", "th", "ul", "ol", "li", "strong", "b", "i", "em", "u", "font", "h1", "h2", "h3", "h4", "h5", "h6", "tbody", "thead", "colgroup"}

func looksLikeHTML(s string) bool {
	lower := strings.ToLower(s)
	for i := strings.IndexByte(lower, '<'); i >= 0; {
		rest := strings.TrimPrefix(lower[i+1:], "/")
		for _, tag := range htmlTags {
			if after, ok := strings.CutPrefix(rest, tag); ok && after != "" && strings.ContainsRune(" \t\n/>", rune(after[0])) {
				return true
			}
		}
		next := strings.IndexByte(lower[i+1:], '<')
		if next < 0 {
			break
		}
		i += next + 1
	}
	return false
}

// htmlEntries reads an HTML fragment: tables row by row (with their header
// naming the value, label and primary columns), everything else line by
// line as text.
func htmlEntries(s string) []entry {
	doc, err := html.Parse(strings.NewReader(s))
	if err != nil {
		return textEntries(s)
	}
	var w htmlWalker
	w.walk(doc)
	w.flush()
	return w.out
}

type htmlWalker struct {
	line strings.Builder
	out  []entry
}

// blockTags end a line of text.
var blockTags = map[atom.Atom]bool{
	atom.P: true, atom.Br: true, atom.Div: true, atom.Li: true, atom.Tr: true, atom.Ul: true, atom.Ol: true,
	atom.H1: true, atom.H2: true, atom.H3: true, atom.H4: true, atom.H5: true, atom.H6: true,
}

func (w *htmlWalker) walk(n *html.Node) {
	switch {
	case n.Type == html.TextNode:
		w.line.WriteString(n.Data)
		return
	case n.Type == html.ElementNode && n.DataAtom == atom.Table:
		w.flush()
		w.out = append(w.out, tableEntries(n)...)
		return
	case n.Type == html.ElementNode && (n.DataAtom == atom.Script || n.DataAtom == atom.Style):
		return
	}
	block := n.Type == html.ElementNode && blockTags[n.DataAtom]
	if block {
		w.flush()
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		w.walk(c)
	}
	if n.Type == html.ElementNode && n.DataAtom == atom.A {
		// A link whose text hides its target ("call me") still gives the
		// number or address.
		if target := linkTarget(n); target != "" && !linkShows(textOf(n), target) {
			w.line.WriteString(" " + target)
		}
	}
	if block {
		w.flush()
	}
}

func (w *htmlWalker) flush() {
	if w.line.Len() > 0 {
		w.out = append(w.out, textEntries(w.line.String())...)
		w.line.Reset()
	}
}

// linkTarget returns the address of a mailto: or tel: link.
func linkTarget(a *html.Node) string {
	for _, attr := range a.Attr {
		if attr.Key != "href" {
			continue
		}
		href := strings.TrimSpace(attr.Val)
		for _, scheme := range []string{"mailto:", "tel:"} {
			if len(href) > len(scheme) && strings.EqualFold(href[:len(scheme)], scheme) {
				target, _, _ := strings.Cut(href[len(scheme):], "?")
				return strings.TrimSpace(target)
			}
		}
	}
	return ""
}

// htmlText returns the text of an HTML fragment, space-normalised.
func htmlText(s string) string {
	doc, err := html.Parse(strings.NewReader(s))
	if err != nil {
		return s
	}
	return textOf(doc)
}

// linkShows reports whether a link's text already holds its target, however
// formatted ("+1 415 555 0102" shows tel:+14155550102).
func linkShows(text, target string) bool {
	if strings.Contains(target, "@") {
		return strings.Contains(strings.ToLower(text), strings.ToLower(target))
	}
	return strings.Contains(phoneKey(text), phoneKey(target))
}

// textOf returns the text inside n, space-normalised.
func textOf(n *html.Node) string {
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
			b.WriteByte(' ')
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return strings.Join(strings.Fields(b.String()), " ")
}

// tableEntries reads a table. With a header row naming a value column (as
// PowerShell's ConvertTo-Html writes IT Glue's contact-emails and
// contact-phones), each row is one entry with the label and primary columns
// applied; a two-column table without header is label / value rows; any
// other table is read cell by cell.
func tableEntries(table *html.Node) []entry {
	var rows [][]*html.Node
	var header []string
	var collect func(*html.Node)
	collect = func(n *html.Node) {
		if n.Type == html.ElementNode && n.DataAtom == atom.Tr {
			var cells []*html.Node
			allTH := true
			for c := n.FirstChild; c != nil; c = c.NextSibling {
				if c.Type == html.ElementNode && (c.DataAtom == atom.Td || c.DataAtom == atom.Th) {
					cells = append(cells, c)
					allTH = allTH && c.DataAtom == atom.Th
				}
			}
			if allTH && header == nil && len(rows) == 0 && len(cells) > 0 {
				for _, c := range cells {
					header = append(header, strings.ToLower(textOf(c)))
				}
				return
			}
			rows = append(rows, cells)
			return
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			collect(c)
		}
	}
	collect(table)

	column := func(names ...string) int {
		for _, name := range names {
			if i := slices.Index(header, name); i >= 0 {
				return i
			}
		}
		return -1
	}
	valueCol := column("value", "formatted-value", "number", "phone", "email", "address")
	labelCol := column("label-name", "label", "type", "label name")
	primaryCol := column("primary")
	cell := func(row []*html.Node, i int) string {
		if i < 0 || i >= len(row) {
			return ""
		}
		return textOf(row[i])
	}

	var out []entry
	for _, row := range rows {
		switch {
		case valueCol >= 0:
			primary := strings.EqualFold(cell(row, primaryCol), "true")
			for _, e := range textEntries(cell(row, valueCol)) {
				if label := cell(row, labelCol); label != "" {
					e.label = label
				}
				e.primary = primary
				out = append(out, e)
			}
		case header == nil && len(row) == 2:
			if value := cell(row, 1); value != "" {
				out = append(out, entry{label: strings.TrimSuffix(cell(row, 0), ":"), text: value})
			}
		default:
			for i := range row {
				out = append(out, textEntries(cell(row, i))...)
			}
		}
	}
	return out
}

// primaryFirst orders entries marked primary before the others, keeping
// their order otherwise.
func primaryFirst(entries []entry) []entry {
	out := slices.Clone(entries)
	slices.SortStableFunc(out, func(a, b entry) int {
		switch {
		case a.primary == b.primary:
			return 0
		case a.primary:
			return -1
		}
		return 1
	})
	return out
}

// emailsIn returns the email addresses found in entries, primary first.
func emailsIn(entries []entry) []string {
	var out []string
	for _, e := range primaryFirst(entries) {
		for tok := range strings.FieldsFuncSeq(e.text, func(r rune) bool {
			return r == ' ' || r == '\t' || r == ',' || r == ';' || r == '<' || r == '>' || r == '(' || r == ')' || r == '"' || r == '\'' || r == '[' || r == ']'
		}) {
			if addr, ok := emailAddress(tok); ok {
				out = append(out, addr)
			}
		}
	}
	return out
}

// emailAddress checks the shape of an address token: local@domain.tld.
func emailAddress(tok string) (string, bool) {
	tok = strings.TrimSpace(tok)
	if len(tok) > 7 && strings.EqualFold(tok[:7], "mailto:") {
		tok = tok[7:]
	}
	tok = strings.TrimRight(tok, ".:")
	local, domain, ok := strings.Cut(tok, "@")
	if !ok || local == "" || strings.Contains(domain, "@") || !strings.Contains(domain, ".") ||
		strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") || strings.ContainsAny(tok, " \t/\\") {
		return "", false
	}
	return tok, true
}

// mobilesIn returns the phone numbers found in entries, primary first. An
// entry that carries its own label counts only when that label names a
// mobile (it is one of mobileLabels): the "Work" row of a Phones table is
// not a mobile. A number is any piece of text with 6 to 20 digits.
func mobilesIn(entries []entry, mobileLabels []string) []string {
	var out []string
	for _, e := range primaryFirst(entries) {
		if e.label != "" && !containsFold(mobileLabels, e.label) {
			continue
		}
		_, text := splitLabel(e.text)
		digits := 0
		for _, r := range text {
			if r >= '0' && r <= '9' {
				digits++
			}
		}
		if digits >= 6 && digits <= 20 {
			out = append(out, text)
		}
	}
	return out
}

// containsFold reports whether list holds s, ignoring case and surrounding
// spaces.
func containsFold(list []string, s string) bool {
	s = strings.TrimSpace(s)
	return slices.ContainsFunc(list, func(l string) bool { return strings.EqualFold(strings.TrimSpace(l), s) })
}

// appendDistinct appends the values not already in list; key says when two
// values are the same.
func appendDistinct(list []string, key func(string) string, values ...string) []string {
	for _, v := range values {
		k := key(v)
		if k != "" && !slices.ContainsFunc(list, func(o string) bool { return key(o) == k }) {
			list = append(list, v)
		}
	}
	return list
}

// emailKey compares addresses case-insensitively.
func emailKey(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// phoneKey compares numbers by their digits: "+1 415 555 0100" and
// "+14155550100" are one number.
func phoneKey(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return b.String()
}
