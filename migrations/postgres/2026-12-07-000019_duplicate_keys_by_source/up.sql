-- The duplicate check stores two kinds of key (`domain::duplicates::Index`): each phone, by
-- commune, and the folded head name, by village; each with the row that gives it (the
-- household, or a member): a write removes the keys its rows no longer give by their
-- primary key, from the rows as they were, so the table needs no household index. The keys
-- are made again by `store::migrate` once this migration has run (`duplicates::scan`).
DROP TABLE duplicate_keys;
CREATE TABLE duplicate_keys (
    kind text NOT NULL,
    scope_id uuid NOT NULL,
    key text NOT NULL,
    household_id uuid NOT NULL,
    source_id uuid NOT NULL,
    -- The household's village: a key's holders are read from this table alone.
    village_id uuid NOT NULL,
    PRIMARY KEY (kind, scope_id, key, household_id, source_id)
);
-- A phone that more than five households share (a commune office's number written on every
-- form) is a placeholder: it makes no pairs, and its holders are not stored. Looked up by
-- number.
CREATE TABLE duplicate_placeholders (
    kind text NOT NULL,
    scope_id uuid NOT NULL,
    key text NOT NULL,
    PRIMARY KEY (kind, key, scope_id)
);
