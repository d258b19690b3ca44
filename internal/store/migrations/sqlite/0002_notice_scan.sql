-- selfserve schema, version 2 (SQLite): the expiry scan's lockout prefilter
-- (locked-out end users by lockout instant).
CREATE INDEX end_users_locked ON end_users (locked_out_at) WHERE locked_out;
