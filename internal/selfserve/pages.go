package selfserve

import (
	"bytes"
	"crypto/subtle"
	"embed"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"selfserve/internal/store"
)

// The web pages: server-rendered, working without JavaScript, one step per
// page, phone-first. They call the same service methods as the JSON API.
//
//	GET  /{tenant}/change          login form (reset), the tenant's policy shown
//	GET  /{tenant}/unlock          login form (unlock)
//	POST /{tenant}/change|unlock   send the codes → code page
//	POST /{tenant}/verify          check a code → next code, password or unlock page
//	POST /{tenant}/password        set the password → done (or the rule broken)
//	POST /{tenant}/unlock/confirm  clear the lockout → done
//	GET  /{tenant}/enrol?t=TOKEN   the welcome link: confirm or type the mobile
//	POST /{tenant}/enrol           send a code to it → code page → done
//
// Forms are protected twice against cross-site posts: the listener is
// wrapped in http.CrossOriginProtection (Sec-Fetch-Site / Origin), and each
// form carries a token that must equal the page's cookie (double submit;
// the cookie is SameSite=Strict and HttpOnly). Secrets move only in POST
// bodies, never in URLs (the welcome link's token excepted: it is the
// link), and every page says Referrer-Policy: no-referrer.

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static/app.css
var appCSS []byte

// pageTemplates are parsed once: one set per page, each with the layout.
var pageTemplates = func() map[string]*template.Template {
	out := map[string]*template.Template{}
	for _, name := range []string{"start", "code", "password", "unlock", "enrol", "done", "problem"} {
		out[name] = template.Must(template.ParseFS(templateFS, "templates/layout.html", "templates/policy.html", "templates/"+name+".html"))
	}
	return out
}()

// page is what a page template may show.
type page struct {
	Title, Tenant, Error, CSRF, Action string
	// start
	Purpose, Login, Other string
	Policy                *Policy
	// code
	Channel, To, Challenge, Next, Restart string
	// password and unlock
	Grant string
	// enrol
	Token, Mobile, Name string
	// done
	Message, Note string
}

const csrfCookie = "ss_csrf"

// csrfLength is the length of a form token: 32 random bytes in base64url.
const csrfLength = 43

func tenantPath(tenant, rest string) string { return "/" + url.PathEscape(tenant) + rest }

// pageRoutes registers the pages on mux.
func (s *Service) pageRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /self-serve/static/app.css", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
		w.Header().Set("Cache-Control", "public, max-age=3600")
		w.Write(appCSS)
	})
	mux.HandleFunc("GET /{tenant}/change", func(w http.ResponseWriter, r *http.Request) { s.startPage(w, r, store.PurposeReset) })
	mux.HandleFunc("GET /{tenant}/unlock", func(w http.ResponseWriter, r *http.Request) { s.startPage(w, r, store.PurposeUnlock) })
	mux.HandleFunc("POST /{tenant}/change", func(w http.ResponseWriter, r *http.Request) { s.startPost(w, r, store.PurposeReset) })
	mux.HandleFunc("POST /{tenant}/unlock", func(w http.ResponseWriter, r *http.Request) { s.startPost(w, r, store.PurposeUnlock) })
	mux.HandleFunc("POST /{tenant}/verify", s.verifyPost)
	mux.HandleFunc("POST /{tenant}/password", s.passwordPost)
	mux.HandleFunc("POST /{tenant}/unlock/confirm", s.unlockPost)
	mux.HandleFunc("GET /{tenant}/enrol", s.enrolPage)
	mux.HandleFunc("POST /{tenant}/enrol", s.enrolPost)
}

func purposeTitle(p store.ChallengePurpose) string {
	switch p {
	case store.PurposeUnlock:
		return "Unlock your account"
	case store.PurposeEnrol:
		return "Confirm your mobile number"
	}
	return "Change your password"
}

func restartPath(tenant string, p store.ChallengePurpose) string {
	if p == store.PurposeUnlock {
		return tenantPath(tenant, "/unlock")
	}
	return tenantPath(tenant, "/change")
}

// startPage is the first step: who are you.
func (s *Service) startPage(w http.ResponseWriter, r *http.Request, purpose store.ChallengePurpose) {
	name := r.PathValue("tenant")
	t, err := s.Tenant(r.Context(), name)
	if err != nil {
		s.problem(w, r, "", err, "")
		return
	}
	p := s.newPage(w, r, t.Name, purposeTitle(purpose))
	p.Purpose, p.Action = string(purpose), restartPath(t.Name, purpose)
	if purpose == store.PurposeUnlock {
		p.Other = tenantPath(t.Name, "/change")
	} else {
		p.Other = tenantPath(t.Name, "/unlock")
		pol := policyOf(t, s.domainPolicy(r.Context(), t))
		p.Policy = &pol
	}
	s.render(w, http.StatusOK, "start", p)
}

func (s *Service) startPost(w http.ResponseWriter, r *http.Request, purpose store.ChallengePurpose) {
	name := r.PathValue("tenant")
	if !s.checkForm(w, r, name) {
		return
	}
	login := r.PostFormValue("login")
	out, err := s.StartChallenge(r.Context(), name, login, purpose, s.ClientIP(r))
	if err != nil {
		var e *Error
		if errors.As(err, &e) && e.Field == "login" {
			p := s.newPage(w, r, name, purposeTitle(purpose))
			p.Purpose, p.Action, p.Error = string(purpose), restartPath(name, purpose), e.Message
			s.render(w, e.Status, "start", p)
			return
		}
		s.problem(w, r, name, err, restartPath(name, purpose))
		return
	}
	p := s.newPage(w, r, name, purposeTitle(purpose))
	s.codePage(w, http.StatusOK, p, name, purpose, out.ChallengeID, out.Factors)
}

// codePage asks for the first factor's code; the next factor's masked
// destination travels with the form.
func (s *Service) codePage(w http.ResponseWriter, status int, p page, tenant string, purpose store.ChallengePurpose, challenge string, factors []Factor) {
	p.Purpose, p.Challenge, p.Action = string(purpose), challenge, tenantPath(tenant, "/verify")
	p.Restart = restartPath(tenant, purpose)
	if len(factors) > 0 {
		p.Channel, p.To = factors[0].Channel, factors[0].To
	}
	if len(factors) > 1 {
		p.Next = factors[1].Channel + "|" + factors[1].To
	}
	s.render(w, status, "code", p)
}

func (s *Service) verifyPost(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("tenant")
	if !s.checkForm(w, r, name) {
		return
	}
	purpose := store.ChallengePurpose(r.PostFormValue("purpose"))
	if purpose != store.PurposeUnlock && purpose != store.PurposeEnrol {
		purpose = store.PurposeReset
	}
	challenge, channel, to := r.PostFormValue("challenge"), r.PostFormValue("channel"), r.PostFormValue("to")
	var factors []Factor
	factors = append(factors, Factor{Channel: channel, To: to})
	if ch, dest, ok := strings.Cut(r.PostFormValue("next"), "|"); ok {
		factors = append(factors, Factor{Channel: ch, To: dest})
	}
	p := s.newPage(w, r, name, purposeTitle(purpose))
	out, err := s.Verify(r.Context(), name, challenge, channel, r.PostFormValue("code"), s.ClientIP(r))
	if err != nil {
		var e *Error
		if errors.As(err, &e) && e.Status == 400 {
			p.Error = e.Message
			s.codePage(w, e.Status, p, name, purpose, challenge, factors)
			return
		}
		s.problem(w, r, name, err, restartPath(name, purpose))
		return
	}
	switch {
	case len(out.Remaining) > 0:
		next := factors[1:]
		if len(out.Factors) > 0 { // a factor asked for only now
			next = out.Factors
		}
		s.codePage(w, http.StatusOK, p, name, purpose, challenge, next)
	case out.Enrolled:
		p.Message = "Your mobile number is confirmed. You can now reset your password and unlock your account yourself."
		s.render(w, http.StatusOK, "done", p)
	case purpose == store.PurposeUnlock:
		p.Grant, p.Action = out.Grant, tenantPath(name, "/unlock/confirm")
		s.render(w, http.StatusOK, "unlock", p)
	default:
		p.Grant, p.Action, p.Policy = out.Grant, tenantPath(name, "/password"), out.Policy
		if p.Policy == nil {
			pol := Policy{MinLength: baselinePolicy.MinLength}
			p.Policy = &pol
		}
		s.render(w, http.StatusOK, "password", p)
	}
}

func (s *Service) passwordPost(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("tenant")
	if !s.checkForm(w, r, name) {
		return
	}
	grant, pw := r.PostFormValue("grant"), r.PostFormValue("new_password")
	p := s.newPage(w, r, name, purposeTitle(store.PurposeReset))
	again := func(status int, msg string) {
		p.Grant, p.Action, p.Error = grant, tenantPath(name, "/password"), msg
		if pol, err := s.GrantPolicy(r.Context(), name, grant); err == nil {
			p.Policy = &pol
		} else {
			pol := Policy{MinLength: baselinePolicy.MinLength}
			p.Policy = &pol
		}
		s.render(w, status, "password", p)
	}
	if pw != r.PostFormValue("confirm") {
		again(http.StatusBadRequest, "The two passwords are not the same; type them again.")
		return
	}
	out, err := s.SetPassword(r.Context(), name, grant, pw, s.ClientIP(r))
	if err != nil {
		var e *Error
		if errors.As(err, &e) && (e.Status == 422 || e.Status == 400 || e.Status == 502) {
			again(e.Status, e.Message)
			return
		}
		s.problem(w, r, name, err, restartPath(name, store.PurposeReset))
		return
	}
	p.Message, p.Note = "Your password is changed. Use the new one from now on, on every device.", out.Note
	s.render(w, http.StatusOK, "done", p)
}

func (s *Service) unlockPost(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("tenant")
	if !s.checkForm(w, r, name) {
		return
	}
	out, err := s.Unlock(r.Context(), name, r.PostFormValue("grant"), s.ClientIP(r))
	if err != nil {
		s.problem(w, r, name, err, restartPath(name, store.PurposeUnlock))
		return
	}
	p := s.newPage(w, r, name, purposeTitle(store.PurposeUnlock))
	p.Message, p.Note = "Your account is unlocked. Sign in again with your password.", out.Note
	s.render(w, http.StatusOK, "done", p)
}

func (s *Service) enrolPage(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("tenant")
	token := r.URL.Query().Get("t")
	e, err := s.EnrolmentOf(r.Context(), name, token)
	if err != nil {
		s.problem(w, r, name, err, "")
		return
	}
	p := s.newPage(w, r, name, purposeTitle(store.PurposeEnrol))
	p.Token, p.Mobile, p.Name, p.Action = token, e.Mobile, e.Name, tenantPath(name, "/enrol")
	s.render(w, http.StatusOK, "enrol", p)
}

func (s *Service) enrolPost(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("tenant")
	if !s.checkForm(w, r, name) {
		return
	}
	token, mobile := r.PostFormValue("token"), r.PostFormValue("mobile")
	p := s.newPage(w, r, name, purposeTitle(store.PurposeEnrol))
	out, err := s.StartEnrolment(r.Context(), name, token, mobile, s.ClientIP(r))
	if err != nil {
		var e *Error
		if errors.As(err, &e) && e.Field == "mobile" {
			p.Token, p.Mobile, p.Action, p.Error = token, mobile, tenantPath(name, "/enrol"), e.Message
			s.render(w, e.Status, "enrol", p)
			return
		}
		s.problem(w, r, name, err, "")
		return
	}
	s.codePage(w, http.StatusOK, p, name, store.PurposeEnrol, out.ChallengeID, out.Factors)
}

// newPage starts a page's data with the tenant's name and the form token
// (set as a cookie when the browser has none).
func (s *Service) newPage(w http.ResponseWriter, r *http.Request, tenant, title string) page {
	tok := ""
	if c, err := r.Cookie(csrfCookie); err == nil && len(c.Value) == csrfLength {
		tok = c.Value
	} else {
		tok = randomToken(32)
		http.SetCookie(w, &http.Cookie{Name: csrfCookie, Value: tok, Path: "/", HttpOnly: true,
			Secure: strings.HasPrefix(s.opt.PublicURL, "https://"), SameSite: http.SameSiteStrictMode})
	}
	return page{Title: title, Tenant: tenant, CSRF: tok}
}

// checkForm parses the form (bounded) and checks its token against the
// cookie; on failure it answers and returns false.
func (s *Service) checkForm(w http.ResponseWriter, r *http.Request, tenant string) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	if err := r.ParseForm(); err != nil {
		s.problem(w, r, tenant, &Error{Status: 413, Code: "too_large", Message: "the form is too large"}, "")
		return false
	}
	c, err := r.Cookie(csrfCookie)
	form := r.PostFormValue("csrf")
	if err != nil || form == "" || subtle.ConstantTimeCompare([]byte(c.Value), []byte(form)) != 1 {
		s.problem(w, r, tenant, &Error{Status: 403, Code: "csrf", Message: "this form has expired; open the page again (your browser must accept cookies from this site)"}, "")
		return false
	}
	if _, err := s.Tenant(r.Context(), tenant); err != nil {
		s.problem(w, r, tenant, err, "")
		return false
	}
	return true
}

// problem shows an error page; restart, when set, links back to the
// flow's first step.
func (s *Service) problem(w http.ResponseWriter, r *http.Request, tenant string, err error, restart string) {
	e := s.asError(r, err)
	if e == errNoSelfServe {
		tenant = ""
	}
	p := s.newPage(w, r, tenant, "Something is not right")
	if p.Tenant == "" {
		p.Tenant = "Self-serve"
	}
	p.Error, p.Restart = e.Message, restart
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(e.RetryAfter.Seconds())+1))
	}
	s.render(w, e.Status, "problem", p)
}

// render writes the page; headers keep it out of caches, frames and
// referrers.
func (s *Service) render(w http.ResponseWriter, status int, name string, p page) {
	var b bytes.Buffer
	if err := pageTemplates[name].ExecuteTemplate(&b, "layout", p); err != nil {
		s.log.Error("render page", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	w.WriteHeader(status)
	w.Write(b.Bytes())
}
