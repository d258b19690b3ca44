package store

import (
	"context"
	"fmt"
	"strings"
	"time"
)

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
