#!/usr/bin/env bash
# Whole-process cost of one check of an open and of a closed port on 127.0.0.1, canreach side
# by side with `nc -z` and `nmap -sT`, in one hyperfine run each; plus peak memory.
# Traffic goes to loopback only. Needs: hyperfine, netcat-openbsd, nmap, python3.
# Usage: bench/loopback.sh [RUNS]   (writes bench/results/loopback-*.md and prints a summary)
runs=${1:-300}
source "$(dirname "$0")/lib.sh"
accept_loop 127.0.0.1 27201   # below the ephemeral range (see local.sh)
open=27201
closed=27202   # nothing listens here (checked below)
if nc -z 127.0.0.1 $closed 2>/dev/null; then echo "port $closed is in use; pick another" >&2; exit 1; fi

for case in open closed; do
  port=${!case}
  hyperfine -N --warmup 20 --runs "$runs" -i --style none --export-json "$out/loopback-$case.json" \
    -n "canreach ($case)" "$bin 127.0.0.1 $port" \
    -n "nc -z ($case)" "nc -z 127.0.0.1 $port" \
    -n "nmap -sT ($case)" "nmap -sT -Pn -n -p $port 127.0.0.1"
done

echo
echo "| case | tool | median | mean ± σ | min |"
echo "|---|---|---|---|---|"
python3 - "$out"/loopback-open.json "$out"/loopback-closed.json <<'PY'
import json, sys
for path in sys.argv[1:]:
    res = json.load(open(path))["results"]
    base = {}
    for r in res:
        ms = lambda x: f"{x*1000:.2f} ms"
        print(f"| {path.split('-')[-1][:-5]} | `{r['command']}` | {ms(r['median'])} | {ms(r['mean'])} ± {ms(r['stddev'])} | {ms(r['min'])} |")
        base[r["command"].split(" (")[0]] = r["median"]
    d = (base["canreach"] - base["nc -z"]) * 1000
    print(f"| | **canreach − nc, medians** | **{d:+.2f} ms** | | |")
PY

echo
echo "Peak resident memory (max RSS, KiB, GNU time):"
for cmd in "$bin 127.0.0.1 $open" "$bin 127.0.0.1 $closed" "$bin --json 127.0.0.1 $open" "nc -z 127.0.0.1 $open" "nmap -sT -Pn -n -p $open 127.0.0.1"; do
  # Non-zero exits (closed → 4) are expected; time prints "Command exited…" before %M.
  peak=$( (/usr/bin/time -f %M $cmd 2>&1 >/dev/null || true) | tail -1)
  printf '  %-50s %s\n' "${cmd/#$bin/canreach}" "$peak"
done
