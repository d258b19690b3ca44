package console

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"selfserve/connectors"
	"selfserve/internal/agentserver"

	"selfserve/internal/service"
	"selfserve/internal/store"
)

// connectionRow is a connection as listed, with its last run.
type connectionRow struct {
	store.Connection
	KindLabel string
	Customer  string
	LastRun   *store.SyncRun
	// Agent is an agent connection's agent's state.
	Agent *agentserver.Status
}

// connectionsView is the connections page's data.
type connectionsView struct {
	Connections []connectionRow
}

func (c *Console) connectionsPage(w http.ResponseWriter, r *http.Request, s *session) error {
	ctx := r.Context()
	t := s.actor.Tenant
	conns, err := c.st.Connections(ctx, t.ID)
	if err != nil {
		return err
	}
	customers, err := c.st.Customers(ctx, t.ID)
	if err != nil {
		return err
	}
	names := map[int64]string{}
	for _, cu := range customers {
		names[cu.ID] = cu.Name
	}
	agents, err := c.st.Agents(ctx, t.ID)
	if err != nil {
		return err
	}
	states := map[int64]agentserver.Status{}
	for _, a := range agents {
		states[a.ConnectionID] = agentserver.StatusOf(a, c.opts.Now())
	}
	var v connectionsView
	for _, co := range conns {
		row := connectionRow{Connection: co, KindLabel: kindLabel(co.Kind)}
		if co.Kind == connectors.KindAgent {
			st, ok := states[co.ID]
			if !ok {
				st.State = "not_enrolled"
			}
			row.Agent = &st
		}
		if co.CustomerID != nil {
			row.Customer = names[*co.CustomerID]
		}
		runs, err := c.st.Runs(ctx, t.ID, co.ID, 1)
		if err != nil {
			return err
		}
		if len(runs) > 0 {
			row.LastRun = &runs[0]
		}
		v.Connections = append(v.Connections, row)
	}
	c.render(w, http.StatusOK, "connections", "", s, "Connections", v)
	return nil
}

// connectionView is one connection's page: its settings, the test, the
// agent's state, the import form and its runs.
type connectionView struct {
	Connection store.Connection
	KindLabel  string
	Customer   string
	Directory  bool
	// Settings are the stored settings, secrets redacted, as key and value.
	Settings []settingRow
	Runs     []store.SyncRun
	// Done says what the last action did (created, saved, secrets-dropped,
	// revoked, install-code).
	Done string
	// Test is the result of the test just run.
	Test *service.TestResult
	// Agent is the state of an agent connection's agent; AgentError says
	// why it is unknown.
	Agent      *agentserver.Status
	AgentError string
	// InstallCode is the install code just made: shown on the page the
	// POST that made it redirects to, once.
	InstallCode *service.InstallCode
}

// settingRow is a stored setting as the connection page lists it.
type settingRow struct{ Key, Value string }

func (c *Console) connectionPage(w http.ResponseWriter, r *http.Request, s *session) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	done := r.URL.Query().Get("done")
	var code *service.InstallCode
	switch done {
	case "", "created", "saved", "secrets-dropped", "revoked":
	case "install-code":
		code = takeInstallCode(w, r, c.secure(r))
	default:
		done = ""
	}
	return c.showConnection(w, r, s, id, func(v *connectionView) { v.Done, v.InstallCode = done, code })
}

// installCodeCookie carries a new install code from the POST that made it
// to the connection's page its redirect leads to, which shows the code and
// deletes the cookie: a refresh of that page shows no code and makes none.
// It lives a minute, on the connection's path only.
const installCodeCookie = "ss_install_code"

// putInstallCode hands code to the page the redirect of the connection
// with id leads to.
func putInstallCode(w http.ResponseWriter, id int64, code service.InstallCode, secure bool) {
	b, _ := json.Marshal(code) // a struct of strings and a time
	http.SetCookie(w, &http.Cookie{Name: installCodeCookie, Value: base64.RawURLEncoding.EncodeToString(b), Path: fmt.Sprintf("/connections/%d", id),
		HttpOnly: true, Secure: secure, SameSite: http.SameSiteStrictMode, MaxAge: 60})
}

// takeInstallCode returns the install code putInstallCode handed over, and
// deletes it; nil when there is none (the page was refreshed).
func takeInstallCode(w http.ResponseWriter, r *http.Request, secure bool) *service.InstallCode {
	ck, err := r.Cookie(installCodeCookie)
	if err != nil {
		return nil
	}
	http.SetCookie(w, &http.Cookie{Name: installCodeCookie, Path: r.URL.Path, HttpOnly: true, Secure: secure, SameSite: http.SameSiteStrictMode, MaxAge: -1})
	b, err := base64.RawURLEncoding.DecodeString(ck.Value)
	var code service.InstallCode
	if err != nil || json.Unmarshal(b, &code) != nil || code.Code == "" {
		return nil
	}
	return &code
}

// showConnection renders the page of the tenant's connection id, with
// what edit adds (a test result, an install code).
func (c *Console) showConnection(w http.ResponseWriter, r *http.Request, s *session, id int64, edit func(*connectionView)) error {
	ctx := r.Context()
	t := s.actor.Tenant
	co, err := c.st.Connection(ctx, t.ID, id)
	if err != nil {
		return err
	}
	v := connectionView{Connection: co, KindLabel: kindLabel(co.Kind), Directory: co.Kind.IsDirectory()}
	if co.CustomerID != nil {
		cu, err := c.st.Customer(ctx, t.ID, *co.CustomerID)
		if err != nil {
			return err
		}
		v.Customer = cu.Name
	}
	var settings map[string]json.RawMessage
	_ = json.Unmarshal(c.svc.NewConnectionView(co).Settings, &settings)
	for _, k := range slices.Sorted(maps.Keys(settings)) {
		v.Settings = append(v.Settings, settingRow{Key: k, Value: shownValue(connectors.Field{Type: connectors.FieldList}, settings[k])})
	}
	if co.Kind == connectors.KindAgent {
		st, err := c.svc.AgentStatus(ctx, s.actor, co.ID)
		var e *service.Error
		switch {
		case errors.As(err, &e):
			v.AgentError = e.Message
		case err != nil:
			return err
		default:
			v.Agent = &st
		}
	}
	if v.Runs, err = c.st.Runs(ctx, t.ID, co.ID, 20); err != nil {
		return err
	}
	edit(&v)
	c.render(w, http.StatusOK, "connection", "", s, co.Name, v)
	return nil
}

// startImport sets the connection's "Enable Self Serve" default and starts
// a run: a sync for directories, a customer import for PSAs.
func (c *Console) startImport(w http.ResponseWriter, r *http.Request, s *session) error {
	id, err := postedID(r, "enable_self_serve", "mode")
	if err != nil {
		return err
	}
	on, err := parseEnabled(r.PostForm.Get("enable_self_serve"))
	if err != nil {
		return service.BadField("enable_self_serve", "enable_self_serve is true or false")
	}
	mode := store.ModeIncremental
	switch r.PostForm.Get("mode") {
	case "", string(store.ModeIncremental):
	case string(store.ModeFull):
		mode = store.ModeFull
	default:
		return service.BadField("mode", "mode is full or incremental")
	}
	ctx := r.Context()
	co, err := c.svc.SetConnectionSelfServe(ctx, s.actor, id, on)
	if err != nil {
		return err
	}
	kind, action := service.RunSync, "sync.requested"
	if !co.Kind.IsDirectory() {
		kind, action, mode = service.RunCustomerImport, "customer_import.requested", store.ModeFull
	}
	run, err := c.svc.StartRun(ctx, s.actor, co, kind, mode, false, action)
	if err != nil {
		return err
	}
	http.Redirect(w, r, fmt.Sprintf("/runs/%d", run.ID), http.StatusSeeOther)
	return nil
}

// runView is a run's page: progress while it runs, the summary after.
type runView struct {
	Run        store.SyncRun
	Connection store.Connection
	Problems   []store.Problem
	Expected   int
	Percent    int
	Finished   bool
}

func (c *Console) runPage(w http.ResponseWriter, r *http.Request, s *session) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	t := s.actor.Tenant
	run, err := c.st.Run(ctx, t.ID, id)
	if err != nil {
		return err
	}
	co, err := c.st.Connection(ctx, t.ID, run.ConnectionID)
	if err != nil {
		return err
	}
	v := runView{Run: run, Connection: co, Problems: run.Problems(), Finished: run.Status.Finished()}
	if !v.Finished && co.Kind.IsDirectory() {
		if v.Expected, err = c.st.CountConnectionUsers(ctx, t.ID, co.ID); err != nil {
			return err
		}
		if v.Expected > 0 {
			v.Percent = min(99, 100*run.Processed/v.Expected)
		}
	}
	if r.URL.Query().Get("part") == "status" {
		c.render(w, http.StatusOK, "run", "run-status", s, "", v)
		return nil
	}
	c.render(w, http.StatusOK, "run", "", s, "Run "+strconv.FormatInt(run.ID, 10), v)
	return nil
}

// kindLabels names the connector kinds for people; a kind the server knows
// that is not here shows its own name.
var kindLabels = map[connectors.Kind]string{
	connectors.KindAD:          "Active Directory (LDAP)",
	connectors.KindAzure:       "Entra ID (Microsoft Graph)",
	connectors.KindITGlue:      "IT Glue",
	connectors.KindHudu:        "Hudu",
	connectors.KindConnectWise: "ConnectWise PSA",
	connectors.KindFile:        "File (CSV or JSON)",
	connectors.KindAgent:       "On-premises agent",
}

// kindChoice is a kind offered on the new-connection page.
type kindChoice struct {
	Kind      connectors.Kind
	Label     string
	Directory bool
}

func kindLabel(k connectors.Kind) string {
	if l, ok := kindLabels[k]; ok {
		return l
	}
	return string(k)
}

// formField is one setting or secret of a connection form.
type formField struct {
	connectors.Field
	// Name is the form field's name: settings.<key> or secrets.<key> (the
	// service's errors name fields the same way).
	Name  string
	Label string
	// Value is what the field shows (never a secret's).
	Value string
	Error string
}

// connectionForm is the create and edit page's data.
type connectionForm struct {
	Kind      connectors.Kind
	KindLabel string
	// ID is the connection edited (0 on create).
	ID              int64
	Name            string
	CustomerID      string
	Customers       []store.Customer
	Directory       bool
	EnableSelfServe bool
	Schedule        string
	Settings        []formField
	Secrets         []formField
	HasSecrets      bool
	// Errors are the messages of the fields at fault, by form name; Error
	// is a message that names none of them.
	Errors map[string]string
	Error  string
}

// formFields are kind's fields with the values of stored (settings only).
func (c *Console) formFields(kind connectors.Kind, stored json.RawMessage) (settings, secrets []formField, err error) {
	fields, ok := c.svc.Registry.Fields(kind)
	if !ok {
		return nil, nil, unknownKind(c.svc.Registry, string(kind))
	}
	var values map[string]json.RawMessage
	_ = json.Unmarshal(stored, &values)
	for _, f := range fields {
		ff := formField{Field: f, Label: strings.ReplaceAll(f.Key, "_", " ")}
		if f.Secret {
			ff.Name = "secrets." + f.Key
			secrets = append(secrets, ff)
			continue
		}
		ff.Name = "settings." + f.Key
		ff.Value = shownValue(f, values[f.Key])
		settings = append(settings, ff)
	}
	return settings, secrets, nil
}

// shownValue is a stored setting as its form field shows it.
func shownValue(f connectors.Field, raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	switch f.Type {
	case connectors.FieldList:
		var list []string
		if json.Unmarshal(raw, &list) == nil {
			return strings.Join(list, "\n")
		}
	case connectors.FieldBool:
		var on bool
		if json.Unmarshal(raw, &on) == nil && on {
			return "true"
		}
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}

func unknownKind(reg connectors.Registry, kind string) error {
	return service.BadField("kind", "%q is not a connector kind this server knows (%s)", service.Truncate(kind, 40), strings.Join(reg.Kinds(), ", "))
}

// newConnectionPage offers the kinds, or with ?kind= that kind's form.
func (c *Console) newConnectionPage(w http.ResponseWriter, r *http.Request, s *session) error {
	if err := s.actor.RequireSettings(); err != nil {
		return err
	}
	q := r.URL.Query()
	for k := range q {
		if k != "kind" {
			return service.BadField(k, "unknown parameter %q", service.Truncate(k, 40))
		}
	}
	kind := q.Get("kind")
	if kind == "" {
		var kinds []kindChoice
		for _, k := range c.svc.Registry.Kinds() {
			kinds = append(kinds, kindChoice{Kind: connectors.Kind(k), Label: kindLabel(connectors.Kind(k)), Directory: connectors.Kind(k).IsDirectory()})
		}
		c.render(w, http.StatusOK, "connection-kinds", "", s, "New connection", kinds)
		return nil
	}
	f := connectionForm{Kind: connectors.Kind(kind), Schedule: strconv.Itoa(service.DefaultScheduleSeconds)}
	return c.renderConnectionForm(w, r, s, http.StatusOK, f, nil)
}

// renderConnectionForm shows f with its kind's fields; values, when set,
// are the settings typed (shown again after an error).
func (c *Console) renderConnectionForm(w http.ResponseWriter, r *http.Request, s *session, status int, f connectionForm, values json.RawMessage) error {
	var err error
	if f.Settings, f.Secrets, err = c.formFields(f.Kind, values); err != nil {
		return err
	}
	f.KindLabel, f.Directory = kindLabel(f.Kind), f.Kind.IsDirectory()
	if f.Directory {
		if f.Customers, err = c.st.Customers(r.Context(), s.actor.Tenant.ID); err != nil {
			return err
		}
	}
	for i := range f.Settings {
		f.Settings[i].Error = f.Errors[f.Settings[i].Name]
	}
	for i := range f.Secrets {
		f.Secrets[i].Error = f.Errors[f.Secrets[i].Name]
	}
	title := "New " + f.KindLabel + " connection"
	if f.ID != 0 {
		title = "Edit " + f.Name
	}
	c.render(w, status, "connection-form", "", s, title, f)
	return nil
}

// formConfig reads the settings and secrets of kind's form; stored is the
// connection's settings (nil on create), whose keys the form leaves alone
// are kept. secrets is nil when no secret was typed.
func (c *Console) formConfig(r *http.Request, kind connectors.Kind, stored json.RawMessage) (settings, secrets json.RawMessage, err error) {
	fields, ok := c.svc.Registry.Fields(kind)
	if !ok {
		return nil, nil, unknownKind(c.svc.Registry, string(kind))
	}
	set := map[string]json.RawMessage{}
	_ = json.Unmarshal(stored, &set)
	typed := map[string]string{}
	for _, f := range fields {
		if f.Secret {
			if v := r.PostForm.Get("secrets." + f.Key); v != "" {
				typed[f.Key] = v
			}
			continue
		}
		name := "settings." + f.Key
		raw, err := formValue(f, name, r.PostForm.Get(name))
		if err != nil {
			return nil, nil, err
		}
		if raw == nil {
			// Left empty: the key goes, unless it holds its zero value
			// already (a stored false is not a change).
			if old, ok := set[f.Key]; ok && !zeroJSON(old) {
				delete(set, f.Key)
			}
			continue
		}
		set[f.Key] = raw
	}
	if settings, err = json.Marshal(set); err != nil {
		return nil, nil, err
	}
	if len(typed) > 0 {
		if secrets, err = json.Marshal(typed); err != nil {
			return nil, nil, err
		}
	}
	return settings, secrets, nil
}

// formValue is the JSON of a form field's value, nil when left empty.
func formValue(f connectors.Field, name, v string) (json.RawMessage, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return nil, nil
	}
	switch f.Type {
	case connectors.FieldBool:
		if v != "true" {
			return nil, service.BadField(name, "%s is true or empty", f.Key)
		}
		return json.RawMessage("true"), nil
	case connectors.FieldNumber:
		if _, err := strconv.ParseFloat(v, 64); err != nil {
			return nil, service.BadField(name, "%s must be a number", strings.ReplaceAll(f.Key, "_", " "))
		}
		return json.RawMessage(v), nil
	case connectors.FieldText:
		if _, err := strconv.ParseFloat(v, 64); err == nil {
			return json.RawMessage(v), nil
		}
	case connectors.FieldList:
		var list []string
		for line := range strings.Lines(v) {
			if line = strings.TrimSpace(line); line != "" {
				list = append(list, line)
			}
		}
		return json.Marshal(list)
	}
	return json.Marshal(v)
}

// zeroJSON reports whether raw is a zero value (false, 0, "", [], null).
func zeroJSON(raw json.RawMessage) bool {
	switch strings.TrimSpace(string(raw)) {
	case "false", "0", `""`, "[]", "null", "{}":
		return true
	}
	return false
}

// formFieldNames are the fields a connection form of kind may send.
func (c *Console) formFieldNames(kind connectors.Kind, base ...string) []string {
	fields, _ := c.svc.Registry.Fields(kind)
	for _, f := range fields {
		if f.Secret {
			base = append(base, "secrets."+f.Key)
		} else {
			base = append(base, "settings."+f.Key)
		}
	}
	return base
}

// formError shows err next to its field of f (status 400 or the error's),
// or reports that it is not the form's to show.
func (c *Console) formError(w http.ResponseWriter, r *http.Request, s *session, f connectionForm, values json.RawMessage, err error) error {
	var e *service.Error
	if !errors.As(err, &e) || (e.Status != http.StatusBadRequest && e.Field == "") || e.Status == http.StatusForbidden {
		return err
	}
	f.Errors = map[string]string{}
	known := c.formFieldNames(f.Kind, "name", "customer_id", "schedule_seconds", "enable_self_serve")
	if slices.Contains(known, e.Field) {
		f.Errors[e.Field] = e.Message
	} else {
		f.Error = e.Message
	}
	return c.renderConnectionForm(w, r, s, e.Status, f, values)
}

// commonForm reads the fields every connection form has.
func commonForm(r *http.Request, f *connectionForm) (schedule *int, err error) {
	f.EnableSelfServe = r.PostForm.Get("enable_self_serve") == "true"
	if v := r.PostForm.Get("enable_self_serve"); v != "" && v != "true" {
		return nil, service.BadField("enable_self_serve", "enable_self_serve is true or empty")
	}
	f.Schedule = strings.TrimSpace(r.PostForm.Get("schedule_seconds"))
	if f.Schedule == "" {
		return nil, nil
	}
	n, err := strconv.Atoi(f.Schedule)
	if err != nil {
		return nil, service.BadField("schedule_seconds", "the schedule is a whole number of seconds (0: no scheduled syncs)")
	}
	return &n, nil
}

func (c *Console) createConnection(w http.ResponseWriter, r *http.Request, s *session) error {
	if err := s.actor.RequireSettings(); err != nil {
		return err
	}
	kind := connectors.Kind(r.PostFormValue("kind"))
	if !c.svc.Registry.Has(kind) {
		return unknownKind(c.svc.Registry, string(kind))
	}
	if err := onlyFields(r, c.formFieldNames(kind, "kind", "name", "customer_id", "enable_self_serve", "schedule_seconds")...); err != nil {
		return err
	}
	f := connectionForm{Kind: kind, Name: strings.TrimSpace(r.PostForm.Get("name")), CustomerID: r.PostForm.Get("customer_id")}
	schedule, err := commonForm(r, &f)
	if err != nil {
		return c.formError(w, r, s, f, formSettingsEcho(r), err)
	}
	settings, secrets, err := c.formConfig(r, kind, nil)
	if err != nil {
		return c.formError(w, r, s, f, formSettingsEcho(r), err)
	}
	req := service.NewConnection{Name: f.Name, Kind: string(kind), Settings: settings, Secrets: secrets,
		EnableSelfServe: f.EnableSelfServe, ScheduleSeconds: schedule}
	if f.CustomerID != "" {
		id, err := strconv.ParseInt(f.CustomerID, 10, 64)
		if err != nil {
			return c.formError(w, r, s, f, settings, service.BadField("customer_id", "choose a customer"))
		}
		req.CustomerID = &id
	}
	created, err := c.svc.CreateConnection(r.Context(), s.actor, req)
	if err != nil {
		return c.formError(w, r, s, f, settings, err)
	}
	http.Redirect(w, r, fmt.Sprintf("/connections/%d?done=created", created.ID), http.StatusSeeOther)
	return nil
}

// formSettingsEcho is the settings typed, as strings, for showing a form
// again when one of them could not be read.
func formSettingsEcho(r *http.Request) json.RawMessage {
	typed := map[string]string{}
	for k, v := range r.PostForm {
		if key, ok := strings.CutPrefix(k, "settings."); ok && len(v) > 0 {
			typed[key] = v[0]
		}
	}
	raw, _ := json.Marshal(typed)
	return raw
}

// editableConnection is the connection the path names, for a login that
// may change settings (super/primary), within its tenant.
func (c *Console) editableConnection(r *http.Request, s *session) (store.Connection, error) {
	if err := s.actor.RequireSettings(); err != nil {
		return store.Connection{}, err
	}
	id, err := pathID(r)
	if err != nil {
		return store.Connection{}, err
	}
	return c.st.Connection(r.Context(), s.actor.Tenant.ID, id)
}

func (c *Console) editConnectionPage(w http.ResponseWriter, r *http.Request, s *session) error {
	co, err := c.editableConnection(r, s)
	if err != nil {
		return err
	}
	f := connectionForm{Kind: co.Kind, ID: co.ID, Name: co.Name, EnableSelfServe: co.EnableSelfServe,
		Schedule: strconv.Itoa(co.ScheduleSeconds), HasSecrets: len(co.SealedSecrets) > 0}
	return c.renderConnectionForm(w, r, s, http.StatusOK, f, co.Settings)
}

func (c *Console) saveConnection(w http.ResponseWriter, r *http.Request, s *session) error {
	co, err := c.editableConnection(r, s)
	if err != nil {
		return err
	}
	if err := onlyFields(r, c.formFieldNames(co.Kind, "enable_self_serve", "schedule_seconds")...); err != nil {
		return err
	}
	f := connectionForm{Kind: co.Kind, ID: co.ID, Name: co.Name, HasSecrets: len(co.SealedSecrets) > 0}
	schedule, err := commonForm(r, &f)
	if err != nil {
		return c.formError(w, r, s, f, formSettingsEcho(r), err)
	}
	settings, secrets, err := c.formConfig(r, co.Kind, co.Settings)
	if err != nil {
		return c.formError(w, r, s, f, formSettingsEcho(r), err)
	}
	patch := service.ConnectionPatch{Settings: settings, Secrets: secrets, MergeSecrets: true, ScheduleSeconds: schedule}
	if co.Kind.IsDirectory() {
		// The form asks only directories (PSA imports set it as they start).
		patch.EnableSelfServe = &f.EnableSelfServe
	}
	up, err := c.svc.UpdateConnection(r.Context(), s.actor, co.ID, patch)
	if err != nil {
		return c.formError(w, r, s, f, settings, err)
	}
	done := "saved"
	if up.SecretsDropped {
		done = "secrets-dropped"
	}
	http.Redirect(w, r, fmt.Sprintf("/connections/%d?done=%s", co.ID, done), http.StatusSeeOther)
	return nil
}

// testConnection runs the API's connection test and shows its result: in
// place for htmx, else on the connection's page.
func (c *Console) testConnection(w http.ResponseWriter, r *http.Request, s *session) error {
	id, err := postedID(r)
	if err != nil {
		return err
	}
	res, err := c.svc.TestConnection(r.Context(), s.actor, id)
	if err != nil {
		return err
	}
	if isHTMX(r) {
		c.render(w, http.StatusOK, "connection", "test-result", s, "", &res)
		return nil
	}
	return c.showConnection(w, r, s, id, func(v *connectionView) { v.Test = &res })
}

// issueInstallCode makes an agent install code and redirects to the
// connection's page, which shows it once (putInstallCode): refreshing that
// page makes no other code.
func (c *Console) issueInstallCode(w http.ResponseWriter, r *http.Request, s *session) error {
	id, err := postedID(r)
	if err != nil {
		return err
	}
	code, err := c.svc.IssueInstallCode(r.Context(), s.actor, id)
	if err != nil {
		return err
	}
	putInstallCode(w, id, code, c.secure(r))
	http.Redirect(w, r, fmt.Sprintf("/connections/%d?done=install-code", id), http.StatusSeeOther)
	return nil
}

func (c *Console) revokeAgent(w http.ResponseWriter, r *http.Request, s *session) error {
	id, err := postedID(r)
	if err != nil {
		return err
	}
	if err := c.svc.RevokeAgent(r.Context(), s.actor, id); err != nil {
		return err
	}
	http.Redirect(w, r, fmt.Sprintf("/connections/%d?done=revoked", id), http.StatusSeeOther)
	return nil
}
