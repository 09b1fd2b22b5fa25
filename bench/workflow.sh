#!/usr/bin/env bash
# Workflows: (1) 50 loopback targets (25 open, 25 closed) checked by one canreach against 50
# sequential `nc -z`; (2) memory and threads of a long `--wait`: one on a closed loopback port,
# one on a name whose only name server is silent (getaddrinfo never returns in time, inside a
# namespace built here), sampled from /proc/PID/status every few seconds.
# Traffic: loopback and the bench's own namespaces only. Needs: hyperfine, netcat-openbsd, python3.
# Usage: bench/workflow.sh [RUNS] [WAIT_SECONDS]   (writes bench/results/workflow-*; RUNS=0
# skips part 1, WAIT_SECONDS=0 part 2)
runs=${1:-20}
wait_s=${2:-180}
source "$(dirname "$0")/lib.sh"

# --- 1. 50 targets at once against 50 sequential nc -z -----------------------------------
if [ "$runs" -gt 0 ]; then
# Ports below the ephemeral range (32768-60999): a client port of an earlier run's connection
# that the server still holds (FIN_WAIT2) would otherwise make one of them unbindable.
python3 -c '
import socket, select
ls, held = [], []
for p in range(27100, 27125):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", p)); s.listen(4096); s.setblocking(False); ls.append(s)
while True:
    r, _, _ = select.select(ls, [], [])
    for s in r:
        try:
            c, _ = s.accept(); held.append(c)
            if len(held) > 4000: held.pop(0).close()
        except BlockingIOError:
            pass
' &
bench_pids+=($!)
sleep 0.5
kill -0 "${bench_pids[-1]}" || { echo "the listener did not start" >&2; exit 1; }
for p in $(seq 27100 27124); do
  nc -z 127.0.0.1 "$p" || { echo "port $p is not open" >&2; exit 1; }
done
for p in $(seq 27125 27149); do
  if nc -z 127.0.0.1 "$p" 2>/dev/null; then echo "port $p is in use; pick another range" >&2; exit 1; fi
done
targets=$(for p in $(seq 27100 27149); do printf '127.0.0.1:%s ' "$p"; done)
printf '%s\n' $targets > "$out/workflow-targets.txt"
seq_nc="for p in \$(seq 27100 27149); do nc -z 127.0.0.1 \$p; done; true"
hyperfine --warmup 3 --runs "$runs" -i --style none --export-json "$out/workflow-many.json" \
  -n "canreach -q (50 targets)" "$bin -q $targets" \
  -n "canreach -q --no-local (50 targets)" "$bin -q --no-local $targets" \
  -n "canreach -q -f FILE (50 targets)" "$bin -q -f $out/workflow-targets.txt" \
  -n "50 × nc -z, one after another" "$seq_nc"
echo
echo "| command | median | mean ± σ |"
echo "|---|---|---|"
medians "$out/workflow-many.json"
fi

# --- 2. RSS and threads of a long --wait ---------------------------------------------------
[ "$wait_s" -gt 0 ] || exit 0
closed=47150
if nc -z 127.0.0.1 $closed 2>/dev/null; then echo "port $closed is in use" >&2; exit 1; fi
lab_up crwfb
mkdir -p /etc/netns/$c
printf 'nameserver 198.18.1.1\noptions timeout:5 attempts:2\n' > /etc/netns/$c/resolv.conf
# The router drops DNS: every lookup of a name not in /etc/hosts hangs for its full timeout.
ip netns exec $r nft -f - <<'NFT'
table inet bench {
  chain c {
    type filter hook input priority 0;
    udp dport 53 drop
    tcp dport 53 drop
  }
}
NFT

"$bin" -q --wait "${wait_s}s" 127.0.0.1 $closed &
p1=$!; bench_pids+=($p1)
ip netns exec $c "$bin" -q --wait "${wait_s}s" db.bench.invalid 5432 &
p2=$!; bench_pids+=($p2)
sample() { awk '/^VmRSS|^Threads/ {printf "%s ", $2}' "/proc/$1/status" 2>/dev/null; }
echo
echo "t_s closed_rss_kb closed_threads dns_rss_kb dns_threads" | tee "$out/workflow-rss.txt"
t=0
while [ $t -lt "$wait_s" ] && kill -0 $p1 2>/dev/null; do
  echo "$t $(sample $p1)$(sample $p2)" | tee -a "$out/workflow-rss.txt"
  sleep 10; t=$((t + 10))
done
wait $p1 || echo "closed-port wait exited $?"
wait $p2 || echo "silent-DNS wait exited $?"
