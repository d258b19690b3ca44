-- selfserve schema, version 13 (SQLite): on-premises agents.

-- An agent serves one connection of kind 'agent' (a customer's directory
-- read on the customer's network). It proves itself by signing each request
-- with its Ed25519 key; box_key is its X25519 key, to which the passwords of
-- its write-back jobs are sealed. A revoked agent stays for the record; at
-- most one live agent per connection.
CREATE TABLE agents (
    id            INTEGER PRIMARY KEY,
    tenant_id     BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    connection_id BIGINT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    sign_key      BLOB NOT NULL,
    box_key       BLOB NOT NULL,
    hostname      TEXT NOT NULL DEFAULT '',
    version       TEXT NOT NULL DEFAULT '',
    policy        TEXT NOT NULL DEFAULT '{}',
    enrolled_at   TIMESTAMP NOT NULL,
    last_seen_at  TIMESTAMP,
    last_sync_at  TIMESTAMP,
    revoked_at    TIMESTAMP
);
CREATE UNIQUE INDEX agents_live ON agents (connection_id) WHERE revoked_at IS NULL;

-- One-time install codes: only the hash is kept; a code is used once and
-- expires after a day.
CREATE TABLE agent_install_codes (
    id            INTEGER PRIMARY KEY,
    tenant_id     BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    connection_id BIGINT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    code_hash     BLOB NOT NULL UNIQUE,
    created_at    TIMESTAMP NOT NULL,
    expires_at    TIMESTAMP NOT NULL,
    used_at       TIMESTAMP
);

-- Jobs for agents: syncs (pages pushed back and committed by the sync
-- engine) and write-backs (reset, unlock). sealed holds a reset's new
-- password sealed to the agent's box key, dropped when the job is handed
-- over, ends, or is 5 minutes old.
CREATE TABLE agent_jobs (
    id            INTEGER PRIMARY KEY,
    tenant_id     BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    connection_id BIGINT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    agent_id      BIGINT REFERENCES agents (id) ON DELETE SET NULL,
    kind          TEXT NOT NULL CHECK (kind IN ('sync', 'reset', 'unlock')),
    run_id        BIGINT REFERENCES sync_runs (id) ON DELETE CASCADE,
    payload       TEXT NOT NULL DEFAULT '{}',
    sealed        BLOB,
    state         TEXT NOT NULL CHECK (state IN ('queued', 'leased', 'done', 'failed')),
    deliveries    INTEGER NOT NULL DEFAULT 0,
    pages         INTEGER NOT NULL DEFAULT 0,
    lease_until   TIMESTAMP,
    expires_at    TIMESTAMP NOT NULL,
    result        TEXT NOT NULL DEFAULT '',
    reason        TEXT NOT NULL DEFAULT '',
    created_at    TIMESTAMP NOT NULL,
    updated_at    TIMESTAMP NOT NULL
);
CREATE INDEX agent_jobs_queue ON agent_jobs (connection_id, state, id);

-- Nonces of signed agent requests seen within the accepted clock window:
-- a replayed request collides.
CREATE TABLE agent_nonces (
    agent_id BIGINT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    nonce    TEXT NOT NULL,
    seen_at  TIMESTAMP NOT NULL,
    PRIMARY KEY (agent_id, nonce)
);
CREATE INDEX agent_nonces_seen ON agent_nonces (seen_at);
