#!/usr/bin/env bash
# An absent host behind a router (the router's ARP fails, it answers host-unreachable after
# ~3 s): canreach and `nc -z` in one hyperfine run. A lab of three network namespaces
# (198.18.0.0/15, no route out) is built and deleted here. 2 s between runs so the router's
# ICMP budget toward the client (a burst of ~6, then 1/s) refills as between independent checks.
# Needs root, iproute2, hyperfine, netcat-openbsd.   Usage: sudo bench/absent.sh [RUNS]
runs=${1:-5}
source "$(dirname "$0")/lib.sh"
lab_up "cra$$"
ip netns exec $c "$bin" --no-trace 198.18.2.2 22 >/dev/null || true
inc="ip netns exec $c"
$inc "$bin" --json 198.18.2.99 5432 | python3 -c 'import json,sys; v=json.load(sys.stdin); print("canreach:", v["verdict"], "· alive:", v["liveness"]["alive"], "· walk:", v["trace"] is not None, "·", v["elapsed_ms"], "ms")' || true
sleep 2
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
hyperfine -N --runs "$runs" -i --style none --prepare "sleep 2" --export-json "$out/absent.json" \
  -n "canreach 198.18.2.99 5432" "$inc $bin 198.18.2.99 5432" \
  -n "nc -z -w 5 198.18.2.99 5432" "$inc nc -z -w 5 198.18.2.99 5432" >/dev/null
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$out/absent.json" <<'PY'
import json, sys
res = json.load(open(sys.argv[1]))["results"]
for r in res:
    print(f"| `{r['command']}` | {r['median']:.3f} s | {r['min']:.3f} s | {r['max']:.3f} s |")
print(f"| **canreach − nc (medians)** | **{(res[0]['median'] - res[1]['median']) * 1000:+.0f} ms** | | |")
PY
