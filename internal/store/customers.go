package store

import (
	"context"
	"errors"
	"fmt"
)

const customerColumns = `id, tenant_id, name, timezone, default_region, source, COALESCE(external_id, '') AS external_id, created_at, updated_at`

// UpsertCustomer creates the tenant's customer named c.Name or updates its
// time zone and region. It reports whether anything changed.
func (s *Store) UpsertCustomer(ctx context.Context, c Customer) (Customer, bool, error) {
	if c.Source == "" {
		c.Source = "manual"
	}
	var out Customer
	changed := false
	err := s.InTx(ctx, func(tx *Store) error {
		cur, err := tx.CustomerByName(ctx, c.TenantID, c.Name)
		now := tx.stamp()
		switch {
		case errors.Is(err, ErrNotFound):
			c.ID, err = tx.insertID(ctx, `INSERT INTO customers (tenant_id, name, timezone, default_region, source, external_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
				c.TenantID, c.Name, c.TimeZone, c.DefaultRegion, c.Source, nullString(c.ExternalID), now, now)
			if isUniqueViolation(err) {
				return fmt.Errorf("customer %q: %w: another customer has %s id %q", c.Name, ErrConflict, c.Source, c.ExternalID)
			}
			if err != nil {
				return fmt.Errorf("create customer %q: %w", c.Name, err)
			}
			c.CreatedAt, c.UpdatedAt = now, now
			out, changed = c, true
			return nil
		case err != nil:
			return err
		}
		out = cur
		if cur.TimeZone == c.TimeZone && cur.DefaultRegion == c.DefaultRegion {
			return nil
		}
		if _, err := tx.exec(ctx, `UPDATE customers SET timezone = ?, default_region = ?, updated_at = ? WHERE tenant_id = ? AND id = ?`,
			c.TimeZone, c.DefaultRegion, now, c.TenantID, cur.ID); err != nil {
			return fmt.Errorf("update customer %q: %w", c.Name, err)
		}
		out.TimeZone, out.DefaultRegion, out.UpdatedAt, changed = c.TimeZone, c.DefaultRegion, now, true
		return nil
	})
	return out, changed, err
}

// Customer returns the tenant's customer with id.
func (s *Store) Customer(ctx context.Context, tenantID, id int64) (Customer, error) {
	var c Customer
	err := s.get(ctx, &c, `SELECT `+customerColumns+` FROM customers WHERE tenant_id = ? AND id = ?`, tenantID, id)
	if err != nil {
		return c, notFound(err, "customer", id)
	}
	return c, nil
}

// CustomerByName returns the tenant's customer with name.
func (s *Store) CustomerByName(ctx context.Context, tenantID int64, name string) (Customer, error) {
	var c Customer
	err := s.get(ctx, &c, `SELECT `+customerColumns+` FROM customers WHERE tenant_id = ? AND name = ?`, tenantID, name)
	if err != nil {
		return c, notFound(err, "customer", fmt.Sprintf("%q", name))
	}
	return c, nil
}

// Customers lists the tenant's customers by name.
func (s *Store) Customers(ctx context.Context, tenantID int64) ([]Customer, error) {
	var cs []Customer
	err := s.list(ctx, &cs, `SELECT `+customerColumns+` FROM customers WHERE tenant_id = ? ORDER BY name`, tenantID)
	return cs, err
}

// CreateCustomer creates a customer of c.TenantID by hand (source "manual"
// unless c.Source says otherwise). A customer of the same name, or with the
// same PSA id, is ErrConflict.
func (s *Store) CreateCustomer(ctx context.Context, c Customer) (Customer, error) {
	if c.Source == "" {
		c.Source = "manual"
	}
	now := s.stamp()
	id, err := s.insertID(ctx, `INSERT INTO customers (tenant_id, name, timezone, default_region, source, external_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		c.TenantID, c.Name, c.TimeZone, c.DefaultRegion, c.Source, nullString(c.ExternalID), now, now)
	if isUniqueViolation(err) {
		return Customer{}, fmt.Errorf("customer %q: %w: a customer of that name (or PSA id) exists already", c.Name, ErrConflict)
	}
	if err != nil {
		return Customer{}, fmt.Errorf("create customer %q: %w", c.Name, err)
	}
	return s.Customer(ctx, c.TenantID, id)
}

// LinkCustomer records that the tenant's manual customer id is the PSA's
// customer externalID of kind source ("itglue", "hudu", "connectwise"), so
// that later imports from that PSA update it instead of duplicating it. A
// customer already imported from or linked to a PSA, or another customer
// holding that PSA id, is ErrConflict. It returns the customer before and
// after.
func (s *Store) LinkCustomer(ctx context.Context, tenantID, id int64, source, externalID string) (before, after Customer, err error) {
	err = s.InTx(ctx, func(tx *Store) error {
		before, err = tx.Customer(ctx, tenantID, id)
		if err != nil {
			return err
		}
		if before.ExternalID != "" {
			return fmt.Errorf("customer %d is already linked to %s id %q: %w", id, before.Source, before.ExternalID, ErrConflict)
		}
		_, err = tx.exec(ctx, `UPDATE customers SET source = ?, external_id = ?, updated_at = ? WHERE tenant_id = ? AND id = ?`,
			source, externalID, tx.stamp(), tenantID, id)
		if isUniqueViolation(err) {
			return fmt.Errorf("%s id %q belongs to another customer of this tenant: %w", source, externalID, ErrConflict)
		}
		if err != nil {
			return fmt.Errorf("link customer %d: %w", id, err)
		}
		after, err = tx.Customer(ctx, tenantID, id)
		return err
	})
	return before, after, err
}

// CustomerCounts are a customer's end-user counts.
type CustomerCounts struct {
	CustomerID int64 `db:"customer_id"`
	EndUsers   int   `db:"end_users"`
	// UserActive counts the end users rules.Active serves (activeSQL).
	UserActive int `db:"user_active"`
	Incomplete int `db:"incomplete"`
	Locked     int `db:"locked"`
}

// CustomerCounts counts each customer's end users still in their source.
func (s *Store) CustomerCounts(ctx context.Context, tenantID int64) (map[int64]CustomerCounts, error) {
	var rows []CustomerCounts
	err := s.list(ctx, &rows, `SELECT customer_id, COUNT(*) AS end_users,
		SUM(CASE WHEN `+activeSQL+` THEN 1 ELSE 0 END) AS user_active,
		SUM(CASE WHEN `+StatusSQL+` = 'incomplete' THEN 1 ELSE 0 END) AS incomplete,
		SUM(CASE WHEN locked_out THEN 1 ELSE 0 END) AS locked
		FROM end_users WHERE tenant_id = ? AND removed_at IS NULL GROUP BY customer_id`, append(activeArgs(tenantID), tenantID)...)
	if err != nil {
		return nil, fmt.Errorf("customer counts: %w", err)
	}
	out := make(map[int64]CustomerCounts, len(rows))
	for _, r := range rows {
		out[r.CustomerID] = r
	}
	return out, nil
}
