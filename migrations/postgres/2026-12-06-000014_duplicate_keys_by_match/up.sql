-- The duplicate check's keys keyed in the order they are matched by (rule, scope, key, then
-- household): a key's holders are a range of the primary key, and the household index serves
-- the write's diff. No foreign key: keys are written and deleted with their household's
-- writes, and read joined to live households.
ALTER TABLE duplicate_keys DROP CONSTRAINT duplicate_keys_pkey;
ALTER TABLE duplicate_keys DROP CONSTRAINT duplicate_keys_household_id_fkey;
DROP INDEX duplicate_keys_match;
ALTER TABLE duplicate_keys ADD PRIMARY KEY (rule, scope_id, key, household_id);
CREATE INDEX duplicate_keys_household ON duplicate_keys (household_id);
