// Package selfserve is the end users' self-serve flow: the service behind
// the public listener's JSON API (/self-serve/v1/{tenant}/…, also used by
// the mobile app) and its web pages, which call the same methods.
//
// The flow: an end user names their login and what they want (reset or
// unlock); a challenge sends a 6-digit code to the mobile on file (and one
// to the email, where the tenant's verification is sms+email); the right
// codes yield a grant, single use and valid 10 minutes, bound to the end
// user and the purpose; the grant buys one password reset or one unlock,
// written back to the directory as a job. Enrolment (the welcome email's
// signed link) proves a mobile number with a code before storing it.
//
// What no one learns: whether a login exists or is served. An unknown
// login, an inactive end user (rules.InactiveReason decides), a disabled
// account and a real one get the same status, the same body shape (a decoy
// challenge, with made-up masked destinations, stable per login) and a
// similar response time (codes are sent in the background, and the answer
// is held to a floor). Only an active end user's phone ever receives a
// code. Codes and grants are never logged, stored in clear or audited;
// passwords are held in memory only for the directory call.
package selfserve

import (
	"context"
	"crypto/hmac"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"

	"selfserve/internal/admin/link"
	"selfserve/internal/notify"
	"selfserve/internal/rules"
	"selfserve/internal/store"
	"selfserve/worker"
)

// The flow's lifetimes and limits.
const (
	// CodeTTL is how long a challenge's codes may be tried.
	CodeTTL = 10 * time.Minute
	// GrantTTL is how long a grant may be used.
	GrantTTL = 10 * time.Minute
	// MaxAttempts wrong codes void a challenge.
	MaxAttempts = 5
	// DefaultChallengeFloor is the least time a challenge request takes, so
	// that real and decoy challenges cannot be told apart by time.
	DefaultChallengeFloor = 300 * time.Millisecond
	// DefaultTenantTTL is how long a tenant read by name (and a directory
	// connection) is reused: a change to a tenant's self-serve settings or
	// to a connection reaches the public listener within it.
	DefaultTenantTTL = 2 * time.Second
	// maxRemembered bounds the tenants (and the connections) remembered.
	maxRemembered = 4096
	// maxLoginLength bounds what a login may be.
	maxLoginLength = 256
)

// NoticeQueue queues ledger rows for sending (worker.Client).
type NoticeQueue interface {
	EnqueueSend(ctx context.Context, ref worker.NoticeRef) (bool, error)
}

// Options configure a Service.
type Options struct {
	Store *store.Store
	// Redis holds the rate limits' counters.
	Redis redis.UniversalClient
	// EncryptionKey derives the key the codes are hashed under.
	EncryptionKey []byte
	// Links checks the welcome email's signed links (enrolment).
	Links *link.Signer
	// Directories open the password writers of stored connections.
	Directories Directories
	// Channels deliver codes (SMS, email): the same senders as notices, so
	// SELFSERVE_OUTBOX sends them to the outbox.
	Channels map[store.Channel]notify.Sender
	// Notices queues the notices that follow a reset or unlock; nil leaves
	// them pending in the ledger for the next dispatch.
	Notices NoticeQueue
	// DemoOutbox, when set, is where write-backs to end users without a
	// directory to write to (the demo's file imports) are recorded instead
	// of being refused.
	DemoOutbox string
	// TrustedProxies may set X-Forwarded-For (see clientIP).
	TrustedProxies []netip.Prefix
	// Limits are the challenge rate limits (defaults in Limits).
	Limits Limits
	// ChallengeFloor is the least time a challenge request takes (default
	// DefaultChallengeFloor; negative: none, for benchmarks).
	ChallengeFloor time.Duration
	// TenantTTL is how long a tenant read by name (and a directory
	// connection) is reused, measured on Now (default DefaultTenantTTL;
	// negative: read on every request).
	TenantTTL time.Duration
	// PublicURL is the external base URL pages link to (no trailing slash).
	PublicURL string
	Now       func() time.Time
	Logger    *slog.Logger
}

// Service is the self-serve flow. It is safe for concurrent use.
type Service struct {
	opt    Options
	keys   keys
	limit  limiter
	log    *slog.Logger
	sends  chan outgoing
	stop   chan struct{}
	wg     sync.WaitGroup
	policy policyCache
	// tenants and connections remember what the store said for
	// Options.TenantTTL: every request of a reset names its tenant, and
	// each write-back needs its connection.
	tenants     recent[string, store.Tenant]
	connections recent[[2]int64, store.Connection]
}

// recent remembers values read from the store, each for a while, at most
// maxRemembered of them (when full, it forgets them all).
type recent[K comparable, V any] struct {
	mu      sync.Mutex
	entries map[K]recentValue[V]
}

// recentValue is a value as read at a time.
type recentValue[V any] struct {
	v  V
	at time.Time
}

// get returns the value of k if it was read less than ttl before now.
func (r *recent[K, V]) get(k K, now time.Time, ttl time.Duration) (V, bool) {
	r.mu.Lock()
	e, ok := r.entries[k]
	r.mu.Unlock()
	if !ok || now.Before(e.at) || now.Sub(e.at) >= ttl {
		var zero V
		return zero, false
	}
	return e.v, true
}

// put remembers v, read at now, as the value of k.
func (r *recent[K, V]) put(k K, v V, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.entries == nil || len(r.entries) >= maxRemembered {
		r.entries = map[K]recentValue[V]{}
	}
	r.entries[k] = recentValue[V]{v: v, at: now}
}

// New returns the service; Close stops its background sender.
func New(o Options) (*Service, error) {
	if o.Store == nil || o.Redis == nil {
		return nil, errors.New("self-serve: a store and Redis are required")
	}
	k, err := deriveKeys(o.EncryptionKey)
	if err != nil {
		return nil, err
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.ChallengeFloor == 0 {
		o.ChallengeFloor = DefaultChallengeFloor
	}
	if o.TenantTTL == 0 {
		o.TenantTTL = DefaultTenantTTL
	}
	o.Limits = o.Limits.withDefaults()
	o.PublicURL = strings.TrimSuffix(o.PublicURL, "/")
	s := &Service{opt: o, keys: k, limit: limiter{rd: o.Redis}, log: o.Logger.With("component", "self-serve"),
		sends: make(chan outgoing, 1024), stop: make(chan struct{})}
	s.policy.entries = map[int64]policyEntry{}
	for range 4 {
		s.wg.Go(s.deliverLoop)
	}
	s.wg.Go(s.sweepLoop)
	return s, nil
}

// Close stops the background sender after the codes queued are sent, and
// the sweeper.
func (s *Service) Close() {
	close(s.sends)
	close(s.stop)
	s.wg.Wait()
}

// sweepEvery is how often expired challenges are deleted; sweepAfter how
// long after their expiry (every replica sweeps: the DELETE is idempotent).
const (
	sweepEvery = 10 * time.Minute
	sweepAfter = time.Hour
)

// sweepLoop deletes challenges (and their spent grants) an hour after
// they expired.
func (s *Service) sweepLoop() {
	t := time.NewTicker(sweepEvery)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			if n, err := s.opt.Store.DeleteExpiredChallenges(ctx, s.opt.Now().Add(-sweepAfter)); err != nil {
				s.log.Warn("expired challenges not deleted", "err", err)
			} else if n > 0 {
				s.log.Debug("expired challenges deleted", "count", n)
			}
			cancel()
		}
	}
}

// outgoing is a code on its way: the message and its channel.
type outgoing struct {
	channel store.Channel
	msg     notify.Message
}

// deliverLoop sends queued codes. A code is sent in the background so that
// the request's answer does not wait on the provider (which would tell
// real challenges from decoys by time); a code that cannot be sent is
// logged (without the code) and the end user asks again.
func (s *Service) deliverLoop() {
	for o := range s.sends {
		sender := s.opt.Channels[o.channel]
		if sender == nil {
			s.log.Error("no channel configured to send a verification code", "channel", o.channel, "message", o.msg.ID)
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := notify.Deliver(ctx, sender, o.msg)
		if pe, ok := errors.AsType[*notify.ProviderPanicError](err); ok {
			s.log.Error("verification code not sent: the provider panicked", "channel", o.channel, "message", o.msg.ID, "err", err, "stack", string(pe.Stack))
		} else if err != nil {
			s.log.Warn("verification code not sent", "channel", o.channel, "message", o.msg.ID, "err", err)
		}
		cancel()
	}
}

func (s *Service) enqueueCode(o outgoing) {
	select {
	case s.sends <- o:
	default:
		s.log.Error("verification code dropped: the send queue is full", "channel", o.channel, "message", o.msg.ID)
	}
}

// Error is a refusal of the flow, in the API's terms: an HTTP status, a
// code, a message for the end user and the field at fault.
type Error struct {
	Status  int
	Code    string
	Message string
	Field   string
	// Rule names the password rule broken (password_policy).
	Rule string
	// RetryAfter is set on rate limits.
	RetryAfter time.Duration
	// AttemptsLeft is set on a wrong code.
	AttemptsLeft *int
}

// Error implements error.
func (e *Error) Error() string { return e.Code + ": " + e.Message }

func fieldError(field, format string, args ...any) *Error {
	return &Error{Status: 400, Code: "invalid_field", Field: field, Message: fmt.Sprintf(format, args...)}
}

var (
	errNoSelfServe   = &Error{Status: 404, Code: "not_found", Message: "there is no self-serve at this address; check the link your IT provider gave you"}
	errDeadChallenge = &Error{Status: 410, Code: "challenge_expired", Message: "this code has expired or was tried too many times; ask for a new one"}
	errBadGrant      = &Error{Status: 401, Code: "invalid_grant", Field: "grant", Message: "your verification has expired or was already used; start again"}
)

// Tenant returns the tenant named name if its end users may self-serve
// (its subscription includes self-serve and the tenant switch is on).
// Anything else is the same not-found answer. A tenant read is reused for
// Options.TenantTTL: every request of a reset names its tenant.
func (s *Service) Tenant(ctx context.Context, name string) (store.Tenant, error) {
	if name == "" || len(name) > 200 || !utf8.ValidString(name) {
		return store.Tenant{}, errNoSelfServe
	}
	t, err := s.tenantByName(ctx, name)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return t, errNoSelfServe
	case err != nil:
		return t, err
	case !t.Subscription.AllowsSelfServe() || !t.SelfServe:
		return t, errNoSelfServe
	}
	return t, nil
}

// tenantByName reads the tenant named name, or reuses a read younger than
// the TTL. Only tenants that exist are remembered.
func (s *Service) tenantByName(ctx context.Context, name string) (store.Tenant, error) {
	now := s.opt.Now()
	if t, ok := s.tenants.get(name, now, s.opt.TenantTTL); ok {
		return t, nil
	}
	t, err := s.opt.Store.TenantByName(ctx, name)
	if err == nil && s.opt.TenantTTL > 0 {
		s.tenants.put(name, t, now)
	}
	return t, err
}

// connection reads the tenant's connection id, or reuses a read younger
// than the TTL.
func (s *Service) connection(ctx context.Context, tenantID, id int64) (store.Connection, error) {
	now, key := s.opt.Now(), [2]int64{tenantID, id}
	if c, ok := s.connections.get(key, now, s.opt.TenantTTL); ok {
		return c, nil
	}
	c, err := s.opt.Store.Connection(ctx, tenantID, id)
	if err == nil && s.opt.TenantTTL > 0 {
		s.connections.put(key, c, now)
	}
	return c, err
}

// Factor is one channel a code went to, with the masked destination.
type Factor struct {
	Channel string `json:"channel"`
	To      string `json:"to"`
}

// ChallengeStarted is the answer to a challenge request: the same shape
// whatever the login.
type ChallengeStarted struct {
	ChallengeID string   `json:"challenge_id"`
	Factors     []Factor `json:"factors"`
}

// StartChallenge sends codes to the end user login names, if that end user
// is active, for purpose (reset or unlock); for any other login it makes a
// decoy that answers the same. ip is the client's address.
func (s *Service) StartChallenge(ctx context.Context, tenantName, login string, purpose store.ChallengePurpose, ip string) (ChallengeStarted, error) {
	start := time.Now()
	t, err := s.Tenant(ctx, tenantName)
	if err != nil {
		return ChallengeStarted{}, err
	}
	if purpose != store.PurposeReset && purpose != store.PurposeUnlock {
		return ChallengeStarted{}, fieldError("purpose", "purpose must be \"reset\" or \"unlock\"")
	}
	login = strings.TrimSpace(login)
	if err := checkLogin(login); err != nil {
		return ChallengeStarted{}, err
	}
	if err := s.rateLimit(ctx, t.ID, login, ip); err != nil {
		return ChallengeStarted{}, err
	}
	u, active, err := s.findActive(ctx, t, login)
	if err != nil {
		return ChallengeStarted{}, err
	}
	out, err := s.newChallenge(ctx, t, u, active, login, purpose, "", "")
	if err != nil {
		return ChallengeStarted{}, err
	}
	s.log.Info("challenge started", "tenant_id", t.ID, "purpose", purpose, "client_ip", ip)
	s.holdFloor(start)
	return out, nil
}

// holdFloor waits until the challenge request has taken the floor time.
func (s *Service) holdFloor(start time.Time) {
	if s.opt.ChallengeFloor > 0 {
		if d := s.opt.ChallengeFloor - time.Since(start); d > 0 {
			time.Sleep(d)
		}
	}
}

func checkLogin(login string) error {
	switch {
	case login == "":
		return fieldError("login", "login is required: your email address, sign-in name or user name")
	case len(login) > maxLoginLength:
		return fieldError("login", "login is longer than %d characters", maxLoginLength)
	case !utf8.ValidString(login):
		return fieldError("login", "login is not valid UTF-8 text")
	case strings.IndexFunc(login, unicode.IsControl) >= 0:
		return fieldError("login", "login contains control characters")
	}
	return nil
}

// rateLimit counts a challenge against the client address and the login.
func (s *Service) rateLimit(ctx context.Context, tenantID int64, login, ip string) error {
	l := s.opt.Limits
	ok, after, err := s.limit.allow(ctx, []limit{
		{limitKey("ip", 0, ip), l.PerIP, l.IPWindow},
		{limitKey("login", tenantID, strings.ToLower(login)), l.PerLogin, l.LoginWindow},
	})
	if err != nil {
		return err
	}
	if !ok {
		return &Error{Status: 429, Code: "rate_limited", RetryAfter: after,
			Message: fmt.Sprintf("too many requests; try again in %s", roundUp(after))}
	}
	return nil
}

func roundUp(d time.Duration) string {
	if d < time.Minute {
		return fmt.Sprintf("%d seconds", int(d.Seconds())+1)
	}
	return fmt.Sprintf("%d minutes", int(d.Minutes())+1)
}

// findActive finds the one present end user login names and reports
// whether they are served (an ambiguous login names nobody).
func (s *Service) findActive(ctx context.Context, t store.Tenant, login string) (store.EndUser, bool, error) {
	us, err := s.opt.Store.Ephemeral().FindEndUsersByLogin(ctx, t.ID, login, 2)
	if err != nil || len(us) != 1 {
		return store.EndUser{}, false, err
	}
	u := us[0]
	return u, rules.Active(t.Rules(), u.Rules()), nil
}

// newChallenge stores a challenge and queues its codes: to u when active,
// to nobody (a decoy) otherwise. mobile and nonce are set for enrolment.
//
// Every answer lists the tenant policy's factors, whoever asks: a factor
// only u must prove (the email of a privileged end user let in with two
// factors) is stored as required but its code is sent, and the factor
// named, only once the first ones are proven (Verify), so that the
// challenge's answer does not tell a privileged account from any other.
func (s *Service) newChallenge(ctx context.Context, t store.Tenant, u store.EndUser, active bool, login string, purpose store.ChallengePurpose, mobile, nonce string) (ChallengeStarted, error) {
	now := s.opt.Now()
	c := store.Challenge{ID: randomToken(16), TenantID: t.ID, Purpose: purpose, Mobile: mobile, LinkNonce: nonce,
		ExpiresAt: now.Add(CodeTTL), CreatedAt: now}
	required, upfront := factorsOf(t, u, active), factorsOf(t, u, false)
	if purpose == store.PurposeEnrol {
		required, upfront = []string{"sms"}, []string{"sms"}
	}
	c.Factors = strings.Join(required, ",")
	out := ChallengeStarted{ChallengeID: c.ID}
	var msgs []outgoing
	decoyMobile, decoyEmail := s.keys.decoyDestinations(t.ID, login)
	for _, ch := range upfront {
		f := Factor{Channel: ch}
		switch {
		case active:
			code := newCode()
			h, to := s.keys.codeHash(c.ID, ch, code), destination(u, ch, mobile)
			if ch == "sms" {
				c.SMSCodeHash = h
			} else {
				c.EmailCodeHash = h
			}
			f.To = maskDestination(ch, to)
			msgs = append(msgs, outgoing{channel: store.Channel(ch), msg: codeMessage(c.ID, ch, to, code, t.Name, purpose)})
		case ch == "sms":
			f.To = decoyMobile
		default:
			f.To = decoyEmail
		}
		out.Factors = append(out.Factors, f)
	}
	if active {
		c.EndUserID = &u.ID
	}
	// A challenge lost in a crash costs the end user one more ask: its
	// commit does not wait for the disk.
	if err := s.opt.Store.Ephemeral().CreateChallenge(ctx, c); err != nil {
		return ChallengeStarted{}, err
	}
	for _, m := range msgs {
		s.enqueueCode(m)
	}
	return out, nil
}

// destination is where u's code on channel goes (mobile, when set, is the
// number being enrolled).
func destination(u store.EndUser, channel, mobile string) string {
	if channel == "sms" {
		return cmpString(mobile, u.Mobile)
	}
	return u.Email
}

// maskDestination is the destination as the answer shows it.
func maskDestination(channel, to string) string {
	if channel == "sms" {
		return maskMobile(to)
	}
	return maskEmail(to)
}

// offered reports whether a code was sent on channel for c (for a decoy:
// whether its answer named the channel). A factor not yet asked for (see
// newChallenge) is not offered: trying it answers as on any challenge that
// never named it.
func offered(c store.Challenge, channel string) bool {
	if !slices.Contains(c.FactorList(), channel) {
		return false
	}
	return c.EndUserID == nil || c.CodeHash(channel) != nil
}

// factorsOf is the channels a challenge must verify: the rules' for an
// active end user, the tenant's for a decoy.
func factorsOf(t store.Tenant, u store.EndUser, active bool) []string {
	if !active {
		u = store.EndUser{Enabled: true, SelfServe: true, Email: "-", Mobile: "-"}
	}
	var out []string
	for _, f := range rules.RequiredFactors(t.Rules(), u.Rules()) {
		out = append(out, string(f))
	}
	if len(out) == 0 {
		out = []string{string(rules.FactorSMS)}
	}
	return out
}

func cmpVerification(v rules.Verification) rules.Verification {
	if v.Valid() {
		return v
	}
	return rules.VerifySMS
}

func cmpString(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// codeMessage is the SMS or email carrying a code; the code is the only
// 6-digit number in it.
func codeMessage(challengeID, channel, to, code, tenant string, purpose store.ChallengePurpose) notify.Message {
	what := map[store.ChallengePurpose]string{
		store.PurposeReset: "reset your password", store.PurposeUnlock: "unlock your account", store.PurposeEnrol: "confirm your mobile number",
	}[purpose]
	m := notify.Message{ID: "code-" + challengeID + "-" + channel, To: to}
	if channel == "sms" {
		m.Body = fmt.Sprintf("Your code to %s is %s. It expires in ten minutes. Never share it: %s will not ask for it.", what, code, tenant)
		return m
	}
	m.Subject = "Your verification code"
	m.Body = fmt.Sprintf("Hello,\n\nYour code to %s is %s.\n\nIt expires in ten minutes. If you did not ask for it, ignore this message; never share the code.\n", what, code)
	return m
}

// Verified is the answer to a right code: the grant once every factor is
// verified (with the end user's policy), else the channels still to
// verify, with the codes this answer sent (a factor asked for only now);
// Enrolled for an enrolment.
type Verified struct {
	Grant     string     `json:"grant,omitempty"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	Policy    *Policy    `json:"policy,omitempty"`
	Remaining []string   `json:"remaining,omitempty"`
	Factors   []Factor   `json:"factors,omitempty"`
	Enrolled  bool       `json:"enrolled,omitempty"`
	// user is the verified end user (for the policy).
	user store.EndUser
}

// Verify checks the code sent to channel for the challenge. A wrong code
// counts against the challenge (the fifth voids it) and answers with the
// attempts left; a dead or unknown challenge answers 410.
func (s *Service) Verify(ctx context.Context, tenantName, challengeID, channel, code, ip string) (Verified, error) {
	t, err := s.Tenant(ctx, tenantName)
	if err != nil {
		return Verified{}, err
	}
	if channel != "sms" && channel != "email" {
		return Verified{}, fieldError("channel", "channel must be \"sms\" or \"email\"")
	}
	code = strings.TrimSpace(code)
	if !validCode(code) {
		return Verified{}, fieldError("code", "the code is the 6 digits we sent you")
	}
	if !validChallengeID(challengeID) {
		return Verified{}, errDeadChallenge
	}
	now := s.opt.Now()
	// The common case first, in one statement: the right code of the last
	// factor of a reset or unlock. It does not wait for the disk: a crash
	// can only lose a grant, and the end user verifies again (resets and
	// unlocks themselves commit durably).
	grant, g := s.newGrant()
	proved, err := s.opt.Store.Ephemeral().ProveLastFactor(ctx, t.ID, challengeID, channel, s.keys.codeHash(challengeID, channel, code), now, g)
	if err == nil {
		u, err := s.recordAccess(ctx, s.opt.Store.Ephemeral(), t, proved.EndUser, ip)
		if err != nil {
			return Verified{}, err
		}
		return s.withPolicy(ctx, t, proved.Challenge, Verified{Grant: grant, ExpiresAt: &g.ExpiresAt, user: u}), nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return Verified{}, err
	}
	c, err := s.opt.Store.Challenge(ctx, t.ID, challengeID)
	if errors.Is(err, store.ErrNotFound) {
		return Verified{}, errDeadChallenge
	}
	if err != nil {
		return Verified{}, err
	}
	if !c.Live(now) {
		return Verified{}, errDeadChallenge
	}
	if !offered(c, channel) {
		return Verified{}, fieldError("channel", "no code was sent by %s for this challenge", channel)
	}
	if c.Verified(channel) {
		return Verified{}, &Error{Status: 400, Code: "code_used", Field: "code", Message: "this code was already used; enter the other code"}
	}
	want := c.CodeHash(channel)
	if want == nil {
		want = make([]byte, 32) // a decoy: no code is ever right
	}
	if !hmac.Equal(s.keys.codeHash(c.ID, channel, code), want) || c.EndUserID == nil {
		n, err := s.opt.Store.FailChallengeAttempt(ctx, t.ID, c.ID, MaxAttempts, now)
		if errors.Is(err, store.ErrChallengeDead) {
			return Verified{}, errDeadChallenge
		}
		if err != nil {
			return Verified{}, err
		}
		left := max(MaxAttempts-n, 0)
		return Verified{}, &Error{Status: 400, Code: "wrong_code", Field: "code", AttemptsLeft: &left,
			Message: fmt.Sprintf("that code is not right; %d attempts left", left)}
	}
	// A right code that is not the last factor, or an enrolment's: the
	// code, the next codes asked for (or the stored mobile) and, should the
	// other factors have been proven meanwhile, the grant commit together.
	// An enrolment stores the mobile: that commit waits for the disk.
	var out Verified
	var msgs []outgoing
	inTx := s.opt.Store.EphemeralTx
	if c.Purpose == store.PurposeEnrol {
		inTx = s.opt.Store.InTx
	}
	err = inTx(ctx, func(tx *store.Store) error {
		c, err := tx.VerifyChallengeFactor(ctx, t.ID, c.ID, channel, now, nil)
		if err != nil {
			return err
		}
		for _, f := range c.FactorList() {
			if !c.Verified(f) {
				out.Remaining = append(out.Remaining, f)
			}
		}
		switch {
		case len(out.Remaining) > 0:
			out.Factors, msgs, err = s.askNextFactors(ctx, tx, t, c)
			return err
		case c.Purpose == store.PurposeEnrol:
			out.Enrolled = true
			return s.completeEnrolment(ctx, tx, t, c, ip)
		}
		out, err = s.issueGrant(ctx, tx, t, c, ip)
		return err
	})
	if errors.Is(err, store.ErrChallengeDead) {
		return Verified{}, errDeadChallenge
	}
	if err != nil {
		return Verified{}, err
	}
	for _, m := range msgs {
		s.enqueueCode(m)
	}
	return s.withPolicy(ctx, t, c, out), nil
}

// withPolicy adds to a reset's grant the policy the new password must
// meet, shown before it is typed.
func (s *Service) withPolicy(ctx context.Context, t store.Tenant, c store.Challenge, out Verified) Verified {
	if out.Grant != "" && c.Purpose == store.PurposeReset {
		if p, err := s.endUserPolicy(ctx, t, out.user); err == nil {
			out.Policy = &p
		}
	}
	return out
}

// newGrant returns a new grant and what the store keeps of it.
func (s *Service) newGrant() (string, store.Grant) {
	grant := newGrant()
	hash, _ := grantHash(grant)
	return grant, store.Grant{Hash: hash, ExpiresAt: s.opt.Now().Add(GrantTTL).UTC().Truncate(time.Second)}
}

// askNextFactors makes the codes of the factors of c that were not asked
// for up front (newChallenge), in tx: their hashes are stored (each with
// ten more minutes) and their messages returned, to be sent once tx
// commits.
func (s *Service) askNextFactors(ctx context.Context, tx *store.Store, t store.Tenant, c store.Challenge) ([]Factor, []outgoing, error) {
	var factors []Factor
	var msgs []outgoing
	var u store.EndUser
	for _, ch := range c.FactorList() {
		if c.Verified(ch) || c.CodeHash(ch) != nil {
			continue
		}
		if u.ID == 0 {
			var err error
			if u, err = tx.EndUser(ctx, t.ID, *c.EndUserID); err != nil {
				return nil, nil, err
			}
		}
		code, to := newCode(), destination(u, ch, c.Mobile)
		if err := tx.SetChallengeCode(ctx, t.ID, c.ID, ch, s.keys.codeHash(c.ID, ch, code), s.opt.Now().Add(CodeTTL)); err != nil {
			return nil, nil, err
		}
		factors = append(factors, Factor{Channel: ch, To: maskDestination(ch, to)})
		msgs = append(msgs, outgoing{channel: store.Channel(ch), msg: codeMessage(c.ID, ch, to, code, t.Name, c.Purpose)})
	}
	return factors, msgs, nil
}

// issueGrant ends a verified challenge with a grant and records the end
// user's first access, in tx.
func (s *Service) issueGrant(ctx context.Context, tx *store.Store, t store.Tenant, c store.Challenge, ip string) (Verified, error) {
	grant, g := s.newGrant()
	if err := tx.IssueGrant(ctx, t.ID, c.ID, g.Hash, g.ExpiresAt); err != nil {
		return Verified{}, err
	}
	u, err := tx.EndUser(ctx, t.ID, *c.EndUserID)
	if err != nil {
		return Verified{}, err
	}
	if u, err = s.recordAccess(ctx, tx, t, u, ip); err != nil {
		return Verified{}, err
	}
	return Verified{Grant: grant, ExpiresAt: &g.ExpiresAt, user: u}, nil
}

// recordAccess records the end user's first access (Accessed Self-Serve),
// audited, if this is it, and returns the end user.
func (s *Service) recordAccess(ctx context.Context, st *store.Store, t store.Tenant, u store.EndUser, ip string) (store.EndUser, error) {
	if u.FirstAccessAt != nil {
		return u, nil
	}
	type accessView struct {
		FirstAccessAt *time.Time   `json:"first_access_at"`
		Status        rules.Status `json:"status"`
		ClientIP      string       `json:"client_ip"`
	}
	after, _, err := st.RecordFirstAccess(ctx, u, s.opt.Now(), func(before, after store.EndUser) store.AuditRecord {
		return store.AuditRecord{
			TenantID:   t.ID,
			Actor:      endUserActor(u.ID),
			Action:     "end_user.first_access",
			ObjectType: "end_user",
			ObjectID:   fmt.Sprint(u.ID),
			Before:     accessView{before.FirstAccessAt, rules.StatusOf(before.Rules()), ip},
			After:      accessView{after.FirstAccessAt, rules.StatusOf(after.Rules()), ip},
		}
	})
	return after, err
}

func endUserActor(id int64) string { return fmt.Sprintf("end_user:%d", id) }

// usableGrant returns the challenge and end user of grant, unused and
// unexpired, for purpose, if the end user may still self-serve. It does not
// claim the grant: the write-back's job does (store.StartPasswordJob), so a
// password refused before the directory leaves it usable.
func (s *Service) usableGrant(ctx context.Context, t store.Tenant, grant string, purpose store.ChallengePurpose) (store.Challenge, store.EndUser, error) {
	hash, ok := grantHash(strings.TrimSpace(grant))
	if !ok {
		return store.Challenge{}, store.EndUser{}, errBadGrant
	}
	g, err := s.opt.Store.Ephemeral().UsableGrant(ctx, t.ID, hash, s.opt.Now())
	if errors.Is(err, store.ErrGrantUnusable) {
		return g.Challenge, g.EndUser, errBadGrant
	}
	if err != nil {
		return g.Challenge, g.EndUser, err
	}
	if g.Challenge.Purpose != purpose {
		return g.Challenge, g.EndUser, &Error{Status: 403, Code: "wrong_purpose", Field: "grant",
			Message: fmt.Sprintf("this verification was for %s, not %s; start again", g.Challenge.Purpose, purpose)}
	}
	if r := rules.InactiveReason(t.Rules(), g.EndUser.Rules()); r != rules.ReasonNone {
		return g.Challenge, g.EndUser, &Error{Status: 403, Code: "not_allowed", Message: "self-serve is not available for your account: " + string(r)}
	}
	return g.Challenge, g.EndUser, nil
}

func (s *Service) releaseGrant(ctx context.Context, c store.Challenge) {
	if err := s.opt.Store.ReleaseGrant(context.WithoutCancel(ctx), c.TenantID, c.ID); err != nil {
		s.log.Error("could not release a grant after a failed use; the end user must verify again", "err", err)
	}
}
