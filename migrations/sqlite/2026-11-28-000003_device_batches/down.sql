CREATE TABLE device_ops (
    device_id text NOT NULL REFERENCES devices (id),
    seq bigint NOT NULL,
    op_id text NOT NULL,
    op_hash text NOT NULL,
    result text NOT NULL,
    skew_ms bigint NOT NULL DEFAULT 0,
    created_at text NOT NULL,
    PRIMARY KEY (device_id, seq)
);

INSERT INTO device_ops (device_id, seq, op_id, op_hash, result, created_at)
SELECT b.device_id, b.first_seq + r.key,
       COALESCE(json_extract(r.value, '$.op_id'), '00000000-0000-0000-0000-000000000000'),
       substr(b.op_hashes, r.key * 32 + 1, 32), r.value, b.created_at
FROM device_batches b, json_each(b.results) r;

DROP TABLE device_batches;
