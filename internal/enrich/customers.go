package enrich

import (
	"context"
	"fmt"
	"strings"

	"selfserve/connectors"
	"selfserve/internal/store"
)

// importCustomers streams the PSA's customers into the store, one
// transaction per page. A resumed run reads the listing from the start
// again (the connectors cannot resume it) and re-applies the pages it had
// committed, which changes nothing unless the PSA changed meanwhile; only
// what such a page newly stores is counted again.
func (r *runner) importCustomers(ctx context.Context) error {
	src, ok := r.src.(connectors.CustomerSource)
	if !ok {
		return fmt.Errorf("connection %q (%s): %w: it cannot list customers", r.conn.Name, r.conn.Kind, ErrNotPSA)
	}
	committed := r.resumePosition("customers")
	seen := map[string]bool{}
	page := int64(0)
	for pg, err := range src.Customers(connectors.WithThrottleSubject(ctx, "customers of "+r.conn.Name)) {
		if err != nil {
			return err
		}
		page++
		replay := page <= committed
		recs, problems := customerRecords(r.conn.Kind, pg, seen)
		err := r.commit(ctx, func(tx *store.Store, run *store.PSARun) error {
			outcomes, err := tx.ApplyCustomerPage(ctx, r.tenant.ID, string(r.conn.Kind), recs)
			if err != nil {
				return err
			}
			countCustomers(run, outcomes, replay)
			if !replay {
				run.Pages++
				run.Processed += len(pg.Customers) + len(pg.Invalid)
				run.Invalid += len(problems)
				run.Counts.Add(CountCustomersRead, len(pg.Customers)+len(pg.Invalid))
				run.Counts.Add(CountCustomersInvalid, len(problems))
				run.AddProblems(problems...)
			}
			run.Resume = fmt.Sprintf("customers:%d", max(page, committed))
			return nil
		})
		if err != nil {
			return fmt.Errorf("store page %d of customers: %w", page, err)
		}
		r.log.Debug("customer page committed", "page", page, "replayed", replay, "read", len(pg.Customers))
	}
	return ctx.Err()
}

// customerRecords turns a page into records to store. Records without id or
// name, and ids listed earlier in the run, are problems.
func customerRecords(kind connectors.Kind, pg connectors.CustomerPage, seen map[string]bool) ([]store.CustomerRecord, []store.Problem) {
	problems := append([]store.Problem(nil), pg.Invalid...)
	recs := make([]store.CustomerRecord, 0, len(pg.Customers))
	for _, c := range pg.Customers {
		id, name := strings.TrimSpace(c.ExternalID), strings.Join(strings.Fields(c.Name), " ")
		ref := c.Ref
		if ref == "" {
			ref = fmt.Sprintf("%s company %s", kind, id)
		}
		switch {
		case id == "":
			problems = append(problems, store.Problem{Ref: ref, Reason: "the company has no id"})
		case name == "":
			problems = append(problems, store.Problem{Ref: ref, Reason: "the company has no name"})
		case seen[id]:
			problems = append(problems, store.Problem{Ref: ref, Reason: fmt.Sprintf("id %s was listed twice; the second was skipped", id)})
		default:
			seen[id] = true
			recs = append(recs, store.CustomerRecord{ExternalID: id, Name: name, Ref: ref})
		}
	}
	return recs, problems
}

// countCustomers adds a page's outcomes to the run. A replayed page (of a
// resumed run) adds only what it newly stored.
func countCustomers(run *store.PSARun, outcomes []store.CustomerOutcome, replay bool) {
	for _, o := range outcomes {
		code := ""
		switch o.Action {
		case store.CustomerCreated:
			code = CountCustomersCreated
			run.Created++
		case store.CustomerLinked:
			code = CountCustomersLinked
			run.Updated++
		case store.CustomerRenamed:
			code = CountCustomersRenamed
			run.Updated++
		case store.CustomerUnchanged:
			if replay {
				continue
			}
			code = CountCustomersUnchanged
			run.Unchanged++
		case store.CustomerLinkConflict:
			code = CountCustomersLinkConflict
		case store.CustomerNameAmbiguous:
			code = CountCustomersNameAmbiguous
		case store.CustomerNameTaken:
			code = CountCustomersNameTaken
		}
		if replay && o.Detail != "" {
			continue // reported by the first pass
		}
		run.Counts.Add(code, 1)
		if o.Detail != "" {
			run.AddProblems(store.Problem{Ref: fmt.Sprintf("%s (%q)", o.Record.Ref, o.Record.Name), Reason: o.Detail})
		}
	}
}
