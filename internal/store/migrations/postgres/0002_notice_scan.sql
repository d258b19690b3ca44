-- selfserve schema, version 2 (PostgreSQL): the expiry scan.

-- The lockout prefilter: locked-out end users by lockout instant.
CREATE INDEX end_users_locked ON end_users (locked_out_at) WHERE locked_out;

-- The ledger is written in bulk (tens of thousands of rows per scan). A
-- foreign key checks each inserted row with a row lock on the referenced
-- row (a WAL record per end user), which more than doubles the cost of the
-- write. notices.tenant_id needs no key of its own (deleting a tenant
-- deletes its end users, whose notices follow), and the end user's key is
-- replaced by a statement-level trigger that deletes the notices of deleted
-- end users. (SQLite, the embedded default, keeps both keys.)
ALTER TABLE notices DROP CONSTRAINT notices_tenant_id_fkey;
ALTER TABLE notices DROP CONSTRAINT notices_end_user_id_fkey;

CREATE FUNCTION delete_notices_of_deleted_end_users() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM notices n USING deleted_end_users d WHERE n.end_user_id = d.id;
    RETURN NULL;
END
$$;

CREATE TRIGGER end_users_delete_notices AFTER DELETE ON end_users
    REFERENCING OLD TABLE AS deleted_end_users
    FOR EACH STATEMENT EXECUTE FUNCTION delete_notices_of_deleted_end_users();
