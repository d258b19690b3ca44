package notify

import (
	"bytes"
	"fmt"
	"strings"
	"text/template"
	"time"

	"selfserve/internal/rules"
)

// Data is what a template may show.
type Data struct {
	Kind rules.NoticeKind
	// Name is how the end user is greeted (display name, else first and
	// last name, else the user name).
	Name string
	// Account is the sign-in name of the account (UPN or user name).
	Account string
	// Customer is the end user's company.
	Customer string
	// DaysLeft counts local days to the expiry (0 on the day).
	DaysLeft int
	// ExpiresAt is the password's expiry instant (expiry notices).
	ExpiresAt time.Time
	// LockedOutAt is when the account was locked (lockout notices).
	LockedOutAt time.Time
	// Location is the customer's time zone (nil: UTC); Region its ISO 3166
	// country, which picks the date format.
	Location *time.Location
	Region   string
	// Link is the self-serve address ("" leaves the sentence out).
	Link string
	// ChangedAt is when a self-serve reset or unlock was done (change
	// notices).
	ChangedAt time.Time
}

// Rendered is a notice rendered for both channels.
type Rendered struct {
	Subject string
	Email   string
	SMS     string
}

// templates holds, per kind, the email subject, the email body and the SMS.
var templates = func() map[rules.NoticeKind][3]*template.Template {
	funcs := template.FuncMap{
		"days": func(n int) string {
			switch n {
			case 0:
				return "today"
			case 1:
				return "tomorrow"
			default:
				return fmt.Sprintf("in %d days", n)
			}
		},
	}
	src := map[rules.NoticeKind][3]string{
		rules.KindExpiryReminder: {
			`Your {{.Customer}} password expires {{days .DaysLeft}}`,
			`Hello {{.Name}},

The password of your {{.Customer}} account {{.Account}} expires {{days .DaysLeft}}, on {{.Expires}}.
{{if .Link}}
Change it now at {{.Link}} — it takes a minute, and you will not be locked out on the day.
{{else}}
Please change it before then so that you are not locked out.
{{end}}
If you have already changed it, you can ignore this message.
`,
			`{{.Customer}}: your password for {{.Account}} expires {{days .DaysLeft}} ({{.ExpiresDate}}).{{if .Link}} Change it: {{.Link}}{{end}}`,
		},
		rules.KindExpiryDay: {
			`Your {{.Customer}} password expires today`,
			`Hello {{.Name}},

The password of your {{.Customer}} account {{.Account}} expires today, at {{.ExpiresTime}}.
{{if .Link}}
Change it now at {{.Link}}. If it has already expired, the same page lets you set a new one.
{{else}}
Please change it now. If it has already expired, ask your IT support for help.
{{end}}`,
			`{{.Customer}}: your password for {{.Account}} expires today at {{.ExpiresTime}}.{{if .Link}} Change it: {{.Link}}{{end}}`,
		},
		rules.KindLockout: {
			`Your {{.Customer}} account is locked`,
			`Hello {{.Name}},

Your {{.Customer}} account {{.Account}} was locked on {{.LockedOut}} after too many failed sign-ins.
{{if .Link}}
Unlock it yourself at {{.Link}}.
{{end}}
If this was not you, tell your IT support.
`,
			`{{.Customer}}: your account {{.Account}} was locked at {{.LockedOutTime}}.{{if .Link}} Unlock it: {{.Link}}{{end}} Not you? Tell your IT support.`,
		},
		rules.KindWelcome: {
			`Reset your {{.Customer}} password yourself`,
			`Hello {{.Name}},

{{.Customer}} now lets you reset your password and unlock your account {{.Account}} yourself, any time.
{{if .Link}}
To set it up, confirm your mobile number at {{.Link}}.
{{else}}
To set it up, give your IT support your mobile number.
{{end}}`,
			`{{.Customer}}: you can now reset your password yourself.{{if .Link}} Set it up: {{.Link}}{{end}}`,
		},
		rules.KindPasswordChanged: {
			`Your {{.Customer}} password was changed`,
			`Hello {{.Name}},

The password of your {{.Customer}} account {{.Account}} was changed on {{.Changed}}, your time, through self-serve.

If this was not you, call your IT provider now.
`,
			`{{.Customer}}: your password for {{.Account}} was changed at {{.ChangedTime}} your time. If this was not you, call your IT provider.`,
		},
		rules.KindAccountUnlocked: {
			`Your {{.Customer}} account was unlocked`,
			`Hello {{.Name}},

Your {{.Customer}} account {{.Account}} was unlocked on {{.Changed}}, your time, through self-serve.

If this was not you, call your IT provider now.
`,
			`{{.Customer}}: your account {{.Account}} was unlocked at {{.ChangedTime}} your time. If this was not you, call your IT provider.`,
		},
	}
	out := make(map[rules.NoticeKind][3]*template.Template, len(src))
	for kind, parts := range src {
		var ts [3]*template.Template
		for i, p := range parts {
			ts[i] = template.Must(template.New(fmt.Sprintf("%s/%d", kind, i)).Funcs(funcs).Option("missingkey=error").Parse(p))
		}
		out[kind] = ts
	}
	return out
}()

// view is Data with its instants formatted for the reader.
type view struct {
	Data
	Expires, ExpiresDate, ExpiresTime string
	LockedOut, LockedOutTime          string
	Changed, ChangedTime              string
}

// Render renders the notice of d.Kind for email (subject and body) and SMS.
func Render(d Data) (Rendered, error) {
	out, err := render(d, 0, 1, 2)
	if err != nil {
		return Rendered{}, err
	}
	return Rendered{Subject: out[0], Email: out[1] + "\n", SMS: out[2]}, nil
}

// RenderEmail renders the notice of d.Kind for email only.
func RenderEmail(d Data) (subject, body string, err error) {
	out, err := render(d, 0, 1)
	if err != nil {
		return "", "", err
	}
	return out[0], out[1] + "\n", nil
}

// RenderSMS renders the notice of d.Kind for SMS only.
func RenderSMS(d Data) (string, error) {
	out, err := render(d, 2)
	if err != nil {
		return "", err
	}
	return out[2], nil
}

// render executes the templates parts (0 subject, 1 email, 2 SMS) of
// d.Kind.
func render(d Data, parts ...int) ([3]string, error) {
	var out [3]string
	ts, ok := templates[d.Kind]
	if !ok {
		return out, fmt.Errorf("no template for notice kind %q", d.Kind)
	}
	loc := d.Location
	if loc == nil {
		loc = time.UTC
	}
	f := formatFor(d.Region)
	v := view{Data: d}
	if !d.ExpiresAt.IsZero() {
		at := d.ExpiresAt.In(loc)
		v.ExpiresDate = at.Format(f.date)
		v.ExpiresTime = at.Format(f.clock + " MST")
		v.Expires = at.Format(f.date + " " + f.at + " " + f.clock + " MST")
	}
	if !d.LockedOutAt.IsZero() {
		at := d.LockedOutAt.In(loc)
		v.LockedOutTime = at.Format(f.clock + " MST")
		v.LockedOut = at.Format(f.date + " " + f.at + " " + f.clock + " MST")
	}
	if !d.ChangedAt.IsZero() {
		at := d.ChangedAt.In(loc)
		v.ChangedTime = at.Format(f.clock)
		v.Changed = at.Format(f.date + " " + f.at + " " + f.clock + " MST")
	}
	for _, i := range parts {
		var b bytes.Buffer
		if err := ts[i].Execute(&b, v); err != nil {
			return out, fmt.Errorf("render %s notice: %w", d.Kind, err)
		}
		out[i] = strings.TrimSpace(b.String())
	}
	return out, nil
}

// dateFormat is how a region writes dates and times.
type dateFormat struct {
	date, at, clock string
}

// monthFirst regions write "January 2, 2006" and a 12-hour clock; isoFirst
// regions write year first; every other region day first with a 24-hour
// clock. The month names are English, the language of the templates.
var (
	monthFirst = map[string]bool{"US": true, "PH": true, "PR": true, "GU": true, "AS": true, "VI": true, "MP": true, "UM": true, "FM": true, "MH": true, "PW": true}
	isoFirst   = map[string]bool{"CN": true, "JP": true, "KR": true, "TW": true, "HU": true, "LT": true, "SE": true, "MN": true, "IR": true}
)

func formatFor(region string) dateFormat {
	region = strings.ToUpper(strings.TrimSpace(region))
	switch {
	case monthFirst[region]:
		return dateFormat{date: "Monday, January 2, 2006", at: "at", clock: "3:04 PM"}
	case isoFirst[region]:
		return dateFormat{date: "2006-01-02 (Monday)", at: "at", clock: "15:04"}
	case region == "CA":
		return dateFormat{date: "Monday, January 2, 2006", at: "at", clock: "15:04"}
	default:
		return dateFormat{date: "Monday 2 January 2006", at: "at", clock: "15:04"}
	}
}
