CREATE INDEX changes_cursor ON changes (txid, id);
