-- selfserve schema, version 3 (SQLite): what the admin HTTP API adds.

-- A self-serve app client (the mobile or web app) authenticates with a token
-- of its own; only the token's SHA-256 hash is stored.
CREATE TABLE app_clients (
    id           INTEGER PRIMARY KEY,
    tenant_id    BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    token_hash   BLOB NOT NULL UNIQUE,
    prefix       TEXT NOT NULL,
    created_at   TIMESTAMP NOT NULL,
    revoked_at   TIMESTAMP,
    last_used_at TIMESTAMP,
    UNIQUE (tenant_id, name)
);

-- Signed link tokens (the welcome email's mobile confirmation) are single
-- use: the nonce of each one used is kept, and a second use collides.
CREATE TABLE used_link_tokens (
    nonce       TEXT PRIMARY KEY,
    tenant_id   BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    end_user_id BIGINT NOT NULL REFERENCES end_users (id) ON DELETE CASCADE,
    used_at     TIMESTAMP NOT NULL
);
CREATE INDEX used_link_tokens_end_user ON used_link_tokens (tenant_id, end_user_id);
