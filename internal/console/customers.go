package console

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"selfserve/connectors"
	"selfserve/internal/enrich"
	"selfserve/internal/service"
	"selfserve/internal/store"
)

// customerRow is a customer with its counts.
type customerRow struct {
	store.Customer
	store.CustomerCounts
}

// Linkable reports a manual customer not linked to a PSA record yet.
func (r customerRow) Linkable() bool { return r.ExternalID == "" }

// customersView is the customers page's data.
type customersView struct {
	Customers []customerRow
	Q         string
	// Notice says what the last change did.
	Notice string
	// New is the create form.
	New form
}

// customerFields are the create form's fields.
var customerFields = []string{"name", "timezone", "default_region"}

// home lists the tenant's customers with their end-user counts.
func (c *Console) home(w http.ResponseWriter, r *http.Request, s *session) error {
	q := r.URL.Query()
	v := customersView{Q: strings.TrimSpace(q.Get("q"))}
	if id, err := strconv.ParseInt(q.Get("created"), 10, 64); err == nil {
		if cu, err := c.st.Customer(r.Context(), s.actor.Tenant.ID, id); err == nil {
			v.Notice = fmt.Sprintf("Customer %s created.", cu.Name)
		}
	}
	if id, err := strconv.ParseInt(q.Get("linked"), 10, 64); err == nil {
		if cu, err := c.st.Customer(r.Context(), s.actor.Tenant.ID, id); err == nil && cu.ExternalID != "" {
			v.Notice = fmt.Sprintf("Customer %s is linked to %s id %s: imports from %s update it.", cu.Name, cu.Source, cu.ExternalID, cu.Source)
		}
	}
	return c.renderCustomers(w, r, s, http.StatusOK, v)
}

func (c *Console) renderCustomers(w http.ResponseWriter, r *http.Request, s *session, status int, v customersView) error {
	if len([]rune(v.Q)) > maxSearchLength {
		return service.BadField("q", "the search is longer than %d characters", maxSearchLength)
	}
	ctx := r.Context()
	t := s.actor.Tenant
	cs, err := c.st.Customers(ctx, t.ID)
	if err != nil {
		return err
	}
	counts, err := c.st.CustomerCounts(ctx, t.ID)
	if err != nil {
		return err
	}
	locked := lockReason(t) != ""
	for _, cu := range cs {
		if v.Q != "" && !strings.Contains(strings.ToLower(cu.Name), strings.ToLower(v.Q)) {
			continue
		}
		n := counts[cu.ID]
		if locked {
			n.UserActive = 0 // the tenant's half of rules.Active fails for all
		}
		v.Customers = append(v.Customers, customerRow{cu, n})
	}
	c.render(w, status, "customers", "", s, "Customers", v)
	return nil
}

// createCustomer creates a customer by hand; a refused value shows the
// form again with the error next to its field.
func (c *Console) createCustomer(w http.ResponseWriter, r *http.Request, s *session) error {
	if err := onlyFields(r, customerFields...); err != nil {
		return err
	}
	req := service.NewCustomer{Name: strings.TrimSpace(r.PostForm.Get("name")), TimeZone: strings.TrimSpace(r.PostForm.Get("timezone")),
		DefaultRegion: strings.TrimSpace(r.PostForm.Get("default_region"))}
	cu, err := c.svc.CreateCustomer(r.Context(), s.actor, req)
	if e, field, ok := fieldError(err, "name", customerFields...); ok {
		return c.renderCustomers(w, r, s, e.Status, customersView{New: form{Values: typed(r, customerFields...), Field: field, Error: e.Message}})
	}
	if err != nil {
		return err
	}
	http.Redirect(w, r, fmt.Sprintf("/?created=%d", cu.ID), http.StatusSeeOther)
	return nil
}

// linkView is the page linking a manual customer to its PSA record.
type linkView struct {
	Customer store.Customer
	Sources  []connectors.Kind
	Form     form
}

// linkFields are the link form's fields.
var linkFields = []string{"source", "external_id"}

func (c *Console) linkPage(w http.ResponseWriter, r *http.Request, s *session) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	cu, err := c.st.Customer(r.Context(), s.actor.Tenant.ID, id)
	if err != nil {
		return err
	}
	c.render(w, http.StatusOK, "link", "", s, "Link "+cu.Name, linkView{Customer: cu, Sources: service.PSAKinds})
	return nil
}

func (c *Console) linkCustomer(w http.ResponseWriter, r *http.Request, s *session) error {
	id, err := postedID(r, linkFields...)
	if err != nil {
		return err
	}
	ctx := r.Context()
	cu, err := c.svc.LinkCustomer(ctx, s.actor, id, service.CustomerLink{Source: r.PostForm.Get("source"), ExternalID: strings.TrimSpace(r.PostForm.Get("external_id"))})
	if e, field, ok := fieldError(err, "external_id", linkFields...); ok {
		before, err := c.st.Customer(ctx, s.actor.Tenant.ID, id)
		if err != nil {
			return err
		}
		c.render(w, e.Status, "link", "", s, "Link "+before.Name, linkView{Customer: before, Sources: service.PSAKinds,
			Form: form{Values: typed(r, linkFields...), Field: field, Error: e.Message}})
		return nil
	}
	if err != nil {
		return err
	}
	http.Redirect(w, r, fmt.Sprintf("/?linked=%d", cu.ID), http.StatusSeeOther)
	return nil
}

// importView is the customer import page: the PSA connections, and the
// preview of the one picked.
type importView struct {
	Connections []store.Connection
	// Picked is the connection previewed (0: none).
	Picked  int64
	Preview *enrich.Preview
	Rows    []previewRow
	Form    form
}

// previewRow is one PSA customer of a preview and what an import would do
// with it.
type previewRow struct{ store.CustomerOutcome }

// What says in words what an import would do with the customer.
func (p previewRow) What() string {
	switch p.Action {
	case store.CustomerCreated:
		return "New customer"
	case store.CustomerLinked:
		return "Links the manual customer of the same name"
	case store.CustomerRenamed:
		return "Renames the customer imported before"
	case store.CustomerUnchanged:
		return "Imported already: no change"
	}
	return "Skipped: " + p.Detail
}

// Skipped reports an outcome that stores nothing.
func (p previewRow) Skipped() bool { return p.Detail != "" }

// psaConnections are the tenant's PSA connections.
func (c *Console) psaConnections(r *http.Request, s *session) ([]store.Connection, error) {
	all, err := c.st.Connections(r.Context(), s.actor.Tenant.ID)
	if err != nil {
		return nil, err
	}
	var out []store.Connection
	for _, co := range all {
		if !co.Kind.IsDirectory() {
			out = append(out, co)
		}
	}
	return out, nil
}

// importPage lists the PSA connections; with ?connection=ID it previews
// what importing that connection's customers would do.
func (c *Console) importPage(w http.ResponseWriter, r *http.Request, s *session) error {
	conns, err := c.psaConnections(r, s)
	if err != nil {
		return err
	}
	v := importView{Connections: conns}
	raw := r.URL.Query().Get("connection")
	if raw == "" {
		c.render(w, http.StatusOK, "import", "", s, "Import customers", v)
		return nil
	}
	v.Form.Values = map[string]string{"connection_id": raw}
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || id <= 0 {
		v.Form.Field, v.Form.Error = "connection_id", "Pick one of the PSA connections."
		c.render(w, http.StatusBadRequest, "import", "", s, "Import customers", v)
		return nil
	}
	p, err := c.svc.PreviewCustomers(r.Context(), s.actor, id)
	if e, _, ok := fieldError(err, "connection_id"); ok {
		v.Form.Field, v.Form.Error = "connection_id", e.Message
		c.render(w, e.Status, "import", "", s, "Import customers", v)
		return nil
	}
	if err != nil {
		return err
	}
	v.Picked, v.Preview = id, &p
	for _, o := range p.Outcomes {
		v.Rows = append(v.Rows, previewRow{o})
	}
	c.render(w, http.StatusOK, "import", "", s, "Import customers", v)
	return nil
}

// importCustomers starts the customer import of a PSA connection and shows
// its run.
func (c *Console) importCustomers(w http.ResponseWriter, r *http.Request, s *session) error {
	if err := onlyFields(r, "connection_id"); err != nil {
		return err
	}
	raw := r.PostForm.Get("connection_id")
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || id <= 0 {
		return service.BadField("connection_id", "%q is not a connection id", service.Truncate(raw, 20))
	}
	run, err := c.svc.ImportCustomers(r.Context(), s.actor, id)
	if e, _, ok := fieldError(err, "connection_id"); ok {
		conns, err := c.psaConnections(r, s)
		if err != nil {
			return err
		}
		c.render(w, e.Status, "import", "", s, "Import customers", importView{Connections: conns,
			Form: form{Values: map[string]string{"connection_id": raw}, Field: "connection_id", Error: e.Message}})
		return nil
	}
	if err != nil {
		return err
	}
	http.Redirect(w, r, fmt.Sprintf("/runs/%d", run.ID), http.StatusSeeOther)
	return nil
}
