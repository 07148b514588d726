DROP INDEX visits_household_campaign;
DROP INDEX changes_area;
