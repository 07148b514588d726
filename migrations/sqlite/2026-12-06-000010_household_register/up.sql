-- The commune's household register (`register.rs`): a household's id in it (`Mã hộ`),
-- unique within the commune (the import keeps it so), and a person's (`Mã nhân khẩu`).
ALTER TABLE households ADD COLUMN external_id text;
ALTER TABLE members ADD COLUMN external_id text;
CREATE INDEX households_external_id ON households (external_id) WHERE external_id IS NOT NULL;
