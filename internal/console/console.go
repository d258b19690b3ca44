// Package console is the technicians' web console, served beside the admin
// API (/v1) on the admin address: sign-in with a password and a TOTP
// second factor, the end users of each customer with their self-serve
// switches, the tenant's settings, customers, connections and their runs,
// and the audit log.
//
// Pages are html/template, embedded and parsed once; a little htmx (vendored
// under static/, no build step) edits cells in place. Every change goes
// through package service, the same code the JSON API calls, so that role
// checks, tenant scope, validation and audit entries have one home.
//
// Requests carry a session cookie (id.secret; the database keeps the
// secret's hash); every state-changing request must carry the session's
// CSRF token and pass http.CrossOriginProtection.
package console

import (
	"bytes"
	"compress/gzip"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"selfserve/internal/secretbox"
	"selfserve/internal/service"
	"selfserve/internal/store"
)

//go:embed templates static
var assets embed.FS

// Options are the console's dependencies. Service is required.
type Options struct {
	Service *service.Service
	// Secrets seals TOTP secrets; nil leaves second factors unavailable, and
	// super and primary logins cannot sign in.
	Secrets *secretbox.Box
	// SecureCookies marks cookies Secure even on plain HTTP requests (the
	// server runs behind a TLS-terminating proxy).
	SecureCookies bool
	// MonitoringPath is where the ops pages are (linked for the logins
	// that may open them, see OpsTenant); "" hides the link.
	MonitoringPath string
	// OpsTenant names the tenant whose super logins may open the ops pages
	// with their console session (Monitoring); "" lets no session open
	// them (the ops token only).
	OpsTenant string
	// Logger receives failures; nil discards.
	Logger *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
	// IdleTimeout and MaxAge end sessions (defaults 1 hour idle, 12 hours
	// in all).
	IdleTimeout, MaxAge time.Duration
}

// Console is the console's handler.
type Console struct {
	opts  Options
	svc   *service.Service
	st    *store.Store
	log   *slog.Logger
	pages map[string]*template.Template
	mux   *http.ServeMux
	h     http.Handler
}

// New builds the console.
func New(opts Options) (*Console, error) {
	if opts.Service == nil || opts.Service.Store == nil {
		return nil, errors.New("console.New: missing Service")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = time.Hour
	}
	if opts.MaxAge <= 0 {
		opts.MaxAge = 12 * time.Hour
	}
	c := &Console{opts: opts, svc: opts.Service, st: opts.Service.Store, log: opts.Logger, mux: http.NewServeMux()}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if err := c.parseTemplates(); err != nil {
		return nil, err
	}
	c.routes()
	c.h = http.NewCrossOriginProtection().Handler(http.HandlerFunc(c.serve))
	return c, nil
}

// Patterns are the ServeMux patterns the console answers, to mount beside
// the API.
func (c *Console) Patterns() []string {
	return []string{"/{$}", "/signin", "/signin/", "/signout", "/invite/", "/account", "/account/",
		"/customers", "/customers/", "/end-users/", "/settings", "/settings/", "/events", "/connections", "/connections/", "/runs/", "/static/"}
}

// ServeHTTP serves a console request.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) { c.h.ServeHTTP(w, r) }

func (c *Console) serve(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Frame-Options", "DENY")
	if r.TLS != nil || c.opts.SecureCookies {
		h.Set("Strict-Transport-Security", "max-age=31536000")
	}
	if r.Body != nil {
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	}
	if r.Method != http.MethodHead && strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
		h.Set("Content-Encoding", "gzip")
		h.Add("Vary", "Accept-Encoding")
		gz := gzip.NewWriter(w)
		defer gz.Close()
		w = &gzipWriter{ResponseWriter: w, gz: gz}
	}
	c.mux.ServeHTTP(w, r)
}

// gzipWriter compresses a response (pages and static files shrink about
// five times).
type gzipWriter struct {
	http.ResponseWriter
	gz *gzip.Writer
}

func (g *gzipWriter) WriteHeader(code int) {
	g.Header().Del("Content-Length")
	g.ResponseWriter.WriteHeader(code)
}

func (g *gzipWriter) Write(b []byte) (int, error) {
	g.Header().Del("Content-Length")
	return g.gz.Write(b)
}

// maxFormBytes caps a form body.
const maxFormBytes = 64 << 10

// handler is a console route's handler; it returns errors for errorPage.
type handler func(w http.ResponseWriter, r *http.Request, s *session) error

// routes registers every page and action.
func (c *Console) routes() {
	static, _ := fs.Sub(assets, "static")
	files := http.FileServerFS(static)
	c.mux.Handle("GET /static/", http.StripPrefix("/static/", cacheFor(files)))

	c.mux.HandleFunc("GET /signin", c.public(c.signinPage))
	c.mux.HandleFunc("POST /signin", c.public(c.signin))
	c.mux.HandleFunc("GET /signin/totp", c.partial(c.totpPage))
	c.mux.HandleFunc("POST /signin/totp", c.partial(c.totpCheck))
	c.mux.HandleFunc("GET /signin/setup", c.partial(c.setupPage))
	c.mux.HandleFunc("POST /signin/setup", c.partial(c.setupCheck))
	c.mux.HandleFunc("POST /signout", c.signedIn(c.signout))
	c.mux.HandleFunc("GET /invite/{token}", c.public(c.invitePage))
	c.mux.HandleFunc("POST /invite/{token}", c.public(c.inviteAccept))

	c.mux.HandleFunc("GET /{$}", c.signedIn(c.home))
	c.mux.HandleFunc("POST /customers", c.signedIn(c.createCustomer))
	c.mux.HandleFunc("GET /customers/import", c.signedIn(c.importPage))
	c.mux.HandleFunc("POST /customers/import", c.signedIn(c.importCustomers))
	c.mux.HandleFunc("GET /customers/{id}/link", c.signedIn(c.linkPage))
	c.mux.HandleFunc("POST /customers/{id}/link", c.signedIn(c.linkCustomer))
	c.mux.HandleFunc("GET /customers/{id}", c.signedIn(c.endUsersPage))
	c.mux.HandleFunc("POST /customers/{id}/self-serve", c.signedIn(c.bulkSelfServe))
	c.mux.HandleFunc("POST /end-users/{id}/self-serve", c.signedIn(c.toggleSelfServe))
	c.mux.HandleFunc("GET /end-users/{id}/edit", c.signedIn(c.editCell))
	c.mux.HandleFunc("GET /end-users/{id}/cell", c.signedIn(c.showCell))
	c.mux.HandleFunc("POST /end-users/{id}/contact", c.signedIn(c.saveContact))
	c.mux.HandleFunc("POST /end-users/{id}/welcome", c.signedIn(c.sendWelcome))
	c.mux.HandleFunc("GET /end-users/{id}", c.signedIn(c.endUserPage))
	c.mux.HandleFunc("GET /events", c.signedIn(c.eventsPage))
	c.mux.HandleFunc("GET /connections", c.signedIn(c.connectionsPage))
	c.mux.HandleFunc("GET /connections/new", c.signedIn(c.newConnectionPage))
	c.mux.HandleFunc("POST /connections", c.signedIn(c.createConnection))
	c.mux.HandleFunc("GET /connections/{id}", c.signedIn(c.connectionPage))
	c.mux.HandleFunc("GET /connections/{id}/edit", c.signedIn(c.editConnectionPage))
	c.mux.HandleFunc("POST /connections/{id}", c.signedIn(c.saveConnection))
	c.mux.HandleFunc("POST /connections/{id}/test", c.signedIn(c.testConnection))
	c.mux.HandleFunc("POST /connections/{id}/agent/install-code", c.signedIn(c.issueInstallCode))
	c.mux.HandleFunc("POST /connections/{id}/agent/revoke", c.signedIn(c.revokeAgent))
	c.mux.HandleFunc("POST /connections/{id}/import", c.signedIn(c.startImport))
	c.mux.HandleFunc("GET /runs/{id}", c.signedIn(c.runPage))
	c.mux.HandleFunc("GET /settings", c.signedIn(c.settingsPage))
	c.mux.HandleFunc("POST /settings", c.signedIn(c.saveSettings))
	c.mux.HandleFunc("POST /settings/invite", c.signedIn(c.inviteTechnician))
	c.mux.HandleFunc("/", c.notFound)
}

// cacheFor lets browsers keep static files for an hour.
func cacheFor(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		h.ServeHTTP(w, r)
	})
}

func (c *Console) notFound(w http.ResponseWriter, r *http.Request) {
	c.renderError(w, r, nil, &service.Error{Status: http.StatusNotFound, Code: "not_found", Message: "There is no such page."})
}

// parseTemplates parses each page with the layout, once.
func (c *Console) parseTemplates() error {
	funcs := template.FuncMap{
		"date":     formatDate,
		"datetime": formatDateTime,
		"list":     func(v ...any) []any { return v },
	}
	names, err := fs.Glob(assets, "templates/pages/*.html")
	if err != nil {
		return err
	}
	c.pages = map[string]*template.Template{}
	for _, name := range names {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(assets, "templates/layout.html", "templates/parts/*.html", name)
		if err != nil {
			return fmt.Errorf("console: template %s: %w", name, err)
		}
		page := strings.TrimSuffix(strings.TrimPrefix(name, "templates/pages/"), ".html")
		c.pages[page] = t
	}
	return nil
}

func formatDate(t *time.Time) string {
	if t == nil || t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02")
}

func formatDateTime(t any) string {
	switch v := t.(type) {
	case time.Time:
		if v.IsZero() {
			return ""
		}
		return v.UTC().Format("2006-01-02 15:04 UTC")
	case *time.Time:
		if v == nil {
			return ""
		}
		return formatDateTime(*v)
	}
	return ""
}

// view is what every page gets.
type view struct {
	Title   string
	Session *session
	// Nav marks the current section.
	Nav        string
	Monitoring string
	Data       any
}

// render writes page with status; with fragment set only that template
// (for htmx swaps).
func (c *Console) render(w http.ResponseWriter, status int, page, fragment string, s *session, title string, data any) {
	t, ok := c.pages[page]
	if !ok {
		c.log.Error("console: no such page", "page", page)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	v := view{Title: title, Session: s, Nav: page, Data: data}
	if s != nil && c.mayOpenOps(s) {
		v.Monitoring = c.opts.MonitoringPath
	}
	var buf bytes.Buffer
	var err error
	if fragment != "" {
		err = t.ExecuteTemplate(&buf, fragment, data)
	} else {
		err = t.ExecuteTemplate(&buf, "layout.html", v)
	}
	if err != nil {
		c.log.Error("console: render", "page", page, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// renderError answers a failed request: the service's message and status,
// or a bare 500 (logged) for failures that are not the caller's doing.
func (c *Console) renderError(w http.ResponseWriter, r *http.Request, s *session, err error) {
	e, ok := service.Classify(err)
	if !ok {
		c.log.Error("console request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		e = &service.Error{Status: http.StatusInternalServerError, Code: "internal", Message: "Something went wrong on our side; the server log has the details."}
	}
	if e.Status == http.StatusNotFound {
		// Another tenant's object and a missing one look the same.
		e = &service.Error{Status: http.StatusNotFound, Code: "not_found", Message: "There is no such page, or it is not yours to see."}
	}
	if isHTMX(r) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(e.Status)
		_, _ = w.Write([]byte(e.Message))
		return
	}
	c.render(w, e.Status, "error", "", s, http.StatusText(e.Status), e)
}

func isHTMX(r *http.Request) bool { return r.Header.Get("HX-Request") == "true" }
