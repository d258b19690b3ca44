package main

import (
	"context"
	"errors"
	"fmt"

	"selfserve/internal/enrich"
	"selfserve/internal/store"
)

// runCustomersImport is `selfserve customers import CONNECTION [--tenant
// NAME]`: the customer import of a PSA connection, run in this process.
func runCustomersImport(ctx context.Context, c *cli, args []string) error {
	fs := flags(c, "customers import", "CONNECTION [--tenant NAME]\n\nImports the customers of a PSA connection (itglue, hudu, connectwise) in this process and prints the run.")
	tenantName := fs.String("tenant", "", "tenant `name` (needed when several tenants have a connection of that name)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: name one PSA connection", errUsage)
	}
	return c.runPSA(ctx, *tenantName, fs.Arg(0), "", store.RunKindCustomers)
}

// runEnrich is `selfserve enrich CONNECTION [--customer NAME] [--tenant
// NAME]`: the contact enrichment of a PSA connection, run in this process.
func runEnrich(ctx context.Context, c *cli, args []string) error {
	fs := flags(c, "enrich", "CONNECTION [--customer NAME] [--tenant NAME]\n\nFills the missing email and mobile of the end users of the customers linked to a PSA connection from its contacts, in this process, and prints the run.")
	tenantName := fs.String("tenant", "", "tenant `name` (needed when several tenants have a connection of that name)")
	customerName := fs.String("customer", "", "only this customer (`name`; default: every customer linked to the connection's PSA)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: name one PSA connection", errUsage)
	}
	return c.runPSA(ctx, *tenantName, fs.Arg(0), *customerName, store.RunKindContacts)
}

// runPSA records a run of kind of the named connection, runs it inline and
// prints it.
func (c *cli) runPSA(ctx context.Context, tenantName, connectionName, customerName string, kind store.RunKind) error {
	conn, err := c.findConnection(ctx, tenantName, connectionName)
	if err != nil {
		return err
	}
	var customerID *int64
	if customerName != "" {
		cu, err := c.st.CustomerByName(ctx, conn.TenantID, customerName)
		if err != nil {
			return err
		}
		customerID = &cu.ID
	}
	box, err := c.secrets()
	if err != nil {
		return err
	}
	if ctx, err = c.inline(ctx); err != nil {
		return err
	}
	// A run stopped by Ctrl-C or by throttling beyond throttle_wait_max is
	// kept, for the next command to resume.
	en := &enrich.Enricher{Store: c.st, Registry: c.registry(), Secrets: box, Logger: c.log(), KeepRunOnInterrupt: true}
	run, err := c.resumablePSARun(ctx, conn, kind, customerID)
	if err != nil {
		return err
	}
	if run.ID == 0 {
		if run, err = en.Start(ctx, conn.TenantID, conn.ID, kind, customerID, "cli"); err != nil {
			return err
		}
	}
	if kind == store.RunKindCustomers {
		run, err = en.ImportCustomers(ctx, conn.TenantID, conn.ID, run.ID)
	} else {
		run, err = en.EnrichContacts(ctx, conn.TenantID, conn.ID, run.ID)
	}
	printPSARun(c, conn.Name, run)
	if err != nil && run.Status == store.RunRunning {
		fmt.Fprintf(c.stdout, "  stopped after %d pages; the same command resumes this run\n", run.Pages)
	}
	return err
}

// resumablePSARun returns the connection's run of kind (for the same
// customer) that its process left running without a live holder (Ctrl-C,
// throttling beyond throttle_wait_max, a killed process), for this command
// to resume; a zero run when there is none.
func (c *cli) resumablePSARun(ctx context.Context, conn store.Connection, kind store.RunKind, customerID *int64) (store.PSARun, error) {
	active, err := c.st.ActiveRun(ctx, conn.TenantID, conn.ID)
	if errors.Is(err, store.ErrNotFound) {
		return store.PSARun{}, nil
	}
	if err != nil {
		return store.PSARun{}, err
	}
	if active.Status != store.RunRunning || !active.Claimable(c.st.Now()) {
		return store.PSARun{}, nil
	}
	run, err := c.st.PSARun(ctx, conn.TenantID, active.ID)
	if err != nil {
		return store.PSARun{}, err
	}
	sameCustomer := (run.CustomerID == nil) == (customerID == nil) && (customerID == nil || *run.CustomerID == *customerID)
	if run.Kind != kind || !sameCustomer {
		return store.PSARun{}, nil
	}
	fmt.Fprintf(c.stdout, "resuming run %d of %s, which stopped after %d pages\n", run.ID, conn.Name, run.Pages)
	return run, nil
}

// printPSARun prints a PSA run: its state, its counts in words, its
// problems and its failure reason.
func printPSARun(c *cli, name string, r store.PSARun) {
	what := map[store.RunKind]string{store.RunKindCustomers: "customer import", store.RunKindContacts: "contact enrichment", store.RunKindPSA: "PSA sync"}[r.Kind]
	fmt.Fprintf(c.stdout, "run %d of %s (%s): %s (%d pages, %d ms)\n", r.ID, name, what, r.Status, r.Pages, r.DurationMS)
	for _, line := range enrich.Lines(r.Counts) {
		fmt.Fprintf(c.stdout, "  %s\n", line)
	}
	for _, p := range r.Problems() {
		fmt.Fprintf(c.stdout, "  problem: %s: %s\n", p.Ref, p.Reason)
	}
	if r.Error != "" {
		fmt.Fprintf(c.stdout, "  %s\n", r.Error)
	}
}
