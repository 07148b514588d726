CREATE TABLE duplicate_keys_old (
    household_id text NOT NULL REFERENCES households (id) ON DELETE CASCADE,
    rule text NOT NULL,
    scope_id text NOT NULL,
    key text NOT NULL,
    PRIMARY KEY (household_id, rule, key)
);
INSERT INTO duplicate_keys_old (household_id, rule, scope_id, key)
    SELECT household_id, rule, scope_id, key FROM duplicate_keys;
DROP TABLE duplicate_keys;
ALTER TABLE duplicate_keys_old RENAME TO duplicate_keys;
CREATE INDEX duplicate_keys_match ON duplicate_keys (rule, scope_id, key);
