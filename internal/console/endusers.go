package console

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"selfserve/internal/report"
	"selfserve/internal/rules"
	"selfserve/internal/service"
	"selfserve/internal/store"
)

// pageSize is the end users per page.
const pageSize = 100

// maxBulkFilter bounds "all matching the filter".
const maxBulkFilter = 20000

// maxSearchLength bounds the search box.
const maxSearchLength = 100

// filter is the end-user page's filter, sort and offset, as in its query
// string.
type filter struct {
	Status, Source, Active, Locked, Switch, Privileged, Q, Sort, Dir string
	Offset                                                           int
}

// filterFields are the query (and bulk form) fields of a filter.
var filterFields = []string{"status", "source", "active", "locked", "switch", "privileged", "q"}

// values encodes f (without offset when page is false).
func (f filter) values(withPage bool) url.Values {
	v := url.Values{}
	set := func(k, s string) {
		if s != "" {
			v.Set(k, s)
		}
	}
	set("status", f.Status)
	set("source", f.Source)
	set("active", f.Active)
	set("locked", f.Locked)
	set("switch", f.Switch)
	set("privileged", f.Privileged)
	set("q", f.Q)
	set("sort", f.Sort)
	set("dir", f.Dir)
	if withPage && f.Offset > 0 {
		v.Set("offset", strconv.Itoa(f.Offset))
	}
	return v
}

var statusValues = []string{string(rules.StatusIncomplete), string(rules.StatusWelcomeSent), string(rules.StatusRegistrationComplete), string(rules.StatusAccessedSelfServe)}

var sourceValues = []string{string(rules.SourceLocal), string(rules.SourceAD), string(rules.SourceAzure), string(rules.SourceManual)}

// parseFilter reads and checks a filter from form values: a value out of
// its list is a 400 naming the field.
func parseFilter(get func(string) string) (filter, store.EndUserQuery, error) {
	f := filter{Status: get("status"), Source: get("source"), Active: get("active"), Locked: get("locked"), Switch: get("switch"),
		Privileged: get("privileged"), Q: strings.TrimSpace(get("q")), Sort: get("sort"), Dir: get("dir")}
	var q store.EndUserQuery
	if f.Status != "" && !slices.Contains(statusValues, f.Status) {
		return f, q, service.BadField("status", "%q is not a status", service.Truncate(f.Status, 40))
	}
	if f.Source != "" && !slices.Contains(sourceValues, f.Source) {
		return f, q, service.BadField("source", "%q is not a source", service.Truncate(f.Source, 40))
	}
	q.Status, q.Source = rules.Status(f.Status), rules.Source(f.Source)
	var err error
	if q.Active, err = yesNo("active", f.Active); err != nil {
		return f, q, err
	}
	if q.LockedOut, err = yesNo("locked", f.Locked); err != nil {
		return f, q, err
	}
	if q.SelfServe, err = yesNo("switch", f.Switch); err != nil {
		return f, q, err
	}
	if q.Privileged, err = yesNo("privileged", f.Privileged); err != nil {
		return f, q, err
	}
	if !utf8.ValidString(f.Q) {
		return f, q, service.BadField("q", "the search is not valid UTF-8 text")
	}
	if utf8.RuneCountInString(f.Q) > maxSearchLength {
		return f, q, service.BadField("q", "the search is longer than %d characters", maxSearchLength)
	}
	q.Search = f.Q
	if f.Sort != "" && !slices.Contains(store.EndUserSorts, store.EndUserSort(f.Sort)) {
		return f, q, service.BadField("sort", "%q is not a column to sort by", service.Truncate(f.Sort, 40))
	}
	q.Sort = store.EndUserSort(f.Sort)
	switch f.Dir {
	case "", "asc":
	case "desc":
		q.Desc = true
	default:
		return f, q, service.BadField("dir", "dir is asc or desc")
	}
	if s := get("offset"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > 10_000_000 {
			return f, q, service.BadField("offset", "%q is not a row number", service.Truncate(s, 20))
		}
		f.Offset = n
	}
	q.Offset, q.Limit = f.Offset, pageSize
	return f, q, nil
}

func yesNo(field, s string) (*bool, error) {
	switch s {
	case "":
		return nil, nil
	case "yes":
		b := true
		return &b, nil
	case "no":
		b := false
		return &b, nil
	}
	return nil, service.BadField(field, "%s is yes or no", field)
}

// row is one end user as the detail page and the contact cells show it.
type row struct {
	report.EndUser
	// Refused holds what a sync refused, by field.
	Refused map[string]*store.Refusal
	// EditLock is why the login may not change the end user's email,
	// mobile or switch ("" when it may).
	EditLock string
}

// listRow is one end user as the page's table shows it (written by
// tableBody): only what the table prints, worked out beforehand.
type listRow struct {
	ID                    int64
	Username, DisplayName string
	Source                string
	StatusLabel           string
	// SelfServe is the switch; SwitchLock says why it is greyed ("" when
	// the login may flip it).
	SelfServe  bool
	SwitchLock string
	LockedOut  bool
	Enabled    bool
	// Expires is the password's expiry date, "never" or "".
	Expires          string
	Privileged       bool
	PrivilegedReason string
	Email, Mobile    cellView
}

// endUsersView is the end-user page's data.
type endUsersView struct {
	Customer store.Customer
	// Body is the table's rows (tableBody).
	Body       template.HTML
	Total      int
	From, To   int
	Filter     filter
	Prev, Next string
	// Self is this page's URL (the forms come back to it).
	Self string
	// Hidden are the filter's fields for the bulk form.
	Hidden       url.Values
	Sorts        map[string]string
	Statuses     []option
	Sources      []option
	SwitchLocked bool
	LockReason   string
	Notice       string
}

type option struct{ Value, Label string }

// lockReason is why switches cannot change in the tenant, or "".
func lockReason(t store.Tenant) string {
	if err := service.SelfServeAvailable(t); err != nil {
		return "The tenant's subscription does not include self-serve."
	}
	if rules.SwitchLocked(t.Rules()) {
		return "Locked: Self-Serve Password Reset is turned off for the whole tenant (Settings)."
	}
	return ""
}

// editLock is why the actor may not change u's contact fields or switch
// (service.Actor's rule for privileged end users), or "".
func editLock(a service.Actor, privileged bool, reason string) string {
	if !privileged || a.Login.Role.CanEditPrivilegedEndUsers() {
		return ""
	}
	if reason == "" {
		reason = "privileged"
	}
	return fmt.Sprintf("Privileged account (%s): only super and primary logins may change it.", reason)
}

// names resolves the customer's and connections' names for rows.
func (c *Console) names(ctx context.Context, t store.Tenant, cu store.Customer) (report.Names, error) {
	conns, err := c.st.Connections(ctx, t.ID)
	if err != nil {
		return report.Names{}, err
	}
	n := report.Names{Tenant: t, Customers: map[int64]store.Customer{cu.ID: cu}, Connections: map[int64]store.Connection{}}
	for _, co := range conns {
		n.Connections[co.ID] = co
	}
	return n, nil
}

// row builds the detail row of u.
func (c *Console) row(a service.Actor, names report.Names, u store.PageRow) row {
	rw := row{EndUser: report.NewEndUser(u.EndUser, names), Refused: map[string]*store.Refusal{},
		EditLock: editLock(a, u.Privileged, u.PrivilegedReason)}
	if u.RefusedEmail != nil {
		rw.Refused["email"] = &store.Refusal{Field: "email", Value: *u.RefusedEmail, Reason: deref(u.RefusedEmailReason)}
	}
	if u.RefusedMobile != nil {
		rw.Refused["mobile"] = &store.Refusal{Field: "mobile", Value: *u.RefusedMobile, Reason: deref(u.RefusedMobileReason)}
	}
	return rw
}

// listRows builds the table rows of users.
func listRows(a service.Actor, users []store.PageRow) []listRow {
	tenantLock := lockReason(a.Tenant)
	out := make([]listRow, len(users))
	for i, u := range users {
		status := rules.StatusOf(u.Rules())
		edit := editLock(a, u.Privileged, u.PrivilegedReason)
		r := listRow{ID: u.ID, Username: u.Username, DisplayName: u.DisplayName, Source: string(u.Source), StatusLabel: status.Label(),
			SelfServe: u.SelfServe, SwitchLock: cmp.Or(tenantLock, edit), LockedOut: u.LockedOut, Enabled: u.Enabled,
			Expires: formatDate(u.PasswordExpiresAt), Privileged: u.Privileged, PrivilegedReason: u.PrivilegedReason}
		if u.PasswordNeverExpires {
			r.Expires = "never"
		}
		r.Email = cellView{ID: u.ID, Username: u.Username, Field: "email", Value: u.Email, Provenance: provenanceLabel(u.EmailSource), Locked: edit}
		r.Mobile = cellView{ID: u.ID, Username: u.Username, Field: "mobile", Value: u.Mobile, Provenance: provenanceLabel(u.MobileSource), Locked: edit}
		if u.RefusedEmail != nil {
			r.Email.Refused = &store.Refusal{Field: "email", Value: *u.RefusedEmail, Reason: deref(u.RefusedEmailReason)}
		}
		if u.RefusedMobile != nil {
			r.Mobile.Refused = &store.Refusal{Field: "mobile", Value: *u.RefusedMobile, Reason: deref(u.RefusedMobileReason)}
		}
		out[i] = r
	}
	return out
}

// provenanceLabel names where a contact value came from.
func provenanceLabel(p rules.Provenance) string {
	switch p {
	case rules.ProvenanceDirectory:
		return "directory"
	case rules.ProvenancePSA:
		return "PSA"
	case rules.ProvenanceManual:
		return "typed"
	case rules.ProvenanceEndUser:
		return "end user"
	}
	return ""
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func pathID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, &service.Error{Status: http.StatusNotFound, Code: "not_found", Message: "no such page"}
	}
	return id, nil
}

func (c *Console) endUsersPage(w http.ResponseWriter, r *http.Request, s *session) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	qv := r.URL.Query()
	for k := range qv {
		if !slices.Contains(filterFields, k) && k != "sort" && k != "dir" && k != "offset" && k != "done" && k != "n" && k != "same" {
			return service.BadField(k, "unknown parameter %q", service.Truncate(k, 40))
		}
	}
	f, q, err := parseFilter(qv.Get)
	if err != nil {
		return err
	}
	ctx := r.Context()
	t := s.actor.Tenant
	q.CustomerID = id
	page, err := c.st.EndUserPage(ctx, t.ID, q)
	if err != nil {
		return err
	}
	if len(page.Rows) == 0 && q.Offset > 0 {
		f.Offset, q.Offset = 0, 0
		if page, err = c.st.EndUserPage(ctx, t.ID, q); err != nil {
			return err
		}
	}
	cu, total := page.Customer, page.Total
	base := fmt.Sprintf("/customers/%d", cu.ID)
	v := endUsersView{Customer: cu, Body: tableBody(listRows(s.actor, page.Rows)), Total: total, Filter: f, Self: base + "?" + f.values(true).Encode(),
		Hidden: f.values(false), Sorts: map[string]string{}, SwitchLocked: lockReason(t) != "", LockReason: lockReason(t),
		Notice: notice(qv)}
	v.Hidden.Del("sort")
	v.Hidden.Del("dir")
	if total > 0 {
		v.From, v.To = f.Offset+1, f.Offset+len(page.Rows)
	}
	if f.Offset > 0 {
		p := f
		p.Offset = max(0, f.Offset-pageSize)
		v.Prev = base + "?" + p.values(true).Encode()
	}
	if f.Offset+len(page.Rows) < total {
		n := f
		n.Offset = f.Offset + pageSize
		v.Next = base + "?" + n.values(true).Encode()
	}
	for _, col := range store.EndUserSorts {
		sf := f
		sf.Offset = 0
		sf.Sort, sf.Dir = string(col), ""
		if (f.Sort == string(col) || (f.Sort == "" && col == store.SortUsername)) && f.Dir != "desc" {
			sf.Dir = "desc"
		}
		v.Sorts[string(col)] = base + "?" + sf.values(false).Encode()
	}
	for _, st := range statusValues {
		v.Statuses = append(v.Statuses, option{st, rules.Status(st).Label()})
	}
	for _, so := range sourceValues {
		v.Sources = append(v.Sources, option{so, so})
	}
	c.render(w, http.StatusOK, "endusers", "", s, cu.Name+": end users", v)
	return nil
}

// notice is the message of a redirect after a change (built from numbers
// and fixed words only: nothing of the query is shown as is).
func notice(q url.Values) string {
	n, _ := strconv.Atoi(q.Get("n"))
	same, _ := strconv.Atoi(q.Get("same"))
	switch q.Get("done") {
	case "enabled", "disabled":
		msg := fmt.Sprintf("Self-Serve %s for %d end user(s).", q.Get("done"), n)
		if same > 0 {
			msg += fmt.Sprintf(" %d already were.", same)
		}
		return msg
	case "welcome":
		return "The welcome email is queued."
	case "none":
		return "No end user matched: nothing changed."
	}
	return ""
}

// back returns the form's return URL (a local path) with the notice.
func back(r *http.Request, fallback string, notice url.Values) string {
	u, err := url.Parse(localPath(r.PostForm.Get("back")))
	if err != nil || u.Path == "/" {
		u, _ = url.Parse(fallback)
	}
	q := u.Query()
	for _, k := range []string{"done", "n", "same"} {
		q.Del(k)
	}
	for k, v := range notice {
		q[k] = v
	}
	u.RawQuery = q.Encode()
	return u.String()
}

func parseEnabled(s string) (bool, error) {
	switch s {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, service.BadField("enabled", "enabled is true or false")
}

func (c *Console) toggleSelfServe(w http.ResponseWriter, r *http.Request, s *session) error {
	id, err := postedID(r, "enabled", "back")
	if err != nil {
		return err
	}
	on, err := parseEnabled(r.PostForm.Get("enabled"))
	if err != nil {
		return err
	}
	ctx := r.Context()
	u, err := c.st.EndUser(ctx, s.actor.Tenant.ID, id)
	if err != nil {
		return err
	}
	changed, unchanged, err := c.svc.SetSelfServe(ctx, s.actor, []int64{id}, on)
	if err != nil {
		return err
	}
	http.Redirect(w, r, back(r, fmt.Sprintf("/customers/%d", u.CustomerID), doneValues(on, changed, unchanged)), http.StatusSeeOther)
	return nil
}

func doneValues(on bool, changed, unchanged []int64) url.Values {
	done := "disabled"
	if on {
		done = "enabled"
	}
	return url.Values{"done": {done}, "n": {strconv.Itoa(len(changed))}, "same": {strconv.Itoa(len(unchanged))}}
}

func (c *Console) bulkSelfServe(w http.ResponseWriter, r *http.Request, s *session) error {
	id, err := postedID(r, append([]string{"enabled", "scope", "id", "back"}, filterFields...)...)
	if err != nil {
		return err
	}
	on, err := parseEnabled(r.PostForm.Get("enabled"))
	if err != nil {
		return err
	}
	ctx := r.Context()
	cu, err := c.st.Customer(ctx, s.actor.Tenant.ID, id)
	if err != nil {
		return err
	}
	var ids []int64
	switch r.PostForm.Get("scope") {
	case "selected":
		for _, v := range r.PostForm["id"] {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return service.BadField("id", "%q is not an end-user id", service.Truncate(v, 20))
			}
			ids = append(ids, n)
		}
		if len(ids) == 0 {
			return service.BadField("id", "select at least one end user (or choose all matching the filter)")
		}
		if err := service.CheckIDs(ids, pageSize); err != nil {
			return err
		}
	case "filter":
		_, q, err := parseFilter(r.PostForm.Get)
		if err != nil {
			return err
		}
		q.CustomerID = cu.ID
		ids, err = c.st.EndUserIDs(ctx, s.actor.Tenant.ID, q, maxBulkFilter)
		if errors.Is(err, store.ErrConflict) {
			return service.BadField("scope", "more than %d end users match: narrow the filter", maxBulkFilter)
		}
		if err != nil {
			return err
		}
	default:
		return service.BadField("scope", "scope is selected or filter")
	}
	fallback := fmt.Sprintf("/customers/%d", cu.ID)
	if len(ids) == 0 {
		http.Redirect(w, r, back(r, fallback, url.Values{"done": {"none"}}), http.StatusSeeOther)
		return nil
	}
	changed, unchanged, err := c.svc.SetSelfServe(ctx, s.actor, ids, on)
	if err != nil {
		return err
	}
	http.Redirect(w, r, back(r, fallback, doneValues(on, changed, unchanged)), http.StatusSeeOther)
	return nil
}

// cellView is one editable contact cell (the templates "cell" and
// "cell-edit").
type cellView struct {
	ID       int64
	Username string
	Field    string
	Value    string
	// Provenance says where Value came from (directory, PSA, typed, end
	// user).
	Provenance string
	// Refused is what a sync last refused for the field, if anything.
	Refused *store.Refusal
	// Locked is why the login may not edit the value ("" when it may).
	Locked string
	Error  string
	CSRF   string
}

// newCell is the cell of r's field.
func newCell(r row, field, csrf string) cellView {
	v := cellView{ID: r.ID, Username: r.Username, Field: field, Value: r.Email, Provenance: provenanceLabel(r.EmailSource),
		Refused: r.Refused[field], Locked: r.EditLock, CSRF: csrf}
	if field == "mobile" {
		v.Value, v.Provenance = r.Mobile, provenanceLabel(r.MobileSource)
	}
	return v
}

func contactField(s string) (string, error) {
	if s != "email" && s != "mobile" {
		return "", service.BadField("field", "field is email or mobile")
	}
	return s, nil
}

// cell loads the end user id's row for a contact cell.
func (c *Console) cell(ctx context.Context, s *session, id int64) (row, error) {
	t := s.actor.Tenant
	u, err := c.st.EndUser(ctx, t.ID, id)
	if err != nil {
		return row{}, err
	}
	cu, err := c.st.Customer(ctx, t.ID, u.CustomerID)
	if err != nil {
		return row{}, err
	}
	names, err := c.names(ctx, t, cu)
	if err != nil {
		return row{}, err
	}
	refusals, err := c.st.Refusals(ctx, t.ID, []int64{u.ID})
	if err != nil {
		return row{}, err
	}
	pr := store.PageRow{EndUser: u}
	for _, rf := range refusals[u.ID] {
		switch rf.Field {
		case "email":
			pr.RefusedEmail, pr.RefusedEmailReason = &rf.Value, &rf.Reason
		case "mobile":
			pr.RefusedMobile, pr.RefusedMobileReason = &rf.Value, &rf.Reason
		}
	}
	return c.row(s.actor, names, pr), nil
}

func (c *Console) editCell(w http.ResponseWriter, r *http.Request, s *session) error {
	return c.renderCell(w, r, s, "cell-edit")
}

func (c *Console) showCell(w http.ResponseWriter, r *http.Request, s *session) error {
	return c.renderCell(w, r, s, "cell")
}

func (c *Console) renderCell(w http.ResponseWriter, r *http.Request, s *session, fragment string) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	field, err := contactField(r.URL.Query().Get("field"))
	if err != nil {
		return err
	}
	rw, err := c.cell(r.Context(), s, id)
	if err != nil {
		return err
	}
	c.render(w, http.StatusOK, "endusers", fragment, s, "", newCell(rw, field, s.CSRF))
	return nil
}

func (c *Console) saveContact(w http.ResponseWriter, r *http.Request, s *session) error {
	id, err := postedID(r, "field", "value", "back")
	if err != nil {
		return err
	}
	field, err := contactField(r.PostForm.Get("field"))
	if err != nil {
		return err
	}
	value := r.PostForm.Get("value")
	edit := service.ContactEdit{Email: &value}
	if field == "mobile" {
		edit = service.ContactEdit{Mobile: &value}
	}
	ctx := r.Context()
	_, err = c.svc.UpdateContact(ctx, s.actor, id, edit)
	var e *service.Error
	if errors.As(err, &e) && e.Status == http.StatusBadRequest {
		rw, lerr := c.cell(ctx, s, id)
		if lerr != nil {
			return lerr
		}
		v := newCell(rw, field, s.CSRF)
		v.Value, v.Error = value, e.Message
		if isHTMX(r) {
			c.render(w, http.StatusUnprocessableEntity, "endusers", "cell-edit", s, "", v)
			return nil
		}
		return e
	}
	if err != nil {
		return err
	}
	if !isHTMX(r) {
		u, err := c.st.EndUser(ctx, s.actor.Tenant.ID, id)
		if err != nil {
			return err
		}
		http.Redirect(w, r, back(r, fmt.Sprintf("/customers/%d", u.CustomerID), nil), http.StatusSeeOther)
		return nil
	}
	rw, err := c.cell(ctx, s, id)
	if err != nil {
		return err
	}
	c.render(w, http.StatusOK, "endusers", "cell", s, "", newCell(rw, field, s.CSRF))
	return nil
}

func (c *Console) sendWelcome(w http.ResponseWriter, r *http.Request, s *session) error {
	id, err := postedID(r, "back")
	if err != nil {
		return err
	}
	ctx := r.Context()
	u, err := c.st.EndUser(ctx, s.actor.Tenant.ID, id)
	if err != nil {
		return err
	}
	if err := c.svc.RequestWelcome(ctx, s.actor, id); err != nil {
		return err
	}
	http.Redirect(w, r, back(r, fmt.Sprintf("/customers/%d", u.CustomerID), url.Values{"done": {"welcome"}}), http.StatusSeeOther)
	return nil
}
