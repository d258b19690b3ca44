package service

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"selfserve/connectors"
	"selfserve/internal/enrich"
	"selfserve/internal/rules"
	"selfserve/internal/store"
)

// MaxCustomerName is the longest customer name accepted.
const MaxCustomerName = 200

// NewCustomer is a customer created by hand.
type NewCustomer struct {
	Name string `json:"name"`
	// TimeZone is an IANA zone; "" means the tenant's.
	TimeZone string `json:"timezone"`
	// DefaultRegion reads phone numbers without a country code.
	DefaultRegion string `json:"default_region"`
}

// CreateCustomer creates a customer of the actor's tenant by hand (source
// manual), with its audit entry; every value is checked first (400 naming
// the field, nothing stored), a name taken is a 409.
func (s *Service) CreateCustomer(ctx context.Context, a Actor, req NewCustomer) (store.Customer, error) {
	if err := CheckName("name", req.Name, MaxCustomerName); err != nil {
		return store.Customer{}, err
	}
	if err := CheckTimeZone("timezone", req.TimeZone, true); err != nil {
		return store.Customer{}, err
	}
	if err := CheckRegion("default_region", req.DefaultRegion); err != nil {
		return store.Customer{}, err
	}
	var c store.Customer
	err := s.Store.InTx(ctx, func(tx *store.Store) error {
		var err error
		c, err = tx.CreateCustomer(ctx, store.Customer{TenantID: a.Tenant.ID, Name: req.Name, TimeZone: req.TimeZone, DefaultRegion: strings.ToUpper(req.DefaultRegion)})
		if err != nil {
			return err
		}
		return Audit(ctx, tx, a, "customer.created", "customer", c.ID, nil, c)
	})
	return c, err
}

// PSAKinds are the connector kinds customers are imported from.
var PSAKinds = []connectors.Kind{connectors.KindITGlue, connectors.KindHudu, connectors.KindConnectWise}

// CustomerLink links a manual customer to its record in a PSA.
type CustomerLink struct {
	// Source is the PSA: itglue, hudu or connectwise.
	Source string `json:"source"`
	// ExternalID is the PSA's id of the customer.
	ExternalID string `json:"external_id"`
}

// LinkCustomer links the actor's tenant's customer id, not linked yet, to
// its PSA record (later imports of that PSA then update it), with its
// audit entry: a bad source or id is a 400 naming the field, a customer
// linked already or a PSA id taken by another customer a 409. It returns
// the customer after.
func (s *Service) LinkCustomer(ctx context.Context, a Actor, id int64, req CustomerLink) (store.Customer, error) {
	if !slices.Contains(PSAKinds, connectors.Kind(req.Source)) {
		names := make([]string, len(PSAKinds))
		for i, k := range PSAKinds {
			names[i] = string(k)
		}
		return store.Customer{}, BadField("source", "%q is not a PSA; use %s", Truncate(req.Source, 40), strings.Join(names, ", "))
	}
	if err := CheckExternalID("external_id", req.ExternalID); err != nil {
		return store.Customer{}, err
	}
	var after store.Customer
	err := s.Store.InTx(ctx, func(tx *store.Store) error {
		before, a2, err := tx.LinkCustomer(ctx, a.Tenant.ID, id, req.Source, req.ExternalID)
		if err != nil {
			return err
		}
		after = a2
		return Audit(ctx, tx, a, "customer.linked", "customer", id, before, after)
	})
	return after, err
}

// ImportCustomers starts the customer import of the actor's tenant's PSA
// connection id (a queued run, with its audit entry): a directory
// connection is a 409, a missing one a 404, no queue a 503.
func (s *Service) ImportCustomers(ctx context.Context, a Actor, id int64) (store.SyncRun, error) {
	conn, err := s.PSAConnection(ctx, a, id)
	if err != nil {
		return store.SyncRun{}, err
	}
	return s.StartRun(ctx, a, conn, RunCustomerImport, store.ModeFull, false, "customer_import.requested")
}

// PSAConnection returns the actor's tenant's connection id when it is a
// PSA connection (a directory connection is a 409).
func (s *Service) PSAConnection(ctx context.Context, a Actor, id int64) (store.Connection, error) {
	conn, err := s.Store.Connection(ctx, a.Tenant.ID, id)
	if err != nil {
		return store.Connection{}, err
	}
	if conn.Kind.IsDirectory() {
		return store.Connection{}, Conflict("wrong_kind", "connection %q is a %s directory connection: it imports end users, not customers; start it with POST /v1/connections/%d/sync", conn.Name, conn.Kind, conn.ID)
	}
	return conn, nil
}

// Validation of string fields. Every string a request carries is checked
// against what its field can hold, so that SQL or LDAP metacharacters
// (quotes, ;, *, parentheses, backslashes, NUL) and markup are refused with
// a 400 naming the field before anything is stored.

// nameChars are the punctuation marks a display name (a customer's) may
// hold besides letters, digits and spaces: enough for "O'Brien & Sons
// (UK) Ltd.", not for ; * = \ " < > | % or control characters.
const nameChars = ".,-_&/@+#'()!:"

// CheckName checks a display name: 1..max characters of letters, digits,
// spaces and the punctuation of nameChars, with balanced parentheses, not
// starting or ending with a space.
func CheckName(field, s string, max int) error {
	if strings.TrimSpace(s) == "" {
		return BadField(field, "%s is required", field)
	}
	if s != strings.TrimSpace(s) {
		return BadField(field, "%s must not start or end with spaces", field)
	}
	if n := utf8.RuneCountInString(s); n > max {
		return BadField(field, "%s is %d characters long; at most %d", field, n, max)
	}
	for _, c := range s {
		if unicode.IsLetter(c) || unicode.IsDigit(c) || unicode.IsMark(c) || c == ' ' || strings.ContainsRune(nameChars, c) {
			continue
		}
		return BadField(field, "%s may hold letters, digits, spaces and %s only, not %q", field, nameChars, c)
	}
	if strings.Contains(s, "--") || strings.Contains(s, "  ") {
		return BadField(field, "%s must not hold \"--\" or double spaces", field)
	}
	depth, balanced := 0, true
	for _, c := range s {
		switch c {
		case '(':
			depth++
		case ')':
			depth--
			balanced = balanced && depth >= 0
		}
	}
	if !balanced || depth != 0 {
		return BadField(field, "%s has unbalanced parentheses", field)
	}
	return nil
}

var externalIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$`)

// CheckExternalID checks a PSA id: 1 to 100 letters, digits, '.', '_', ':'
// or '-'.
func CheckExternalID(field, s string) error {
	if !externalIDRE.MatchString(s) {
		return BadField(field, "%q is not a PSA id: use 1 to 100 letters, digits, '.', '_', ':' or '-'", Truncate(s, 40))
	}
	return nil
}

// CheckRegion checks a phone region (ISO 3166 alpha-2, "" allowed).
func CheckRegion(field, s string) error {
	if s == "" {
		return nil
	}
	if len(s) != 2 || !isASCIILetters(s) || !rules.ValidRegion(s) {
		return BadField(field, "%q is not a two-letter region code such as GB or US", Truncate(s, 40))
	}
	return nil
}

func isASCIILetters(s string) bool {
	for _, c := range s {
		if (c < 'A' || c > 'Z') && (c < 'a' || c > 'z') {
			return false
		}
	}
	return true
}

// PreviewLimit is how many of a PSA's customers a preview reads.
const PreviewLimit = 50

// previewTimeout bounds a preview's reading of the PSA.
const previewTimeout = 30 * time.Second

// PreviewCustomers reads the first PreviewLimit customers of the actor's
// tenant's PSA connection id and says what an import would do with each,
// storing nothing. A directory connection is a 409, no previewer a 503, a
// PSA that cannot be read a 502 saying why in general terms (the detail is
// logged), as a connection test does.
func (s *Service) PreviewCustomers(ctx context.Context, a Actor, id int64) (enrich.Preview, error) {
	conn, err := s.PSAConnection(ctx, a, id)
	if err != nil {
		return enrich.Preview{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, previewTimeout)
	defer cancel()
	en := &enrich.Enricher{Store: s.Store, Registry: s.Registry, Secrets: s.Secrets, Logger: s.log()}
	p, err := en.PreviewCustomers(ctx, a.Tenant.ID, conn.ID, PreviewLimit)
	if err == nil {
		return p, nil
	}
	if _, ok := Classify(err); ok {
		return p, err
	}
	s.log().Warn("customer preview failed", "tenant_id", a.Tenant.ID, "connection", conn.Name, "err", err)
	return p, psaError(conn, err)
}

// psaError is the 502 of a PSA that could not be read: what the connector
// reports before any network request (its settings) as it is, what comes
// back from the network reduced to its category (networkResult).
func psaError(conn store.Connection, err error) *Error {
	res := TestResult{Category: "invalid_config", Message: err.Error()}
	if c := category(err); c != "invalid_config" {
		res = networkResult(err)
	}
	return &Error{Status: http.StatusBadGateway, Code: "psa_" + res.Category, Message: fmt.Sprintf("%s could not be read: %s", conn.Name, res.Message)}
}
