-- A household or member merged into another (docs/DUPLICATES.md) is deleted and names its
-- survivor, so that edits still queued against it on phones apply to the survivor and the
-- pull's tombstone tells phones where it went. No foreign key: the survivor is written in
-- the same transaction, and the column is read only to follow it.
ALTER TABLE households ADD COLUMN merged_into text;
ALTER TABLE members ADD COLUMN merged_into text;
