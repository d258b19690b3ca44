-- selfserve schema, version 1 (SQLite).
-- Every table of tenant data carries tenant_id; every query filters on it.

CREATE TABLE tenants (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    subscription  TEXT NOT NULL DEFAULT 'none' CHECK (subscription IN ('none', 'qdesk', 'bundle')),
    self_serve    BOOLEAN NOT NULL DEFAULT TRUE,
    timezone      TEXT NOT NULL DEFAULT 'UTC',
    send_hour     INTEGER NOT NULL DEFAULT 9 CHECK (send_hour BETWEEN 0 AND 23),
    reminder_days INTEGER NOT NULL DEFAULT 10 CHECK (reminder_days BETWEEN 1 AND 90),
    created_at    TIMESTAMP NOT NULL,
    updated_at    TIMESTAMP NOT NULL
);

CREATE TABLE logins (
    id          INTEGER PRIMARY KEY,
    tenant_id   BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    email       TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('super', 'primary', 'manager', 'engineer', 'helpdesk')),
    disabled_at TIMESTAMP,
    created_at  TIMESTAMP NOT NULL,
    updated_at  TIMESTAMP NOT NULL,
    UNIQUE (tenant_id, email)
);

CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY,
    tenant_id    BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    login_id     BIGINT NOT NULL REFERENCES logins (id) ON DELETE CASCADE,
    token_hash   BLOB NOT NULL UNIQUE,
    prefix       TEXT NOT NULL,
    created_at   TIMESTAMP NOT NULL,
    expires_at   TIMESTAMP,
    revoked_at   TIMESTAMP,
    last_used_at TIMESTAMP
);
CREATE INDEX api_tokens_login ON api_tokens (tenant_id, login_id);

CREATE TABLE customers (
    id             INTEGER PRIMARY KEY,
    tenant_id      BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name           TEXT NOT NULL,
    timezone       TEXT NOT NULL DEFAULT '',
    default_region TEXT NOT NULL DEFAULT '',
    source         TEXT NOT NULL DEFAULT 'manual',
    external_id    TEXT,
    created_at     TIMESTAMP NOT NULL,
    updated_at     TIMESTAMP NOT NULL,
    UNIQUE (tenant_id, name)
);
CREATE UNIQUE INDEX customers_external ON customers (tenant_id, source, external_id) WHERE external_id IS NOT NULL;

CREATE TABLE connections (
    id                INTEGER PRIMARY KEY,
    tenant_id         BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    customer_id       BIGINT REFERENCES customers (id) ON DELETE CASCADE,
    name              TEXT NOT NULL,
    kind              TEXT NOT NULL,
    settings          TEXT NOT NULL DEFAULT '{}',
    secrets           BLOB,
    enable_self_serve BOOLEAN NOT NULL DEFAULT FALSE,
    schedule_seconds  INTEGER NOT NULL DEFAULT 10800 CHECK (schedule_seconds >= 0),
    cursor            TEXT NOT NULL DEFAULT '',
    created_at        TIMESTAMP NOT NULL,
    updated_at        TIMESTAMP NOT NULL,
    UNIQUE (tenant_id, name)
);

CREATE TABLE end_users (
    id                     INTEGER PRIMARY KEY,
    tenant_id              BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    customer_id            BIGINT NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    connection_id          BIGINT REFERENCES connections (id) ON DELETE SET NULL,
    source                 TEXT NOT NULL CHECK (source IN ('local', 'ad', 'azure', 'manual')),
    external_id            TEXT NOT NULL,
    username               TEXT NOT NULL DEFAULT '',
    upn                    TEXT NOT NULL DEFAULT '',
    first_name             TEXT NOT NULL DEFAULT '',
    last_name              TEXT NOT NULL DEFAULT '',
    display_name           TEXT NOT NULL DEFAULT '',
    email                  TEXT NOT NULL DEFAULT '',
    email_source           TEXT NOT NULL DEFAULT '',
    mobile                 TEXT NOT NULL DEFAULT '',
    mobile_source          TEXT NOT NULL DEFAULT '',
    enabled                BOOLEAN NOT NULL DEFAULT TRUE,
    locked_out             BOOLEAN NOT NULL DEFAULT FALSE,
    locked_out_at          TIMESTAMP,
    must_change_password   BOOLEAN NOT NULL DEFAULT FALSE,
    password_never_expires BOOLEAN NOT NULL DEFAULT FALSE,
    password_last_set      TIMESTAMP,
    password_expires_at    TIMESTAMP,
    immutable_id           TEXT NOT NULL DEFAULT '',
    self_serve             BOOLEAN NOT NULL DEFAULT FALSE,
    first_access_at        TIMESTAMP,
    welcome_sent_at        TIMESTAMP,
    removed_at             TIMESTAMP,
    seen_run_id            BIGINT,
    created_at             TIMESTAMP NOT NULL,
    updated_at             TIMESTAMP NOT NULL,
    UNIQUE (connection_id, external_id)
);
CREATE INDEX end_users_customer ON end_users (tenant_id, customer_id);
CREATE INDEX end_users_expiry ON end_users (password_expires_at) WHERE removed_at IS NULL;
CREATE INDEX end_users_email ON end_users (customer_id, lower(email));

CREATE TABLE sync_runs (
    id               INTEGER PRIMARY KEY,
    tenant_id        BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    connection_id    BIGINT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    mode             TEXT NOT NULL CHECK (mode IN ('full', 'incremental')),
    trigger          TEXT NOT NULL DEFAULT 'manual',
    status           TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'needs_confirmation')),
    resume           TEXT NOT NULL DEFAULT '',
    pages            INTEGER NOT NULL DEFAULT 0,
    processed        INTEGER NOT NULL DEFAULT 0,
    created          INTEGER NOT NULL DEFAULT 0,
    updated          INTEGER NOT NULL DEFAULT 0,
    unchanged        INTEGER NOT NULL DEFAULT 0,
    removed          INTEGER NOT NULL DEFAULT 0,
    invalid          INTEGER NOT NULL DEFAULT 0,
    pending_removals INTEGER NOT NULL DEFAULT 0,
    confirm_removals BOOLEAN NOT NULL DEFAULT FALSE,
    problems         TEXT NOT NULL DEFAULT '[]',
    error            TEXT NOT NULL DEFAULT '',
    created_at       TIMESTAMP NOT NULL,
    started_at       TIMESTAMP,
    heartbeat_at     TIMESTAMP,
    finished_at      TIMESTAMP,
    duration_ms      BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX sync_runs_connection ON sync_runs (tenant_id, connection_id, id);
CREATE UNIQUE INDEX sync_runs_one_active ON sync_runs (connection_id) WHERE status IN ('queued', 'running');

CREATE TABLE notices (
    id          INTEGER PRIMARY KEY,
    tenant_id   BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    end_user_id BIGINT NOT NULL REFERENCES end_users (id) ON DELETE CASCADE,
    kind        TEXT NOT NULL CHECK (kind IN ('expiry_reminder', 'expiry_day', 'lockout', 'welcome')),
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
CREATE INDEX notices_status ON notices (status, updated_at);

CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY,
    tenant_id   BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    login_id    BIGINT,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    object_type TEXT NOT NULL,
    object_id   TEXT NOT NULL,
    before      TEXT NOT NULL DEFAULT 'null',
    after       TEXT NOT NULL DEFAULT 'null',
    at          TIMESTAMP NOT NULL
);
CREATE INDEX audit_log_tenant ON audit_log (tenant_id, at);
