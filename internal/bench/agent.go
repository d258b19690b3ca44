package bench

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"time"

	"selfserve/agent"
	"selfserve/connectors"
	agentconn "selfserve/connectors/agent"
	"selfserve/connectors/ldap"
	"selfserve/internal/agentserver"
	"selfserve/internal/importer"
	"selfserve/internal/store"
)

// AgentFull measures a full sync of the size's users through the
// on-premises agent (the agent reads the DC and pushes signed pages over
// HTTP to the server, which commits them through the sync engine) against
// the direct import of the same users, in the same run.
func AgentFull() Scenario {
	return Scenario{
		Name:     "agent-full",
		Baseline: "direct full import into PostgreSQL (ad-full's)",
		Ours:     "full sync through the agent: pages pushed over HTTP, committed into PostgreSQL",
		Size:     10_000, Quick: 300, Unit: "users", Target: 1.3,
		Needs:   []string{"postgres", "samba"},
		Prepare: prepareAD,
		Measure: measureAgentFull,
	}
}

func measureAgentFull(ctx context.Context, env *Env, side Side, size int) (time.Duration, error) {
	if side == SideBaseline {
		return measureADFull(ctx, env, SideOurs, size, false)
	}
	info, err := readADInfo()
	if err != nil {
		return 0, err
	}
	st, cleanup, err := FreshStore(ctx, env)
	if err != nil {
		return 0, err
	}
	defer cleanup()
	tgt, err := seedTenant(ctx, st, "bench-agent", connectors.KindAgent)
	if err != nil {
		return 0, err
	}
	reg := connectors.NewRegistry(map[connectors.Kind]func() connectors.Config{
		connectors.KindAD:    func() connectors.Config { return new(ldap.Config) },
		connectors.KindAgent: func() connectors.Config { return new(agentconn.Config) },
	})
	im := &importer.Importer{MaxRemovalShare: 0.3, Store: st, Registry: reg}
	svc := &agentserver.Service{Store: st, Importer: im}
	im.Remote = svc
	srv := httptest.NewServer(svc.Handler())
	defer srv.Close()

	code, _, err := svc.IssueInstallCode(ctx, tgt.tenantID, tgt.connectionID)
	if err != nil {
		return 0, err
	}
	dir, err := os.MkdirTemp(env.TempDir, "agent-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	state, err := agent.Enrol(ctx, filepath.Join(dir, "state"), srv.URL, code, "", &agent.DirectoryConfig{
		Kind:     connectors.KindAD,
		Settings: map[string]any{"url": info.LDAPSURL, "base_dn": "OU=" + adOU(size) + "," + info.BaseDN, "ca_file": info.CACert, "page_size": 500},
		Secrets:  map[string]any{"bind_dn": info.BindDN, "bind_password": info.BindPass},
	})
	if err != nil {
		return 0, err
	}
	runCtx, stop := context.WithCancel(ctx)
	agentDone := make(chan error, 1)
	go func() { agentDone <- (&agent.Agent{State: state, Registry: reg}).Run(runCtx) }()
	defer func() { stop(); <-agentDone }()

	start := time.Now()
	res, err := im.Sync(ctx, importer.Request{TenantID: tgt.tenantID, ConnectionID: tgt.connectionID, Full: true, Trigger: "bench"})
	if err != nil {
		return 0, err
	}
	run, err := waitRun(ctx, st, tgt.tenantID, res.Run.ID, agentDone)
	elapsed := time.Since(start)
	if err != nil {
		return 0, err
	}
	if run.Status != store.RunSucceeded || run.Created+run.Invalid < size {
		return 0, fmt.Errorf("run %s (%s): %d created (+%d invalid), want %d", run.Status, run.Error, run.Created, run.Invalid, size)
	}
	return elapsed, nil
}

// waitRun waits for the run the agent carries out to finish (or the
// agent to stop).
func waitRun(ctx context.Context, st *store.Store, tenantID, runID int64, agentDone <-chan error) (store.SyncRun, error) {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.Now().Add(10 * time.Minute)
	for {
		run, err := st.Run(ctx, tenantID, runID)
		if err != nil || run.Status.Finished() {
			return run, err
		}
		if time.Now().After(deadline) {
			return run, errors.New("the agent's run did not finish within 10 minutes")
		}
		select {
		case err := <-agentDone:
			return run, fmt.Errorf("the agent stopped: %v", err)
		case <-ctx.Done():
			return run, ctx.Err()
		case <-tick.C:
		}
	}
}
