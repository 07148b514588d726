-- The results of a device's consumed seqs, one row per batch instead of one per op: the
-- batch's seqs first_seq..last_seq (consecutive), the hash of each op (32 hex digits each,
-- in seq order) and the result answered for each (a JSON array in seq order). A replay is
-- answered from here.
CREATE TABLE device_batches (
    device_id text NOT NULL REFERENCES devices (id),
    last_seq bigint NOT NULL,
    first_seq bigint NOT NULL CHECK (first_seq BETWEEN 1 AND last_seq),
    op_hashes text NOT NULL,
    results text NOT NULL,
    created_at text NOT NULL,
    PRIMARY KEY (device_id, last_seq)
);

INSERT INTO device_batches (device_id, last_seq, first_seq, op_hashes, results, created_at)
SELECT device_id, seq, seq, substr(op_hash, 1, 32), '[' || result || ']', created_at
FROM device_ops;

DROP TABLE device_ops;
