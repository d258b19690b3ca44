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
	"sort"
	"syscall"
)

// command is one subcommand.
type command struct {
	summary string
	run     func(ctx context.Context, env *cli, args []string) error
}

func commands() map[string]command {
	return map[string]command{
		"migrate":  {"apply database migrations", runMigrate},
		"apply":    {"make tenants, logins, customers and connections match a YAML file", runApply},
		"login":    {"invite a login to the console (login invite --tenant T --email E [--role R]) or change its role, audited (login set-role --tenant T --email E --role R)", runLogin},
		"token":    {"create an API token for a login; never changes its role (token create --tenant T --email E [--role R])", runToken},
		"import":   {"sync a connection through the API, or in this process with --inline (import CONNECTION [--inline] [--full])", runImport},
		"settings": {"show or change tenant settings through the API (settings self-serve on|off)", runSettings},
		"users":    {"list end users with status, active flag and provenance", runUsers},
		"preview":  {"show the notices that would be sent at an instant, sending nothing", runPreview},
		"scan":     {"run the expiry scan now: record and queue the notices due, queue again those left pending (needs the workers' Redis)", runScan},
		"demo":     {"run the product on the embedded default with the sample data", runDemo},
		"agent":    {"the on-premises agent: agent enrol|configure|run|status|install|uninstall (see agent --help)", runAgent},

		"serve":     {"run every role in one process: worker, scheduler and the ops endpoints on the admin address", runServe},
		"worker":    {"process the queues: syncs, customer imports, the expiry scan and notices", runWorker},
		"scheduler": {"enqueue scheduled syncs and the hourly expiry scan (any number of replicas)", runScheduler},

		"customers": {"import the customers of a PSA connection in this process (customers import CONNECTION [--tenant T])", runCustomers},
		"enrich":    {"fill end users' email and mobile from a PSA connection's contacts (enrich CONNECTION [--customer C] [--tenant T])", runEnrich},
	}
}

// errUsage marks an error the command line caused: exit code 2.
var errUsage = errors.New("usage")

func main() {
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
	cmd, ok := commands()[name]
	if !ok {
		fmt.Fprintf(stderr, "selfserve: unknown command %q\n\n", name)
		usage(stderr, global)
		return 2
	}
	env.configPath = *configPath
	defer env.close()
	err := cmd.run(ctx, env, global.Args()[1:])
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
	fmt.Fprintln(w, "\ncommands:")
	cmds := commands()
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-9s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintln(w, "\nRun `selfserve COMMAND -h` for a command's flags. Global flags:")
	global.SetOutput(w)
	global.PrintDefaults()
}
