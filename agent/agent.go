// Package agent is selfserve's on-premises agent (`selfserve agent`): a
// small process on the customer's network that reads the directory
// locally, pushes what it read to the server, and carries out the password
// resets and unlocks the server hands it. It only ever connects out, over
// HTTPS, to the server's public listener (/agent/v1, internal/agentserver).
//
// Its state is one folder of 0600 files: agent.json (server, identity),
// sign.key (Ed25519, signs every request), box.key (X25519, opens the
// passwords sealed to it), directory.json (the directory's connector
// settings and credential, which never leave the machine) and journal/
// (write-backs started, so none is applied twice).
//
// The loop: a heartbeat every 30 s; a long-poll for the next job; a sync
// job reads the directory with the same connector code as a direct
// connection (connectors/ldap or connectors/file) and pushes its pages,
// numbered, extending its lease as it goes; a write-back job opens its
// sealed password, writes it and reports the result. Network trouble is
// retried with backoff; a revoked key stops the agent.
package agent

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
	"gopkg.in/yaml.v3"

	"selfserve/connectors"
	"selfserve/internal/agentproto"
)

// Version is the agent's version as reported to the server: the module
// version or the VCS revision the binary was built from.
var Version = buildVersion()

func buildVersion() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			return "dev-" + s.Value[:12]
		}
	}
	return "dev"
}

// Agent is an enrolled agent ready to run.
type Agent struct {
	State    *State
	Registry connectors.Registry
	Logger   *slog.Logger
	// Now is the clock (default time.Now); the server's clock corrects it.
	Now func() time.Time

	client *client
}

// DirectoryConfig is the directory the agent reads: a connector kind ("ad"
// or "file") with its settings and secrets as for a direct connection.
type DirectoryConfig struct {
	Kind     connectors.Kind `json:"kind" yaml:"kind"`
	Settings map[string]any  `json:"settings" yaml:"settings"`
	Secrets  map[string]any  `json:"secrets" yaml:"secrets"`
}

// ReadDirectoryConfig reads a directory configuration file (YAML or JSON)
// and checks it with its connector's own validation.
func ReadDirectoryConfig(path string, reg connectors.Registry) (DirectoryConfig, error) {
	var dc DirectoryConfig
	raw, err := os.ReadFile(path)
	if err != nil {
		return dc, err
	}
	dec := yaml.NewDecoder(strings.NewReader(string(raw)))
	dec.KnownFields(true)
	if err := dec.Decode(&dc); err != nil {
		return dc, fmt.Errorf("%s: %w", path, err)
	}
	if dc.Kind != connectors.KindAD && dc.Kind != connectors.KindFile {
		return dc, fmt.Errorf("%s: kind: want ad or file, not %q", path, dc.Kind)
	}
	if _, err := dc.decode(reg); err != nil {
		return dc, fmt.Errorf("%s: %w", path, err)
	}
	return dc, nil
}

func (dc DirectoryConfig) decode(reg connectors.Registry) (connectors.Config, error) {
	settings, err := json.Marshal(dc.Settings)
	if err != nil {
		return nil, err
	}
	secrets, err := json.Marshal(dc.Secrets)
	if err != nil {
		return nil, err
	}
	return reg.Decode(dc.Kind, settings, secrets)
}

// Enrol exchanges an install code for an identity: it makes the agent's
// keys, registers their public halves with the server and writes the state
// folder. directory (optional) is a directory configuration file copied
// into the state folder.
func Enrol(ctx context.Context, dir, server, code, caFile string, directory *DirectoryConfig) (*State, error) {
	base, err := checkServerURL(server)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(dir, stateFile)); err == nil {
		return nil, fmt.Errorf("%s already holds an enrolled agent: use another --state folder or delete it first", dir)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	sign, boxPub, boxKey, err := newKeys()
	if err != nil {
		return nil, err
	}
	st := &State{Server: base.String(), CAFile: caFile, dir: dir, signKey: sign, boxPub: boxPub, boxKey: boxKey}
	hc, err := newHTTPClient(caFile)
	if err != nil {
		return nil, err
	}
	c := &client{base: base, http: hc, state: st, now: time.Now}
	host, _ := os.Hostname()
	var resp agentproto.EnrolResponse
	req := agentproto.EnrolRequest{Code: strings.TrimSpace(code), SignKey: sign.Public().(ed25519.PublicKey), BoxKey: boxPub[:], Hostname: host, Version: Version}
	if _, err := c.do(ctx, "/agent/v1/enrol", req, &resp); err != nil {
		var se *ServerError
		if errors.As(err, &se) && se.Code == "install_code" || errors.Is(err, ErrRevoked) {
			return nil, errors.New("the server refused the install code: it is unknown, was used already or has expired; ask for a new one")
		}
		return nil, fmt.Errorf("enrol: %w", err)
	}
	st.AgentID, st.Tenant, st.Connection, st.Directory = resp.AgentID, resp.Tenant, resp.Connection, resp.Directory
	if err := st.save(); err != nil {
		return nil, err
	}
	if directory != nil {
		if err := SaveDirectoryConfig(dir, *directory); err != nil {
			return nil, err
		}
	}
	return st, nil
}

// SaveDirectoryConfig writes the directory configuration into the state
// folder (0600).
func SaveDirectoryConfig(dir string, dc DirectoryConfig) error {
	js, err := json.MarshalIndent(dc, "", "  ")
	if err != nil {
		return err
	}
	return writePrivate(filepath.Join(dir, directoryFile), append(js, '\n'))
}

func (a *Agent) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

func (a *Agent) logger() *slog.Logger {
	if a.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return a.Logger
}

// openDirectory opens the configured directory.
func (a *Agent) openDirectory() (connectors.Source, error) {
	raw, err := os.ReadFile(filepath.Join(a.State.dir, directoryFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no directory is configured: run `selfserve agent configure --state %s --directory FILE`", a.State.dir)
	}
	if err != nil {
		return nil, err
	}
	var dc DirectoryConfig
	if err := json.Unmarshal(raw, &dc); err != nil {
		return nil, fmt.Errorf("%s: %w", directoryFile, err)
	}
	cfg, err := dc.decode(a.Registry)
	if err != nil {
		return nil, err
	}
	return cfg.Open(connectors.Env{ID: a.State.Connection, Logger: a.logger().With("connector", string(dc.Kind))})
}

// Run runs the agent until ctx ends or the server revokes it.
func (a *Agent) Run(ctx context.Context) error {
	base, err := checkServerURL(a.State.Server)
	if err != nil {
		return err
	}
	hc, err := newHTTPClient(a.State.CAFile)
	if err != nil {
		return err
	}
	a.client = &client{base: base, http: hc, state: a.State, now: a.now}
	log := a.logger().With("agent_id", a.State.AgentID, "connection", a.State.Connection)
	log.Info("agent started", "server", a.State.Server, "version", Version, "directory", a.State.Directory)
	a.finishJournal(ctx)
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return a.heartbeats(ctx) })
	g.Go(func() error { return a.jobs(ctx) })
	err = g.Wait()
	if errors.Is(err, context.Canceled) {
		log.Info("agent stopped")
		return nil
	}
	return err
}

// backoff waits before retry n (1 s doubling, at most 30 s).
func backoff(ctx context.Context, n int) error {
	d := time.Second << min(n, 5)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(min(d, 30*time.Second)):
		return nil
	}
}

func (a *Agent) heartbeats(ctx context.Context) error {
	var policy *connectors.PasswordPolicy
	var policyAt time.Time
	for failures := 0; ; {
		if policy == nil || time.Since(policyAt) > 10*time.Minute {
			policy, policyAt = a.readPolicy(ctx), time.Now()
		}
		host, _ := os.Hostname()
		_, err := a.client.do(ctx, "/agent/v1/heartbeat", agentproto.Heartbeat{Version: Version, Hostname: host, Policy: policy}, nil)
		switch {
		case errors.Is(err, ErrRevoked):
			return err
		case err != nil && ctx.Err() == nil:
			failures++
			a.logger().Warn("heartbeat failed", "err", err, "failures", failures)
		default:
			failures = 0
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(agentproto.HeartbeatEvery):
		}
	}
}

// readPolicy reads the directory's domain-level password policy, or nil.
func (a *Agent) readPolicy(ctx context.Context) *connectors.PasswordPolicy {
	src, err := a.openDirectory()
	if err != nil {
		return nil
	}
	defer src.Close()
	w, ok := src.(connectors.PasswordWriter)
	if !ok {
		return nil
	}
	p, err := w.Policy(ctx, connectors.Account{})
	if err != nil {
		a.logger().Warn("could not read the password policy", "err", err)
		return nil
	}
	return &p
}

func (a *Agent) jobs(ctx context.Context) error {
	for failures := 0; ; {
		var job agentproto.Job
		got, err := a.client.do(ctx, "/agent/v1/jobs/next", struct{}{}, &job)
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, ErrRevoked):
			return err
		case err != nil:
			failures++
			a.logger().Warn("could not ask for jobs; retrying", "err", err, "failures", failures)
			if err := backoff(ctx, failures); err != nil {
				return err
			}
			continue
		}
		failures = 0
		if !got {
			continue
		}
		if err := a.runJob(ctx, job); errors.Is(err, ErrRevoked) || ctx.Err() != nil {
			return errors.Join(err, ctx.Err())
		} else if err != nil {
			a.logger().Warn("job ended badly", "job_id", job.ID, "kind", job.Kind, "err", err)
		}
	}
}
