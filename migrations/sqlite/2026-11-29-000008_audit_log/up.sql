-- Who did what, when, from where (`store::audit`). Append-only: the API has no way to change
-- or remove an entry, and the database refuses to.
CREATE TABLE audit_log (
    id integer PRIMARY KEY AUTOINCREMENT,
    at text NOT NULL,
    action text NOT NULL,
    -- The user who acted (none for a failed login or the command line), and as named then.
    actor_id text,
    actor text NOT NULL,
    -- The area the action was about, for supervisors' reads: its path at the time.
    area_id text,
    area_path text,
    subject text NOT NULL,
    detail text NOT NULL,
    address text,
    request_id text
);
CREATE INDEX audit_log_at ON audit_log (at, id);
CREATE INDEX audit_log_area ON audit_log (area_path, id);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
