package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"selfserve/internal/rules"
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

// StartPasswordJob claims the grant of j's challenge for this one use and
// records j, in one statement on PostgreSQL (one transaction on SQLite):
// running and started now, or queued when j.State is not JobRunning (a job
// refused before it runs). A grant used, expired, or claimed meanwhile by
// another request is ErrGrantUnusable, and nothing is recorded. now is the
// grant's clock; j is returned with its id.
func (s *Store) StartPasswordJob(ctx context.Context, j PasswordJob, now time.Time) (PasswordJob, error) {
	j.CreatedAt, j.StartedAt = s.stamp(), nil
	if j.State == JobRunning {
		j.StartedAt = &j.CreatedAt
	} else {
		j.State = JobQueued
	}
	const claim = `UPDATE challenges SET grant_used_at = ?
		WHERE tenant_id = ? AND id = ? AND end_user_id = ? AND grant_hash IS NOT NULL AND grant_used_at IS NULL AND grant_expires_at > ?`
	claimArgs := []any{now.UTC(), j.TenantID, j.ChallengeID, j.EndUserID, now.UTC()}
	const insert = `INSERT INTO password_jobs (tenant_id, end_user_id, challenge_id, action, target, connection_id, external_id, state, reason, client_ip, created_at, started_at) `
	jobArgs := []any{j.TenantID, j.EndUserID, j.ChallengeID, j.Action, j.Target, j.ConnectionID, j.ExternalID, j.State, j.Reason, j.ClientIP, j.CreatedAt, j.StartedAt}
	if s.dialect == Postgres {
		err := s.get(ctx, &j.ID, `WITH claimed AS (`+claim+` RETURNING id) `+insert+`
			SELECT ?::bigint, ?::bigint, ?::text, ?::text, ?::text, ?::bigint, ?::text, ?::text, ?::text, ?::text, ?::timestamptz, ?::timestamptz
			FROM claimed RETURNING id`, append(claimArgs, jobArgs...)...)
		if err = notFoundAs(err, ErrGrantUnusable); err != nil && !errors.Is(err, ErrGrantUnusable) {
			err = fmt.Errorf("start password job: %w", err)
		}
		return j, err
	}
	err := s.InTx(ctx, func(tx *Store) error {
		res, err := tx.exec(ctx, claim, claimArgs...)
		if err != nil {
			return fmt.Errorf("claim grant: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrGrantUnusable
		}
		if j.ID, err = tx.insertID(ctx, insert+`VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, jobArgs...); err != nil {
			return fmt.Errorf("start password job: %w", err)
		}
		return nil
	})
	return j, err
}

// JobEnd is how a write-back job ended, with what is recorded with it.
type JobEnd struct {
	// State is JobDone or JobFailed; Reason says why in plain words.
	State  JobState
	Reason string
	// Audit is the job's audit entry.
	Audit AuditRecord
	// Notices makes, from the finished job, the ledger rows that tell the
	// end user (nil: none).
	Notices func(finished PasswordJob) []NewNotice
}

// endJob ends a queued or running job: state, reason, finished_at, tenant,
// id.
const endJob = `UPDATE password_jobs SET state = ?, reason = ?, finished_at = ? WHERE tenant_id = ? AND id = ? AND state IN ('queued', 'running')`

// EndPasswordJob moves the queued or running job j to its end, and writes
// its audit entry and notices, in one statement on PostgreSQL (one
// transaction on SQLite). It returns the job finished and the notices
// created (a notice whose key exists is skipped, as in CreateNotices). A
// job already finished is ErrNotFound, and nothing is written.
func (s *Store) EndPasswordJob(ctx context.Context, j PasswordJob, end JobEnd) (PasswordJob, []NoticeRef, error) {
	at := s.stamp()
	j.State, j.Reason, j.FinishedAt = end.State, end.Reason, &at
	var notices []NewNotice
	if end.Notices != nil {
		notices = end.Notices(j)
	}
	if s.dialect != Postgres || len(notices) == 0 {
		var refs []NoticeRef
		err := s.InTx(ctx, func(tx *Store) error {
			res, err := tx.exec(ctx, endJob, j.State, j.Reason, at, j.TenantID, j.ID)
			if err != nil {
				return fmt.Errorf("end password job %d: %w", j.ID, err)
			}
			if err := mustAffect(res, "unfinished password job", j.ID); err != nil {
				return err
			}
			if err := tx.Audit(ctx, end.Audit); err != nil {
				return err
			}
			refs, err = tx.CreateNotices(ctx, notices)
			return err
		})
		return j, refs, err
	}
	audit, err := auditArgs(end.Audit, at)
	if err != nil {
		return j, nil, err
	}
	tenants, users := make([]int64, len(notices)), make([]int64, len(notices))
	kinds, occasions, channels := make([]string, len(notices)), make([]string, len(notices)), make([]string, len(notices))
	for i, n := range notices {
		if err := n.check(); err != nil {
			return j, nil, err
		}
		tenants[i], users[i], kinds[i], occasions[i], channels[i] = n.TenantID, n.EndUserID, string(n.Kind), n.Occasion, string(n.Channel)
	}
	args := append([]any{j.State, j.Reason, at, j.TenantID, j.ID}, audit...)
	args = append(args, at, at, tenants, users, kinds, occasions, channels)
	// Every data-modifying part runs once, whether read or not; the audit
	// entry and the notices are written only when the job ended here.
	rows, err := s.q.QueryContext(ctx, s.rebind(`WITH job AS (
			`+endJob+` RETURNING id),
		audit AS (
			INSERT INTO audit_log (`+auditColumns+`)
			SELECT ?::bigint, ?::bigint, ?::text, ?::text, ?::text, ?::text, ?::text, ?::text, ?::timestamptz FROM job),
		notice AS (
			INSERT INTO notices (tenant_id, end_user_id, kind, occasion, channel, status, created_at, updated_at)
			SELECT t, u, k, o, c, 'pending', ?::timestamptz, ?::timestamptz
			FROM unnest(?::bigint[], ?::bigint[], ?::text[], ?::text[], ?::text[]) AS x(t, u, k, o, c) CROSS JOIN job
			ON CONFLICT (end_user_id, kind, occasion, channel) DO NOTHING
			RETURNING id, tenant_id, end_user_id, kind, channel)
		SELECT (SELECT count(*) FROM job), notice.id, notice.tenant_id, notice.end_user_id, notice.kind, notice.channel
		FROM (SELECT 1) AS one LEFT JOIN notice ON true`), args...)
	if err != nil {
		return j, nil, fmt.Errorf("end password job %d: %w", j.ID, err)
	}
	defer rows.Close()
	var refs []NoticeRef
	ended := int64(0)
	for rows.Next() {
		var id, tenantID, endUserID sql.NullInt64
		var kind, channel sql.NullString
		if err := rows.Scan(&ended, &id, &tenantID, &endUserID, &kind, &channel); err != nil {
			return j, nil, fmt.Errorf("end password job %d: %w", j.ID, err)
		}
		if id.Valid {
			refs = append(refs, NoticeRef{ID: id.Int64, TenantID: tenantID.Int64, EndUserID: endUserID.Int64, Kind: rules.NoticeKind(kind.String), Channel: Channel(channel.String)})
		}
	}
	if err := rows.Err(); err != nil {
		return j, nil, fmt.Errorf("end password job %d: %w", j.ID, err)
	}
	if ended == 0 {
		return j, nil, fmt.Errorf("unfinished password job %d: %w", j.ID, ErrNotFound)
	}
	return j, refs, nil
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
