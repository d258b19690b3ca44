package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"selfserve/connectors"
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

const connectionColumns = `id, tenant_id, customer_id, name, kind, settings, secrets, enable_self_serve, schedule_seconds, cursor, created_at, updated_at`

// UpsertConnection creates the tenant's connection named c.Name or updates
// it. When c.SealedSecrets is nil the stored secrets are kept. It reports
// whether anything changed; sameSecrets tells it the caller found the new
// secrets equal to the stored ones (sealed values differ on every seal).
func (s *Store) UpsertConnection(ctx context.Context, c Connection, sameSecrets bool) (Connection, bool, error) {
	if len(c.Settings) == 0 {
		c.Settings = json.RawMessage(`{}`)
	}
	var out Connection
	changed := false
	err := s.InTx(ctx, func(tx *Store) error {
		cur, err := tx.ConnectionByName(ctx, c.TenantID, c.Name)
		now := tx.stamp()
		switch {
		case errors.Is(err, ErrNotFound):
			c.ID, err = tx.insertID(ctx, `INSERT INTO connections (tenant_id, customer_id, name, kind, settings, secrets, enable_self_serve, schedule_seconds, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				c.TenantID, c.CustomerID, c.Name, c.Kind, string(c.Settings), c.SealedSecrets, c.EnableSelfServe, c.ScheduleSeconds, now, now)
			if err != nil {
				return fmt.Errorf("create connection %q: %w", c.Name, err)
			}
			c.CreatedAt, c.UpdatedAt = now, now
			out, changed = c, true
			return nil
		case err != nil:
			return err
		}
		secrets := c.SealedSecrets
		if secrets == nil || sameSecrets {
			secrets = cur.SealedSecrets
		}
		same := equalInt64Ptr(cur.CustomerID, c.CustomerID) && cur.Kind == c.Kind && connectors.SettingsEqual(cur.Settings, c.Settings) &&
			cur.EnableSelfServe == c.EnableSelfServe && cur.ScheduleSeconds == c.ScheduleSeconds && (c.SealedSecrets == nil || sameSecrets)
		out = cur
		if same {
			return nil
		}
		cursor := cur.Cursor
		if cur.Kind != c.Kind || !connectors.SettingsEqual(cur.Settings, c.Settings) {
			cursor = "" // another source or scope: the next run starts over
		}
		if _, err := tx.exec(ctx, `UPDATE connections SET customer_id = ?, kind = ?, settings = ?, secrets = ?, enable_self_serve = ?, schedule_seconds = ?, cursor = ?, updated_at = ? WHERE tenant_id = ? AND id = ?`,
			c.CustomerID, c.Kind, string(c.Settings), secrets, c.EnableSelfServe, c.ScheduleSeconds, cursor, now, c.TenantID, cur.ID); err != nil {
			return fmt.Errorf("update connection %q: %w", c.Name, err)
		}
		c.ID, c.CreatedAt, c.UpdatedAt, c.SealedSecrets, c.Cursor = cur.ID, cur.CreatedAt, now, secrets, cursor
		out, changed = c, true
		return nil
	})
	return out, changed, err
}

func equalInt64Ptr(a, b *int64) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// connectionRow is how a connection comes out of the database (settings as
// text).
type connectionRow struct {
	Connection
	SettingsText string `db:"settings"`
}

func (r connectionRow) conn() Connection {
	c := r.Connection
	c.Settings = json.RawMessage(r.SettingsText)
	return c
}

// Connection returns the tenant's connection with id.
func (s *Store) Connection(ctx context.Context, tenantID, id int64) (Connection, error) {
	var r connectionRow
	err := s.get(ctx, &r, `SELECT `+connectionColumns+` FROM connections WHERE tenant_id = ? AND id = ?`, tenantID, id)
	if err != nil {
		return Connection{}, notFound(err, "connection", id)
	}
	return r.conn(), nil
}

// ConnectionByName returns the tenant's connection with name.
func (s *Store) ConnectionByName(ctx context.Context, tenantID int64, name string) (Connection, error) {
	var r connectionRow
	err := s.get(ctx, &r, `SELECT `+connectionColumns+` FROM connections WHERE tenant_id = ? AND name = ?`, tenantID, name)
	if err != nil {
		return Connection{}, notFound(err, "connection", fmt.Sprintf("%q", name))
	}
	return r.conn(), nil
}

// Connections lists the tenant's connections by name.
func (s *Store) Connections(ctx context.Context, tenantID int64) ([]Connection, error) {
	var rows []connectionRow
	if err := s.list(ctx, &rows, `SELECT `+connectionColumns+` FROM connections WHERE tenant_id = ? ORDER BY name`, tenantID); err != nil {
		return nil, err
	}
	out := make([]Connection, len(rows))
	for i, r := range rows {
		out[i] = r.conn()
	}
	return out, nil
}

// AllConnections lists every tenant's connections (the scheduler's view).
func (s *Store) AllConnections(ctx context.Context) ([]Connection, error) {
	var rows []connectionRow
	if err := s.list(ctx, &rows, `SELECT `+connectionColumns+` FROM connections ORDER BY tenant_id, name`); err != nil {
		return nil, err
	}
	out := make([]Connection, len(rows))
	for i, r := range rows {
		out[i] = r.conn()
	}
	return out, nil
}
