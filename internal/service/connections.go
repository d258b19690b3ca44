package service

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"selfserve/connectors"
	"selfserve/internal/connection"
	"selfserve/internal/store"
)

// ConnectionView is a connection as technicians see it: never its secrets.
type ConnectionView struct {
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

// NewConnectionView shows c; a secret stored under its settings (before
// settings and secrets were told apart) shows as "[redacted]".
func (s *Service) NewConnectionView(c store.Connection) ConnectionView {
	settings := s.Registry.RedactSettings(c.Kind, c.Settings)
	if len(settings) == 0 {
		settings = json.RawMessage(`{}`)
	}
	return ConnectionView{
		ID: c.ID, Name: c.Name, Kind: c.Kind, CustomerID: c.CustomerID, Settings: settings,
		HasSecrets: len(c.SealedSecrets) > 0, EnableSelfServe: c.EnableSelfServe, ScheduleSeconds: c.ScheduleSeconds,
		Incremental: c.Cursor != "", CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt,
	}
}

// Schedule bounds: 0 turns scheduled syncs off.
const (
	DefaultScheduleSeconds = 3 * 3600
	MinScheduleSeconds     = 300
	MaxScheduleSeconds     = 7 * 24 * 3600
)

// MaxSettingLength caps each string of a connection's settings and secrets
// (a URL, a DN, a filter, one item of a list), in characters.
const MaxSettingLength = 2048

// NewConnection is a connection to create.
type NewConnection struct {
	Name string `json:"name"`
	Kind string `json:"kind"`
	// CustomerID is required for directory kinds (ad, azure, file, agent)
	// and refused for PSA kinds.
	CustomerID *int64 `json:"customer_id"`
	// Settings and Secrets are JSON objects of the connector's Config.
	Settings        json.RawMessage `json:"settings"`
	Secrets         json.RawMessage `json:"secrets"`
	EnableSelfServe bool            `json:"enable_self_serve"`
	ScheduleSeconds *int            `json:"schedule_seconds"`
}

var slugRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// CheckSlug checks an identifier such as a connection's name: 1..63
// characters of letters, digits, . _ -, starting with a letter or digit.
func CheckSlug(field, s string) error {
	if s == "" {
		return BadField(field, "%s is required", field)
	}
	if !slugRE.MatchString(s) {
		return BadField(field, "%q is not a valid %s: use 1 to 63 letters, digits, '.', '_' or '-', starting with a letter or digit", Truncate(s, 40), field)
	}
	return nil
}

// CreateConnection creates a connection of the actor's tenant (super and
// primary only) with its audit entry: settings and secrets checked against
// the connector's Config, the files it names confined to the tenant's
// import folder, the secrets sealed. Nothing is written on error.
func (s *Service) CreateConnection(ctx context.Context, a Actor, req NewConnection) (store.Connection, error) {
	if err := a.RequireSettings(); err != nil {
		return store.Connection{}, err
	}
	if err := CheckSlug("name", req.Name); err != nil {
		return store.Connection{}, err
	}
	kind := connectors.Kind(req.Kind)
	if !s.Registry.Has(kind) {
		return store.Connection{}, BadField("kind", "%q is not a connector kind this server knows (%s)", Truncate(req.Kind, 40), strings.Join(s.Registry.Kinds(), ", "))
	}
	switch {
	case kind.IsDirectory() && req.CustomerID == nil:
		return store.Connection{}, BadField("customer_id", "a %s connection imports end users, so it needs the customer_id they belong to", kind)
	case !kind.IsDirectory() && req.CustomerID != nil:
		return store.Connection{}, BadField("customer_id", "a %s connection serves the whole tenant; leave customer_id out", kind)
	case req.CustomerID != nil:
		if _, err := s.Store.Customer(ctx, a.Tenant.ID, *req.CustomerID); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return store.Connection{}, &Error{Status: http.StatusNotFound, Code: "not_found", Field: "customer_id", Message: fmt.Sprintf("customer %d: not found", *req.CustomerID)}
			}
			return store.Connection{}, err
		}
	}
	schedule := DefaultScheduleSeconds
	if req.ScheduleSeconds != nil {
		schedule = *req.ScheduleSeconds
		if err := CheckSchedule(schedule); err != nil {
			return store.Connection{}, err
		}
	}
	settings, err := ObjectOrEmpty("settings", req.Settings)
	if err != nil {
		return store.Connection{}, err
	}
	secrets, err := ObjectOrEmpty("secrets", req.Secrets)
	if err != nil {
		return store.Connection{}, err
	}
	if settings, err = s.checkConfig(a, kind, settings, secrets, nil); err != nil {
		return store.Connection{}, err
	}
	conn := store.Connection{TenantID: a.Tenant.ID, CustomerID: req.CustomerID, Name: req.Name, Kind: kind,
		Settings: settings, EnableSelfServe: req.EnableSelfServe, ScheduleSeconds: schedule}
	if conn.SealedSecrets, err = s.seal(secrets); err != nil {
		return store.Connection{}, err
	}
	var created store.Connection
	err = s.Store.InTx(ctx, func(tx *store.Store) error {
		var err error
		if created, err = tx.CreateConnection(ctx, conn); err != nil {
			return err
		}
		return Audit(ctx, tx, a, "connection.created", "connection", created.ID, nil, s.NewConnectionView(created))
	})
	return created, err
}

// ConnectionPatch is a change of a connection; absent (nil) fields keep
// their value.
type ConnectionPatch struct {
	// Settings replaces the settings object. Changing an endpoint setting
	// (where the connection connects or what it trusts) drops the stored
	// secrets unless Secrets comes with it.
	Settings json.RawMessage `json:"settings"`
	// Secrets replaces the secrets object ({} clears it); absent keeps it.
	Secrets         json.RawMessage `json:"secrets"`
	EnableSelfServe *bool           `json:"enable_self_serve"`
	ScheduleSeconds *int            `json:"schedule_seconds"`
	// MergeSecrets keeps the stored secrets that Secrets does not name (a
	// form whose secret fields left empty mean "keep"); an endpoint change
	// still drops them.
	MergeSecrets bool `json:"-"`
}

// ConnectionUpdate is a connection after a change.
type ConnectionUpdate struct {
	Connection store.Connection
	// SecretsDropped says the stored secrets were dropped because an
	// endpoint setting changed without new secrets.
	SecretsDropped bool
	// EndpointChanged lists the endpoint settings the change changed.
	EndpointChanged []string
}

// UpdateConnection changes the actor's tenant's connection id (super and
// primary only) with its audit entry (none when nothing changed). Nothing
// is written on error.
func (s *Service) UpdateConnection(ctx context.Context, a Actor, id int64, req ConnectionPatch) (ConnectionUpdate, error) {
	if err := a.RequireSettings(); err != nil {
		return ConnectionUpdate{}, err
	}
	if req.Settings == nil && req.Secrets == nil && req.EnableSelfServe == nil && req.ScheduleSeconds == nil {
		return ConnectionUpdate{}, BadField("", "nothing to change: give settings, secrets, enable_self_serve or schedule_seconds")
	}
	if req.ScheduleSeconds != nil {
		if err := CheckSchedule(*req.ScheduleSeconds); err != nil {
			return ConnectionUpdate{}, err
		}
	}
	cur, err := s.Store.Connection(ctx, a.Tenant.ID, id)
	if err != nil {
		return ConnectionUpdate{}, err
	}
	next := cur
	var endpointChanged []string
	if req.Settings != nil {
		if next.Settings, err = ObjectOrEmpty("settings", req.Settings); err != nil {
			return ConnectionUpdate{}, err
		}
		endpointChanged = s.endpointChanges(cur.Kind, cur.Settings, next.Settings)
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
	stored := func() (json.RawMessage, error) {
		if s.Secrets == nil || len(cur.SealedSecrets) == 0 {
			return json.RawMessage(`{}`), nil
		}
		raw, err := s.opener().DecryptSecrets(cur)
		if err != nil {
			return nil, Conflict("secrets_unreadable", "the stored secrets of connection %q cannot be read (%v); send new secrets", cur.Name, err)
		}
		return raw, nil
	}
	switch {
	case dropSecrets:
		keepSecrets = false
		next.SealedSecrets = nil
	case keepSecrets:
		if secrets, err = stored(); err != nil {
			return ConnectionUpdate{}, err
		}
	default:
		if secrets, err = ObjectOrEmpty("secrets", req.Secrets); err != nil {
			return ConnectionUpdate{}, err
		}
		if req.MergeSecrets && len(endpointChanged) == 0 {
			old, err := stored()
			if err != nil {
				return ConnectionUpdate{}, err
			}
			if secrets, err = mergeObjects(old, secrets); err != nil {
				return ConnectionUpdate{}, BadField("secrets", "secrets must be a JSON object")
			}
		}
		if next.SealedSecrets, err = s.seal(secrets); err != nil {
			return ConnectionUpdate{}, err
		}
	}
	// Only a request that changes settings or secrets has them checked: a
	// schedule change is not refused over settings stored long ago.
	if req.Settings != nil || req.Secrets != nil {
		if next.Settings, err = s.checkConfig(a, cur.Kind, next.Settings, secrets, cur.Settings); err != nil {
			return ConnectionUpdate{}, err
		}
	}
	var after store.Connection
	err = s.Store.InTx(ctx, func(tx *store.Store) error {
		before, after0, err := tx.UpdateConnection(ctx, next, keepSecrets)
		if err != nil {
			return err
		}
		after = after0
		bv, av := s.NewConnectionView(before), s.NewConnectionView(after)
		secretsChanged := !keepSecrets
		if !secretsChanged && connectors.SettingsEqual(bv.Settings, av.Settings) && bv.EnableSelfServe == av.EnableSelfServe && bv.ScheduleSeconds == av.ScheduleSeconds {
			return nil // nothing changed: nothing to audit
		}
		type auditView struct {
			ConnectionView
			SecretsDropped  bool     `json:"secrets_dropped"`
			EndpointChanged []string `json:"endpoint_changed,omitempty"`
			SecretsReplaced bool     `json:"secrets_replaced"`
		}
		return Audit(ctx, tx, a, "connection.updated", "connection", id, bv,
			auditView{av, dropSecrets, endpointChanged, secretsChanged && !dropSecrets})
	})
	if err != nil {
		return ConnectionUpdate{}, err
	}
	return ConnectionUpdate{Connection: after, SecretsDropped: dropSecrets, EndpointChanged: endpointChanged}, nil
}

// mergeObjects returns base with the keys of over set over it.
func mergeObjects(base, over json.RawMessage) (json.RawMessage, error) {
	var b, o map[string]json.RawMessage
	if err := json.Unmarshal(base, &b); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(over, &o); err != nil {
		return nil, err
	}
	if b == nil {
		b = map[string]json.RawMessage{}
	}
	for k, v := range o {
		b[k] = v
	}
	return json.Marshal(b)
}

// endpointChanges lists the endpoint settings of kind whose value differs
// between before and after (a key added or removed counts).
func (s *Service) endpointChanges(kind connectors.Kind, before, after json.RawMessage) []string {
	keys, _ := s.Registry.Keys(kind)
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

// CheckSchedule checks a connection's sync interval in seconds.
func CheckSchedule(s int) error {
	if s != 0 && (s < MinScheduleSeconds || s > MaxScheduleSeconds) {
		return BadField("schedule_seconds", "schedule_seconds %d is out of range: 0 (no scheduled syncs) or %d..%d", s, MinScheduleSeconds, MaxScheduleSeconds)
	}
	return nil
}

// ObjectOrEmpty checks that raw is a JSON object (absent: {}).
func ObjectOrEmpty(field string, raw json.RawMessage) (json.RawMessage, error) {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 {
		return json.RawMessage(`{}`), nil
	}
	if t[0] != '{' {
		return nil, BadField(field, "%s must be a JSON object", field)
	}
	return json.RawMessage(t), nil
}

// checkConfig checks settings and secrets against the connector's Config
// (every key in its place, the right types, no string longer than
// MaxSettingLength), a PSA connection's host against the vendor's cloud and
// the operator's allowed hosts, and the files the settings name against
// the tenant's import folder. It returns the settings with those files'
// paths made absolute. prev is the stored settings (nil on create): a file
// path it already holds is kept as is.
func (s *Service) checkConfig(a Actor, kind connectors.Kind, settings, secrets, prev json.RawMessage) (json.RawMessage, error) {
	for section, raw := range map[string]json.RawMessage{"settings": settings, "secrets": secrets} {
		if err := checkLengths(section, raw); err != nil {
			return nil, err
		}
	}
	cfg, err := s.Registry.Decode(kind, settings, secrets)
	if err != nil {
		return nil, configError(err)
	}
	if err := connectors.CheckHost(cfg, s.AllowedPSAHosts); err != nil {
		return nil, configError(err)
	}
	return s.confineFiles(a, kind, settings, prev)
}

// checkLengths refuses a string (or a string in a list) of the object raw
// longer than MaxSettingLength; it never quotes the value.
func checkLengths(section string, raw json.RawMessage) error {
	var m map[string]any
	if json.Unmarshal(raw, &m) != nil {
		return nil // the connector's decoding reports it
	}
	tooLong := func(v any) bool {
		str, ok := v.(string)
		return ok && len([]rune(str)) > MaxSettingLength
	}
	for k, v := range m {
		long := tooLong(v)
		if list, ok := v.([]any); ok {
			long = slices.ContainsFunc(list, tooLong)
		}
		if long {
			return BadField(section+"."+k, "%s.%s is longer than %d characters", section, k, MaxSettingLength)
		}
	}
	return nil
}

// configError turns a connector's config error into a 400 naming the key.
func configError(err error) error {
	var ke *connectors.KeyError
	if errors.As(err, &ke) {
		return BadField(ke.Field(), "%s", err)
	}
	field := "settings"
	if strings.Contains(err.Error(), "secrets") {
		field = "secrets"
	}
	return BadField(field, "%s", err)
}

// confineFiles keeps the files named by settings (a file connection's
// path, a ca_file) inside the tenant's import folder,
// <FileImportDir>/<tenant name>/: a technician must not read server files,
// or another tenant's, through a connection. A relative path is read in
// that folder; every path is stored absolute. A value equal to prev's is
// kept (the operator's apply file may name files elsewhere).
func (s *Service) confineFiles(a Actor, kind connectors.Kind, settings, prev json.RawMessage) (json.RawMessage, error) {
	keys, _ := s.Registry.Keys(kind)
	if len(keys.Files) == 0 {
		return settings, nil
	}
	var set, old map[string]json.RawMessage
	if err := json.Unmarshal(settings, &set); err != nil {
		return nil, BadField("settings", "settings must be a JSON object")
	}
	_ = json.Unmarshal(prev, &old)
	changed := false
	for _, key := range keys.Files {
		raw, ok := set[key]
		if !ok || (old != nil && connectors.SettingsEqual(old[key], raw)) {
			continue
		}
		var value string
		if err := json.Unmarshal(raw, &value); err != nil || value == "" {
			continue // the connector's own checks report it
		}
		path, err := s.confinePath(a, "settings."+key, value)
		if err != nil {
			return nil, err
		}
		set[key], _ = json.Marshal(path)
		changed = true
	}
	if !changed {
		return settings, nil
	}
	return json.Marshal(set)
}

// confinePath resolves value in the tenant's import folder and refuses it
// when it leads outside, symlinks resolved. It returns the absolute path.
func (s *Service) confinePath(a Actor, field, value string) (string, error) {
	if s.FileImportDir == "" {
		return "", BadField(field, "%s cannot be set on this server: the operator has not set SELFSERVE_FILE_IMPORT_DIR (or declares the connection in an apply file)", field)
	}
	name := a.Tenant.Name
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\\\x00") {
		return "", BadField(field, "tenant %q has no import folder: its name cannot be a folder name", name)
	}
	root, err := filepath.Abs(s.FileImportDir)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(root, name)
	outside := BadField(field, "%s may only name files in this tenant's import folder (<file_import_dir>/%s/)", field, name)
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
		return "", BadField(field, "this tenant's import folder does not exist on the server: the operator creates <file_import_dir>/%s/", name)
	}
	real, err := filepath.EvalSymlinks(path)
	if errors.Is(err, fs.ErrNotExist) {
		// Not there yet: the folder it goes in must be inside.
		parent, perr := filepath.EvalSymlinks(filepath.Dir(path))
		if perr != nil {
			return "", BadField(field, "%s: no such folder in this tenant's import folder", field)
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

// opener opens and seals stored connections.
func (s *Service) opener() connection.Opener {
	return connection.Opener{Registry: s.Registry, Box: s.Secrets}
}

// seal encrypts a secrets object (nil for an empty one).
func (s *Service) seal(secrets json.RawMessage) ([]byte, error) {
	if len(secrets) == 0 || connectors.SettingsEqual(secrets, json.RawMessage(`{}`)) {
		return nil, nil
	}
	if s.Secrets == nil {
		return nil, Unavailable("this server has no encryption key (SELFSERVE_ENCRYPTION_KEY), so it cannot store secrets")
	}
	return s.opener().SealSecrets(secrets)
}

// TestResult is the outcome of a connection test.
type TestResult struct {
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
	WriteBack *WriteBackResult `json:"write_back,omitempty"`
}

// WriteBackResult is the outcome of a connection's write-access check.
type WriteBackResult struct {
	OK       bool   `json:"ok"`
	Category string `json:"category,omitempty"`
	Message  string `json:"message"`
}

// TestTimeout bounds a connection test.
const TestTimeout = 30 * time.Second

// TestConnection tests the actor's tenant's connection id (super and
// primary only): what the connector reports before any network request
// (its settings) is shown as it is; what comes back from the network is
// reduced to its category and logged in full.
func (s *Service) TestConnection(ctx context.Context, a Actor, id int64) (TestResult, error) {
	if err := a.RequireSettings(); err != nil {
		return TestResult{}, err
	}
	conn, err := s.Store.Connection(ctx, a.Tenant.ID, id)
	if err != nil {
		return TestResult{}, err
	}
	start := s.now()
	res := s.ping(ctx, conn)
	res.DurationMS = s.now().Sub(start).Milliseconds()
	return res, nil
}

func (s *Service) ping(ctx context.Context, conn store.Connection) TestResult {
	var stored map[string]json.RawMessage
	_ = json.Unmarshal(conn.Settings, &stored)
	keys, _ := s.Registry.Keys(conn.Kind)
	secretUnderSettings := slices.ContainsFunc(keys.Secrets, func(k string) bool { return stored[k] != nil })
	if len(keys.Secrets) > 0 && len(conn.SealedSecrets) == 0 && !secretUnderSettings {
		return TestResult{Category: "credentials_required", Message: fmt.Sprintf(
			"credentials required: the connection has no stored secrets (%s); send them with PATCH /v1/connections/%d or the console's edit form",
			strings.Join(keys.Secrets, ", "), conn.ID)}
	}
	secrets, err := s.opener().DecryptSecrets(conn)
	if err != nil {
		return TestResult{Category: "invalid_config", Message: err.Error()}
	}
	// Decoded strictly: a secret stored under the settings long ago is
	// reported, so that someone moves it.
	cfg, err := s.Registry.Decode(conn.Kind, conn.Settings, secrets)
	if err == nil {
		err = connectors.CheckHost(cfg, s.AllowedPSAHosts)
	}
	if err != nil {
		return TestResult{Category: "invalid_config", Message: err.Error()}
	}
	src, err := s.opener().Open(conn, s.log())
	if err != nil {
		return TestResult{Category: category(err), Message: err.Error()}
	}
	defer src.Close()
	pinger, ok := src.(connectors.Pinger)
	if !ok {
		return TestResult{OK: true, Message: fmt.Sprintf("the settings are valid; the %s connector has no live test", conn.Kind)}
	}
	pctx, cancel := context.WithTimeout(ctx, TestTimeout)
	defer cancel()
	if err := pinger.Ping(pctx); err != nil {
		if conn.Kind == connectors.KindFile {
			// A file in the tenant's own folder: its message (a missing
			// column, a bad row) says nothing of the network.
			return TestResult{Category: category(err), Message: err.Error()}
		}
		res := networkResult(err)
		s.log().Warn("connection test failed", "tenant", conn.TenantID, "connection", conn.ID, "kind", conn.Kind, "category", res.Category, "err", err)
		return res
	}
	res := TestResult{OK: true, Message: "connection works"}
	if checker, ok := src.(connectors.WriteAccessChecker); ok {
		res.WriteBack = &WriteBackResult{OK: true, Message: "the credential may reset passwords and clear lockouts"}
		if err := checker.CheckWriteAccess(pctx); err != nil {
			res.WriteBack = &WriteBackResult{Category: category(err), Message: err.Error()}
		}
	}
	return res
}

// networkResult reduces a failed test to one message per category.
func networkResult(err error) TestResult {
	switch c := category(err); c {
	case "unauthorized":
		return TestResult{Category: c, Message: "the server refused the credentials: check the secrets"}
	case "not_found":
		return TestResult{Category: c, Message: "the server accepted the credentials but does not have what the settings name (a base DN, a tenant, a layout): check the settings"}
	case "rate_limited":
		return TestResult{Category: c, Message: "the server is rate limiting requests: try again later"}
	default:
		return TestResult{Category: "unavailable", Message: "could not reach the server, or the TLS handshake or the protocol failed: check the address, the port and the certificate (the server log has the detail)"}
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
