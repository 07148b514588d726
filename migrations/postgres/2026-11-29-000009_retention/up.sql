-- Retention (`retention.rs`): a household or member whose personal data was removed keeps
-- when that happened, and a member the decade of their birth year in place of the year.
ALTER TABLE households ADD COLUMN anonymized_at timestamptz;
ALTER TABLE members ADD COLUMN anonymized_at timestamptz;
ALTER TABLE members ADD COLUMN birth_decade integer;
