ALTER SEQUENCE changes_id_seq OWNED BY NONE;
ALTER TABLE changes RENAME TO changes_by_week;
ALTER INDEX changes_cursor RENAME TO changes_by_week_cursor;
ALTER INDEX changes_device RENAME TO changes_by_week_device;
ALTER INDEX changes_area RENAME TO changes_by_week_area;

CREATE TABLE changes (
    id bigint PRIMARY KEY DEFAULT nextval('changes_id_seq'),
    txid bigint NOT NULL DEFAULT (pg_current_xact_id()::text::bigint),
    entity text NOT NULL,
    entity_id uuid NOT NULL,
    household_id uuid,
    area_id uuid,
    op text NOT NULL,
    version bigint NOT NULL,
    created_at timestamptz NOT NULL
);
ALTER SEQUENCE changes_id_seq OWNED BY changes.id;
INSERT INTO changes (id, txid, entity, entity_id, household_id, area_id, op, version, created_at)
SELECT id, txid, entity, entity_id, household_id, area_id, op, version, created_at
FROM changes_by_week;
DROP TABLE changes_by_week;

CREATE INDEX changes_cursor ON changes (txid, id);
CREATE INDEX changes_device ON changes (entity_id, txid, id) WHERE entity = 'device';
CREATE INDEX changes_area ON changes (area_id, txid, id);
