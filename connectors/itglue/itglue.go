// Package itglue is the IT Glue connector: organizations become customers and
// their contacts enrich end users with email and mobile.
//
// It speaks IT Glue's JSON:API REST API: x-api-key authentication (a bad key
// gets 403), regional hosts, kebab-case attributes, page[size]/page[number]
// paging that ends as the meta object says, and 3000 requests per 5 minutes,
// paced client-side. IT Glue has no updated-since filter on contacts, so
// incremental listings sort by -updated_at and stop at the checkpoint.
package itglue

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"selfserve/connectors"
	"selfserve/connectors/internal/restclient"
	"selfserve/internal/redact"
)

// Regional API hosts.
var regionHosts = map[string]string{
	"us": "https://api.itglue.com",
	"eu": "https://api.eu.itglue.com",
	"au": "https://api.au.itglue.com",
}

// Defaults and limits.
const (
	// MaxPageSize is the largest page[size] IT Glue serves.
	MaxPageSize = 1000
	// DefaultRequestsPerMinute is IT Glue's documented 3000 requests per 5
	// minutes.
	DefaultRequestsPerMinute = 600
	// defaultRetryAfter is the wait reported when IT Glue throttles: it
	// documents no Retry-After.
	defaultRetryAfter = time.Minute
)

// Config is an IT Glue connection's settings and secrets.
//
// Example (settings and secrets of a connection, as YAML):
//
//	kind: itglue
//	settings:
//	  region: eu
//	  organization_type_id: 12       # only organizations of this type
//	  organization_status_id: 3      # only organizations of this status
//	secrets:
//	  api_key: ITG.xxxxxxxx
type Config struct {
	// Region picks the API host: "us" (https://api.itglue.com), "eu"
	// (https://api.eu.itglue.com) or "au" (https://api.au.itglue.com).
	// Default "us".
	Region string `json:"region,omitempty" connector:"endpoint" help:"Where your IT Glue account is hosted: us (app.itglue.com), eu (app.eu.itglue.com) or au (app.au.itglue.com). Default us."`
	// BaseURL overrides the regional host (a test server, a proxy). Default
	// empty: the region's host.
	BaseURL string `json:"base_url,omitempty" connector:"endpoint" help:"Replaces the region's API address (a proxy, a test server). Usually empty."`
	// APIKey is the IT Glue API key, sent as x-api-key. Required.
	APIKey redact.Secret `json:"api_key,omitempty" help:"IT Glue API key, from Account › Settings › API Keys (administrators only)."`
	// OrganizationTypeID, if set, imports only organizations of this type.
	// Default 0: all types.
	OrganizationTypeID int64 `json:"organization_type_id,omitempty" help:"Import only the organizations of this type id. Empty: all types."`
	// OrganizationStatusID, if set, imports only organizations of this
	// status. Default 0: all statuses.
	OrganizationStatusID int64 `json:"organization_status_id,omitempty" help:"Import only the organizations of this status id. Empty: all statuses."`
	// PageSize is page[size], 1 to 1000. Default 1000.
	PageSize int `json:"page_size,omitempty" help:"Organizations per request, 1 to 1000. Default 1000."`
	// RequestsPerMinute paces requests on this connection. Default 600
	// (IT Glue's 3000 per 5 minutes).
	RequestsPerMinute int `json:"requests_per_minute,omitempty" help:"Pace of API requests on this connection. Default 600."`
}

// APIHost implements connectors.VendorHosted: IT Glue's cloud is its
// three regional hosts.
func (c *Config) APIHost() (key, host string, vendorCloud bool) {
	key, raw := "region", regionHosts[strings.ToLower(strings.TrimSpace(cmp.Or(c.Region, "us")))]
	if strings.TrimSpace(c.BaseURL) != "" {
		key, raw = "base_url", c.BaseURL
	}
	u, err := restclient.ParseBaseURL(raw, "")
	if err != nil {
		return key, "", false
	}
	host = strings.ToLower(u.Hostname())
	for _, h := range regionHosts {
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
	if strings.TrimSpace(c.APIKey.Reveal()) == "" {
		problems = append(problems, "api_key is required")
	}
	region := strings.ToLower(strings.TrimSpace(c.Region))
	if region == "" {
		region = "us"
	}
	host, ok := regionHosts[region]
	if !ok {
		problems = append(problems, fmt.Sprintf("region %q is not one of us, eu, au", c.Region))
	}
	if c.BaseURL != "" {
		host = c.BaseURL
	}
	base, err := restclient.ParseBaseURL(host, "")
	if err != nil && c.BaseURL != "" {
		problems = append(problems, "base_url "+err.Error())
	}
	if c.PageSize < 0 || c.PageSize > MaxPageSize {
		problems = append(problems, fmt.Sprintf("page_size %d is not between 1 and %d", c.PageSize, MaxPageSize))
	}
	if c.RequestsPerMinute < 0 {
		problems = append(problems, "requests_per_minute must not be negative")
	}
	if c.OrganizationTypeID < 0 || c.OrganizationStatusID < 0 {
		problems = append(problems, "organization_type_id and organization_status_id must not be negative")
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%w: itglue: %s", connectors.ErrInvalidConfig, strings.Join(problems, "; "))
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	pageSize := cmp.Or(c.PageSize, MaxPageSize)
	perMinute := cmp.Or(c.RequestsPerMinute, DefaultRequestsPerMinute)
	client := restclient.New(restclient.Options{
		Vendor:            "IT Glue",
		Base:              base,
		Header:            http.Header{"X-Api-Key": {c.APIKey.Reveal()}, "Accept": {"application/vnd.api+json"}},
		Limiter:           env.Limiters.For(connectors.KindITGlue, id, perMinute, time.Minute),
		DefaultRetryAfter: defaultRetryAfter,
		StatusHints: map[int]string{
			http.StatusUnauthorized: "check api_key",
			http.StatusForbidden:    "IT Glue refused the API key: check api_key, that it belongs to this region's account, and that it was not revoked (IT Glue revokes keys unused for 90 days)",
		},
		Logger: logger,
	})
	return &source{
		client:   client,
		log:      logger,
		pageSize: pageSize,
		typeID:   c.OrganizationTypeID,
		statusID: c.OrganizationStatusID,
	}, nil
}

var (
	_ connectors.CustomerSource = (*source)(nil)
	_ connectors.ContactSource  = (*source)(nil)
	_ connectors.Pinger         = (*source)(nil)
)

// source is an opened IT Glue connection.
type source struct {
	client   *restclient.Client
	log      *slog.Logger
	pageSize int
	typeID   int64
	statusID int64
}

// Close releases idle connections.
func (s *source) Close() error {
	s.client.Close()
	return nil
}

// Ping fetches one organization: it proves the host, the key and the JSON:API
// envelope.
func (s *source) Ping(ctx context.Context) error {
	resp, err := s.client.Get(ctx, "/organizations", url.Values{"page[size]": {"1"}}, nil)
	if err != nil {
		return err
	}
	_, err = resp.List("data")
	return err
}

// Customers lists the organizations, filtered by type and status when the
// config says so.
func (s *source) Customers(ctx context.Context) iter.Seq2[connectors.CustomerPage, error] {
	return func(yield func(connectors.CustomerPage, error) bool) {
		q := url.Values{"sort": {"id"}}
		if s.typeID > 0 {
			q.Set("filter[organization_type_id]", strconv.FormatInt(s.typeID, 10))
		}
		if s.statusID > 0 {
			q.Set("filter[organization_status_id]", strconv.FormatInt(s.statusID, 10))
		}
		for p, err := range restclient.CustomerPages(s.pages(ctx, "/organizations", q), toCustomer) {
			if !yield(p, err) {
				return
			}
		}
	}
}

// Contacts lists the contacts of one organization. With a non-zero since,
// it asks for the most recently updated first and stops at the first
// contact updated at or before since.
func (s *source) Contacts(ctx context.Context, customerExternalID string, since time.Time) iter.Seq2[connectors.ContactPage, error] {
	return func(yield func(connectors.ContactPage, error) bool) {
		orgID := strings.TrimSpace(customerExternalID)
		if _, err := strconv.ParseUint(orgID, 10, 64); err != nil {
			yield(connectors.ContactPage{}, fmt.Errorf("%w: IT Glue organization id %q is not a number", connectors.ErrNotFound, customerExternalID))
			return
		}
		q := url.Values{"sort": {"id"}}
		if !since.IsZero() {
			q.Set("sort", "-updated_at")
		}
		convert := func(raw json.RawMessage) (connectors.Contact, string, string, bool, error) {
			return toContact(raw, orgID)
		}
		var stop func([]connectors.Contact) ([]connectors.Contact, bool)
		if !since.IsZero() {
			// Sorted by -updated_at: everything from the first contact at or
			// before the checkpoint on is already known.
			stop = func(contacts []connectors.Contact) ([]connectors.Contact, bool) {
				if i := slices.IndexFunc(contacts, func(c connectors.Contact) bool {
					return !c.UpdatedAt.IsZero() && !c.UpdatedAt.After(since)
				}); i >= 0 {
					return contacts[:i], true
				}
				return contacts, false
			}
		}
		path := "/organizations/" + orgID + "/relationships/contacts"
		for p, err := range restclient.ContactPages(s.pages(ctx, path, q), "contacts of organization "+orgID, convert, stop) {
			if !yield(p, err) {
				return
			}
		}
	}
}

// meta is IT Glue's paging object. Numbers are read leniently: a page
// number sent as a string still pages.
type meta struct {
	CurrentPage restclient.ID   `json:"current-page"`
	NextPage    json.RawMessage `json:"next-page"`
	TotalPages  restclient.ID   `json:"total-pages"`
}

// pages yields the raw records of path page by page, from page 1 until the
// meta object says the last page was served: current-page >= total-pages,
// or next-page null. Without meta, a short page ends the listing.
func (s *source) pages(ctx context.Context, path string, query url.Values) iter.Seq2[restclient.Page, error] {
	return func(yield func(restclient.Page, error) bool) {
		q := maps.Clone(query)
		q.Set("page[size]", strconv.Itoa(s.pageSize))
		for number := 1; ; number++ {
			q.Set("page[number]", strconv.Itoa(number))
			resp, err := s.client.GetPage(ctx, number, path, q, nil)
			if err != nil {
				yield(restclient.Page{}, err)
				return
			}
			records, obj, err := resp.Envelope("data")
			if err != nil {
				yield(restclient.Page{}, err)
				return
			}
			last, err := s.lastPage(resp, obj, number, len(records))
			if err != nil {
				yield(restclient.Page{}, err)
				return
			}
			if !yield(restclient.Page{Resp: resp, Records: records}, nil) || last || len(records) == 0 {
				return
			}
		}
	}
}

// lastPage reads the meta of a page and says whether it was the last.
func (s *source) lastPage(resp *restclient.Response, obj map[string]json.RawMessage, number, count int) (bool, error) {
	raw, ok := obj["meta"]
	if !ok || string(raw) == "null" {
		s.log.Debug("IT Glue page without meta: a short page ends the listing", "request", resp.Request)
		return count < s.pageSize, nil
	}
	var m meta
	if err := restclient.DecodeRecord(raw, &m); err != nil {
		return false, fmt.Errorf("%s %s: %w: meta: %v", resp.Vendor, resp.Request, connectors.ErrBadResponse, err)
	}
	if string(m.NextPage) == "null" {
		return true, nil
	}
	current, okCurrent := m.CurrentPage.Int()
	if !okCurrent {
		current = int64(number)
	}
	if total, ok := m.TotalPages.Int(); ok && current >= total {
		return true, nil
	}
	if len(m.NextPage) == 0 && m.TotalPages == "" {
		// Neither marker: fall back on the page length.
		return count < s.pageSize, nil
	}
	return false, nil
}

// organization is an organization record as IT Glue sends it.
type organization struct {
	ID         restclient.ID `json:"id"`
	Type       string        `json:"type"`
	Attributes struct {
		Name       string `json:"name"`
		TypeName   string `json:"organization-type-name"`
		StatusName string `json:"organization-status-name"`
	} `json:"attributes"`
}

func toCustomer(raw json.RawMessage) (connectors.Customer, string, string, bool, error) {
	var o organization
	err := restclient.DecodeRecord(raw, &o)
	id := string(o.ID)
	ref := ""
	if id != "" {
		ref = "organization " + id
	}
	if err != nil {
		return connectors.Customer{}, id, ref, false, err
	}
	if o.Type != "" && o.Type != "organizations" {
		return connectors.Customer{}, id, ref, false, fmt.Errorf("record of type %q in an organization listing", o.Type)
	}
	name := strings.TrimSpace(o.Attributes.Name)
	if name == "" {
		return connectors.Customer{}, id, ref, false, fmt.Errorf("organization has no name")
	}
	return connectors.Customer{
		ExternalID: id,
		Name:       name,
		Type:       o.Attributes.TypeName,
		Status:     o.Attributes.StatusName,
		Ref:        ref,
	}, id, ref, false, nil
}

// contact is a contact record as IT Glue sends it.
type contact struct {
	ID         restclient.ID `json:"id"`
	Type       string        `json:"type"`
	Attributes struct {
		OrganizationID restclient.ID `json:"organization-id"`
		Name           string        `json:"name"`
		FirstName      string        `json:"first-name"`
		LastName       string        `json:"last-name"`
		UpdatedAt      string        `json:"updated-at"`
		Emails         []labelled    `json:"contact-emails"`
		Phones         []labelled    `json:"contact-phones"`
	} `json:"attributes"`
}

// labelled is one of a contact's emails or phones.
type labelled struct {
	Value     string `json:"value"`
	Primary   bool   `json:"primary"`
	LabelName string `json:"label-name"`
}

// isMobileLabel says whether a phone label names a mobile number.
func isMobileLabel(label string) bool {
	label = strings.TrimSpace(label)
	return strings.EqualFold(label, "Mobile") || strings.EqualFold(label, "Cell")
}

func toContact(raw json.RawMessage, orgID string) (connectors.Contact, string, string, bool, error) {
	var c contact
	err := restclient.DecodeRecord(raw, &c)
	id := string(c.ID)
	ref := ""
	if id != "" {
		ref = "contact " + id
	}
	if err != nil {
		return connectors.Contact{}, id, ref, false, err
	}
	a := c.Attributes
	if c.Type != "" && c.Type != "contacts" {
		return connectors.Contact{}, id, ref, false, fmt.Errorf("record of type %q in a contact listing", c.Type)
	}
	if a.OrganizationID != "" && string(a.OrganizationID) != orgID {
		return connectors.Contact{}, id, ref, false, fmt.Errorf("contact belongs to organization %s, not %s", a.OrganizationID, orgID)
	}
	updated, err := restclient.ParseTime(a.UpdatedAt)
	if err != nil {
		return connectors.Contact{}, id, ref, false, fmt.Errorf("updated-at: %v", err)
	}
	first, last := strings.TrimSpace(a.FirstName), strings.TrimSpace(a.LastName)
	if first == "" && last == "" {
		first, last = restclient.SplitName(a.Name)
	}
	return connectors.Contact{
		ExternalID:         id,
		CustomerExternalID: orgID,
		FirstName:          first,
		LastName:           last,
		Emails:             values(a.Emails, func(labelled) bool { return true }),
		Mobiles:            values(a.Phones, func(p labelled) bool { return isMobileLabel(p.LabelName) }),
		UpdatedAt:          updated,
		Ref:                ref,
	}, id, ref, false, nil
}

// values returns the trimmed, non-empty, distinct values of the items keep
// accepts, primary ones first, otherwise in the API's order.
func values(items []labelled, keep func(labelled) bool) []string {
	var kept []labelled
	for _, it := range items {
		if keep(it) && strings.TrimSpace(it.Value) != "" {
			kept = append(kept, it)
		}
	}
	slices.SortStableFunc(kept, func(a, b labelled) int {
		switch {
		case a.Primary == b.Primary:
			return 0
		case a.Primary:
			return -1
		}
		return 1
	})
	var out []string
	for _, it := range kept {
		v := strings.TrimSpace(it.Value)
		if !slices.ContainsFunc(out, func(o string) bool { return strings.EqualFold(o, v) }) {
			out = append(out, v)
		}
	}
	return out
}
