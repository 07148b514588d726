-- The console (docs/CONSOLE.md). A user given a one-time password must set their own before
-- anything else; a user's phone number, from the accounts spreadsheet.
ALTER TABLE users ADD COLUMN must_change_password boolean NOT NULL DEFAULT false;
ALTER TABLE users ADD COLUMN phone text NOT NULL DEFAULT '';
-- What the field app reports at each sync (`POST /sync/report`): its version, the changes
-- waiting on the phone and when the oldest was made.
ALTER TABLE devices ADD COLUMN app_version text;
ALTER TABLE devices ADD COLUMN pending_changes bigint;
ALTER TABLE devices ADD COLUMN oldest_pending_at timestamptz;
ALTER TABLE devices ADD COLUMN reported_at timestamptz;
-- The campaign's denominator where an area has no target: registered persons or smartphone
-- owners.
ALTER TABLE campaigns ADD COLUMN denominator text NOT NULL DEFAULT 'registered'
    CHECK (denominator IN ('registered', 'smartphone'));
