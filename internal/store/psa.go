package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
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

// LinkedCustomers lists the tenant's customers linked to source (a PSA
// kind) with an id above afterID, by id.
func (s *Store) LinkedCustomers(ctx context.Context, tenantID int64, source string, afterID int64) ([]Customer, error) {
	var cs []Customer
	err := s.list(ctx, &cs, `SELECT `+customerColumns+` FROM customers WHERE tenant_id = ? AND source = ? AND external_id IS NOT NULL AND id > ? ORDER BY id`,
		tenantID, source, afterID)
	if err != nil {
		return nil, fmt.Errorf("list customers linked to %s: %w", source, err)
	}
	return cs, nil
}

// CustomerRecord is a customer as a PSA lists it, ready to store.
type CustomerRecord struct {
	ExternalID string
	Name       string
	// DefaultRegion is given to a customer this record creates (from the
	// PSA's country; "" when it has none).
	DefaultRegion string
	// Ref locates the record in reports.
	Ref string
}

// CustomerAction is what ApplyCustomerPage did with a record.
type CustomerAction string

// The customer actions. The last three store nothing and say why.
const (
	// CustomerCreated: a new customer with the PSA's id.
	CustomerCreated CustomerAction = "created"
	// CustomerLinked: a customer without PSA id, of the same name (case
	// aside), got the PSA's id.
	CustomerLinked CustomerAction = "linked"
	// CustomerRenamed: the customer with the PSA's id took the PSA's new
	// name.
	CustomerRenamed CustomerAction = "renamed"
	// CustomerUnchanged: the customer with the PSA's id is up to date.
	CustomerUnchanged CustomerAction = "unchanged"
	// CustomerLinkConflict: the customer of that name is linked to another
	// PSA id (or another PSA).
	CustomerLinkConflict CustomerAction = "link_conflict"
	// CustomerNameAmbiguous: several customers have that name (case aside).
	CustomerNameAmbiguous CustomerAction = "name_ambiguous"
	// CustomerNameTaken: the name is another customer's (created or linked
	// earlier in the same import, or, for a rename, any other customer): a
	// new customer was not created, or the linked one kept its name.
	CustomerNameTaken CustomerAction = "name_taken"
)

// CustomerOutcome is what ApplyCustomerPage did with one record.
type CustomerOutcome struct {
	Record     CustomerRecord
	Action     CustomerAction
	CustomerID int64
	// Detail says why nothing was stored, for the run's problems.
	Detail string
}

// ApplyCustomerPage stores one page of a PSA's customers for the tenant, in
// the caller's transaction if there is one: a customer already linked to
// (source, external id) is updated (renamed when the PSA renamed it, case
// and spacing aside, and the name is free); otherwise the one customer of the same name (compared case
// aside) without a PSA id is linked; otherwise a customer is created with
// the tenant's time zone ("") and the record's region. A name held by a
// customer linked elsewhere, or by several customers, is reported, never
// guessed. Applying the same page again changes nothing, so a retried
// import never duplicates.
func (s *Store) ApplyCustomerPage(ctx context.Context, tenantID int64, source string, recs []CustomerRecord) ([]CustomerOutcome, error) {
	if len(recs) == 0 {
		return nil, nil
	}
	for _, rec := range recs {
		if rec.ExternalID == "" || strings.TrimSpace(rec.Name) == "" {
			return nil, fmt.Errorf("customer record %q (%s id %q): a PSA customer needs an id and a name", rec.Ref, source, rec.ExternalID)
		}
	}
	var all []Customer
	if err := s.list(ctx, &all, `SELECT `+customerColumns+` FROM customers WHERE tenant_id = ? ORDER BY id`, tenantID); err != nil {
		return nil, fmt.Errorf("read customers: %w", err)
	}
	byExternal := map[string]Customer{}
	byName := map[string][]Customer{}
	for _, c := range all {
		if c.Source == source && c.ExternalID != "" {
			byExternal[c.ExternalID] = c
		}
		byName[foldName(c.Name)] = append(byName[foldName(c.Name)], c)
	}
	// claimed holds the names this page gave a customer, so that two PSA
	// companies of the same name do not both land on one.
	claimed := map[string]string{}
	now := s.stamp()
	out := make([]CustomerOutcome, 0, len(recs))
	var creates []int // indexes in out
	for _, rec := range recs {
		o := CustomerOutcome{Record: rec}
		key := foldName(rec.Name)
		if cur, ok := byExternal[rec.ExternalID]; ok {
			o.CustomerID = cur.ID
			switch {
			case foldName(cur.Name) == key:
				// Case and spacing aside the same: a linked customer keeps
				// the spelling a technician gave it.
				o.Action = CustomerUnchanged
			case nameHeldByOther(byName[key], cur.ID) || claimedByOther(claimed, key, rec.ExternalID):
				o.Action = CustomerNameTaken
				o.Detail = fmt.Sprintf("the PSA renamed it to %q, which another customer has: it keeps the name %q", rec.Name, cur.Name)
			default:
				if _, err := s.exec(ctx, `UPDATE customers SET name = ?, updated_at = ? WHERE tenant_id = ? AND id = ?`, rec.Name, now, tenantID, cur.ID); err != nil {
					return nil, fmt.Errorf("rename customer %q to %q: %w", cur.Name, rec.Name, err)
				}
				o.Action = CustomerRenamed
			}
			claimed[key] = rec.ExternalID
			out = append(out, o)
			continue
		}
		if owner, ok := claimed[key]; ok {
			o.Action = CustomerNameTaken
			o.Detail = fmt.Sprintf("%s id %s has the same name in this import: neither is guessed; rename one in the PSA", source, owner)
			out = append(out, o)
			continue
		}
		switch same := byName[key]; {
		case len(same) > 1:
			names := make([]string, len(same))
			for i, c := range same {
				names[i] = fmt.Sprintf("%q (id %d)", c.Name, c.ID)
			}
			o.Action = CustomerNameAmbiguous
			o.Detail = fmt.Sprintf("%d customers are named like it: %s; link one by hand", len(same), strings.Join(names, ", "))
		case len(same) == 1 && same[0].ExternalID != "":
			o.Action = CustomerLinkConflict
			o.CustomerID = same[0].ID
			o.Detail = fmt.Sprintf("customer %q is already linked to %s id %s: not linked to %s id %s", same[0].Name, same[0].Source, same[0].ExternalID, source, rec.ExternalID)
		case len(same) == 1:
			res, err := s.exec(ctx, `UPDATE customers SET source = ?, external_id = ?, updated_at = ? WHERE tenant_id = ? AND id = ? AND external_id IS NULL`,
				source, rec.ExternalID, now, tenantID, same[0].ID)
			if err != nil {
				return nil, fmt.Errorf("link customer %q to %s id %s: %w", same[0].Name, source, rec.ExternalID, err)
			}
			if n, _ := res.RowsAffected(); n != 1 {
				return nil, fmt.Errorf("link customer %q to %s id %s: %w: it was linked meanwhile", same[0].Name, source, rec.ExternalID, ErrConflict)
			}
			o.Action, o.CustomerID = CustomerLinked, same[0].ID
		default:
			o.Action = CustomerCreated
			creates = append(creates, len(out))
		}
		claimed[key] = rec.ExternalID
		out = append(out, o)
	}
	if err := s.insertCustomers(ctx, tenantID, source, now, out, creates); err != nil {
		return nil, err
	}
	return out, nil
}

// insertCustomers creates the customers of out[creates] in one statement per
// batch and records their ids.
func (s *Store) insertCustomers(ctx context.Context, tenantID int64, source string, now time.Time, out []CustomerOutcome, creates []int) error {
	for start := 0; start < len(creates); start += batchSize {
		chunk := creates[start:min(start+batchSize, len(creates))]
		var b strings.Builder
		b.WriteString(`INSERT INTO customers (tenant_id, name, timezone, default_region, source, external_id, created_at, updated_at) VALUES `)
		args := make([]any, 0, 8*len(chunk))
		for i, idx := range chunk {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString("(?, ?, '', ?, ?, ?, ?, ?)")
			r := out[idx].Record
			args = append(args, tenantID, r.Name, strings.ToUpper(r.DefaultRegion), source, r.ExternalID, now, now)
		}
		b.WriteString(` RETURNING id, external_id`)
		var rows []struct {
			ID         int64  `db:"id"`
			ExternalID string `db:"external_id"`
		}
		if err := s.list(ctx, &rows, b.String(), args...); err != nil {
			if isUniqueViolation(err) {
				return fmt.Errorf("create %d customers: %w: a customer of the same name or %s id was created meanwhile", len(chunk), ErrConflict, source)
			}
			return fmt.Errorf("create %d customers: %w", len(chunk), err)
		}
		ids := make(map[string]int64, len(rows))
		for _, r := range rows {
			ids[r.ExternalID] = r.ID
		}
		for _, idx := range chunk {
			out[idx].CustomerID = ids[out[idx].Record.ExternalID]
		}
	}
	return nil
}

// foldName is the form customer names are compared in: case and surrounding
// or repeated spaces aside.
func foldName(name string) string {
	return strings.ToLower(strings.Join(strings.Fields(name), " "))
}

func nameHeldByOther(same []Customer, id int64) bool {
	for _, c := range same {
		if c.ID != id {
			return true
		}
	}
	return false
}

func claimedByOther(claimed map[string]string, key, externalID string) bool {
	owner, ok := claimed[key]
	return ok && owner != externalID
}

// ContactFill asks to fill an end user's email and/or mobile with values from
// a PSA contact (nil: leave the field alone). Values are already
// normalised.
type ContactFill struct {
	EndUserID int64
	Email     *string
	Mobile    *string
}

// ContactFillResult is an end user's email and mobile after ApplyContactFills.
type ContactFillResult struct {
	EndUserID    int64
	Email        string
	EmailSource  string
	Mobile       string
	MobileSource string
	// Written is false when nothing was written: both fields hold values a
	// PSA may not replace (a directory, manual or end-user value, typed or
	// synced since the caller read them) or the values already.
	Written bool
}

// ApplyContactFills writes PSA values into the tenant's end users, in the
// caller's transaction if there is one, one statement per batch. The
// statement itself applies the provenance rule (rules.MergeContactField for
// a PSA value): a field is written only while it is empty or holds an
// earlier PSA value, so a value a technician or a sync stored after the
// caller read the end user is never overwritten. It returns each end
// user's fields as they are afterwards.
func (s *Store) ApplyContactFills(ctx context.Context, tenantID int64, fills []ContactFill) ([]ContactFillResult, error) {
	results := make([]ContactFillResult, 0, len(fills))
	now := s.stamp()
	const emailWritable = `(end_users.email = '' OR end_users.email_source IN ('psa', ''))`
	const mobileWritable = `(end_users.mobile = '' OR end_users.mobile_source IN ('psa', ''))`
	for start := 0; start < len(fills); start += batchSize {
		chunk := fills[start:min(start+batchSize, len(fills))]
		var values strings.Builder
		args := []any{now}
		for i, f := range chunk {
			if i > 0 {
				values.WriteByte(',')
			}
			values.WriteString("(CAST(? AS BIGINT), CAST(? AS TEXT), CAST(? AS TEXT))")
			args = append(args, f.EndUserID, nullableString(f.Email), nullableString(f.Mobile))
		}
		args = append(args, tenantID)
		q := `UPDATE end_users SET
			email = CASE WHEN v.column2 IS NOT NULL AND ` + emailWritable + ` THEN v.column2 ELSE end_users.email END,
			email_source = CASE WHEN v.column2 IS NOT NULL AND ` + emailWritable + ` THEN 'psa' ELSE end_users.email_source END,
			mobile = CASE WHEN v.column3 IS NOT NULL AND ` + mobileWritable + ` THEN v.column3 ELSE end_users.mobile END,
			mobile_source = CASE WHEN v.column3 IS NOT NULL AND ` + mobileWritable + ` THEN 'psa' ELSE end_users.mobile_source END,
			updated_at = ?
			FROM (VALUES ` + values.String() + `) AS v
			WHERE end_users.tenant_id = ? AND end_users.id = v.column1
			AND ((v.column2 IS NOT NULL AND ` + emailWritable + ` AND (end_users.email <> v.column2 OR end_users.email_source <> 'psa'))
			  OR (v.column3 IS NOT NULL AND ` + mobileWritable + ` AND (end_users.mobile <> v.column3 OR end_users.mobile_source <> 'psa')))
			RETURNING end_users.id, end_users.email, end_users.email_source, end_users.mobile, end_users.mobile_source`
		var rows []struct {
			ID           int64  `db:"id"`
			Email        string `db:"email"`
			EmailSource  string `db:"email_source"`
			Mobile       string `db:"mobile"`
			MobileSource string `db:"mobile_source"`
		}
		if err := s.list(ctx, &rows, q, args...); err != nil {
			return nil, fmt.Errorf("fill %d end users from PSA contacts: %w", len(chunk), err)
		}
		written := make(map[int64]bool, len(rows))
		for _, r := range rows {
			written[r.ID] = true
			results = append(results, ContactFillResult{EndUserID: r.ID, Email: r.Email, EmailSource: r.EmailSource, Mobile: r.Mobile, MobileSource: r.MobileSource, Written: true})
		}
		for _, f := range chunk {
			if written[f.EndUserID] {
				continue
			}
			u, err := s.EndUser(ctx, tenantID, f.EndUserID)
			if errors.Is(err, ErrNotFound) {
				continue // deleted meanwhile
			}
			if err != nil {
				return nil, err
			}
			results = append(results, ContactFillResult{EndUserID: u.ID, Email: u.Email, EmailSource: string(u.EmailSource), Mobile: u.Mobile, MobileSource: string(u.MobileSource)})
		}
	}
	return results, nil
}

func nullableString(s *string) any {
	if s == nil {
		return nil
	}
	return *s
}
