package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
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

const agentUsage = `agent enrol --server URL --code CODE [--directory FILE] [--state DIR] [--ca-file PEM]
       agent configure --directory FILE [--state DIR]
       agent run [--state DIR]
       agent status [--state DIR]
       agent install|uninstall [--state DIR]   (Windows: the agent as a service)`

// agentNow is the running agent's clock (the process tests skew it).
var agentNow = time.Now

// runAgent is `selfserve agent …`: the on-premises agent. It needs no
// database, Redis or server configuration: only its state folder.
func runAgent(ctx context.Context, c *cli, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: %s", errUsage, agentUsage)
	}
	verb := args[0]
	fs := flags(c, "agent "+verb, "[flags]")
	state := fs.String("state", defaultAgentState(), "the agent's state `folder` (keys, identity, directory settings; 0600 files)")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	var server, code, directory, caFile *string
	switch verb {
	case "enrol", "enroll":
		server = fs.String("server", "", "the selfserve server's public `URL` (https://…)")
		code = fs.String("code", "", "the one-time install `code` from the console or API")
		caFile = fs.String("ca-file", "", "PEM `file` of a CA to trust for the server's certificate, besides the system's")
		directory = fs.String("directory", "", "directory configuration `file` (YAML or JSON: kind ad or file, settings, secrets)")
	case "configure":
		directory = fs.String("directory", "", "directory configuration `file` (YAML or JSON: kind ad or file, settings, secrets)")
	case "run", "status", "install", "uninstall":
	default:
		return fmt.Errorf("%w: unknown agent command %q\n%s", errUsage, verb, agentUsage)
	}
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected %q", errUsage, fs.Arg(0))
	}
	var handler slog.Handler = slog.NewTextHandler(c.stderr, nil)
	if *logFormat == "json" {
		handler = slog.NewJSONHandler(c.stderr, nil)
	}
	log := slog.New(handler)
	reg := newRegistry()
	switch verb {
	case "enrol", "enroll":
		if *server == "" || *code == "" {
			return fmt.Errorf("%w: --server and --code are required", errUsage)
		}
		var dc *agent.DirectoryConfig
		if *directory != "" {
			d, err := agent.ReadDirectoryConfig(*directory, reg)
			if err != nil {
				return err
			}
			dc = &d
		}
		st, err := agent.Enrol(ctx, *state, *server, *code, *caFile, dc)
		if err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, "enrolled: agent %d of connection %q (tenant %s), reading %s; state in %s\n", st.AgentID, st.Connection, st.Tenant, st.Directory, st.Dir())
		if dc == nil {
			fmt.Fprintf(c.stdout, "next: selfserve agent configure --state %s --directory FILE, then selfserve agent run --state %s\n", st.Dir(), st.Dir())
		}
		return nil
	case "configure":
		if *directory == "" {
			return fmt.Errorf("%w: --directory is required", errUsage)
		}
		st, err := agent.LoadState(*state)
		if err != nil {
			return err
		}
		dc, err := agent.ReadDirectoryConfig(*directory, reg)
		if err != nil {
			return err
		}
		if err := agent.SaveDirectoryConfig(st.Dir(), dc); err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, "directory configured (%s) in %s\n", dc.Kind, st.Dir())
		return nil
	case "status":
		st, err := agent.LoadState(*state)
		if err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, "agent %d of connection %q (tenant %s), server %s, reading %s, version %s\n", st.AgentID, st.Connection, st.Tenant, st.Server, st.Directory, agent.Version)
		return nil
	case "install":
		return agent.InstallService(*state)
	case "uninstall":
		return agent.UninstallService()
	}
	st, err := agent.LoadState(*state)
	if err != nil {
		return err
	}
	a := &agent.Agent{State: st, Registry: reg, Logger: log, Now: agentNow}
	return agent.RunService(ctx, a)
}
