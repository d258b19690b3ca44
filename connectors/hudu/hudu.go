// Package hudu is the Hudu connector: companies become customers, and people
// (assets of a configurable asset layout, "People" by default) enrich end
// users with email and mobile.
//
// It speaks Hudu's REST API under <instance>/api/v1: x-api-key
// authentication, plain JSON wrapped under the plural key
// ({"companies":[…]}), page/page_size paging that ends on a short or empty
// page, and about 300 requests per minute, paced client-side. Hudu has no
// contact object: email and mobile come from asset fields matched by label,
// whose values may be plain text, HTML rich text or JSON.
package hudu

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
	"sync"
	"time"

	"selfserve/connectors"
	"selfserve/connectors/internal/restclient"
	"selfserve/internal/redact"
)

// Defaults and limits.
const (
	// DefaultPeopleLayout is the asset layout holding people.
	DefaultPeopleLayout = "People"
	// DefaultPageSize is the page_size sent.
	DefaultPageSize = 1000
	// MaxPageSize is the largest page_size accepted in the config.
	MaxPageSize = 1000
	// DefaultRequestsPerMinute is the rate Hudu integrations are held to.
	DefaultRequestsPerMinute = 300
	// huduDefaultPageSize is the page length Hudu serves when it ignores
	// page_size (some versions do).
	huduDefaultPageSize = 25
	// defaultRetryAfter is the wait reported when Hudu throttles ("Retry
	// later") without a Retry-After header.
	defaultRetryAfter = time.Minute
)

// DefaultEmailFields and DefaultMobileFields are the field labels read when
// the config names none.
var (
	DefaultEmailFields  = []string{"Email", "Emails"}
	DefaultMobileFields = []string{"Mobile", "Cell", "Mobile Phone", "Phones"}
)

// Config is a Hudu connection's settings and secrets.
//
// Example (settings and secrets of a connection, as YAML):
//
//	kind: hudu
//	settings:
//	  base_url: https://acme.huducloud.com
//	  people_layout: Contacts
//	  email_fields: [Email, Emails, "Work Email"]
//	  mobile_fields: [Mobile, Cell, Phones]
//	secrets:
//	  api_key: xxxxxxxxxxxxxxxxxxxxxxxx
type Config struct {
	// BaseURL is the Hudu instance (https://acme.huducloud.com); the API
	// path /api/v1 is added when the URL has no path. Required.
	BaseURL string `json:"base_url,omitempty" connector:"endpoint" help:"Your Hudu address, e.g. https://acme.huducloud.com."`
	// APIKey is the Hudu API key, sent as x-api-key. Required.
	APIKey redact.Secret `json:"api_key,omitempty" help:"Hudu API key, from Admin › API Keys."`
	// PeopleLayout is the name of the asset layout whose assets are people.
	// Default "People".
	PeopleLayout string `json:"people_layout,omitempty" help:"Name of the asset layout whose assets are people. Default People."`
	// EmailFields are the labels of the fields holding email addresses,
	// matched case-insensitively; the asset's primary_mail is read too.
	// Default ["Email", "Emails"].
	EmailFields []string `json:"email_fields,omitempty" help:"Labels of the asset fields that hold email addresses. Default Email, Emails."`
	// MobileFields are the labels of the fields holding mobile numbers,
	// matched case-insensitively, in order of preference. Inside a field, a
	// number that carries its own label ("Work: …", a row of a phones table)
	// counts only if that label is one of these or "Mobile"/"Cell".
	// Default ["Mobile", "Cell", "Mobile Phone", "Phones"].
	MobileFields []string `json:"mobile_fields,omitempty" help:"Labels of the asset fields that hold mobile numbers, preferred first. Default Mobile, Cell, Mobile Phone, Phones."`
	// PageSize is page_size, 1 to 1000. Default 1000.
	PageSize int `json:"page_size,omitempty" help:"Records per request, 1 to 1000. Default 1000."`
	// RequestsPerMinute paces requests on this connection. Default 300.
	RequestsPerMinute int `json:"requests_per_minute,omitempty" help:"Pace of API requests on this connection. Default 300."`
}

// APIHost implements connectors.VendorHosted: Hudu's cloud instances are
// the hosts below huducloud.com.
func (c *Config) APIHost() (key, host string, vendorCloud bool) {
	u, err := restclient.ParseBaseURL(c.BaseURL, "/api/v1")
	if err != nil {
		return "base_url", "", false
	}
	host = strings.ToLower(u.Hostname())
	return "base_url", host, u.Scheme == "https" && connectors.MatchHost(host, []string{"*.huducloud.com"})
}

// Open validates the config, fills defaults and returns the source. id names
// the connection: sources opened with the same id share one request budget.
func (c *Config) Open(env connectors.Env) (connectors.Source, error) {
	id, logger := env.ID, env.Logger
	var problems []string
	var base *url.URL
	if strings.TrimSpace(c.BaseURL) == "" {
		problems = append(problems, "base_url is required (the Hudu instance, such as https://acme.huducloud.com)")
	} else if u, err := restclient.ParseBaseURL(c.BaseURL, "/api/v1"); err != nil {
		problems = append(problems, "base_url "+err.Error())
	} else {
		base = u
	}
	if strings.TrimSpace(c.APIKey.Reveal()) == "" {
		problems = append(problems, "api_key is required")
	}
	if c.PageSize < 0 || c.PageSize > MaxPageSize {
		problems = append(problems, fmt.Sprintf("page_size %d is not between 1 and %d", c.PageSize, MaxPageSize))
	}
	if c.RequestsPerMinute < 0 {
		problems = append(problems, "requests_per_minute must not be negative")
	}
	for _, list := range []struct {
		name   string
		labels []string
	}{{"email_fields", c.EmailFields}, {"mobile_fields", c.MobileFields}} {
		if slices.ContainsFunc(list.labels, func(l string) bool { return strings.TrimSpace(l) == "" }) {
			problems = append(problems, list.name+" has an empty label")
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%w: hudu: %s", connectors.ErrInvalidConfig, strings.Join(problems, "; "))
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	layout := strings.TrimSpace(c.PeopleLayout)
	if layout == "" {
		layout = DefaultPeopleLayout
	}
	emailFields := c.EmailFields
	if len(emailFields) == 0 {
		emailFields = DefaultEmailFields
	}
	mobileFields := c.MobileFields
	if len(mobileFields) == 0 {
		mobileFields = DefaultMobileFields
	}
	pageSize := cmp.Or(c.PageSize, DefaultPageSize)
	perMinute := cmp.Or(c.RequestsPerMinute, DefaultRequestsPerMinute)
	client := restclient.New(restclient.Options{
		Vendor:            "Hudu",
		Base:              base,
		Header:            http.Header{"X-Api-Key": {c.APIKey.Reveal()}, "Accept": {"application/json"}},
		Limiter:           env.Limiters.For(connectors.KindHudu, id, perMinute, time.Minute),
		DefaultRetryAfter: defaultRetryAfter,
		ThrottleText:      "Retry later",
		StatusHints: map[int]string{
			http.StatusUnauthorized: "check api_key",
			http.StatusForbidden:    "Hudu refused the request: check api_key, and that the key's scope (company scopes, IP allow-list) allows reading companies and assets",
			http.StatusNotFound:     "check base_url: it must be the Hudu instance's address",
		},
		Logger: logger,
	})
	return &source{
		client:       client,
		log:          logger,
		pageSize:     pageSize,
		layoutName:   layout,
		emailFields:  slices.Clone(emailFields),
		mobileFields: slices.Clone(mobileFields),
		mobileLabels: append(slices.Clone(mobileFields), "Mobile", "Cell"),
	}, nil
}

var (
	_ connectors.CustomerSource = (*source)(nil)
	_ connectors.ContactSource  = (*source)(nil)
	_ connectors.Pinger         = (*source)(nil)
)

// source is an opened Hudu connection.
type source struct {
	client       *restclient.Client
	log          *slog.Logger
	pageSize     int
	layoutName   string
	emailFields  []string
	mobileFields []string
	// mobileLabels are the labels an entry inside a field may carry and
	// still count as a mobile.
	mobileLabels []string

	mu       sync.Mutex
	layoutID string // resolved people layout, "" until then
}

// Close releases idle connections.
func (s *source) Close() error {
	s.client.Close()
	return nil
}

// Ping lists one company and resolves the people layout: it proves the
// instance, the key, its scope and the layout name.
func (s *source) Ping(ctx context.Context) error {
	resp, err := s.client.Get(ctx, "/companies", url.Values{"page": {"1"}, "page_size": {"1"}}, nil)
	if err != nil {
		return err
	}
	if _, err := resp.List("companies"); err != nil {
		return err
	}
	_, err = s.peopleLayout(ctx)
	return err
}

// Customers lists the companies that are not archived.
func (s *source) Customers(ctx context.Context) iter.Seq2[connectors.CustomerPage, error] {
	return func(yield func(connectors.CustomerPage, error) bool) {
		for p, err := range restclient.CustomerPages(s.pages(ctx, "/companies", "companies", url.Values{"archived": {"false"}}), toCustomer) {
			if !yield(p, err) {
				return
			}
		}
	}
}

// Contacts lists the people of a company: the assets of the people layout.
// With a non-zero since, only those updated after it.
func (s *source) Contacts(ctx context.Context, customerExternalID string, since time.Time) iter.Seq2[connectors.ContactPage, error] {
	return func(yield func(connectors.ContactPage, error) bool) {
		companyID := strings.TrimSpace(customerExternalID)
		if _, err := strconv.ParseUint(companyID, 10, 64); err != nil {
			yield(connectors.ContactPage{}, fmt.Errorf("%w: Hudu company id %q is not a number", connectors.ErrNotFound, customerExternalID))
			return
		}
		layoutID, err := s.peopleLayout(ctx)
		if err != nil {
			yield(connectors.ContactPage{}, err)
			return
		}
		q := url.Values{"asset_layout_id": {layoutID}, "company_id": {companyID}, "archived": {"false"}}
		if !since.IsZero() {
			q.Set("updated_at", since.UTC().Format(time.RFC3339)+",")
		}
		convert := func(raw json.RawMessage) (connectors.Contact, string, string, bool, error) {
			return s.toContact(raw, companyID, layoutID, since)
		}
		for p, err := range restclient.ContactPages(s.pages(ctx, "/assets", "assets", q), fmt.Sprintf("people of company %s", companyID), convert, nil) {
			if !yield(p, err) {
				return
			}
		}
	}
}

// peopleLayout returns the id of the people layout, looked up by name once
// per source.
func (s *source) peopleLayout(ctx context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.layoutID != "" {
		return s.layoutID, nil
	}
	resp, err := s.client.Get(ctx, "/asset_layouts", url.Values{"name": {s.layoutName}}, nil)
	if err != nil {
		return "", fmt.Errorf("looking up the people layout %q: %w", s.layoutName, err)
	}
	records, err := resp.List("asset_layouts")
	if err != nil {
		return "", err
	}
	var others []string
	for _, raw := range records {
		var l struct {
			ID     restclient.ID `json:"id"`
			Name   string        `json:"name"`
			Fields []struct {
				Label string `json:"label"`
			} `json:"fields"`
		}
		if err := restclient.DecodeRecord(raw, &l); err != nil || l.ID == "" {
			continue
		}
		if !strings.EqualFold(strings.TrimSpace(l.Name), s.layoutName) {
			others = append(others, strconv.Quote(l.Name))
			continue
		}
		var labels []string
		for _, f := range l.Fields {
			labels = append(labels, f.Label)
		}
		if len(labels) > 0 && !slices.ContainsFunc(labels, func(label string) bool {
			return containsFold(s.emailFields, label) || containsFold(s.mobileFields, label)
		}) {
			s.log.Warn("the Hudu people layout has none of the configured email or mobile fields: only primary_mail will be read",
				"layout", l.Name, "fields", labels, "email_fields", s.emailFields, "mobile_fields", s.mobileFields)
		}
		s.layoutID = string(l.ID)
		return s.layoutID, nil
	}
	similar := ""
	if len(others) > 0 {
		similar = " (similar layouts: " + strings.Join(others, ", ") + ")"
	}
	return "", fmt.Errorf("hudu asset layout %q: %w%s; set people_layout to the name of the layout that holds your contacts", s.layoutName, connectors.ErrNotFound, similar)
}

// pages yields the records under key of path, page by page from page 1,
// until a page is empty or shorter than page_size. A page of exactly Hudu's
// default 25 when more were asked does not end the listing: some Hudu
// versions ignore page_size.
func (s *source) pages(ctx context.Context, path, key string, query url.Values) iter.Seq2[restclient.Page, error] {
	return func(yield func(restclient.Page, error) bool) {
		q := maps.Clone(query)
		q.Set("page_size", strconv.Itoa(s.pageSize))
		for number := 1; ; number++ {
			q.Set("page", strconv.Itoa(number))
			resp, err := s.client.GetPage(ctx, number, path, q, nil)
			if err != nil {
				yield(restclient.Page{}, err)
				return
			}
			records, err := resp.List(key)
			if err != nil {
				yield(restclient.Page{}, err)
				return
			}
			if len(records) == 0 {
				return
			}
			if !yield(restclient.Page{Resp: resp, Records: records}, nil) {
				return
			}
			short := len(records) < s.pageSize && !(len(records) == huduDefaultPageSize && s.pageSize > huduDefaultPageSize)
			if short {
				return
			}
		}
	}
}

// company is a company record as Hudu sends it.
type company struct {
	ID          restclient.ID `json:"id"`
	Name        string        `json:"name"`
	CompanyType string        `json:"company_type"`
	Archived    bool          `json:"archived"`
}

func toCustomer(raw json.RawMessage) (connectors.Customer, string, string, bool, error) {
	var c company
	err := restclient.DecodeRecord(raw, &c)
	id, ref := string(c.ID), ""
	if id != "" {
		ref = "company " + id
	}
	if err != nil {
		return connectors.Customer{}, id, ref, false, err
	}
	name := strings.TrimSpace(c.Name)
	if name == "" {
		return connectors.Customer{}, id, ref, false, fmt.Errorf("company has no name")
	}
	return connectors.Customer{ExternalID: id, Name: name, Type: c.CompanyType, Ref: ref}, id, ref, c.Archived, nil
}

// asset is an asset record as Hudu sends it.
type asset struct {
	ID            restclient.ID `json:"id"`
	CompanyID     restclient.ID `json:"company_id"`
	AssetLayoutID restclient.ID `json:"asset_layout_id"`
	Name          string        `json:"name"`
	PrimaryMail   string        `json:"primary_mail"`
	Archived      bool          `json:"archived"`
	UpdatedAt     string        `json:"updated_at"`
	Fields        []assetField  `json:"fields"`
}

// assetField is one field of an asset. Its value is untyped.
type assetField struct {
	Label string          `json:"label"`
	Value json.RawMessage `json:"value"`
}

func (s *source) toContact(raw json.RawMessage, companyID, layoutID string, since time.Time) (connectors.Contact, string, string, bool, error) {
	var a asset
	err := restclient.DecodeRecord(raw, &a)
	id, ref := string(a.ID), ""
	if id != "" {
		ref = "asset " + id
	}
	if err != nil {
		return connectors.Contact{}, id, ref, false, err
	}
	if a.CompanyID != "" && string(a.CompanyID) != companyID {
		return connectors.Contact{}, id, ref, false, fmt.Errorf("asset belongs to company %s, not %s", a.CompanyID, companyID)
	}
	if a.AssetLayoutID != "" && string(a.AssetLayoutID) != layoutID {
		return connectors.Contact{}, id, ref, false, fmt.Errorf("asset is of layout %s, not the people layout %s", a.AssetLayoutID, layoutID)
	}
	updated, err := restclient.ParseTime(a.UpdatedAt)
	if err != nil {
		return connectors.Contact{}, id, ref, false, fmt.Errorf("updated_at: %v", err)
	}
	skip := a.Archived || (!since.IsZero() && !updated.IsZero() && !updated.After(since))

	// Entries of each field, by the label lists' order of preference.
	byLabel := func(labels []string) [][]entry {
		var out [][]entry
		for _, label := range labels {
			for _, f := range a.Fields {
				if strings.EqualFold(strings.TrimSpace(f.Label), strings.TrimSpace(label)) {
					out = append(out, fieldEntries(f.Value))
				}
			}
		}
		return out
	}
	emails := appendDistinct(nil, emailKey, emailsIn([]entry{{text: a.PrimaryMail}})...)
	for _, entries := range byLabel(s.emailFields) {
		emails = appendDistinct(emails, emailKey, emailsIn(entries)...)
	}
	var mobiles []string
	for _, entries := range byLabel(s.mobileFields) {
		mobiles = appendDistinct(mobiles, phoneKey, mobilesIn(entries, s.mobileLabels)...)
	}
	first, last := s.nameField(a.Fields, "First Name"), s.nameField(a.Fields, "Last Name")
	if first == "" && last == "" {
		first, last = restclient.SplitName(a.Name)
	}
	return connectors.Contact{
		ExternalID:         id,
		CustomerExternalID: companyID,
		FirstName:          first,
		LastName:           last,
		Emails:             emails,
		Mobiles:            mobiles,
		UpdatedAt:          updated,
		Ref:                ref,
	}, id, ref, skip, nil
}

// nameField returns the text of the first field labelled label: a string,
// HTML reduced to its text, or a number.
func (s *source) nameField(fields []assetField, label string) string {
	for _, f := range fields {
		if !strings.EqualFold(strings.TrimSpace(f.Label), label) {
			continue
		}
		var v any
		if json.Unmarshal(f.Value, &v) != nil {
			continue
		}
		var text string
		switch v := v.(type) {
		case string:
			text = v
			if looksLikeHTML(v) {
				text = htmlText(v)
			}
		case float64:
			text = strconv.FormatFloat(v, 'f', -1, 64)
		}
		if text = strings.Join(strings.Fields(text), " "); text != "" {
			return text
		}
	}
	return ""
}
