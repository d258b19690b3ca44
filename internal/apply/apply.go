// Package apply reads a declarative file of tenants, with their logins,
// customers and connections, and makes the store match it: creating what is
// missing and updating what differs, in one transaction, so applying the
// same file twice changes nothing the second time and a bad file changes
// nothing at all. Nothing absent from the file is deleted.
//
//	tenants:
//	  - name: acme-msp
//	    subscription: bundle          # none | qdesk | bundle
//	    self_serve: true              # the global override (default true)
//	    timezone: America/New_York    # default UTC
//	    send_hour: 9                  # default 9
//	    reminder_days: 10             # default 10
//	    privileged_self_serve: deny   # deny | two_factors (SMS and email codes); default deny
//	    verification: sms             # sms | sms+email (every end user verifies both); default sms
//	    logins:
//	      - {email: lead@acme-msp.example, role: super}
//	    connections:                  # tenant-wide PSA connections
//	      - {name: acme-itglue, kind: itglue, settings: {region: us}, secrets: {api_key: "${ITGLUE_KEY}"}}
//	    customers:
//	      - name: Contoso
//	        timezone: Europe/London   # default: the tenant's
//	        default_region: GB        # for phone numbers without a country code
//	        connections:
//	          - name: contoso-ad
//	            kind: ad              # ad | azure | file (directory), itglue | hudu | connectwise (PSA)
//	            enable_self_serve: true
//	            schedule: 3h          # Go duration; "off" for no scheduled sync; default 3h
//	            settings: {url: "ldaps://dc1.contoso.example", base_dn: "OU=Staff,DC=contoso,DC=example"}
//	            secrets: {bind_dn: "svc@contoso.example", bind_password: "${CONTOSO_BIND_PASSWORD}"}
//
// Secret values may be written ${ENV_NAME}: they are read from the
// environment when the file is applied, sealed with the encryption key, and
// never printed. A connector's secrets belong under secrets: one written
// under settings is refused, as is an unknown key in either.
//
// Validate reports every problem at once, each as file:line and the key
// path (`apply.yaml:5: tenants[0].send_hour: "nine" is not a whole
// number`). Each connection is checked by its connector's own validation,
// without contacting anything: a connection that could never work (plain
// ldap:// without start_tls, a missing file, a PSA kind under a customer, a
// PSA host neither the vendor's nor in Options.AllowedPSAHosts) is refused
// before anything is written. File paths in an apply file are the
// operator's: they are not confined to SELFSERVE_FILE_IMPORT_DIR.
package apply

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"selfserve/connectors"
	"selfserve/internal/connection"
	"selfserve/internal/rules"
	"selfserve/internal/secretbox"
	"selfserve/internal/store"
)

// DefaultSchedule is a connection's sync interval when the file gives none.
const DefaultSchedule = 3 * time.Hour

// File is a parsed apply file.
type File struct {
	Tenants []Tenant `yaml:"tenants"`

	name string
	root *yaml.Node
}

// Tenant is one tenant of the file.
type Tenant struct {
	Name         string `yaml:"name"`
	Subscription string `yaml:"subscription"`
	SelfServe    *bool  `yaml:"self_serve"`
	TimeZone     string `yaml:"timezone"`
	SendHour     *int   `yaml:"send_hour"`
	ReminderDays *int   `yaml:"reminder_days"`
	// PrivilegedSelfServe is deny (the default) or two_factors.
	PrivilegedSelfServe string `yaml:"privileged_self_serve"`
	// Verification is sms (the default) or sms+email.
	Verification string       `yaml:"verification"`
	Logins       []Login      `yaml:"logins"`
	Connections  []Connection `yaml:"connections"`
	Customers    []Customer   `yaml:"customers"`
}

// Login is a technician of a tenant.
type Login struct {
	Email string `yaml:"email"`
	Role  string `yaml:"role"`
}

// Customer is a customer of a tenant.
type Customer struct {
	Name          string       `yaml:"name"`
	TimeZone      string       `yaml:"timezone"`
	DefaultRegion string       `yaml:"default_region"`
	Connections   []Connection `yaml:"connections"`
}

// Connection is a configured source.
type Connection struct {
	Name            string         `yaml:"name"`
	Kind            string         `yaml:"kind"`
	EnableSelfServe bool           `yaml:"enable_self_serve"`
	Schedule        string         `yaml:"schedule"`
	Settings        map[string]any `yaml:"settings"`
	Secrets         map[string]any `yaml:"secrets"`
}

// Parse reads an apply file strictly: unknown keys are errors naming the key
// and its line. name is used in messages.
func Parse(name string, data []byte) (*File, error) {
	f := &File{name: name}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("%s: %w", name, cleanYAMLError(err))
	}
	if root.Kind == 0 || (root.Kind == yaml.DocumentNode && len(root.Content) == 0) {
		return nil, fmt.Errorf("%s: the file is empty: it declares no tenants", name)
	}
	f.root = &root
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(f); err != nil {
		var typeErr *yaml.TypeError
		if errors.As(err, &typeErr) {
			return nil, f.typeErrors(typeErr)
		}
		return nil, fmt.Errorf("%s: %w", name, cleanYAMLError(err))
	}
	return f, nil
}

// typeErrorRE reads yaml.v3's "line 3: cannot unmarshal !!str `nine` into
// int" (long values are cut to their first 7 characters and "...").
var typeErrorRE = regexp.MustCompile("^line ([0-9]+): cannot unmarshal (!![a-z]+)(?: `(.*)`)? into (.+)$")

// typeErrors rewrites each of yaml.v3's type errors as file:line, the key
// path and what is wrong: `apply.yaml:3: tenants[0].send_hour: "nine" is
// not a whole number`. Unknown keys keep cleanYAMLError's wording.
func (f *File) typeErrors(te *yaml.TypeError) error {
	var errs []error
	for _, msg := range te.Errors {
		m := typeErrorRE.FindStringSubmatch(msg)
		if m == nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.name, cleanYAMLError(errors.New(msg))))
			continue
		}
		line, _ := strconv.Atoi(m[1])
		path, node := findNode(f.root, line, m[2], m[3])
		what := fmt.Sprintf("%q", strings.TrimSuffix(m[3], "..."))
		switch {
		case node != nil && node.Kind == yaml.ScalarNode:
			what = fmt.Sprintf("%q", node.Value)
		case m[2] == "!!map":
			what = "a mapping"
		case m[2] == "!!seq":
			what = "a list"
		}
		where := pathString(path)
		if where == "" {
			where = "the file's top level"
		}
		errs = append(errs, fmt.Errorf("%s:%d: %s: %s is not %s", f.name, line, where, what, goTypeName(m[4])))
	}
	return errors.Join(errs...)
}

// goTypeName says in YAML's words what a Go type of the file expects.
func goTypeName(t string) string {
	switch {
	case strings.HasPrefix(t, "[]"):
		return "a list"
	case strings.HasPrefix(t, "map[") || strings.HasPrefix(t, "apply."):
		return "a mapping"
	case strings.HasPrefix(t, "int") || strings.HasPrefix(t, "uint"):
		return "a whole number"
	case strings.HasPrefix(t, "float"):
		return "a number"
	case t == "bool":
		return "true or false"
	case t == "string":
		return "a string"
	}
	return "a " + t
}

// findNode finds, in document order, the value node on line whose tag is
// tag (and whose value is value, or starts with it when yaml.v3 cut it
// short), and returns its key path.
func findNode(root *yaml.Node, line int, tag, value string) ([]any, *yaml.Node) {
	prefix, cut := strings.CutSuffix(value, "...")
	matches := func(n *yaml.Node) bool {
		if n.Line != line || n.ShortTag() != tag {
			return false
		}
		if n.Kind != yaml.ScalarNode {
			return true
		}
		return n.Value == value || (cut && strings.HasPrefix(n.Value, prefix))
	}
	var walk func(n *yaml.Node, path []any) ([]any, *yaml.Node)
	walk = func(n *yaml.Node, path []any) ([]any, *yaml.Node) {
		if matches(n) {
			return path, n
		}
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				if p, found := walk(c, path); found != nil {
					return p, found
				}
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				if p, found := walk(c, at(path, i)); found != nil {
					return p, found
				}
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				if p, found := walk(n.Content[i+1], at(path, n.Content[i].Value)); found != nil {
					return p, found
				}
			}
		}
		return nil, nil
	}
	return walk(root, nil)
}

var yamlTypeName = regexp.MustCompile(`field (\S+) not found in type (\S+)`)

// cleanYAMLError rewrites yaml.v3's "field x not found in type apply.Tenant"
// as "unknown key "x" in a tenant".
func cleanYAMLError(err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	msg = strings.ReplaceAll(msg, "unmarshal errors:\n  ", "")
	msg = yamlTypeName.ReplaceAllStringFunc(msg, func(m string) string {
		parts := yamlTypeName.FindStringSubmatch(m)
		what := strings.ToLower(strings.TrimPrefix(parts[2], "apply."))
		if what == "file" {
			what = "the file's top level"
		} else {
			what = "a " + what
		}
		return fmt.Sprintf("unknown key %q in %s", parts[1], what)
	})
	return errors.New(msg)
}

// Options are what Apply needs beyond the file.
type Options struct {
	// Registry knows the connector kinds and checks each connection's
	// settings and secrets against its Config.
	Registry connectors.Registry
	// Secrets seals connection secrets; nil is an error only if a connection
	// has secrets.
	Secrets *secretbox.Box
	// Env looks up ${NAME} references (default os.LookupEnv).
	Env func(string) (string, bool)
	// Actor names who applied, for the audit log.
	Actor string
	// DryRun computes the changes in a transaction that is rolled back.
	DryRun bool
	// AllowedPSAHosts are the hosts beyond the vendors' clouds that PSA
	// connections may call (config's allowed_psa_hosts; see
	// connectors.CheckHost).
	AllowedPSAHosts []string
}

// errDryRun rolls back a dry run's transaction.
var errDryRun = errors.New("dry run")

// Change is one thing Apply did (or would do).
type Change struct {
	Object string `json:"object"`
	Name   string `json:"name"`
	Action string `json:"action"` // created | updated | unchanged
}

// String formats the change for a terminal.
func (c Change) String() string { return fmt.Sprintf("%-10s %-40s %s", c.Object, c.Name, c.Action) }

// Validate checks the whole file and returns every problem found, each
// naming where it is (file:line and the path of the key).
func (f *File) Validate(opts Options) error {
	v := &validator{f: f, opts: opts}
	v.validate()
	return errors.Join(v.problems...)
}

// Apply validates the file and makes the store match it in one transaction.
func (f *File) Apply(ctx context.Context, s *store.Store, opts Options) ([]Change, error) {
	if err := f.Validate(opts); err != nil {
		return nil, err
	}
	var changes []Change
	err := s.InTx(ctx, func(tx *store.Store) error {
		changes = changes[:0]
		for _, t := range f.Tenants {
			cs, err := applyTenant(ctx, tx, t, opts)
			changes = append(changes, cs...)
			if err != nil {
				return err
			}
		}
		if opts.DryRun {
			return errDryRun
		}
		return nil
	})
	if err != nil && !errors.Is(err, errDryRun) {
		return nil, fmt.Errorf("%s: nothing was applied: %w", f.name, err)
	}
	return changes, nil
}

func action(created, changed bool) string {
	switch {
	case created:
		return "created"
	case changed:
		return "updated"
	default:
		return "unchanged"
	}
}

func applyTenant(ctx context.Context, tx *store.Store, t Tenant, opts Options) ([]Change, error) {
	var changes []Change
	_, lookupErr := tx.TenantByName(ctx, t.Name)
	tenant, changed, err := tx.UpsertTenant(ctx, store.Tenant{
		Name:                t.Name,
		Subscription:        rules.Subscription(or(t.Subscription, string(rules.SubscriptionNone))),
		SelfServe:           t.SelfServe == nil || *t.SelfServe,
		TimeZone:            or(t.TimeZone, "UTC"),
		SendHour:            intOr(t.SendHour, rules.DefaultSendHour),
		ReminderDays:        intOr(t.ReminderDays, rules.DefaultReminderDays),
		PrivilegedSelfServe: rules.PrivilegedSelfServe(or(t.PrivilegedSelfServe, string(rules.PrivilegedDeny))),
		Verification:        rules.Verification(or(t.Verification, string(rules.VerifySMS))),
	})
	if err != nil {
		return nil, err
	}
	created := errors.Is(lookupErr, store.ErrNotFound)
	changes = append(changes, Change{"tenant", t.Name, action(created, changed)})
	if err := audit(ctx, tx, tenant.ID, opts, created, changed, "tenant", t.Name); err != nil {
		return changes, err
	}
	for _, l := range t.Logins {
		_, lookupErr := tx.LoginByEmail(ctx, tenant.ID, l.Email)
		_, changed, err := tx.UpsertLogin(ctx, tenant.ID, l.Email, store.Role(l.Role))
		if err != nil {
			return changes, err
		}
		created := errors.Is(lookupErr, store.ErrNotFound)
		changes = append(changes, Change{"login", strings.ToLower(l.Email), action(created, changed)})
		if err := audit(ctx, tx, tenant.ID, opts, created, changed, "login", l.Email); err != nil {
			return changes, err
		}
	}
	for _, c := range t.Connections {
		ch, err := applyConnection(ctx, tx, tenant.ID, nil, c, opts)
		changes = append(changes, ch)
		if err != nil {
			return changes, err
		}
	}
	for _, c := range t.Customers {
		_, lookupErr := tx.CustomerByName(ctx, tenant.ID, c.Name)
		cust, changed, err := tx.UpsertCustomer(ctx, store.Customer{TenantID: tenant.ID, Name: c.Name, TimeZone: c.TimeZone, DefaultRegion: strings.ToUpper(c.DefaultRegion)})
		if err != nil {
			return changes, err
		}
		created := errors.Is(lookupErr, store.ErrNotFound)
		changes = append(changes, Change{"customer", c.Name, action(created, changed)})
		if err := audit(ctx, tx, tenant.ID, opts, created, changed, "customer", c.Name); err != nil {
			return changes, err
		}
		for _, conn := range c.Connections {
			ch, err := applyConnection(ctx, tx, tenant.ID, &cust.ID, conn, opts)
			changes = append(changes, ch)
			if err != nil {
				return changes, err
			}
		}
	}
	return changes, nil
}

func applyConnection(ctx context.Context, tx *store.Store, tenantID int64, customerID *int64, c Connection, opts Options) (Change, error) {
	settings, err := json.Marshal(orEmpty(c.Settings))
	if err != nil {
		return Change{}, fmt.Errorf("connection %q settings: %w", c.Name, err)
	}
	secrets, err := resolveSecrets(c.Secrets, env(opts))
	if err != nil {
		return Change{}, fmt.Errorf("connection %q: %w", c.Name, err)
	}
	schedule, _ := parseSchedule(c.Schedule)
	conn := store.Connection{
		TenantID: tenantID, CustomerID: customerID, Name: c.Name, Kind: connectors.Kind(c.Kind),
		Settings: settings, EnableSelfServe: c.EnableSelfServe, ScheduleSeconds: int(schedule / time.Second),
	}
	existing, lookupErr := tx.ConnectionByName(ctx, tenantID, c.Name)
	created := errors.Is(lookupErr, store.ErrNotFound)
	same := false
	switch {
	case len(secrets) == 0 && (created || len(existing.SealedSecrets) == 0):
	case len(secrets) == 0:
		conn.SealedSecrets = []byte{} // the file has no secrets: clear the stored ones
	default:
		plain, _ := json.Marshal(secrets)
		if !created && len(existing.SealedSecrets) > 0 {
			old, err := connection.Opener{Registry: opts.Registry, Box: opts.Secrets}.DecryptSecrets(existing)
			if err != nil {
				return Change{}, err
			}
			same = connectors.SettingsEqual(old, plain)
		}
		if !same {
			if opts.Secrets == nil {
				return Change{}, fmt.Errorf("connection %q has secrets: set SELFSERVE_ENCRYPTION_KEY to store them encrypted", c.Name)
			}
			conn.SealedSecrets, err = connection.Opener{Registry: opts.Registry, Box: opts.Secrets}.SealSecrets(plain)
			if err != nil {
				return Change{}, err
			}
		}
	}
	_, changed, err := tx.UpsertConnection(ctx, conn, same)
	if err != nil {
		return Change{}, err
	}
	ch := Change{"connection", c.Name, action(created, changed)}
	return ch, audit(ctx, tx, tenantID, opts, created, changed, "connection", c.Name)
}

func audit(ctx context.Context, tx *store.Store, tenantID int64, opts Options, created, changed bool, object, name string) error {
	if !created && !changed {
		return nil
	}
	act := object + ".updated"
	if created {
		act = object + ".created"
	}
	return tx.Audit(ctx, store.AuditRecord{
		TenantID:   tenantID,
		Actor:      or(opts.Actor, "apply"),
		Action:     act,
		ObjectType: object,
		ObjectID:   name,
		After:      map[string]string{"name": name, "via": "apply"},
	})
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// resolveSecrets replaces ${NAME} references with environment values.
func resolveSecrets(secrets map[string]any, env func(string) (string, bool)) (map[string]any, error) {
	out := make(map[string]any, len(secrets))
	var missing []string
	for k, v := range secrets {
		s, ok := v.(string)
		if !ok {
			out[k] = v
			continue
		}
		out[k] = envRef.ReplaceAllStringFunc(s, func(ref string) string {
			name := envRef.FindStringSubmatch(ref)[1]
			val, ok := env(name)
			if !ok {
				missing = append(missing, fmt.Sprintf("secret %q needs environment variable %s, which is not set", k, name))
			}
			return val
		})
	}
	if len(missing) > 0 {
		return nil, errors.New(strings.Join(missing, "; "))
	}
	return out, nil
}

func env(opts Options) func(string) (string, bool) {
	if opts.Env != nil {
		return opts.Env
	}
	return os.LookupEnv
}

// parseSchedule reads a connection's schedule: a Go duration ("3h", "90m"),
// "off" (or "0") for none, "" for the default.
func parseSchedule(s string) (time.Duration, error) {
	switch strings.TrimSpace(s) {
	case "":
		return DefaultSchedule, nil
	case "off", "0", "never":
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("schedule %q: want a duration such as 3h or 90m, or off", s)
	}
	if d < 5*time.Minute {
		return 0, fmt.Errorf("schedule %q: at least 5m between syncs", s)
	}
	return d, nil
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func intOr(p *int, def int) int {
	if p == nil {
		return def
	}
	return *p
}

func orEmpty(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}
