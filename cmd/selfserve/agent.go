package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"selfserve/connectors/shipped"
	"time"

	"selfserve/agent"
)

// defaultAgentState is the agent's state folder unless --state says
// otherwise.
func defaultAgentState() string {
	if runtime.GOOS == "windows" {
		return filepath.Join(os.Getenv("ProgramData"), "selfserve-agent")
	}
	return "/var/lib/selfserve-agent"
}

// agentNow is the running agent's clock (the process tests skew it).
var agentNow = time.Now

// agentCommands are the commands of `selfserve agent …`: the on-premises
// agent. They need no database, Redis or server configuration: only the
// agent's state folder.
func agentCommands() []command {
	return []command{
		{name: "enrol", aliases: []string{"enroll"}, synopsis: "--server URL --code CODE [--directory FILE] [--state DIR] [--ca-file PEM]",
			summary: "enrol this host with the server's one-time install code", run: runAgentEnrol},
		{name: "configure", synopsis: "--directory FILE [--state DIR]", summary: "set the directory the agent reads", run: runAgentConfigure},
		{name: "run", synopsis: "[--state DIR] [--log-format text|json]", summary: "run the agent (in the foreground, or as the Windows service)", run: runAgentRun},
		{name: "status", synopsis: "[--state DIR]", summary: "show the enrolment", run: runAgentStatus},
		{name: "install", synopsis: "[--state DIR]", summary: "install the agent as a Windows service", run: runAgentInstall},
		{name: "uninstall", synopsis: "[--state DIR]", summary: "remove the Windows service", run: runAgentUninstall},
	}
}

// agentFlags is the flag set of `agent name` with the flags every agent
// command takes: --state and --log-format.
type agentFlags struct {
	*flag.FlagSet
	state, logFormat *string
}

func newAgentFlags(c *cli, name, synopsis string) agentFlags {
	fs := flags(c, "agent "+name, synopsis)
	return agentFlags{
		FlagSet:   fs,
		state:     fs.String("state", defaultAgentState(), "the agent's state `folder` (keys, identity, directory settings; 0600 files)"),
		logFormat: fs.String("log-format", "text", "log format: text or json"),
	}
}

// parse parses args, which hold no positional argument.
func (f agentFlags) parse(args []string) error {
	if err := parse(f.FlagSet, args); err != nil {
		return err
	}
	if f.NArg() > 0 {
		return fmt.Errorf("%w: unexpected %q", errUsage, f.Arg(0))
	}
	return nil
}

func directoryFlag(fs *flag.FlagSet) *string {
	return fs.String("directory", "", "directory configuration `file` (YAML or JSON: kind ad or file, settings, secrets)")
}

func runAgentEnrol(ctx context.Context, c *cli, args []string) error {
	fs := newAgentFlags(c, "enrol", "--server URL --code CODE [--directory FILE] [--state DIR] [--ca-file PEM]")
	server := fs.String("server", "", "the selfserve server's public `URL` (https://…)")
	code := fs.String("code", "", "the one-time install `code` from the console or API")
	caFile := fs.String("ca-file", "", "PEM `file` of a CA to trust for the server's certificate, besides the system's")
	directory := directoryFlag(fs.FlagSet)
	if err := fs.parse(args); err != nil {
		return err
	}
	if *server == "" || *code == "" {
		return fmt.Errorf("%w: --server and --code are required", errUsage)
	}
	var dc *agent.DirectoryConfig
	if *directory != "" {
		d, err := agent.ReadDirectoryConfig(*directory, shipped.Registry())
		if err != nil {
			return err
		}
		dc = &d
	}
	st, err := agent.Enrol(ctx, *fs.state, *server, *code, *caFile, dc)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "enrolled: agent %d of connection %q (tenant %s), reading %s; state in %s\n", st.AgentID, st.Connection, st.Tenant, st.Directory, st.Dir())
	if dc == nil {
		fmt.Fprintf(c.stdout, "next: selfserve agent configure --state %s --directory FILE, then selfserve agent run --state %s\n", st.Dir(), st.Dir())
	}
	return nil
}

func runAgentConfigure(ctx context.Context, c *cli, args []string) error {
	fs := newAgentFlags(c, "configure", "--directory FILE [--state DIR]")
	directory := directoryFlag(fs.FlagSet)
	if err := fs.parse(args); err != nil {
		return err
	}
	if *directory == "" {
		return fmt.Errorf("%w: --directory is required", errUsage)
	}
	st, err := agent.LoadState(*fs.state)
	if err != nil {
		return err
	}
	dc, err := agent.ReadDirectoryConfig(*directory, shipped.Registry())
	if err != nil {
		return err
	}
	if err := agent.SaveDirectoryConfig(st.Dir(), dc); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "directory configured (%s) in %s\n", dc.Kind, st.Dir())
	return nil
}

func runAgentStatus(ctx context.Context, c *cli, args []string) error {
	fs := newAgentFlags(c, "status", "[--state DIR]")
	if err := fs.parse(args); err != nil {
		return err
	}
	st, err := agent.LoadState(*fs.state)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "agent %d of connection %q (tenant %s), server %s, reading %s, version %s\n", st.AgentID, st.Connection, st.Tenant, st.Server, st.Directory, agent.Version)
	return nil
}

func runAgentInstall(ctx context.Context, c *cli, args []string) error {
	fs := newAgentFlags(c, "install", "[--state DIR]")
	if err := fs.parse(args); err != nil {
		return err
	}
	return agent.InstallService(*fs.state)
}

func runAgentUninstall(ctx context.Context, c *cli, args []string) error {
	fs := newAgentFlags(c, "uninstall", "[--state DIR]")
	if err := fs.parse(args); err != nil {
		return err
	}
	return agent.UninstallService()
}

func runAgentRun(ctx context.Context, c *cli, args []string) error {
	fs := newAgentFlags(c, "run", "[--state DIR] [--log-format text|json]")
	if err := fs.parse(args); err != nil {
		return err
	}
	var handler slog.Handler = slog.NewTextHandler(c.stderr, nil)
	if *fs.logFormat == "json" {
		handler = slog.NewJSONHandler(c.stderr, nil)
	}
	st, err := agent.LoadState(*fs.state)
	if err != nil {
		return err
	}
	a := &agent.Agent{State: st, Registry: shipped.Registry(), Logger: slog.New(handler), Now: agentNow}
	return agent.RunService(ctx, a)
}
