// Command selfserve is the one binary of selfserve: the service roles, the
// operator's commands and the demo.
//
//	selfserve [--config FILE] COMMAND [flags]
//
// Run `selfserve help` for the commands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
)

// reach says what a command works on; --help groups the commands by it.
type reach int

// The reaches.
const (
	// onDatabase: the command opens the configured database (and, where
	// it syncs, the vendors) in this process.
	onDatabase reach = iota + 1
	// onAPI: the command calls the admin API of a running server
	// (SELFSERVE_API_URL, SELFSERVE_API_TOKEN).
	onAPI
	// asService: a long-running service role (database and Redis).
	asService
	// onItsOwn: neither the configured database nor the API (the agent,
	// the demo's own embedded database, the version).
	onItsOwn
)

// heading is the --help heading of the commands of r.
func (r reach) heading() string {
	switch r {
	case onDatabase:
		return "on the local database (this process opens SELFSERVE_DATABASE_URL):"
	case onAPI:
		return "through the remote admin API (SELFSERVE_API_URL, SELFSERVE_API_TOKEN):"
	case asService:
		return "service roles (database and Redis; run until SIGINT or SIGTERM):"
	default:
		return "on their own:"
	}
}

// command is a command of the CLI: a leaf with run, or a group of nested
// commands (login invite, login set-role) with sub.
type command struct {
	name    string
	aliases []string
	// synopsis is the arguments, for --help: "--tenant T --email E".
	synopsis string
	summary  string
	reach    reach
	run      func(ctx context.Context, c *cli, args []string) error
	sub      []command
}

// commands is the command table.
func commands() []command {
	return []command{
		{name: "migrate", summary: "apply database migrations", reach: onDatabase, run: runMigrate},
		{name: "apply", synopsis: "-f FILE [--dry-run]", summary: "make tenants, logins, customers and connections match a YAML file", reach: onDatabase, run: runApply},
		{name: "login", summary: "console logins", reach: onDatabase, sub: []command{
			{name: "invite", synopsis: "--tenant T --email E [--role R] [--url URL]", summary: "print a single-use link that lets a login set its console password", run: runLoginInvite},
			{name: "set-role", synopsis: "--tenant T --email E --role R", summary: "change a login's role, audited", run: runLoginSetRole},
		}},
		{name: "token", summary: "API tokens", reach: onDatabase, sub: []command{
			{name: "create", synopsis: "--tenant T --email E [--role R] [--expires 90d]", summary: "create an API token for a login, printed once; never changes its role", run: runTokenCreate},
		}},
		{name: "import", synopsis: "CONNECTION [--inline] [--full] [--confirm-removals] [--tenant T]", summary: "sync a connection through the API and show its progress; with --inline, in this process on the local database", reach: onAPI, run: runImport},
		{name: "settings", synopsis: "[self-serve on|off]", summary: "show or change the tenant's settings", reach: onAPI, run: runSettings},
		{name: "users", synopsis: "[--tenant T] [--customer C] [--json]", summary: "list end users with status, active flag and provenance", reach: onDatabase, run: runUsers},
		{name: "preview", synopsis: "[--tenant T] [--at RFC3339] [--json]", summary: "show the notices that would be sent at an instant, sending nothing", reach: onDatabase, run: runPreview},
		{name: "scan", summary: "run the expiry scan now: record and queue the notices due, queue again those left pending (needs the workers' Redis)", reach: onDatabase, run: runScan},
		{name: "customers", summary: "PSA customers", reach: onDatabase, sub: []command{
			{name: "import", synopsis: "CONNECTION [--tenant T]", summary: "import the customers of a PSA connection in this process", run: runCustomersImport},
		}},
		{name: "enrich", synopsis: "CONNECTION [--customer C] [--tenant T]", summary: "fill end users' email and mobile from a PSA connection's contacts, in this process", reach: onDatabase, run: runEnrich},

		{name: "serve", synopsis: "[--sync-concurrency N] [--notify-concurrency N]", summary: "every role in one process: worker, scheduler, admin API with the ops endpoints, public listener", reach: asService, run: runServe},
		{name: "worker", synopsis: "[--sync-concurrency N] [--notify-concurrency N] [--ops-addr ADDR]", summary: "process the queues: syncs, customer imports, the expiry scan and notices", reach: asService, run: runWorker},
		{name: "scheduler", synopsis: "[--ops-addr ADDR]", summary: "enqueue scheduled syncs and the hourly expiry scan (any number of replicas)", reach: asService, run: runScheduler},

		{name: "demo", synopsis: "[--once]", summary: "run the product on its own embedded database with the sample data", reach: onItsOwn, run: runDemo},
		{name: "agent", summary: "the on-premises agent: needs only its state folder", reach: onItsOwn, sub: agentCommands()},
		{name: "version", summary: "print the version of this binary", reach: onItsOwn, run: runVersion},
	}
}

// find returns the command of cmds named name (or one of its aliases).
func find(cmds []command, name string) (command, bool) {
	for _, c := range cmds {
		if c.name == name || slices.Contains(c.aliases, name) {
			return c, true
		}
	}
	return command{}, false
}

// dispatch runs the command args name among cmds, descending into groups;
// path is the command line so far ("selfserve login").
func dispatch(ctx context.Context, env *cli, path string, cmds []command, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: name a command\n%s", errUsage, listing(path, cmds))
	}
	if args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(env.stdout, listing(path, cmds))
		return flag.ErrHelp
	}
	cmd, ok := find(cmds, args[0])
	if !ok {
		return fmt.Errorf("%w: unknown command %q\n%s", errUsage, args[0], listing(path, cmds))
	}
	if cmd.sub != nil {
		return dispatch(ctx, env, path+" "+cmd.name, cmd.sub, args[1:])
	}
	return cmd.run(ctx, env, args[1:])
}

// listing is the usage of a group of nested commands.
func listing(path string, cmds []command) string {
	var b strings.Builder
	fmt.Fprintf(&b, "usage:\n")
	for _, c := range cmds {
		fmt.Fprintf(&b, "  %s %s %s\n      %s\n", path, c.name, c.synopsis, c.summary)
	}
	return b.String()
}

// errUsage marks an error the command line caused: exit code 2.
var errUsage = errors.New("usage")

func main() {
	reportVersion()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runWith(ctx, &cli{stdout: stdout, stderr: stderr}, args)
}

// runWith runs the command line args with env's output and hooks.
func runWith(ctx context.Context, env *cli, args []string) int {
	stdout, stderr := env.stdout, env.stderr
	global := flag.NewFlagSet("selfserve", flag.ContinueOnError)
	global.SetOutput(stderr)
	configPath := global.String("config", os.Getenv("SELFSERVE_CONFIG"), "YAML configuration `file` (env SELFSERVE_CONFIG); environment variables override it")
	global.Usage = func() { usage(stderr, global) }
	if err := global.Parse(args); err != nil {
		return 2
	}
	if global.NArg() == 0 || global.Arg(0) == "help" || global.Arg(0) == "-h" {
		usage(stdout, global)
		return 0
	}
	name := global.Arg(0)
	if _, ok := find(commands(), name); !ok {
		fmt.Fprintf(stderr, "selfserve: unknown command %q\n\n", name)
		usage(stderr, global)
		return 2
	}
	env.configPath = *configPath
	defer env.close()
	err := dispatch(ctx, env, "selfserve", commands(), global.Args())
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "selfserve %s: %v\n", name, err)
		return 2
	default:
		fmt.Fprintf(stderr, "selfserve %s: %v\n", name, err)
		return 1
	}
}

func usage(w io.Writer, global *flag.FlagSet) {
	fmt.Fprintln(w, "usage: selfserve [--config FILE] COMMAND [flags]")
	cmds := commands()
	for _, r := range []reach{onDatabase, onAPI, asService, onItsOwn} {
		fmt.Fprintf(w, "\ncommands %s\n", r.heading())
		for _, c := range cmds {
			if c.reach != r {
				continue
			}
			name := c.name
			if c.sub != nil {
				subs := make([]string, len(c.sub))
				for i, s := range c.sub {
					subs[i] = s.name
				}
				name += " " + strings.Join(subs, "|")
			}
			fmt.Fprintf(w, "  %-18s %s\n", name, c.summary)
		}
	}
	fmt.Fprintln(w, "\n`import` works on the local database with --inline.")
	fmt.Fprintln(w, "Run `selfserve COMMAND -h` for a command's flags. Global flags:")
	global.SetOutput(w)
	global.PrintDefaults()
}
