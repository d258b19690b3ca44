package console

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"selfserve/internal/service"
	"selfserve/internal/store"
)

// eventsView is the audit log page's data.
type eventsView struct {
	Entries []store.AuditEntry
	Logins  []store.Login
	// Filter as typed.
	Login, Action, Since, Until string
	Older                       string
}

// eventsPage is the audit log, filterable by who, what and when.
func (c *Console) eventsPage(w http.ResponseWriter, r *http.Request, s *session) error {
	q := r.URL.Query()
	for k := range q {
		if !slices.Contains([]string{"login", "action", "since", "until", "before"}, k) {
			return service.BadField(k, "unknown parameter %q", service.Truncate(k, 40))
		}
	}
	v := eventsView{Login: q.Get("login"), Action: q.Get("action"), Since: q.Get("since"), Until: q.Get("until")}
	f := store.AuditFilter{Action: v.Action, Limit: 100}
	if err := service.CheckCode("action", f.Action); err != nil {
		return err
	}
	if v.Login != "" {
		id, err := strconv.ParseInt(v.Login, 10, 64)
		if err != nil || id <= 0 {
			return service.BadField("login", "%q is not a login", service.Truncate(v.Login, 20))
		}
		f.LoginID = id
	}
	for _, d := range []struct {
		field, value string
		into         *time.Time
		days         int
	}{{"since", v.Since, &f.Since, 0}, {"until", v.Until, &f.Until, 1}} {
		if d.value == "" {
			continue
		}
		t, err := time.Parse("2006-01-02", d.value)
		if err != nil {
			return service.BadField(d.field, "%q is not a date such as 2026-11-24", service.Truncate(d.value, 20))
		}
		*d.into = t.AddDate(0, 0, d.days)
	}
	if b := q.Get("before"); b != "" {
		id, err := strconv.ParseInt(b, 10, 64)
		if err != nil || id <= 0 {
			return service.BadField("before", "%q is not an entry id", service.Truncate(b, 20))
		}
		f.BeforeID = id
	}
	ctx := r.Context()
	var err error
	if v.Entries, err = c.st.AuditLog(ctx, s.actor.Tenant.ID, f); err != nil {
		return err
	}
	if v.Logins, err = c.st.Logins(ctx, s.actor.Tenant.ID); err != nil {
		return err
	}
	if len(v.Entries) == f.Limit {
		older := q
		older.Set("before", strconv.FormatInt(v.Entries[len(v.Entries)-1].ID, 10))
		v.Older = "/events?" + older.Encode()
	}
	c.render(w, http.StatusOK, "events", "", s, "Events", v)
	return nil
}

// endUserView is the end-user detail page's data.
type endUserView struct {
	Row      row
	Customer store.Customer
	History  []store.AuditEntry
	Notices  []store.Notice
}

// endUserPage shows one end user: its row, its history (changes with
// provenance, self-serve events) and the notices sent.
func (c *Console) endUserPage(w http.ResponseWriter, r *http.Request, s *session) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	t := s.actor.Tenant
	rw, err := c.cell(ctx, s, id)
	if err != nil {
		return err
	}
	cu, err := c.st.Customer(ctx, t.ID, rw.CustomerID)
	if err != nil {
		return err
	}
	v := endUserView{Row: rw, Customer: cu}
	if v.History, err = c.st.AuditLog(ctx, t.ID, store.AuditFilter{ObjectType: "end_user", ObjectID: fmt.Sprint(id), Limit: 200}); err != nil {
		return err
	}
	if v.Notices, err = c.st.NoticesOfEndUser(ctx, t.ID, id, 100); err != nil {
		return err
	}
	c.render(w, http.StatusOK, "enduser", "", s, rw.Username, v)
	return nil
}
