#!/usr/bin/env bash
# A PostgreSQL cluster with the stock settings (autovacuum on, no TLS), on a free port in a
# temporary folder, with pg_stat_statements preloaded: where the load bench profiles what
# PostgreSQL runs (`--statements`), and a comparison for the machine's own cluster, whose
# autovacuum is off and whose loopback connections use TLS.
#
#   bash benches/pg_stock.sh start [PORT]   # prints the URL for GOCUA_BENCH_PG_URL
#   bash benches/pg_stock.sh stop
#
# e.g. GOCUA_BENCH_PG_URL=$(bash benches/pg_stock.sh start) cargo bench --locked --bench load -- postgres --statements
# Figures are in docs/BENCHMARKS.md, "A sync that costs PostgreSQL less".
set -euo pipefail
DIR=${PG_STOCK_DIR:-/tmp/gocua-pg-stock}
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
as_postgres() { if [ "$(id -un)" = postgres ]; then "$@"; else su postgres -c "$(printf '%q ' "$@")"; fi; }

case "${1:-}" in
start)
    PORT=${2:-5499}
    if [ ! -f "$DIR/data/PG_VERSION" ]; then
        mkdir -p "$DIR"
        chown postgres "$DIR"
        as_postgres "$bin/initdb" -D "$DIR/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$DIR/initdb.log"
        cat >>"$DIR/data/postgresql.conf" <<EOF
port = $PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$DIR'
shared_preload_libraries = 'pg_stat_statements'
pg_stat_statements.track = all
pg_stat_statements.track_planning = on
EOF
    fi
    as_postgres "$bin/pg_ctl" -D "$DIR/data" -l "$DIR/log" -w start >/dev/null
    echo "postgres://postgres@127.0.0.1:$(sed -n 's/^port = //p' "$DIR/data/postgresql.conf")"
    ;;
stop)
    as_postgres "$bin/pg_ctl" -D "$DIR/data" -w stop >/dev/null
    rm -rf "$DIR"
    ;;
*)
    echo "usage: $0 start [PORT] | stop" >&2
    exit 2
    ;;
esac
