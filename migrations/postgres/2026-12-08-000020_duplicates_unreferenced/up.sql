-- A pair's households and villages are not declared as references on PostgreSQL: each
-- declared reference is checked by a query that locks the row it names, four a pair, and the
-- duplicate check records pairs in the transaction of the write that makes them (a push that
-- gives 100 households a shared phone records hundreds). Households and areas are never
-- deleted (a household is deleted by a mark: an open pair of one is left out of the review).
ALTER TABLE duplicates DROP CONSTRAINT duplicates_household_a_fkey;
ALTER TABLE duplicates DROP CONSTRAINT duplicates_household_b_fkey;
ALTER TABLE duplicates DROP CONSTRAINT duplicates_area_a_fkey;
ALTER TABLE duplicates DROP CONSTRAINT duplicates_area_b_fkey;
