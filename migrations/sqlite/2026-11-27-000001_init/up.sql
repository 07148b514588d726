CREATE TABLE areas (
    id text PRIMARY KEY,
    code text,
    name text NOT NULL,
    level text NOT NULL CHECK (level IN ('province', 'district', 'commune', 'village')),
    kind text,
    parent_id text REFERENCES areas (id),
    -- '/<root id>/.../<own id>/': a subtree is a prefix match
    path text NOT NULL,
    search_key text NOT NULL,
    retired_at text,
    successor_id text REFERENCES areas (id),
    created_at text NOT NULL,
    updated_at text NOT NULL
);
CREATE UNIQUE INDEX areas_level_code ON areas (level, code) WHERE code IS NOT NULL AND retired_at IS NULL;
CREATE UNIQUE INDEX areas_village_name ON areas (parent_id, name) WHERE level = 'village' AND retired_at IS NULL;
CREATE INDEX areas_parent ON areas (parent_id);
CREATE INDEX areas_path ON areas (path);

CREATE TABLE users (
    id text PRIMARY KEY,
    username text NOT NULL UNIQUE,
    full_name text NOT NULL DEFAULT '',
    password_hash text NOT NULL,
    role text NOT NULL CHECK (role IN ('admin', 'supervisor', 'canvasser')),
    active boolean NOT NULL DEFAULT true,
    created_at text NOT NULL,
    updated_at text NOT NULL
);

CREATE TABLE user_areas (
    user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    area_id text NOT NULL REFERENCES areas (id),
    PRIMARY KEY (user_id, area_id)
);

CREATE TABLE sessions (
    id text PRIMARY KEY,
    user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at text NOT NULL,
    expires_at text NOT NULL,
    revoked_at text,
    revoked_reason text
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE refresh_tokens (
    token_hash text PRIMARY KEY,
    session_id text NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    created_at text NOT NULL,
    used_at text
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);

CREATE TABLE campaigns (
    id text PRIMARY KEY,
    name text NOT NULL UNIQUE,
    description text NOT NULL DEFAULT '',
    starts_on text NOT NULL,
    ends_on text NOT NULL CHECK (ends_on >= starts_on),
    created_at text NOT NULL,
    updated_at text NOT NULL
);

CREATE TABLE targets (
    campaign_id text NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    area_id text NOT NULL REFERENCES areas (id),
    kind text NOT NULL CHECK (kind IN ('rate_registered', 'rate_smartphone', 'count')),
    value real NOT NULL,
    updated_at text NOT NULL,
    PRIMARY KEY (campaign_id, area_id)
);

CREATE TABLE households (
    id text PRIMARY KEY,
    area_id text NOT NULL REFERENCES areas (id),
    address text NOT NULL,
    head_name text NOT NULL,
    phone text,
    lat real,
    lon real,
    notes text NOT NULL DEFAULT '',
    -- version of the household unit (household, members, adoptions)
    version bigint NOT NULL,
    -- per-field {v, hlc, by} of the last write, for reconciliation
    field_meta text NOT NULL,
    search_key text NOT NULL,
    created_by text NOT NULL REFERENCES users (id),
    created_at text NOT NULL,
    updated_at text NOT NULL,
    deleted_at text
);
CREATE INDEX households_area ON households (area_id);

CREATE TABLE members (
    id text PRIMARY KEY,
    household_id text NOT NULL REFERENCES households (id),
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
    created_at text NOT NULL,
    updated_at text NOT NULL,
    deleted_at text
);
CREATE INDEX members_household ON members (household_id);
CREATE INDEX members_priority ON members (priority) WHERE priority <> 'none';

CREATE TABLE adoptions (
    member_id text NOT NULL REFERENCES members (id),
    campaign_id text NOT NULL REFERENCES campaigns (id),
    household_id text NOT NULL REFERENCES households (id),
    status text NOT NULL,
    recorded_at text NOT NULL,
    recorded_by text NOT NULL REFERENCES users (id),
    version bigint NOT NULL,
    field_meta text NOT NULL,
    PRIMARY KEY (member_id, campaign_id)
);
CREATE INDEX adoptions_household ON adoptions (household_id);

CREATE TABLE visits (
    id text PRIMARY KEY,
    household_id text NOT NULL REFERENCES households (id),
    campaign_id text NOT NULL REFERENCES campaigns (id),
    canvasser_id text NOT NULL REFERENCES users (id),
    visited_at text NOT NULL,
    outcome text NOT NULL,
    notes text NOT NULL DEFAULT '',
    lat real,
    lon real,
    created_at text NOT NULL
);
CREATE INDEX visits_household ON visits (household_id, visited_at);
CREATE INDEX visits_campaign ON visits (campaign_id, visited_at);

-- One row per write; writers are serialized (BEGIN IMMEDIATE), so id order is commit order.
CREATE TABLE changes (
    id integer PRIMARY KEY AUTOINCREMENT,
    txid bigint NOT NULL DEFAULT 0,
    entity text NOT NULL,
    entity_id text NOT NULL,
    household_id text,
    area_id text,
    op text NOT NULL,
    version bigint NOT NULL,
    created_at text NOT NULL
);
CREATE INDEX changes_cursor ON changes (txid, id);
