-- selfserve schema, version 7 (SQLite): records a full sync could not identify.
--
-- unidentified counts the invalid records of a run whose key (external id)
-- could not be read: the enumeration did not account for every end user, so
-- the run removes nobody. It is kept with the run so that a resumed run
-- remembers the records of its earlier pages.
ALTER TABLE sync_runs ADD COLUMN unidentified INTEGER NOT NULL DEFAULT 0;
