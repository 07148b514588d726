ALTER TABLE duplicates ADD CONSTRAINT duplicates_household_a_fkey
    FOREIGN KEY (household_a) REFERENCES households (id);
ALTER TABLE duplicates ADD CONSTRAINT duplicates_household_b_fkey
    FOREIGN KEY (household_b) REFERENCES households (id);
ALTER TABLE duplicates ADD CONSTRAINT duplicates_area_a_fkey
    FOREIGN KEY (area_a) REFERENCES areas (id);
ALTER TABLE duplicates ADD CONSTRAINT duplicates_area_b_fkey
    FOREIGN KEY (area_b) REFERENCES areas (id);
