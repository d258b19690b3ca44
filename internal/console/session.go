package console

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"selfserve/internal/service"
	"selfserve/internal/store"
)

// Cookie names.
const (
	sessionCookie = "ss_session"
	// preCookie carries the CSRF token of the forms shown before sign-in
	// (double submit: the form's field must equal the cookie).
	preCookie = "ss_pre"
)

// partialMaxAge is how long a session waits for its second factor.
const partialMaxAge = 10 * time.Minute

// session is the request's console session: signed in (stage full), half
// way (stage password) or anonymous (before sign-in: only a CSRF token).
type session struct {
	row   store.Session
	actor service.Actor
	// CSRF is the token every state-changing form carries.
	CSRF string
}

// Anonymous reports a session before sign-in.
func (s *session) Anonymous() bool { return s.row.ID == "" }

// Email is the signed-in login's email.
func (s *session) Email() string { return s.actor.Login.Email }

// Role is the signed-in login's role.
func (s *session) Role() store.Role { return s.actor.Login.Role }

// TenantName is the signed-in login's tenant's name.
func (s *session) TenantName() string { return s.actor.Tenant.Name }

// CanChangeSettings reports whether the login may change tenant settings.
func (s *session) CanChangeSettings() bool { return s.actor.CanChangeSettings() }

// Full reports a completed sign-in.
func (s *session) Full() bool { return s.row.Stage == store.StageFull }

func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never returns an error
	return base64.RawURLEncoding.EncodeToString(b)
}

func hashSecret(secret string) []byte {
	sum := sha256.Sum256([]byte(secret))
	return sum[:]
}

func (c *Console) secure(r *http.Request) bool { return r.TLS != nil || c.opts.SecureCookies }

// startSession ends the request's current session, if any, and starts a
// new one for login at stage (the id and secret change at every step of
// sign-in).
func (c *Console) startSession(w http.ResponseWriter, r *http.Request, login store.Login, stage store.SessionStage) error {
	ctx := r.Context()
	if old, ok := c.cookieSession(r); ok {
		if err := c.st.EndSession(ctx, old); err != nil {
			return err
		}
	}
	now := c.opts.Now().UTC()
	maxAge := c.opts.MaxAge
	if stage != store.StageFull {
		maxAge = partialMaxAge
	}
	id, secret := randomToken(18), randomToken(32)
	row := store.Session{ID: id, SecretHash: hashSecret(secret), TenantID: login.TenantID, LoginID: login.ID, Stage: stage,
		CSRFToken: randomToken(32), CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(maxAge)}
	if err := c.st.CreateSession(ctx, row); err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: id + "." + secret, Path: "/", HttpOnly: true,
		Secure: c.secure(r), SameSite: http.SameSiteLaxMode, MaxAge: int(maxAge.Seconds())})
	return nil
}

// clearSession removes the session cookie.
func (c *Console) clearSession(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", HttpOnly: true, Secure: c.secure(r), SameSite: http.SameSiteLaxMode, MaxAge: -1})
}

// cookieSession returns the session id named by the cookie.
func (c *Console) cookieSession(r *http.Request) (string, bool) {
	ck, err := r.Cookie(sessionCookie)
	if err != nil {
		return "", false
	}
	id, _, ok := strings.Cut(ck.Value, ".")
	return id, ok && id != ""
}

// errNoSession: no valid session (none, ended, expired, or its login was
// disabled or removed).
var errNoSession = errors.New("no session")

// loadSession finds the request's session and checks it: the secret, the
// idle and absolute expiry, the login still enabled.
func (c *Console) loadSession(r *http.Request) (*session, error) {
	ck, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil, errNoSession
	}
	id, secret, ok := strings.Cut(ck.Value, ".")
	if !ok || len(id) > 64 || len(secret) > 64 {
		return nil, errNoSession
	}
	ctx := r.Context()
	si, err := c.st.SessionWithLogin(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errNoSession
	}
	if err != nil {
		return nil, err
	}
	row, login, tenant := si.Session, si.Login, si.Tenant
	if subtle.ConstantTimeCompare(row.SecretHash, hashSecret(secret)) != 1 {
		return nil, errNoSession
	}
	now := c.opts.Now()
	if !now.Before(row.ExpiresAt) || now.Sub(row.LastSeenAt) > c.opts.IdleTimeout {
		_ = c.st.EndSession(ctx, id)
		return nil, errNoSession
	}
	if login.DisabledAt != nil {
		_ = c.st.EndLoginSessions(ctx, login.TenantID, login.ID)
		return nil, errNoSession
	}
	if now.Sub(row.LastSeenAt) > time.Minute {
		if err := c.st.TouchSession(ctx, id, now); err != nil {
			return nil, err
		}
	}
	return &session{row: row, actor: service.Actor{Tenant: tenant, Login: login}, CSRF: row.CSRFToken}, nil
}

// unsafeMethod reports methods that change state.
func unsafeMethod(m string) bool {
	return m != http.MethodGet && m != http.MethodHead && m != http.MethodOptions
}

var errCSRF = &service.Error{Status: http.StatusForbidden, Code: "csrf",
	Message: "This form has expired or did not come from this console. Reload the page and try again."}

// checkCSRF compares the request's token (form field csrf or header
// X-Csrf-Token) with want, in constant time.
func checkCSRF(r *http.Request, want string) error {
	if err := r.ParseForm(); err != nil {
		return formError(err)
	}
	got := r.Header.Get("X-Csrf-Token")
	if got == "" {
		got = r.PostForm.Get("csrf")
	}
	if want == "" || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		return errCSRF
	}
	return nil
}

// formError turns a form parsing error into a 4xx.
func formError(err error) error {
	var maxErr *http.MaxBytesError
	if errors.As(err, &maxErr) {
		return err
	}
	return &service.Error{Status: http.StatusBadRequest, Code: "invalid_form", Message: "The form could not be read."}
}

// public serves pages before sign-in: their forms carry the pre-session
// token of the ss_pre cookie.
func (c *Console) public(h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		token := ""
		if ck, err := r.Cookie(preCookie); err == nil && len(ck.Value) == 43 {
			token = ck.Value
		}
		if unsafeMethod(r.Method) {
			if err := checkCSRF(r, token); err != nil {
				c.renderError(w, r, nil, err)
				return
			}
		}
		if token == "" {
			token = randomToken(32)
			http.SetCookie(w, &http.Cookie{Name: preCookie, Value: token, Path: "/", HttpOnly: true, Secure: c.secure(r), SameSite: http.SameSiteLaxMode})
		}
		s := &session{CSRF: token}
		if err := h(w, r, s); err != nil {
			c.renderError(w, r, s, err)
		}
	}
}

// partial serves the second-factor steps: a session at stage password.
func (c *Console) partial(h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s, err := c.loadSession(r)
		if errors.Is(err, errNoSession) {
			http.Redirect(w, r, "/signin", http.StatusSeeOther)
			return
		}
		if err != nil {
			c.renderError(w, r, nil, err)
			return
		}
		if s.Full() {
			http.Redirect(w, r, "/", http.StatusSeeOther)
			return
		}
		if unsafeMethod(r.Method) {
			if err := checkCSRF(r, s.CSRF); err != nil {
				c.renderError(w, r, nil, err)
				return
			}
		}
		if err := h(w, r, s); err != nil {
			c.renderError(w, r, nil, err)
		}
	}
}

// signedIn serves pages and actions of a signed-in login. Without a
// session a page redirects to sign-in and an action is 401.
func (c *Console) signedIn(h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s, err := c.loadSession(r)
		if errors.Is(err, errNoSession) {
			c.clearSession(w, r)
		}
		if err == nil && !s.Full() {
			err = errNoSession
		}
		if errors.Is(err, errNoSession) {
			if r.Method == http.MethodGet && !isHTMX(r) {
				http.Redirect(w, r, "/signin?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			c.renderError(w, r, nil, &service.Error{Status: http.StatusUnauthorized, Code: "unauthorized", Message: "Your session has ended. Sign in again."})
			return
		}
		if err != nil {
			c.renderError(w, r, nil, err)
			return
		}
		if unsafeMethod(r.Method) {
			if err := checkCSRF(r, s.CSRF); err != nil {
				c.renderError(w, r, s, err)
				return
			}
		}
		if err := h(w, r, s); err != nil {
			c.renderError(w, r, s, err)
		}
	}
}

// onlyFields refuses a form with fields other than known (and csrf): 400
// naming the field.
func onlyFields(r *http.Request, known ...string) error {
	for k, v := range r.PostForm {
		if k != "csrf" && !slices.Contains(known, k) {
			return service.BadField(k, "unknown field %q", service.Truncate(k, 40))
		}
		if len(v) > 1 && k != "id" {
			return service.BadField(k, "give %s once", service.Truncate(k, 40))
		}
	}
	return nil
}

// postedID returns the id in the path of a form post whose fields are all
// known (see pathID and onlyFields).
func postedID(r *http.Request, known ...string) (int64, error) {
	id, err := pathID(r)
	if err != nil {
		return 0, err
	}
	if err := onlyFields(r, known...); err != nil {
		return 0, err
	}
	return id, nil
}

// localPath returns next when it is a path of this site, else "/".
func localPath(next string) string {
	if next == "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") || len(next) > 2000 {
		return "/"
	}
	return next
}
