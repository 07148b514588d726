-- A first download of a commune reads its live households village by village in id order
-- (`store::households::bulk::live_households_after`), from this index alone.
CREATE INDEX households_live_area ON households (area_id, id) WHERE deleted_at IS NULL;
