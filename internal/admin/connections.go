package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"selfserve/connectors"
	"selfserve/internal/service"
	"selfserve/internal/store"
)

// connectionView is a connection as the API shows it: never its secrets.
type connectionView struct {
	ID         int64           `json:"id"`
	Name       string          `json:"name"`
	Kind       connectors.Kind `json:"kind"`
	CustomerID *int64          `json:"customer_id"`
	Settings   json.RawMessage `json:"settings"`
	// HasSecrets says whether secrets are stored (they are write-only).
	HasSecrets      bool      `json:"has_secrets"`
	EnableSelfServe bool      `json:"enable_self_serve"`
	ScheduleSeconds int       `json:"schedule_seconds"`
	Incremental     bool      `json:"incremental_cursor"`
	CreatedAt       time.Time `json:"created_at"`
	UpdatedAt       time.Time `json:"updated_at"`
}

func newConnectionView(c store.Connection) connectionView {
	settings := c.Settings
	if len(settings) == 0 {
		settings = json.RawMessage(`{}`)
	}
	return connectionView{
		ID: c.ID, Name: c.Name, Kind: c.Kind, CustomerID: c.CustomerID, Settings: settings,
		HasSecrets: len(c.SealedSecrets) > 0, EnableSelfServe: c.EnableSelfServe, ScheduleSeconds: c.ScheduleSeconds,
		Incremental: c.Cursor != "", CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt,
	}
}

func (a *api) listConnections(w http.ResponseWriter, r *http.Request, p *principal) error {
	if _, err := newQuery(r); err != nil {
		return err
	}
	cs, err := a.Store.Connections(r.Context(), p.tenant.ID)
	if err != nil {
		return err
	}
	out := make([]connectionView, len(cs))
	for i, c := range cs {
		out[i] = newConnectionView(c)
	}
	writeJSON(w, http.StatusOK, map[string]any{"connections": out})
	return nil
}

func (a *api) getConnection(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	c, err := a.Store.Connection(r.Context(), p.tenant.ID, id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newConnectionView(c))
	return nil
}

// Schedule bounds: 0 turns scheduled syncs off.
const (
	defaultScheduleSeconds = 3 * 3600
	minScheduleSeconds     = 300
	maxScheduleSeconds     = 7 * 24 * 3600
)

type connectionRequest struct {
	Name string `json:"name"`
	Kind string `json:"kind"`
	// CustomerID is required for directory kinds (ad, azure, file) and
	// refused for PSA kinds.
	CustomerID *int64 `json:"customer_id"`
	// Settings and Secrets are JSON objects of the connector's Config.
	Settings        json.RawMessage `json:"settings"`
	Secrets         json.RawMessage `json:"secrets"`
	EnableSelfServe bool            `json:"enable_self_serve"`
	ScheduleSeconds *int            `json:"schedule_seconds"`
}

func (a *api) createConnection(w http.ResponseWriter, r *http.Request, p *principal) error {
	var req connectionRequest
	if err := a.decodeBody(w, r, &req); err != nil {
		return err
	}
	if err := checkSlug("name", req.Name); err != nil {
		return err
	}
	kind := connectors.Kind(req.Kind)
	if !a.Registry.Has(kind) {
		return badField("kind", "%q is not a connector kind this server knows (%s)", truncate(req.Kind, 40), strings.Join(a.Registry.Kinds(), ", "))
	}
	ctx := r.Context()
	switch {
	case kind.IsDirectory() && req.CustomerID == nil:
		return badField("customer_id", "a %s connection imports end users, so it needs the customer_id they belong to", kind)
	case !kind.IsDirectory() && req.CustomerID != nil:
		return badField("customer_id", "a %s connection serves the whole tenant; leave customer_id out", kind)
	case req.CustomerID != nil:
		if _, err := a.Store.Customer(ctx, p.tenant.ID, *req.CustomerID); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return &apiError{Status: http.StatusNotFound, Code: "not_found", Field: "customer_id", Message: fmt.Sprintf("customer %d: not found", *req.CustomerID)}
			}
			return err
		}
	}
	schedule := defaultScheduleSeconds
	if req.ScheduleSeconds != nil {
		schedule = *req.ScheduleSeconds
		if err := checkSchedule(schedule); err != nil {
			return err
		}
	}
	settings, err := objectOrEmpty("settings", req.Settings)
	if err != nil {
		return err
	}
	secrets, err := objectOrEmpty("secrets", req.Secrets)
	if err != nil {
		return err
	}
	if err := a.checkConfig(kind, settings, secrets); err != nil {
		return err
	}
	conn := store.Connection{TenantID: p.tenant.ID, CustomerID: req.CustomerID, Name: req.Name, Kind: kind,
		Settings: settings, EnableSelfServe: req.EnableSelfServe, ScheduleSeconds: schedule}
	if conn.SealedSecrets, err = a.seal(secrets); err != nil {
		return err
	}
	var created store.Connection
	err = a.Store.InTx(ctx, func(tx *store.Store) error {
		var err error
		if created, err = tx.CreateConnection(ctx, conn); err != nil {
			return err
		}
		return audit(ctx, tx, p, "connection.created", "connection", created.ID, nil, newConnectionView(created))
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, newConnectionView(created))
	return nil
}

type connectionPatch struct {
	// Settings replaces the settings object.
	Settings json.RawMessage `json:"settings"`
	// Secrets replaces the secrets object ({} clears it); absent keeps it.
	Secrets         json.RawMessage `json:"secrets"`
	EnableSelfServe *bool           `json:"enable_self_serve"`
	ScheduleSeconds *int            `json:"schedule_seconds"`
}

func (a *api) patchConnection(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var req connectionPatch
	if err := a.decodeBody(w, r, &req); err != nil {
		return err
	}
	if req.Settings == nil && req.Secrets == nil && req.EnableSelfServe == nil && req.ScheduleSeconds == nil {
		return badField("", "nothing to change: give settings, secrets, enable_self_serve or schedule_seconds")
	}
	if req.ScheduleSeconds != nil {
		if err := checkSchedule(*req.ScheduleSeconds); err != nil {
			return err
		}
	}
	ctx := r.Context()
	cur, err := a.Store.Connection(ctx, p.tenant.ID, id)
	if err != nil {
		return err
	}
	next := cur
	if req.Settings != nil {
		if next.Settings, err = objectOrEmpty("settings", req.Settings); err != nil {
			return err
		}
	}
	if req.EnableSelfServe != nil {
		next.EnableSelfServe = *req.EnableSelfServe
	}
	if req.ScheduleSeconds != nil {
		next.ScheduleSeconds = *req.ScheduleSeconds
	}
	keepSecrets := req.Secrets == nil
	var secrets json.RawMessage
	if keepSecrets {
		if a.Secrets != nil {
			if secrets, err = a.connections().DecryptSecrets(cur); err != nil {
				return conflict("secrets_unreadable", "the stored secrets of connection %q cannot be read (%v); send new secrets", cur.Name, err)
			}
		}
	} else {
		if secrets, err = objectOrEmpty("secrets", req.Secrets); err != nil {
			return err
		}
		if next.SealedSecrets, err = a.seal(secrets); err != nil {
			return err
		}
	}
	if err := a.checkConfig(cur.Kind, next.Settings, secrets); err != nil {
		return err
	}
	var after store.Connection
	err = a.Store.InTx(ctx, func(tx *store.Store) error {
		before, after0, err := tx.UpdateConnection(ctx, next, keepSecrets)
		if err != nil {
			return err
		}
		after = after0
		bv, av := newConnectionView(before), newConnectionView(after)
		secretsChanged := !keepSecrets
		if !secretsChanged && jsonEq(bv.Settings, av.Settings) && bv.EnableSelfServe == av.EnableSelfServe && bv.ScheduleSeconds == av.ScheduleSeconds {
			return nil // nothing changed: nothing to audit
		}
		type auditView struct {
			connectionView
			SecretsReplaced bool `json:"secrets_replaced"`
		}
		return audit(ctx, tx, p, "connection.updated", "connection", id, bv, auditView{av, secretsChanged})
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newConnectionView(after))
	return nil
}

func jsonEq(a, b json.RawMessage) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return bytes.Equal(a, b)
	}
	ca, _ := json.Marshal(x)
	cb, _ := json.Marshal(y)
	return bytes.Equal(ca, cb)
}

func checkSchedule(s int) error {
	if s != 0 && (s < minScheduleSeconds || s > maxScheduleSeconds) {
		return badField("schedule_seconds", "schedule_seconds %d is out of range: 0 (no scheduled syncs) or %d..%d", s, minScheduleSeconds, maxScheduleSeconds)
	}
	return nil
}

// objectOrEmpty checks that raw is a JSON object (absent: {}).
func objectOrEmpty(field string, raw json.RawMessage) (json.RawMessage, error) {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 {
		return json.RawMessage(`{}`), nil
	}
	if t[0] != '{' {
		return nil, badField(field, "%s must be a JSON object", field)
	}
	return json.RawMessage(t), nil
}

var unknownKeyRE = regexp.MustCompile(`unknown field "([^"]*)"`)

// checkConfig validates settings and secrets through the connector's
// Config decoding: unknown keys and wrong types are 400s naming the key.
func (a *api) checkConfig(kind connectors.Kind, settings, secrets json.RawMessage) error {
	_, err := a.Registry.Decode(kind, settings, secrets)
	if err == nil {
		if kind == connectors.KindFile {
			return a.checkImportPath(settings)
		}
		return nil
	}
	msg := err.Error()
	field := "settings"
	if strings.Contains(msg, ": secrets:") || strings.Contains(msg, "as a secret") {
		field = "secrets"
	}
	if m := unknownKeyRE.FindStringSubmatch(msg); m != nil {
		field += "." + m[1]
	}
	return badField(field, "%s", msg)
}

// checkImportPath keeps file connections made over the API inside the
// operator's FileImportDir: a technician must not read arbitrary server
// files through a connection's path.
func (a *api) checkImportPath(settings json.RawMessage) error {
	if a.FileImportDir == "" {
		return badField("kind", "file connections cannot be created over the API on this server (the operator sets SELFSERVE_FILE_IMPORT_DIR, or declares them in an apply file)")
	}
	var s struct {
		Path string `json:"path"`
	}
	_ = json.Unmarshal(settings, &s)
	root, err := filepath.Abs(a.FileImportDir)
	if err != nil {
		return err
	}
	p := s.Path
	if !filepath.IsAbs(p) {
		p = filepath.Join(root, p)
	}
	p = filepath.Clean(p)
	if resolved, err := filepath.EvalSymlinks(p); err == nil {
		p = resolved
	}
	if resolvedRoot, err := filepath.EvalSymlinks(root); err == nil {
		root = resolvedRoot
	}
	if rel, err := filepath.Rel(root, p); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return badField("settings.path", "file connections may only read files under the server's import directory")
	}
	return nil
}

// seal encrypts a secrets object (nil for an empty one).
func (a *api) seal(secrets json.RawMessage) ([]byte, error) {
	if len(secrets) == 0 || string(secrets) == "{}" || jsonEq(secrets, json.RawMessage(`{}`)) {
		return nil, nil
	}
	if a.Secrets == nil {
		return nil, unavailable("this server has no encryption key (SELFSERVE_ENCRYPTION_KEY), so it cannot store secrets")
	}
	return a.connections().SealSecrets(secrets)
}

// testResult is the outcome of a connection test.
type testResult struct {
	OK bool `json:"ok"`
	// Category classifies a failure: unauthorized, invalid_config,
	// not_found, rate_limited, unavailable, bad_response or error.
	Category string `json:"category,omitempty"`
	// Message is the connector's own words.
	Message    string `json:"message"`
	DurationMS int64  `json:"duration_ms"`
	// WriteBack says, for a directory that self-serve writes passwords to
	// (connectors.WriteAccessChecker), whether the credential may reset
	// passwords and clear lockouts. Absent for other connectors, and when
	// the connection itself fails.
	WriteBack *writeBackResult `json:"write_back,omitempty"`
}

// writeBackResult is the outcome of a connection's write-access check.
type writeBackResult struct {
	OK       bool   `json:"ok"`
	Category string `json:"category,omitempty"`
	Message  string `json:"message"`
}

// testTimeout bounds a connection test.
const testTimeout = 30 * time.Second

func (a *api) testConnection(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	ctx := r.Context()
	conn, err := a.Store.Connection(ctx, p.tenant.ID, id)
	if err != nil {
		return err
	}
	start := a.Now()
	res := a.ping(ctx, conn)
	res.DurationMS = a.Now().Sub(start).Milliseconds()
	writeJSON(w, http.StatusOK, res)
	return nil
}

func (a *api) ping(ctx context.Context, conn store.Connection) testResult {
	src, err := a.connections().Open(conn, a.log)
	if err != nil {
		return testResult{Category: category(err), Message: err.Error()}
	}
	defer src.Close()
	pinger, ok := src.(connectors.Pinger)
	if !ok {
		return testResult{OK: true, Message: fmt.Sprintf("the settings are valid; the %s connector has no live test", conn.Kind)}
	}
	pctx, cancel := context.WithTimeout(ctx, testTimeout)
	defer cancel()
	if err := pinger.Ping(pctx); err != nil {
		return testResult{Category: category(err), Message: err.Error()}
	}
	res := testResult{OK: true, Message: "connection works"}
	if checker, ok := src.(connectors.WriteAccessChecker); ok {
		res.WriteBack = &writeBackResult{OK: true, Message: "the credential may reset passwords and clear lockouts"}
		if err := checker.CheckWriteAccess(pctx); err != nil {
			res.WriteBack = &writeBackResult{Category: category(err), Message: err.Error()}
		}
	}
	return res
}

func category(err error) string {
	if _, ok := connectors.RetryAfter(err); ok {
		return "rate_limited"
	}
	for _, c := range []struct {
		err  error
		name string
	}{
		{connectors.ErrUnauthorized, "unauthorized"},
		{connectors.ErrInvalidConfig, "invalid_config"},
		{connectors.ErrNotFound, "not_found"},
		{connectors.ErrUnavailable, "unavailable"},
		{connectors.ErrBadResponse, "bad_response"},
		{context.DeadlineExceeded, "unavailable"},
	} {
		if errors.Is(err, c.err) {
			return c.name
		}
	}
	return "error"
}

type syncRequest struct {
	// Mode is full or incremental (default: incremental, which is full when
	// the connection has no cursor or cannot do deltas).
	Mode string `json:"mode"`
	// ConfirmRemovals lets the run remove more than the allowed share.
	ConfirmRemovals bool `json:"confirm_removals"`
}

func (a *api) startSync(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var req syncRequest
	if err := a.decodeOptionalBody(w, r, &req); err != nil {
		return err
	}
	mode := store.ModeIncremental
	switch req.Mode {
	case "", string(store.ModeIncremental):
	case string(store.ModeFull):
		mode = store.ModeFull
	default:
		return badField("mode", "%q is not a mode; use full or incremental", truncate(req.Mode, 40))
	}
	ctx := r.Context()
	conn, err := a.Store.Connection(ctx, p.tenant.ID, id)
	if err != nil {
		return err
	}
	if !conn.Kind.IsDirectory() {
		return conflict("wrong_kind", "connection %q is a %s connection: import its customers with POST /v1/customers/import", conn.Name, conn.Kind)
	}
	run, err := a.svc.StartRun(ctx, p.asActor(), conn, service.RunSync, mode, req.ConfirmRemovals, "sync.requested")
	if err != nil {
		return err
	}
	expected, err := a.Store.CountConnectionUsers(ctx, p.tenant.ID, conn.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, newRunView(run, expected))
	return nil
}

// runView is a run with its progress.
type runView struct {
	store.SyncRun
	Problems []store.Problem `json:"problems"`
	// Expected is how many end users the connection had before the run (an
	// estimate of the run's size; 0 when unknown).
	Expected int  `json:"expected"`
	Finished bool `json:"finished"`
}

func newRunView(run store.SyncRun, expected int) runView {
	problems := run.Problems()
	if problems == nil {
		problems = []store.Problem{}
	}
	return runView{SyncRun: run, Problems: problems, Expected: expected, Finished: run.Status.Finished()}
}

func (a *api) listRuns(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	q, err := newQuery(r, "limit")
	if err != nil {
		return err
	}
	limit, err := q.int("limit", 1, 200, 50)
	if err != nil {
		return err
	}
	ctx := r.Context()
	if _, err := a.Store.Connection(ctx, p.tenant.ID, id); err != nil {
		return err
	}
	runs, err := a.Store.Runs(ctx, p.tenant.ID, id, int(limit))
	if err != nil {
		return err
	}
	out := make([]runView, len(runs))
	for i, run := range runs {
		out[i] = newRunView(run, 0)
	}
	writeJSON(w, http.StatusOK, map[string]any{"runs": out})
	return nil
}

func (a *api) getRun(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	ctx := r.Context()
	run, err := a.Store.Run(ctx, p.tenant.ID, id)
	if err != nil {
		return err
	}
	expected := 0
	if !run.Status.Finished() {
		if expected, err = a.Store.CountConnectionUsers(ctx, p.tenant.ID, run.ConnectionID); err != nil {
			return err
		}
	}
	writeJSON(w, http.StatusOK, newRunView(run, expected))
	return nil
}
