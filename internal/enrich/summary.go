package enrich

import (
	"fmt"
	"slices"
	"strings"

	"selfserve/internal/store"
)

// The reason codes of a run's counts (store.PSARun.Counts). Customer
// import:
const (
	CountCustomersRead          = "customers_read"
	CountCustomersCreated       = "customers_created"
	CountCustomersLinked        = "customers_linked"
	CountCustomersRenamed       = "customers_renamed"
	CountCustomersUnchanged     = "customers_unchanged"
	CountCustomersLinkConflict  = "customers_link_conflict"
	CountCustomersNameAmbiguous = "customers_name_ambiguous"
	CountCustomersNameTaken     = "customers_name_taken"
	CountCustomersInvalid       = "customers_invalid"
)

// Contact enrichment:
const (
	CountCustomersSearched = "customers_searched"
	CountCustomersMissing  = "customers_missing"
	CountContactsRead      = "contacts_read"
	CountContactsInvalid   = "contacts_invalid"
	CountMatchedByEmail    = "contacts_matched_by_email"
	CountMatchedByName     = "contacts_matched_by_name"
	CountContactsUnmatched = "contacts_unmatched"
	CountContactsAmbiguous = "contacts_ambiguous"
	CountEndUsersAmbiguous = "end_users_ambiguous"
	CountEmailsFilled      = "emails_filled"
	CountEmailsReplaced    = "emails_replaced"
	CountEmailsKept        = "emails_kept"
	CountEmailsInvalid     = "emails_invalid"
	CountMobilesFilled     = "mobiles_filled"
	CountMobilesReplaced   = "mobiles_replaced"
	CountMobilesKept       = "mobiles_kept"
	CountMobilesUnparsable = "mobiles_unparsable"
	CountEndUsersUpToDate  = "end_users_up_to_date"
	CountChangedMeanwhile  = "values_changed_meanwhile"
)

// label says a count in words, singular and plural.
type label struct {
	code, one, many string
}

// labels are in the order a summary lists them: what was stored first, then
// what was left alone and why.
var labels = []label{
	{CountCustomersCreated, "customer created", "customers created"},
	{CountCustomersLinked, "existing customer linked by name", "existing customers linked by name"},
	{CountCustomersRenamed, "customer renamed", "customers renamed"},
	{CountCustomersUnchanged, "customer unchanged", "customers unchanged"},
	{CountCustomersLinkConflict, "customer not linked: its namesake is linked to another PSA id", "customers not linked: their namesakes are linked to other PSA ids"},
	{CountCustomersNameAmbiguous, "customer not linked: several customers have its name", "customers not linked: several customers have their names"},
	{CountCustomersNameTaken, "customer name already taken", "customer names already taken"},
	{CountCustomersInvalid, "invalid customer record", "invalid customer records"},

	{CountEmailsFilled, "email address filled", "email addresses filled"},
	{CountMobilesFilled, "mobile number filled", "mobile numbers filled"},
	{CountEmailsReplaced, "earlier PSA email address replaced", "earlier PSA email addresses replaced"},
	{CountMobilesReplaced, "earlier PSA mobile number replaced", "earlier PSA mobile numbers replaced"},
	{CountMatchedByEmail, "contact matched by email", "contacts matched by email"},
	{CountMatchedByName, "contact matched by name", "contacts matched by name"},
	{CountEndUsersUpToDate, "matched end user already up to date", "matched end users already up to date"},
	{CountContactsAmbiguous, "contact ambiguous (several end users match)", "contacts ambiguous (several end users match)"},
	{CountEndUsersAmbiguous, "end user ambiguous (contacts disagree)", "end users ambiguous (contacts disagree)"},
	{CountMobilesUnparsable, "mobile number unparsable", "mobile numbers unparsable"},
	{CountEmailsInvalid, "email address invalid", "email addresses invalid"},
	{CountEmailsKept, "email address kept (directory or typed value)", "email addresses kept (directory or typed values)"},
	{CountMobilesKept, "mobile number kept (directory or typed value)", "mobile numbers kept (directory or typed values)"},
	{CountChangedMeanwhile, "value not written: changed meanwhile by a technician or a sync", "values not written: changed meanwhile by a technician or a sync"},
	{CountContactsUnmatched, "contact matched no end user", "contacts matched no end user"},
	{CountContactsInvalid, "invalid contact record", "invalid contact records"},
	{CountContactsRead, "contact read", "contacts read"},
	{CountCustomersRead, "customer read", "customers read"},
	{CountCustomersSearched, "customer searched", "customers searched"},
	{CountCustomersMissing, "customer no longer in the PSA", "customers no longer in the PSA"},
}

// Lines says each non-zero count of counts in words ("37 mobile numbers
// filled"), in a fixed order: what was stored, then what was left alone and
// why. Unknown codes come last, as "code: n".
func Lines(counts store.RunCounts) []string {
	var out []string
	known := map[string]bool{}
	for _, l := range labels {
		known[l.code] = true
		n := counts[l.code]
		switch {
		case n == 1:
			out = append(out, "1 "+l.one)
		case n > 1:
			out = append(out, fmt.Sprintf("%d %s", n, l.many))
		}
	}
	var unknown []string
	for code, n := range counts {
		if !known[code] && n != 0 {
			unknown = append(unknown, fmt.Sprintf("%s: %d", code, n))
		}
	}
	slices.Sort(unknown)
	return append(out, unknown...)
}

// Summary joins Lines with commas: "37 mobile numbers filled, 4 contacts
// ambiguous (several end users match)". An empty count says "nothing to do".
func Summary(counts store.RunCounts) string {
	lines := Lines(counts)
	if len(lines) == 0 {
		return "nothing to do"
	}
	return strings.Join(lines, ", ")
}
