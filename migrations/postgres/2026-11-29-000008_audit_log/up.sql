-- Who did what, when, from where (`store::audit`). Append-only: the API has no way to change
-- or remove an entry, and the database refuses to.
CREATE TABLE audit_log (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL,
    action text NOT NULL,
    -- The user who acted (none for a failed login or the command line), and as named then.
    actor_id uuid,
    actor text NOT NULL,
    -- The area the action was about, for supervisors' reads: its path at the time.
    area_id uuid,
    area_path text,
    subject text NOT NULL,
    detail text NOT NULL,
    address text,
    request_id text
);
CREATE INDEX audit_log_at ON audit_log (at, id);
CREATE INDEX audit_log_area ON audit_log (area_path, id);

CREATE FUNCTION audit_log_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END
$$ LANGUAGE plpgsql;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
