DROP TABLE duplicate_placeholders;
DROP TABLE duplicate_keys;
CREATE TABLE duplicate_keys (
    rule text NOT NULL,
    scope_id uuid NOT NULL,
    key text NOT NULL,
    household_id uuid NOT NULL,
    PRIMARY KEY (rule, scope_id, key, household_id)
);
CREATE INDEX duplicate_keys_household ON duplicate_keys (household_id);
