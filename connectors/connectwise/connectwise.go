// Package connectwise is the ConnectWise Manage (PSA) connector: companies
// become customers and their contacts enrich end users with email and
// mobile.
//
// It speaks the Manage REST API (/v4_6_release/apis/3.0 on the regional cloud
// hosts or a site's own host): Basic authentication with
// companyId+publicKey:privateKey, the mandatory clientId header, a pinned
// model version in Accept, JSON arrays paged forward-only by pageId, filters
// in the conditions query language, and 429 with a numeric Retry-After.
package connectwise

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"iter"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"selfserve/connectors"
	"selfserve/connectors/internal/restclient"
	"selfserve/internal/redact"
)

// Cloud hosts by site name. The api- prefix is required: the bare site
// hosts answer "SSL is required".
var siteHosts = map[string]string{
	"na":      "https://api-na.myconnectwise.net",
	"eu":      "https://api-eu.myconnectwise.net",
	"au":      "https://api-au.myconnectwise.net",
	"staging": "https://api-staging.connectwisedev.com",
}

// Defaults and limits.
const (
	// DefaultAPIPath is the API root on a host.
	DefaultAPIPath = "/v4_6_release/apis/3.0"
	// DefaultAPIVersion is the model version pinned in Accept.
	DefaultAPIVersion = "2025.1"
	// MaxPageSize is the largest pageSize ConnectWise serves.
	MaxPageSize = 1000
	// DefaultRequestsPerMinute is the volume above which the ConnectWise
	// developer guide says integrations will likely be throttled.
	DefaultRequestsPerMinute = 1000
	// defaultRetryAfter is the wait reported when a 429 has no usable
	// Retry-After (the guide's sample retry starts at 30 s).
	defaultRetryAfter = 30 * time.Second
)

// DefaultMobileTypes are the communication type names read as mobiles when
// the config names none.
var DefaultMobileTypes = []string{"Mobile", "Cell"}

var apiVersionPattern = regexp.MustCompile(`^\d{4}\.\d{1,2}$`)

// Config is a ConnectWise Manage connection's settings and secrets.
//
// Example (settings and secrets of a connection, as YAML):
//
//	kind: connectwise
//	settings:
//	  site: eu                 # or na, au, or your site's host
//	  company_id: contoso      # the company id you log in with
//	  client_id: 6f1c2e8a-0000-4b7e-9d3c-1a2b3c4d5e6f
//	  company_status: Active
//	  company_type: Client
//	secrets:
//	  public_key: xxxxxxxxxxxxxxxx
//	  private_key: xxxxxxxxxxxxxxxx
type Config struct {
	// Site is the cloud region ("na", "eu", "au", "staging" → the api-
	// host) or a site's own host or URL (https://cw.example.com). Required
	// unless base_url is set.
	Site string `json:"site,omitempty" connector:"endpoint" help:"ConnectWise cloud region (na, eu, au) or your own server's address, e.g. https://cw.example.com."`
	// BaseURL overrides the site (a test server, a proxy). A URL without a
	// path gets /v4_6_release/apis/3.0. Default empty: the site's.
	BaseURL string `json:"base_url,omitempty" connector:"endpoint" help:"Replaces the site's API address (a proxy, a test server). Usually empty."`
	// CompanyID is the company id technicians log in with. Required.
	CompanyID string `json:"company_id,omitempty" help:"The company id you type when you log in to ConnectWise PSA."`
	// ClientID is the integration's clientId from developer.connectwise.com,
	// sent on every request. Required.
	ClientID string `json:"client_id,omitempty" help:"Your integration's clientId, from developer.connectwise.com."`
	// APIVersion is the model version pinned in Accept. Default "2025.1".
	APIVersion string `json:"api_version,omitempty" help:"API model version requested. Default 2025.1."`
	// PublicKey and PrivateKey are the API member's keys. Required.
	PublicKey  redact.Secret `json:"public_key,omitempty" help:"Public key of the API member (System › Members › API Members › API Keys)."`
	PrivateKey redact.Secret `json:"private_key,omitempty" help:"Private key of the same API key, shown once when the key is made."`
	// CompanyStatus, if set, imports only companies with this status name.
	// Default empty: all statuses.
	CompanyStatus string `json:"company_status,omitempty" help:"Import only the companies with this status name. Empty: all statuses."`
	// CompanyType, if set, imports only companies having this type name.
	// Default empty: all types.
	CompanyType string `json:"company_type,omitempty" help:"Import only the companies of this type name. Empty: all types."`
	// MobileTypes are the communication type names (matched
	// case-insensitively) whose phone numbers are mobiles. Default
	// ["Mobile", "Cell"].
	MobileTypes []string `json:"mobile_types,omitempty" help:"Communication types whose numbers are mobiles. Default Mobile, Cell."`
	// PageSize is pageSize, 1 to 1000. Default 1000.
	PageSize int `json:"page_size,omitempty" help:"Records per request, 1 to 1000. Default 1000."`
	// RequestsPerMinute paces requests on this connection. Default 1000.
	RequestsPerMinute int `json:"requests_per_minute,omitempty" help:"Pace of API requests on this connection. Default 1000."`
}

// APIHost implements connectors.VendorHosted: ConnectWise's cloud is its
// regional api- hosts; a site's own host needs the operator's consent.
func (c *Config) APIHost() (key, host string, vendorCloud bool) {
	key = "site"
	if strings.TrimSpace(c.BaseURL) != "" {
		key = "base_url"
	}
	u, err := c.apiRoot()
	if err != nil {
		return key, "", false
	}
	host = strings.ToLower(u.Hostname())
	for _, h := range siteHosts {
		if u.Scheme == "https" && u.Port() == "" && h == "https://"+host {
			return key, host, true
		}
	}
	return key, host, false
}

// Open validates the config, fills defaults and returns the source. id names
// the connection: sources opened with the same id share one request budget.
func (c *Config) Open(env connectors.Env) (connectors.Source, error) {
	id, logger := env.ID, env.Logger
	var problems []string
	base, err := c.apiRoot()
	if err != nil {
		problems = append(problems, err.Error())
	}
	companyID := strings.TrimSpace(c.CompanyID)
	switch {
	case companyID == "":
		problems = append(problems, "company_id is required")
	case strings.ContainsAny(companyID, ":+"):
		problems = append(problems, "company_id must not contain ':' or '+'")
	}
	if strings.TrimSpace(c.ClientID) == "" {
		problems = append(problems, "client_id is required (register one at developer.connectwise.com)")
	}
	switch pub := c.PublicKey.Reveal(); {
	case pub == "":
		problems = append(problems, "public_key is required")
	case strings.Contains(pub, ":"):
		problems = append(problems, "public_key must not contain ':'")
	}
	if c.PrivateKey.Reveal() == "" {
		problems = append(problems, "private_key is required")
	}
	version := strings.TrimSpace(c.APIVersion)
	if version == "" {
		version = DefaultAPIVersion
	} else if !apiVersionPattern.MatchString(version) {
		problems = append(problems, fmt.Sprintf("api_version %q is not a version such as %s", c.APIVersion, DefaultAPIVersion))
	}
	if c.PageSize < 0 || c.PageSize > MaxPageSize {
		problems = append(problems, fmt.Sprintf("page_size %d is not between 1 and %d", c.PageSize, MaxPageSize))
	}
	if c.RequestsPerMinute < 0 {
		problems = append(problems, "requests_per_minute must not be negative")
	}
	if slices.ContainsFunc(c.MobileTypes, func(s string) bool { return strings.TrimSpace(s) == "" }) {
		problems = append(problems, "mobile_types has an empty name")
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%w: connectwise: %s", connectors.ErrInvalidConfig, strings.Join(problems, "; "))
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	mobileTypes := c.MobileTypes
	if len(mobileTypes) == 0 {
		mobileTypes = DefaultMobileTypes
	}
	pageSize := cmp.Or(c.PageSize, MaxPageSize)
	perMinute := cmp.Or(c.RequestsPerMinute, DefaultRequestsPerMinute)
	credentials := base64.StdEncoding.EncodeToString([]byte(companyID + "+" + c.PublicKey.Reveal() + ":" + c.PrivateKey.Reveal()))
	client := restclient.New(restclient.Options{
		Vendor: "ConnectWise",
		Base:   base,
		Header: http.Header{
			"Authorization": {"Basic " + credentials},
			"Clientid":      {strings.TrimSpace(c.ClientID)},
			"Accept":        {"application/vnd.connectwise.com+json; version=" + version},
		},
		Limiter:           env.Limiters.For(connectors.KindConnectWise, id, perMinute, time.Minute),
		DefaultRetryAfter: defaultRetryAfter,
		StatusHints: map[int]string{
			http.StatusBadRequest:   "check client_id, api_version and the company_status / company_type filters",
			http.StatusUnauthorized: "check company_id, public_key, private_key and client_id",
			http.StatusForbidden:    "the API member's security role must allow reading companies and contacts",
			http.StatusNotFound:     "on ConnectWise cloud a 404 usually means the credentials were refused: check company_id, public_key, private_key, client_id and the site",
		},
		Logger: logger,
	})
	return &source{
		client:        client,
		log:           logger,
		pageSize:      pageSize,
		companyStatus: strings.TrimSpace(c.CompanyStatus),
		companyType:   strings.TrimSpace(c.CompanyType),
		mobileTypes:   slices.Clone(mobileTypes),
	}, nil
}

// apiRoot works out the API root from base_url or site.
func (c *Config) apiRoot() (*url.URL, error) {
	if strings.TrimSpace(c.BaseURL) != "" {
		u, err := restclient.ParseBaseURL(c.BaseURL, DefaultAPIPath)
		if err != nil {
			return nil, fmt.Errorf("base_url %v", err)
		}
		return u, nil
	}
	site := strings.TrimSpace(c.Site)
	if site == "" {
		return nil, fmt.Errorf("site is required (na, eu, au or your site's host)")
	}
	raw, ok := siteHosts[strings.ToLower(site)]
	if !ok {
		raw = site
		if !strings.Contains(raw, "://") {
			raw = "https://" + raw
		}
	}
	u, err := restclient.ParseBaseURL(raw, DefaultAPIPath)
	if err != nil {
		return nil, fmt.Errorf("site %v", err)
	}
	// na.myconnectwise.net → api-na.myconnectwise.net: cloud API calls need
	// the api- host.
	if host := strings.ToLower(u.Hostname()); strings.HasSuffix(host, ".myconnectwise.net") && !strings.HasPrefix(host, "api-") {
		u.Host = "api-" + u.Host
	}
	return u, nil
}

var (
	_ connectors.CustomerSource = (*source)(nil)
	_ connectors.ContactSource  = (*source)(nil)
	_ connectors.Pinger         = (*source)(nil)
)

// source is an opened ConnectWise Manage connection.
type source struct {
	client        *restclient.Client
	log           *slog.Logger
	pageSize      int
	companyStatus string
	companyType   string
	mobileTypes   []string
}

// Close releases idle connections.
func (s *source) Close() error {
	s.client.Close()
	return nil
}

// Ping lists one company: it proves the host, the credentials, the clientId
// and the member's right to read companies.
func (s *source) Ping(ctx context.Context) error {
	resp, err := s.client.Get(ctx, "/company/companies", url.Values{"pageSize": {"1"}}, nil)
	if err != nil {
		return err
	}
	_, err = resp.Array()
	return err
}

// Customers lists the companies that are not deleted, filtered by status
// and type when the config says so.
func (s *source) Customers(ctx context.Context) iter.Seq2[connectors.CustomerPage, error] {
	return func(yield func(connectors.CustomerPage, error) bool) {
		conditions := []string{"deletedFlag=False"}
		q := url.Values{}
		if s.companyStatus != "" {
			conditions = append(conditions, "status/name="+quote(s.companyStatus))
		}
		if s.companyType != "" {
			q.Set("childConditions", "types/name="+quote(s.companyType))
		}
		q.Set("conditions", strings.Join(conditions, " AND "))
		for p, err := range restclient.CustomerPages(s.pages(ctx, "/company/companies", q), s.toCustomer) {
			if !yield(p, err) {
				return
			}
		}
	}
}

// Contacts lists the active contacts of a company; with a non-zero since,
// only those updated after it.
func (s *source) Contacts(ctx context.Context, customerExternalID string, since time.Time) iter.Seq2[connectors.ContactPage, error] {
	return func(yield func(connectors.ContactPage, error) bool) {
		companyID := strings.TrimSpace(customerExternalID)
		if _, err := strconv.ParseUint(companyID, 10, 64); err != nil {
			yield(connectors.ContactPage{}, fmt.Errorf("%w: ConnectWise company id %q is not a number", connectors.ErrNotFound, customerExternalID))
			return
		}
		conditions := []string{"company/id=" + companyID, "inactiveFlag=False"}
		if !since.IsZero() {
			conditions = append(conditions, "lastUpdated>["+since.UTC().Format(time.RFC3339)+"]")
		}
		q := url.Values{"conditions": {strings.Join(conditions, " AND ")}}
		convert := func(raw json.RawMessage) (connectors.Contact, string, string, bool, error) {
			return s.toContact(raw, companyID)
		}
		for p, err := range restclient.ContactPages(s.pages(ctx, "/company/contacts", q), fmt.Sprintf("contacts of company %s", companyID), convert, nil) {
			if !yield(p, err) {
				return
			}
		}
	}
}

// quote writes a string value of the conditions language: in double quotes,
// with backslashes and quotes escaped and a literal "[" written "[[]".
func quote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, `[`, `[[]`)
	return `"` + r.Replace(s) + `"`
}

// forwardOnly asks for forward-only pagination: pageId instead of page.
var forwardOnly = http.Header{"Pagination-Type": {"forward-only"}}

// pages yields the records of path page by page with forward-only
// pagination: each next request carries the pageId of the next Link. The
// listing ends on an empty page, a short page, or a response without a next
// Link.
func (s *source) pages(ctx context.Context, path string, query url.Values) iter.Seq2[restclient.Page, error] {
	return func(yield func(restclient.Page, error) bool) {
		q := maps.Clone(query)
		q.Set("pageSize", strconv.Itoa(s.pageSize))
		var pageID int64
		for number := 1; ; number++ {
			if pageID > 0 {
				q.Set("pageId", strconv.FormatInt(pageID, 10))
			}
			resp, err := s.client.GetPage(ctx, number, path, q, forwardOnly)
			if err != nil {
				yield(restclient.Page{}, err)
				return
			}
			records, err := resp.Array()
			if err != nil {
				yield(restclient.Page{}, err)
				return
			}
			if len(records) == 0 {
				return
			}
			if !yield(restclient.Page{Resp: resp, Records: records}, nil) || len(records) < s.pageSize {
				return
			}
			next, ok := nextLink(resp.Header.Values("Link"))
			if !ok {
				return
			}
			nextID, err := nextPageID(next)
			if err != nil {
				yield(restclient.Page{}, fmt.Errorf("%s %s: %w: %v", resp.Vendor, resp.Request, connectors.ErrBadResponse, err))
				return
			}
			if nextID <= pageID {
				yield(restclient.Page{}, fmt.Errorf("%s %s: %w: the next Link's pageId %d does not advance past %d", resp.Vendor, resp.Request, connectors.ErrBadResponse, nextID, pageID))
				return
			}
			pageID = nextID
		}
	}
}

// nextLink returns the target of rel="next" in RFC 8288 Link header values.
func nextLink(values []string) (string, bool) {
	for _, v := range values {
		rest := v
		for {
			start := strings.IndexByte(rest, '<')
			if start < 0 {
				break
			}
			end := strings.IndexByte(rest[start:], '>')
			if end < 0 {
				break
			}
			target := rest[start+1 : start+end]
			rest = rest[start+end+1:]
			params := rest
			if i := strings.IndexByte(rest, '<'); i >= 0 {
				params = rest[:i]
			}
			for p := range strings.SplitSeq(params, ";") {
				name, value, ok := strings.Cut(strings.TrimSpace(p), "=")
				if !ok || !strings.EqualFold(strings.TrimSpace(name), "rel") {
					continue
				}
				value = strings.Trim(strings.TrimSpace(strings.TrimRight(strings.TrimSpace(value), ",")), `"`)
				if slices.Contains(strings.Fields(strings.ToLower(value)), "next") {
					return target, true
				}
			}
		}
	}
	return "", false
}

// nextPageID reads the pageId of a next link.
func nextPageID(link string) (int64, error) {
	u, err := url.Parse(link)
	if err != nil {
		return 0, fmt.Errorf("the next Link %q is not a URL", link)
	}
	v := u.Query().Get("pageId")
	if v == "" {
		return 0, fmt.Errorf("the next Link has no pageId: the server did not page forward-only (ConnectWise before 2018.5?)")
	}
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil || id < 0 {
		return 0, fmt.Errorf("the next Link's pageId %q is not a number", v)
	}
	return id, nil
}

// named is a {id, name} reference.
type named struct {
	ID   restclient.ID `json:"id"`
	Name string        `json:"name"`
}

// company is a company record as ConnectWise sends it.
type company struct {
	ID          restclient.ID `json:"id"`
	Identifier  string        `json:"identifier"`
	Name        string        `json:"name"`
	Status      *named        `json:"status"`
	Types       []named       `json:"types"`
	DeletedFlag bool          `json:"deletedFlag"`
}

func (s *source) toCustomer(raw json.RawMessage) (connectors.Customer, string, string, bool, error) {
	var c company
	err := restclient.DecodeRecord(raw, &c)
	id, ref := string(c.ID), ""
	if id != "" {
		ref = "company " + id
		if c.Identifier != "" {
			ref += " (" + c.Identifier + ")"
		}
	}
	if err != nil {
		return connectors.Customer{}, id, ref, false, err
	}
	name := strings.TrimSpace(c.Name)
	if name == "" {
		return connectors.Customer{}, id, ref, false, fmt.Errorf("company has no name")
	}
	var status string
	if c.Status != nil {
		status = c.Status.Name
	}
	var types []string
	for _, t := range c.Types {
		if t.Name != "" {
			types = append(types, t.Name)
		}
	}
	// The server filters already; this guards against one that ignores
	// conditions.
	skip := c.DeletedFlag ||
		s.companyStatus != "" && !strings.EqualFold(status, s.companyStatus) ||
		s.companyType != "" && !slices.ContainsFunc(types, func(t string) bool { return strings.EqualFold(t, s.companyType) })
	return connectors.Customer{
		ExternalID: id,
		Name:       name,
		Type:       strings.Join(types, ", "),
		Status:     status,
		Ref:        ref,
	}, id, ref, skip, nil
}

// contact is a contact record as ConnectWise sends it.
type contact struct {
	ID                 restclient.ID       `json:"id"`
	FirstName          string              `json:"firstName"`
	LastName           string              `json:"lastName"`
	Company            *named              `json:"company"`
	InactiveFlag       bool                `json:"inactiveFlag"`
	CommunicationItems []communicationItem `json:"communicationItems"`
	Info               struct {
		LastUpdated string `json:"lastUpdated"`
	} `json:"_info"`
}

// communicationItem is one of a contact's emails, phones or faxes.
// CommunicationType is the broad class (Email, Phone, Fax); Type.Name is the
// tenant's own label (Direct, Mobile, Cell…).
type communicationItem struct {
	Type              named  `json:"type"`
	Value             string `json:"value"`
	DefaultFlag       bool   `json:"defaultFlag"`
	CommunicationType string `json:"communicationType"`
}

func (s *source) toContact(raw json.RawMessage, companyID string) (connectors.Contact, string, string, bool, error) {
	var c contact
	err := restclient.DecodeRecord(raw, &c)
	id, ref := string(c.ID), ""
	if id != "" {
		ref = "contact " + id
	}
	if err != nil {
		return connectors.Contact{}, id, ref, false, err
	}
	if c.Company != nil && c.Company.ID != "" && string(c.Company.ID) != companyID {
		return connectors.Contact{}, id, ref, false, fmt.Errorf("contact belongs to company %s, not %s", c.Company.ID, companyID)
	}
	updated, err := restclient.ParseTime(c.Info.LastUpdated)
	if err != nil {
		return connectors.Contact{}, id, ref, false, fmt.Errorf("_info.lastUpdated: %v", err)
	}
	// Default items first, otherwise in the API's order.
	items := slices.Clone(c.CommunicationItems)
	slices.SortStableFunc(items, func(a, b communicationItem) int {
		switch {
		case a.DefaultFlag == b.DefaultFlag:
			return 0
		case a.DefaultFlag:
			return -1
		}
		return 1
	})
	var emails, mobiles []string
	for _, it := range items {
		v := strings.TrimSpace(it.Value)
		if v == "" {
			continue
		}
		switch {
		case strings.EqualFold(it.CommunicationType, "Email"):
			if !slices.ContainsFunc(emails, func(e string) bool { return strings.EqualFold(e, v) }) {
				emails = append(emails, v)
			}
		case strings.EqualFold(it.CommunicationType, "Phone") &&
			slices.ContainsFunc(s.mobileTypes, func(t string) bool { return strings.EqualFold(strings.TrimSpace(t), strings.TrimSpace(it.Type.Name)) }):
			if !slices.Contains(mobiles, v) {
				mobiles = append(mobiles, v)
			}
		}
	}
	return connectors.Contact{
		ExternalID:         id,
		CustomerExternalID: companyID,
		FirstName:          strings.TrimSpace(c.FirstName),
		LastName:           strings.TrimSpace(c.LastName),
		Emails:             emails,
		Mobiles:            mobiles,
		UpdatedAt:          updated,
		Ref:                ref,
	}, id, ref, c.InactiveFlag, nil
}
