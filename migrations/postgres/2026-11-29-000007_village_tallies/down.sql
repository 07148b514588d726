DROP TABLE tally_state;
DROP TABLE tally_days;
DROP TABLE tally_campaigns;
DROP TABLE tally_villages;
