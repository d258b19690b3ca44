package restclient

import (
	"encoding/json"
	"fmt"
	"iter"

	"selfserve/connectors"
)

// Page is one page of raw records and the response they came in.
type Page struct {
	Resp    *Response
	Records []json.RawMessage
}

// CustomerPages converts a listing of raw company pages into customer
// pages: each page's records go through Collect (invalid and repeated
// records reported, not yielded), and the first error ends the listing.
func CustomerPages(pages iter.Seq2[Page, error], convert ConvertFunc[connectors.Customer]) iter.Seq2[connectors.CustomerPage, error] {
	return func(yield func(connectors.CustomerPage, error) bool) {
		var dedup Dedup
		for page, err := range pages {
			if err != nil {
				yield(connectors.CustomerPage{}, err)
				return
			}
			customers, invalid, err := Collect(page.Resp, page.Records, &dedup, convert)
			if err != nil {
				yield(connectors.CustomerPage{}, err)
				return
			}
			if !yield(connectors.CustomerPage{Customers: customers, Invalid: invalid}, nil) {
				return
			}
		}
	}
}

// ContactPages converts a listing of raw contact pages into contact pages,
// like CustomerPages; listing errors are wrapped with what ("contacts of
// organization 12"). stop, when not nil, trims each page and reports whether
// the listing is complete after it (an incremental listing that reached its
// checkpoint).
func ContactPages(pages iter.Seq2[Page, error], what string, convert ConvertFunc[connectors.Contact], stop func([]connectors.Contact) ([]connectors.Contact, bool)) iter.Seq2[connectors.ContactPage, error] {
	return func(yield func(connectors.ContactPage, error) bool) {
		var dedup Dedup
		for page, err := range pages {
			if err != nil {
				yield(connectors.ContactPage{}, fmt.Errorf("%s: %w", what, err))
				return
			}
			contacts, invalid, err := Collect(page.Resp, page.Records, &dedup, convert)
			if err != nil {
				yield(connectors.ContactPage{}, err)
				return
			}
			done := false
			if stop != nil {
				contacts, done = stop(contacts)
			}
			if !yield(connectors.ContactPage{Contacts: contacts, Invalid: invalid}, nil) || done {
				return
			}
		}
	}
}
