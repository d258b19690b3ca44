// Package agentserver is the server's side of the on-premises agents: the
// /agent/v1 endpoints of the public listener (enrolment, heartbeat, the job
// long-poll, pushed sync pages and job results) and the service the admin
// API, the sync engine and self-serve call (install codes, agent state,
// sync and write-back jobs).
//
// An agent connects out only. It enrols once with a one-time install code,
// registering the public halves of two keys it made: an Ed25519 key that
// signs every later request (agentproto) and an X25519 key to which the
// passwords of its reset jobs are sealed, so the server only ever holds
// ciphertext, and only until the job is handed over, ends, or is five
// minutes old.
//
// Jobs are rows (store.AgentJob) leased to the agent. A sync job whose lease
// runs out is handed out again, and the agent resumes the run from its saved
// position: pages are numbered, and a page committed before is
// acknowledged without being applied twice. A write-back job is never
// handed out twice: if its lease runs out it fails, since the agent may have
// applied it.
//
// Pages are committed by the sync engine (importer.CommitRemotePage) in the
// same transaction that records the page's number, one transaction per
// page as for a direct connection.
package agentserver

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"selfserve/connectors"
	"selfserve/internal/importer"
	"selfserve/internal/store"
)

// Timing of the agent protocol.
const (
	// InstallCodeLife is how long an install code may be used.
	InstallCodeLife = 24 * time.Hour
	// OnlineWithin: an agent heard from within this is online.
	OnlineWithin = 90 * time.Second
	// SyncLease is how long a sync job is held without a page or an
	// extension before it is handed out again.
	SyncLease = 2 * time.Minute
	// WriteWait is how long a self-serve request waits for its write-back
	// to be picked up and carried out: a write-back job expires, and its
	// lease ends, this long after it was made. The agent starts no write
	// after the lease and gives the directory no more time than it.
	WriteWait = 20 * time.Second
	// WriteReportGrace is how long after a write-back's lease its result is
	// still taken (the agent's report is on its way); the request waits for
	// it, and only then is the job failed for want of an answer.
	WriteReportGrace = 5 * time.Second
	// SealedLife bounds how long a sealed password is kept.
	SealedLife = 5 * time.Minute
	// SyncJobLife is how long a queued sync job waits for its agent.
	SyncJobLife = 6 * time.Hour
)

// Service is the server's side of the agents.
type Service struct {
	Store    *store.Store
	Importer *importer.Importer
	Logger   *slog.Logger
	// OnLockouts, if set, is told of the lockouts each pushed page shows
	// (the worker's lockout notices).
	OnLockouts func(ctx context.Context, tenantID int64, lockouts []store.Lockout)
	// Poll is how often a waiting long-poll or write-back looks for news
	// (default 200 ms).
	Poll time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time

	expiredAt atomic.Int64 // when expireJobs last ran (Unix ms)

	// news is closed (and replaced) when this process makes a job, which
	// wakes its waiting long-polls at once rather than at their next look
	// (a job made by another replica is seen at the next look).
	newsMu sync.Mutex
	news   chan struct{}
}

// jobNews returns the channel the next announce closes.
func (s *Service) jobNews() <-chan struct{} {
	s.newsMu.Lock()
	defer s.newsMu.Unlock()
	if s.news == nil {
		s.news = make(chan struct{})
	}
	return s.news
}

// announce wakes the long-polls waiting for a job.
func (s *Service) announce() {
	s.newsMu.Lock()
	defer s.newsMu.Unlock()
	if s.news != nil {
		close(s.news)
		s.news = nil
	}
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Service) poll() time.Duration {
	if s.Poll > 0 {
		return s.Poll
	}
	return 200 * time.Millisecond
}

func (s *Service) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger
}

// installCodePrefix starts every install code, so a pasted one is
// recognisable.
const installCodePrefix = "ssa_"

func hashCode(code string) []byte {
	sum := sha256.Sum256([]byte(strings.TrimSpace(code)))
	return sum[:]
}

// IssueInstallCode makes a one-time install code for the tenant's agent
// connection, valid for InstallCodeLife. Only its hash is stored.
func (s *Service) IssueInstallCode(ctx context.Context, tenantID, connectionID int64) (code string, expires time.Time, err error) {
	conn, err := s.Store.Connection(ctx, tenantID, connectionID)
	if err != nil {
		return "", time.Time{}, err
	}
	if conn.Kind != connectors.KindAgent {
		return "", time.Time{}, fmt.Errorf("connection %q is a %s connection, not an agent connection: %w", conn.Name, conn.Kind, ErrNotAgent)
	}
	raw := make([]byte, 24)
	_, _ = rand.Read(raw)
	code = installCodePrefix + base64.RawURLEncoding.EncodeToString(raw)
	expires = s.now().Add(InstallCodeLife).UTC().Truncate(time.Second)
	if err := s.Store.CreateAgentInstallCode(ctx, tenantID, connectionID, hashCode(code), expires); err != nil {
		return "", time.Time{}, err
	}
	return code, expires, nil
}

// ErrNotAgent: the connection is not of kind agent.
var ErrNotAgent = errors.New("not an agent connection")

// ErrOffline: the connection's agent is not connected now. It wraps
// connectors.ErrUnavailable, so callers that know no agents still treat it
// as "try again later".
var ErrOffline = fmt.Errorf("%w: your IT provider's connector is offline", connectors.ErrUnavailable)

// Status is an agent connection's state as technicians see it.
type Status struct {
	// State is "not_enrolled", "online" or "offline".
	State string `json:"state"`
	// OfflineSince is when an offline agent was last heard from.
	OfflineSince *time.Time `json:"offline_since,omitempty"`
	AgentID      int64      `json:"agent_id,omitempty"`
	Hostname     string     `json:"hostname,omitempty"`
	Version      string     `json:"version,omitempty"`
	EnrolledAt   *time.Time `json:"enrolled_at,omitempty"`
	LastSeenAt   *time.Time `json:"last_seen_at,omitempty"`
	LastSyncAt   *time.Time `json:"last_sync_at,omitempty"`
}

// StatusOf tells an agent's state at now.
func StatusOf(a store.Agent, now time.Time) Status {
	st := Status{State: "offline", AgentID: a.ID, Hostname: a.Hostname, Version: a.Version, EnrolledAt: &a.EnrolledAt, LastSeenAt: a.LastSeenAt, LastSyncAt: a.LastSyncAt}
	switch {
	case a.LastSeenAt != nil && now.Sub(*a.LastSeenAt) <= OnlineWithin:
		st.State = "online"
	case a.LastSeenAt != nil:
		st.OfflineSince = a.LastSeenAt
	default:
		st.OfflineSince = &a.EnrolledAt
	}
	return st
}

// AgentStatus returns the state of the tenant's agent connection.
func (s *Service) AgentStatus(ctx context.Context, tenantID, connectionID int64) (Status, error) {
	conn, err := s.Store.Connection(ctx, tenantID, connectionID)
	if err != nil {
		return Status{}, err
	}
	if conn.Kind != connectors.KindAgent {
		return Status{}, fmt.Errorf("connection %q is a %s connection: %w", conn.Name, conn.Kind, ErrNotAgent)
	}
	a, err := s.Store.LiveAgent(ctx, tenantID, connectionID)
	if errors.Is(err, store.ErrNotFound) {
		return Status{State: "not_enrolled"}, nil
	}
	if err != nil {
		return Status{}, err
	}
	return StatusOf(a, s.now()), nil
}

// StartRemoteSync implements importer.RemoteSyncer: the run becomes a sync
// job for the connection's agent, which pushes its pages back.
func (s *Service) StartRemoteSync(ctx context.Context, run store.SyncRun, conn store.Connection) error {
	payload, _ := json.Marshal(map[string]int64{"run_id": run.ID})
	job, err := s.Store.CreateAgentJob(ctx, store.AgentJob{TenantID: run.TenantID, ConnectionID: conn.ID, Kind: store.AgentJobSync,
		RunID: &run.ID, Payload: string(payload), ExpiresAt: s.now().Add(SyncJobLife)})
	if err != nil {
		return err
	}
	s.announce()
	s.logger().Info("sync handed to the agent", "tenant_id", run.TenantID, "connection_id", conn.ID, "run_id", run.ID, "job_id", job.ID, "mode", run.Mode)
	return nil
}
