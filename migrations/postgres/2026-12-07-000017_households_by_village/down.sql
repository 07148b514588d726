DROP INDEX households_live_area;
