-- The change log, partitioned by the week its rows were written (weeks start on Monday,
-- 00:00 UTC), so that `gocua sync prune` drops whole weeks instead of deleting rows. The
-- weeks are tables named `changes_wYYYYMMDD` (their Monday), made by gocua at every start
-- and prune (`store::weeks`); a row written where no week is made yet lands in
-- `changes_default`, and the next start or prune moves it into its week.
--
-- No primary key: a partitioned table's would have to include `created_at`, and every
-- insert would pay for an index no read uses. The ids still come from one sequence.
ALTER SEQUENCE changes_id_seq OWNED BY NONE;
ALTER TABLE changes RENAME TO changes_unpartitioned;
DROP INDEX changes_cursor;
DROP INDEX changes_device;
DROP INDEX changes_area;

CREATE TABLE changes (
    id bigint NOT NULL DEFAULT nextval('changes_id_seq'),
    txid bigint NOT NULL DEFAULT (pg_current_xact_id()::text::bigint),
    entity text NOT NULL,
    entity_id uuid NOT NULL,
    household_id uuid,
    area_id uuid,
    op text NOT NULL,
    version bigint NOT NULL,
    created_at timestamptz NOT NULL
) PARTITION BY RANGE (created_at);
ALTER SEQUENCE changes_id_seq OWNED BY changes.id;
CREATE TABLE changes_default PARTITION OF changes DEFAULT;
-- The weeks the log has rows in, so that each row is copied once, into its week.
DO $$
DECLARE
    monday date;
BEGIN
    FOR monday IN
        SELECT DISTINCT date_trunc('week', created_at AT TIME ZONE 'UTC')::date
        FROM changes_unpartitioned
    LOOP
        EXECUTE format(
            'CREATE TABLE %I PARTITION OF changes FOR VALUES FROM (%L) TO (%L)',
            'changes_w' || to_char(monday, 'YYYYMMDD'),
            monday || ' 00:00:00+00',
            (monday + 7) || ' 00:00:00+00');
    END LOOP;
END
$$;

INSERT INTO changes (id, txid, entity, entity_id, household_id, area_id, op, version, created_at)
SELECT id, txid, entity, entity_id, household_id, area_id, op, version, created_at
FROM changes_unpartitioned;
DROP TABLE changes_unpartitioned;

CREATE INDEX changes_cursor ON changes (txid, id);
CREATE INDEX changes_device ON changes (entity_id, txid, id) WHERE entity = 'device';
CREATE INDEX changes_area ON changes (area_id, txid, id);
