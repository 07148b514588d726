DROP TABLE duplicates;
DROP TABLE duplicate_keys;
