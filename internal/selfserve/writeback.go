package selfserve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"
	"unicode/utf8"

	"selfserve/connectors"
	"selfserve/internal/connection"
	"selfserve/internal/passwords"
	"selfserve/internal/rules"
	"selfserve/internal/store"
	"selfserve/worker"
)

// Write-back. A reset or unlock is a job (store.PasswordJob): recorded
// queued with its action and target, then carried out, then done or failed
// with the reason in plain words, and audited (end user, action, client
// address, result; never the password). For a direct connection (AD over
// LDAPS, Entra through Graph) the request that holds the password carries
// the job out at once, the password only in memory; an on-premises agent
// (local accounts, its own issue) would be handed the job and the password
// sealed to its key instead.
//
// Where each end user's password goes:
//   - AD: the end user's own AD connection.
//   - Entra ID, cloud-only: the Entra connection, through Graph.
//   - Entra ID, synced from on-premises (an immutable id): the linked AD
//     account, never Entra (Graph refuses such writes); refused when no AD
//     connection holds it.
//   - local: refused until the agent exists.
//   - manual: refused: there is no directory.
// Entra has no lockout an administrator can clear: an unlock there is
// refused with that reason.

// Directories open the password writers of stored connections.
type Directories interface {
	// Writer returns the password writer of conn, or an error saying why the
	// connection cannot write passwords.
	Writer(ctx context.Context, conn store.Connection) (connectors.PasswordWriter, error)
}

// ConnectionWriters opens stored connections (package connection) and
// keeps each open until the connection changes (a writer holds its
// directory session), so a storm of unlocks does not bind once per request.
type ConnectionWriters struct {
	Opener connection.Opener
	// Agents writes back through the agents of agent connections (nil:
	// such connections cannot write passwords).
	Agents interface {
		Writer(conn store.Connection) connectors.PasswordWriter
	}
	Logger *slog.Logger

	mu   sync.Mutex
	open map[int64]openWriter
}

type openWriter struct {
	updated time.Time
	w       connectors.PasswordWriter
}

// Writer implements Directories.
func (d *ConnectionWriters) Writer(ctx context.Context, conn store.Connection) (connectors.PasswordWriter, error) {
	if conn.Kind == connectors.KindAgent {
		if d.Agents == nil {
			return nil, fmt.Errorf("connection %q: agents are not served here: %w", conn.Name, connectors.ErrUnsupported)
		}
		return d.Agents.Writer(conn), nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if o, ok := d.open[conn.ID]; ok {
		if o.updated.Equal(conn.UpdatedAt) {
			return o.w, nil
		}
		o.w.Close()
		delete(d.open, conn.ID)
	}
	src, err := d.Opener.Open(conn, d.Logger)
	if err != nil {
		return nil, err
	}
	w, ok := src.(connectors.PasswordWriter)
	if !ok {
		src.Close()
		return nil, fmt.Errorf("connection %q (%s) cannot write passwords: %w", conn.Name, conn.Kind, connectors.ErrUnsupported)
	}
	if d.open == nil {
		d.open = map[int64]openWriter{}
	}
	d.open[conn.ID] = openWriter{updated: conn.UpdatedAt, w: w}
	return w, nil
}

// Close closes every open writer.
func (d *ConnectionWriters) Close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for id, o := range d.open {
		o.w.Close()
		delete(d.open, id)
	}
}

// route is where one end user's write-back goes.
type route struct {
	target store.JobTarget
	conn   *store.Connection
	acct   connectors.Account
	// refusal, when set, is why the write-back cannot be done.
	refusal string
}

// routeOf decides where u's password lives.
func (s *Service) routeOf(ctx context.Context, t store.Tenant, u store.EndUser) (route, error) {
	acct := connectors.Account{ExternalID: u.ExternalID, Username: u.Username, UPN: u.UPN, DisplayName: u.DisplayName}
	switch u.Source {
	case rules.SourceAD:
		return s.connectionRoute(ctx, t, u, store.TargetAD, acct)
	case rules.SourceAzure:
		if u.ImmutableID == "" {
			return s.connectionRoute(ctx, t, u, store.TargetAzure, acct)
		}
		ad, err := s.opt.Store.LinkedADAccount(ctx, t.ID, u.CustomerID, u.ImmutableID)
		if errors.Is(err, store.ErrNotFound) {
			return s.demoOr(route{target: store.TargetAD, acct: acct,
				refusal: "your account is synced from your company's on-premises Active Directory, which this service has no connection to; ask your IT provider"}), nil
		}
		if err != nil {
			return route{}, err
		}
		return s.connectionRoute(ctx, t, ad, store.TargetAD,
			connectors.Account{ExternalID: ad.ExternalID, Username: ad.Username, UPN: ad.UPN, DisplayName: ad.DisplayName})
	case rules.SourceLocal:
		return s.demoOr(route{target: store.TargetLocal, acct: acct,
			refusal: "your account is on a server of your company's own network, which self-serve cannot reach yet; ask your IT provider"}), nil
	default:
		return s.demoOr(route{target: store.TargetOutbox, acct: acct,
			refusal: "your account is not in a directory this service can change; ask your IT provider"}), nil
	}
}

func (s *Service) connectionRoute(ctx context.Context, t store.Tenant, u store.EndUser, target store.JobTarget, acct connectors.Account) (route, error) {
	if u.ConnectionID == nil {
		return s.demoOr(route{target: target, acct: acct, refusal: "your account has no directory connection; ask your IT provider"}), nil
	}
	c, err := s.connection(ctx, t.ID, *u.ConnectionID)
	if err != nil {
		return route{}, err
	}
	return route{target: target, conn: &c, acct: acct}, nil
}

// demoOr turns a refusal into a record in the demo's outbox, when the
// service runs the demo.
func (s *Service) demoOr(r route) route {
	if s.opt.DemoOutbox != "" {
		return route{target: store.TargetOutbox, acct: r.acct}
	}
	return r
}

// writer opens the route's directory writer.
func (s *Service) writer(ctx context.Context, r route) (connectors.PasswordWriter, error) {
	if s.opt.Directories == nil {
		return nil, fmt.Errorf("no directory writers are configured: %w", connectors.ErrUnsupported)
	}
	return s.opt.Directories.Writer(ctx, *r.conn)
}

// Done is the answer to a successful write-back.
type Done struct {
	Status string `json:"status"`
	// Note says what happened when it is not plain (the demo's outbox).
	Note string `json:"note,omitempty"`
}

// SetPassword uses grant (a verified reset) to set the end user's new
// password. A password the checks or the directory refuse answers 422
// password_policy with the rule, and leaves the grant usable.
func (s *Service) SetPassword(ctx context.Context, tenantName, grant, newPassword, ip string) (Done, error) {
	t, err := s.Tenant(ctx, tenantName)
	if err != nil {
		return Done{}, err
	}
	if err := checkPasswordInput(newPassword); err != nil {
		return Done{}, err
	}
	c, u, err := s.usableGrant(ctx, t, grant, store.PurposeReset)
	if err != nil {
		return Done{}, err
	}
	return s.writeBack(ctx, t, c, u, ip, newPassword)
}

// Unlock uses grant (a verified unlock) to clear the end user's lockout.
func (s *Service) Unlock(ctx context.Context, tenantName, grant, ip string) (Done, error) {
	t, err := s.Tenant(ctx, tenantName)
	if err != nil {
		return Done{}, err
	}
	c, u, err := s.usableGrant(ctx, t, grant, store.PurposeUnlock)
	if err != nil {
		return Done{}, err
	}
	return s.writeBack(ctx, t, c, u, ip, "")
}

func checkPasswordInput(pw string) error {
	switch {
	case pw == "":
		return fieldError("new_password", "new_password is required")
	case !utf8.ValidString(pw):
		return fieldError("new_password", "the new password is not valid UTF-8 text")
	case utf8.RuneCountInString(pw) > passwords.MaxLength:
		return fieldError("new_password", "the new password is longer than %d characters", passwords.MaxLength)
	}
	return nil
}

// writeBack carries out the grant's action: the checks, then the job
// (which claims the grant), the directory call, the audit and the notices.
// password is "" for an unlock.
func (s *Service) writeBack(ctx context.Context, t store.Tenant, c store.Challenge, u store.EndUser, ip, password string) (Done, error) {
	action := c.Purpose
	r, err := s.routeOf(ctx, t, u)
	if err != nil {
		return Done{}, err
	}
	var w connectors.PasswordWriter
	if r.refusal == "" && r.target != store.TargetOutbox {
		if w, err = s.writer(ctx, r); err != nil {
			s.log.Error("cannot open the directory for a write-back", "tenant_id", t.ID, "end_user_id", u.ID, "err", err)
			r.refusal = "the directory cannot be reached right now; try again later or ask your IT provider"
		}
	}
	if r.refusal == "" && action == store.PurposeUnlock && r.target == store.TargetAzure {
		r.refusal = "Microsoft Entra ID has no lockout to clear: it unlocks you by itself after a while, or reset your password instead"
	}
	if r.refusal == "" && action == store.PurposeReset {
		if re := s.checkPassword(ctx, w, r, password); re != nil {
			return Done{}, &Error{Status: 422, Code: "password_policy", Field: "new_password", Rule: string(re.Rule), Message: re.Message}
		}
	}
	// The job claims the grant. One this request carries out is recorded
	// running from the start; a refused one is recorded queued, then
	// failed. The start does not wait for the disk: the job's end, which
	// this request writes before it answers, commits durably and so makes
	// the start durable too (PostgreSQL writes its log in order). Only a
	// database crash in the few milliseconds between them loses the start,
	// and then the end cannot be written either: the job is not on record
	// (the directory alone tells whether it changed), and the grant may be
	// used once more, by its end user, within its 10 minutes.
	state := store.JobRunning
	if r.refusal != "" {
		state = store.JobQueued
	}
	job, err := s.opt.Store.Ephemeral().StartPasswordJob(ctx, store.PasswordJob{TenantID: t.ID, EndUserID: u.ID, ChallengeID: c.ID, Action: action,
		Target: r.target, ConnectionID: connID(r.conn), ExternalID: r.acct.ExternalID, ClientIP: ip, State: state}, s.opt.Now())
	if errors.Is(err, store.ErrGrantUnusable) {
		return Done{}, errBadGrant
	}
	if err != nil {
		return Done{}, err
	}
	if r.refusal != "" {
		// Refused before the directory: the grant is spent (asking again
		// cannot help), the job says why.
		s.finish(ctx, t, u, job, store.JobFailed, r.refusal)
		return Done{}, &Error{Status: 409, Code: "not_supported", Message: r.refusal}
	}
	var note string
	if r.target == store.TargetOutbox {
		note, err = s.recordInOutbox(job, u)
	} else if action == store.PurposeReset {
		err = w.SetPassword(ctx, r.acct, password)
	} else {
		err = w.Unlock(ctx, r.acct)
	}
	var rejected *connectors.PasswordRejectedError
	switch {
	case errors.As(err, &rejected):
		s.finish(ctx, t, u, job, store.JobFailed, "the directory refused the password: "+rejected.Reason)
		s.releaseGrant(ctx, c)
		return Done{}, &Error{Status: 422, Code: "password_policy", Field: "new_password", Rule: "directory", Message: rejected.Reason}
	case errors.Is(err, connectors.ErrUnsupported):
		s.finish(ctx, t, u, job, store.JobFailed, err.Error())
		return Done{}, &Error{Status: 409, Code: "not_supported", Message: "your directory does not allow this; ask your IT provider"}
	case errors.Is(err, connectors.ErrUnavailable):
		// An on-premises agent that is offline: refused at once, never
		// queued to run later with a stale password.
		s.finish(ctx, t, u, job, store.JobFailed, err.Error())
		s.releaseGrant(ctx, c)
		return Done{}, &Error{Status: 503, Code: "directory_unavailable", Message: "your IT provider's connector is offline; try again later or call your IT provider"}
	case err != nil:
		s.log.Error("write-back failed", "tenant_id", t.ID, "end_user_id", u.ID, "job_id", job.ID, "action", action, "err", err)
		s.finish(ctx, t, u, job, store.JobFailed, "the directory did not answer or refused the change: "+err.Error())
		s.releaseGrant(ctx, c)
		return Done{}, &Error{Status: 502, Code: "directory_error", Message: "your directory could not be changed right now; try again in a few minutes"}
	}
	s.finish(ctx, t, u, job, store.JobDone, "")
	return Done{Status: "done", Note: note}, nil
}

func connID(c *store.Connection) *int64 {
	if c == nil {
		return nil
	}
	return &c.ID
}

// finish records the job's end and its audit entry, and on success queues
// the notices that tell the end user.
func (s *Service) finish(ctx context.Context, t store.Tenant, u store.EndUser, job store.PasswordJob, state store.JobState, reason string) {
	ctx = context.WithoutCancel(ctx)
	type jobView struct {
		JobID    int64           `json:"job_id"`
		Action   string          `json:"action"`
		Target   store.JobTarget `json:"target"`
		Result   store.JobState  `json:"result"`
		Reason   string          `json:"reason,omitempty"`
		ClientIP string          `json:"client_ip"`
	}
	action, kind := "end_user.password_reset", rules.KindPasswordChanged
	if job.Action == store.PurposeUnlock {
		action, kind = "end_user.unlocked", rules.KindAccountUnlocked
	}
	end := store.JobEnd{State: state, Reason: reason, Audit: store.AuditRecord{
		TenantID:   t.ID,
		Actor:      endUserActor(u.ID),
		Action:     action,
		ObjectType: "end_user",
		ObjectID:   fmt.Sprint(u.ID),
		After:      jobView{job.ID, string(job.Action), job.Target, state, reason, job.ClientIP},
	}}
	if state == store.JobDone {
		end.Notices = func(done store.PasswordJob) []store.NewNotice {
			occasion := rules.ChangeOccasion(*done.FinishedAt, done.ID)
			var rows []store.NewNotice
			for _, ch := range []store.Channel{store.ChannelEmail, store.ChannelSMS} {
				rows = append(rows, store.NewNotice{TenantID: t.ID, EndUserID: u.ID, Kind: kind, Occasion: occasion, Channel: ch})
			}
			return rows
		}
	}
	_, refs, err := s.opt.Store.EndPasswordJob(ctx, job, end)
	if err != nil {
		s.log.Error("write-back job not recorded", "tenant_id", t.ID, "job_id", job.ID, "state", state, "err", err)
		return
	}
	s.log.Info("write-back job finished", "tenant_id", t.ID, "end_user_id", u.ID, "job_id", job.ID, "action", job.Action, "target", job.Target, "state", state, "client_ip", job.ClientIP)
	if s.opt.Notices == nil {
		return
	}
	for _, r := range refs {
		if _, err := s.opt.Notices.EnqueueSend(ctx, worker.NoticeRef{TenantID: r.TenantID, ID: r.ID, EndUserID: r.EndUserID, Kind: r.Kind}); err != nil {
			s.log.Warn("change notice not queued; the next dispatch sends it", "notice_id", r.ID, "err", err)
		}
	}
}

// recordInOutbox is the demo's write-back: there is no directory, so the
// change is recorded (never the password) in the outbox.
func (s *Service) recordInOutbox(job store.PasswordJob, u store.EndUser) (string, error) {
	what := "password reset"
	if job.Action == store.PurposeUnlock {
		what = "unlock"
	}
	body := fmt.Sprintf("Write-back: %s\nAccount: %s (end user %d, source %s)\nJob: %d\nDate: %s\n\n"+
		"The demo has no directory to write to: a real deployment would change the account in its directory now.\n"+
		"The new password is not recorded anywhere.\n",
		what, cmpString(u.UPN, u.Username), u.ID, u.Source, job.ID, s.opt.Now().UTC().Format(time.RFC1123Z))
	if err := os.MkdirAll(s.opt.DemoOutbox, 0o700); err != nil {
		return "", err
	}
	path := filepath.Join(s.opt.DemoOutbox, fmt.Sprintf("writeback-%d.txt", job.ID))
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		return "", err
	}
	return "the demo has no directory to write to: the change is recorded in " + path, nil
}
