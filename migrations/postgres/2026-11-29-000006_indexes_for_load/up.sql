-- A pull follows the log in the caller's areas only: by area, from its cursor on. Without
-- this index every pull read every row written since its cursor in the whole database (a
-- district's 200 devices: thousands of rows per pull, most of them filtered out).
CREATE INDEX changes_area ON changes (area_id, txid, id);

-- Whether a household was visited in a campaign (the work lists, progress): both at once.
CREATE INDEX visits_household_campaign ON visits (household_id, campaign_id);
