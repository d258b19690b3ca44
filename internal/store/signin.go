package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// This file holds the technician console's sign-in: console credentials
// (password hash, sealed TOTP secret, recovery codes), invites, sessions and
// sign-in throttling. The values a sync refused are in refusals.go, the
// end-user page in enduser_page.go.

// ErrCodeUsed: a TOTP time step or recovery code was used already (or a
// later step was).
var ErrCodeUsed = errors.New("code used already")

// Credentials are a login's console credentials.
type Credentials struct {
	LoginID  int64 `db:"login_id"`
	TenantID int64 `db:"tenant_id"`
	// PasswordHash is an argon2id PHC string ("" until a password is set).
	PasswordHash string `db:"password_hash"`
	// TOTPSecret is the sealed TOTP secret (nil: no second factor set up).
	TOTPSecret        []byte     `db:"totp_secret"`
	TOTPLastStep      int64      `db:"totp_last_step"`
	PasswordChangedAt *time.Time `db:"password_changed_at"`
	UpdatedAt         time.Time  `db:"updated_at"`
}

const credentialColumns = `login_id, tenant_id, password_hash, totp_secret, totp_last_step, password_changed_at, updated_at`

// Credentials returns the login's console credentials; a login that never
// set any is ErrNotFound.
func (s *Store) Credentials(ctx context.Context, tenantID, loginID int64) (Credentials, error) {
	var c Credentials
	err := s.get(ctx, &c, `SELECT `+credentialColumns+` FROM login_credentials WHERE tenant_id = ? AND login_id = ?`, tenantID, loginID)
	if err != nil {
		return c, notFound(err, "credentials of login", loginID)
	}
	return c, nil
}

// ensureCredentials makes the login's credentials row if it has none.
func (s *Store) ensureCredentials(ctx context.Context, tenantID, loginID int64) error {
	if _, err := s.Login(ctx, tenantID, loginID); err != nil {
		return err
	}
	_, err := s.exec(ctx, `INSERT INTO login_credentials (login_id, tenant_id, updated_at) VALUES (?, ?, ?) ON CONFLICT (login_id) DO NOTHING`,
		loginID, tenantID, s.stamp())
	if err != nil {
		return fmt.Errorf("credentials of login %d: %w", loginID, err)
	}
	return nil
}

// SetPassword stores the login's new password hash and ends every console
// session of the login.
func (s *Store) SetPassword(ctx context.Context, tenantID, loginID int64, hash string) error {
	return s.InTx(ctx, func(tx *Store) error {
		if err := tx.ensureCredentials(ctx, tenantID, loginID); err != nil {
			return err
		}
		now := tx.stamp()
		if _, err := tx.exec(ctx, `UPDATE login_credentials SET password_hash = ?, password_changed_at = ?, updated_at = ? WHERE tenant_id = ? AND login_id = ?`,
			hash, now, now, tenantID, loginID); err != nil {
			return fmt.Errorf("set password of login %d: %w", loginID, err)
		}
		return tx.EndLoginSessions(ctx, tenantID, loginID)
	})
}

// SetTOTP stores the login's sealed TOTP secret (nil removes it) and the
// time step of the code that proved it (a code is good once).
func (s *Store) SetTOTP(ctx context.Context, tenantID, loginID int64, sealed []byte, step int64) error {
	return s.InTx(ctx, func(tx *Store) error {
		if err := tx.ensureCredentials(ctx, tenantID, loginID); err != nil {
			return err
		}
		_, err := tx.exec(ctx, `UPDATE login_credentials SET totp_secret = ?, totp_last_step = ?, updated_at = ? WHERE tenant_id = ? AND login_id = ?`,
			sealed, step, tx.stamp(), tenantID, loginID)
		if err != nil {
			return fmt.Errorf("set TOTP of login %d: %w", loginID, err)
		}
		return nil
	})
}

// UseTOTPStep records that the login used the TOTP code of time step step.
// A step not after the last one used is ErrCodeUsed: a code works once.
func (s *Store) UseTOTPStep(ctx context.Context, tenantID, loginID, step int64) error {
	res, err := s.exec(ctx, `UPDATE login_credentials SET totp_last_step = ?, updated_at = ? WHERE tenant_id = ? AND login_id = ? AND totp_last_step < ?`,
		step, s.stamp(), tenantID, loginID, step)
	if err != nil {
		return fmt.Errorf("use TOTP code of login %d: %w", loginID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrCodeUsed
	}
	return nil
}

// ReplaceRecoveryCodes replaces the login's recovery codes by the codes
// whose SHA-256 hashes are given.
func (s *Store) ReplaceRecoveryCodes(ctx context.Context, tenantID, loginID int64, hashes [][]byte) error {
	return s.InTx(ctx, func(tx *Store) error {
		if _, err := tx.Login(ctx, tenantID, loginID); err != nil {
			return err
		}
		if _, err := tx.exec(ctx, `DELETE FROM login_recovery_codes WHERE tenant_id = ? AND login_id = ?`, tenantID, loginID); err != nil {
			return fmt.Errorf("replace recovery codes: %w", err)
		}
		for _, h := range hashes {
			if _, err := tx.exec(ctx, `INSERT INTO login_recovery_codes (tenant_id, login_id, code_hash) VALUES (?, ?, ?)`, tenantID, loginID, h); err != nil {
				return fmt.Errorf("replace recovery codes: %w", err)
			}
		}
		return nil
	})
}

// UseRecoveryCode spends the login's unused recovery code of hash; an
// unknown or spent code is ErrCodeUsed.
func (s *Store) UseRecoveryCode(ctx context.Context, tenantID, loginID int64, hash []byte) error {
	res, err := s.exec(ctx, `UPDATE login_recovery_codes SET used_at = ? WHERE tenant_id = ? AND login_id = ? AND code_hash = ? AND used_at IS NULL`,
		s.stamp(), tenantID, loginID, hash)
	if err != nil {
		return fmt.Errorf("use recovery code: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrCodeUsed
	}
	return nil
}

// UnusedRecoveryCodes counts the login's recovery codes not yet spent.
func (s *Store) UnusedRecoveryCodes(ctx context.Context, tenantID, loginID int64) (int, error) {
	var n int
	err := s.get(ctx, &n, `SELECT COUNT(*) FROM login_recovery_codes WHERE tenant_id = ? AND login_id = ? AND used_at IS NULL`, tenantID, loginID)
	return n, err
}

// LoginInvite is a single-use link letting a login set its password.
type LoginInvite struct {
	ID        int64      `db:"id"`
	TenantID  int64      `db:"tenant_id"`
	LoginID   int64      `db:"login_id"`
	Hash      []byte     `db:"token_hash"`
	CreatedBy string     `db:"created_by"`
	CreatedAt time.Time  `db:"created_at"`
	ExpiresAt time.Time  `db:"expires_at"`
	UsedAt    *time.Time `db:"used_at"`
}

// CreateInvite stores an invite for the tenant's login with the hash of its
// token (the caller makes the token and shows it once).
func (s *Store) CreateInvite(ctx context.Context, tenantID, loginID int64, hash []byte, createdBy string, expires time.Time) (LoginInvite, error) {
	if _, err := s.Login(ctx, tenantID, loginID); err != nil {
		return LoginInvite{}, err
	}
	id, err := s.insertID(ctx, `INSERT INTO login_invites (tenant_id, login_id, token_hash, created_by, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)`,
		tenantID, loginID, hash, createdBy, s.stamp(), expires.UTC())
	if err != nil {
		return LoginInvite{}, fmt.Errorf("create invite: %w", err)
	}
	var inv LoginInvite
	err = s.get(ctx, &inv, `SELECT * FROM login_invites WHERE id = ?`, id)
	return inv, err
}

// Invite returns the unused, unexpired invite of token hash; anything else
// is ErrTokenInvalid.
func (s *Store) Invite(ctx context.Context, hash []byte, now time.Time) (LoginInvite, error) {
	var inv LoginInvite
	err := s.get(ctx, &inv, `SELECT * FROM login_invites WHERE token_hash = ?`, hash)
	if errors.Is(err, sql.ErrNoRows) {
		return inv, ErrTokenInvalid
	}
	if err != nil {
		return inv, fmt.Errorf("invite: %w", err)
	}
	if inv.UsedAt != nil || !now.Before(inv.ExpiresAt) {
		return inv, ErrTokenInvalid
	}
	return inv, nil
}

// AcceptInvite spends the invite of token hash and sets its login's
// password hash, in one transaction: a used, expired or unknown invite is
// ErrTokenInvalid and sets nothing.
func (s *Store) AcceptInvite(ctx context.Context, hash []byte, passwordHash string, now time.Time) (LoginInvite, error) {
	var inv LoginInvite
	err := s.InTx(ctx, func(tx *Store) error {
		var err error
		if inv, err = tx.Invite(ctx, hash, now); err != nil {
			return err
		}
		res, err := tx.exec(ctx, `UPDATE login_invites SET used_at = ? WHERE id = ? AND used_at IS NULL`, tx.stamp(), inv.ID)
		if err != nil {
			return fmt.Errorf("use invite: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrTokenInvalid
		}
		return tx.SetPassword(ctx, inv.TenantID, inv.LoginID, passwordHash)
	})
	return inv, err
}

// SessionStage is how far a console session got through sign-in.
type SessionStage string

// The stages.
const (
	// StagePassword: the password was right; the second factor is due.
	StagePassword SessionStage = "password"
	// StageFull: signed in.
	StageFull SessionStage = "full"
)

// Session is a console session. The cookie carries ID and the secret; the
// row keeps the secret's SHA-256 hash.
type Session struct {
	ID         string       `db:"id"`
	SecretHash []byte       `db:"secret_hash"`
	TenantID   int64        `db:"tenant_id"`
	LoginID    int64        `db:"login_id"`
	Stage      SessionStage `db:"stage"`
	CSRFToken  string       `db:"csrf_token"`
	CreatedAt  time.Time    `db:"created_at"`
	LastSeenAt time.Time    `db:"last_seen_at"`
	ExpiresAt  time.Time    `db:"expires_at"`
}

// CreateSession stores a new session.
func (s *Store) CreateSession(ctx context.Context, ss Session) error {
	_, err := s.exec(ctx, `INSERT INTO console_sessions (id, secret_hash, tenant_id, login_id, stage, csrf_token, created_at, last_seen_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		ss.ID, ss.SecretHash, ss.TenantID, ss.LoginID, ss.Stage, ss.CSRFToken, ss.CreatedAt.UTC(), ss.LastSeenAt.UTC(), ss.ExpiresAt.UTC())
	if err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	return nil
}

// Session returns the session id (ErrNotFound when it ended).
func (s *Store) Session(ctx context.Context, id string) (Session, error) {
	var ss Session
	err := s.get(ctx, &ss, `SELECT * FROM console_sessions WHERE id = ?`, id)
	if err != nil {
		return ss, notFound(err, "session", id)
	}
	return ss, nil
}

// SignedIn is a session with its login and tenant.
type SignedIn struct {
	Session
	Login  Login  `db:"l"`
	Tenant Tenant `db:"t"`
}

// prefixed lists columns of table alias a as "a.column" (sqlx's names for
// nested structs).
func prefixed(a, columns string) string {
	var out []string
	for _, c := range strings.Split(columns, ",") {
		c = strings.TrimSpace(c)
		out = append(out, fmt.Sprintf(`%s.%s AS "%s.%s"`, a, c, a, c))
	}
	return strings.Join(out, ", ")
}

// SessionWithLogin returns the session id with its login and tenant, in one
// query (every console request asks); ErrNotFound when it ended.
func (s *Store) SessionWithLogin(ctx context.Context, id string) (SignedIn, error) {
	var si SignedIn
	err := s.get(ctx, &si, `SELECT s.*, `+prefixed("l", loginColumns)+`, `+prefixed("t", tenantColumns)+`
		FROM console_sessions s JOIN logins l ON l.id = s.login_id AND l.tenant_id = s.tenant_id JOIN tenants t ON t.id = s.tenant_id
		WHERE s.id = ?`, id)
	if err != nil {
		return si, notFound(err, "session", id)
	}
	return si, nil
}

// TouchSession records activity on the session at at.
func (s *Store) TouchSession(ctx context.Context, id string, at time.Time) error {
	_, err := s.exec(ctx, `UPDATE console_sessions SET last_seen_at = ? WHERE id = ?`, at.UTC(), id)
	return err
}

// EndSession deletes the session id.
func (s *Store) EndSession(ctx context.Context, id string) error {
	_, err := s.exec(ctx, `DELETE FROM console_sessions WHERE id = ?`, id)
	return err
}

// EndLoginSessions deletes every session of the tenant's login.
func (s *Store) EndLoginSessions(ctx context.Context, tenantID, loginID int64) error {
	if _, err := s.exec(ctx, `DELETE FROM console_sessions WHERE tenant_id = ? AND login_id = ?`, tenantID, loginID); err != nil {
		return fmt.Errorf("end sessions of login %d: %w", loginID, err)
	}
	return nil
}

// RecordSigninFailure records a failed sign-in under each key (a login, an
// IP address) and drops failures older than keep.
func (s *Store) RecordSigninFailure(ctx context.Context, at time.Time, keep time.Duration, keys ...string) error {
	for _, k := range keys {
		if _, err := s.exec(ctx, `INSERT INTO signin_failures (key, at) VALUES (?, ?)`, k, at.UTC()); err != nil {
			return fmt.Errorf("record sign-in failure: %w", err)
		}
	}
	_, err := s.exec(ctx, `DELETE FROM signin_failures WHERE at < ?`, at.Add(-keep).UTC())
	return err
}

// SigninFailures counts the failed sign-ins under key since since.
func (s *Store) SigninFailures(ctx context.Context, key string, since time.Time) (int, error) {
	var n int
	err := s.get(ctx, &n, `SELECT COUNT(*) FROM signin_failures WHERE key = ? AND at >= ?`, key, since.UTC())
	return n, err
}

// ClearSigninFailures forgets the failures under key (after a sign-in).
func (s *Store) ClearSigninFailures(ctx context.Context, key string) error {
	_, err := s.exec(ctx, `DELETE FROM signin_failures WHERE key = ?`, key)
	return err
}
