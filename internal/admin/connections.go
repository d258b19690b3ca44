package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"path/filepath"
	"slices"
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

// newConnectionView shows c; a secret stored under its settings (before
// settings and secrets were told apart) shows as "[redacted]".
func (a *api) newConnectionView(c store.Connection) connectionView {
	settings := a.Registry.RedactSettings(c.Kind, c.Settings)
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
		out[i] = a.newConnectionView(c)
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
	writeJSON(w, http.StatusOK, a.newConnectionView(c))
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
	if settings, err = a.checkConfig(p, kind, settings, secrets, nil); err != nil {
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
		return audit(ctx, tx, p, "connection.created", "connection", created.ID, nil, a.newConnectionView(created))
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, a.newConnectionView(created))
	return nil
}

type connectionPatch struct {
	// Settings replaces the settings object. Changing an endpoint setting
	// (where the connection connects or what it trusts) drops the stored
	// secrets unless Secrets comes with it.
	Settings json.RawMessage `json:"settings"`
	// Secrets replaces the secrets object ({} clears it); absent keeps it.
	Secrets         json.RawMessage `json:"secrets"`
	EnableSelfServe *bool           `json:"enable_self_serve"`
	ScheduleSeconds *int            `json:"schedule_seconds"`
}

// patchedConnectionView is a connection after a PATCH.
type patchedConnectionView struct {
	connectionView
	// SecretsDropped says the stored secrets were dropped because an
	// endpoint setting changed without new secrets.
	SecretsDropped bool `json:"secrets_dropped"`
	// EndpointChanged lists the endpoint settings the PATCH changed.
	EndpointChanged []string `json:"endpoint_changed,omitempty"`
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
	var endpointChanged []string
	if req.Settings != nil {
		if next.Settings, err = objectOrEmpty("settings", req.Settings); err != nil {
			return err
		}
		endpointChanged = a.endpointChanges(cur.Kind, cur.Settings, next.Settings)
	}
	if req.EnableSelfServe != nil {
		next.EnableSelfServe = *req.EnableSelfServe
	}
	if req.ScheduleSeconds != nil {
		next.ScheduleSeconds = *req.ScheduleSeconds
	}
	keepSecrets := req.Secrets == nil
	// An endpoint change without new secrets drops the stored ones: they
	// must never follow the connection somewhere new.
	dropSecrets := keepSecrets && len(endpointChanged) > 0 && len(cur.SealedSecrets) > 0
	secrets := json.RawMessage(`{}`)
	switch {
	case dropSecrets:
		keepSecrets = false
		next.SealedSecrets = nil
	case keepSecrets:
		if a.Secrets != nil && len(cur.SealedSecrets) > 0 {
			if secrets, err = a.connections().DecryptSecrets(cur); err != nil {
				return conflict("secrets_unreadable", "the stored secrets of connection %q cannot be read (%v); send new secrets", cur.Name, err)
			}
		}
	default:
		if secrets, err = objectOrEmpty("secrets", req.Secrets); err != nil {
			return err
		}
		if next.SealedSecrets, err = a.seal(secrets); err != nil {
			return err
		}
	}
	// Only a request that changes settings or secrets has them checked: a
	// schedule change is not refused over settings stored long ago.
	if req.Settings != nil || req.Secrets != nil {
		if next.Settings, err = a.checkConfig(p, cur.Kind, next.Settings, secrets, cur.Settings); err != nil {
			return err
		}
	}
	var after store.Connection
	err = a.Store.InTx(ctx, func(tx *store.Store) error {
		before, after0, err := tx.UpdateConnection(ctx, next, keepSecrets)
		if err != nil {
			return err
		}
		after = after0
		bv, av := a.newConnectionView(before), a.newConnectionView(after)
		secretsChanged := !keepSecrets
		if !secretsChanged && connectors.SettingsEqual(bv.Settings, av.Settings) && bv.EnableSelfServe == av.EnableSelfServe && bv.ScheduleSeconds == av.ScheduleSeconds {
			return nil // nothing changed: nothing to audit
		}
		type auditView struct {
			patchedConnectionView
			SecretsReplaced bool `json:"secrets_replaced"`
		}
		return audit(ctx, tx, p, "connection.updated", "connection", id, bv,
			auditView{patchedConnectionView{av, dropSecrets, endpointChanged}, secretsChanged && !dropSecrets})
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, patchedConnectionView{a.newConnectionView(after), dropSecrets, endpointChanged})
	return nil
}

// endpointChanges lists the endpoint settings of kind whose value differs
// between before and after (a key added or removed counts).
func (a *api) endpointChanges(kind connectors.Kind, before, after json.RawMessage) []string {
	keys, _ := a.Registry.Keys(kind)
	var b, n map[string]json.RawMessage
	_ = json.Unmarshal(before, &b)
	_ = json.Unmarshal(after, &n)
	var changed []string
	for _, k := range keys.Endpoint {
		x, inB := b[k]
		y, inN := n[k]
		if inB != inN || (inB && !connectors.SettingsEqual(x, y)) {
			changed = append(changed, k)
		}
	}
	return changed
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

// checkConfig checks settings and secrets against the connector's Config
// (every key in its place, the right types), a PSA connection's host
// against the vendor's cloud and the operator's allowed hosts, and the
// files the settings name against the tenant's import folder. It returns
// the settings with those files' paths made absolute. prev is the stored
// settings (nil on create): a file path it already holds is kept as is.
func (a *api) checkConfig(p *principal, kind connectors.Kind, settings, secrets, prev json.RawMessage) (json.RawMessage, error) {
	cfg, err := a.Registry.Decode(kind, settings, secrets)
	if err != nil {
		return nil, configError(err)
	}
	if err := connectors.CheckHost(cfg, a.AllowedPSAHosts); err != nil {
		return nil, configError(err)
	}
	return a.confineFiles(p, kind, settings, prev)
}

// configError turns a connector's config error into a 400 naming the key.
func configError(err error) error {
	var ke *connectors.KeyError
	if errors.As(err, &ke) {
		return badField(ke.Field(), "%s", err)
	}
	field := "settings"
	if strings.Contains(err.Error(), "secrets") {
		field = "secrets"
	}
	return badField(field, "%s", err)
}

// confineFiles keeps the files named by settings (a file connection's
// path, a ca_file) inside the tenant's import folder,
// <FileImportDir>/<tenant name>/: a technician must not read server files,
// or another tenant's, through a connection. A relative path is read in
// that folder; every path is stored absolute. A value equal to prev's is
// kept (the operator's apply file may name files elsewhere).
func (a *api) confineFiles(p *principal, kind connectors.Kind, settings, prev json.RawMessage) (json.RawMessage, error) {
	keys, _ := a.Registry.Keys(kind)
	if len(keys.Files) == 0 {
		return settings, nil
	}
	var s, old map[string]json.RawMessage
	if err := json.Unmarshal(settings, &s); err != nil {
		return nil, badField("settings", "settings must be a JSON object")
	}
	_ = json.Unmarshal(prev, &old)
	changed := false
	for _, key := range keys.Files {
		raw, ok := s[key]
		if !ok || (old != nil && connectors.SettingsEqual(old[key], raw)) {
			continue
		}
		var value string
		if err := json.Unmarshal(raw, &value); err != nil || value == "" {
			continue // the connector's own checks report it
		}
		path, err := a.confinePath(p, "settings."+key, value)
		if err != nil {
			return nil, err
		}
		s[key], _ = json.Marshal(path)
		changed = true
	}
	if !changed {
		return settings, nil
	}
	out, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// confinePath resolves value in the tenant's import folder and refuses it
// when it leads outside, symlinks resolved. It returns the absolute path.
func (a *api) confinePath(p *principal, field, value string) (string, error) {
	if a.FileImportDir == "" {
		return "", badField(field, "%s cannot be set over the API on this server: the operator has not set SELFSERVE_FILE_IMPORT_DIR (or declares the connection in an apply file)", field)
	}
	name := p.tenant.Name
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\\\x00") {
		return "", badField(field, "tenant %q has no import folder: its name cannot be a folder name", name)
	}
	root, err := filepath.Abs(a.FileImportDir)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(root, name)
	outside := badField(field, "%s may only name files in this tenant's import folder (<file_import_dir>/%s/)", field, name)
	path := value
	if !filepath.IsAbs(path) {
		path = filepath.Join(dir, path)
	}
	path = filepath.Clean(path)
	if !within(dir, path) {
		return "", outside
	}
	realDir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", badField(field, "this tenant's import folder does not exist on the server: the operator creates <file_import_dir>/%s/", name)
	}
	real, err := filepath.EvalSymlinks(path)
	if errors.Is(err, fs.ErrNotExist) {
		// Not there yet: the folder it goes in must be inside.
		parent, perr := filepath.EvalSymlinks(filepath.Dir(path))
		if perr != nil {
			return "", badField(field, "%s: no such folder in this tenant's import folder", field)
		}
		real, err = filepath.Join(parent, filepath.Base(path)), nil
	}
	if err != nil || !within(realDir, real) {
		return "", outside
	}
	return path, nil
}

// within reports whether path is dir or below it (both clean and absolute).
func within(dir, path string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// seal encrypts a secrets object (nil for an empty one).
func (a *api) seal(secrets json.RawMessage) ([]byte, error) {
	if len(secrets) == 0 || string(secrets) == "{}" || connectors.SettingsEqual(secrets, json.RawMessage(`{}`)) {
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
	// Category classifies a failure: credentials_required, unauthorized,
	// invalid_config, not_found, rate_limited or unavailable.
	Category string `json:"category,omitempty"`
	// Message says what to do. Network failures share one message: the
	// caller does not learn whether a port was closed, a handshake failed
	// or a host was silent (the server log has the detail).
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

// ping tests conn. What the connector reports before any network request
// (its settings) is shown as it is; what comes back from the network is
// reduced to its category and logged in full.
func (a *api) ping(ctx context.Context, conn store.Connection) testResult {
	var stored map[string]json.RawMessage
	_ = json.Unmarshal(conn.Settings, &stored)
	keys, _ := a.Registry.Keys(conn.Kind)
	secretUnderSettings := slices.ContainsFunc(keys.Secrets, func(k string) bool { return stored[k] != nil })
	if len(keys.Secrets) > 0 && len(conn.SealedSecrets) == 0 && !secretUnderSettings {
		return testResult{Category: "credentials_required", Message: fmt.Sprintf(
			"credentials required: the connection has no stored secrets (%s); send them with PATCH /v1/connections/%d",
			strings.Join(keys.Secrets, ", "), conn.ID)}
	}
	secrets, err := a.connections().DecryptSecrets(conn)
	if err != nil {
		return testResult{Category: "invalid_config", Message: err.Error()}
	}
	// Decoded strictly: a secret stored under the settings long ago is
	// reported, so that someone moves it.
	cfg, err := a.Registry.Decode(conn.Kind, conn.Settings, secrets)
	if err == nil {
		err = connectors.CheckHost(cfg, a.AllowedPSAHosts)
	}
	if err != nil {
		return testResult{Category: "invalid_config", Message: err.Error()}
	}
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
		if conn.Kind == connectors.KindFile {
			// A file in the tenant's own folder: its message (a missing
			// column, a bad row) says nothing of the network.
			return testResult{Category: category(err), Message: err.Error()}
		}
		res := networkResult(err)
		a.log.Warn("connection test failed", "tenant", conn.TenantID, "connection", conn.ID, "kind", conn.Kind, "category", res.Category, "err", err)
		return res
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

// networkResult reduces a failed test to one message per category.
func networkResult(err error) testResult {
	switch c := category(err); c {
	case "unauthorized":
		return testResult{Category: c, Message: "the server refused the credentials: check the secrets"}
	case "not_found":
		return testResult{Category: c, Message: "the server accepted the credentials but does not have what the settings name (a base DN, a tenant, a layout): check the settings"}
	case "rate_limited":
		return testResult{Category: c, Message: "the server is rate limiting requests: try again later"}
	default:
		return testResult{Category: "unavailable", Message: "could not reach the server, or the TLS handshake or the protocol failed: check the address, the port and the certificate (the server log has the detail)"}
	}
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
