#!/usr/bin/env bash
# The fault proxy against the no-proxy limit and a real protocol-aware
# proxy, in one run: pgbench with 8 clients, select-only (-S) and its
# default TPC-B-like script, each directly, through pgbouncer (session
# mode) and through dbfault-proxy with no rule armed. Prints the TPS of
# each and the ratios the proxy is held to (>= 0.9x pgbouncer, >= 0.8x
# direct).
#
#   benches/pgbench.sh [seconds per run, default 10]
#
# Needs pgbench and pgbouncer (Debian: postgresql-client, pgbouncer) and a
# PostgreSQL at $PGHOST:$PGPORT (default 127.0.0.1:5432), database
# $PGDATABASE (default test), user $PGUSER (default postgres), trust auth.
# pgbench's tables (pgbench_*) are created there at scale 1.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-10}"
host="${PGHOST:-127.0.0.1}"
port="${PGPORT:-5432}"
db="${PGDATABASE:-test}"
user="${PGUSER:-postgres}"
bouncer_port=6433
proxy_port=6434
work="$(mktemp -d)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    [ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT

for tool in pgbench pgbouncer; do
    command -v "$tool" >/dev/null || { echo "pgbench.sh: $tool is not installed" >&2; exit 1; }
done

echo "== building dbfault-proxy (release)" >&2
cargo build --quiet --release --features proxy --bin dbfault-proxy

echo "== pgbench -i (scale 1) on $host:$port/$db" >&2
pgbench -i -q -s 1 -h "$host" -p "$port" -U "$user" "$db" >/dev/null 2>&1

cat >"$work/pgbouncer.ini" <<EOF
[databases]
$db = host=$host port=$port dbname=$db
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $bouncer_port
auth_type = trust
auth_file = $work/users.txt
pool_mode = session
max_client_conn = 100
default_pool_size = 20
logfile = $work/pgbouncer.log
pidfile = $work/pgbouncer.pid
unix_socket_dir =
EOF
echo "\"$user\" \"\"" >"$work/users.txt"
# pgbouncer refuses to run as root: as root, run it as the server's user.
chmod 755 "$work"
[ "$(id -u)" = 0 ] && chown postgres "$work"
chmod 644 "$work/pgbouncer.ini" "$work/users.txt"
if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- pgbouncer "$work/pgbouncer.ini" >"$work/pgbouncer.out" 2>&1 &
else
    pgbouncer "$work/pgbouncer.ini" >"$work/pgbouncer.out" 2>&1 &
fi
pids+=($!)
./target/release/dbfault-proxy --upstream "$host:$port" --listen "127.0.0.1:$proxy_port" >/dev/null 2>&1 &
pids+=($!)
sleep 1

# TPS of one pgbench run against port $1 with extra options $2.
tps() {
    local out
    if ! out=$(pgbench -n -c 8 -j 2 -T "$seconds" $2 -h 127.0.0.1 -p "$1" -U "$user" "$db" 2>&1); then
        echo "pgbench.sh: pgbench on port $1 failed:" >&2
        echo "$out" | tail -3 >&2
        [ -f "$work/pgbouncer.log" ] && tail -3 "$work/pgbouncer.log" >&2
        exit 1
    fi
    echo "$out" | awk '/^tps = / { print $3 }'
}

printf '%-22s %12s %12s %12s %10s %10s\n' script direct pgbouncer proxy 'vs bouncer' 'vs direct'
for script in "select-only:-S" "tpc-b:"; do
    name="${script%%:*}"
    opts="${script#*:}"
    direct=$(tps "$port" "$opts")
    bouncer=$(tps "$bouncer_port" "$opts")
    proxy=$(tps "$proxy_port" "$opts")
    awk -v n="$name" -v d="$direct" -v b="$bouncer" -v p="$proxy" \
        'BEGIN { printf "%-22s %12.0f %12.0f %12.0f %9.2fx %9.2fx\n", n, d, b, p, p / b, p / d }'
done
