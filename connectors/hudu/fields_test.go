package hudu

import (
	"encoding/json"
	"slices"
	"testing"
)

// itglueTable is how the IT Glue → Hudu migration writes contact-phones: the
// PowerShell ConvertTo-Html -Fragment of the phone objects.
const itglueTable = `<table>
<colgroup><col/><col/><col/><col/><col/><col/></colgroup>
<tr><th>value</th><th>extension</th><th>primary</th><th>label-name</th><th>label-type</th><th>formatted-value</th></tr>
<tr><td>4155552156</td><td></td><td>True</td><td>Work</td><td>phone</td><td>(415) 555-2156</td></tr>
<tr><td>8134890123</td><td></td><td>False</td><td>Cell</td><td>phone</td><td>(813) 489-0123</td></tr>
<tr><td>8134890999</td><td></td><td>True</td><td>Mobile</td><td>phone</td><td>(813) 489-0999</td></tr>
</table>`

func TestMobilesFromFieldValues(t *testing.T) {
	t.Parallel()
	labels := append(slices.Clone(DefaultMobileFields), "Mobile", "Cell")
	cases := []struct {
		name  string
		value string // raw JSON
		want  []string
	}{
		{"plain string", `"+1 415 555 0100"`, []string{"+1 415 555 0100"}},
		{"plain with label", `"Mobile: 0412 345 678"`, []string{"0412 345 678"}},
		{"plain, work label skipped", `"Work: 02 9999 0000"`, nil},
		{"plain list", `"0412 345 678; Cell: 0413 111 222, Work: 02 9999 0000"`, []string{"0412 345 678", "0413 111 222"}},
		{"lines", `"Work: 02 9999 0000\nMobile: 0412 345 678"`, []string{"0412 345 678"}},
		{"number", `4155550123`, []string{"4155550123"}},
		{"big number stays exact", `61412345678`, []string{"61412345678"}},
		{"null", `null`, nil},
		{"boolean", `true`, nil},
		{"empty", `""`, nil},
		{"not a number", `"ask reception"`, nil},
		{"html paragraphs", `"<p>Work: 415 555 0101</p><p>Mobile: <a href=\"tel:+14155550102\">+1 415 555 0102</a></p>"`, []string{"+1 415 555 0102"}},
		{"html br", `"<div>0412 345 678<br>0413 111 222</div>"`, []string{"0412 345 678", "0413 111 222"}},
		{"html entities", `"<p>Mobile:&nbsp;+44&nbsp;7700&nbsp;900123</p>"`, []string{"+44\u00a07700\u00a0900123"}},
		{"html link hiding the number", `"<p>Mobile: <a href=\"tel:+14155550199\">call me</a></p>"`, []string{"call me +14155550199"}},
		{"itglue table, primary first, work skipped", `"` + jsonEscape(itglueTable) + `"`, []string{"8134890999", "8134890123"}},
		{"two-column table", `"<table><tr><td>Work</td><td>02 9999 0000</td></tr><tr><td>Cell:</td><td>0412 345 678</td></tr></table>"`, []string{"0412 345 678"}},
		{"json string list", `"[\"+44 7700 900123\",\"+44 7700 900124\"]"`, []string{"+44 7700 900123", "+44 7700 900124"}},
		{"json list", `["+44 7700 900123", 447700900124]`, []string{"+44 7700 900123", "447700900124"}},
		{"json objects with labels", `"[{\"value\":\"4155552156\",\"label-name\":\"Work\"},{\"value\":\"8134890123\",\"label-name\":\"Cell\",\"primary\":true}]"`, []string{"8134890123"}},
		{"tel scheme", `"tel:+14155550100"`, []string{"+14155550100"}},
		{"invalid json inside string is text", `"[0412 345 678"`, []string{"[0412 345 678"}},
		{"text with angle brackets", `"Jane <0412 345 678>"`, []string{"Jane <0412 345 678>"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := mobilesIn(fieldEntries(json.RawMessage(tc.value)), labels)
			if !slices.Equal(got, tc.want) {
				t.Errorf("mobiles %q, want %q (entries %+v)", got, tc.want, fieldEntries(json.RawMessage(tc.value)))
			}
		})
	}
}

func TestEmailsFromFieldValues(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		value string
		want  []string
	}{
		{"plain", `"jane@acme.com"`, []string{"jane@acme.com"}},
		{"list", `"jane@acme.com, j.doe@home.example; x@y.org"`, []string{"jane@acme.com", "j.doe@home.example", "x@y.org"}},
		{"display name", `"Jane Doe <jane@acme.com>"`, []string{"jane@acme.com"}},
		{"labelled", `"Work: jane@acme.com"`, []string{"jane@acme.com"}},
		{"html", `"<p><a href=\"mailto:jane@acme.com\">jane@acme.com</a></p><p>Home: j@home.example.</p>"`, []string{"jane@acme.com", "j@home.example"}},
		{"html link text hides the address", `"<a href=\"mailto:jane@acme.com?subject=hi\">Email Jane</a>"`, []string{"jane@acme.com"}},
		{"itglue table, primary first", `"<table><tr><th>value</th><th>primary</th><th>label-name</th></tr><tr><td>home@x.example</td><td>False</td><td>Home</td></tr><tr><td>work@x.example</td><td>True</td><td>Work</td></tr></table>"`, []string{"work@x.example", "home@x.example"}},
		{"json string", `"[\"a@x.example\",\"b@x.example\"]"`, []string{"a@x.example", "b@x.example"}},
		{"not addresses", `"@acme, jane@, jane@localhost, a@b@c.d, x@.com"`, nil},
		{"number", `12`, nil},
		{"object", `{"id":3,"name":"Main"}`, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := emailsIn(fieldEntries(json.RawMessage(tc.value)))
			if !slices.Equal(got, tc.want) {
				t.Errorf("emails %q, want %q", got, tc.want)
			}
		})
	}
}

func TestLooksLikeHTML(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]bool{
		"<p>x</p>":               true,
		"a<br>b":                 true,
		"a<br/>b":                true,
		"<TABLE><tr><td>x":       true,
		"Jane <jane@acme.com>":   false,
		"1 < 2 and 3 > 2":        false,
		"<b":                     false,
		"x <pre>y</pre>":         false,
		`<a href="tel:1">1</a>`:  true,
		"plain text, no markup":  false,
		"<span>":                 true,
		"<brand new> thing":      false,
		"</div>":                 true,
		"<p\n class=\"x\">y</p>": true,
	} {
		if got := looksLikeHTML(s); got != want {
			t.Errorf("looksLikeHTML(%q) = %v", s, got)
		}
	}
}

// TestDeepJSONIsBounded: a value nested up to maxDepth arrays is read; one
// nested deeper is dropped instead of recursed into without bound.
func TestDeepJSONIsBounded(t *testing.T) {
	t.Parallel()
	nested := func(depth int) json.RawMessage {
		v := `"x"`
		for range depth {
			v = "[" + v + "]"
		}
		return json.RawMessage(v)
	}
	if got := fieldEntries(nested(maxDepth)); len(got) != 1 || got[0].text != "x" {
		t.Errorf("%d levels deep: %+v, want the one entry x", maxDepth, got)
	}
	if got := fieldEntries(nested(50)); len(got) != 0 {
		t.Errorf("50 levels deep: %+v, want nothing", got)
	}
}

func TestPhoneKey(t *testing.T) {
	t.Parallel()
	got := appendDistinct(nil, phoneKey, "+1 415 555 0100", "+14155550100", "(415) 555-0101")
	if !slices.Equal(got, []string{"+1 415 555 0100", "(415) 555-0101"}) {
		t.Errorf("distinct phones %q", got)
	}
	got = appendDistinct(nil, emailKey, "Jane@Acme.com", "jane@acme.com ", "x@y.z")
	if !slices.Equal(got, []string{"Jane@Acme.com", "x@y.z"}) {
		t.Errorf("distinct emails %q", got)
	}
}

func jsonEscape(s string) string {
	b, _ := json.Marshal(s)
	return string(b[1 : len(b)-1])
}
