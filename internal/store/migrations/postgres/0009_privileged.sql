-- selfserve schema, version 9 (PostgreSQL): privileged accounts.

-- A privileged end user holds administrative power in its directory (AD:
-- adminCount=1 or membership of a protected group; Entra: a directory role),
-- or could not be checked; the reason says which. The sync keeps both
-- current.
ALTER TABLE end_users ADD COLUMN privileged BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE end_users ADD COLUMN privileged_reason TEXT NOT NULL DEFAULT '';
CREATE INDEX end_users_privileged ON end_users (tenant_id, id) WHERE privileged;

-- Whether privileged end users may use self-serve: deny, or two_factors (an
-- SMS and an email code).
ALTER TABLE tenants ADD COLUMN privileged_self_serve TEXT NOT NULL DEFAULT 'deny'
    CHECK (privileged_self_serve IN ('deny', 'two_factors'));
