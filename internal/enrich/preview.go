package enrich

import (
	"context"
	"errors"
	"fmt"

	"selfserve/connectors"
	"selfserve/internal/store"
)

// Preview is what a customer import of a PSA connection would do with the
// PSA's first customers.
type Preview struct {
	Connection store.Connection
	// Outcomes says, per customer read, what the import would do: create
	// it, link the manual customer of the same name, rename, leave it, or
	// refuse and why (Detail).
	Outcomes []store.CustomerOutcome
	// Problems are the records an import would skip (no id, no name,
	// listed twice).
	Problems []store.Problem
	// More is set when the PSA may list more customers than were read.
	More bool
}

// errPreview rolls back a preview's transaction.
var errPreview = errors.New("preview: roll back")

// PreviewCustomers reads up to limit customers of the tenant's PSA
// connection and works out what an import would do with each, by applying
// them in a transaction that is rolled back: nothing is stored and no run
// is recorded. Connector errors are returned wrapped, as an import's are.
func (e *Enricher) PreviewCustomers(ctx context.Context, tenantID, connectionID int64, limit int) (Preview, error) {
	r := &runner{e: e, run: &store.PSARun{}, log: e.logger()}
	if err := r.open(ctx, tenantID, connectionID); err != nil {
		return Preview{}, err
	}
	defer r.src.Close()
	p := Preview{Connection: r.conn}
	src, ok := r.src.(connectors.CustomerSource)
	if !ok {
		return p, fmt.Errorf("connection %q (%s): %w: it cannot list customers", r.conn.Name, r.conn.Kind, ErrNotPSA)
	}
	var recs []store.CustomerRecord
	seen := map[string]bool{}
	for pg, err := range src.Customers(connectors.WithThrottleSubject(ctx, "customer preview of "+r.conn.Name)) {
		if err != nil {
			return p, fmt.Errorf("customer preview of connection %q: %w", r.conn.Name, err)
		}
		rs, problems := customerRecords(r.conn.Kind, pg, seen)
		recs = append(recs, rs...)
		p.Problems = append(p.Problems, problems...)
		if len(recs) >= limit {
			p.More = true
			recs = recs[:limit]
			break
		}
	}
	err := e.Store.InTx(ctx, func(tx *store.Store) error {
		out, err := tx.ApplyCustomerPage(ctx, tenantID, string(r.conn.Kind), recs)
		if err != nil {
			return err
		}
		p.Outcomes = out
		return errPreview
	})
	if !errors.Is(err, errPreview) {
		return p, err
	}
	return p, nil
}
