// Package admin is selfserve's admin HTTP API: what technicians (and the
// CLI's remote commands) use to flip the tenant's self-serve override,
// switch end users on and off, fill in missing emails and mobiles, send
// welcome emails and start imports, and what the self-serve apps use to
// report an end user's first access.
//
// It is plain net/http: a ServeMux with method and path patterns, JSON in and
// out, and one error shape for every failure:
//
//	{"error": {"code": "invalid_field", "message": "…", "field": "mobile"}}
//
// Every route is in one table (routes) that registers it, says who may call
// it and is checked against the OpenAPI document served at /openapi.json.
//
// Auth: technicians send "Authorization: Bearer ss_…" (an API token of their
// login, stored hashed); every handler works inside that login's tenant, so
// another tenant's object is 404, never 403. Tenant settings, app clients
// and connections (create, change, test) need the super or primary role;
// customers, syncs, imports and end users are open to every role. A
// connection's secrets never leave the server: they are write-only, and
// changing where a connection connects or what it trusts drops them unless
// the same request sends them again. Self-serve apps send a token of their own
// ("ssapp_…", one per app client); the end user's mobile confirmation is
// authorised by a signed single-use link token (package link). Every change
// writes its audit entry in the same transaction as the change.
//
// The API never enqueues through a queue library directly: it takes an
// Enqueuer, and records a sync run in the store before enqueueing it.
package admin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"selfserve/connectors"
	"selfserve/internal/agentserver"
	"selfserve/internal/ops"
	"selfserve/internal/secretbox"
	"selfserve/internal/service"
	"selfserve/internal/store"
)

// Mount is an extra handler served on the same server (the ops endpoints:
// /healthz, /readyz, /metrics, /monitoring/).
type Mount struct {
	// Pattern is a ServeMux pattern, e.g. "GET /healthz" or "/monitoring/".
	Pattern string
	Handler http.Handler
	// OpsOnly requires "Authorization: Bearer <ops token>" (Options.OpsToken);
	// with no ops token configured the handler is closed (404).
	OpsOnly bool
}

// Options are the API's dependencies. Store and Registry are required.
type Options struct {
	Store    *store.Store
	Registry connectors.Registry
	// Secrets seals connection secrets; nil refuses requests that carry
	// secrets (the server has no SELFSERVE_ENCRYPTION_KEY).
	Secrets *secretbox.Box
	// Enqueuer queues syncs, customer imports and welcome emails; nil
	// refuses them with 503.
	Enqueuer service.Enqueuer
	// Logger receives one line per request; nil discards.
	Logger *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
	// OpsToken opens the Mounts marked OpsOnly.
	OpsToken string
	// Mounts are extra handlers served on the same mux.
	Mounts []Mount
	// MaxBodyBytes caps request bodies (default 1 MiB): larger is 413.
	MaxBodyBytes int64
	// FileImportDir holds one folder per tenant (<FileImportDir>/<tenant
	// name>/), the only place the files named by connections made or
	// changed over the API (a file connection's path, a ca_file) may be;
	// empty refuses such files over the API.
	FileImportDir string
	// AllowedPSAHosts are the hosts beyond the vendors' clouds that PSA
	// connections made or changed over the API may call (see
	// connectors.CheckHost).
	AllowedPSAHosts []string
	// Agents serves agent connections (install codes, state, revocation);
	// nil answers those requests with 503.
	Agents *agentserver.Service
	// PublicURL is the external base URL of the public listener, for the
	// agent's enrolment command.
	PublicURL string
	// StaleAfter lets a new run replace a queued or running one without a
	// heartbeat for that long (default 15 minutes).
	StaleAfter time.Duration
}

// DefaultMaxBodyBytes is the default request body limit.
const DefaultMaxBodyBytes = 1 << 20

// api is the handler set with its dependencies.
type api struct {
	Options
	// svc runs the operations the console shares.
	svc *service.Service
	log *slog.Logger
	mux *http.ServeMux
	// paths answers "does any route have this path?" for 405 replies.
	paths *http.ServeMux
}

// New returns the API's handler. It fails when a required dependency is
// missing or a mount collides with a route.
func New(opts Options) (http.Handler, error) {
	var missing []string
	if opts.Store == nil {
		missing = append(missing, "Store")
	}
	if len(opts.Registry.Kinds()) == 0 {
		missing = append(missing, "Registry")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("admin.New: missing %s", strings.Join(missing, ", "))
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.StaleAfter <= 0 {
		opts.StaleAfter = 15 * time.Minute
	}
	a := &api{Options: opts, log: opts.Logger, mux: http.NewServeMux(), paths: http.NewServeMux()}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	a.svc = &service.Service{Store: opts.Store, Enqueuer: opts.Enqueuer, Logger: a.log, Now: opts.Now, StaleAfter: opts.StaleAfter,
		Registry: opts.Registry, Secrets: opts.Secrets, FileImportDir: opts.FileImportDir, AllowedPSAHosts: opts.AllowedPSAHosts,
		Agents: opts.Agents, PublicURL: opts.PublicURL}
	seenPath := map[string]bool{}
	for _, rt := range a.routes() {
		if err := register(a.mux, rt.method+" "+rt.path, a.guard(rt)); err != nil {
			return nil, err
		}
		if !seenPath[rt.path] {
			seenPath[rt.path] = true
			a.paths.Handle(rt.path, http.NotFoundHandler())
		}
	}
	for _, m := range opts.Mounts {
		h := m.Handler
		if m.OpsOnly {
			h = ops.RequireToken(opts.OpsToken, h)
		}
		if err := register(a.mux, m.Pattern, h); err != nil {
			return nil, fmt.Errorf("admin.New: mount %q: %w", m.Pattern, err)
		}
	}
	if err := register(a.mux, "/", http.HandlerFunc(a.noRoute)); err != nil {
		return nil, err
	}
	return a, nil
}

// register adds a pattern, turning ServeMux's panic on a conflict into an
// error.
func register(mux *http.ServeMux, pattern string, h http.Handler) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	mux.Handle(pattern, h)
	return nil
}

// ServeHTTP serves a request, logs it and turns panics into 500s.
func (a *api) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := a.Now()
	rec := &statusRecorder{ResponseWriter: w}
	defer func() {
		if p := recover(); p != nil {
			a.log.Error("handler panic", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(p))
			if rec.status == 0 {
				writeError(rec, errInternal)
			}
		}
		a.log.Info("request", "method", r.Method, "path", r.URL.Path, "status", rec.status, "duration_ms", a.Now().Sub(start).Milliseconds())
	}()
	a.mux.ServeHTTP(rec, r)
}

// noRoute answers requests no route matched: 405 with Allow when the path
// exists for other methods, else 404.
func (a *api) noRoute(w http.ResponseWriter, r *http.Request) {
	if _, pattern := a.paths.Handler(r); pattern != "" {
		var allow []string
		for _, rt := range a.routes() {
			if rt.path == pattern {
				allow = append(allow, rt.method)
			}
		}
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeError(w, &apiError{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed",
			Message: fmt.Sprintf("%s is not allowed on %s; use %s", r.Method, r.URL.Path, strings.Join(allow, ", "))})
		return
	}
	writeError(w, &apiError{Status: http.StatusNotFound, Code: "not_found", Message: fmt.Sprintf("no such endpoint: %s %s (see /openapi.json)", r.Method, r.URL.Path)})
}

// statusRecorder remembers the status written.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer (the
// mounted asynqmon streams).
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// NewServer returns an http.Server for h on addr with timeouts suited to
// a JSON API.
func NewServer(addr string, h http.Handler) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
}

// ShutdownTimeout is how long Serve waits for requests in flight when its
// context ends.
const ShutdownTimeout = 20 * time.Second

// Serve runs srv on ln until ctx ends, then shuts it down gracefully:
// in-flight requests get ShutdownTimeout to finish. It returns nil after a
// clean shutdown.
func Serve(ctx context.Context, srv *http.Server, ln net.Listener) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("admin server: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serveErr := <-errc; serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) && err == nil {
		err = serveErr
	}
	if err != nil {
		return fmt.Errorf("admin server shutdown: %w", err)
	}
	return nil
}
