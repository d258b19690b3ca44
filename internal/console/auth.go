package console

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"image/png"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"golang.org/x/crypto/argon2"

	"selfserve/internal/service"
	"selfserve/internal/store"
)

// Passwords are hashed with argon2id (RFC 9106; OWASP's second
// configuration: 19 MiB, 2 passes, 1 lane) and stored as a PHC string.
const (
	argonMemory  = 19 * 1024
	argonTime    = 2
	argonThreads = 1
	argonKeyLen  = 32
)

// Password length bounds.
const (
	minPasswordLength = 12
	maxPasswordLength = 256
)

func hashPassword(password string) string {
	salt := make([]byte, 16)
	_, _ = rand.Read(salt) // crypto/rand.Read never returns an error
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}

// checkPassword reports whether password matches the PHC string encoded.
func checkPassword(encoded, password string) bool {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || m > 1<<20 || t > 10 || p == 0 {
		return false
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[4])
	want, err2 := base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 {
		return false
	}
	got := argon2.IDKey([]byte(password), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// dummyHash is checked when no login matches, so that a wrong email takes
// as long as a wrong password.
var dummyHash = hashPassword("not a password of anyone")

// Throttling: failed sign-ins (passwords and codes) per login and per IP
// address within throttleWindow.
const (
	throttleWindow   = 15 * time.Minute
	maxLoginFailures = 5
	maxIPFailures    = 30
)

func loginKey(email string) string { return "login:" + strings.ToLower(strings.TrimSpace(email)) }

func ipKey(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return "ip:" + host
}

var errThrottled = &service.Error{Status: http.StatusTooManyRequests, Code: "throttled",
	Message: "Too many failed attempts. Wait 15 minutes and try again."}

// throttled refuses a sign-in while any key has too many recent failures.
func (c *Console) throttled(ctx context.Context, r *http.Request, login string) error {
	since := c.opts.Now().Add(-throttleWindow)
	n, err := c.st.SigninFailures(ctx, loginKey(login), since)
	if err != nil {
		return err
	}
	m, err := c.st.SigninFailures(ctx, ipKey(r), since)
	if err != nil {
		return err
	}
	if n >= maxLoginFailures || m >= maxIPFailures {
		return errThrottled
	}
	return nil
}

func (c *Console) recordFailure(ctx context.Context, r *http.Request, login string) error {
	return c.st.RecordSigninFailure(ctx, c.opts.Now(), throttleWindow, loginKey(login), ipKey(r))
}

// signinForm is the sign-in page's data.
type signinForm struct {
	Email, Next, Error, Notice string
}

func (c *Console) signinPage(w http.ResponseWriter, r *http.Request, s *session) error {
	f := signinForm{Next: localPath(r.URL.Query().Get("next"))}
	if r.URL.Query().Get("done") == "password" {
		f.Notice = "Your password is set. Sign in with it."
	}
	c.render(w, http.StatusOK, "signin", "", s, "Sign in", f)
	return nil
}

func (c *Console) signin(w http.ResponseWriter, r *http.Request, s *session) error {
	email, password := strings.TrimSpace(r.PostForm.Get("email")), r.PostForm.Get("password")
	f := signinForm{Email: email, Next: localPath(r.PostForm.Get("next"))}
	fail := func(status int, msg string) error {
		f.Error = msg
		c.render(w, status, "signin", "", s, "Sign in", f)
		return nil
	}
	if email == "" || password == "" {
		return fail(http.StatusBadRequest, "Give your email and your password.")
	}
	if len(email) > service.MaxEmailLength || len(password) > maxPasswordLength {
		return fail(http.StatusBadRequest, "Wrong email or password.")
	}
	ctx := r.Context()
	if err := c.throttled(ctx, r, email); err != nil {
		var e *service.Error
		if errors.As(err, &e) {
			return fail(e.Status, e.Message)
		}
		return err
	}
	logins, err := c.st.LoginsByEmail(ctx, email)
	if err != nil {
		return err
	}
	var login store.Login
	var creds store.Credentials
	for _, l := range logins {
		cr, err := c.st.Credentials(ctx, l.TenantID, l.ID)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if cr.PasswordHash != "" && checkPassword(cr.PasswordHash, password) {
			login, creds = l, cr
			break
		}
	}
	if login.ID == 0 {
		if len(logins) == 0 {
			checkPassword(dummyHash, password)
		}
		if err := c.recordFailure(ctx, r, email); err != nil {
			return err
		}
		return fail(http.StatusUnauthorized, "Wrong email or password.")
	}
	if err := c.st.ClearSigninFailures(ctx, loginKey(email)); err != nil {
		return err
	}
	needsSetup := creds.TOTPSecret == nil && login.Role.CanChangeTenantSettings()
	if creds.TOTPSecret == nil && !needsSetup {
		if err := c.startSession(w, r, login, store.StageFull); err != nil {
			return err
		}
		http.Redirect(w, r, f.Next, http.StatusSeeOther)
		return nil
	}
	if err := c.startSession(w, r, login, store.StagePassword); err != nil {
		return err
	}
	next := "/signin/totp"
	if needsSetup {
		next = "/signin/setup"
	}
	http.Redirect(w, r, next+"?next="+url.QueryEscape(f.Next), http.StatusSeeOther)
	return nil
}

// totpForm is the second-factor page's data.
type totpForm struct {
	Next, Error string
	// Setup: the secret being set up (sealed, for the form) and how to
	// enter it.
	Sealed, Secret, QR string
}

func (c *Console) totpPage(w http.ResponseWriter, r *http.Request, s *session) error {
	c.render(w, http.StatusOK, "totp", "", s, "Second factor", totpForm{Next: localPath(r.URL.Query().Get("next"))})
	return nil
}

// totpOptions are the TOTP parameters every authenticator app supports.
var totpOptions = totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}

// matchTOTP returns the time step of now-1..now+1 whose code is code.
func matchTOTP(secret, code string, now time.Time) (int64, bool) {
	if len(code) != 6 {
		return 0, false
	}
	step := now.Unix() / 30
	for _, d := range []int64{0, -1, 1} {
		want, err := totp.GenerateCodeCustom(secret, time.Unix((step+d)*30, 0), totpOptions)
		if err == nil && subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			return step + d, true
		}
	}
	return 0, false
}

func sealContext(loginID int64) string { return "console-totp:" + strconv.FormatInt(loginID, 10) }

func (c *Console) totpCheck(w http.ResponseWriter, r *http.Request, s *session) error {
	code := strings.ReplaceAll(strings.TrimSpace(r.PostForm.Get("code")), " ", "")
	f := totpForm{Next: localPath(r.PostForm.Get("next"))}
	fail := func(status int, msg string) error {
		f.Error = msg
		c.render(w, status, "totp", "", s, "Second factor", f)
		return nil
	}
	ctx := r.Context()
	login := s.actor.Login
	if err := c.throttled(ctx, r, login.Email); err != nil {
		var e *service.Error
		if errors.As(err, &e) {
			return fail(e.Status, e.Message)
		}
		return err
	}
	if code == "" || len(code) > 32 {
		return fail(http.StatusBadRequest, "Enter the 6-digit code of your authenticator app, or a recovery code.")
	}
	creds, err := c.st.Credentials(ctx, login.TenantID, login.ID)
	if err != nil {
		return err
	}
	ok, err := c.checkSecondFactor(ctx, login, creds, code)
	if err != nil {
		return err
	}
	if !ok {
		if err := c.recordFailure(ctx, r, login.Email); err != nil {
			return err
		}
		return fail(http.StatusUnauthorized, "That code is wrong or was used already.")
	}
	if err := c.st.ClearSigninFailures(ctx, loginKey(login.Email)); err != nil {
		return err
	}
	if err := c.startSession(w, r, login, store.StageFull); err != nil {
		return err
	}
	http.Redirect(w, r, f.Next, http.StatusSeeOther)
	return nil
}

// checkSecondFactor checks a TOTP code (once per time step) or a recovery
// code (once).
func (c *Console) checkSecondFactor(ctx context.Context, login store.Login, creds store.Credentials, code string) (bool, error) {
	if len(code) == 6 {
		if creds.TOTPSecret == nil || c.opts.Secrets == nil {
			return false, nil
		}
		secret, err := c.opts.Secrets.Open(creds.TOTPSecret, sealContext(login.ID))
		if err != nil {
			return false, fmt.Errorf("open TOTP secret of login %d: %w", login.ID, err)
		}
		step, ok := matchTOTP(string(secret), code, c.opts.Now())
		if !ok {
			return false, nil
		}
		err = c.st.UseTOTPStep(ctx, login.TenantID, login.ID, step)
		if errors.Is(err, store.ErrCodeUsed) {
			return false, nil
		}
		return err == nil, err
	}
	err := c.st.UseRecoveryCode(ctx, login.TenantID, login.ID, hashRecoveryCode(code))
	if errors.Is(err, store.ErrCodeUsed) {
		return false, nil
	}
	return err == nil, err
}

func hashRecoveryCode(code string) []byte {
	sum := sha256.Sum256([]byte(strings.ToLower(strings.ReplaceAll(code, "-", ""))))
	return sum[:]
}

// newRecoveryCodes returns 10 codes (xxxxx-xxxxx) and their hashes.
func newRecoveryCodes() ([]string, [][]byte) {
	const alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
	var codes []string
	var hashes [][]byte
	for range 10 {
		raw := []byte(randomToken(10))
		var b strings.Builder
		for i := range 10 {
			if i == 5 {
				b.WriteByte('-')
			}
			b.WriteByte(alphabet[int(raw[i])%len(alphabet)])
		}
		codes = append(codes, b.String())
		hashes = append(hashes, hashRecoveryCode(b.String()))
	}
	return codes, hashes
}

var errNoKey = service.Unavailable("This server has no encryption key (SELFSERVE_ENCRYPTION_KEY), so it cannot keep second factors: set one to sign in.")

func (c *Console) setupPage(w http.ResponseWriter, r *http.Request, s *session) error {
	f, err := c.newSetup(s, r.URL.Query().Get("next"))
	if err != nil {
		return err
	}
	c.render(w, http.StatusOK, "setup", "", s, "Set up a second factor", f)
	return nil
}

// newSetup makes a fresh TOTP secret for the login, sealed for the form.
func (c *Console) newSetup(s *session, next string) (totpForm, error) {
	if c.opts.Secrets == nil {
		return totpForm{}, errNoKey
	}
	key, err := totp.Generate(totp.GenerateOpts{Issuer: "selfserve " + s.actor.Tenant.Name, AccountName: s.actor.Login.Email})
	if err != nil {
		return totpForm{}, err
	}
	return c.setupForm(s, key, next)
}

func (c *Console) setupForm(s *session, key *otp.Key, next string) (totpForm, error) {
	sealed, err := c.opts.Secrets.Seal([]byte(key.Secret()), "console-totp-setup:"+s.row.ID)
	if err != nil {
		return totpForm{}, err
	}
	img, err := key.Image(180, 180)
	if err != nil {
		return totpForm{}, err
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return totpForm{}, err
	}
	return totpForm{Next: localPath(next), Sealed: base64.RawURLEncoding.EncodeToString(sealed), Secret: key.Secret(),
		QR: "data:image/png;base64," + base64.StdEncoding.EncodeToString(buf.Bytes())}, nil
}

// recoveryView shows the new recovery codes once.
type recoveryView struct {
	Codes []string
	Next  string
}

func (c *Console) setupCheck(w http.ResponseWriter, r *http.Request, s *session) error {
	if c.opts.Secrets == nil {
		return errNoKey
	}
	next := localPath(r.PostForm.Get("next"))
	raw, err := base64.RawURLEncoding.DecodeString(r.PostForm.Get("sealed"))
	if err != nil || len(raw) > 512 {
		return service.BadField("sealed", "the set-up form was altered; start again")
	}
	secret, err := c.opts.Secrets.Open(raw, "console-totp-setup:"+s.row.ID)
	if err != nil {
		return service.BadField("sealed", "the set-up form was altered or is from another session; start again")
	}
	ctx := r.Context()
	login := s.actor.Login
	code := strings.ReplaceAll(strings.TrimSpace(r.PostForm.Get("code")), " ", "")
	step, ok := matchTOTP(string(secret), code, c.opts.Now())
	if !ok {
		q := url.Values{"secret": {string(secret)}, "issuer": {"selfserve " + s.actor.Tenant.Name}}
		key, err := otp.NewKeyFromURL("otpauth://totp/" + url.PathEscape("selfserve "+s.actor.Tenant.Name+":"+login.Email) + "?" + q.Encode())
		if err != nil {
			return err
		}
		f, err := c.setupForm(s, key, next)
		if err != nil {
			return err
		}
		f.Error = "That code is wrong: enter the 6-digit code your app shows now."
		c.render(w, http.StatusBadRequest, "setup", "", s, "Set up a second factor", f)
		return nil
	}
	sealed, err := c.opts.Secrets.Seal(secret, sealContext(login.ID))
	if err != nil {
		return err
	}
	codes, hashes := newRecoveryCodes()
	err = c.st.InTx(ctx, func(tx *store.Store) error {
		if err := tx.SetTOTP(ctx, login.TenantID, login.ID, sealed, step); err != nil {
			return err
		}
		if err := tx.ReplaceRecoveryCodes(ctx, login.TenantID, login.ID, hashes); err != nil {
			return err
		}
		return service.Audit(ctx, tx, s.actor, "login.totp_enabled", "login", login.ID, nil, nil)
	})
	if err != nil {
		return err
	}
	if err := c.startSession(w, r, login, store.StageFull); err != nil {
		return err
	}
	c.render(w, http.StatusOK, "recovery", "", nil, "Recovery codes", recoveryView{Codes: codes, Next: next})
	return nil
}

func (c *Console) signout(w http.ResponseWriter, r *http.Request, s *session) error {
	if err := c.st.EndSession(r.Context(), s.row.ID); err != nil {
		return err
	}
	c.clearSession(w, r)
	http.Redirect(w, r, "/signin", http.StatusSeeOther)
	return nil
}

// inviteForm is the invite page's data.
type inviteForm struct {
	Email, Error string
	Field        string
}

func (c *Console) inviteLogin(r *http.Request) (string, store.Login, error) {
	token := r.PathValue("token")
	if !service.LooksLikeInvite(token) {
		return "", store.Login{}, errBadInvite
	}
	login, err := c.svc.InviteLogin(r.Context(), token)
	if errors.Is(err, store.ErrTokenInvalid) || errors.Is(err, store.ErrNotFound) {
		return "", store.Login{}, errBadInvite
	}
	return token, login, err
}

var errBadInvite = &service.Error{Status: http.StatusNotFound, Code: "invalid_invite",
	Message: "This invite link is not valid: it was used already, has expired or was mistyped. Ask for a new one."}

func (c *Console) invitePage(w http.ResponseWriter, r *http.Request, s *session) error {
	_, login, err := c.inviteLogin(r)
	if err != nil {
		return err
	}
	c.render(w, http.StatusOK, "invite", "", s, "Set your password", inviteForm{Email: login.Email})
	return nil
}

func (c *Console) inviteAccept(w http.ResponseWriter, r *http.Request, s *session) error {
	token, login, err := c.inviteLogin(r)
	if err != nil {
		return err
	}
	password, confirm := r.PostForm.Get("password"), r.PostForm.Get("confirm")
	f := inviteForm{Email: login.Email}
	switch {
	case len([]rune(password)) < minPasswordLength:
		f.Field, f.Error = "password", fmt.Sprintf("Use at least %d characters.", minPasswordLength)
	case len(password) > maxPasswordLength:
		f.Field, f.Error = "password", fmt.Sprintf("Use at most %d characters.", maxPasswordLength)
	case password != confirm:
		f.Field, f.Error = "confirm", "The two passwords differ."
	}
	if f.Error != "" {
		c.render(w, http.StatusBadRequest, "invite", "", s, "Set your password", f)
		return nil
	}
	if _, err := c.svc.AcceptInvite(r.Context(), token, hashPassword(password)); err != nil {
		if errors.Is(err, store.ErrTokenInvalid) {
			return errBadInvite
		}
		return err
	}
	http.Redirect(w, r, "/signin?done=password", http.StatusSeeOther)
	return nil
}
