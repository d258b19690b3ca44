package main

import (
	"cmp"
	"context"
	"fmt"
	"runtime"

	"selfserve/agent"
)

// version is the release this binary was built as, set at build time:
//
//	go build -ldflags "-X main.version=v1.4.0" ./cmd/selfserve
//
// Empty, runtime/debug.ReadBuildInfo says (agent.Version): the module
// version, or the VCS revision the binary was built from.
var version string

// binaryVersion is version, else what the build information says (the
// module version or VCS revision, as the agent reports it).
func binaryVersion() string { return cmp.Or(version, agent.Version) }

// runVersion is `selfserve version`.
func runVersion(ctx context.Context, c *cli, args []string) error {
	fs := flags(c, "version", "")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected %q", errUsage, fs.Arg(0))
	}
	fmt.Fprintf(c.stdout, "selfserve %s (%s, %s/%s)\n", binaryVersion(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}

// reportVersion makes the agent report the binary's version to the server
// when the build set one.
func reportVersion() {
	if version != "" {
		agent.Version = version
	}
}
