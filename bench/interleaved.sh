#!/usr/bin/env bash
# An open loopback check, a closed one without local reads, `--version` and `nc -z`, run in
# interleaved rounds: each round runs every command once, in random order, so that the
# machine's drift (±0.5 ms between hyperfine runs on this 2-vCPU machine, more than most
# changes are worth) falls on all of them alike. hyperfine runs all of one command's runs,
# then the next's. Given another canreach binary (an earlier build), it runs in the same rounds:
# the A/B of a change. Loopback only. Needs: python3, netcat-openbsd.
# Usage: bench/interleaved.sh [ROUNDS] [OTHER_CANREACH]
# The same bytes run ~1 ms faster from a file just written by `cp` than from the linker's output
# or a file read back from disk (page-cache state, docs/benchmarks.md): both binaries are run
# from fresh copies, so that an A/B compares code, not how each file sits in the page cache.
rounds=${1:-300}
other=
if [ -n "${2:-}" ]; then
  # Resolved before lib.sh moves to the project's root.
  other=$(realpath -e "$2") || { echo "no such binary: $2" >&2; exit 2; }
fi
source "$(dirname "$0")/lib.sh"
accept_loop 127.0.0.1 27201   # below the ephemeral range (see local.sh)
closed=27202
if nc -z 127.0.0.1 $closed 2>/dev/null; then echo "port $closed is in use; pick another" >&2; exit 1; fi

copies=$(mktemp -d)
trap 'rm -rf "$copies"; bench_cleanup' EXIT
cp "$bin" "$copies/canreach"
c="$copies/canreach"
# Each command's words, commands separated by "::"; the expected exit code first.
cmds=(0 "$c" 127.0.0.1 27201 ::)
if [ -n "$other" ]; then
  cp "$other" "$copies/other"
  cmds+=(0 "$copies/other" 127.0.0.1 27201 ::)
fi
cmds+=(4 "$c" --no-local 127.0.0.1 $closed :: 0 "$c" --version :: 0 "$(command -v nc)" -z 127.0.0.1 27201)

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
    t = time.perf_counter_ns()
    _, status = os.waitpid(os.posix_spawn(cmds[i][0], cmds[i], os.environ, file_actions=quiet), 0)
    took = (time.perf_counter_ns() - t) / 1e6
    # A run that did not give the expected answer (the listener gone, a crash) is not a time.
    if os.waitstatus_to_exitcode(status) != expected[i]:
        sys.exit(f"{' '.join(cmds[i])}: exit {os.waitstatus_to_exitcode(status)}, expected {expected[i]}")
    return took
for _ in range(20):                      # warm-up
    for i in range(len(cmds)): run(i)
times = [[] for _ in cmds]
for _ in range(rounds):
    for i in random.sample(range(len(cmds)), len(cmds)):
        times[i].append(run(i))
nc = statistics.median(times[-1])
print(f"{rounds} interleaved rounds\n\n| command | median | p25 – p75 | − nc |\n|---|---|---|---|")
for c, t in zip(cmds, times):
    t.sort(); n = len(t)
    shown = ' '.join(c).replace(os.path.dirname(cmds[0][0]) + '/', '')
    print(f"| `{shown}` | {statistics.median(t):.2f} ms "
          f"| {t[n // 4]:.2f} – {t[3 * n // 4]:.2f} ms | {statistics.median(t) - nc:+.2f} ms |")
PY
