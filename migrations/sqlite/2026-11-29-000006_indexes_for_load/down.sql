DROP INDEX visits_household_campaign;
