#!/usr/bin/env bash
# A sweep of many loopback ports: `canreach -q -f FILE` and `canreach --json -f FILE` (the
# JSON Lines to /dev/null) against `nmap -sT -Pn` over the same ports, in interleaved rounds
# (each round runs every command once, in random order: the machine's drift falls on all of
# them alike), with each run's peak resident memory (the child's ru_maxrss, from wait4).
# Ports 20000..20000+N-1 of 127.0.0.1, below the ephemeral range; listeners found there (on a
# shared machine, other programs' servers) are named, and their checks counted like the rest.
# Loopback only. Needs: python3, nmap.
# Usage: bench/sweep.sh [ROUNDS] [PORTS] [OTHER_CANREACH]
rounds=${1:-10}
ports=${2:-10000}
other=
if [ -n "${3:-}" ]; then
  other=$(realpath -e "$3") || { echo "no such binary: $3" >&2; exit 2; }
fi
source "$(dirname "$0")/lib.sh"
last=$((20000 + ports - 1))
echo "listening in 20000-$last: $(ss -Htln "sport >= :20000 and sport <= :$last" | awk '{print $4}' | tr '\n' ' ')"
list=$out/sweep-targets.txt
seq 20000 "$last" | sed 's/^/127.0.0.1:/' > "$list"
copies=$(mktemp -d)
trap 'rm -rf "$copies"; bench_cleanup' EXIT
cp "$bin" "$copies/canreach"
c="$copies/canreach"
# Each command's words, commands separated by "::"; the expected exit code first (-1: any
# verdict's, not 1 or 2).
cmds=(-1 "$c" -q -f "$list" :: -1 "$c" --json -f "$list")
if [ -n "$other" ]; then
  cp "$other" "$copies/other"
  cmds+=(:: -1 "$copies/other" -q -f "$list")
fi
cmds+=(:: 0 "$(command -v nmap)" -sT -Pn -p "20000-$last" 127.0.0.1)
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$rounds" "${cmds[@]}" <<'PY'
import os, random, statistics, sys, time
rounds, words = int(sys.argv[1]), sys.argv[2:]
cmds, cur = [], []
for w in words + ["::"]:
    if w == "::":
        cmds.append(cur)
        cur = []
    else:
        cur.append(w)
expected = [int(c.pop(0)) for c in cmds]
null = os.open(os.devnull, os.O_WRONLY)
quiet = [(os.POSIX_SPAWN_DUP2, null, 1), (os.POSIX_SPAWN_DUP2, null, 2)]
def run(i):
    t = time.perf_counter()
    _, status, usage = os.wait4(os.posix_spawn(cmds[i][0], cmds[i], os.environ, file_actions=quiet), 0)
    took = time.perf_counter() - t
    code = os.waitstatus_to_exitcode(status)
    if code != expected[i] and (expected[i] != -1 or code in (1, 2) or code < 0):
        sys.exit(f"{' '.join(cmds[i])}: exit {code}, expected {expected[i]}")
    return took, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime
run(0); run(len(cmds) - 1)               # warm-up
res = [[] for _ in cmds]
for _ in range(rounds):
    for i in random.sample(range(len(cmds)), len(cmds)):
        res[i].append(run(i))
nmap = statistics.median(t for t, _, _ in res[-1])
print(f"{rounds} interleaved rounds\n")
print("| command | median | min – max | CPU (median) | peak RSS (max) | / nmap |\n|---|---|---|---|---|---|")
for c, r in zip(cmds, res):
    t = sorted(x[0] for x in r)
    shown = ' '.join(c).replace(os.path.dirname(cmds[0][0]) + '/', '').replace(os.getcwd() + '/', '')
    print(f"| `{shown}` | {statistics.median(t):.3f} s | {t[0]:.3f} – {t[-1]:.3f} s "
          f"| {statistics.median(x[2] for x in r):.3f} s | {max(x[1] for x in r):.1f} MB "
          f"| {statistics.median(t) / nmap:.2f} |")
PY
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
