DROP TABLE village_candidates;
DROP TABLE area_moves;
DROP TABLE area_links;
DROP TABLE reorganizations;
DROP INDEX areas_code_period;
ALTER TABLE areas DROP COLUMN valid_to;
ALTER TABLE areas DROP COLUMN valid_from;
