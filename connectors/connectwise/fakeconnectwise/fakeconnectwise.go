// Package fakeconnectwise is a fake ConnectWise Manage REST API for tests: an
// httptest server that speaks the documented wire format under
// /v4_6_release/apis/3.0 (bare JSON arrays of camelCase records, Basic
// authentication with companyId+publicKey:privateKey, the mandatory clientId
// header, conditions and childConditions, navigable paging with Link
// headers, forward-only paging with pageId, {"code","message"} error
// envelopes, 429 with Retry-After) over deterministic data, and injects
// faults on request.
//
// Served: GET /company/companies and GET /company/contacts.
package fakeconnectwise

import (
	"cmp"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"selfserve/connectors/internal/restclient/restfake"
)

// Default credentials the server accepts when Options leaves them empty.
const (
	DefaultCompanyID  = "contoso"
	DefaultPublicKey  = "pubKEY123"
	DefaultPrivateKey = "privKEY456"
	DefaultClientID   = "6f1c2e8a-0000-4b7e-9d3c-1a2b3c4d5e6f"
)

// RecordFault is a defect served in one record.
type RecordFault int

// The record faults.
const (
	// WrongType sends a contact's firstName or a company's name as a number.
	WrongType RecordFault = iota + 1
	// StringIDs sends the id (and a contact's company id) as JSON strings:
	// the reverse of the documented types.
	StringIDs
	// MissingID sends the record without an id.
	MissingID
	// Duplicate serves the record again at the start of the forward-only
	// page whose pageId is its id, as a server reading pageId inclusively
	// would.
	Duplicate
)

// Options configures the server. The zero value serves 4 companies of 5
// contacts each with the default credentials.
type Options struct {
	// CompanyID, PublicKey, PrivateKey and ClientID are the credentials the
	// server accepts (default the Default… constants).
	CompanyID, PublicKey, PrivateKey, ClientID string
	// CodeBase is the release path segment (default "v4_6_release").
	CodeBase string
	// Seed makes the data; the same seed gives the same data.
	Seed uint64
	// Companies is how many companies there are (default 4; a negative
	// number serves none). Every seventh is deleted.
	Companies int
	// ContactsPerCompany is how many contacts each has (default 5; every
	// fifth is inactive; a negative number serves none).
	ContactsPerCompany int
	// NotFoundForBadAuth answers bad credentials with 404, as ConnectWise
	// cloud often does, instead of 401.
	NotFoundForBadAuth bool
	// NoLinkOnLastPage omits the forward-only next Link when no record
	// follows the page.
	NoLinkOnLastPage bool
	// Records injects defects into records, keyed by record id.
	Records map[string]RecordFault
	// Faults injects request-level failures.
	Faults restfake.Faults
}

// Named is an {id, name} reference.
type Named struct {
	ID   int
	Name string
}

// Company is a company as the server holds it.
type Company struct {
	ID          int
	Identifier  string
	Name        string
	Status      Named
	Types       []Named
	DeletedFlag bool
	LastUpdated time.Time
}

// CommunicationItem is one of a contact's emails or phones.
type CommunicationItem struct {
	ID                int
	Type              Named
	Value             string
	DefaultFlag       bool
	CommunicationType string
}

// Contact is a contact as the server holds it, with what a client reading
// the documented semantics should find in it.
type Contact struct {
	ID                 int
	CompanyID          int
	FirstName          string
	LastName           string
	InactiveFlag       bool
	CommunicationItems []CommunicationItem
	LastUpdated        time.Time

	// WantEmails are the Email items, default first.
	WantEmails []string
	// WantMobiles are the Phone items of type Mobile or Cell (any case),
	// default first.
	WantMobiles []string
}

// Server is a running fake. Close it when done.
type Server struct {
	*restfake.Server
	opts      Options
	companies []Company
	contacts  []Contact // by id
}

var (
	statuses = []Named{{1, "Active"}, {2, "Inactive"}, {3, "Not Approved"}}
	types    = [][]Named{{{1, "Client"}}, {{2, "Prospect"}}, {{1, "Client"}, {4, "Partner"}}, {{3, "Vendor"}}}
)

// New starts a server.
func New(opts Options) *Server {
	opts.CompanyID = cmp.Or(opts.CompanyID, DefaultCompanyID)
	opts.PublicKey = cmp.Or(opts.PublicKey, DefaultPublicKey)
	opts.PrivateKey = cmp.Or(opts.PrivateKey, DefaultPrivateKey)
	opts.ClientID = cmp.Or(opts.ClientID, DefaultClientID)
	opts.CodeBase = cmp.Or(opts.CodeBase, "v4_6_release")
	if opts.Companies == 0 {
		opts.Companies = 4
	}
	if opts.ContactsPerCompany == 0 {
		opts.ContactsPerCompany = 5
	}
	opts.Companies = max(opts.Companies, 0)
	opts.ContactsPerCompany = max(opts.ContactsPerCompany, 0)
	s := &Server{opts: opts}
	s.generate()
	root := "/" + opts.CodeBase + "/apis/3.0"
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+root+"/company/companies", s.listCompanies)
	mux.HandleFunc("GET "+root+"/company/contacts", s.listContacts)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "NotFound", "The requested resource was not found")
	})
	s.Server = restfake.NewServer(opts.Faults, restfake.Vendor{
		Error: func(w http.ResponseWriter, status int, message string) {
			writeError(w, status, "InjectedFailure", message)
		},
		Throttle: func(w http.ResponseWriter) {
			retry := cmp.Or(w.Header().Get("Retry-After"), "30")
			out, _ := json.Marshal(map[string]string{"error": "ConnectWiseAPI", "message": "Too many requests. Please try again in " + retry + " seconds."})
			restfake.WriteJSON(w, http.StatusTooManyRequests, "application/json; charset=utf-8", out)
		},
		StripEnvelope: func(body []byte) []byte {
			return append(append([]byte(`{"value":`), body...), '}')
		},
	}, s.authenticated(mux))
	return s
}

// APIRoot returns the URL of the API root, for base_url.
func (s *Server) APIRoot() string { return s.URL + "/" + s.opts.CodeBase + "/apis/3.0" }

// Companies returns the companies that are not deleted, by id.
func (s *Server) Companies() []Company {
	return slices.DeleteFunc(slices.Clone(s.companies), func(c Company) bool { return c.DeletedFlag })
}

// Contacts returns the active contacts of a company, by id.
func (s *Server) Contacts(companyID int) []Contact {
	var out []Contact
	for _, c := range s.contacts {
		if c.CompanyID == companyID && !c.InactiveFlag {
			out = append(out, c)
		}
	}
	return out
}

func (s *Server) generate() {
	g := restfake.NewRand(s.opts.Seed)
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range s.opts.Companies {
		name := g.Company(i + 1)
		s.companies = append(s.companies, Company{
			ID:          250 + i,
			Identifier:  strings.ReplaceAll(strings.Fields(name)[0]+strings.Fields(name)[1], " ", "") + strconv.Itoa(i),
			Name:        name,
			Status:      statuses[i%len(statuses)],
			Types:       types[i%len(types)],
			DeletedFlag: i%7 == 6,
			LastUpdated: g.Time(base),
		})
	}
	// Contact ids interleave companies, so one company's ids are not
	// contiguous and pageId paging has gaps to cross.
	id, itemID := 40, 0
	for j := range s.opts.ContactsPerCompany {
		for _, co := range s.companies {
			id++
			first, last := g.Person()
			email := restfake.Email(first, last, co.Name, j)
			c := Contact{ID: id, CompanyID: co.ID, FirstName: first, LastName: last, LastUpdated: g.Time(base)}
			item := func(typeID int, typeName, value string, def bool, class string) CommunicationItem {
				itemID++
				return CommunicationItem{ID: itemID, Type: Named{typeID, typeName}, Value: value, DefaultFlag: def, CommunicationType: class}
			}
			switch j % 5 {
			case 0:
				mobile := g.Digits()
				c.CommunicationItems = []CommunicationItem{item(1, "Email", email, true, "Email"), item(2, "Direct", g.Digits(), true, "Phone"), item(4, "Mobile", mobile, false, "Phone")}
				c.WantEmails, c.WantMobiles = []string{email}, []string{mobile}
			case 1:
				other, mobile := fmt.Sprintf("c%d@home.example", id), g.Digits()
				c.CommunicationItems = []CommunicationItem{item(5, "Home Email", other, false, "Email"), item(1, "Email", email, true, "Email"), item(6, "cell", mobile, false, "Phone")}
				c.WantEmails, c.WantMobiles = []string{email, other}, []string{mobile}
			case 2:
				c.CommunicationItems = []CommunicationItem{item(1, "Email", email, true, "Email"), item(2, "Direct", g.Digits(), true, "Phone"), item(3, "Fax", g.Digits(), false, "Fax")}
				c.WantEmails = []string{email}
			case 3:
				mobile, cell := g.Digits(), g.Digits()
				c.CommunicationItems = []CommunicationItem{item(1, "Email", email, true, "Email"), item(4, "Mobile", mobile, false, "Phone"), item(6, "Cell", cell, true, "Phone"), item(7, "Mobile", "", false, "Phone")}
				c.WantEmails, c.WantMobiles = []string{email}, []string{cell, mobile}
			case 4:
				c.InactiveFlag = true
				c.CommunicationItems = []CommunicationItem{item(1, "Email", email, true, "Email")}
				c.WantEmails = []string{email}
			}
			s.contacts = append(s.contacts, c)
		}
	}
}

// authenticated checks the clientId header and the Basic credentials.
func (s *Server) authenticated(next http.Handler) http.Handler {
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte(s.opts.CompanyID+"+"+s.opts.PublicKey+":"+s.opts.PrivateKey))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Header.Get("clientId") == "":
			writeError(w, http.StatusBadRequest, "InvalidRequest", "A clientId header is required on every request: register one at developer.connectwise.com")
		case r.Header.Get("clientId") != s.opts.ClientID:
			writeError(w, http.StatusUnauthorized, "Unauthorized", "The clientId is not valid")
		case r.Header.Get("Authorization") != want:
			if s.opts.NotFoundForBadAuth {
				writeError(w, http.StatusNotFound, "NotFound", "The requested resource was not found")
				return
			}
			writeError(w, http.StatusUnauthorized, "Unauthorized", "Invalid credentials")
		default:
			next.ServeHTTP(w, r)
		}
	})
}

func (s *Server) listCompanies(w http.ResponseWriter, r *http.Request) {
	ids := make([]int, 0, len(s.companies))
	records := map[int]map[string]any{}
	get := map[int]getter{}
	for _, c := range s.companies {
		ids = append(ids, c.ID)
		records[c.ID] = s.companyRecord(c)
		get[c.ID] = func(field string) (any, bool) {
			switch field {
			case "id":
				return float64(c.ID), true
			case "identifier":
				return c.Identifier, true
			case "name":
				return c.Name, true
			case "deletedFlag":
				return c.DeletedFlag, true
			case "status/id":
				return float64(c.Status.ID), true
			case "status/name":
				return c.Status.Name, true
			case "lastUpdated", "_info/lastUpdated":
				return c.LastUpdated, true
			case "types/id", "types/name":
				var out []any
				for _, t := range c.Types {
					if field == "types/id" {
						out = append(out, float64(t.ID))
					} else {
						out = append(out, t.Name)
					}
				}
				return out, true
			}
			return nil, false
		}
	}
	s.serveList(w, r, ids, records, get)
}

func (s *Server) listContacts(w http.ResponseWriter, r *http.Request) {
	ids := make([]int, 0, len(s.contacts))
	records := map[int]map[string]any{}
	get := map[int]getter{}
	for _, c := range s.contacts {
		ids = append(ids, c.ID)
		records[c.ID] = s.contactRecord(c)
		get[c.ID] = func(field string) (any, bool) {
			switch field {
			case "id":
				return float64(c.ID), true
			case "company/id":
				return float64(c.CompanyID), true
			case "firstName":
				return c.FirstName, true
			case "lastName":
				return c.LastName, true
			case "inactiveFlag":
				return c.InactiveFlag, true
			case "lastUpdated", "_info/lastUpdated":
				return c.LastUpdated, true
			case "communicationItems/value", "communicationItems/communicationType":
				var out []any
				for _, it := range c.CommunicationItems {
					if field == "communicationItems/value" {
						out = append(out, it.Value)
					} else {
						out = append(out, it.CommunicationType)
					}
				}
				return out, true
			}
			return nil, false
		}
	}
	s.serveList(w, r, ids, records, get)
}

// serveList filters by conditions and childConditions and answers with one
// page: forward-only when the pagination-type header asks, navigable
// otherwise.
func (s *Server) serveList(w http.ResponseWriter, r *http.Request, ids []int, records map[int]map[string]any, get map[int]getter) {
	q := r.URL.Query()
	var conds []condition
	for _, param := range []string{"conditions", "childConditions"} {
		if v := q.Get(param); v != "" {
			c, err := parseConditions(v)
			if err != nil {
				writeError(w, http.StatusBadRequest, "InvalidObject", param+": "+err.Error())
				return
			}
			conds = append(conds, c...)
		}
	}
	var kept []int
	for _, id := range ids {
		ok, err := match(conds, get[id])
		if err != nil {
			writeError(w, http.StatusBadRequest, "InvalidObject", err.Error())
			return
		}
		if ok {
			kept = append(kept, id)
		}
	}
	slices.Sort(kept)

	size := 25
	if v := q.Get("pageSize"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			writeError(w, http.StatusBadRequest, "InvalidObject", "pageSize must be a positive number")
			return
		}
		size = min(n, 1000) // larger values are capped
	}
	forwardOnly := strings.EqualFold(r.Header.Get("pagination-type"), "forward-only")
	var page []int
	links := map[string]url.Values{}
	link := func(set map[string]string) url.Values {
		v := url.Values{}
		for k, vs := range q {
			if k != "page" && k != "pageId" {
				v[k] = vs
			}
		}
		v.Set("pageSize", strconv.Itoa(size))
		for k, val := range set {
			v.Set(k, val)
		}
		return v
	}
	if forwardOnly {
		if q.Get("orderBy") != "" {
			writeError(w, http.StatusBadRequest, "InvalidObject", "orderBy is not supported with forward-only pagination")
			return
		}
		after := 0
		if v := q.Get("pageId"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				writeError(w, http.StatusBadRequest, "InvalidObject", "pageId must be a number")
				return
			}
			after = n
		}
		start, _ := slices.BinarySearch(kept, after+1)
		page = kept[start:min(start+size, len(kept))]
		if s.opts.Records[strconv.Itoa(after)] == Duplicate && slices.Contains(kept, after) {
			page = append([]int{after}, page...)
		}
		last := after
		if len(page) > 0 {
			last = page[len(page)-1]
		}
		more := start+size < len(kept)
		if more || !s.opts.NoLinkOnLastPage {
			links["next"] = link(map[string]string{"pageId": strconv.Itoa(last)})
		}
	} else {
		number := 1
		if v := q.Get("page"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				writeError(w, http.StatusBadRequest, "InvalidObject", "page must be a positive number")
				return
			}
			number = n
		}
		start, end := restfake.PageBounds(number, size, len(kept))
		page = kept[start:end]
		lastPage := max((len(kept)+size-1)/size, 1)
		links["first"] = link(map[string]string{"page": "1"})
		links["last"] = link(map[string]string{"page": strconv.Itoa(lastPage)})
		if number < lastPage {
			links["next"] = link(map[string]string{"page": strconv.Itoa(number + 1)})
		}
		if number > 1 {
			links["prev"] = link(map[string]string{"page": strconv.Itoa(number - 1)})
		}
	}
	out := make([]map[string]any, 0, len(page))
	for _, id := range page {
		out = append(out, records[id])
	}
	var header []string
	for _, rel := range []string{"prev", "next", "first", "last"} {
		if v, ok := links[rel]; ok {
			u := url.URL{Scheme: "http", Host: r.Host, Path: r.URL.Path, RawQuery: v.Encode()}
			header = append(header, fmt.Sprintf(`<%s>; rel="%s"`, u.String(), rel))
		}
	}
	if len(header) > 0 {
		w.Header().Set("Link", strings.Join(header, ", "))
	}
	body, _ := json.Marshal(out)
	restfake.WriteJSON(w, http.StatusOK, "application/json; charset=utf-8", body)
}

func (s *Server) companyRecord(c Company) map[string]any {
	typeList := make([]map[string]any, len(c.Types))
	for i, t := range c.Types {
		typeList[i] = map[string]any{"id": t.ID, "name": t.Name, "_info": map[string]any{"type_href": "https://fake/company/companies/types/" + strconv.Itoa(t.ID)}}
	}
	rec := map[string]any{
		"id": c.ID, "identifier": c.Identifier, "name": c.Name,
		"status":       map[string]any{"id": c.Status.ID, "name": c.Status.Name},
		"types":        typeList,
		"phoneNumber":  "5555550100",
		"website":      "www." + strings.ToLower(c.Identifier) + ".example",
		"deletedFlag":  c.DeletedFlag,
		"dateAcquired": "2020-01-01T00:00:00Z",
		"_info":        map[string]any{"lastUpdated": c.LastUpdated.Format(time.RFC3339), "updatedBy": "admin1"},
	}
	switch s.opts.Records[strconv.Itoa(c.ID)] {
	case WrongType:
		rec["name"] = 4711
	case StringIDs:
		rec["id"] = strconv.Itoa(c.ID)
	case MissingID:
		delete(rec, "id")
	}
	return rec
}

func (s *Server) contactRecord(c Contact) map[string]any {
	var co Company
	for _, x := range s.companies {
		if x.ID == c.CompanyID {
			co = x
		}
	}
	items := make([]map[string]any, len(c.CommunicationItems))
	for i, it := range c.CommunicationItems {
		items[i] = map[string]any{
			"id": it.ID, "type": map[string]any{"id": it.Type.ID, "name": it.Type.Name}, "value": it.Value,
			"defaultFlag": it.DefaultFlag, "communicationType": it.CommunicationType,
		}
		if _, domain, ok := strings.Cut(it.Value, "@"); ok {
			items[i]["domain"] = "@" + domain
		}
	}
	rec := map[string]any{
		"id": c.ID, "firstName": c.FirstName, "lastName": c.LastName,
		"company":            map[string]any{"id": co.ID, "identifier": co.Identifier, "name": co.Name},
		"inactiveFlag":       c.InactiveFlag,
		"title":              "Office Manager",
		"defaultPhoneType":   "Direct",
		"types":              []any{},
		"communicationItems": items,
		"customFields":       []any{},
		"_info":              map[string]any{"lastUpdated": c.LastUpdated.Format(time.RFC3339), "updatedBy": "admin1"},
	}
	switch s.opts.Records[strconv.Itoa(c.ID)] {
	case WrongType:
		rec["firstName"] = 4711
	case StringIDs:
		rec["id"] = strconv.Itoa(c.ID)
		rec["company"].(map[string]any)["id"] = strconv.Itoa(co.ID)
	case MissingID:
		delete(rec, "id")
	}
	return rec
}

// writeError writes ConnectWise's error envelope.
func writeError(w http.ResponseWriter, status int, code, message string) {
	out, _ := json.Marshal(map[string]any{"code": code, "message": message, "errors": nil})
	restfake.WriteJSON(w, status, "application/json; charset=utf-8", out)
}
