-- Per-village tallies of the supervisors' reports, kept by the write path in the same
-- transaction as the rows they count (`store::tallies`). Derived data: no foreign keys, so
-- that keeping them costs one upsert per row; `gocua tallies rebuild` makes them anew.

-- Live households of the village, and the live members of those households.
CREATE TABLE tally_villages (
    area_id uuid PRIMARY KEY,
    households bigint NOT NULL,
    persons bigint NOT NULL,
    smartphone bigint NOT NULL,
    priority bigint NOT NULL
);

-- Per campaign: live households visited, and whose latest visit calls for another; live
-- members installed, and among them priority persons.
CREATE TABLE tally_campaigns (
    area_id uuid NOT NULL,
    campaign_id uuid NOT NULL,
    visited bigint NOT NULL,
    revisit bigint NOT NULL,
    installed bigint NOT NULL,
    priority_installed bigint NOT NULL,
    PRIMARY KEY (campaign_id, area_id)
);

-- The installs above by the day (Vietnam time) their status was recorded: the trend.
CREATE TABLE tally_days (
    area_id uuid NOT NULL,
    campaign_id uuid NOT NULL,
    day date NOT NULL,
    installed bigint NOT NULL,
    PRIMARY KEY (campaign_id, area_id, day)
);

-- One row once the tallies hold everything (an existing database is counted at the first
-- start after this migration).
CREATE TABLE tally_state (
    id integer PRIMARY KEY CHECK (id = 1),
    built_at timestamptz NOT NULL
);
