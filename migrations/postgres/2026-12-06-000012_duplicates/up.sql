-- Possible duplicate households (docs/DUPLICATES.md). Each live household's keys, by rule
-- and scope (its commune for `phone`, its village for the others), kept by the write path;
-- two households sharing a key are a pair, proposed once: a pair dismissed stays dismissed.
CREATE TABLE duplicate_keys (
    household_id uuid NOT NULL REFERENCES households (id) ON DELETE CASCADE,
    rule text NOT NULL,
    scope_id uuid NOT NULL,
    key text NOT NULL,
    PRIMARY KEY (household_id, rule, key)
);
CREATE INDEX duplicate_keys_match ON duplicate_keys (rule, scope_id, key);

CREATE TABLE duplicates (
    id uuid PRIMARY KEY,
    -- The two households, the smaller id first, and the villages they were in when found.
    household_a uuid NOT NULL REFERENCES households (id),
    household_b uuid NOT NULL REFERENCES households (id),
    area_a uuid NOT NULL REFERENCES areas (id),
    area_b uuid NOT NULL REFERENCES areas (id),
    rule text NOT NULL,
    status text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'merged', 'dismissed')),
    reason text,
    kept_id uuid,
    resolved_by uuid REFERENCES users (id),
    resolved_at timestamptz,
    created_at timestamptz NOT NULL,
    UNIQUE (household_a, household_b)
);
CREATE INDEX duplicates_area_a ON duplicates (area_a, status);
CREATE INDEX duplicates_area_b ON duplicates (area_b, status);
