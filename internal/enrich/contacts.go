package enrich

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"selfserve/connectors"
	"selfserve/internal/rules"
	"selfserve/internal/store"
)

// enrichContacts enriches, customer by customer (by id), the end users of
// the customers linked to the connection's PSA, or of the run's one
// customer. All of a customer's contacts are read before anything is
// matched, since an end user matched by two contacts on different pages is
// ambiguous; each customer's writes and the run's progress then commit in
// one transaction. A resumed run goes on after the last committed customer.
func (r *runner) enrichContacts(ctx context.Context) error {
	src, ok := r.src.(connectors.ContactSource)
	if !ok {
		return fmt.Errorf("connection %q (%s): %w: it cannot list contacts", r.conn.Name, r.conn.Kind, ErrNotPSA)
	}
	customers, err := r.customersToEnrich(ctx)
	if err != nil {
		return err
	}
	if len(customers) == 0 && r.resumePosition("contacts") == 0 {
		return r.commit(ctx, func(_ *store.Store, run *store.PSARun) error {
			run.AddProblems(store.Problem{Ref: "connection " + r.conn.Name,
				Reason: fmt.Sprintf("no customer is linked to %s: import the customers first (selfserve customers import %s)", r.conn.Kind, r.conn.Name)})
			run.Resume = "contacts:0"
			return nil
		})
	}
	var lastMissing error
	for _, c := range customers {
		read, err := r.readContacts(ctx, src, c)
		if err != nil && !isMissing(err) {
			return fmt.Errorf("contacts of customer %q (%s id %s): %w", c.Name, r.conn.Kind, c.ExternalID, err)
		}
		var p plan
		if err != nil {
			lastMissing, read = err, contactsRead{}
			p = plan{counts: store.RunCounts{CountCustomersMissing: 1}}
			p.problem(c.Name, "its contacts could not be listed: %v", err)
		} else {
			users, err := r.e.Store.EndUsers(ctx, r.tenant.ID, store.EndUserFilter{CustomerID: c.ID})
			if err != nil {
				return err
			}
			p = matchContacts(c, users, read.contacts)
		}
		err = r.commit(ctx, func(tx *store.Store, run *store.PSARun) error {
			results, err := tx.ApplyContactFills(ctx, r.tenant.ID, p.fills)
			if err != nil {
				return err
			}
			refused := reconcile(c, &p, results)
			written := 0
			for _, res := range results {
				if res.Written {
					written++
				}
			}
			run.Pages += read.pages
			run.Processed += len(read.contacts) + len(read.invalid)
			run.Invalid += len(read.invalid)
			run.Updated += written
			run.Unchanged += p.counts[CountEndUsersUpToDate]
			run.Counts.Add(CountCustomersSearched, 1)
			run.Counts.Add(CountContactsRead, len(read.contacts)+len(read.invalid))
			run.Counts.Add(CountContactsInvalid, len(read.invalid))
			for code, n := range p.counts {
				run.Counts.Add(code, n)
			}
			run.AddProblems(read.invalid...)
			run.AddProblems(p.problems...)
			run.AddProblems(refused...)
			run.Resume = fmt.Sprintf("contacts:%d", c.ID)
			return nil
		})
		if err != nil {
			return fmt.Errorf("store enrichment of customer %q: %w", c.Name, err)
		}
		r.log.Debug("customer enriched", "customer", c.Name, "contacts", len(read.contacts), "fills", len(p.fills))
	}
	if n := r.run.Counts[CountCustomersMissing]; n > 0 && n == r.run.Counts[CountCustomersSearched] {
		if lastMissing == nil {
			lastMissing = connectors.ErrNotFound
		}
		return fmt.Errorf("the contacts of none of the %d customers could be listed in %s (check the connection's credentials and host, and that the customers still exist there): %w",
			n, r.conn.Kind, lastMissing)
	}
	return ctx.Err()
}

// customersToEnrich returns the run's one customer, or the customers linked
// to the connection's PSA after the resume position.
func (r *runner) customersToEnrich(ctx context.Context) ([]store.Customer, error) {
	if r.run.CustomerID == nil {
		return r.e.Store.LinkedCustomers(ctx, r.tenant.ID, string(r.conn.Kind), r.resumePosition("contacts"))
	}
	c, err := r.e.Store.Customer(ctx, r.tenant.ID, *r.run.CustomerID)
	if err != nil {
		return nil, err
	}
	if c.Source != string(r.conn.Kind) || c.ExternalID == "" {
		return nil, fmt.Errorf("customer %q is not linked to %s: %w: import the customers of %s first, or link it by hand",
			c.Name, r.conn.Kind, connectors.ErrNotFound, r.conn.Name)
	}
	if r.resumePosition("contacts") >= c.ID {
		return nil, nil // committed before an interruption
	}
	return []store.Customer{c}, nil
}

// contactsRead is all of one customer's contacts.
type contactsRead struct {
	contacts []connectors.Contact
	invalid  []store.Problem
	pages    int
}

// readContacts reads every contact of customer c.
func (r *runner) readContacts(ctx context.Context, src connectors.ContactSource, c store.Customer) (contactsRead, error) {
	var out contactsRead
	for pg, err := range src.Contacts(connectors.WithThrottleSubject(ctx, "contacts of "+c.Name), c.ExternalID, time.Time{}) {
		if err != nil {
			return out, err
		}
		out.pages++
		out.contacts = append(out.contacts, pg.Contacts...)
		for _, inv := range pg.Invalid {
			out.invalid = append(out.invalid, store.Problem{Ref: c.Name + ": " + inv.Ref, Reason: inv.Reason})
		}
	}
	return out, ctx.Err()
}

// isMissing reports whether a contact listing failed because the PSA no
// longer knows the customer (deleted, merged, or an id it cannot read).
func isMissing(err error) bool {
	return errors.Is(err, connectors.ErrNotFound)
}

// reconcile compares what was written with what the plan meant: a value a
// technician or a sync stored after the end users were read was kept by the
// store's guard. Such values are moved from the filled or replaced counts
// to CountChangedMeanwhile and reported.
func reconcile(c store.Customer, p *plan, results []store.ContactFillResult) []store.Problem {
	var problems []store.Problem
	for _, res := range results {
		in, ok := p.intents[res.EndUserID]
		if !ok {
			continue
		}
		refuse := func(field, got, gotFrom, code string) {
			p.counts.Add(code, -1)
			p.counts.Add(CountChangedMeanwhile, 1)
			problems = append(problems, store.Problem{Ref: endUserRef(c, in.user),
				Reason: fmt.Sprintf("%s not written: it changed meanwhile to %q (%s), which a PSA value does not replace", field, got, provenanceName(gotFrom))})
		}
		if in.email != "" && (!strings.EqualFold(res.Email, in.email) || res.EmailSource != string(rules.ProvenancePSA)) {
			refuse("email", res.Email, res.EmailSource, in.emailCode)
		}
		if in.mobile != "" && (res.Mobile != in.mobile || res.MobileSource != string(rules.ProvenancePSA)) {
			refuse("mobile", res.Mobile, res.MobileSource, in.mobileCode)
		}
	}
	return problems
}

func provenanceName(p string) string {
	if p == "" {
		return "no provenance"
	}
	return p
}
