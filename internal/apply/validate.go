package apply

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"selfserve/connectors"
	"selfserve/internal/rules"
	"selfserve/internal/store"
)

type validator struct {
	f        *File
	opts     Options
	problems []error
}

// problem records an error at path (a list of keys and indexes).
func (v *validator) problem(path []any, format string, args ...any) {
	line := lineOf(v.f.root, path)
	loc := v.f.name
	if line > 0 {
		loc += ":" + strconv.Itoa(line)
	}
	v.problems = append(v.problems, fmt.Errorf("%s: %s: %s", loc, pathString(path), fmt.Sprintf(format, args...)))
}

func pathString(path []any) string {
	var b strings.Builder
	for _, p := range path {
		switch p := p.(type) {
		case int:
			fmt.Fprintf(&b, "[%d]", p)
		default:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			fmt.Fprint(&b, p)
		}
	}
	return b.String()
}

// lineOf finds the line of the node at path, or of its nearest existing
// ancestor.
func lineOf(root *yaml.Node, path []any) int {
	if root == nil {
		return 0
	}
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := n.Line
	for _, p := range path {
		var next *yaml.Node
		switch p := p.(type) {
		case int:
			if n.Kind == yaml.SequenceNode && p < len(n.Content) {
				next = n.Content[p]
			}
		case string:
			if n.Kind == yaml.MappingNode {
				for i := 0; i+1 < len(n.Content); i += 2 {
					if n.Content[i].Value == p {
						next = n.Content[i+1]
						line = n.Content[i].Line
						break
					}
				}
			}
		}
		if next == nil {
			return line
		}
		n = next
		line = n.Line
	}
	return line
}

func at(path []any, more ...any) []any {
	return append(append([]any{}, path...), more...)
}

func (v *validator) validate() {
	if len(v.f.Tenants) == 0 {
		v.problem([]any{"tenants"}, "the file declares no tenants")
	}
	tenantNames := map[string]bool{}
	for i, t := range v.f.Tenants {
		p := []any{"tenants", i}
		v.name(at(p, "name"), t.Name, "tenant", tenantNames)
		if t.Subscription != "" && !rules.Subscription(t.Subscription).Valid() {
			v.problem(at(p, "subscription"), "%q is not a subscription (none, qdesk or bundle)", t.Subscription)
		}
		v.timeZone(at(p, "timezone"), t.TimeZone)
		if t.SendHour != nil && (*t.SendHour < 0 || *t.SendHour > 23) {
			v.problem(at(p, "send_hour"), "%d is not an hour (0 to 23)", *t.SendHour)
		}
		if t.ReminderDays != nil && (*t.ReminderDays < 1 || *t.ReminderDays > 90) {
			v.problem(at(p, "reminder_days"), "%d is out of range (1 to 90)", *t.ReminderDays)
		}
		if t.Verification != "" && !rules.Verification(t.Verification).Valid() {
			v.problem(at(p, "verification"), "%q is not a verification (sms or sms+email)", t.Verification)
		}
		if t.PrivilegedSelfServe != "" && !rules.PrivilegedSelfServe(t.PrivilegedSelfServe).Valid() {
			v.problem(at(p, "privileged_self_serve"), "%q is not a policy (deny or two_factors)", t.PrivilegedSelfServe)
		}
		emails := map[string]bool{}
		for j, l := range t.Logins {
			lp := at(p, "logins", j)
			if _, err := rules.NormalizeEmail(l.Email); err != nil || l.Email == "" {
				v.problem(at(lp, "email"), "%q is not an email address", l.Email)
			}
			v.name(at(lp, "email"), strings.ToLower(l.Email), "login", emails)
			if !store.Role(l.Role).Valid() {
				v.problem(at(lp, "role"), "%q is not a role (super, primary, manager, engineer or helpdesk)", l.Role)
			}
		}
		connNames := map[string]bool{}
		for j, c := range t.Connections {
			v.connection(at(p, "connections", j), c, connNames, false)
		}
		customerNames := map[string]bool{}
		for j, c := range t.Customers {
			cp := at(p, "customers", j)
			v.name(at(cp, "name"), c.Name, "customer", customerNames)
			v.timeZone(at(cp, "timezone"), c.TimeZone)
			if !rules.ValidRegion(c.DefaultRegion) {
				v.problem(at(cp, "default_region"), "%q is not a two-letter region code such as GB or US", c.DefaultRegion)
			}
			for k, conn := range c.Connections {
				v.connection(at(cp, "connections", k), conn, connNames, true)
			}
		}
	}
}

func (v *validator) name(path []any, name, what string, seen map[string]bool) {
	if strings.TrimSpace(name) == "" {
		v.problem(path, "a %s needs a name", what)
		return
	}
	if seen[name] {
		v.problem(path, "%s %q is declared twice", what, name)
	}
	seen[name] = true
}

func (v *validator) timeZone(path []any, tz string) {
	if tz == "" {
		return
	}
	if _, err := time.LoadLocation(tz); err != nil || tz == "Local" {
		v.problem(path, "%q is not an IANA time zone (e.g. Europe/London)", tz)
	}
}

func (v *validator) connection(p []any, c Connection, names map[string]bool, underCustomer bool) {
	v.name(at(p, "name"), c.Name, "connection", names)
	kind := connectors.Kind(c.Kind)
	if !v.opts.Registry.Has(kind) {
		v.problem(at(p, "kind"), "%q is not a connector kind (%s)", c.Kind, strings.Join(v.opts.Registry.Kinds(), ", "))
		return
	}
	if kind.IsDirectory() && !underCustomer {
		v.problem(at(p, "kind"), "a %s connection imports end users, so it must be declared under a customer", c.Kind)
	}
	if !kind.IsDirectory() && underCustomer {
		v.problem(at(p, "kind"), "a %s connection serves the whole tenant: declare it under the tenant's connections, not a customer's", c.Kind)
	}
	if _, err := parseSchedule(c.Schedule); err != nil {
		v.problem(at(p, "schedule"), "%v", err)
	}
	secrets, err := resolveSecrets(c.Secrets, env(v.opts))
	if err != nil {
		v.problem(at(p, "secrets"), "%v", err)
		return
	}
	settingsJSON, err := json.Marshal(orEmpty(c.Settings))
	if err != nil {
		v.problem(at(p, "settings"), "%v", err)
		return
	}
	secretsJSON, _ := json.Marshal(secrets)
	// The connector's own validation, as a run would do it, without
	// contacting the system: a connection that can never work (plain LDAP
	// without start_tls, a missing file, a host nobody allowed) is refused
	// now rather than at its first run.
	err = v.opts.Registry.Check(kind, settingsJSON, secretsJSON)
	if err == nil {
		var cfg connectors.Config
		if cfg, err = v.opts.Registry.Decode(kind, settingsJSON, secretsJSON); err == nil {
			err = connectors.CheckHost(cfg, v.opts.AllowedPSAHosts)
		}
	}
	if err == nil {
		return
	}
	var keyErrs []*connectors.KeyError
	collectKeyErrors(err, &keyErrs)
	if len(keyErrs) == 0 {
		v.problem(at(p, "settings"), "%s", strings.TrimPrefix(err.Error(), connectors.ErrInvalidConfig.Error()+": "))
		return
	}
	for _, ke := range keyErrs {
		v.problem(at(p, ke.Section, ke.Key), "%s", ke.Problem)
	}
}

// collectKeyErrors gathers the *connectors.KeyError leaves of err (an
// errors.Join tree).
func collectKeyErrors(err error, out *[]*connectors.KeyError) {
	var ke *connectors.KeyError
	if errors.As(err, &ke) && err == error(ke) {
		*out = append(*out, ke)
		return
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			collectKeyErrors(e, out)
		}
		return
	}
	if errors.As(err, &ke) {
		*out = append(*out, ke)
	}
}
