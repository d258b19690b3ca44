-- selfserve schema, version 4 (PostgreSQL): runs of PSA connections.
--
-- kind says what a run imports: 'users' (a directory sync), 'customers' (a
-- PSA customer import), 'contacts' (enrichment of end users from PSA
-- contacts) or 'psa' (a customer import followed by enrichment).
-- customer_id narrows an enrichment run to one customer. counts holds the
-- run's per-reason counts as a JSON object ({"mobiles_filled": 37, ...}) and
-- summary the same in words ("37 mobile numbers filled, 4 contacts
-- ambiguous").
ALTER TABLE sync_runs ADD COLUMN kind TEXT NOT NULL DEFAULT 'users' CHECK (kind IN ('users', 'customers', 'contacts', 'psa'));
ALTER TABLE sync_runs ADD COLUMN customer_id BIGINT REFERENCES customers (id) ON DELETE SET NULL;
ALTER TABLE sync_runs ADD COLUMN counts TEXT NOT NULL DEFAULT '{}';
ALTER TABLE sync_runs ADD COLUMN summary TEXT NOT NULL DEFAULT '';

-- Runs of PSA connections recorded before this version were customer imports.
UPDATE sync_runs SET kind = 'customers'
WHERE connection_id IN (SELECT id FROM connections WHERE kind IN ('itglue', 'hudu', 'connectwise'));
