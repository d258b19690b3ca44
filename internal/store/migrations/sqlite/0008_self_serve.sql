-- selfserve schema, version 8 (SQLite): the end users' self-serve flow.

-- How end users prove who they are: a code by SMS, or by SMS and by email.
ALTER TABLE tenants ADD COLUMN verification TEXT NOT NULL DEFAULT 'sms' CHECK (verification IN ('sms', 'sms+email'));

-- The notices told after a self-serve reset or unlock. SQLite cannot change
-- a CHECK constraint: the ledger is rebuilt with the new kinds.
CREATE TABLE notices_v8 (
    id          INTEGER PRIMARY KEY,
    tenant_id   BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    end_user_id BIGINT NOT NULL REFERENCES end_users (id) ON DELETE CASCADE,
    kind        TEXT NOT NULL CHECK (kind IN ('expiry_reminder', 'expiry_day', 'lockout', 'welcome', 'password_changed', 'account_unlocked')),
    occasion    TEXT NOT NULL,
    channel     TEXT NOT NULL CHECK (channel IN ('email', 'sms')),
    status      TEXT NOT NULL CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'skipped')),
    attempts    INTEGER NOT NULL DEFAULT 0,
    error       TEXT NOT NULL DEFAULT '',
    created_at  TIMESTAMP NOT NULL,
    updated_at  TIMESTAMP NOT NULL,
    sent_at     TIMESTAMP,
    UNIQUE (end_user_id, kind, occasion, channel)
);
INSERT INTO notices_v8 SELECT id, tenant_id, end_user_id, kind, occasion, channel, status, attempts, error, created_at, updated_at, sent_at FROM notices;
DROP TABLE notices;
ALTER TABLE notices_v8 RENAME TO notices;
CREATE INDEX notices_status ON notices (status, updated_at);

-- A challenge: codes sent to an end user (or to nobody: an unknown or
-- inactive login gets a decoy with no end user, which behaves the same).
-- Codes are kept only as HMACs under a key derived from the encryption key;
-- the grant a verified challenge yields only as its SHA-256.
CREATE TABLE challenges (
    id               TEXT PRIMARY KEY,
    tenant_id        BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    end_user_id      BIGINT REFERENCES end_users (id) ON DELETE CASCADE,
    purpose          TEXT NOT NULL CHECK (purpose IN ('reset', 'unlock', 'enrol')),
    factors          TEXT NOT NULL,
    sms_code_hash    BLOB,
    email_code_hash  BLOB,
    sms_verified_at  TIMESTAMP,
    email_verified_at TIMESTAMP,
    mobile           TEXT NOT NULL DEFAULT '',
    link_nonce       TEXT NOT NULL DEFAULT '',
    attempts         INTEGER NOT NULL DEFAULT 0,
    expires_at       TIMESTAMP NOT NULL,
    voided_at        TIMESTAMP,
    grant_hash       BLOB UNIQUE,
    grant_expires_at TIMESTAMP,
    grant_used_at    TIMESTAMP,
    created_at       TIMESTAMP NOT NULL
);
CREATE INDEX challenges_end_user ON challenges (tenant_id, end_user_id);
CREATE INDEX challenges_expires ON challenges (expires_at);

-- A write-back: one reset or unlock of one directory account, carried out
-- directly (AD over LDAPS, Entra through Graph) or later by an agent. The
-- row says what and where, never the password.
CREATE TABLE password_jobs (
    id            INTEGER PRIMARY KEY,
    tenant_id     BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    end_user_id   BIGINT NOT NULL REFERENCES end_users (id) ON DELETE CASCADE,
    challenge_id  TEXT NOT NULL,
    action        TEXT NOT NULL CHECK (action IN ('reset', 'unlock')),
    target        TEXT NOT NULL CHECK (target IN ('ad', 'azure', 'local', 'outbox')),
    connection_id BIGINT REFERENCES connections (id) ON DELETE SET NULL,
    external_id   TEXT NOT NULL DEFAULT '',
    state         TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed')),
    reason        TEXT NOT NULL DEFAULT '',
    client_ip     TEXT NOT NULL DEFAULT '',
    created_at    TIMESTAMP NOT NULL,
    started_at    TIMESTAMP,
    finished_at   TIMESTAMP
);
CREATE INDEX password_jobs_end_user ON password_jobs (tenant_id, end_user_id, id);
CREATE INDEX password_jobs_state ON password_jobs (state) WHERE state IN ('queued', 'running');

-- Finding an end user by what they type: email, UPN or user name.
CREATE INDEX end_users_login_upn ON end_users (tenant_id, lower(upn)) WHERE upn <> '';
CREATE INDEX end_users_login_username ON end_users (tenant_id, lower(username)) WHERE username <> '';
CREATE INDEX end_users_login_email ON end_users (tenant_id, lower(email)) WHERE email <> '';
