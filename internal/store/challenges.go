package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// The end users' self-serve flow (package selfserve): challenges and the
// grants verified challenges yield. The write-back jobs are in
// password_jobs.go.

// ChallengePurpose is what a verified challenge allows.
type ChallengePurpose string

// The purposes.
const (
	PurposeReset  ChallengePurpose = "reset"
	PurposeUnlock ChallengePurpose = "unlock"
	// PurposeEnrol proves possession of the mobile the end user gives
	// through the welcome link; it yields no grant.
	PurposeEnrol ChallengePurpose = "enrol"
)

// Errors of the challenge methods.
var (
	// ErrChallengeDead: the challenge expired, was voided by too many wrong
	// codes, or was already verified and its grant issued.
	ErrChallengeDead = errors.New("the challenge is no longer valid")
	// ErrGrantUnusable: the grant expired, was used, or is being used by
	// another request.
	ErrGrantUnusable = errors.New("the grant is no longer valid")
)

// Challenge is a set of codes sent to an end user (EndUserID nil: a decoy
// for an unknown or inactive login, to which nothing was sent). Codes and
// grant are kept only hashed.
type Challenge struct {
	ID        string           `db:"id"`
	TenantID  int64            `db:"tenant_id"`
	EndUserID *int64           `db:"end_user_id"`
	Purpose   ChallengePurpose `db:"purpose"`
	// Factors lists the channels a code went to, comma separated ("sms",
	// "sms,email").
	Factors         string     `db:"factors"`
	SMSCodeHash     []byte     `db:"sms_code_hash"`
	EmailCodeHash   []byte     `db:"email_code_hash"`
	SMSVerifiedAt   *time.Time `db:"sms_verified_at"`
	EmailVerifiedAt *time.Time `db:"email_verified_at"`
	// Mobile is, for enrolment, the number being proved (E.164).
	Mobile string `db:"mobile"`
	// LinkNonce is, for enrolment, the welcome link's nonce.
	LinkNonce      string     `db:"link_nonce"`
	Attempts       int        `db:"attempts"`
	ExpiresAt      time.Time  `db:"expires_at"`
	VoidedAt       *time.Time `db:"voided_at"`
	GrantHash      []byte     `db:"grant_hash"`
	GrantExpiresAt *time.Time `db:"grant_expires_at"`
	GrantUsedAt    *time.Time `db:"grant_used_at"`
	CreatedAt      time.Time  `db:"created_at"`
}

// FactorList returns the challenge's channels.
func (c Challenge) FactorList() []string { return strings.Split(c.Factors, ",") }

// CodeHash returns the stored hash of the channel's code.
func (c Challenge) CodeHash(channel string) []byte {
	if channel == "email" {
		return c.EmailCodeHash
	}
	return c.SMSCodeHash
}

// Verified reports whether the channel's code was verified.
func (c Challenge) Verified(channel string) bool {
	if channel == "email" {
		return c.EmailVerifiedAt != nil
	}
	return c.SMSVerifiedAt != nil
}

// Live reports whether codes may still be tried at now.
func (c Challenge) Live(now time.Time) bool {
	return c.VoidedAt == nil && c.GrantHash == nil && now.Before(c.ExpiresAt)
}

const challengeColumns = `id, tenant_id, end_user_id, purpose, factors, sms_code_hash, email_code_hash, sms_verified_at, email_verified_at,
	mobile, link_nonce, attempts, expires_at, voided_at, grant_hash, grant_expires_at, grant_used_at, created_at`

// CreateChallenge stores a new challenge.
func (s *Store) CreateChallenge(ctx context.Context, c Challenge) error {
	_, err := s.exec(ctx, `INSERT INTO challenges (id, tenant_id, end_user_id, purpose, factors, sms_code_hash, email_code_hash, mobile, link_nonce, expires_at, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.ID, c.TenantID, c.EndUserID, c.Purpose, c.Factors, c.SMSCodeHash, c.EmailCodeHash, c.Mobile, c.LinkNonce, c.ExpiresAt.UTC(), c.CreatedAt.UTC())
	if err != nil {
		return fmt.Errorf("create challenge: %w", err)
	}
	return nil
}

// Challenge returns the tenant's challenge id.
func (s *Store) Challenge(ctx context.Context, tenantID int64, id string) (Challenge, error) {
	var c Challenge
	err := s.get(ctx, &c, `SELECT `+challengeColumns+` FROM challenges WHERE tenant_id = ? AND id = ?`, tenantID, id)
	if err != nil {
		return c, notFound(err, "challenge", "")
	}
	return c, nil
}

// FailChallengeAttempt counts a wrong code against the live challenge and
// voids it when the count reaches maxAttempts. It returns the attempts
// made; a challenge no longer live is ErrChallengeDead.
func (s *Store) FailChallengeAttempt(ctx context.Context, tenantID int64, id string, maxAttempts int, now time.Time) (int, error) {
	var n int
	err := s.get(ctx, &n, `UPDATE challenges SET attempts = attempts + 1,
		voided_at = CASE WHEN attempts + 1 >= ? THEN ? ELSE voided_at END
		WHERE tenant_id = ? AND id = ? AND voided_at IS NULL AND grant_hash IS NULL AND expires_at > ?
		RETURNING attempts`, maxAttempts, now.UTC(), tenantID, id, now.UTC())
	if err != nil {
		return 0, notFoundAs(err, ErrChallengeDead)
	}
	return n, nil
}

// Grant is a grant to issue: the SHA-256 of the grant given to the end
// user, and when it expires.
type Grant struct {
	Hash      []byte
	ExpiresAt time.Time
}

// VerifyChallengeFactor records that the channel's code was right, once:
// a challenge no longer live, or a code already used, is ErrChallengeDead.
// With grant set (the caller found every other factor verified) the same
// statement ends the challenge with the grant. It returns the challenge
// after the change.
func (s *Store) VerifyChallengeFactor(ctx context.Context, tenantID int64, id, channel string, now time.Time, grant *Grant) (Challenge, error) {
	col := "sms_verified_at"
	if channel == "email" {
		col = "email_verified_at"
	}
	set, args := col+` = ?`, []any{now.UTC()}
	if grant != nil {
		set += `, grant_hash = ?, grant_expires_at = ?`
		args = append(args, grant.Hash, grant.ExpiresAt.UTC())
	}
	var c Challenge
	err := s.get(ctx, &c, `UPDATE challenges SET `+set+`
		WHERE tenant_id = ? AND id = ? AND `+col+` IS NULL AND voided_at IS NULL AND grant_hash IS NULL AND expires_at > ?
		RETURNING `+challengeColumns, append(args, tenantID, id, now.UTC())...)
	if err != nil {
		return c, notFoundAs(err, ErrChallengeDead)
	}
	return c, nil
}

// ProveLastFactor is the common case of a right code in one statement on
// PostgreSQL (one transaction on SQLite): when codeHash is the hash of the
// live challenge's unverified code on channel, that channel is its last
// factor not yet verified, and it is a reset or unlock of an end user, it
// records the factor verified and ends the challenge with grant. It returns
// the challenge after it with its end user. Anything else (a wrong code, a
// decoy, a dead challenge, another factor still to prove, an enrolment)
// changes nothing and is ErrNotFound: the caller looks closer.
func (s *Store) ProveLastFactor(ctx context.Context, tenantID int64, id, channel string, codeHash []byte, now time.Time, grant Grant) (GrantUse, error) {
	col, hashCol, other, otherCol := "sms_verified_at", "sms_code_hash", "email", "email_verified_at"
	if channel == "email" {
		col, hashCol, other, otherCol = otherCol, "email_code_hash", "sms", col
	}
	update := `UPDATE challenges SET ` + col + ` = ?, grant_hash = ?, grant_expires_at = ?
		WHERE tenant_id = ? AND id = ? AND ` + hashCol + ` = ? AND ` + col + ` IS NULL AND voided_at IS NULL AND grant_hash IS NULL AND expires_at > ?
		AND purpose <> 'enrol' AND end_user_id IS NOT NULL AND (factors NOT LIKE ? OR ` + otherCol + ` IS NOT NULL)`
	args := []any{now.UTC(), grant.Hash, grant.ExpiresAt.UTC(), tenantID, id, codeHash, now.UTC(), "%" + other + "%"}
	var g GrantUse
	if s.dialect == Postgres {
		err := s.get(ctx, &g, `WITH c AS (`+update+` RETURNING `+challengeColumns+`)
			SELECT `+grantUseColumns+` FROM c JOIN end_users u ON u.id = c.end_user_id AND u.tenant_id = c.tenant_id`, args...)
		if err != nil {
			return g, notFound(err, "challenge to prove", "")
		}
		return g, nil
	}
	err := s.InTx(ctx, func(tx *Store) error {
		if err := tx.get(ctx, &g.Challenge, update+` RETURNING `+challengeColumns, args...); err != nil {
			return notFound(err, "challenge to prove", "")
		}
		var err error
		g.EndUser, err = tx.EndUser(ctx, tenantID, *g.Challenge.EndUserID)
		return err
	})
	return g, err
}

// SetChallengeCode stores the hash of the code sent on channel for a live
// challenge that had none yet (a factor asked for once the first was
// proven); the challenge's codes may then be tried until expires. A
// challenge no longer live, or one with that code already, is
// ErrChallengeDead.
func (s *Store) SetChallengeCode(ctx context.Context, tenantID int64, id, channel string, hash []byte, expires time.Time) error {
	col := "sms_code_hash"
	if channel == "email" {
		col = "email_code_hash"
	}
	res, err := s.exec(ctx, `UPDATE challenges SET `+col+` = ?, expires_at = ?
		WHERE tenant_id = ? AND id = ? AND `+col+` IS NULL AND voided_at IS NULL AND grant_hash IS NULL`,
		hash, expires.UTC(), tenantID, id)
	if err != nil {
		return fmt.Errorf("set challenge code: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrChallengeDead
	}
	return nil
}

// IssueGrant ends the verified challenge with the grant whose SHA-256 is
// hash, valid until expires. A challenge that already has one is
// ErrChallengeDead.
func (s *Store) IssueGrant(ctx context.Context, tenantID int64, id string, hash []byte, expires time.Time) error {
	res, err := s.exec(ctx, `UPDATE challenges SET grant_hash = ?, grant_expires_at = ? WHERE tenant_id = ? AND id = ? AND grant_hash IS NULL AND voided_at IS NULL`,
		hash, expires.UTC(), tenantID, id)
	if err != nil {
		return fmt.Errorf("issue grant: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrChallengeDead
	}
	return nil
}

// ReleaseGrant makes a claimed grant usable again (the directory refused
// the password or could not be reached: the end user may try again within
// the grant's life).
func (s *Store) ReleaseGrant(ctx context.Context, tenantID int64, id string) error {
	if _, err := s.exec(ctx, `UPDATE challenges SET grant_used_at = NULL WHERE tenant_id = ? AND id = ?`, tenantID, id); err != nil {
		return fmt.Errorf("release grant: %w", err)
	}
	return nil
}

// DeleteExpiredChallenges removes challenges that expired (and whose grant
// expired) before cutoff. It returns how many it removed.
func (s *Store) DeleteExpiredChallenges(ctx context.Context, cutoff time.Time) (int64, error) {
	res, err := s.exec(ctx, `DELETE FROM challenges WHERE expires_at < ? AND (grant_expires_at IS NULL OR grant_expires_at < ?)`, cutoff.UTC(), cutoff.UTC())
	if err != nil {
		return 0, fmt.Errorf("delete expired challenges: %w", err)
	}
	return res.RowsAffected()
}

// notFoundAs turns sql.ErrNoRows into sentinel.
func notFoundAs(err, sentinel error) error {
	if errors.Is(notFound(err, "", ""), ErrNotFound) {
		return sentinel
	}
	return err
}

// GrantUse is a usable grant's challenge and the end user it was issued
// to.
type GrantUse struct {
	Challenge Challenge `db:"c"`
	EndUser   EndUser   `db:"u"`
}

// grantUseColumns are GrantUse's columns, read from challenges c and
// end_users u.
var grantUseColumns = nested("c", challengeColumns) + ", " + nested("u", endUserColumns)

// UsableGrant returns the challenge of the unused, unexpired grant whose
// SHA-256 is hash, with its end user, without claiming it (a job claims
// it: StartPasswordJob); anything else is ErrGrantUnusable.
func (s *Store) UsableGrant(ctx context.Context, tenantID int64, hash []byte, now time.Time) (GrantUse, error) {
	var g GrantUse
	err := s.get(ctx, &g, `SELECT `+grantUseColumns+` FROM challenges c JOIN end_users u ON u.id = c.end_user_id AND u.tenant_id = c.tenant_id
		WHERE c.tenant_id = ? AND c.grant_hash = ? AND c.grant_used_at IS NULL AND c.grant_expires_at > ?`,
		tenantID, hash, now.UTC())
	if err != nil {
		return g, notFoundAs(err, ErrGrantUnusable)
	}
	return g, nil
}
