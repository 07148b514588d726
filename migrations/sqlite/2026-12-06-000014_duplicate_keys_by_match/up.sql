-- The duplicate check's keys stored in the order they are matched by (rule, scope, key, then
-- household), in one B-tree without a rowid: a write's new key is one insert into it and one
-- into the household index, and its holders are a range of it. No foreign key: keys are
-- written and deleted with their household's writes, and read joined to live households.
CREATE TABLE duplicate_keys_new (
    rule text NOT NULL,
    scope_id text NOT NULL,
    key text NOT NULL,
    household_id text NOT NULL,
    PRIMARY KEY (rule, scope_id, key, household_id)
) WITHOUT ROWID;
INSERT INTO duplicate_keys_new (rule, scope_id, key, household_id)
    SELECT rule, scope_id, key, household_id FROM duplicate_keys;
DROP TABLE duplicate_keys;
ALTER TABLE duplicate_keys_new RENAME TO duplicate_keys;
CREATE INDEX duplicate_keys_household ON duplicate_keys (household_id);
