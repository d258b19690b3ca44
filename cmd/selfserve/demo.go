package main

import (
	"cmp"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"selfserve/config"
	"selfserve/internal/apply"
	"selfserve/internal/importer"
	"selfserve/internal/planner"
	"selfserve/internal/store"
)

// sampleDay is the day the sample files' dates were written for: the demo
// moves every date by the days between it and today, so the sample always
// shows passwords expiring in the coming days.
var sampleDay = time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)

// dateColumns are the sample columns holding instants.
var dateColumns = []string{"password_last_set", "password_expires_at", "locked_out_at"}

func runDemo(ctx context.Context, c *cli, args []string) error {
	fs := flags(c, "demo", "[--once] [--dir DIR] [--examples DIR]")
	once := fs.Bool("once", false, "import, print and exit instead of serving")
	dir := fs.String("dir", "selfserve-demo", "`directory` for the demo's database, key, data and outbox")
	examples := fs.String("examples", "examples", "`directory` of the sample data (demo.yaml and the files it names)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(*dir, "data"), 0o700); err != nil {
		return err
	}
	if err := c.demoConfig(*dir); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "selfserve demo: SQLite database %s, encryption key %s\n\n",
		strings.TrimPrefix(c.cfg.DatabaseURL.Reveal(), "sqlite:"), filepath.Join(*dir, "encryption.key"))

	if err := c.demoApply(ctx, *examples, filepath.Join(*dir, "data")); err != nil {
		return err
	}
	if err := c.demoImport(ctx); err != nil {
		return err
	}
	if err := c.demoActivity(ctx); err != nil {
		return err
	}
	if err := c.demoReport(ctx); err != nil {
		return err
	}
	sender, err := c.startDemoSender(ctx) // the expiry scan and the senders, on the embedded Redis
	if err != nil {
		return err
	}
	defer sender.close()
	if err := sender.send(ctx); err != nil {
		return err
	}
	if *once {
		return nil
	}
	stopAdmin, err := c.demoAdmin(ctx, *dir, sender)
	if err != nil {
		return err
	}
	defer stopAdmin()
	stopPublic, err := c.demoPublic(ctx, sender)
	if err != nil {
		return err
	}
	defer stopPublic()
	fmt.Fprintln(c.stdout, "\nthe demo keeps its data; press Ctrl-C to stop (re-importing every 5 minutes)")
	tick := time.NewTicker(5 * time.Minute)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			fmt.Fprintln(c.stdout, "\nstopped")
			return nil
		case <-tick.C:
			if err := c.demoImport(ctx); err != nil {
				return err
			}
			if err := sender.send(ctx); err != nil {
				return err
			}
		}
	}
}

// demoConfig points the configuration at the demo directory: its own SQLite
// database and a generated encryption key kept in a file, unless the
// environment names others.
func (c *cli) demoConfig(dir string) error {
	cfg, err := config.Load(c.configPath, os.LookupEnv)
	if err != nil {
		return err
	}
	if _, set := os.LookupEnv("SELFSERVE_DATABASE_URL"); !set {
		cfg.DatabaseURL = config.CredentialURL("sqlite:" + filepath.Join(dir, "selfserve.db"))
	}
	if _, set := os.LookupEnv("SELFSERVE_LOG_LEVEL"); !set {
		cfg.LogLevel = "warn" // the demo prints what it does; logs only for trouble
	}
	if _, set := os.LookupEnv("SELFSERVE_LOG_FORMAT"); !set {
		cfg.LogFormat = "text"
	}
	if cfg.OutboxDir == "" {
		cfg.OutboxDir = filepath.Join(dir, "outbox")
	}
	if cfg.PublicURL == "" {
		cfg.PublicURL = "http://" + cfg.PublicAddr
	}
	if !cfg.EncryptionKey.IsSet() {
		keyFile := filepath.Join(dir, "encryption.key")
		text, err := os.ReadFile(keyFile)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			key := config.GenerateEncryptionKey()
			if err := os.WriteFile(keyFile, []byte(key.Encoded()+"\n"), 0o600); err != nil {
				return err
			}
			cfg.EncryptionKey = key
		case err != nil:
			return err
		default:
			if cfg.EncryptionKey, err = config.ParseEncryptionKey(strings.TrimSpace(string(text))); err != nil {
				return fmt.Errorf("%s: %w", keyFile, err)
			}
		}
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	c.cfg = cfg
	return nil
}

// demoApply applies examples/demo.yaml with its file connections pointed at
// copies of the sample files whose dates are moved to today.
func (c *cli) demoApply(ctx context.Context, examples, dataDir string) error {
	name := filepath.Join(examples, "demo.yaml")
	raw, err := os.ReadFile(name)
	if err != nil {
		return fmt.Errorf("%w (run the demo from the repository's root, or pass --examples)", err)
	}
	f, err := apply.Parse(name, raw)
	if err != nil {
		return err
	}
	now := time.Now()
	for ti := range f.Tenants {
		for ci := range f.Tenants[ti].Customers {
			zone := cmp.Or(f.Tenants[ti].Customers[ci].TimeZone, f.Tenants[ti].TimeZone, "UTC")
			loc, err := time.LoadLocation(zone)
			if err != nil {
				return fmt.Errorf("%s: customer %s: time zone %q: %w", name, f.Tenants[ti].Customers[ci].Name, zone, err)
			}
			move := sampleMover(now, loc)
			for ki, conn := range f.Tenants[ti].Customers[ci].Connections {
				path, _ := conn.Settings["path"].(string)
				if conn.Kind != "file" || path == "" {
					continue
				}
				src := filepath.Join(filepath.Dir(examples), path)
				dst, err := filepath.Abs(filepath.Join(dataDir, filepath.Base(path)))
				if err != nil {
					return err
				}
				if err := shiftSample(src, dst, move); err != nil {
					return err
				}
				f.Tenants[ti].Customers[ci].Connections[ki].Settings["path"] = dst
			}
		}
	}
	st, err := c.store(ctx)
	if err != nil {
		return err
	}
	box, err := c.secrets()
	if err != nil {
		return err
	}
	changes, err := f.Apply(ctx, st, apply.Options{Registry: c.registry(), Secrets: box, Actor: "demo"})
	if err != nil {
		return err
	}
	fmt.Fprintln(c.stdout, "applied examples/demo.yaml:")
	for _, ch := range changes {
		fmt.Fprintln(c.stdout, "  "+ch.String())
	}
	fmt.Fprintln(c.stdout)
	return nil
}

// sampleMover returns how the sample's instants move for a customer in loc
// at the instant now: by the days between the sample day and the customer's
// own today (not UTC's: at 00:59 UTC a New York customer is still on the
// previous day), keeping their wall-clock time there; and an instant that
// must lie in the past (a lockout, a password change) but would lie ahead
// of now is brought back to now, or to the customer's midnight if that is
// later (still today there).
func sampleMover(now time.Time, loc *time.Location) func(col string, t time.Time) time.Time {
	y, m, d := now.In(loc).Date()
	today := time.Date(y, m, d, 0, 0, 0, 0, loc)
	days := int(math.Round(time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Sub(sampleDay).Hours() / 24))
	return func(col string, t time.Time) time.Time {
		moved := t.In(loc).AddDate(0, 0, days)
		if col != "password_expires_at" && moved.After(now) {
			moved = now.Add(-time.Minute)
			if moved.Before(today) {
				moved = today
			}
		}
		return moved.UTC()
	}
}

// shiftSample copies a CSV or JSON sample file, moving its instants with
// shift (see sampleMover).
func shiftSample(src, dst string, shift func(col string, t time.Time) time.Time) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	move := func(col, v string) string {
		t, err := time.Parse(time.RFC3339, strings.TrimSpace(v))
		if err != nil {
			return v // not an instant (empty, or the sample's deliberate mistakes)
		}
		return shift(col, t).Format(time.RFC3339)
	}
	var out []byte
	if strings.HasSuffix(src, ".json") {
		var rows []map[string]any
		if err := json.Unmarshal(data, &rows); err != nil {
			return fmt.Errorf("%s: %w", src, err)
		}
		for _, r := range rows {
			for _, col := range dateColumns {
				if s, ok := r[col].(string); ok {
					r[col] = move(col, s)
				}
			}
		}
		if out, err = json.MarshalIndent(rows, "", "  "); err != nil {
			return err
		}
	} else {
		rd := csv.NewReader(strings.NewReader(string(data)))
		rd.FieldsPerRecord = -1
		records, err := rd.ReadAll()
		if err != nil {
			return fmt.Errorf("%s: %w", src, err)
		}
		if len(records) > 0 {
			for ci, h := range records[0] {
				for _, col := range dateColumns {
					if strings.EqualFold(strings.TrimSpace(h), col) {
						for _, rec := range records[1:] {
							if ci < len(rec) {
								rec[ci] = move(col, rec[ci])
							}
						}
					}
				}
			}
		}
		var b strings.Builder
		w := csv.NewWriter(&b)
		if err := w.WriteAll(records); err != nil {
			return err
		}
		out = []byte(b.String())
	}
	return os.WriteFile(dst, out, 0o600)
}

func (c *cli) demoImport(ctx context.Context) error {
	im, err := c.importer(ctx)
	if err != nil {
		return err
	}
	tenants, err := c.st.Tenants(ctx)
	if err != nil {
		return err
	}
	for _, t := range tenants {
		conns, err := c.st.Connections(ctx, t.ID)
		if err != nil {
			return err
		}
		for _, conn := range conns {
			if !conn.Kind.IsDirectory() {
				continue
			}
			res, err := im.Sync(ctx, importer.Request{TenantID: t.ID, ConnectionID: conn.ID, Trigger: "demo"})
			if res.Run.ID != 0 {
				printRun(c, conn.Name, res)
			}
			if err != nil {
				return err
			}
		}
	}
	fmt.Fprintln(c.stdout)
	return nil
}

// demoActivity plays what people do after an import, once: a technician
// sends a welcome email to the first end user who has an email but no
// mobile, and the first complete end user signs in to the self-serve app.
func (c *cli) demoActivity(ctx context.Context) error {
	tenants, err := c.st.Tenants(ctx)
	if err != nil {
		return err
	}
	now := time.Now()
	for _, t := range tenants {
		users, err := c.st.EndUsers(ctx, t.ID, store.EndUserFilter{})
		if err != nil {
			return err
		}
		welcomed, accessed := false, false
		for _, u := range users {
			welcomed = welcomed || u.WelcomeSentAt != nil
			accessed = accessed || u.FirstAccessAt != nil
		}
		for _, u := range users {
			switch {
			case !welcomed && u.Email != "" && u.Mobile == "" && u.Enabled:
				if err := c.st.MarkWelcomeSent(ctx, t.ID, u.ID, now); err != nil {
					return err
				}
				fmt.Fprintf(c.stdout, "a technician sent %s a welcome email (to confirm a mobile number)\n", u.Username)
				welcomed = true
			case !accessed && u.Email != "" && u.Mobile != "" && u.Enabled && !u.LockedOut:
				if _, _, err := c.st.MarkFirstAccess(ctx, t.ID, u.ID, now); err != nil {
					return err
				}
				fmt.Fprintf(c.stdout, "%s signed in to the self-serve app for the first time\n", u.Username)
				accessed = true
			}
		}
	}
	fmt.Fprintln(c.stdout)
	return nil
}

func (c *cli) demoReport(ctx context.Context) error {
	rows, err := c.endUserRows(ctx, "", "")
	if err != nil {
		return err
	}
	fmt.Fprintln(c.stdout, "end users:")
	printUserTable(c, rows)
	tenants, err := c.st.Tenants(ctx)
	if err != nil {
		return err
	}
	for _, t := range tenants {
		fmt.Fprintf(c.stdout, "\nnotices due today for %s (daily notices go out from %02d:00 in each customer's time zone):\n", t.Name, t.SendHour)
		customers, err := c.st.Customers(ctx, t.ID)
		if err != nil {
			return err
		}
		var due []planner.Due
		now := time.Now()
		pl := planner.Planner{Store: c.st}
		for _, cu := range customers {
			d, err := pl.Preview(ctx, planner.Scope{TenantID: t.ID, CustomerID: cu.ID}, laterOfNowAndSendHour(now, t, cu))
			if err != nil {
				return err
			}
			due = append(due, d...)
		}
		printDue(c, due, now)
	}
	return nil
}

// laterOfNowAndSendHour is today's send hour in the customer's zone, or now
// if that has passed: the instant at which all of today's notices are due.
func laterOfNowAndSendHour(now time.Time, t store.Tenant, cu store.Customer) time.Time {
	loc := cu.Location(t)
	y, m, d := now.In(loc).Date()
	send := time.Date(y, m, d, t.SendHour, 0, 0, 0, loc)
	if now.After(send) {
		return now
	}
	return send
}

// demoPublic serves the self-serve pages on the public address, writing
// codes and notices to the outbox and, since the demo's end users come from
// files, recording their password changes there too.
func (c *cli) demoPublic(ctx context.Context, sender *demoSender) (func(), error) {
	ln, err := listenPublic(c.cfg)
	if err != nil {
		return nil, err
	}
	if c.cfg.PublicURL == "http://"+c.cfg.PublicAddr {
		// The demo's own default: say where it really listens (port 0).
		c.cfg.PublicURL = "http://" + ln.Addr().String()
	}
	svc, closeSvc, err := c.publicService(c.cfg, c.st, sender.rd, sender.n.client, sender.n.agents, c.log(), c.cfg.OutboxDir)
	if err != nil {
		ln.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := servePublic(ctx, ln, publicHandler(svc.Handler(), sender.n.agents), c.log()); err != nil {
			c.log().Error("public listener stopped", "err", err)
		}
	}()
	tenants, err := c.st.Tenants(ctx)
	if err != nil {
		cancel()
		<-done
		closeSvc()
		return nil, err
	}
	fmt.Fprintf(c.stdout, "\nself-serve pages (codes go to the outbox %s; the demo has no directory to write to, so a reset or unlock is recorded there, not made):\n", c.cfg.OutboxDir)
	for _, t := range tenants {
		base := strings.TrimSuffix(c.cfg.PublicURL, "/") + "/" + url.PathEscape(t.Name)
		fmt.Fprintf(c.stdout, "  %s/change   reset a password\n  %s/unlock   unlock an account\n", base, base)
	}
	return func() {
		cancel()
		<-done
		closeSvc()
	}, nil
}
