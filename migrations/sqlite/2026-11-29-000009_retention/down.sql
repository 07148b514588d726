ALTER TABLE members DROP COLUMN birth_decade;
ALTER TABLE members DROP COLUMN anonymized_at;
ALTER TABLE households DROP COLUMN anonymized_at;
