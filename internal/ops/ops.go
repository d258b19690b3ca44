// Package ops is the operators' side of the admin listener: liveness
// (/healthz), readiness (/readyz: the store and Redis answer, the schema is
// migrated), Prometheus
// metrics (/metrics), asynqmon, the queue dashboard (/monitoring/), and a
// scan on demand (POST /v1/ops/scan).
//
// /metrics, /monitoring/ and /v1/ops/scan need the ops token: "Authorization: Bearer
// <token>" (or, so that a browser can open the dashboard, HTTP basic auth
// with the token as password and any user name), compared in constant
// time. With no ops token configured they are closed (404). /healthz and
// /readyz are open and say nothing about the deployment beyond ok or not.
package ops

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/hibiken/asynqmon"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// MonitoringPath is where asynqmon is mounted.
const MonitoringPath = "/monitoring"

// ScanPath runs the expiry scan now (Options.Scan), behind the ops token.
const ScanPath = "POST /v1/ops/scan"

// Pinger is something readiness checks.
type Pinger interface {
	Ping(ctx context.Context) error
}

// SchemaChecker checks that a database holds this build's migrations.
type SchemaChecker interface {
	CheckSchema(ctx context.Context) error
}

// Options are the handler's dependencies.
type Options struct {
	// Store and Redis are pinged by /readyz (a nil one is not checked).
	Store Pinger
	Redis Pinger
	// Schema, when set, is checked by /readyz too: the database must hold
	// every migration of this build.
	Schema SchemaChecker
	// Gatherer serves /metrics (nil: prometheus.DefaultGatherer).
	Gatherer prometheus.Gatherer
	// RedisConnOpt connects asynqmon; nil leaves /monitoring/ out.
	RedisConnOpt asynq.RedisConnOpt
	// MonitoringReadOnly makes the dashboard view-only (no retry, delete,
	// pause).
	MonitoringReadOnly bool
	// OpsToken opens /metrics and /monitoring/; empty keeps them closed.
	OpsToken string
	// Scan runs the expiry scan now and returns what it did (as JSON), for
	// POST /v1/ops/scan behind the ops token; nil leaves the route out.
	Scan func(ctx context.Context) (any, error)
	// ReadyTimeout bounds each readiness ping (default 2s).
	ReadyTimeout time.Duration
	Logger       *slog.Logger
}

// Handler serves the ops endpoints. Close it to release asynqmon's Redis
// connections.
type Handler struct {
	opts Options
	mux  *http.ServeMux
	mon  *asynqmon.HTTPHandler
	log  *slog.Logger
}

// New returns the ops handler.
func New(opts Options) *Handler {
	h := &Handler{opts: opts, mux: http.NewServeMux(), log: opts.Logger}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if opts.RedisConnOpt != nil {
		h.mon = asynqmon.New(asynqmon.Options{RootPath: MonitoringPath, RedisConnOpt: opts.RedisConnOpt, ReadOnly: opts.MonitoringReadOnly})
	}
	h.mux.Handle("GET /healthz", h.Health())
	h.mux.Handle("GET /readyz", h.Ready())
	h.mux.Handle("GET /metrics", h.RequireToken(h.Metrics()))
	if scan := h.ScanNow(); scan != nil {
		h.mux.Handle(ScanPath, h.RequireToken(scan))
	}
	if h.mon != nil {
		h.mux.Handle(MonitoringPath+"/", h.RequireToken(h.mon))
		h.mux.Handle("GET "+MonitoringPath, http.RedirectHandler(MonitoringPath+"/", http.StatusMovedPermanently))
	}
	return h
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// Close closes asynqmon's connections.
func (h *Handler) Close() error {
	if h.mon != nil {
		return h.mon.Close()
	}
	return nil
}

// Health answers 200 while the process serves.
func (h *Handler) Health() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
}

// Ready answers 200 when the store and Redis answer and the schema holds
// this build's migrations, 503 otherwise (the reasons are logged, not
// shown).
func (h *Handler) Ready() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		timeout := h.opts.ReadyTimeout
		if timeout <= 0 {
			timeout = 2 * time.Second
		}
		status, checks := http.StatusOK, map[string]string{}
		for name, p := range map[string]Pinger{"store": h.opts.Store, "redis": h.opts.Redis} {
			if p == nil {
				continue
			}
			ctx, cancel := context.WithTimeout(r.Context(), timeout)
			err := p.Ping(ctx)
			cancel()
			if err != nil {
				status, checks[name] = http.StatusServiceUnavailable, "unavailable"
				h.log.Warn("not ready", "check", name, "err", err)
				continue
			}
			checks[name] = "ok"
		}
		if h.opts.Schema != nil && checks["store"] != "unavailable" {
			ctx, cancel := context.WithTimeout(r.Context(), timeout)
			err := h.opts.Schema.CheckSchema(ctx)
			cancel()
			checks["schema"] = "ok"
			if err != nil {
				status, checks["schema"] = http.StatusServiceUnavailable, "not migrated"
				h.log.Warn("not ready", "check", "schema", "err", err)
			}
		}
		writeJSON(w, status, checks)
	})
}

// ScanNow runs the expiry scan and answers 200 with its result, or 503 when
// it failed (the reason is logged); nil without Options.Scan (no token
// check: wrap it with RequireToken, or mount it where the token is checked).
func (h *Handler) ScanNow() http.Handler {
	if h.opts.Scan == nil {
		return nil
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res, err := h.opts.Scan(r.Context())
		if err != nil {
			h.log.Error("scan requested by ops failed", "err", err)
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "the scan failed; the server log has the details"})
			return
		}
		h.log.Info("scan requested by ops done", "result", res)
		writeJSON(w, http.StatusOK, map[string]any{"scan": res})
	})
}

// Metrics serves the Prometheus registry (no token check: wrap it with
// RequireToken, or mount it where the token is checked).
func (h *Handler) Metrics() http.Handler {
	g := h.opts.Gatherer
	if g == nil {
		g = prometheus.DefaultGatherer
	}
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{ErrorLog: slogPrinter{h.log}})
}

// Monitoring is asynqmon under MonitoringPath, or nil without Redis (no
// token check: wrap it with RequireToken, or mount it where the token is
// checked).
func (h *Handler) Monitoring() http.Handler {
	if h.mon == nil {
		return nil
	}
	return h.mon
}

// RequireToken lets through requests carrying the ops token (see the
// function RequireToken).
func (h *Handler) RequireToken(next http.Handler) http.Handler {
	return RequireToken(h.opts.OpsToken, next)
}

// RequireToken is the one ops-token guard (the ops endpoints here and the
// API's ops-only mounts): it lets through requests carrying token as a bearer
// token or as the basic auth password (for a browser on the monitoring UI).
// With no token configured everything is 404; a wrong or missing token is
// 401. The comparison is constant-time in the token's content and length.
func RequireToken(token string, next http.Handler) http.Handler {
	want := sha256.Sum256([]byte(token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if token == "" {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "the ops endpoints are closed: set SELFSERVE_OPS_TOKEN to open them"})
			return
		}
		got := sha256.Sum256(presented(r))
		if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			w.Header().Add("WWW-Authenticate", `Bearer realm="selfserve ops"`)
			w.Header().Add("WWW-Authenticate", `Basic realm="selfserve ops"`)
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "the ops token is required: Authorization: Bearer <SELFSERVE_OPS_TOKEN>"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// presented returns the token of a request: the bearer token, or the basic
// auth password.
func presented(r *http.Request) []byte {
	auth := r.Header.Get("Authorization")
	if scheme, token, ok := strings.Cut(auth, " "); ok && strings.EqualFold(scheme, "Bearer") {
		return []byte(strings.TrimSpace(token))
	}
	if _, pass, ok := r.BasicAuth(); ok {
		return []byte(pass)
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// slogPrinter lets promhttp log through slog.
type slogPrinter struct{ l *slog.Logger }

// Println implements promhttp.Logger.
func (p slogPrinter) Println(v ...any) {
	p.l.Error(strings.TrimSpace(fmt.Sprintln(v...)), "component", "metrics")
}
