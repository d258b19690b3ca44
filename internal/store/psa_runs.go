package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// RunKind says what a sync run imports.
type RunKind string

// The run kinds. A PSA connection's run is a customer import, a contact
// enrichment, or both in turn (psa); a directory connection's run imports
// users.
const (
	RunKindUsers     RunKind = "users"
	RunKindCustomers RunKind = "customers"
	RunKindContacts  RunKind = "contacts"
	RunKindPSA       RunKind = "psa"
)

// Valid reports whether k is a known run kind.
func (k RunKind) Valid() bool {
	return k == RunKindUsers || k == RunKindCustomers || k == RunKindContacts || k == RunKindPSA
}

// RunCounts are a run's counts per reason, keyed by a stable reason code
// ("mobiles_filled", "contacts_ambiguous").
type RunCounts map[string]int

// Add adds n to the count of reason.
func (c RunCounts) Add(reason string, n int) {
	if n != 0 {
		c[reason] += n
	}
}

// PSARun is a run of a PSA connection: the sync_runs row with its kind, the
// customer an enrichment is narrowed to, its per-reason counts and their
// summary in words.
type PSARun struct {
	SyncRun
	Kind RunKind `db:"kind" json:"kind"`
	// CustomerID narrows an enrichment run to one customer (nil: all the
	// customers linked to the connection's PSA).
	CustomerID *int64 `db:"customer_id" json:"customer_id,omitempty"`
	// Counts are the per-reason counts; CountsJSON is how they are stored.
	Counts     RunCounts `db:"-" json:"counts"`
	CountsJSON string    `db:"counts" json:"-"`
	// Summary says the counts in words, for technicians.
	Summary string `db:"summary" json:"summary"`
}

const psaRunColumns = runColumns + `, kind, customer_id, counts, summary`

func (r *PSARun) decode() {
	r.Counts = RunCounts{}
	_ = json.Unmarshal([]byte(r.CountsJSON), &r.Counts)
}

func (r *PSARun) encode() string {
	if len(r.Counts) == 0 {
		return "{}"
	}
	b, _ := json.Marshal(r.Counts)
	return string(b)
}

// CreatePSARun records a new run of kind of the tenant's connection, with
// CreateRun's rules (one queued or running run per connection; staleAfter).
// customerID, if not nil, narrows an enrichment to one customer of the
// tenant.
func (s *Store) CreatePSARun(ctx context.Context, tenantID, connectionID int64, kind RunKind, customerID *int64, trigger string, status RunStatus, staleAfter time.Duration) (PSARun, error) {
	if !kind.Valid() {
		return PSARun{}, fmt.Errorf("run kind %q is not one of users, customers, contacts, psa", kind)
	}
	var run PSARun
	err := s.InTx(ctx, func(tx *Store) error {
		if customerID != nil {
			if _, err := tx.Customer(ctx, tenantID, *customerID); err != nil {
				return err
			}
		}
		base, err := tx.CreateRun(ctx, tenantID, connectionID, ModeFull, trigger, status, false, staleAfter)
		if err != nil {
			return err
		}
		if _, err := tx.exec(ctx, `UPDATE sync_runs SET kind = ?, customer_id = ? WHERE tenant_id = ? AND id = ?`, kind, customerID, tenantID, base.ID); err != nil {
			return fmt.Errorf("create run: %w", err)
		}
		run, err = tx.PSARun(ctx, tenantID, base.ID)
		return err
	})
	return run, err
}

// PSARun returns the tenant's run with id, with its kind and counts.
func (s *Store) PSARun(ctx context.Context, tenantID, id int64) (PSARun, error) {
	var r PSARun
	err := s.get(ctx, &r, `SELECT `+psaRunColumns+` FROM sync_runs WHERE tenant_id = ? AND id = ?`, tenantID, id)
	if err != nil {
		return r, notFound(err, "run", id)
	}
	r.decode()
	return r, nil
}

// StartPSARun moves a queued run (or a running one being resumed) to running
// as StartRun does, and makes it a run of kind. A run recorded without a
// kind (as "users", the default of runs created by CreateRun) takes kind; a
// run of another PSA kind is ErrConflict.
func (s *Store) StartPSARun(ctx context.Context, tenantID, id int64, kind RunKind) (PSARun, error) {
	var run PSARun
	err := s.InTx(ctx, func(tx *Store) error {
		cur, err := tx.PSARun(ctx, tenantID, id)
		if err != nil {
			return err
		}
		if cur.Kind != kind && cur.Kind != RunKindUsers {
			return fmt.Errorf("run %d is a %s run, not a %s run: %w", id, cur.Kind, kind, ErrConflict)
		}
		if _, err := tx.StartRun(ctx, tenantID, id); err != nil {
			return err
		}
		if cur.Kind != kind {
			if _, err := tx.exec(ctx, `UPDATE sync_runs SET kind = ? WHERE tenant_id = ? AND id = ?`, kind, tenantID, id); err != nil {
				return fmt.Errorf("start run %d: %w", id, err)
			}
		}
		run, err = tx.PSARun(ctx, tenantID, id)
		return err
	})
	return run, err
}

// SavePSARunProgress writes what SaveRunProgress writes plus the counts and
// summary. Call it in the transaction that stored the page.
func (s *Store) SavePSARunProgress(ctx context.Context, run *PSARun) error {
	if err := s.SaveRunProgress(ctx, &run.SyncRun); err != nil {
		return err
	}
	run.CountsJSON = run.encode()
	if _, err := s.exec(ctx, `UPDATE sync_runs SET counts = ?, summary = ? WHERE tenant_id = ? AND id = ?`,
		run.CountsJSON, run.Summary, run.TenantID, run.ID); err != nil {
		return fmt.Errorf("save progress of run %d: %w", run.ID, err)
	}
	return nil
}

// FinishPSARun writes the run's final state, counts and summary.
func (s *Store) FinishPSARun(ctx context.Context, run *PSARun) error {
	return s.InTx(ctx, func(tx *Store) error {
		if err := tx.FinishRun(ctx, &run.SyncRun); err != nil {
			return err
		}
		run.CountsJSON = run.encode()
		if _, err := tx.exec(ctx, `UPDATE sync_runs SET counts = ?, summary = ? WHERE tenant_id = ? AND id = ?`,
			run.CountsJSON, run.Summary, run.TenantID, run.ID); err != nil {
			return fmt.Errorf("finish run %d: %w", run.ID, err)
		}
		return nil
	})
}
