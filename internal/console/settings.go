package console

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

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
}

func (c *Console) settingsPage(w http.ResponseWriter, r *http.Request, s *session) error {
	c.renderSettings(w, http.StatusOK, s, s.actor.Tenant, settingsView{Saved: r.URL.Query().Get("done") == "saved"})
	return nil
}

func (c *Console) renderSettings(w http.ResponseWriter, status int, s *session, t store.Tenant, v settingsView) {
	v.Tenant = service.NewTenantView(t)
	v.Warning = overrideWarning
	v.LockReason = lockReason(t)
	if v.Form == nil {
		v.Form = map[string]string{"send_hour": strconv.Itoa(t.SendHour), "reminder_days": strconv.Itoa(t.ReminderDays), "timezone": t.TimeZone}
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

func (c *Console) saveSettings(w http.ResponseWriter, r *http.Request, s *session) error {
	if err := onlyFields(r, "self_serve", "send_hour", "reminder_days", "timezone"); err != nil {
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
	for _, k := range []string{"send_hour", "reminder_days", "timezone"} {
		if v, ok := r.PostForm[k]; ok {
			form[k] = v[0]
		}
	}
	var err error
	if patch.SendHour, err = intField(r, "send_hour"); err == nil {
		patch.ReminderDays, err = intField(r, "reminder_days")
	}
	if tz, ok := r.PostForm["timezone"]; ok && err == nil {
		z := strings.TrimSpace(tz[0])
		patch.TimeZone = &z
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
