package worker

import (
	"context"

	"selfserve/internal/enrich"
	"selfserve/internal/store"
)

// PSAImporter runs PSA runs with the enrich package: a customer import, a
// contact enrichment, or both in turn, as the run's kind says (a run
// recorded without a kind does both).
type PSAImporter struct {
	Enricher *enrich.Enricher
}

var _ CustomerImporter = (*PSAImporter)(nil)

// ImportCustomers implements CustomerImporter.
func (p *PSAImporter) ImportCustomers(ctx context.Context, req CustomerImportRequest) (store.SyncRun, error) {
	run, err := p.Enricher.Store.PSARun(ctx, req.TenantID, req.RunID)
	if err != nil {
		return store.SyncRun{}, err
	}
	e := *p.Enricher
	e.KeepRunOnInterrupt = req.KeepRunOnCancel
	if req.Logger != nil {
		e.Logger = req.Logger
	}
	var done store.PSARun
	switch run.Kind {
	case store.RunKindCustomers:
		done, err = e.ImportCustomers(ctx, req.TenantID, req.ConnectionID, req.RunID)
	case store.RunKindContacts:
		done, err = e.EnrichContacts(ctx, req.TenantID, req.ConnectionID, req.RunID)
	default:
		done, err = e.Sync(ctx, req.TenantID, req.ConnectionID, req.RunID)
	}
	return done.SyncRun, err
}
