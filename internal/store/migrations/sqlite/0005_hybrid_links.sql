-- selfserve schema, version 5 (SQLite): hybrid identities.

-- An Entra ID user linked to the AD end user it is synced from (the same
-- person: onPremisesImmutableId = base64(objectGUID), same customer). The
-- end user stays one row, owned by AD; the link remembers the Entra side:
-- its identity in its connection, the run that last saw it (for removals
-- after a full run) and the contact values Entra last gave (to fill the end
-- user's missing email and mobile).
CREATE TABLE end_user_links (
    id            INTEGER PRIMARY KEY,
    tenant_id     BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    end_user_id   BIGINT NOT NULL REFERENCES end_users (id) ON DELETE CASCADE,
    connection_id BIGINT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    source        TEXT NOT NULL CHECK (source IN ('azure')),
    external_id   TEXT NOT NULL,
    immutable_id  TEXT NOT NULL,
    upn           TEXT NOT NULL DEFAULT '',
    email         TEXT NOT NULL DEFAULT '',
    mobile        TEXT NOT NULL DEFAULT '',
    seen_run_id   BIGINT,
    created_at    TIMESTAMP NOT NULL,
    updated_at    TIMESTAMP NOT NULL,
    UNIQUE (connection_id, external_id)
);
CREATE INDEX end_user_links_end_user ON end_user_links (end_user_id);

-- Finding the counterpart of a hybrid identity within a customer (and
-- whether the customer has any, for pages of customers that are not hybrid).
CREATE INDEX end_users_immutable ON end_users (customer_id, source, immutable_id) WHERE immutable_id <> '';

-- How many users a run joined to their hybrid counterpart.
ALTER TABLE sync_runs ADD COLUMN linked INTEGER NOT NULL DEFAULT 0;
