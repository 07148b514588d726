-- What the field app reports of its phone's health at each sync (docs/SYNC.md, the report):
-- the storage the app uses and has left, and its last errors as codes (JSON), so that the
-- console shows a phone in trouble before its changes are lost. No personal data.
ALTER TABLE devices ADD COLUMN storage_used_bytes bigint;
ALTER TABLE devices ADD COLUMN storage_free_bytes bigint;
ALTER TABLE devices ADD COLUMN last_errors text;
