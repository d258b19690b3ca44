-- selfserve schema, version 6 (PostgreSQL): run leases.

-- The process working on a running sync run holds its lease: a random token
-- it stamps on every write of the run's progress and on its heartbeat
-- (heartbeat_at, every few seconds). A run whose heartbeat stopped, or whose
-- lease was released ('') by a process that stopped without finishing it,
-- is taken over by the next process that starts it, with a new lease; the
-- old holder's later writes then match no row and it stops.
ALTER TABLE sync_runs ADD COLUMN lease TEXT NOT NULL DEFAULT '';
