package console

import (
	"html/template"
	"strconv"
	"strings"
)

// The end-users table is written here rather than by html/template: it is
// most of the page (100 rows of 11 cells), and html/template finds every
// field and calls every escaping function by reflection, about 150 µs a
// row, which made rendering the table cost more than the database query
// behind it. These writers put every value through html/template's own
// escaper (template.HTMLEscapeString) and only ever into element text or
// double-quoted attribute values; the URLs they build hold nothing but
// numeric ids and the fixed field names email and mobile. The rest of the
// page, and every other page, is html/template.

// tableBody is the rows of the end-users table.
func tableBody(rows []listRow) template.HTML {
	var b strings.Builder
	b.Grow(len(rows) * 1400)
	for i := range rows {
		rows[i].write(&b)
	}
	return template.HTML(b.String())
}

// writeText writes s escaped for element text or a double-quoted attribute.
func writeText(b *strings.Builder, s string) { b.WriteString(template.HTMLEscapeString(s)) }

// writeID writes an end user's id.
func writeID(b *strings.Builder, n int64) {
	var buf [20]byte
	b.Write(strconv.AppendInt(buf[:0], n, 10))
}

// writeOnOff writes On or Off.
func writeOnOff(b *strings.Builder, on bool) {
	if on {
		b.WriteString("On")
	} else {
		b.WriteString("Off")
	}
}

// writeBool writes true or false.
func writeBool(b *strings.Builder, v bool) {
	if v {
		b.WriteString("true")
	} else {
		b.WriteString("false")
	}
}

// write writes r as a table row.
func (r *listRow) write(b *strings.Builder) {
	b.WriteString(`<tr>
<td><input type="checkbox" name="id" value="`)
	writeID(b, r.ID)
	b.WriteString(`" form="bulk" class="pick" aria-label="Select `)
	writeText(b, r.Username)
	b.WriteString(`"></td>
<td><a href="/end-users/`)
	writeID(b, r.ID)
	b.WriteString(`">`)
	writeText(b, r.Username)
	b.WriteString("</a></td>\n<td>")
	writeText(b, r.DisplayName)
	b.WriteString("</td>\n")
	r.Email.write(b)
	r.Mobile.write(b)
	b.WriteString("<td>")
	writeText(b, r.Source)
	b.WriteString("</td>\n<td>")
	writeText(b, r.StatusLabel)
	b.WriteString("</td>\n<td>")
	r.writeSwitch(b)
	b.WriteString("</td>\n<td>")
	if r.LockedOut {
		b.WriteString(`<span class="badge bad">Locked</span> `)
	}
	if r.Enabled {
		b.WriteString("Enabled")
	} else {
		b.WriteString(`<span class="badge">Disabled</span>`)
	}
	if r.Privileged {
		b.WriteString(` <span class="badge bad">Privileged</span><span class="prov">`)
		writeText(b, r.PrivilegedReason)
		b.WriteString("</span>")
	}
	b.WriteString("</td>\n<td>")
	writeText(b, r.Expires)
	b.WriteString(`</td>
<td><button type="submit" form="rowaction" formaction="/end-users/`)
	writeID(b, r.ID)
	b.WriteString(`/welcome" class="small"`)
	if r.Email.Value == "" {
		b.WriteString(" disabled")
	}
	b.WriteString(`>Send Welcome Email<span class="sr-only"> to `)
	writeText(b, r.Username)
	b.WriteString("</span></button></td>\n</tr>\n")
}

// writeSwitch writes the row's Self-Serve switch: a button that flips it,
// or, when it is locked, a focusable greyed switch whose tooltip says why.
func (r *listRow) writeSwitch(b *strings.Builder) {
	if r.SwitchLock != "" {
		b.WriteString(`<span class="switch locked" role="switch" aria-checked="`)
		writeBool(b, r.SelfServe)
		b.WriteString(`" aria-disabled="true" tabindex="0" aria-label="Self-Serve for `)
		writeText(b, r.Username)
		b.WriteString(`" aria-describedby="why-`)
		writeID(b, r.ID)
		b.WriteString(`">`)
		writeOnOff(b, r.SelfServe)
		b.WriteString(`<span class="tip" id="why-`)
		writeID(b, r.ID)
		b.WriteString(`" role="tooltip">`)
		writeText(b, r.SwitchLock)
		b.WriteString("</span></span>")
		return
	}
	b.WriteString(`<button type="submit" form="rowaction" formaction="/end-users/`)
	writeID(b, r.ID)
	b.WriteString(`/self-serve" name="enabled" `)
	if r.SelfServe {
		b.WriteString(`value="false" class="switch on" aria-checked="true"`)
	} else {
		b.WriteString(`value="true" class="switch" aria-checked="false"`)
	}
	b.WriteString(` role="switch" aria-label="Self-Serve for `)
	writeText(b, r.Username)
	b.WriteString(`">`)
	writeOnOff(b, r.SelfServe)
	b.WriteString("</button>")
}

// HTML is the cell as a table cell (the template "cell": the page's rows
// and the in-place edit's Cancel and Save answers).
func (v cellView) HTML() template.HTML {
	var b strings.Builder
	v.write(&b)
	return template.HTML(b.String())
}

// write writes the cell: its value (a button that opens the in-place
// editor, unless the login may not edit it), where the value came from,
// and what a sync last refused.
func (v *cellView) write(b *strings.Builder) {
	b.WriteString(`<td class="contact" id="c-`)
	writeText(b, v.Field)
	b.WriteString("-")
	writeID(b, v.ID)
	b.WriteString("\">\n")
	if v.Locked == "" {
		b.WriteString(`<button type="button" class="cellbtn" hx-get="/end-users/`)
		writeID(b, v.ID)
		b.WriteString(`/edit?field=`)
		b.WriteString(v.fieldParam())
		b.WriteString(`" hx-target="closest td" hx-swap="outerHTML">`)
	}
	if v.Value != "" {
		writeText(b, v.Value)
	} else {
		b.WriteString(`<span class="missing">missing</span>`)
	}
	if v.Locked == "" {
		b.WriteString(`<span class="sr-only"> (edit the `)
		writeText(b, v.Field)
		b.WriteString(" of ")
		writeText(b, v.Username)
		b.WriteString(")</span></button>")
	}
	b.WriteString("\n")
	if v.Value != "" {
		b.WriteString(`<span class="prov">`)
		writeText(b, v.Provenance)
		b.WriteString("</span>")
	}
	b.WriteString("\n")
	if v.Refused != nil {
		b.WriteString(`<span class="refused">Refused from sync: “`)
		writeText(b, v.Refused.Value)
		b.WriteString("”: ")
		writeText(b, v.Refused.Reason)
		b.WriteString("</span>")
	}
	b.WriteString("\n</td>")
}

// fieldParam is the cell's field as a query parameter value (only the two
// contact fields exist).
func (v *cellView) fieldParam() string {
	if v.Field == "mobile" {
		return "mobile"
	}
	return "email"
}
