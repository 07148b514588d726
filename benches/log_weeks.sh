#!/usr/bin/env bash
# The change log by week (PostgreSQL): what partitioning `changes` by week costs a pull's
# read of the log, and what it saves a prune. Two databases hold the same log, WEEKS weeks of
# ROWS_PER_WEEK rows over AREAS villages: `flat` as the log was before the migration
# `changes_by_week` (one table), `weeks` after it (one partition a week, made by the
# migration). Then, with pgbench (prepared statements, one client, BENCH_SECONDS
# each), the statement a pull pages the log with (`store::changes::page`: ten villages, 500
# rows) from a cursor in the last week and from one in the first week, and the insert of a
# write's five log rows; then a week's prune:
# deleting its rows and vacuuming (flat) against dropping its table (weeks).
#
#   bash benches/log_weeks.sh      (PG_URL, WEEKS, ROWS_PER_WEEK, AREAS, BENCH_SECONDS to change)
#
# Figures are in docs/BENCHMARKS.md, "The change log by week".
set -euo pipefail
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432}
WEEKS=${WEEKS:-14}
ROWS_PER_WEEK=${ROWS_PER_WEEK:-500000}
AREAS=${AREAS:-10000}
SECONDS_EACH=${BENCH_SECONDS:-15}
export PGOPTIONS='-c client_min_messages=warning'
here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

psql_at() { psql -X -q -v ON_ERROR_STOP=1 "$PG_URL/$1" "${@:2}"; }
psql_at postgres -c "DROP DATABASE IF EXISTS gocua_bench_flat" -c "DROP DATABASE IF EXISTS gocua_bench_weeks" \
    -c "CREATE DATABASE gocua_bench_flat"

# The log as the migrations before `changes_by_week` made it, filled: ids and transaction
# ids rise together (five rows a transaction), each week's rows written in that week.
psql_at gocua_bench_flat <<SQL
CREATE TABLE changes (
    id bigserial PRIMARY KEY,
    txid bigint NOT NULL DEFAULT (pg_current_xact_id()::text::bigint),
    entity text NOT NULL, entity_id uuid NOT NULL, household_id uuid, area_id uuid,
    op text NOT NULL, version bigint NOT NULL, created_at timestamptz NOT NULL);
INSERT INTO changes (id, txid, entity, entity_id, household_id, area_id, op, version, created_at)
SELECT g, 1000 + g / 5, 'household', gen_random_uuid(), gen_random_uuid(),
       ('00000000-0000-0000-0000-' || lpad((g % $AREAS)::text, 12, '0'))::uuid, 'upsert', 1,
       date_trunc('week', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
         - interval '1 week' * ($WEEKS - 1)
         + interval '1 week' * (g - 1) / ($WEEKS::bigint * $ROWS_PER_WEEK)
FROM generate_series(1, $WEEKS::bigint * $ROWS_PER_WEEK) g;
SELECT setval('changes_id_seq', $WEEKS::bigint * $ROWS_PER_WEEK) \gset
CREATE INDEX changes_cursor ON changes (txid, id);
CREATE INDEX changes_device ON changes (entity_id, txid, id) WHERE entity = 'device';
CREATE INDEX changes_area ON changes (area_id, txid, id);
VACUUM ANALYZE changes;
SQL
psql_at postgres -c "CREATE DATABASE gocua_bench_weeks TEMPLATE gocua_bench_flat"

# The migration, which makes the weeks the rows fall in and copies each row into its week.
psql_at gocua_bench_weeks -f "$here/migrations/postgres/2026-12-07-000016_changes_by_week/up.sql"
psql_at gocua_bench_weeks -c "VACUUM ANALYZE changes_default" -c "ANALYZE changes"

total=$((WEEKS * ROWS_PER_WEEK))
# The page statement of `store::changes::page` on PostgreSQL, for ten villages.
cat > "$work/page.sql" <<SQL
\set a random(0, $AREAS - 11)
\set t CURSOR
SELECT txid, id, entity, entity_id FROM changes
WHERE ((txid > :t) OR (txid = :t AND id > (:t - 1000) * 5)) AND txid >= :t AND txid < $((1000 + total / 5 + 1))
  AND (area_id = ANY (ARRAY(SELECT ('00000000-0000-0000-0000-' || lpad((:a + g)::text, 12, '0'))::uuid
                            FROM generate_series(0, 9) g))
       OR (entity = 'device' AND entity_id = '00000000-0000-0000-0000-000000000001'))
ORDER BY txid, id LIMIT 500;
SQL
page() { # database, cursor txid → statements per second
    sed "s/CURSOR/$2/" "$work/page.sql" > "$work/run.sql"
    pgbench -n -M prepared -c 1 -T "$SECONDS_EACH" -f "$work/run.sql" "$PG_URL/$1" \
        >"$work/pgbench.out" 2>&1 || { cat "$work/pgbench.out" >&2; exit 1; }
    awk '/^latency average/ {print $4}' "$work/pgbench.out"
}
# A write's rows of the log: five, in one statement, as the write path's flush appends them.
cat > "$work/write.sql" <<SQL
INSERT INTO changes (entity, entity_id, household_id, area_id, op, version, created_at)
SELECT 'member', gen_random_uuid(), gen_random_uuid(),
       '00000000-0000-0000-0000-000000000007', 'upsert', 1, now()
FROM generate_series(1, 5);
SQL
write() { # database → ms a statement
    pgbench -n -M prepared -c 1 -T "$SECONDS_EACH" -f "$work/write.sql" "$PG_URL/$1" \
        >"$work/pgbench.out" 2>&1 || { cat "$work/pgbench.out" >&2; exit 1; }
    awk '/^latency average/ {print $4}' "$work/pgbench.out"
}
recent=$((1000 + (total - ROWS_PER_WEEK / 2) / 5))
first=$((1000 + ROWS_PER_WEEK / 2 / 5))
echo "log: $WEEKS weeks of $ROWS_PER_WEEK rows, $AREAS villages"
for db in flat weeks; do
    echo "$db: a page from a cursor in the last week: $(page gocua_bench_$db $recent) ms; in the first week: $(page gocua_bench_$db $first) ms; a write's five log rows: $(write gocua_bench_$db) ms"
done

oldest=$(psql_at gocua_bench_weeks -At -c "SELECT min(relname) FROM pg_class WHERE relname ~ '^changes_w[0-9]{8}$'")
cut="'$(date -u -d "${oldest#changes_w} + 7 days" +%F) 00:00:00+00'"
start=$(date +%s.%N)
psql_at gocua_bench_flat -c "DELETE FROM changes WHERE created_at < $cut" -c "VACUUM changes"
flat=$(echo "$(date +%s.%N) - $start" | bc)
start=$(date +%s.%N)
psql_at gocua_bench_weeks -c "DROP TABLE $oldest"
weeks=$(echo "$(date +%s.%N) - $start" | bc)
printf 'prune of the oldest week (%s rows): flat, DELETE and VACUUM %.2f s; weeks, DROP TABLE %.3f s\n' \
    "$ROWS_PER_WEEK" "$flat" "$weeks"
psql_at postgres -c "DROP DATABASE gocua_bench_flat" -c "DROP DATABASE gocua_bench_weeks"
