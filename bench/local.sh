#!/usr/bin/env bash
# What local inspection (listeners, owners, firewall) adds to a check of a port on this
# machine, with the machine's own processes and with 300 more (idle `sleep`s, each holding a
# few fds, started and killed here by pid). canreach with and without inspection, and `nc -z`,
# side by side in one hyperfine run per process count. Loopback only.
# Usage: bench/local.sh [RUNS]   (root shows the firewall part too)
runs=${1:-200}
source "$(dirname "$0")/lib.sh"
accept_loop 127.0.0.1 47011
sleeps=()
trap 'kill "${sleeps[@]}" 2>/dev/null || true; bench_cleanup' EXIT

measure() {
  local label=$1
  local n; n=$(ls -d /proc/[0-9]* | wc -l)
  hyperfine -N --warmup 20 --runs "$runs" -i --style none --export-json "$out/local-$label.json" \
    -n "canreach, inspection ($n processes)" "$bin 127.0.0.1 47011" \
    -n "canreach --no-local ($n processes)" "$bin --no-local 127.0.0.1 47011" \
    -n "nc -z ($n processes)" "nc -z 127.0.0.1 47011" >/dev/null
  python3 - "$out/local-$label.json" <<'PY'
import json, sys
res = json.load(open(sys.argv[1]))["results"]
for r in res:
    print(f"| `{r['command'].split(' (')[0]}` | {r['command'].split('(')[-1].rstrip(')')} | {r['median']*1000:.2f} ms | {r['mean']*1000:.2f} ± {r['stddev']*1000:.2f} ms |")
d = (res[0]["median"] - res[1]["median"]) * 1000
print(f"| **inspection adds (medians)** | | **{d:+.2f} ms** | |")
PY
}

echo "| command | processes | median | mean ± σ |"
echo "|---|---|---|---|"
measure base
for i in $(seq 300); do sleep 600 & sleeps+=($!); done
measure plus300
