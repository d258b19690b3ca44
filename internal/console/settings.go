package console

import (
	"cmp"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"selfserve/internal/rules"
	"selfserve/internal/service"
	"selfserve/internal/store"
)

// overrideWarning is shown beside the tenant's switch.
const overrideWarning = "Turning Self-Serve Password Reset off stops notifications and self-serve for every end user of every customer, whatever each user's switch says, and locks the per-user switches until it is turned on again."

// settingsView is the settings page's data.
type settingsView struct {
	Tenant  service.TenantView
	Warning string
	// Form holds what was typed when the form is shown again with an error.
	Form         map[string]string
	Field, Error string
	Saved        bool
	LockReason   string
	// Invite is the invite form; Roles the roles it offers.
	Invite form
	Roles  []store.Role
	// Invited is the login just invited, InviteLink its link (shown once).
	Invited    store.Login
	InviteLink string
}

// settingsFields are the settings form's fields besides the switch.
var settingsFields = []string{"send_hour", "reminder_days", "timezone", "verification", "privileged_self_serve"}

func (c *Console) settingsPage(w http.ResponseWriter, r *http.Request, s *session) error {
	c.renderSettings(w, http.StatusOK, s, s.actor.Tenant, settingsView{Saved: r.URL.Query().Get("done") == "saved"})
	return nil
}

func (c *Console) renderSettings(w http.ResponseWriter, status int, s *session, t store.Tenant, v settingsView) {
	v.Tenant = service.NewTenantView(t)
	v.Warning = overrideWarning
	v.LockReason = lockReason(t)
	if v.Form == nil {
		v.Form = map[string]string{"send_hour": strconv.Itoa(t.SendHour), "reminder_days": strconv.Itoa(t.ReminderDays), "timezone": t.TimeZone,
			"verification":          string(cmp.Or(t.Verification, rules.VerifySMS)),
			"privileged_self_serve": string(cmp.Or(t.PrivilegedSelfServe, rules.PrivilegedDeny))}
	}
	for _, role := range store.Roles {
		if role != store.RoleSuper || s.actor.Login.Role == store.RoleSuper {
			v.Roles = append(v.Roles, role) // the service refuses the rest
		}
	}
	c.render(w, status, "settings", "", s, "Settings", v)
}

// intField reads an integer form field; absent is nil.
func intField(r *http.Request, name string) (*int, error) {
	s, ok := r.PostForm[name]
	if !ok {
		return nil, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(s[0]))
	if err != nil {
		return nil, service.BadField(name, "%s must be a whole number", strings.ReplaceAll(name, "_", " "))
	}
	return &n, nil
}

// saveSettings changes the tenant's settings: the switch alone, or the
// settings form. Every value is checked before anything is saved; a refused
// one shows the form again with the error next to its field.
func (c *Console) saveSettings(w http.ResponseWriter, r *http.Request, s *session) error {
	if err := s.actor.RequireSettings(); err != nil {
		return err
	}
	if err := onlyFields(r, append([]string{"self_serve"}, settingsFields...)...); err != nil {
		return err
	}
	var patch service.TenantPatch
	if v, ok := r.PostForm["self_serve"]; ok {
		on, err := parseEnabled(v[0])
		if err != nil {
			return service.BadField("self_serve", "self_serve is true or false")
		}
		patch.SelfServe = &on
	}
	form := map[string]string{}
	for _, k := range settingsFields {
		if v, ok := r.PostForm[k]; ok {
			form[k] = v[0]
		}
	}
	text := func(name string) *string {
		v, ok := r.PostForm[name]
		if !ok {
			return nil
		}
		z := strings.TrimSpace(v[0])
		return &z
	}
	var err error
	if patch.SendHour, err = intField(r, "send_hour"); err == nil {
		patch.ReminderDays, err = intField(r, "reminder_days")
	}
	patch.TimeZone = text("timezone")
	if v := text("verification"); v != nil {
		patch.Verification = (*rules.Verification)(v)
	}
	if v := text("privileged_self_serve"); v != nil {
		patch.PrivilegedSelfServe = (*rules.PrivilegedSelfServe)(v)
	}
	if err == nil {
		_, err = c.svc.UpdateTenant(r.Context(), s.actor, patch)
	}
	var e *service.Error
	if errors.As(err, &e) && e.Status == http.StatusBadRequest && e.Field != "" && len(form) > 0 {
		c.renderSettings(w, http.StatusBadRequest, s, s.actor.Tenant, settingsView{Form: form, Field: e.Field, Error: e.Message})
		return nil
	}
	if err != nil {
		return err
	}
	http.Redirect(w, r, "/settings?done=saved", http.StatusSeeOther)
	return nil
}

// inviteFields are the invite form's fields.
var inviteFields = []string{"email", "role"}

// inviteTechnician makes a single-use invite link for a technician (super
// and primary; the same service call as `selfserve login invite`), creating
// the login when it has none, and shows the link once.
func (c *Console) inviteTechnician(w http.ResponseWriter, r *http.Request, s *session) error {
	if err := s.actor.RequireSettings(); err != nil {
		return err
	}
	if err := onlyFields(r, inviteFields...); err != nil {
		return err
	}
	token, login, err := c.svc.Invite(r.Context(), s.actor, strings.TrimSpace(r.PostForm.Get("email")), store.Role(r.PostForm.Get("role")))
	if e, field, ok := fieldError(err, "email", inviteFields...); ok {
		c.renderSettings(w, e.Status, s, s.actor.Tenant, settingsView{Invite: form{Values: typed(r, inviteFields...), Field: field, Error: e.Message}})
		return nil
	}
	if err != nil {
		return err
	}
	scheme := "http"
	if c.secure(r) {
		scheme = "https"
	}
	link := (&url.URL{Scheme: scheme, Host: r.Host, Path: "/invite/" + token}).String()
	c.renderSettings(w, http.StatusOK, s, s.actor.Tenant, settingsView{Invited: login, InviteLink: link})
	return nil
}
