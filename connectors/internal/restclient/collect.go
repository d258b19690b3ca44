package restclient

import (
	"encoding/json"
	"fmt"

	"selfserve/connectors"
)

// ConvertFunc turns one raw record into an item. It returns the record's id
// and a ref locating it in reports ("organization 12"). A non-nil error makes
// the record invalid with the error as reason; skip drops a valid record the
// listing does not want (archived, deleted, inactive).
type ConvertFunc[T any] func(raw json.RawMessage) (item T, id, ref string, skip bool, err error)

// Collect converts the records of one page of resp: records that fail
// conversion or have no id become invalid records with a reason, a record
// whose id dedup already saw is reported as a duplicate instead of yielded
// twice, and the rest are returned in order. A page of several records that
// were all listed before means the API ignores the paging parameters: that
// is an ErrBadResponse, which ends the listing instead of looping forever.
func Collect[T any](resp *Response, records []json.RawMessage, dedup *Dedup, convert ConvertFunc[T]) ([]T, []connectors.InvalidRecord, error) {
	var (
		items   []T
		invalid []connectors.InvalidRecord
		dups    int
	)
	for i, raw := range records {
		item, id, ref, skip, err := convert(raw)
		if ref == "" {
			ref = fmt.Sprintf("record %d of %s", i+1, resp.Request)
		}
		switch {
		case err != nil:
			invalid = append(invalid, connectors.InvalidRecord{Ref: ref, Reason: err.Error()})
		case id == "":
			invalid = append(invalid, connectors.InvalidRecord{Ref: ref, Reason: "the record has no id"})
		case dedup.Seen(id):
			dups++
			invalid = append(invalid, connectors.InvalidRecord{Ref: ref, Reason: DuplicateReason(id)})
		case !skip:
			items = append(items, item)
		}
	}
	if dups > 1 && dups == len(records) {
		return nil, nil, resp.badf("all %d records were already listed on earlier pages: the API seems to ignore the paging parameters", dups)
	}
	return items, invalid, nil
}
