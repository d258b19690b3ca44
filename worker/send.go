package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"selfserve/internal/admin/link"
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
	// PublicURL is the public listener's external base URL, which the
	// links in notices start with ("" leaves links out): expiry notices
	// link to the tenant's change page, lockouts to its unlock page, and
	// welcome emails to the enrolment page with a signed single-use token.
	PublicURL string
	// Links signs the welcome emails' tokens (nil: welcome emails carry
	// no link).
	Links *link.Signer
	// Now is the clock of the send-time check (default time.Now).
	Now func() time.Time
	// Lease is how long a claim holds (default SendLease).
	Lease time.Duration
	// Parallel is how many rows of a batch are sent at once (default 4).
	Parallel int
	Logger   *slog.Logger
	Metrics  *Metrics

	zones sync.Map // zone name → *time.Location
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

// Result is the outcome of one attempt at one ledger row.
type Result struct {
	Ref     NoticeRef
	Outcome Outcome
	// Err is why a failed or retried attempt failed, classified
	// (permanent: notify.ErrRejected, ErrMisconfigured; throttled:
	// *notify.ThrottledError; busy: the row is claimed elsewhere).
	Err error
}

// Send makes one attempt at each ledger row of refs: it claims them in one
// statement and reads their end users in another (side by side), then, row
// by row, checks, renders, sends and records the outcome (each row is
// marked sent as soon as its provider accepted it). final says no retry
// follows: a failure is then recorded as failed rather than pending. The
// error is for the batch as a whole (the database unreachable): nothing was
// sent then.
func (s *Sender) Send(ctx context.Context, refs []NoticeRef, final bool) ([]Result, error) {
	lease := s.Lease
	if lease <= 0 {
		lease = SendLease
	}
	keys := make([]store.NoticeKey, len(refs))
	users := make([]store.NoticeKey, 0, len(refs))
	for i, r := range refs {
		keys[i] = store.NoticeKey{TenantID: r.TenantID, ID: r.ID}
		if r.EndUserID != 0 {
			users = append(users, store.NoticeKey{TenantID: r.TenantID, ID: r.EndUserID})
		}
	}
	var contexts map[int64]store.NoticeContext
	var ctxErr error
	read := make(chan struct{})
	go func() {
		defer close(read)
		contexts, ctxErr = s.Store.NoticeContexts(ctx, users)
	}()
	claimed, err := s.Store.ClaimNotices(ctx, keys, lease)
	<-read
	if err != nil {
		return nil, err
	}
	if ctxErr != nil {
		// The rows are claimed: put them back for the retry.
		for _, n := range claimed {
			s.Store.ReleaseNotice(context.WithoutCancel(ctx), n.TenantID, n.ID, ctxErr.Error())
		}
		return nil, ctxErr
	}
	byID := make(map[int64]store.Notice, len(claimed))
	for _, n := range claimed {
		byID[n.ID] = n
	}
	results := make([]Result, len(refs))
	var unclaimed []store.NoticeKey
	for i, r := range refs {
		results[i].Ref = r
		if _, ok := byID[r.ID]; !ok {
			unclaimed = append(unclaimed, keys[i])
		}
	}
	state := map[int64]store.Notice{}
	if len(unclaimed) > 0 {
		rows, err := s.Store.Notices(ctx, unclaimed)
		if err != nil {
			return nil, err
		}
		for _, n := range rows {
			state[n.ID] = n
		}
	}
	// Rows go out side by side (each send waits on its provider).
	parallel := s.Parallel
	if parallel <= 0 {
		parallel = 4
	}
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for i, r := range refs {
		n, ok := byID[r.ID]
		if !ok {
			cur, exists := state[r.ID]
			switch {
			case !exists:
				results[i].Outcome, results[i].Err = OutcomeFailed, fmt.Errorf("notice %d of tenant %d: %w", r.ID, r.TenantID, store.ErrNotFound)
			case cur.Status == store.NoticeSending:
				results[i].Outcome = OutcomeRetry
				results[i].Err = &retryAfterError{after: lease, err: fmt.Errorf("notice %d (attempt %d since %s): %w", r.ID, cur.Attempts, cur.UpdatedAt.Format(time.RFC3339), store.ErrNoticeBusy)}
			default:
				results[i].Outcome = OutcomeDone
			}
			continue
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			nc, ok := contexts[n.EndUserID]
			if !ok || nc.EndUser.TenantID != n.TenantID {
				// Not in the payload (an older task) or not found: read it
				// alone.
				var err error
				if nc, err = s.Store.NoticeContextOf(ctx, n.TenantID, n.EndUserID); err != nil {
					results[i].Outcome, results[i].Err = s.fail(ctx, n, err, final)
					return
				}
			}
			results[i].Outcome, results[i].Err = s.attempt(ctx, n, nc, final)
		})
	}
	wg.Wait()
	return results, nil
}

// attempt sends one claimed row.
func (s *Sender) attempt(ctx context.Context, n store.Notice, nc store.NoticeContext, final bool) (Outcome, error) {
	log := taskLogger(ctx, s.Logger).With("notice_id", n.ID, "tenant_id", n.TenantID, "end_user_id", n.EndUserID, "kind", n.Kind, "channel", n.Channel, "attempt", n.Attempts)
	// The outcome is recorded whatever happens to the task's context.
	rec := context.WithoutCancel(ctx)
	at := s.now()
	loc := s.location(nc)
	due, reason := s.stillDue(nc, loc, n, at)
	ch := s.Channels[n.Channel]
	if reason == "" && ch == nil {
		reason = fmt.Sprintf("no %s provider is configured", n.Channel)
	}
	if reason != "" {
		if err := s.Store.MarkNoticeSkipped(rec, n.TenantID, n.ID, reason); err != nil {
			return OutcomeRetry, err
		}
		s.count(n, OutcomeSkipped)
		log.Info("notice skipped", "reason", reason)
		return OutcomeSkipped, nil
	}
	msg, err := s.message(nc, loc, n, due)
	if err != nil {
		return s.fail(ctx, n, err, true)
	}
	if err := deliver(ctx, log, ch, msg); err != nil {
		return s.fail(ctx, n, err, final)
	}
	if err := s.Store.MarkNoticeSent(rec, n.TenantID, n.ID, s.now()); err != nil {
		// The provider has it: a retry would send it again. Leave the row
		// sending (the documented duplicate window) and say so.
		log.Error("notice sent but not recorded; a retry may send it again", "err", err)
		return OutcomeRetry, err
	}
	if n.Kind == rules.KindWelcome {
		if err := s.Store.MarkWelcomeSent(rec, n.TenantID, n.EndUserID, s.now()); err != nil {
			log.Warn("welcome email sent but the end user's welcome stamp was not updated", "err", err)
		}
	}
	s.count(n, OutcomeSent)
	log.Debug("notice sent")
	return OutcomeSent, nil
}

// deliver hands msg to ch (notify.Deliver: a panic of the channel is a
// *notify.ProviderPanicError, logged with its stack) so that one faulty
// provider cannot take the worker process down: Send runs the channel in
// goroutines of its own, where asynq's recovery does not reach.
func deliver(ctx context.Context, log *slog.Logger, ch notify.Sender, msg notify.Message) error {
	err := notify.Deliver(ctx, ch, msg)
	if pe, ok := errors.AsType[*notify.ProviderPanicError](err); ok {
		log.Error("notice provider panicked; the attempt counts as failed", "err", err, "stack", string(pe.Stack))
	}
	return err
}

// location is the customer's time zone, loaded once per zone name.
func (s *Sender) location(nc store.NoticeContext) *time.Location {
	name := nc.Customer.TimeZone
	if name == "" {
		name = nc.Tenant.TimeZone
	}
	if loc, ok := s.zones.Load(name); ok {
		return loc.(*time.Location)
	}
	loc := nc.Customer.Location(nc.Tenant)
	s.zones.Store(name, loc)
	return loc
}

// fail records a failed attempt: failed for good when err is permanent or
// no retry follows, back to pending (with the reason) otherwise.
func (s *Sender) fail(ctx context.Context, n store.Notice, err error, final bool) (Outcome, error) {
	log := taskLogger(ctx, s.Logger).With("notice_id", n.ID, "tenant_id", n.TenantID, "kind", n.Kind, "channel", n.Channel, "attempt", n.Attempts)
	ctx = context.WithoutCancel(ctx)
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

// stillDue checks, at the instant at, that the notice must go out: it
// returns the rules' notice for it, or the reason it must not.
func (s *Sender) stillDue(nc store.NoticeContext, loc *time.Location, n store.Notice, at time.Time) (rules.Notice, string) {
	t, u := nc.Tenant.Rules(), nc.EndUser.Rules()
	if n.Kind == rules.KindPasswordChanged || n.Kind == rules.KindAccountUnlocked {
		// Told after a self-serve change whatever the end user's switches:
		// it is how they learn of a change they did not make.
		at, err := rules.ChangeTime(n.Occasion)
		switch {
		case err != nil:
			return rules.Notice{}, "malformed occasion " + n.Occasion
		case n.Channel == store.ChannelEmail && u.Email == "":
			return rules.Notice{}, string(rules.ReasonMissingEmail)
		case n.Channel == store.ChannelSMS && u.Mobile == "":
			return rules.Notice{}, string(rules.ReasonMissingMobile)
		}
		return rules.Notice{Kind: n.Kind, Occasion: n.Occasion, DueAt: at}, ""
	}
	if n.Kind == rules.KindWelcome {
		if r := rules.WelcomeReason(t, u); r != rules.ReasonNone {
			return rules.Notice{}, string(r)
		}
		if n.Channel != store.ChannelEmail {
			return rules.Notice{}, "welcome messages go by email only"
		}
		return rules.Notice{Kind: rules.KindWelcome, Occasion: n.Occasion}, ""
	}
	if r := rules.NoticesReason(t, u); r != rules.ReasonNone {
		return rules.Notice{}, string(r)
	}
	for _, due := range rules.Plan(t, loc, u, at) {
		if due.Kind == n.Kind && due.Occasion == n.Occasion {
			return due, ""
		}
	}
	switch n.Kind {
	case rules.KindLockout:
		if !u.LockedOut {
			return rules.Notice{}, "no longer due: the account was unlocked"
		}
		return rules.Notice{}, "no longer due: the account was locked again since"
	default:
		if u.PasswordNeverExpires || u.PasswordExpiresAt.IsZero() {
			return rules.Notice{}, "no longer due: the password no longer expires"
		}
		if today := at.In(loc).Format(rules.OccasionDateLayout); today != n.Occasion {
			return rules.Notice{}, fmt.Sprintf("no longer due: it was due on %s and it is now %s there", n.Occasion, today)
		}
		return rules.Notice{}, "no longer due: the password was changed"
	}
}

// message renders the notice due for its channel.
func (s *Sender) message(nc store.NoticeContext, loc *time.Location, n store.Notice, due rules.Notice) (notify.Message, error) {
	u := nc.EndUser
	d := notify.Data{
		Kind: n.Kind, Name: displayName(u), Account: account(u), Customer: nc.Customer.Name,
		DaysLeft: due.DaysLeft, ExpiresAt: due.ExpiresAt,
		Location: loc, Region: nc.Customer.DefaultRegion, Link: s.link(nc, n),
	}
	if n.Kind == rules.KindPasswordChanged || n.Kind == rules.KindAccountUnlocked {
		d.ChangedAt = due.DueAt
	}
	if n.Kind == rules.KindLockout && u.LockedOutAt != nil {
		d.LockedOutAt = *u.LockedOutAt
	}
	m := notify.Message{ID: fmt.Sprintf("notice-%d-%s", n.ID, n.Channel)}
	var err error
	switch n.Channel {
	case store.ChannelEmail:
		m.To = u.Email
		m.Subject, m.Body, err = notify.RenderEmail(d)
	default:
		m.To = u.Mobile
		m.Body, err = notify.RenderSMS(d)
	}
	if err != nil {
		return notify.Message{}, fmt.Errorf("%w: %w", errBadPayload, err)
	}
	return m, nil
}

// link is the self-serve page the notice points to.
func (s *Sender) link(nc store.NoticeContext, n store.Notice) string {
	if s.PublicURL == "" {
		return ""
	}
	base := strings.TrimSuffix(s.PublicURL, "/") + "/" + url.PathEscape(nc.Tenant.Name)
	switch n.Kind {
	case rules.KindExpiryReminder, rules.KindExpiryDay:
		return base + "/change"
	case rules.KindLockout:
		return base + "/unlock"
	case rules.KindWelcome:
		if s.Links == nil {
			return ""
		}
		tok := s.Links.Sign(nc.Tenant.ID, nc.EndUser.ID, link.PurposeConfirmMobile, s.now().Add(link.DefaultTTL))
		return base + "/enrol?t=" + url.QueryEscape(tok)
	}
	return ""
}

func (s *Sender) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
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
