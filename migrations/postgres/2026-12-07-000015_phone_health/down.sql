ALTER TABLE devices DROP COLUMN last_errors;
ALTER TABLE devices DROP COLUMN storage_free_bytes;
ALTER TABLE devices DROP COLUMN storage_used_bytes;
