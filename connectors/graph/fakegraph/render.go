package fakegraph

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"
)

// userProperty renders one property of a user.
type userProperty struct {
	name  string
	write func(b []byte, u *User) []byte
}

func str(get func(u *User) string) func([]byte, *User) []byte {
	return func(b []byte, u *User) []byte { return appendNullableString(b, get(u)) }
}

func null(b []byte, _ *User) []byte { return append(b, "null"...) }

// userProperties are the user properties the fake knows, in Graph's order.
var userProperties = []userProperty{
	{"id", str(func(u *User) string { return u.ID })},
	{"businessPhones", func(b []byte, u *User) []byte {
		b = append(b, '[')
		for k, p := range u.BusinessPhones {
			if k > 0 {
				b = append(b, ',')
			}
			b = appendString(b, p)
		}
		return append(b, ']')
	}},
	{"displayName", str(func(u *User) string { return u.DisplayName })},
	{"givenName", str(func(u *User) string { return u.GivenName })},
	{"jobTitle", null},
	{"mail", str(func(u *User) string { return u.Mail })},
	{"mobilePhone", str(func(u *User) string { return u.MobilePhone })},
	{"officeLocation", null},
	{"preferredLanguage", null},
	{"surname", str(func(u *User) string { return u.Surname })},
	{"userPrincipalName", str(func(u *User) string { return u.UserPrincipalName })},
	{"accountEnabled", func(b []byte, u *User) []byte { return strconv.AppendBool(b, u.AccountEnabled) }},
	{"lastPasswordChangeDateTime", str(func(u *User) string { return u.LastPasswordChangeDateTime })},
	{"passwordPolicies", str(func(u *User) string { return u.PasswordPolicies })},
	{"onPremisesSyncEnabled", func(b []byte, u *User) []byte {
		if !u.OnPremisesSyncEnabled {
			return append(b, "null"...) // Graph: null for cloud-only users
		}
		return append(b, "true"...)
	}},
	{"onPremisesImmutableId", str(func(u *User) string { return u.OnPremisesImmutableID })},
	{"onPremisesSamAccountName", str(func(u *User) string { return u.OnPremisesSamAccountName })},
	{"createdDateTime", null},
	{"department", null},
	{"employeeId", null},
	{"userType", func(b []byte, _ *User) []byte { return append(b, `"Member"`...) }},
}

// defaultUserSelect is what Graph returns for a user without $select.
var defaultUserSelect = []string{"businessPhones", "displayName", "givenName", "jobTitle", "mail", "mobilePhone", "officeLocation", "preferredLanguage", "surname", "userPrincipalName", "id"}

// selection is the resolved $select of a request: indexes into
// userProperties, id first.
type selection []int

func parseSelect(raw string) (selection, error) {
	names := defaultUserSelect
	if strings.TrimSpace(raw) != "" {
		names = strings.Split(raw, ",")
	}
	sel := selection{0} // id is always returned
	for _, n := range names {
		n = strings.TrimSpace(n)
		found := false
		for k, p := range userProperties {
			if strings.EqualFold(p.name, n) {
				found = true
				if k != 0 && !containsInt(sel, k) {
					sel = append(sel, k)
				}
				break
			}
		}
		if !found {
			return nil, &errBadQuery{"Request_BadRequest", fmt.Sprintf("Could not find a property named '%s' on type 'microsoft.graph.user'.", n)}
		}
	}
	return sel, nil
}

func containsInt(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func (sel selection) names() string {
	n := make([]string, len(sel))
	for k, i := range sel {
		n[k] = userProperties[i].name
	}
	return strings.Join(n, ",")
}

func (sel selection) appendUser(b []byte, u *User) []byte {
	b = append(b, '{')
	for k, i := range sel {
		if k > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, userProperties[i].name...)
		b = append(b, `":`...)
		b = userProperties[i].write(b, u)
	}
	return append(b, '}')
}

// pageToken is the state carried by $skiptoken and $deltatoken values. The
// tokens are opaque to clients, as Graph's are.
type pageToken struct {
	Kind  string `json:"k"`           // "list", "init" (first delta round), "chg" (change round), "delta"
	Epoch int    `json:"e"`           // delta tokens of another epoch are stale
	Sel   string `json:"s"`           // the $select of the first request
	Top   int    `json:"t,omitempty"` // list page size
	Off   int    `json:"o,omitempty"` // next index (list, init)
	From  uint64 `json:"f,omitempty"` // changes after this seq (chg, delta)
	Upto  uint64 `json:"u,omitempty"` // round snapshot (init, chg)
	After uint64 `json:"a,omitempty"` // last seq returned in this round (chg)
}

func (t pageToken) encode() string {
	b, _ := json.Marshal(t) // a plain struct always marshals
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeToken(s string) (pageToken, bool) {
	var t pageToken
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || json.Unmarshal(b, &t) != nil || t.Kind == "" {
		return pageToken{}, false
	}
	return t, true
}

// query returns the request's query options with lower-cased names
// ("$select", "$top", ...), as Graph treats them case-insensitively.
func query(r *http.Request) map[string]string {
	q := map[string]string{}
	for k, v := range r.URL.Query() {
		if len(v) > 0 {
			q[strings.ToLower(k)] = v[0]
		}
	}
	return q
}

func (s *Server) link(path string, param string, t pageToken) string {
	return s.GraphURL() + path + "?" + param + "=" + url.QueryEscape(t.encode())
}

// listUsers serves GET /users with $select, $top and $skiptoken paging.
func (s *Server) listUsers(w http.ResponseWriter, r *http.Request) {
	q := query(r)
	var tok pageToken
	if raw, ok := q["$skiptoken"]; ok {
		t, valid := decodeToken(raw)
		if !valid || t.Kind != "list" {
			graphError(w, http.StatusBadRequest, "Request_BadRequest", "Invalid paging token.")
			return
		}
		tok = t
	} else {
		tok = pageToken{Kind: "list", Sel: q["$select"], Top: 100}
		if raw, ok := q["$top"]; ok {
			top, err := strconv.Atoi(raw)
			if err != nil || top < 1 || top > 999 {
				graphError(w, http.StatusBadRequest, "Request_UnsupportedQuery", fmt.Sprintf("Invalid page size specified: '%s'. Must be between 1 and 999 inclusive.", raw))
				return
			}
			tok.Top = top
		}
	}
	sel, err := parseSelect(tok.Sel)
	if badQuery(err, w) {
		return
	}

	b := make([]byte, 0, 64*1024)
	b = append(b, `{"@odata.context":`...)
	b = appendString(b, s.GraphURL()+"/$metadata#users("+sel.names()+")")
	s.mu.Lock()
	// Collect the page first: the next link precedes the value, as in Graph.
	idx := make([]int, 0, tok.Top)
	i := tok.Off
	for ; i < s.dir.size() && len(idx) < tok.Top; i++ {
		if _, gone := s.dir.deleted[i]; !gone {
			idx = append(idx, i)
		}
	}
	for i < s.dir.size() {
		if _, gone := s.dir.deleted[i]; !gone {
			break
		}
		i++
	}
	if i < s.dir.size() {
		next := tok
		next.Off = i
		b = append(b, `,"@odata.nextLink":`...)
		b = appendString(b, s.link("/users", "$skiptoken", next))
	}
	b = append(b, `,"value":[`...)
	for k, ix := range idx {
		if k > 0 {
			b = append(b, ',')
		}
		u := s.dir.at(ix)
		b = sel.appendUser(b, &u)
	}
	s.mu.Unlock()
	b = append(b, "]}"...)
	writeBody(w, http.StatusOK, b)
}

// isDeltaFunction reports whether a segment after /users names the delta
// function (Graph accepts its short and qualified names).
func isDeltaFunction(fn string) bool {
	switch fn {
	case "delta", "delta()", "microsoft.graph.delta", "microsoft.graph.delta()":
		return true
	}
	return false
}

// delta serves GET /users/delta: the initial round (no token) lists every
// live user; $deltatoken=latest returns only a deltaLink; a deltaLink lists
// the users changed since it was issued, deleted ones as @removed entries.
func (s *Server) delta(w http.ResponseWriter, r *http.Request) {
	fn := r.PathValue("function")
	// Links echo the form of the function's name the client used.
	path := "/users/" + fn
	q := query(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	var tok pageToken
	switch {
	case q["$skiptoken"] != "" || q["$deltatoken"] != "" && q["$deltatoken"] != "latest":
		raw := q["$skiptoken"]
		if raw == "" {
			raw = q["$deltatoken"]
		}
		t, valid := decodeToken(raw)
		if !valid || t.Epoch != s.epoch || t.Kind == "list" {
			w.Header().Set("Location", s.GraphURL()+path)
			graphError(w, http.StatusGone, "syncStateNotFound", "The sync state generation is not found; the delta token is expired or was not issued by this service. Run a full synchronization.")
			return
		}
		tok = t
		if tok.Kind == "delta" { // a new change round from a deltaLink
			tok = pageToken{Kind: "chg", Epoch: s.epoch, Sel: t.Sel, From: t.From, Upto: s.dir.seq, After: t.From}
		}
	case q["$deltatoken"] == "latest":
		if _, err := parseSelect(q["$select"]); badQuery(err, w) {
			return
		}
		b := []byte(`{"@odata.context":`)
		b = appendString(b, s.GraphURL()+"/$metadata#users")
		b = append(b, `,"value":[],"@odata.deltaLink":`...)
		b = appendString(b, s.link(path, "$deltatoken", pageToken{Kind: "delta", Epoch: s.epoch, Sel: q["$select"], From: s.dir.seq}))
		b = append(b, '}')
		writeBody(w, http.StatusOK, b)
		return
	default:
		tok = pageToken{Kind: "init", Epoch: s.epoch, Sel: q["$select"], Upto: s.dir.seq}
	}
	sel, err := parseSelect(tok.Sel)
	if badQuery(err, w) {
		return
	}

	b := make([]byte, 0, 64*1024)
	b = append(b, `{"@odata.context":`...)
	b = appendString(b, s.GraphURL()+"/$metadata#users("+sel.names()+")")
	b = append(b, `,"value":[`...)
	n := 0
	more := false
	next := tok
	switch tok.Kind {
	case "init":
		i := tok.Off
		for ; i < s.dir.size(); i++ {
			if _, gone := s.dir.deleted[i]; gone {
				continue
			}
			if n == s.opts.DeltaPageSize {
				more = true
				break
			}
			if n > 0 {
				b = append(b, ',')
			}
			u := s.dir.at(i)
			b = sel.appendUser(b, &u)
			n++
		}
		next.Off = i
	case "chg":
		idx, last, hasMore := s.dir.changesAfter(tok.After, tok.Upto, s.opts.DeltaPageSize)
		for k, i := range idx {
			if k > 0 {
				b = append(b, ',')
			}
			u := s.dir.at(i)
			if rm, gone := s.dir.deleted[i]; gone {
				reason := "changed"
				if rm.permanent {
					reason = "deleted"
				}
				b = append(b, `{"id":`...)
				b = appendString(b, u.ID)
				b = append(b, `,"@removed":{"reason":"`...)
				b = append(b, reason...)
				b = append(b, `"}}`...)
				continue
			}
			b = sel.appendUser(b, &u)
		}
		next.After = last
		more = hasMore
	}
	b = append(b, ']')
	if more {
		b = append(b, `,"@odata.nextLink":`...)
		b = appendString(b, s.link(path, "$skiptoken", next))
	} else {
		b = append(b, `,"@odata.deltaLink":`...)
		b = appendString(b, s.link(path, "$deltatoken", pageToken{Kind: "delta", Epoch: s.epoch, Sel: tok.Sel, From: tok.Upto}))
	}
	b = append(b, '}')
	writeBody(w, http.StatusOK, b)
}

// phoneMethods serves GET /users/{id}/authentication/phoneMethods.
func (s *Server) phoneMethods(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	u, ok := s.User(id)
	if !ok {
		graphError(w, http.StatusNotFound, "Request_ResourceNotFound", fmt.Sprintf("Resource '%s' does not exist or one of its queried reference-property objects are not present.", id))
		return
	}
	type method struct {
		ID             string `json:"id"`
		PhoneNumber    string `json:"phoneNumber"`
		PhoneType      string `json:"phoneType"`
		SMSSignInState string `json:"smsSignInState"`
	}
	value := make([]method, 0, len(u.PhoneMethods))
	for _, m := range u.PhoneMethods {
		value = append(value, method{ID: phoneMethodIDs[m.PhoneType], PhoneNumber: m.PhoneNumber, PhoneType: m.PhoneType, SMSSignInState: "notAllowedByPolicy"})
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"@odata.context": s.GraphURL() + "/$metadata#users('" + id + "')/authentication/phoneMethods",
		"value":          value,
	})
}

// domains serves GET /domains (honouring $select).
func (s *Server) domains(w http.ResponseWriter, r *http.Request) {
	q := query(r)
	s.mu.Lock()
	doms := append([]Domain(nil), s.dir.domains...)
	s.mu.Unlock()
	value := make([]map[string]any, 0, len(doms))
	for _, d := range doms {
		var validity any
		if d.PasswordValidityPeriodInDays != nil {
			validity = *d.PasswordValidityPeriodInDays
		}
		value = append(value, map[string]any{
			"id":                               d.ID,
			"authenticationType":               "Managed",
			"isAdminManaged":                   true,
			"isDefault":                        d.IsDefault,
			"isInitial":                        false,
			"isRoot":                           true,
			"isVerified":                       true,
			"passwordNotificationWindowInDays": nil,
			"passwordValidityPeriodInDays":     validity,
			"supportedServices":                []string{"Email"},
		})
	}
	if raw := q["$select"]; raw != "" {
		keep := map[string]bool{"id": true}
		for _, n := range strings.Split(raw, ",") {
			n = strings.TrimSpace(n)
			if !domainProperties[n] {
				graphError(w, http.StatusBadRequest, "Request_BadRequest", fmt.Sprintf("Could not find a property named '%s' on type 'microsoft.graph.domain'.", n))
				return
			}
			keep[n] = true
		}
		for _, v := range value {
			for k := range v {
				if !keep[k] {
					delete(v, k)
				}
			}
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"@odata.context": s.GraphURL() + "/$metadata#domains",
		"value":          value,
	})
}

// domainProperties are the domain properties the fake serves.
var domainProperties = map[string]bool{
	"id": true, "authenticationType": true, "isAdminManaged": true, "isDefault": true, "isInitial": true, "isRoot": true,
	"isVerified": true, "passwordNotificationWindowInDays": true, "passwordValidityPeriodInDays": true, "supportedServices": true,
}

// organization serves GET /organization.
func (s *Server) organization(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	var verified []map[string]any
	for _, d := range s.dir.domains {
		verified = append(verified, map[string]any{"capabilities": "Email", "isDefault": d.IsDefault, "isInitial": false, "name": d.ID, "type": "Managed"})
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"@odata.context": s.GraphURL() + "/$metadata#organization",
		"value": []map[string]any{{
			"id":                    s.opts.TenantID,
			"displayName":           "Fake Tenant",
			"verifiedDomains":       verified,
			"onPremisesSyncEnabled": true,
		}},
	})
}

// appendNullableString appends s as a JSON string, or null when empty.
func appendNullableString(b []byte, s string) []byte {
	if s == "" {
		return append(b, "null"...)
	}
	return appendString(b, s)
}

// appendString appends s as a JSON string.
func appendString(b []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
			i++
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			i++
		case c < utf8.RuneSelf:
			b = append(b, c)
			i++
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				b = append(b, `\ufffd`...)
			} else {
				b = append(b, s[i:i+size]...)
			}
			i += size
		}
	}
	return append(b, '"')
}
