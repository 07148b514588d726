CREATE TABLE areas (
    id uuid PRIMARY KEY,
    code text,
    name text NOT NULL,
    level text NOT NULL CHECK (level IN ('province', 'district', 'commune', 'village')),
    kind text,
    parent_id uuid REFERENCES areas (id),
    -- '/<root id>/.../<own id>/': a subtree is a prefix match
    path text NOT NULL,
    search_key text NOT NULL,
    retired_at timestamptz,
    successor_id uuid REFERENCES areas (id),
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE UNIQUE INDEX areas_level_code ON areas (level, code) WHERE code IS NOT NULL AND retired_at IS NULL;
CREATE UNIQUE INDEX areas_village_name ON areas (parent_id, name) WHERE level = 'village' AND retired_at IS NULL;
CREATE INDEX areas_parent ON areas (parent_id);
CREATE INDEX areas_path ON areas (path text_pattern_ops);

CREATE TABLE users (
    id uuid PRIMARY KEY,
    username text NOT NULL UNIQUE,
    full_name text NOT NULL DEFAULT '',
    password_hash text NOT NULL,
    role text NOT NULL CHECK (role IN ('admin', 'supervisor', 'canvasser')),
    active boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);

CREATE TABLE user_areas (
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    area_id uuid NOT NULL REFERENCES areas (id),
    PRIMARY KEY (user_id, area_id)
);

CREATE TABLE sessions (
    id uuid PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz,
    revoked_reason text
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE refresh_tokens (
    token_hash text PRIMARY KEY,
    session_id uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL,
    used_at timestamptz
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);

CREATE TABLE campaigns (
    id uuid PRIMARY KEY,
    name text NOT NULL UNIQUE,
    description text NOT NULL DEFAULT '',
    starts_on date NOT NULL,
    ends_on date NOT NULL CHECK (ends_on >= starts_on),
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);

CREATE TABLE targets (
    campaign_id uuid NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    area_id uuid NOT NULL REFERENCES areas (id),
    kind text NOT NULL CHECK (kind IN ('rate_registered', 'rate_smartphone', 'count')),
    value double precision NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (campaign_id, area_id)
);

CREATE TABLE households (
    id uuid PRIMARY KEY,
    area_id uuid NOT NULL REFERENCES areas (id),
    address text NOT NULL,
    head_name text NOT NULL,
    phone text,
    lat double precision,
    lon double precision,
    notes text NOT NULL DEFAULT '',
    -- version of the household unit (household, members, adoptions)
    version bigint NOT NULL,
    -- per-field {v, hlc, by} of the last write, for reconciliation
    field_meta text NOT NULL,
    search_key text NOT NULL,
    created_by uuid NOT NULL REFERENCES users (id),
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    deleted_at timestamptz
);
CREATE INDEX households_area ON households (area_id);

CREATE TABLE members (
    id uuid PRIMARY KEY,
    household_id uuid NOT NULL REFERENCES households (id),
    full_name text NOT NULL,
    birth_year integer,
    sex text CHECK (sex IN ('male', 'female', 'other')),
    phone text,
    smartphone text NOT NULL CHECK (smartphone IN ('yes', 'no', 'unknown')),
    priority text NOT NULL CHECK (priority IN ('none', 'quarantine_centralized', 'quarantine_home', 'testing_required')),
    notes text NOT NULL DEFAULT '',
    version bigint NOT NULL,
    field_meta text NOT NULL,
    search_key text NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    deleted_at timestamptz
);
CREATE INDEX members_household ON members (household_id);
CREATE INDEX members_priority ON members (priority) WHERE priority <> 'none';

CREATE TABLE adoptions (
    member_id uuid NOT NULL REFERENCES members (id),
    campaign_id uuid NOT NULL REFERENCES campaigns (id),
    household_id uuid NOT NULL REFERENCES households (id),
    status text NOT NULL,
    recorded_at timestamptz NOT NULL,
    recorded_by uuid NOT NULL REFERENCES users (id),
    version bigint NOT NULL,
    field_meta text NOT NULL,
    PRIMARY KEY (member_id, campaign_id)
);
CREATE INDEX adoptions_household ON adoptions (household_id);

CREATE TABLE visits (
    id uuid PRIMARY KEY,
    household_id uuid NOT NULL REFERENCES households (id),
    campaign_id uuid NOT NULL REFERENCES campaigns (id),
    canvasser_id uuid NOT NULL REFERENCES users (id),
    visited_at timestamptz NOT NULL,
    outcome text NOT NULL,
    notes text NOT NULL DEFAULT '',
    lat double precision,
    lon double precision,
    created_at timestamptz NOT NULL
);
CREATE INDEX visits_household ON visits (household_id, visited_at);
CREATE INDEX visits_campaign ON visits (campaign_id, visited_at);

-- One row per write, stamped with the writing transaction's id: the pull cursor.
CREATE TABLE changes (
    id bigserial PRIMARY KEY,
    txid bigint NOT NULL DEFAULT (pg_current_xact_id()::text::bigint),
    entity text NOT NULL,
    entity_id uuid NOT NULL,
    household_id uuid,
    area_id uuid,
    op text NOT NULL,
    version bigint NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE INDEX changes_cursor ON changes (txid, id);
