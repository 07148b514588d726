-- A work list's page reads a village's live households in address order and stops once the
-- page is full (`reports::lists`), from this index, however large the village.
CREATE INDEX households_live_address ON households (area_id, address, head_name, id) WHERE deleted_at IS NULL;
