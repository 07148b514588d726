DROP INDEX duplicate_keys_household;
ALTER TABLE duplicate_keys DROP CONSTRAINT duplicate_keys_pkey;
ALTER TABLE duplicate_keys ADD PRIMARY KEY (household_id, rule, key);
ALTER TABLE duplicate_keys ADD CONSTRAINT duplicate_keys_household_id_fkey
    FOREIGN KEY (household_id) REFERENCES households (id) ON DELETE CASCADE;
CREATE INDEX duplicate_keys_match ON duplicate_keys (rule, scope_id, key);
