package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"selfserve/connectors"
)

// CreateConnection creates a connection of c.TenantID. A connection of the
// same name is ErrConflict.
func (s *Store) CreateConnection(ctx context.Context, c Connection) (Connection, error) {
	if len(c.Settings) == 0 {
		c.Settings = json.RawMessage(`{}`)
	}
	now := s.stamp()
	id, err := s.insertID(ctx, `INSERT INTO connections (tenant_id, customer_id, name, kind, settings, secrets, enable_self_serve, schedule_seconds, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.TenantID, c.CustomerID, c.Name, c.Kind, string(c.Settings), c.SealedSecrets, c.EnableSelfServe, c.ScheduleSeconds, now, now)
	if isUniqueViolation(err) {
		return Connection{}, fmt.Errorf("connection %q: %w: a connection of that name exists already", c.Name, ErrConflict)
	}
	if err != nil {
		return Connection{}, fmt.Errorf("create connection %q: %w", c.Name, err)
	}
	return s.Connection(ctx, c.TenantID, id)
}

// UpdateConnection writes the settings, secrets, switch default and schedule
// of the tenant's connection c.ID (its name, kind and customer stay). With
// keepSecrets the stored secrets are kept whatever c.SealedSecrets holds.
// When the settings change the incremental cursor is dropped: the next run
// starts over. It returns the connection before and after.
func (s *Store) UpdateConnection(ctx context.Context, c Connection, keepSecrets bool) (before, after Connection, err error) {
	if len(c.Settings) == 0 {
		c.Settings = json.RawMessage(`{}`)
	}
	err = s.InTx(ctx, func(tx *Store) error {
		before, err = tx.Connection(ctx, c.TenantID, c.ID)
		if err != nil {
			return err
		}
		secrets := c.SealedSecrets
		if keepSecrets {
			secrets = before.SealedSecrets
		}
		cursor := before.Cursor
		if !connectors.SettingsEqual(before.Settings, c.Settings) {
			cursor = ""
		}
		if _, err := tx.exec(ctx, `UPDATE connections SET settings = ?, secrets = ?, enable_self_serve = ?, schedule_seconds = ?, cursor = ?, updated_at = ? WHERE tenant_id = ? AND id = ?`,
			string(c.Settings), secrets, c.EnableSelfServe, c.ScheduleSeconds, cursor, tx.stamp(), c.TenantID, c.ID); err != nil {
			return fmt.Errorf("update connection %d: %w", c.ID, err)
		}
		after, err = tx.Connection(ctx, c.TenantID, c.ID)
		return err
	})
	return before, after, err
}

// CountConnectionUsers counts the connection's end users still present in
// their source (a run's expected size, for progress).
func (s *Store) CountConnectionUsers(ctx context.Context, tenantID, connectionID int64) (int, error) {
	var n int
	err := s.get(ctx, &n, `SELECT COUNT(*) FROM end_users WHERE tenant_id = ? AND connection_id = ? AND removed_at IS NULL`, tenantID, connectionID)
	if err != nil {
		return 0, fmt.Errorf("count end users of connection %d: %w", connectionID, err)
	}
	return n, nil
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

// SetConnectionCursor stores where the connection's next incremental run
// starts.
func (s *Store) SetConnectionCursor(ctx context.Context, tenantID, connectionID int64, cursor string) error {
	res, err := s.exec(ctx, `UPDATE connections SET cursor = ? WHERE tenant_id = ? AND id = ?`, cursor, tenantID, connectionID)
	if err != nil {
		return fmt.Errorf("save cursor of connection %d: %w", connectionID, err)
	}
	return mustAffect(res, "connection", connectionID)
}
