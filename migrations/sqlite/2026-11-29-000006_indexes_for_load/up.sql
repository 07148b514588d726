-- Whether a household was visited in a campaign (the work lists, progress): both at once.
-- With only (household_id, visited_at) and (campaign_id, visited_at), SQLite looked for a
-- household's visits among all of the campaign's: the unvisited list of a province under
-- load took seconds.
CREATE INDEX visits_household_campaign ON visits (household_id, campaign_id);
