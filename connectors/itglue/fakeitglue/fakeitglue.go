// Package fakeitglue is a fake IT Glue API for tests: an httptest server that
// speaks IT Glue's documented wire format (JSON:API envelopes with kebab-case
// attributes, page[size]/page[number] paging with meta, the x-api-key header,
// 403 for a wrong key, JSON:API error envelopes) over deterministic data, and
// injects faults on request.
//
// Served: GET /organizations (filter[organization_type_id],
// filter[organization_status_id], sort) and
// GET /organizations/:id/relationships/contacts (sort).
package fakeitglue

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"selfserve/connectors/internal/restclient/restfake"
)

// DefaultAPIKey is the key the server accepts when Options.APIKey is empty.
const DefaultAPIKey = "ITG.fake-key"

const contentType = "application/vnd.api+json"

// MetaStyle selects how the server fills the meta paging object, to exercise
// each way a client can find the last page.
type MetaStyle int

// The meta styles.
const (
	// MetaFull sends current-page, next-page (null on the last page),
	// prev-page, total-pages and total-count, as IT Glue does.
	MetaFull MetaStyle = iota
	// MetaNoTotals omits total-pages and total-count: only a null next-page
	// marks the end.
	MetaNoTotals
	// MetaNextAlways sends a next-page even on the last page: only
	// current-page >= total-pages marks the end.
	MetaNextAlways
	// MetaNone sends no meta at all.
	MetaNone
)

// RecordFault is a defect served in one record.
type RecordFault int

// The record faults.
const (
	// WrongType sends a string attribute as a number (an organization's
	// name, a contact's first-name).
	WrongType RecordFault = iota + 1
	// NumericIDs sends the id as a JSON number and a contact's
	// organization-id as a string: the reverse of the documented types.
	NumericIDs
	// MissingID sends the record without an id.
	MissingID
	// Duplicate serves the record a second time, at the start of the next
	// page.
	Duplicate
)

// Options configures the server. The zero value serves 3 organizations of 5
// contacts each with DefaultAPIKey.
type Options struct {
	// APIKey is the key the server accepts (default DefaultAPIKey).
	APIKey string
	// Seed makes the data; the same seed gives the same data.
	Seed uint64
	// Organizations is how many organizations there are (default 3; a
	// negative number serves none).
	Organizations int
	// ContactsPerOrganization is how many contacts each has (default 5).
	ContactsPerOrganization int
	// Meta is how paging metadata is sent (default MetaFull).
	Meta MetaStyle
	// Records injects defects into records, keyed by record id.
	Records map[string]RecordFault
	// Faults injects request-level failures.
	Faults restfake.Faults
}

// Organization is an organization as the server holds it.
type Organization struct {
	ID         string
	Name       string
	TypeID     int
	TypeName   string
	StatusID   int
	StatusName string
	UpdatedAt  time.Time
}

// Item is one of a contact's emails or phones.
type Item struct {
	Value   string
	Primary bool
	Label   string
}

// Contact is a contact as the server holds it, with what a client following
// IT Glue's documented semantics should read from it.
type Contact struct {
	ID             string
	OrganizationID string
	FirstName      string
	LastName       string
	Emails         []Item
	Phones         []Item
	UpdatedAt      time.Time

	// WantEmails are the addresses, primary first.
	WantEmails []string
	// WantMobiles are the values of phones labelled Mobile or Cell (any
	// case), primary first.
	WantMobiles []string
}

// Server is a running fake. Close it when done.
type Server struct {
	*restfake.Server
	opts          Options
	organizations []Organization
	contacts      map[string][]Contact
}

var (
	orgTypes    = []string{"Customer", "Vendor", "Internal"}
	orgStatuses = []string{"Active", "Inactive"}
	// mobileLabels are the label spellings the data rotates through.
	mobileLabels = []string{"Cell", "Mobile", "mobile", "CELL", " Cell "}
)

// New starts a server.
func New(opts Options) *Server {
	if opts.APIKey == "" {
		opts.APIKey = DefaultAPIKey
	}
	if opts.Organizations == 0 {
		opts.Organizations = 3
	}
	if opts.ContactsPerOrganization == 0 {
		opts.ContactsPerOrganization = 5
	}
	opts.Organizations = max(opts.Organizations, 0)
	opts.ContactsPerOrganization = max(opts.ContactsPerOrganization, 0)
	s := &Server{opts: opts, contacts: map[string][]Contact{}}
	s.generate()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /organizations", s.listOrganizations)
	mux.HandleFunc("GET /organizations/{id}/relationships/contacts", s.listContacts)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "Not Found", "no route for "+r.Method+" "+r.URL.Path)
	})
	s.Server = restfake.NewServer(opts.Faults, restfake.Vendor{
		Error: func(w http.ResponseWriter, status int, message string) {
			writeError(w, status, http.StatusText(status), message)
		},
		Throttle: func(w http.ResponseWriter) {
			writeError(w, http.StatusTooManyRequests, "Too Many Requests", "Rate limit exceeded: 3000 requests per 5 minutes")
		},
		StripEnvelope: stripData,
	}, s.authenticated(mux))
	return s
}

// Organizations returns the organizations, by id.
func (s *Server) Organizations() []Organization { return slices.Clone(s.organizations) }

// Contacts returns the contacts of an organization, by id.
func (s *Server) Contacts(organizationID string) []Contact {
	return slices.Clone(s.contacts[organizationID])
}

func (s *Server) generate() {
	g := restfake.NewRand(s.opts.Seed)
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	contactID := 1000
	for i := range s.opts.Organizations {
		org := Organization{
			ID:         strconv.Itoa(100 + i + 1),
			Name:       g.Company(i + 1),
			TypeID:     i%len(orgTypes) + 1,
			TypeName:   orgTypes[i%len(orgTypes)],
			StatusID:   i%len(orgStatuses) + 1,
			StatusName: orgStatuses[i%len(orgStatuses)],
			UpdatedAt:  g.Time(base),
		}
		s.organizations = append(s.organizations, org)
		for j := range s.opts.ContactsPerOrganization {
			contactID++
			s.contacts[org.ID] = append(s.contacts[org.ID], s.contact(g, org, strconv.Itoa(contactID), j, base))
		}
	}
}

// contact builds the j-th contact of org. The shapes rotate: a secondary
// email listed before the primary one, mobiles under each label spelling,
// a primary mobile listed after a secondary one, contacts without mobile.
func (s *Server) contact(g *restfake.Rand, org Organization, id string, j int, base time.Time) Contact {
	first, last := g.Person()
	c := Contact{ID: id, OrganizationID: org.ID, FirstName: first, LastName: last, UpdatedAt: g.Time(base)}
	primary := restfake.Email(first, last, org.Name, j)
	if j%3 == 1 {
		home := fmt.Sprintf("contact%s@home.example", id)
		c.Emails = []Item{{Value: home, Label: "Home"}, {Value: primary, Primary: true, Label: "Work"}}
		c.WantEmails = []string{primary, home}
	} else {
		c.Emails = []Item{{Value: primary, Primary: true, Label: "Work"}}
		c.WantEmails = []string{primary}
	}
	work := Item{Value: g.Digits(), Primary: true, Label: "Work"}
	switch j % 4 {
	case 0:
		mobile := Item{Value: g.Digits(), Label: mobileLabels[j%len(mobileLabels)]}
		c.Phones = []Item{work, mobile, {Value: g.Digits(), Label: "Home"}}
		c.WantMobiles = []string{mobile.Value}
	case 1:
		second := Item{Value: g.Digits(), Label: "Mobile"}
		preferred := Item{Value: g.Digits(), Primary: true, Label: mobileLabels[(j+1)%len(mobileLabels)]}
		work.Primary = false
		c.Phones = []Item{work, second, preferred}
		c.WantMobiles = []string{preferred.Value, second.Value}
	case 2:
		c.Phones = []Item{work, {Value: g.Digits(), Label: "Home"}, {Value: g.Digits(), Label: "Fax"}}
	case 3:
		c.Phones = nil
	}
	return c
}

// authenticated checks x-api-key: missing → 401, wrong → 403 (IT Glue's
// answer to a bad key).
func (s *Server) authenticated(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch key := r.Header.Get("x-api-key"); {
		case key == "":
			writeError(w, http.StatusUnauthorized, "Unauthorized", "Missing API key: send it in the x-api-key header")
		case key != s.opts.APIKey:
			writeError(w, http.StatusForbidden, "Forbidden", "Invalid API key")
		default:
			next.ServeHTTP(w, r)
		}
	})
}

func (s *Server) listOrganizations(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var rows []Organization
	for _, o := range s.organizations {
		if v := q.Get("filter[organization_type_id]"); v != "" && v != strconv.Itoa(o.TypeID) {
			continue
		}
		if v := q.Get("filter[organization_status_id]"); v != "" && v != strconv.Itoa(o.StatusID) {
			continue
		}
		rows = append(rows, o)
	}
	less, ok := orgOrder(q.Get("sort"))
	if !ok {
		writeError(w, http.StatusBadRequest, "Bad Request", "invalid sort "+q.Get("sort"))
		return
	}
	slices.SortStableFunc(rows, less)
	records := make([]map[string]any, len(rows))
	for i, o := range rows {
		records[i] = s.organizationRecord(o)
	}
	s.writePage(w, r, records)
}

func (s *Server) listContacts(w http.ResponseWriter, r *http.Request) {
	orgID := r.PathValue("id")
	if !slices.ContainsFunc(s.organizations, func(o Organization) bool { return o.ID == orgID }) {
		writeError(w, http.StatusNotFound, "Not Found", "organization "+orgID+" not found")
		return
	}
	rows := slices.Clone(s.contacts[orgID])
	less, ok := contactOrder(r.URL.Query().Get("sort"))
	if !ok {
		writeError(w, http.StatusBadRequest, "Bad Request", "invalid sort "+r.URL.Query().Get("sort"))
		return
	}
	slices.SortStableFunc(rows, less)
	records := make([]map[string]any, len(rows))
	for i, c := range rows {
		records[i] = s.contactRecord(c)
	}
	s.writePage(w, r, records)
}

func orgOrder(sort string) (func(a, b Organization) int, bool) {
	key, desc := strings.CutPrefix(sort, "-")
	var cmp func(a, b Organization) int
	switch key {
	case "", "id":
		cmp = func(a, b Organization) int { return compareIDs(a.ID, b.ID) }
	case "name":
		cmp = func(a, b Organization) int { return strings.Compare(a.Name, b.Name) }
	case "updated_at":
		cmp = func(a, b Organization) int { return a.UpdatedAt.Compare(b.UpdatedAt) }
	default:
		return nil, false
	}
	return direction(cmp, desc), true
}

func contactOrder(sort string) (func(a, b Contact) int, bool) {
	key, desc := strings.CutPrefix(sort, "-")
	var cmp func(a, b Contact) int
	switch key {
	case "", "id":
		cmp = func(a, b Contact) int { return compareIDs(a.ID, b.ID) }
	case "first_name":
		cmp = func(a, b Contact) int { return strings.Compare(a.FirstName, b.FirstName) }
	case "last_name":
		cmp = func(a, b Contact) int { return strings.Compare(a.LastName, b.LastName) }
	case "updated_at":
		cmp = func(a, b Contact) int { return a.UpdatedAt.Compare(b.UpdatedAt) }
	default:
		return nil, false
	}
	return direction(cmp, desc), true
}

func direction[T any](cmp func(a, b T) int, desc bool) func(a, b T) int {
	if desc {
		return func(a, b T) int { return cmp(b, a) }
	}
	return cmp
}

func compareIDs(a, b string) int {
	x, _ := strconv.Atoi(a)
	y, _ := strconv.Atoi(b)
	return x - y
}

func (s *Server) organizationRecord(o Organization) map[string]any {
	attrs := map[string]any{
		"name":                     o.Name,
		"short-name":               strings.ToLower(strings.Fields(o.Name)[1]),
		"organization-type-id":     o.TypeID,
		"organization-type-name":   o.TypeName,
		"organization-status-id":   o.StatusID,
		"organization-status-name": o.StatusName,
		"primary":                  false,
		"parent-id":                nil,
		"ancestor-ids":             "",
		"created-at":               o.UpdatedAt.Add(-24 * time.Hour).Format("2006-01-02T15:04:05.000Z"),
		"updated-at":               o.UpdatedAt.Format("2006-01-02T15:04:05.000Z"),
	}
	rec := map[string]any{"id": o.ID, "type": "organizations", "attributes": attrs}
	switch s.opts.Records[o.ID] {
	case WrongType:
		attrs["name"] = 12345
	case NumericIDs:
		rec["id"], _ = strconv.Atoi(o.ID)
	case MissingID:
		delete(rec, "id")
	}
	return rec
}

func (s *Server) contactRecord(c Contact) map[string]any {
	orgID, _ := strconv.Atoi(c.OrganizationID)
	emails := make([]map[string]any, len(c.Emails))
	for i, e := range c.Emails {
		emails[i] = map[string]any{"value": e.Value, "primary": e.Primary, "label-name": e.Label}
	}
	phones := make([]map[string]any, len(c.Phones))
	for i, p := range c.Phones {
		phones[i] = map[string]any{
			"value": p.Value, "extension": nil, "primary": p.Primary, "label-name": p.Label, "label-type": "phone",
			"formatted-value": fmt.Sprintf("(%s) %s-%s", p.Value[:3], p.Value[3:6], p.Value[6:]),
		}
	}
	attrs := map[string]any{
		"organization-id":   orgID,
		"organization-name": "",
		"name":              c.FirstName + " " + c.LastName,
		"first-name":        c.FirstName,
		"last-name":         c.LastName,
		"title":             nil,
		"contact-type-id":   nil,
		"contact-type-name": nil,
		"location-id":       nil,
		"important":         false,
		"notes":             nil,
		"created-at":        c.UpdatedAt.Add(-24 * time.Hour).Format("2006-01-02T15:04:05.000Z"),
		"updated-at":        c.UpdatedAt.Format("2006-01-02T15:04:05.000Z"),
		"contact-emails":    emails,
		"contact-phones":    phones,
	}
	rec := map[string]any{"id": c.ID, "type": "contacts", "attributes": attrs}
	switch s.opts.Records[c.ID] {
	case WrongType:
		attrs["first-name"] = 4711
	case NumericIDs:
		rec["id"], _ = strconv.Atoi(c.ID)
		attrs["organization-id"] = c.OrganizationID
	case MissingID:
		delete(rec, "id")
	}
	return rec
}

// writePage answers with one page of records and its meta.
func (s *Server) writePage(w http.ResponseWriter, r *http.Request, records []map[string]any) {
	q := r.URL.Query()
	size, number := 50, 1
	if v := q.Get("page[size]"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			writeError(w, http.StatusBadRequest, "Bad Request", "page[size] must be a number from 1 to 1000")
			return
		}
		size = n
	}
	if v := q.Get("page[number]"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			writeError(w, http.StatusBadRequest, "Bad Request", "page[number] must be a positive number")
			return
		}
		number = n
	}
	start, end := restfake.PageBounds(number, size, len(records))
	page := slices.Clone(records[start:end])
	// A record marked Duplicate shows up again at the start of the next page.
	if prevStart, prevEnd := restfake.PageBounds(number-1, size, len(records)); prevEnd > prevStart {
		for _, rec := range slices.Backward(records[prevStart:prevEnd]) {
			if id, _ := rec["id"].(string); id != "" && s.opts.Records[id] == Duplicate {
				page = append([]map[string]any{rec}, page...)
			}
		}
	}
	totalPages := max((len(records)+size-1)/size, 1)
	var next, prev any
	if number < totalPages || s.opts.Meta == MetaNextAlways {
		next = number + 1
	}
	if number > 1 {
		prev = number - 1
	}
	body := map[string]any{"data": page, "links": map[string]any{}}
	switch s.opts.Meta {
	case MetaFull, MetaNextAlways:
		body["meta"] = map[string]any{"current-page": number, "next-page": next, "prev-page": prev, "total-pages": totalPages, "total-count": len(records), "filters": map[string]any{}}
	case MetaNoTotals:
		body["meta"] = map[string]any{"current-page": number, "next-page": next, "prev-page": prev, "filters": map[string]any{}}
	}
	out, _ := json.Marshal(body)
	restfake.WriteJSON(w, http.StatusOK, contentType, out)
}

// writeError writes a JSON:API error envelope.
func writeError(w http.ResponseWriter, status int, title, detail string) {
	out, _ := json.Marshal(map[string]any{"errors": []map[string]any{{"status": strconv.Itoa(status), "title": title, "detail": detail}}})
	restfake.WriteJSON(w, status, contentType, out)
}

// stripData drops the "data" member, keeping meta: a page without its
// records.
func stripData(body []byte) []byte {
	var obj map[string]json.RawMessage
	if json.Unmarshal(body, &obj) != nil {
		return body
	}
	delete(obj, "data")
	out, _ := json.Marshal(obj)
	return out
}
