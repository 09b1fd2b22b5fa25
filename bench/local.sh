#!/usr/bin/env bash
# What local inspection (listeners, owners) costs on an open loopback port, with the machine's
# own processes and with 2,000 more idle `sleep`s (started and killed here by pid) — the
# owner's pid either before the sleeps in /proc order (listener started first) or after them
# (listener started last): the owner search's cost depends on where the owner sits, and its
# budget (local::OWNER_SEARCH_BUDGET) caps it. canreach, `canreach --no-local` and `nc -z`
# side by side in one hyperfine run per case. Loopback only.
# Usage: bench/local.sh [RUNS] [EXTRA_PROCESSES]
runs=${1:-200}
extra=${2:-2000}
source "$(dirname "$0")/lib.sh"
sleeps=()
trap 'kill "${sleeps[@]}" 2>/dev/null || true; bench_cleanup' EXIT

measure() {
  local label=$1 port=$2
  local n; n=$(ls -d /proc/[0-9]* | wc -l)
  hyperfine -N --warmup 20 --runs "$runs" -i --style none --export-json "$out/local-$label.json" \
    -n "canreach ($label, $n processes)" "$bin 127.0.0.1 $port" \
    -n "canreach --no-local ($label, $n processes)" "$bin --no-local 127.0.0.1 $port" \
    -n "nc -z ($label, $n processes)" "nc -z 127.0.0.1 $port" >/dev/null
  python3 - "$out/local-$label.json" <<'PY'
import json, sys
res = json.load(open(sys.argv[1]))["results"]
for r in res:
    print(f"| `{r['command'].split(' (')[0]}` | {r['command'].split('(')[-1].rstrip(')')} | {r['median']*1000:.2f} ms | {r['mean']*1000:.2f} ± {r['stddev']*1000:.2f} ms |")
d = (res[0]["median"] - res[2]["median"]) * 1000
print(f"| **canreach − nc (medians)** | | **{d:+.2f} ms** | |")
PY
  # Did the owner search finish (the listener's process named)?
  "$bin" --json 127.0.0.1 "$port" | python3 -c 'import json,sys; v=json.load(sys.stdin); print("  owner:", (v["local"]["listeners"][0].get("process") or {}).get("name"))'
}

echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| command | case | median | mean ± σ |"
echo "|---|---|---|---|"
# Ports below the ephemeral range (32768–60999): a client's socket lingering in FIN_WAIT2 on a
# port in that range makes the second listener's bind fail, and "owner last" then measured a
# closed port.
accept_loop 127.0.0.1 27211          # owner before the extra processes
measure usual 27211
for _ in $(seq "$extra"); do sleep 600 & sleeps+=($!); done
# pid_max is often 32768: the new pids may wrap around below the first listener's, which then
# is not "first" in /proc's order. Say where each owner sits.
echo "  pids: first listener ${bench_pids[0]}, sleeps ${sleeps[0]}…${sleeps[-1]} (pid_max $(cat /proc/sys/kernel/pid_max))"
accept_loop 127.0.0.1 27212          # owner after them
nc -z 127.0.0.1 27212 || { echo "the second listener is not listening" >&2; exit 1; }
echo "  second listener ${bench_pids[-1]}"
measure owner-first 27211
measure owner-last 27212
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
