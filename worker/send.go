package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"selfserve/internal/notify"
	"selfserve/internal/rules"
	"selfserve/internal/store"
)

// Sender makes attempts at ledger rows: it claims the row, checks with the
// domain rules at the send instant that the notice is still due and the end
// user still served, renders it, hands it to the row's channel and records
// the outcome.
type Sender struct {
	Store *store.Store
	// Channels deliver per channel; a channel without a sender skips its
	// rows with the reason.
	Channels map[store.Channel]notify.Sender
	// SelfServeURL is the link put in notices.
	SelfServeURL string
	// Now is the clock of the send-time check (default time.Now).
	Now func() time.Time
	// Lease is how long a claim holds (default SendLease).
	Lease   time.Duration
	Logger  *slog.Logger
	Metrics *Metrics
}

// Outcome is what an attempt did.
type Outcome string

// The outcomes.
const (
	OutcomeSent    Outcome = "sent"
	OutcomeSkipped Outcome = "skipped"
	OutcomeFailed  Outcome = "failed"
	OutcomeRetry   Outcome = "retry"
	OutcomeDone    Outcome = "done" // already final: nothing to do
)

// Send makes one attempt at the tenant's ledger row id. final says no retry
// follows: a failure is then recorded as failed rather than pending. The
// error is nil when the row is final (sent, skipped, or already final); a
// failure comes back classified (permanent: notify.ErrRejected or
// ErrMisconfigured; throttled: *notify.ThrottledError).
func (s *Sender) Send(ctx context.Context, tenantID, id int64, final bool) (Outcome, error) {
	lease := s.Lease
	if lease <= 0 {
		lease = SendLease
	}
	n, ok, err := s.Store.ClaimNotice(ctx, tenantID, id, lease)
	if errors.Is(err, store.ErrNoticeBusy) {
		return OutcomeRetry, &retryAfterError{after: lease, err: err}
	}
	if err != nil {
		return OutcomeRetry, err
	}
	if !ok {
		return OutcomeDone, nil
	}
	log := s.logger().With("notice_id", n.ID, "tenant_id", tenantID, "end_user_id", n.EndUserID, "kind", n.Kind, "channel", n.Channel, "attempt", n.Attempts)
	// The outcome is recorded whatever happens to the task's context.
	rec := context.WithoutCancel(ctx)

	nc, err := s.Store.NoticeContextOf(ctx, tenantID, n.EndUserID)
	if err != nil {
		return s.fail(rec, log, n, err, final)
	}
	at := s.now()
	if reason := s.stillDue(nc, n, at); reason != "" {
		if err := s.Store.MarkNoticeSkipped(rec, tenantID, n.ID, reason); err != nil {
			return OutcomeRetry, err
		}
		s.count(n, OutcomeSkipped)
		log.Info("notice skipped", "reason", reason)
		return OutcomeSkipped, nil
	}
	ch := s.Channels[n.Channel]
	if ch == nil {
		reason := fmt.Sprintf("no %s provider is configured", n.Channel)
		if err := s.Store.MarkNoticeSkipped(rec, tenantID, n.ID, reason); err != nil {
			return OutcomeRetry, err
		}
		s.count(n, OutcomeSkipped)
		log.Warn("notice skipped", "reason", reason)
		return OutcomeSkipped, nil
	}
	msg, err := s.message(nc, n, at)
	if err != nil {
		return s.fail(rec, log, n, err, true)
	}
	if err := ch.Send(ctx, msg); err != nil {
		return s.fail(rec, log, n, err, final)
	}
	if err := s.Store.MarkNoticeSent(rec, tenantID, n.ID, s.now()); err != nil {
		// The provider has it: a retry would send it again. Leave the row
		// sending (the documented duplicate window) and say so.
		log.Error("notice sent but not recorded; a retry may send it again", "err", err)
		return OutcomeRetry, err
	}
	if n.Kind == rules.KindWelcome {
		if err := s.Store.MarkWelcomeSent(rec, tenantID, n.EndUserID, s.now()); err != nil {
			log.Warn("welcome email sent but the end user's welcome stamp was not updated", "err", err)
		}
	}
	s.count(n, OutcomeSent)
	log.Info("notice sent")
	return OutcomeSent, nil
}

// fail records a failed attempt: failed for good when err is permanent or
// no retry follows, back to pending (with the reason) otherwise.
func (s *Sender) fail(ctx context.Context, log *slog.Logger, n store.Notice, err error, final bool) (Outcome, error) {
	if errors.Is(err, context.Canceled) && !final {
		// Shutdown: the task goes back to the queue; so does the row.
		if rerr := s.Store.ReleaseNotice(ctx, n.TenantID, n.ID, "interrupted: "+err.Error()); rerr != nil {
			log.Warn("could not release an interrupted notice; it is re-queued after the lease", "err", rerr)
		}
		return OutcomeRetry, err
	}
	if IsPermanent(err) || final {
		if merr := s.Store.MarkNoticeFailed(ctx, n.TenantID, n.ID, err.Error()); merr != nil {
			return OutcomeRetry, errors.Join(err, merr)
		}
		s.count(n, OutcomeFailed)
		log.Warn("notice failed", "err", err, "permanent", IsPermanent(err))
		return OutcomeFailed, err
	}
	if rerr := s.Store.ReleaseNotice(ctx, n.TenantID, n.ID, err.Error()); rerr != nil {
		return OutcomeRetry, errors.Join(err, rerr)
	}
	s.count(n, OutcomeRetry)
	log.Info("notice attempt failed; it will be retried", "err", err)
	return OutcomeRetry, err
}

// stillDue returns why the notice must not go out at the instant at, or ""
// when it must.
func (s *Sender) stillDue(nc store.NoticeContext, n store.Notice, at time.Time) string {
	t, u := nc.Tenant.Rules(), nc.EndUser.Rules()
	if n.Kind == rules.KindWelcome {
		switch r := rules.InactiveReason(t, u); r {
		case rules.ReasonNone, rules.ReasonMissingMobile:
			// A welcome email is how a missing mobile gets confirmed.
		default:
			return string(r)
		}
		if n.Channel != store.ChannelEmail {
			return "welcome messages go by email only"
		}
		return ""
	}
	if r := rules.InactiveReason(t, u); r != rules.ReasonNone {
		return string(r)
	}
	loc := nc.Customer.Location(nc.Tenant)
	for _, due := range rules.Plan(t, loc, u, at) {
		if due.Kind == n.Kind && due.Occasion == n.Occasion {
			return ""
		}
	}
	switch n.Kind {
	case rules.KindLockout:
		if !u.LockedOut {
			return "no longer due: the account was unlocked"
		}
		return "no longer due: the account was locked again since"
	default:
		if u.PasswordNeverExpires || u.PasswordExpiresAt.IsZero() {
			return "no longer due: the password no longer expires"
		}
		if today := at.In(loc).Format(rules.OccasionDateLayout); today != n.Occasion {
			return fmt.Sprintf("no longer due: it was due on %s and it is now %s there", n.Occasion, today)
		}
		return "no longer due: the password was changed"
	}
}

// message renders the notice for its channel at the instant at.
func (s *Sender) message(nc store.NoticeContext, n store.Notice, at time.Time) (notify.Message, error) {
	u := nc.EndUser
	d := notify.Data{
		Kind: n.Kind, Name: displayName(u), Account: account(u), Customer: nc.Customer.Name,
		Location: nc.Customer.Location(nc.Tenant), Region: nc.Customer.DefaultRegion, Link: s.SelfServeURL,
	}
	for _, due := range rules.Plan(nc.Tenant.Rules(), d.Location, u.Rules(), at) {
		if due.Kind == n.Kind && due.Occasion == n.Occasion {
			d.DaysLeft, d.ExpiresAt = due.DaysLeft, due.ExpiresAt
		}
	}
	if n.Kind == rules.KindLockout && u.LockedOutAt != nil {
		d.LockedOutAt = *u.LockedOutAt
	}
	r, err := notify.Render(d)
	if err != nil {
		return notify.Message{}, fmt.Errorf("%w: %w", errBadPayload, err)
	}
	m := notify.Message{ID: fmt.Sprintf("notice-%d-%s", n.ID, n.Channel)}
	switch n.Channel {
	case store.ChannelEmail:
		m.To, m.Subject, m.Body = u.Email, r.Subject, r.Email
	default:
		m.To, m.Body = u.Mobile, r.SMS
	}
	return m, nil
}

func (s *Sender) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Sender) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger
}

func (s *Sender) count(n store.Notice, o Outcome) {
	if s.Metrics != nil {
		s.Metrics.Notices.WithLabelValues(string(n.Kind), string(n.Channel), string(o)).Inc()
	}
}

func displayName(u store.EndUser) string {
	switch {
	case u.DisplayName != "":
		return u.DisplayName
	case u.FirstName != "" || u.LastName != "":
		return u.FirstName + " " + u.LastName
	default:
		return u.Username
	}
}

func account(u store.EndUser) string {
	if u.UPN != "" {
		return u.UPN
	}
	return u.Username
}
