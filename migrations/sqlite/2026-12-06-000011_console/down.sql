ALTER TABLE campaigns DROP COLUMN denominator;
ALTER TABLE devices DROP COLUMN reported_at;
ALTER TABLE devices DROP COLUMN oldest_pending_at;
ALTER TABLE devices DROP COLUMN pending_changes;
ALTER TABLE devices DROP COLUMN app_version;
ALTER TABLE users DROP COLUMN phone;
ALTER TABLE users DROP COLUMN must_change_password;
