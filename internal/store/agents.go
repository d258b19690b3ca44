package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Agent is an on-premises agent enrolled for a connection of kind agent.
type Agent struct {
	ID           int64 `db:"id" json:"id"`
	TenantID     int64 `db:"tenant_id" json:"tenant_id"`
	ConnectionID int64 `db:"connection_id" json:"connection_id"`
	// SignKey is the agent's Ed25519 public key: every request it makes is
	// signed with the private half, which never leaves its machine.
	SignKey []byte `db:"sign_key" json:"-"`
	// BoxKey is the agent's X25519 public key: passwords for its write-back
	// jobs are sealed to it.
	BoxKey   []byte `db:"box_key" json:"-"`
	Hostname string `db:"hostname" json:"hostname"`
	Version  string `db:"version" json:"version"`
	// Policy is the directory's domain-level password policy as the agent
	// last reported it (a JSON connectors.PasswordPolicy).
	Policy     string     `db:"policy" json:"-"`
	EnrolledAt time.Time  `db:"enrolled_at" json:"enrolled_at"`
	LastSeenAt *time.Time `db:"last_seen_at" json:"last_seen_at"`
	LastSyncAt *time.Time `db:"last_sync_at" json:"last_sync_at"`
	RevokedAt  *time.Time `db:"revoked_at" json:"revoked_at,omitempty"`
}

const agentColumns = `id, tenant_id, connection_id, sign_key, box_key, hostname, version, policy, enrolled_at, last_seen_at, last_sync_at, revoked_at`

// Agent job kinds.
const (
	AgentJobSync   = "sync"
	AgentJobReset  = "reset"
	AgentJobUnlock = "unlock"
)

// Agent job states.
const (
	AgentJobQueued = "queued"
	AgentJobLeased = "leased"
	AgentJobDone   = "done"
	AgentJobFailed = "failed"
)

// AgentJob is a unit of work for an agent: a sync whose pages the agent
// pushes back, or a write-back (reset, unlock) it carries out.
type AgentJob struct {
	ID           int64  `db:"id" json:"id"`
	TenantID     int64  `db:"tenant_id" json:"tenant_id"`
	ConnectionID int64  `db:"connection_id" json:"connection_id"`
	AgentID      *int64 `db:"agent_id" json:"agent_id,omitempty"`
	Kind         string `db:"kind" json:"kind"`
	RunID        *int64 `db:"run_id" json:"run_id,omitempty"`
	// Payload is the job's JSON arguments (never a password).
	Payload string `db:"payload" json:"payload"`
	// Sealed is a reset's new password sealed to the agent's box key; the
	// store drops it when the job is handed over or ends.
	Sealed     []byte     `db:"sealed" json:"-"`
	State      string     `db:"state" json:"state"`
	Deliveries int        `db:"deliveries" json:"deliveries"`
	Pages      int        `db:"pages" json:"pages"`
	LeaseUntil *time.Time `db:"lease_until" json:"lease_until,omitempty"`
	ExpiresAt  time.Time  `db:"expires_at" json:"expires_at"`
	// Result is a short code ("done", "password_policy", "unsupported",
	// "failed", "resync_required"); Reason says it in words.
	Result    string    `db:"result" json:"result"`
	Reason    string    `db:"reason" json:"reason"`
	CreatedAt time.Time `db:"created_at" json:"created_at"`
	UpdatedAt time.Time `db:"updated_at" json:"updated_at"`
}

const agentJobColumns = `id, tenant_id, connection_id, agent_id, kind, run_id, payload, sealed, state, deliveries, pages, lease_until, expires_at, result, reason, created_at, updated_at`

// Finished reports whether the job is over.
func (j AgentJob) Finished() bool { return j.State == AgentJobDone || j.State == AgentJobFailed }

// ErrInstallCode: the install code is unknown, used or expired (one error
// for all three, so a caller learns nothing about other codes).
var ErrInstallCode = errors.New("install code not valid: it is unknown, was used already or has expired")

// CreateAgentInstallCode stores the hash of a one-time install code for
// the tenant's connection, valid until expiresAt.
func (s *Store) CreateAgentInstallCode(ctx context.Context, tenantID, connectionID int64, hash []byte, expiresAt time.Time) error {
	if _, err := s.Connection(ctx, tenantID, connectionID); err != nil {
		return err
	}
	_, err := s.exec(ctx, `INSERT INTO agent_install_codes (tenant_id, connection_id, code_hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`,
		tenantID, connectionID, hash, s.stamp(), expiresAt.UTC())
	if err != nil {
		return fmt.Errorf("create install code: %w", err)
	}
	return nil
}

// EnrolAgent spends the install code with hash and records a new agent of
// its connection with the given public keys; a live agent of the same
// connection is revoked (re-enrolment replaces the machine).
func (s *Store) EnrolAgent(ctx context.Context, hash, signKey, boxKey []byte, hostname, version string) (Agent, error) {
	var a Agent
	err := s.InTx(ctx, func(tx *Store) error {
		now := tx.stamp()
		var code struct {
			ID           int64 `db:"id"`
			TenantID     int64 `db:"tenant_id"`
			ConnectionID int64 `db:"connection_id"`
		}
		err := tx.get(ctx, &code, `SELECT id, tenant_id, connection_id FROM agent_install_codes WHERE code_hash = ? AND used_at IS NULL AND expires_at > ?`, hash, now)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrInstallCode
		}
		if err != nil {
			return fmt.Errorf("enrol: %w", err)
		}
		res, err := tx.exec(ctx, `UPDATE agent_install_codes SET used_at = ? WHERE id = ? AND used_at IS NULL`, now, code.ID)
		if err != nil {
			return fmt.Errorf("enrol: %w", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return ErrInstallCode
		}
		if _, err := tx.exec(ctx, `UPDATE agents SET revoked_at = ? WHERE tenant_id = ? AND connection_id = ? AND revoked_at IS NULL`, now, code.TenantID, code.ConnectionID); err != nil {
			return fmt.Errorf("enrol: %w", err)
		}
		id, err := tx.insertID(ctx, `INSERT INTO agents (tenant_id, connection_id, sign_key, box_key, hostname, version, enrolled_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			code.TenantID, code.ConnectionID, signKey, boxKey, hostname, version, now)
		if err != nil {
			return fmt.Errorf("enrol: %w", err)
		}
		a, err = tx.agent(ctx, `id = ?`, id)
		return err
	})
	return a, err
}

func (s *Store) agent(ctx context.Context, where string, args ...any) (Agent, error) {
	var a Agent
	err := s.get(ctx, &a, `SELECT `+agentColumns+` FROM agents WHERE `+where, args...)
	if err != nil {
		return a, notFound(err, "agent", args[len(args)-1])
	}
	return a, nil
}

// AgentForAuth returns agent id whatever its tenant, revoked or not: the
// lookup behind a signed request, which the caller then verifies with the
// agent's key. Everything else about agents is scoped by tenant.
func (s *Store) AgentForAuth(ctx context.Context, id int64) (Agent, error) {
	return s.agent(ctx, `id = ?`, id)
}

// LiveAgent returns the connection's enrolled, unrevoked agent.
func (s *Store) LiveAgent(ctx context.Context, tenantID, connectionID int64) (Agent, error) {
	return s.agent(ctx, `tenant_id = ? AND revoked_at IS NULL AND connection_id = ?`, tenantID, connectionID)
}

// Agents lists the tenant's live agents.
func (s *Store) Agents(ctx context.Context, tenantID int64) ([]Agent, error) {
	var out []Agent
	err := s.list(ctx, &out, `SELECT `+agentColumns+` FROM agents WHERE tenant_id = ? AND revoked_at IS NULL ORDER BY id`, tenantID)
	return out, err
}

// RevokeAgent revokes the connection's live agent: its next request fails.
// Its unfinished jobs fail with it.
func (s *Store) RevokeAgent(ctx context.Context, tenantID, connectionID int64) (Agent, error) {
	var a Agent
	err := s.InTx(ctx, func(tx *Store) error {
		var err error
		if a, err = tx.LiveAgent(ctx, tenantID, connectionID); err != nil {
			return err
		}
		now := tx.stamp()
		if _, err := tx.exec(ctx, `UPDATE agents SET revoked_at = ? WHERE tenant_id = ? AND id = ?`, now, tenantID, a.ID); err != nil {
			return fmt.Errorf("revoke agent %d: %w", a.ID, err)
		}
		a.RevokedAt = &now
		_, err = tx.exec(ctx, `UPDATE agent_jobs SET state = 'failed', result = 'failed', reason = 'the agent was revoked', sealed = NULL, updated_at = ?
			WHERE tenant_id = ? AND connection_id = ? AND state IN ('queued', 'leased')`, now, tenantID, connectionID)
		return err
	})
	return a, err
}

// TouchAgent records an agent's heartbeat: when it was seen, its version
// and host, and the password policy it reports (nil keeps the last).
func (s *Store) TouchAgent(ctx context.Context, id int64, hostname, version string, policy json.RawMessage) error {
	now := s.stamp()
	var err error
	if policy != nil {
		_, err = s.exec(ctx, `UPDATE agents SET last_seen_at = ?, hostname = ?, version = ?, policy = ? WHERE id = ?`, now, hostname, version, string(policy), id)
	} else {
		_, err = s.exec(ctx, `UPDATE agents SET last_seen_at = ?, hostname = ?, version = ? WHERE id = ?`, now, hostname, version, id)
	}
	return err
}

// MarkAgentSeen stamps an agent's last contact.
func (s *Store) MarkAgentSeen(ctx context.Context, id int64) error {
	_, err := s.exec(ctx, `UPDATE agents SET last_seen_at = ? WHERE id = ?`, s.stamp(), id)
	return err
}

// UseAgentNonce records a signed request's nonce; a nonce the agent used
// before is ErrConflict (a replay). Nonces older than keep are forgotten
// (the signature's time window refuses such requests anyway).
func (s *Store) UseAgentNonce(ctx context.Context, agentID int64, nonce string, keep time.Duration) error {
	now := s.stamp()
	_, err := s.exec(ctx, `INSERT INTO agent_nonces (agent_id, nonce, seen_at) VALUES (?, ?, ?)`, agentID, nonce, now)
	if isUniqueViolation(err) {
		return fmt.Errorf("nonce used before: %w", ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("record nonce: %w", err)
	}
	if now.Second()%10 == 0 { // forget old nonces now and then, not on every request
		_, err = s.exec(ctx, `DELETE FROM agent_nonces WHERE seen_at < ?`, now.Add(-keep))
	}
	return err
}

// CreateAgentJob queues a job for the connection's agent. A new sync job
// fails the connection's unfinished sync jobs (their run was taken over).
func (s *Store) CreateAgentJob(ctx context.Context, j AgentJob) (AgentJob, error) {
	if j.Payload == "" {
		j.Payload = "{}"
	}
	var out AgentJob
	err := s.InTx(ctx, func(tx *Store) error {
		now := tx.stamp()
		if j.Kind == AgentJobSync {
			if _, err := tx.exec(ctx, `UPDATE agent_jobs SET state = 'failed', result = 'failed', reason = 'replaced by a newer sync', updated_at = ?
				WHERE tenant_id = ? AND connection_id = ? AND kind = 'sync' AND state IN ('queued', 'leased')`, now, j.TenantID, j.ConnectionID); err != nil {
				return fmt.Errorf("create agent job: %w", err)
			}
		}
		id, err := tx.insertID(ctx, `INSERT INTO agent_jobs (tenant_id, connection_id, kind, run_id, payload, sealed, state, expires_at, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?)`,
			j.TenantID, j.ConnectionID, j.Kind, j.RunID, j.Payload, j.Sealed, j.ExpiresAt.UTC(), now, now)
		if err != nil {
			return fmt.Errorf("create agent job: %w", err)
		}
		out, err = tx.AgentJob(ctx, j.TenantID, id)
		return err
	})
	return out, err
}

// AgentJob returns the tenant's agent job with id.
func (s *Store) AgentJob(ctx context.Context, tenantID, id int64) (AgentJob, error) {
	var j AgentJob
	err := s.get(ctx, &j, `SELECT `+agentJobColumns+` FROM agent_jobs WHERE tenant_id = ? AND id = ?`, tenantID, id)
	if err != nil {
		return j, notFound(err, "agent job", id)
	}
	return j, nil
}

// HeldAgentJob returns job id if agent a holds its lease now; otherwise
// ErrNotFound (a job of another agent or tenant) or ErrConflict (no longer
// held: finished, or its lease ran out).
func (s *Store) HeldAgentJob(ctx context.Context, a Agent, id int64) (AgentJob, error) {
	j, err := s.AgentJob(ctx, a.TenantID, id)
	if err != nil {
		return j, err
	}
	if j.ConnectionID != a.ConnectionID || j.AgentID == nil || *j.AgentID != a.ID {
		return AgentJob{}, fmt.Errorf("agent job %d: %w", id, ErrNotFound)
	}
	if j.State != AgentJobLeased {
		return j, fmt.Errorf("agent job %d is %s, not held: %w", id, j.State, ErrConflict)
	}
	return j, nil
}

// ExpireAgentJobs ends what ran out of time: a queued job past its expiry
// fails; a leased write-back whose lease ran out fails (it is never
// delivered twice: the agent may have applied it), once reportGrace more
// has passed for its result to arrive; a leased sync whose
// lease ran out is queued again (its pages are idempotent and the run
// resumes from its saved position). Sealed passwords older than
// sealedLife are dropped.
func (s *Store) ExpireAgentJobs(ctx context.Context, sealedLife, reportGrace time.Duration) error {
	now := s.stamp()
	stmts := []struct {
		q    string
		args []any
	}{
		{`UPDATE agent_jobs SET state = 'failed', result = 'failed', reason = 'the connector did not pick it up in time', sealed = NULL, updated_at = ? WHERE state = 'queued' AND expires_at < ?`, []any{now, now}},
		{`UPDATE agent_jobs SET state = 'failed', result = 'failed', reason = 'the connector stopped answering while carrying it out', sealed = NULL, updated_at = ? WHERE state = 'leased' AND kind <> 'sync' AND lease_until < ?`, []any{now, now.Add(-reportGrace)}},
		{`UPDATE agent_jobs SET state = 'queued', agent_id = NULL, lease_until = NULL, updated_at = ? WHERE state = 'leased' AND kind = 'sync' AND lease_until < ?`, []any{now, now}},
		{`UPDATE agent_jobs SET sealed = NULL WHERE sealed IS NOT NULL AND created_at < ?`, []any{now.Add(-sealedLife)}},
	}
	for _, st := range stmts {
		if _, err := s.exec(ctx, st.q, st.args...); err != nil {
			return fmt.Errorf("expire agent jobs: %w", err)
		}
	}
	return nil
}

// LeaseAgentJob hands the oldest queued job of agent a's connection to it
// until leaseUntil, or returns ErrNotFound when there is none. The returned
// job carries its sealed password, which the store drops as it hands it
// over.
func (s *Store) LeaseAgentJob(ctx context.Context, a Agent, leaseUntil time.Time) (AgentJob, error) {
	var j AgentJob
	err := s.InTx(ctx, func(tx *Store) error {
		err := tx.get(ctx, &j, `SELECT `+agentJobColumns+` FROM agent_jobs WHERE tenant_id = ? AND connection_id = ? AND state = 'queued' ORDER BY id LIMIT 1`,
			a.TenantID, a.ConnectionID)
		if err != nil {
			return notFound(err, "queued job of connection", a.ConnectionID)
		}
		res, err := tx.exec(ctx, `UPDATE agent_jobs SET state = 'leased', agent_id = ?, lease_until = ?, deliveries = deliveries + 1, sealed = NULL, updated_at = ?
			WHERE id = ? AND state = 'queued'`, a.ID, leaseUntil.UTC(), tx.stamp(), j.ID)
		if err != nil {
			return fmt.Errorf("lease agent job %d: %w", j.ID, err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return fmt.Errorf("agent job %d was taken: %w", j.ID, ErrNotFound)
		}
		j.State, j.AgentID, j.Deliveries = AgentJobLeased, &a.ID, j.Deliveries+1
		lu := leaseUntil.UTC()
		j.LeaseUntil = &lu
		return nil
	})
	return j, err
}

// ExtendAgentJob moves the lease of a job agent a holds.
func (s *Store) ExtendAgentJob(ctx context.Context, a Agent, id int64, leaseUntil time.Time) error {
	res, err := s.exec(ctx, `UPDATE agent_jobs SET lease_until = ?, updated_at = ? WHERE tenant_id = ? AND id = ? AND agent_id = ? AND state = 'leased'`,
		leaseUntil.UTC(), s.stamp(), a.TenantID, id, a.ID)
	if err != nil {
		return fmt.Errorf("extend agent job %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		_, err := s.HeldAgentJob(ctx, a, id)
		return err
	}
	return nil
}

// AdvanceAgentJobPage records that page seq of a sync job agent a holds was
// committed, in the transaction that commits it. It returns false when seq
// was committed before (a retransmission: commit nothing) and ErrConflict
// when seq skips ahead.
func (s *Store) AdvanceAgentJobPage(ctx context.Context, a Agent, id int64, seq int) (bool, error) {
	j, err := s.HeldAgentJob(ctx, a, id)
	if err != nil {
		return false, err
	}
	switch {
	case seq <= j.Pages:
		return false, nil
	case seq > j.Pages+1:
		return false, fmt.Errorf("page %d of job %d arrived before page %d: %w", seq, id, j.Pages+1, ErrConflict)
	}
	_, err = s.exec(ctx, `UPDATE agent_jobs SET pages = ?, updated_at = ? WHERE id = ? AND pages = ?`, seq, s.stamp(), id, seq-1)
	return err == nil, err
}

// FinishAgentJob ends a job agent a holds with its result.
func (s *Store) FinishAgentJob(ctx context.Context, a Agent, id int64, state, result, reason string) (AgentJob, error) {
	if state != AgentJobDone && state != AgentJobFailed {
		return AgentJob{}, fmt.Errorf("finish agent job %d: state %q", id, state)
	}
	if _, err := s.HeldAgentJob(ctx, a, id); err != nil {
		return AgentJob{}, err
	}
	now := s.stamp()
	if _, err := s.exec(ctx, `UPDATE agent_jobs SET state = ?, result = ?, reason = ?, sealed = NULL, lease_until = NULL, updated_at = ? WHERE id = ? AND agent_id = ? AND state = 'leased'`,
		state, result, reason, now, id, a.ID); err != nil {
		return AgentJob{}, fmt.Errorf("finish agent job %d: %w", id, err)
	}
	if j, err := s.AgentJob(ctx, a.TenantID, id); err == nil && j.Kind == AgentJobSync && state == AgentJobDone {
		_, _ = s.exec(ctx, `UPDATE agents SET last_sync_at = ? WHERE id = ?`, now, a.ID)
	}
	return s.AgentJob(ctx, a.TenantID, id)
}

// CancelAgentJob fails a job that no agent took yet (the caller stopped
// waiting); a job already handed over is left to finish. It returns the
// job as it is after the attempt.
func (s *Store) CancelAgentJob(ctx context.Context, tenantID, id int64, reason string) (AgentJob, error) {
	if _, err := s.exec(ctx, `UPDATE agent_jobs SET state = 'failed', result = 'failed', reason = ?, sealed = NULL, updated_at = ? WHERE tenant_id = ? AND id = ? AND state = 'queued'`,
		reason, s.stamp(), tenantID, id); err != nil {
		return AgentJob{}, fmt.Errorf("cancel agent job %d: %w", id, err)
	}
	return s.AgentJob(ctx, tenantID, id)
}

// ResetAgentJobPages restarts the page numbering of a sync job handed out
// again (the agent resumes from the run's saved position).
func (s *Store) ResetAgentJobPages(ctx context.Context, tenantID, id int64) error {
	_, err := s.exec(ctx, `UPDATE agent_jobs SET pages = 0 WHERE tenant_id = ? AND id = ?`, tenantID, id)
	return err
}
