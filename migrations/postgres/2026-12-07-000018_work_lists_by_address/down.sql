DROP INDEX households_live_address;
