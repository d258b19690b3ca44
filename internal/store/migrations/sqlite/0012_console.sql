-- selfserve schema, version 12 (SQLite): the technician console.

-- A login's console credentials: an argon2id password hash (PHC string), a
-- TOTP secret sealed with the server's encryption key, the last TOTP time
-- step accepted (a code is good once) and when the password last changed.
CREATE TABLE login_credentials (
    login_id            BIGINT PRIMARY KEY REFERENCES logins (id) ON DELETE CASCADE,
    tenant_id           BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    password_hash       TEXT NOT NULL DEFAULT '',
    totp_secret         BLOB,
    totp_last_step      BIGINT NOT NULL DEFAULT 0,
    password_changed_at TIMESTAMP,
    updated_at          TIMESTAMP NOT NULL
);

-- Recovery codes stand in for a TOTP code once each; only their SHA-256
-- hash is kept.
CREATE TABLE login_recovery_codes (
    id        INTEGER PRIMARY KEY,
    tenant_id BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    login_id  BIGINT NOT NULL REFERENCES logins (id) ON DELETE CASCADE,
    code_hash BLOB NOT NULL,
    used_at   TIMESTAMP
);
CREATE INDEX login_recovery_codes_login ON login_recovery_codes (login_id);

-- An invite is a single-use link that lets a login set its password.
CREATE TABLE login_invites (
    id         INTEGER PRIMARY KEY,
    tenant_id  BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    login_id   BIGINT NOT NULL REFERENCES logins (id) ON DELETE CASCADE,
    token_hash BLOB NOT NULL UNIQUE,
    created_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    used_at    TIMESTAMP
);

-- A console session: the cookie carries id and secret, the row the secret's
-- hash. stage is 'password' (waiting for the second factor) or 'full'.
-- Sessions end with their login (cascade), on idle or absolute expiry, on
-- sign-out and on a password change.
CREATE TABLE console_sessions (
    id           TEXT PRIMARY KEY,
    secret_hash  BLOB NOT NULL,
    tenant_id    BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    login_id     BIGINT NOT NULL REFERENCES logins (id) ON DELETE CASCADE,
    stage        TEXT NOT NULL CHECK (stage IN ('password', 'full')),
    csrf_token   TEXT NOT NULL,
    created_at   TIMESTAMP NOT NULL,
    last_seen_at TIMESTAMP NOT NULL,
    expires_at   TIMESTAMP NOT NULL
);
CREATE INDEX console_sessions_login ON console_sessions (login_id);

-- Failed sign-ins, for throttling per login and per IP address.
CREATE TABLE signin_failures (
    id  INTEGER PRIMARY KEY,
    key TEXT NOT NULL,
    at  TIMESTAMP NOT NULL
);
CREATE INDEX signin_failures_key ON signin_failures (key, at);

-- The last value a sync refused for an end user's email or mobile, with why
-- (kept so that the console can show why a user is Incomplete).
CREATE TABLE end_user_refusals (
    tenant_id   BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    end_user_id BIGINT NOT NULL REFERENCES end_users (id) ON DELETE CASCADE,
    field       TEXT NOT NULL CHECK (field IN ('email', 'mobile')),
    value       TEXT NOT NULL,
    reason      TEXT NOT NULL,
    at          TIMESTAMP NOT NULL,
    PRIMARY KEY (end_user_id, field)
);

-- The console's end-user search (prefix match on username, email and name,
-- within a customer) and its sort by username.
CREATE INDEX end_users_search_username ON end_users (customer_id, lower(username));
CREATE INDEX end_users_search_email ON end_users (customer_id, lower(email));
CREATE INDEX end_users_search_name ON end_users (customer_id, lower(display_name));
