-- On SQLite every change has txid 0 and ids in commit order (one writer at a time): pulls
-- read the log in id (rowid) order, which needs no index of its own.
DROP INDEX changes_cursor;
