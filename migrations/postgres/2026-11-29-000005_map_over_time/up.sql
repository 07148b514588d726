-- The map over time: a unit is in effect from valid_from (none: since before gocua knew it)
-- until valid_to (none: still in effect). A code is unique among the units in effect, and
-- with its period among retired ones.
ALTER TABLE areas ADD COLUMN valid_from date;
ALTER TABLE areas ADD COLUMN valid_to date;
CREATE UNIQUE INDEX areas_code_period ON areas (level, code, valid_to) WHERE code IS NOT NULL AND valid_to IS NOT NULL;

-- A conversion table applied: once per table (its digest), with the report of what it did.
CREATE TABLE reorganizations (
    id uuid PRIMARY KEY,
    effective date NOT NULL,
    digest text NOT NULL UNIQUE,
    source text NOT NULL,
    report text NOT NULL,
    applied_by uuid REFERENCES users (id),
    applied_at timestamptz NOT NULL
);

-- A retired unit's successors: whole (all of it), part, or rename.
CREATE TABLE area_links (
    from_id uuid NOT NULL REFERENCES areas (id),
    to_id uuid NOT NULL REFERENCES areas (id),
    kind text NOT NULL CHECK (kind IN ('whole', 'part', 'rename')),
    note text NOT NULL,
    reorganization_id uuid NOT NULL REFERENCES reorganizations (id),
    PRIMARY KEY (from_id, to_id)
);
CREATE INDEX area_links_to ON area_links (to_id);

-- Where a village was before it moved (its id, and so its households, stay).
CREATE TABLE area_moves (
    id uuid PRIMARY KEY,
    area_id uuid NOT NULL REFERENCES areas (id),
    from_parent_id uuid NOT NULL REFERENCES areas (id),
    from_path text NOT NULL,
    from_name text NOT NULL,
    to_parent_id uuid NOT NULL REFERENCES areas (id),
    to_path text NOT NULL,
    effective date NOT NULL,
    moved_by uuid REFERENCES users (id),
    moved_at timestamptz NOT NULL
);
CREATE INDEX area_moves_area ON area_moves (area_id, effective);
CREATE INDEX area_moves_from ON area_moves (from_path text_pattern_ops);
CREATE INDEX area_moves_to ON area_moves (to_path text_pattern_ops);

-- Villages whose commune was split: the new communes they may go to, until a person
-- places them.
CREATE TABLE village_candidates (
    village_id uuid NOT NULL REFERENCES areas (id),
    commune_id uuid NOT NULL REFERENCES areas (id),
    reorganization_id uuid NOT NULL REFERENCES reorganizations (id),
    PRIMARY KEY (village_id, commune_id)
);
CREATE INDEX village_candidates_commune ON village_candidates (commune_id);
