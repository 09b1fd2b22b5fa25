#!/usr/bin/env bash
# One check of a database or cache, canreach beside the service's own cheapest round trip, in
# one hyperfine run per service: `pg_isready`, `redis-cli ping`, `mariadb-admin ping` (issue
# 20's budget: canreach ≤ 1.2× the native client). Real servers (PostgreSQL 15 asking for a
# SCRAM password, Redis without protected mode, MariaDB with an account for any host) run as
# `nobody` in the lab's server namespace (198.18.2.2), data in a temporary directory; every
# command runs from the client namespace (198.18.1.2) through the router.
# Usage: bench/services.sh [RUNS]
runs=${1:-100}
source "$(dirname "$0")/lib.sh"
dir=$(mktemp -d /tmp/canreach-bench-services.XXXXXX)
chown 65534:65534 "$dir"
trap 'bench_cleanup; rm -rf "$dir"' EXIT
lab_up crsvc
nobody=(setpriv --reuid=65534 --regid=65534 --clear-groups --)
in_s=(ip netns exec "$s" "${nobody[@]}")

# PostgreSQL 15: asks this client for a SCRAM password.
"${nobody[@]}" /usr/lib/postgresql/15/bin/initdb -D "$dir/pg" -U postgres --auth=trust -N >/dev/null
echo "host all all 198.18.1.0/24 scram-sha-256" >"$dir/pg/pg_hba.conf"
printf "listen_addresses = '198.18.2.2'\nunix_socket_directories = '%s'\nfsync = off\n" "$dir" >>"$dir/pg/postgresql.conf"
"${in_s[@]}" /usr/lib/postgresql/15/bin/postgres -D "$dir/pg" >"$dir/pg.log" 2>&1 &
bench_pids+=($!)
# Redis: answers PING.
"${in_s[@]}" redis-server --port 6379 --bind 198.18.2.2 --protected-mode no --save '' --dir "$dir" >"$dir/redis.log" 2>&1 &
bench_pids+=($!)
# MariaDB: an account for any host (canreach and mariadb-admin get "access denied").
"${nobody[@]}" mariadb-install-db --no-defaults --datadir="$dir/my" --auth-root-authentication-method=normal --skip-test-db >/dev/null
echo "CREATE USER 'app'@'%' IDENTIFIED BY 'x';" >"$dir/init.sql"
"${in_s[@]}" mariadbd --no-defaults --datadir="$dir/my" --socket="$dir/my.sock" --pid-file="$dir/my.pid" \
  --bind-address=198.18.2.2 --port=3306 --skip-name-resolve --init-file="$dir/init.sql" >"$dir/my.log" 2>&1 &
bench_pids+=($!)
for port in 5432 6379 3306; do
  for _ in $(seq 100); do ip netns exec "$c" nc -z 198.18.2.2 $port 2>/dev/null && break; sleep 0.1; done
done

in_c="ip netns exec $c"
measure() {
  local name=$1 port=$2 native=$3
  hyperfine -N --warmup 10 --runs "$runs" --style none --export-json "$out/services-$name.json" \
    -n "canreach ($name)" "$in_c $bin --no-trace 198.18.2.2 $port" \
    -n "$native" "$in_c $native" >/dev/null
  python3 - "$out/services-$name.json" <<'PY'
import json, sys
res = json.load(open(sys.argv[1]))["results"]
c, n = res[0]["median"], res[1]["median"]
print(f"| `{res[0]['command'].split(' (')[0]}` ({res[0]['command'].split('(')[1].rstrip(')')}) | {c*1000:.2f} ms | `{res[1]['command']}` | {n*1000:.2f} ms | **{c/n:.2f}×** |")
PY
}

echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
# What canreach said of each (the check being timed).
for port in 5432 6379 3306; do
  $in_c "$bin" --json --no-trace 198.18.2.2 $port | python3 -c 'import json,sys; v=json.load(sys.stdin); print("  ", v["verdict"], [f["message"] for f in v["findings"]])'
done
echo "| canreach | median | native client | median | ratio |"
echo "|---|---|---|---|---|"
measure postgres 5432 "pg_isready -h 198.18.2.2 -p 5432 -t 5"
measure redis 6379 "redis-cli -h 198.18.2.2 -p 6379 ping"
measure mariadb 3306 "mariadb-admin -h 198.18.2.2 -P 3306 --connect-timeout=5 ping"
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
