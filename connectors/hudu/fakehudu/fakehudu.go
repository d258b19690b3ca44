// Package fakehudu is a fake Hudu API for tests: an httptest server that
// speaks Hudu's documented wire format under /api/v1 (plain JSON wrapped
// under the plural key, page/page_size paging with no total and no next
// link, the x-api-key header, {"error": …} envelopes, a plain-text "Retry
// later" 429) over deterministic data, and injects faults on request.
//
// Served: GET /api/v1/companies (archived), GET /api/v1/asset_layouts (name,
// matched as a substring as Hudu's search does) and GET /api/v1/assets
// (asset_layout_id, company_id, archived, updated_at).
//
// People are assets of the "People" layout whose fields rotate through the
// shapes real instances hold: plain values under label variants, HTML rich
// text, the tables IT Glue's migration writes, JSON strings, numbers, names
// only in the asset name.
package fakehudu

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
const DefaultAPIKey = "hudu-fake-key"

// Layout ids.
const (
	PeopleLayoutID    = 7
	archiveLayoutID   = 8
	computersLayoutID = 9
)

// huduDefaultPageSize is what Hudu serves without page_size.
const huduDefaultPageSize = 25

// RecordFault is a defect served in one record.
type RecordFault int

// The record faults.
const (
	// WrongType sends a company's name as a number, an asset's fields as a
	// string.
	WrongType RecordFault = iota + 1
	// StringIDs sends the id and company_id as JSON strings: the reverse of
	// the documented types.
	StringIDs
	// MissingID sends the record without an id.
	MissingID
	// Duplicate serves the record a second time, at the start of the next
	// page.
	Duplicate
)

// Options configures the server. The zero value serves 3 companies of 7
// people each with DefaultAPIKey.
type Options struct {
	// APIKey is the key the server accepts (default DefaultAPIKey).
	APIKey string
	// Seed makes the data; the same seed gives the same data.
	Seed uint64
	// Companies is how many active companies there are (default 3; a
	// negative number serves none). Every fourth one more is archived.
	Companies int
	// PeoplePerCompany is how many people each company has (default 7,
	// one of each shape; a negative number serves none). Each company also
	// has an archived person and a computer asset.
	PeoplePerCompany int
	// PeopleLayout names the people layout (default "People").
	PeopleLayout string
	// IgnorePageSize serves pages of 25 whatever page_size asks, as some
	// Hudu versions do.
	IgnorePageSize bool
	// Records injects defects into records, keyed by record id.
	Records map[string]RecordFault
	// Faults injects request-level failures.
	Faults restfake.Faults
}

// Company is a company as the server holds it.
type Company struct {
	ID          string
	Name        string
	CompanyType string
	Archived    bool
}

// Person is a person asset as the server holds it, with what a client
// reading Hudu's fields as documented should find in it.
type Person struct {
	ID        string
	CompanyID string
	Name      string
	Archived  bool
	UpdatedAt time.Time

	WantFirstName string
	WantLastName  string
	// WantEmails are primary_mail, then the addresses of the Email and
	// Emails fields (primary first inside a field).
	WantEmails []string
	// WantMobiles are the numbers of the mobile fields, in the default
	// mobile_fields order, without numbers labelled otherwise (Work).
	WantMobiles []string

	primaryMail string
	fields      []field
}

type field struct {
	Label string
	Value any
}

// Server is a running fake. Close it when done.
type Server struct {
	*restfake.Server
	opts      Options
	companies []Company
	people    []Person // all assets of the people layout, by id
	computers []Person // assets of another layout
}

// New starts a server.
func New(opts Options) *Server {
	if opts.APIKey == "" {
		opts.APIKey = DefaultAPIKey
	}
	if opts.Companies == 0 {
		opts.Companies = 3
	}
	if opts.PeoplePerCompany == 0 {
		opts.PeoplePerCompany = 7
	}
	if opts.PeopleLayout == "" {
		opts.PeopleLayout = "People"
	}
	opts.Companies = max(opts.Companies, 0)
	opts.PeoplePerCompany = max(opts.PeoplePerCompany, 0)
	s := &Server{opts: opts}
	s.generate()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/companies", s.listCompanies)
	mux.HandleFunc("GET /api/v1/asset_layouts", s.listLayouts)
	mux.HandleFunc("GET /api/v1/assets", s.listAssets)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "Not found")
	})
	s.Server = restfake.NewServer(opts.Faults, restfake.Vendor{
		Error: writeError,
		Throttle: func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = w.Write([]byte("Retry later\n"))
		},
		StripEnvelope: stripEnvelope,
	}, s.authenticated(mux))
	return s
}

// Companies returns the active companies, by id.
func (s *Server) Companies() []Company {
	return slices.DeleteFunc(slices.Clone(s.companies), func(c Company) bool { return c.Archived })
}

// People returns the active people of a company, by id.
func (s *Server) People(companyID string) []Person {
	var out []Person
	for _, p := range s.people {
		if p.CompanyID == companyID && !p.Archived {
			out = append(out, p)
		}
	}
	return out
}

func (s *Server) generate() {
	g := restfake.NewRand(s.opts.Seed)
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	types := []string{"Customer", "Prospect", "Vendor"}
	assetID := 1000
	add := func(n int, archived bool) {
		c := Company{ID: strconv.Itoa(n), Name: g.Company(n), CompanyType: types[n%len(types)], Archived: archived}
		s.companies = append(s.companies, c)
		for j := range s.opts.PeoplePerCompany + 1 {
			assetID++
			p := person(g, c, strconv.Itoa(assetID), j, base)
			p.Archived = j == s.opts.PeoplePerCompany
			s.people = append(s.people, p)
		}
		assetID++
		s.computers = append(s.computers, Person{ID: strconv.Itoa(assetID), CompanyID: c.ID, Name: "LAPTOP-" + c.ID, UpdatedAt: g.Time(base),
			fields: []field{{"Email", "it@" + c.ID + ".example"}, {"Mobile", "+1 555 0100"}}})
	}
	n := 0
	for i := range s.opts.Companies {
		n++
		add(n, false)
		if i%4 == 3 {
			n++
			add(n, true)
		}
	}
}

// person builds the j-th person of a company, in one of seven shapes.
func person(g *restfake.Rand, c Company, id string, j int, base time.Time) Person {
	first, last := g.Person()
	email := restfake.Email(first, last, c.Name, j)
	mobile := "+1 " + g.Digits()
	p := Person{ID: id, CompanyID: c.ID, Name: first + " " + last, UpdatedAt: g.Time(base), WantFirstName: first, WantLastName: last}
	names := []field{{"First Name", first}, {"Last Name", last}}
	switch j % 7 {
	case 0: // plain values under the default labels
		p.primaryMail = email
		p.fields = append(names, field{"Title", "Accountant"}, field{"Email", email}, field{"Mobile", mobile})
		p.WantEmails, p.WantMobiles = []string{email}, []string{mobile}
	case 1: // label variants in other cases, no primary_mail
		p.fields = append(names, field{"EMAIL", email}, field{"cell", mobile})
		p.WantEmails, p.WantMobiles = []string{email}, []string{mobile}
	case 2: // HTML rich text with a labelled work number
		work, home := g.Digits(), "home"+id+"@home.example"
		p.primaryMail = email
		p.fields = append(names,
			field{"Emails", fmt.Sprintf(`<p><a href="mailto:%s">%s</a></p><p>Home: %s</p>`, email, email, home)},
			field{"Phones", fmt.Sprintf(`<p>Work: %s</p><p>Mobile: <a href="tel:%s">%s</a></p>`, work, strings.ReplaceAll(mobile, " ", ""), mobile)})
		p.WantEmails, p.WantMobiles = []string{email, home}, []string{mobile}
	case 3: // the tables the IT Glue migration writes
		work, cell, home := g.Digits(), g.Digits(), "home"+id+"@home.example"
		p.fields = append(names,
			field{"Emails", "<table>\n<colgroup><col/><col/><col/></colgroup>\n<tr><th>value</th><th>primary</th><th>label-name</th></tr>\n" +
				fmt.Sprintf("<tr><td>%s</td><td>False</td><td>Home</td></tr>\n<tr><td>%s</td><td>True</td><td>Work</td></tr>\n</table>\n", home, email)},
			field{"Phones", "<table>\n<colgroup><col/><col/><col/><col/><col/><col/></colgroup>\n<tr><th>value</th><th>extension</th><th>primary</th><th>label-name</th><th>label-type</th><th>formatted-value</th></tr>\n" +
				fmt.Sprintf("<tr><td>%s</td><td></td><td>True</td><td>Work</td><td>phone</td><td>(%s) %s-%s</td></tr>\n", work, work[:3], work[3:6], work[6:]) +
				fmt.Sprintf("<tr><td>%s</td><td></td><td>False</td><td>Cell</td><td>phone</td><td>(%s) %s-%s</td></tr>\n</table>\n", cell, cell[:3], cell[3:6], cell[6:])})
		p.WantEmails, p.WantMobiles = []string{email, home}, []string{cell}
	case 4: // a JSON list inside a string, the address only in primary_mail
		second := "+44 7700 " + g.Digits()[4:]
		p.primaryMail = email
		p.fields = append(names, field{"Email", ""}, field{"Mobile Phone", fmt.Sprintf(`["%s","%s"]`, mobile, second)})
		p.WantEmails, p.WantMobiles = []string{email}, []string{mobile, second}
	case 5: // not strings: a number, a null; names only in the asset name
		digits := g.Digits()
		number, _ := strconv.ParseInt("1"+digits, 10, 64)
		p.primaryMail = email
		p.fields = []field{{"Email", nil}, {"Mobile", number}, {"Important", true}}
		p.WantEmails, p.WantMobiles = []string{email}, []string{"1" + digits}
	case 6: // plain multi-value text, "Last, First" asset name
		work, second := g.Digits(), "other"+id+"@x.example"
		p.Name = last + ", " + first
		p.fields = []field{{"Emails", email + ", " + second}, {"Phones", fmt.Sprintf("Work: %s\nCell: %s", work, mobile)}}
		p.WantEmails, p.WantMobiles = []string{email, second}, []string{mobile}
	}
	return p
}

// authenticated checks x-api-key: missing → 401, wrong → 403.
func (s *Server) authenticated(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch key := r.Header.Get("x-api-key"); {
		case key == "":
			writeError(w, http.StatusUnauthorized, "No API key given")
		case key != s.opts.APIKey:
			writeError(w, http.StatusForbidden, "Invalid API key")
		default:
			next.ServeHTTP(w, r)
		}
	})
}

func (s *Server) listCompanies(w http.ResponseWriter, r *http.Request) {
	archived := r.URL.Query().Get("archived") == "true"
	var records []map[string]any
	for _, c := range s.companies {
		if c.Archived != archived {
			continue
		}
		rec := map[string]any{
			"id": mustAtoi(c.ID), "slug": "company-" + c.ID, "name": c.Name, "nickname": "", "id_number": "",
			"company_type": c.CompanyType, "parent_company_id": nil, "archived": c.Archived, "integrations": []any{},
			"created_at": "2023-06-01T10:00:00.000Z", "updated_at": "2024-02-01T10:00:00.000Z",
			"url": "/c/company-" + c.ID, "full_url": "https://fake.huducloud.com/c/company-" + c.ID,
		}
		switch s.opts.Records[c.ID] {
		case WrongType:
			rec["name"] = 12345
		case StringIDs:
			rec["id"] = c.ID
		case MissingID:
			delete(rec, "id")
		}
		records = append(records, rec)
	}
	s.writePage(w, r, "companies", records)
}

func (s *Server) listLayouts(w http.ResponseWriter, r *http.Request) {
	layouts := []map[string]any{
		{"id": PeopleLayoutID, "name": s.opts.PeopleLayout, "fields": layoutFields("First Name", "Last Name", "Title", "Email", "Emails", "Mobile", "Phones")},
		{"id": archiveLayoutID, "name": s.opts.PeopleLayout + " Archive", "fields": layoutFields("Name")},
		{"id": computersLayoutID, "name": "Computers", "fields": layoutFields("Email", "Mobile")},
	}
	name := strings.ToLower(r.URL.Query().Get("name"))
	var out []map[string]any
	for _, l := range layouts {
		if strings.Contains(strings.ToLower(l["name"].(string)), name) {
			out = append(out, l)
		}
	}
	body, _ := json.Marshal(map[string]any{"asset_layouts": orEmpty(out)})
	restfake.WriteJSON(w, http.StatusOK, "application/json", body)
}

func layoutFields(labels ...string) []map[string]any {
	var out []map[string]any
	for i, l := range labels {
		out = append(out, map[string]any{"id": 100 + i, "label": l, "field_type": "Text", "position": i + 1})
	}
	return out
}

func (s *Server) listAssets(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	archived := q.Get("archived") == "true"
	var from, to time.Time
	if v := q.Get("updated_at"); v != "" {
		start, end, _ := strings.Cut(v, ",")
		var err1, err2 error
		if start != "" {
			from, err1 = time.Parse(time.RFC3339, start)
		}
		if end != "" {
			to, err2 = time.Parse(time.RFC3339, end)
		}
		if err1 != nil || err2 != nil {
			writeError(w, http.StatusUnprocessableEntity, "updated_at must be an ISO 8601 range start,end")
			return
		}
	}
	var pool []Person
	layout := q.Get("asset_layout_id")
	if layout == "" || layout == strconv.Itoa(PeopleLayoutID) {
		pool = append(pool, s.people...)
	}
	if layout == "" || layout == strconv.Itoa(computersLayoutID) {
		pool = append(pool, s.computers...)
	}
	slices.SortFunc(pool, func(a, b Person) int { return mustAtoi(a.ID) - mustAtoi(b.ID) })
	var records []map[string]any
	for _, p := range pool {
		if v := q.Get("company_id"); v != "" && v != p.CompanyID || p.Archived != archived ||
			!from.IsZero() && p.UpdatedAt.Before(from) || !to.IsZero() && p.UpdatedAt.After(to) {
			continue
		}
		records = append(records, s.assetRecord(p))
	}
	s.writePage(w, r, "assets", records)
}

func (s *Server) assetRecord(p Person) map[string]any {
	layoutID := PeopleLayoutID
	if slices.ContainsFunc(s.computers, func(c Person) bool { return c.ID == p.ID }) {
		layoutID = computersLayoutID
	}
	fields := make([]map[string]any, len(p.fields))
	for i, f := range p.fields {
		fields[i] = map[string]any{"id": 5000 + i, "label": f.Label, "value": f.Value, "position": i + 1}
	}
	var companyName string
	for _, c := range s.companies {
		if c.ID == p.CompanyID {
			companyName = c.Name
		}
	}
	rec := map[string]any{
		"id": mustAtoi(p.ID), "company_id": mustAtoi(p.CompanyID), "company_name": companyName, "asset_layout_id": layoutID,
		"name": p.Name, "primary_mail": p.primaryMail, "primary_serial": nil, "archived": p.Archived,
		"created_at": "2023-06-01T10:00:00.000Z", "updated_at": p.UpdatedAt.Format("2006-01-02T15:04:05.000Z"),
		"url": "/a/" + p.ID, "fields": fields,
	}
	if p.primaryMail == "" {
		rec["primary_mail"] = nil
	}
	switch s.opts.Records[p.ID] {
	case WrongType:
		rec["fields"] = "Email: broken"
	case StringIDs:
		rec["id"], rec["company_id"] = p.ID, p.CompanyID
	case MissingID:
		delete(rec, "id")
	}
	return rec
}

// writePage answers with one page of records under key. There is no total
// and no next link: a short page is the last.
func (s *Server) writePage(w http.ResponseWriter, r *http.Request, key string, records []map[string]any) {
	q := r.URL.Query()
	size, number := huduDefaultPageSize, 1
	if v := q.Get("page_size"); v != "" && !s.opts.IgnorePageSize {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			writeError(w, http.StatusUnprocessableEntity, "page_size must be a positive number")
			return
		}
		size = n
	}
	if v := q.Get("page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			writeError(w, http.StatusUnprocessableEntity, "page must be a positive number")
			return
		}
		number = n
	}
	start, end := restfake.PageBounds(number, size, len(records))
	page := slices.Clone(records[start:end])
	if prevStart, prevEnd := restfake.PageBounds(number-1, size, len(records)); prevEnd > prevStart {
		for _, rec := range slices.Backward(records[prevStart:prevEnd]) {
			if id, ok := rec["id"].(int); ok && s.opts.Records[strconv.Itoa(id)] == Duplicate {
				page = append([]map[string]any{rec}, page...)
			}
		}
	}
	body, _ := json.Marshal(map[string]any{key: orEmpty(page)})
	restfake.WriteJSON(w, http.StatusOK, "application/json; charset=utf-8", body)
}

func orEmpty(records []map[string]any) []map[string]any {
	if records == nil {
		return []map[string]any{}
	}
	return records
}

// writeError writes Hudu's error envelope.
func writeError(w http.ResponseWriter, status int, message string) {
	body, _ := json.Marshal(map[string]any{"error": message})
	restfake.WriteJSON(w, status, "application/json; charset=utf-8", body)
}

// stripEnvelope replaces {"companies":[…]} by the bare list.
func stripEnvelope(body []byte) []byte {
	var obj map[string]json.RawMessage
	if json.Unmarshal(body, &obj) != nil {
		return body
	}
	for _, v := range obj {
		return v
	}
	return body
}

func mustAtoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}
