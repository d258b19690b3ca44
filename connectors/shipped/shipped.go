// Package shipped names every connector kind this binary ships: the one
// place that imports each connector to build a registry of all of them.
package shipped

import (
	"selfserve/connectors"
	agentconn "selfserve/connectors/agent"
	"selfserve/connectors/connectwise"
	"selfserve/connectors/file"
	"selfserve/connectors/graph"
	"selfserve/connectors/hudu"
	"selfserve/connectors/itglue"
	"selfserve/connectors/ldap"
)

// Registry returns a new registry of every shipped connector kind, with an
// empty set of per-connection limiters. A process builds one and shares it,
// so that every source opened on a connection shares its limiter.
func Registry() connectors.Registry {
	return connectors.NewRegistry(map[connectors.Kind]func() connectors.Config{
		connectors.KindAD:          func() connectors.Config { return new(ldap.Config) },
		connectors.KindFile:        func() connectors.Config { return new(file.Config) },
		connectors.KindITGlue:      func() connectors.Config { return new(itglue.Config) },
		connectors.KindHudu:        func() connectors.Config { return new(hudu.Config) },
		connectors.KindConnectWise: func() connectors.Config { return new(connectwise.Config) },
		connectors.KindAzure:       func() connectors.Config { return new(graph.Config) },
		connectors.KindAgent:       func() connectors.Config { return new(agentconn.Config) },
	})
}
