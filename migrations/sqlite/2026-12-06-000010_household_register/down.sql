DROP INDEX households_external_id;
ALTER TABLE members DROP COLUMN external_id;
ALTER TABLE households DROP COLUMN external_id;
