package store

import (
	"context"
	"fmt"
	"time"
)

// JobState is a write-back job's state.
type JobState string

// The job states.
const (
	JobQueued  JobState = "queued"
	JobRunning JobState = "running"
	JobDone    JobState = "done"
	JobFailed  JobState = "failed"
)

// JobTarget is where a job writes.
type JobTarget string

// The job targets.
const (
	TargetAD    JobTarget = "ad"
	TargetAzure JobTarget = "azure"
	// TargetLocal: a local account, reachable only through an on-premises
	// agent.
	TargetLocal JobTarget = "local"
	// TargetOutbox: the demo, which has no directory, records the change in
	// its outbox.
	TargetOutbox JobTarget = "outbox"
)

// PasswordJob is one self-serve write-back: the action, the account it is
// for and where it goes, and its state. It never holds the password: a
// direct connection writes it within the request that carries it; an
// agent would receive it sealed to its own key, apart from this row.
type PasswordJob struct {
	ID           int64            `db:"id" json:"id"`
	TenantID     int64            `db:"tenant_id" json:"tenant_id"`
	EndUserID    int64            `db:"end_user_id" json:"end_user_id"`
	ChallengeID  string           `db:"challenge_id" json:"-"`
	Action       ChallengePurpose `db:"action" json:"action"`
	Target       JobTarget        `db:"target" json:"target"`
	ConnectionID *int64           `db:"connection_id" json:"connection_id,omitempty"`
	// ExternalID is the target account's id in its directory (AD
	// objectGUID, Entra object id).
	ExternalID string     `db:"external_id" json:"external_id"`
	State      JobState   `db:"state" json:"state"`
	Reason     string     `db:"reason" json:"reason,omitempty"`
	ClientIP   string     `db:"client_ip" json:"client_ip"`
	CreatedAt  time.Time  `db:"created_at" json:"created_at"`
	StartedAt  *time.Time `db:"started_at" json:"started_at,omitempty"`
	FinishedAt *time.Time `db:"finished_at" json:"finished_at,omitempty"`
}

const jobColumns = `id, tenant_id, end_user_id, challenge_id, action, target, connection_id, external_id, state, reason, client_ip, created_at, started_at, finished_at`

// CreatePasswordJob records a queued job and returns it with its id; a
// job given the state running is recorded as started now (a job carried
// out at once by the request that made it).
func (s *Store) CreatePasswordJob(ctx context.Context, j PasswordJob) (PasswordJob, error) {
	j.CreatedAt, j.StartedAt = s.stamp(), nil
	if j.State == JobRunning {
		j.StartedAt = &j.CreatedAt
	} else {
		j.State = JobQueued
	}
	id, err := s.insertID(ctx, `INSERT INTO password_jobs (tenant_id, end_user_id, challenge_id, action, target, connection_id, external_id, state, reason, client_ip, created_at, started_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		j.TenantID, j.EndUserID, j.ChallengeID, j.Action, j.Target, j.ConnectionID, j.ExternalID, j.State, j.Reason, j.ClientIP, j.CreatedAt, j.StartedAt)
	if err != nil {
		return j, fmt.Errorf("create password job: %w", err)
	}
	j.ID = id
	return j, nil
}

// FinishPasswordJob moves a queued or running job to done or failed, with
// the reason in plain words, and returns it.
func (s *Store) FinishPasswordJob(ctx context.Context, tenantID, id int64, state JobState, reason string) (PasswordJob, error) {
	var j PasswordJob
	err := s.get(ctx, &j, `UPDATE password_jobs SET state = ?, reason = ?, finished_at = ? WHERE tenant_id = ? AND id = ? AND state IN ('queued', 'running')
		RETURNING `+jobColumns, state, reason, s.stamp(), tenantID, id)
	if err != nil {
		return j, notFound(err, "unfinished password job", id)
	}
	return j, nil
}

// PasswordJobs lists the end user's write-back jobs, newest first (limit
// 0: 50).
func (s *Store) PasswordJobs(ctx context.Context, tenantID, endUserID int64, limit int) ([]PasswordJob, error) {
	if limit <= 0 {
		limit = 50
	}
	var out []PasswordJob
	err := s.list(ctx, &out, `SELECT `+jobColumns+` FROM password_jobs WHERE tenant_id = ? AND end_user_id = ? ORDER BY id DESC LIMIT `+fmt.Sprint(limit), tenantID, endUserID)
	if err != nil {
		return nil, fmt.Errorf("list password jobs: %w", err)
	}
	return out, nil
}
