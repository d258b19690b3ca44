package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"selfserve/internal/apitoken"
	"selfserve/internal/apply"
	"selfserve/internal/importer"
	"selfserve/internal/planner"
	"selfserve/internal/report"
	"selfserve/internal/store"
)

func flags(c *cli, name, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet("selfserve "+name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	fs.Usage = func() {
		fmt.Fprintf(c.stderr, "usage: selfserve %s %s\n", name, usage)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses args with flags allowed before, between and after the
// positional arguments (`import NAME --tenant T` as well as
// `import --tenant T NAME`; after "--" everything is positional);
// afterwards fs.Args() holds the positionals. It is the CLI's one flag
// parser.
func parse(fs *flag.FlagSet, args []string) error {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return err
			}
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		if fs.NArg() == 0 {
			break
		}
		if at := len(args) - fs.NArg(); at > 0 && args[at-1] == "--" {
			// Everything after "--" is positional.
			positional = append(positional, fs.Args()...)
			break
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
	return fs.Parse(append([]string{"--"}, positional...))
}

func runMigrate(ctx context.Context, c *cli, args []string) error {
	fs := flags(c, "migrate", "")
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := c.config()
	if err != nil {
		return err
	}
	st, err := store.Open(ctx, cfg.DatabaseURL.Reveal())
	if err != nil {
		return err
	}
	defer st.Close()
	applied, err := st.Migrate(ctx)
	if err != nil {
		return err
	}
	if len(applied) == 0 {
		fmt.Fprintln(c.stdout, "database is up to date")
		return nil
	}
	fmt.Fprintf(c.stdout, "applied migrations %v\n", applied)
	return nil
}

func runApply(ctx context.Context, c *cli, args []string) error {
	fs := flags(c, "apply", "-f FILE.yaml [--dry-run]")
	path := fs.String("f", "", "apply `file` (YAML)")
	dryRun := fs.Bool("dry-run", false, "validate and show what would change, change nothing")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *path == "" {
		return fmt.Errorf("%w: -f FILE is required", errUsage)
	}
	data, err := os.ReadFile(*path)
	if err != nil {
		return err
	}
	f, err := apply.Parse(*path, data)
	if err != nil {
		return err
	}
	box, err := c.secrets()
	if err != nil {
		return err
	}
	st, err := c.store(ctx)
	if err != nil {
		return err
	}
	cfg, err := c.config()
	if err != nil {
		return err
	}
	opts := apply.Options{Registry: c.registry(), Secrets: box, Actor: "cli:apply", DryRun: *dryRun, AllowedPSAHosts: cfg.AllowedPSAHosts}
	changes, err := f.Apply(ctx, st, opts)
	if err != nil {
		return err
	}
	n := 0
	for _, ch := range changes {
		fmt.Fprintln(c.stdout, ch)
		if ch.Action != "unchanged" {
			n++
		}
	}
	switch {
	case *dryRun:
		fmt.Fprintf(c.stdout, "dry run: %d change(s) would be made, none was\n", n)
	case n == 0:
		fmt.Fprintln(c.stdout, "nothing to change")
	default:
		fmt.Fprintf(c.stdout, "%d change(s) applied\n", n)
	}
	return nil
}

// runTokenCreate is `token create`: a new API token of a login, printed
// once. It creates a missing login with --role, and never changes the role
// of an existing one.
func runTokenCreate(ctx context.Context, c *cli, args []string) error {
	fs := flags(c, "token create", "--tenant NAME --email EMAIL [--role ROLE] [--expires DURATION]")
	lf := addLoginFlags(fs, "the login's `email` (created with --role if missing)",
		"`role` of a new login (super, primary, manager, engineer or helpdesk); for an existing login it must be its role: a token never changes a role (see login set-role)")
	expires := fs.String("expires", "", "lifetime, e.g. 90d or 720h (default: never expires)")
	if err := parse(fs, args); err != nil {
		return err
	}
	lifetime, err := parseLifetime(*expires)
	var more []string
	if err != nil {
		more = append(more, err.Error())
	}
	if err := lf.check(false, more...); err != nil {
		return err
	}
	tenantName, email, role := lf.tenant, lf.email, lf.role
	st, err := c.store(ctx)
	if err != nil {
		return err
	}
	tenant, err := st.TenantByName(ctx, *tenantName)
	if err != nil {
		return err
	}
	token, hash, prefix := apitoken.Login.New()
	var expiresAt time.Time
	if lifetime > 0 {
		expiresAt = time.Now().Add(lifetime)
	}
	var login store.Login
	err = st.InTx(ctx, func(tx *store.Store) error {
		login, err = tx.LoginByEmail(ctx, tenant.ID, *email)
		switch {
		case errors.Is(err, store.ErrNotFound):
			if *role == "" {
				return fmt.Errorf("%w: tenant %s has no login %s: give --role to create it", errUsage, tenant.Name, *email)
			}
			if login, _, err = tx.UpsertLogin(ctx, tenant.ID, *email, store.Role(*role)); err != nil {
				return err
			}
			if err := tx.Audit(ctx, store.AuditRecord{
				TenantID:   tenant.ID,
				Actor:      "cli:token",
				Action:     "login.created",
				ObjectType: "login",
				ObjectID:   login.Email,
				After:      login,
			}); err != nil {
				return err
			}
		case err != nil:
			return err
		case *role != "" && store.Role(*role) != login.Role:
			return fmt.Errorf("%w: login %s is a %s, not a %s: a token never changes a role; change it with: selfserve login set-role --tenant %s --email %s --role %s",
				errUsage, login.Email, login.Role, *role, tenant.Name, login.Email, *role)
		}
		tok, err := tx.CreateAPIToken(ctx, tenant.ID, login.ID, hash, prefix, expiresAt)
		if err != nil {
			return err
		}
		return tx.Audit(ctx, store.AuditRecord{
			TenantID:   tenant.ID,
			LoginID:    &login.ID,
			Actor:      "cli:token",
			Action:     "token.created",
			ObjectType: "token",
			ObjectID:   fmt.Sprint(tok.ID),
			After:      tok,
		})
	})
	if err != nil {
		return err
	}
	fmt.Fprintln(c.stdout, token)
	fmt.Fprintf(c.stderr, "token for %s (%s) of tenant %s: shown once, store it now\n", login.Email, login.Role, tenant.Name)
	return nil
}

// loginRole is what a role change audits.
type loginRole struct {
	Role store.Role `json:"role"`
}

// runLoginSetRole is `login set-role`: it changes a login's role, audited.
func runLoginSetRole(ctx context.Context, c *cli, args []string) error {
	fs := flags(c, "login set-role", "--tenant NAME --email EMAIL --role ROLE")
	lf := addLoginFlags(fs, "the login's `email`", "the new `role`: super, primary, manager, engineer or helpdesk")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := lf.check(true); err != nil {
		return err
	}
	email, role := lf.email, lf.role
	st, err := c.store(ctx)
	if err != nil {
		return err
	}
	tenant, err := st.TenantByName(ctx, *lf.tenant)
	if err != nil {
		return err
	}
	var before store.Login
	err = st.InTx(ctx, func(tx *store.Store) error {
		before, err = tx.LoginByEmail(ctx, tenant.ID, *email)
		if err != nil {
			return fmt.Errorf("login %s of tenant %s: %w", *email, tenant.Name, err)
		}
		if before.Role == store.Role(*role) {
			return nil
		}
		after, _, err := tx.UpsertLogin(ctx, tenant.ID, before.Email, store.Role(*role))
		if err != nil {
			return err
		}
		return tx.Audit(ctx, store.AuditRecord{
			TenantID:   tenant.ID,
			Actor:      "cli:login",
			Action:     "login.role_changed",
			ObjectType: "login",
			ObjectID:   fmt.Sprint(after.ID),
			Before:     loginRole{before.Role},
			After:      loginRole{after.Role},
		})
	})
	if err != nil {
		return err
	}
	if before.Role == store.Role(*role) {
		fmt.Fprintf(c.stdout, "login %s is already a %s: nothing to change\n", before.Email, before.Role)
		return nil
	}
	fmt.Fprintf(c.stdout, "login %s: %s → %s (its tokens carry the new role)\n", before.Email, before.Role, *role)
	return nil
}

func parseLifetime(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		var n int
		if _, err := fmt.Sscanf(days, "%d", &n); err != nil || n <= 0 {
			return 0, fmt.Errorf("--expires %q: want e.g. 90d or 720h", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("--expires %q: want e.g. 90d or 720h", s)
	}
	return d, nil
}

func runImport(ctx context.Context, c *cli, args []string) error {
	fs := flags(c, "import", "CONNECTION [--inline] [--tenant NAME] [--full] [--confirm-removals]\n\nWithout --inline the run goes through the admin API (SELFSERVE_API_URL, SELFSERVE_API_TOKEN) and its progress is shown until it ends.")
	tenantName := fs.String("tenant", "", "tenant `name` (needed when several tenants have a connection of that name)")
	full := fs.Bool("full", false, "full enumeration even when an incremental cursor exists")
	inline := fs.Bool("inline", false, "run the sync in this process (no Redis, no API); without it the API's workers run it")
	confirm := fs.Bool("confirm-removals", false, "allow removing more than the configured share of end users")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: name one connection", errUsage)
	}
	if !*inline {
		return c.remoteImport(ctx, fs.Arg(0), *tenantName, *full, *confirm)
	}
	conn, err := c.findConnection(ctx, *tenantName, fs.Arg(0))
	if err != nil {
		return err
	}
	im, err := c.importer(ctx)
	if err != nil {
		return err
	}
	if ctx, err = c.inline(ctx); err != nil {
		return err
	}
	// A run stopped by Ctrl-C or by throttling beyond throttle_wait_max is
	// kept, for the next import to resume.
	res, err := im.Sync(ctx, importer.Request{TenantID: conn.TenantID, ConnectionID: conn.ID, Full: *full, Trigger: "cli", ConfirmRemovals: *confirm,
		KeepRunOnCancel: true, OnTakeOver: func(prev store.SyncRun) { printTakeOver(c, conn.Name, prev, im.Store.Now()) }})
	if res.Run.ID != 0 {
		printRun(c, conn.Name, res)
	}
	if err != nil {
		if res.Run.Status == store.RunRunning {
			fmt.Fprintf(c.stdout, "  stopped after %d pages; the next import of %s resumes this run\n", res.Run.Pages, conn.Name)
		}
		return err
	}
	if res.Run.Status == store.RunNeedsConfirmation {
		return errors.New(res.Run.Error)
	}
	return nil
}

// printTakeOver says that the import resumes a run whose process stopped.
func printTakeOver(c *cli, name string, prev store.SyncRun, now time.Time) {
	beat := "never"
	if prev.HeartbeatAt != nil {
		beat = now.Sub(*prev.HeartbeatAt).Round(time.Second).String() + " ago"
	}
	started := prev.CreatedAt
	if prev.StartedAt != nil {
		started = *prev.StartedAt
	}
	fmt.Fprintf(c.stdout, "resuming run %d of %s, whose process stopped (started %s, %d pages and %d records done, last heartbeat %s)\n",
		prev.ID, name, started.UTC().Format(time.RFC3339), prev.Pages, prev.Processed, beat)
}

func printRun(c *cli, name string, res importer.Result) {
	r := res.Run
	fmt.Fprintf(c.stdout, "run %d of %s: %s (%s, %d pages, %d ms)\n", r.ID, name, r.Status, r.Mode, r.Pages, r.DurationMS)
	fmt.Fprintf(c.stdout, "  processed %d: created %d, updated %d, unchanged %d, removed %d, invalid %d, lockouts %d\n",
		r.Processed, r.Created, r.Updated, r.Unchanged, r.Removed, r.Invalid, len(res.Lockouts))
	for _, p := range r.Problems() {
		fmt.Fprintf(c.stdout, "  problem: %s: %s\n", p.Ref, p.Reason)
	}
	if r.Error != "" {
		fmt.Fprintf(c.stdout, "  %s\n", r.Error)
	}
}

func (c *cli) findConnection(ctx context.Context, tenantName, name string) (store.Connection, error) {
	tenants, err := c.tenants(ctx, tenantName)
	if err != nil {
		return store.Connection{}, err
	}
	var found []store.Connection
	for _, t := range tenants {
		conn, err := c.st.ConnectionByName(ctx, t.ID, name)
		if err == nil {
			found = append(found, conn)
		} else if !errors.Is(err, store.ErrNotFound) {
			return store.Connection{}, err
		}
	}
	switch len(found) {
	case 0:
		return store.Connection{}, fmt.Errorf("connection %q: %w", name, store.ErrNotFound)
	case 1:
		return found[0], nil
	default:
		return store.Connection{}, fmt.Errorf("%w: %d tenants have a connection %q: pass --tenant", errUsage, len(found), name)
	}
}

func runUsers(ctx context.Context, c *cli, args []string) error {
	fs := flags(c, "users", "[--tenant NAME] [--customer NAME] [--json]")
	tenantName := fs.String("tenant", "", "only this tenant")
	customerName := fs.String("customer", "", "only this customer")
	asJSON := fs.Bool("json", false, "one JSON object per end user per line")
	if err := parse(fs, args); err != nil {
		return err
	}
	rows, err := c.endUserRows(ctx, *tenantName, *customerName)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(c.stdout)
		for _, r := range rows {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return nil
	}
	printUserTable(c, rows)
	return nil
}

func (c *cli) endUserRows(ctx context.Context, tenantName, customerName string) ([]report.EndUser, error) {
	tenants, err := c.tenants(ctx, tenantName)
	if err != nil {
		return nil, err
	}
	var rows []report.EndUser
	for _, t := range tenants {
		names := report.Names{Tenant: t, Customers: map[int64]store.Customer{}, Connections: map[int64]store.Connection{}}
		customers, err := c.st.Customers(ctx, t.ID)
		if err != nil {
			return nil, err
		}
		filter := store.EndUserFilter{IncludeRemoved: true}
		for _, cu := range customers {
			names.Customers[cu.ID] = cu
			if customerName != "" && cu.Name == customerName {
				filter.CustomerID = cu.ID
			}
		}
		if customerName != "" && filter.CustomerID == 0 {
			if tenantName != "" {
				return nil, fmt.Errorf("customer %q of tenant %q: %w", customerName, tenantName, store.ErrNotFound)
			}
			continue
		}
		conns, err := c.st.Connections(ctx, t.ID)
		if err != nil {
			return nil, err
		}
		for _, co := range conns {
			names.Connections[co.ID] = co
		}
		users, err := c.st.EndUsers(ctx, t.ID, filter)
		if err != nil {
			return nil, err
		}
		for _, u := range users {
			rows = append(rows, report.NewEndUser(u, names))
		}
	}
	return rows, nil
}

func printUserTable(c *cli, rows []report.EndUser) {
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CUSTOMER\tUSERNAME\tSTATUS\tACTIVE\tSWITCH\tEMAIL\tMOBILE\tEXPIRES\tNOTE")
	for _, r := range rows {
		expires := "never"
		switch {
		case r.PasswordExpiresAt != nil:
			expires = r.PasswordExpiresAt.Format("2006-01-02")
		case !r.PasswordNeverExpires:
			expires = "-"
		}
		note := string(r.InactiveReason)
		if r.LockedOut {
			note = strings.TrimPrefix(note+"; locked out", "; ")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Customer, r.Username, r.StatusLabel, yesNo(r.Active), onOff(r.SelfServe, r.SwitchLocked),
			dash(r.Email), dash(r.Mobile), expires, note)
	}
	tw.Flush()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func onOff(on, locked bool) string {
	s := "off"
	if on {
		s = "on"
	}
	if locked {
		s += " (locked)"
	}
	return s
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func runPreview(ctx context.Context, c *cli, args []string) error {
	fs := flags(c, "preview", "[--tenant NAME] [--at RFC3339] [--json]")
	tenantName := fs.String("tenant", "", "only this tenant")
	atFlag := fs.String("at", "", "the instant, RFC 3339 (default: now)")
	asJSON := fs.Bool("json", false, "one JSON object per due notice per line")
	if err := parse(fs, args); err != nil {
		return err
	}
	at := time.Now()
	if *atFlag != "" {
		t, err := time.Parse(time.RFC3339, *atFlag)
		if err != nil {
			return fmt.Errorf("%w: --at %q: want RFC 3339, e.g. 2026-11-24T09:00:00Z", errUsage, *atFlag)
		}
		at = t
	}
	due, err := c.preview(ctx, *tenantName, at)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(c.stdout)
		for _, d := range due {
			if err := enc.Encode(d); err != nil {
				return err
			}
		}
		return nil
	}
	printDue(c, due, at)
	return nil
}

func (c *cli) preview(ctx context.Context, tenantName string, at time.Time) ([]planner.Due, error) {
	tenants, err := c.tenants(ctx, tenantName)
	if err != nil {
		return nil, err
	}
	pl := planner.Planner{Store: c.st}
	var due []planner.Due
	for _, t := range tenants {
		d, err := pl.Preview(ctx, planner.Scope{TenantID: t.ID}, at)
		if err != nil {
			return nil, err
		}
		due = append(due, d...)
	}
	return due, nil
}

func printDue(c *cli, due []planner.Due, at time.Time) {
	if len(due) == 0 {
		fmt.Fprintf(c.stdout, "no notices due at %s\n", at.Format(time.RFC3339))
		return
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CUSTOMER\tUSERNAME\tKIND\tOCCASION\tDAYS LEFT\tCHANNELS")
	for _, d := range due {
		ch := make([]string, len(d.Channels))
		for i, x := range d.Channels {
			ch[i] = string(x)
		}
		days := fmt.Sprint(d.DaysLeft)
		if d.Kind == "lockout" {
			days = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", d.Customer, d.Username, d.Kind, d.Occasion, days, strings.Join(ch, "+"))
	}
	tw.Flush()
}
