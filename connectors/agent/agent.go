// Package agent is the connector kind of a directory read by an
// on-premises agent (`selfserve agent`) on the customer's network. The
// server never opens such a directory: the agent reads it locally with the
// ad or file connector and pushes the pages (internal/agentserver). The
// connection's settings say only which directory the agent reads; where it
// is and the credential to read it stay on the agent's machine.
package agent

import (
	"fmt"

	"selfserve/connectors"
)

// Config is an agent connection's settings.
type Config struct {
	// Directory is what the agent reads: "ad" (Active Directory over LDAP,
	// the default) or "file" (local account exports).
	Directory string `json:"directory" help:"What the agent reads: ad (Active Directory, the default) or file (local account exports)."`
}

// Validate checks the settings.
func (c *Config) Validate() error {
	switch c.Directory {
	case "", "ad", "file":
		return nil
	default:
		return fmt.Errorf("%w: directory: %q is not ad or file", connectors.ErrInvalidConfig, c.Directory)
	}
}

// Open validates the settings and returns a source that reads nothing: an
// agent connection's pages come from its agent.
func (c *Config) Open(connectors.Env) (connectors.Source, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return remote{}, nil
}

type remote struct{}

// Close implements connectors.Source.
func (remote) Close() error { return nil }
