CREATE TABLE device_ops (
    device_id uuid NOT NULL REFERENCES devices (id),
    seq bigint NOT NULL,
    op_id uuid NOT NULL,
    op_hash text NOT NULL,
    result text NOT NULL,
    skew_ms bigint NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (device_id, seq)
);

INSERT INTO device_ops (device_id, seq, op_id, op_hash, result, created_at)
SELECT b.device_id, b.first_seq + r.i - 1,
       COALESCE((r.value ->> 'op_id')::uuid, '00000000-0000-0000-0000-000000000000'),
       substr(b.op_hashes, (r.i - 1)::int * 32 + 1, 32), r.value::text, b.created_at
FROM device_batches b, jsonb_array_elements(b.results::jsonb) WITH ORDINALITY AS r (value, i);

DROP TABLE device_batches;
