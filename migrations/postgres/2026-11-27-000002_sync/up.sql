-- Devices push numbered operations; each (device, seq) is applied once.
CREATE TABLE devices (
    id uuid PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES users (id),
    last_seq bigint NOT NULL DEFAULT 0,
    max_skew_ms bigint NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);

-- The stored result of every consumed seq, returned unchanged on replay.
CREATE TABLE device_ops (
    device_id uuid NOT NULL REFERENCES devices (id),
    seq bigint NOT NULL,
    op_id uuid NOT NULL,
    op_hash text NOT NULL,
    result text NOT NULL,
    skew_ms bigint NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (device_id, seq)
);

-- Values that lost to a concurrent write, or edits of deleted records, for review.
CREATE TABLE conflicts (
    id uuid PRIMARY KEY,
    household_id uuid NOT NULL REFERENCES households (id),
    area_id uuid NOT NULL REFERENCES areas (id),
    entity text NOT NULL,
    entity_id uuid NOT NULL,
    campaign_id uuid,
    field text NOT NULL,
    reason text NOT NULL CHECK (reason IN ('concurrent_edit', 'deleted')),
    kept_value text NOT NULL,
    kept_by text NOT NULL,
    kept_hlc text NOT NULL,
    lost_value text NOT NULL,
    lost_by text NOT NULL,
    lost_hlc text NOT NULL,
    -- versions [from, to) at which the losing value was visible (none: it never was)
    visible_from bigint,
    visible_to bigint,
    device_id uuid,
    seq bigint,
    status text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved')),
    resolution text,
    resolved_value text,
    resolved_by uuid REFERENCES users (id),
    resolved_at timestamptz,
    created_at timestamptz NOT NULL
);
CREATE INDEX conflicts_area ON conflicts (area_id, status, created_at);
CREATE INDEX conflicts_household ON conflicts (household_id);
CREATE INDEX conflicts_entity_open ON conflicts (entity_id) WHERE status = 'open';

-- Batch markers (entity 'device') are found by device.
CREATE INDEX changes_device ON changes (entity_id, txid, id) WHERE entity = 'device';

-- Where the change log was pruned: a pull cursor below it must start over.
CREATE TABLE sync_horizon (
    id integer PRIMARY KEY CHECK (id = 1),
    txid bigint NOT NULL,
    change_id bigint NOT NULL,
    pruned_at timestamptz NOT NULL
);
