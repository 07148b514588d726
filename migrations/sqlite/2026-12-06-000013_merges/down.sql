ALTER TABLE members DROP COLUMN merged_into;
ALTER TABLE households DROP COLUMN merged_into;
