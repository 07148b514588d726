-- Per-village tallies of the supervisors' reports, kept by the write path in the same
-- transaction as the rows they count (`store::tallies`). Derived data: no foreign keys, so
-- that keeping them costs one upsert per row; `gocua tallies rebuild` makes them anew.

-- Live households of the village, and the live members of those households.
CREATE TABLE tally_villages (
    area_id text PRIMARY KEY,
    households integer NOT NULL,
    persons integer NOT NULL,
    smartphone integer NOT NULL,
    priority integer NOT NULL
);

-- Per campaign: live households visited, and whose latest visit calls for another; live
-- members installed, and among them priority persons.
CREATE TABLE tally_campaigns (
    area_id text NOT NULL,
    campaign_id text NOT NULL,
    visited integer NOT NULL,
    revisit integer NOT NULL,
    installed integer NOT NULL,
    priority_installed integer NOT NULL,
    PRIMARY KEY (campaign_id, area_id)
);

-- The installs above by the day (Vietnam time) their status was recorded: the trend.
CREATE TABLE tally_days (
    area_id text NOT NULL,
    campaign_id text NOT NULL,
    day text NOT NULL,
    installed integer NOT NULL,
    PRIMARY KEY (campaign_id, area_id, day)
);

-- One row once the tallies hold everything (an existing database is counted at the first
-- start after this migration).
CREATE TABLE tally_state (
    id integer PRIMARY KEY CHECK (id = 1),
    built_at text NOT NULL
);
