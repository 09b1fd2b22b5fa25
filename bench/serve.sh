#!/usr/bin/env bash
# canreach serve beside Debian's prometheus-blackbox-exporter, in the same run:
#   1. throughput: N tcp_connect probes of an open loopback port, 16 at a time from one
#      Python client (persistent connections), each exporter ROUNDS times, alternating;
#   2. memory: peak RSS (VmHWM) of each exporter after that load;
#   3. filtered: 16 probes at once of a port the lab's server drops, with Prometheus's
#      X-Prometheus-Scrape-Timeout-Seconds: 2 (deadline 1.5 s), from inside the lab.
# Usage: bench/serve.sh [N=400] [ROUNDS=7]
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
n=${1:-400}
rounds=${2:-7}
bbx=$(command -v prometheus-blackbox-exporter) || { echo "needs prometheus-blackbox-exporter (apt-get install prometheus-blackbox-exporter)"; exit 1; }

tmp=$(mktemp -d)
bench_cleanup_serve() { rm -rf "$tmp"; bench_cleanup; }
trap bench_cleanup_serve EXIT
cat > "$tmp/modules.yml" <<'EOF'
modules:
  tcp_connect:
    prober: tcp
EOF

# The client: N probes of $TARGET, 16 at a time over persistent connections; prints the
# wall time in seconds, and each probe's time, status, probe_success and
# probe_failure_info lines to $OUT.
client=$tmp/client.py
cat > "$client" <<'EOF'
import http.client, sys, threading, time, os
port, n = int(sys.argv[1]), int(sys.argv[2])
header = sys.argv[3] if len(sys.argv) > 3 else None
target = os.environ["TARGET"]
lock = threading.Lock(); left = [n]; results = []
def worker():
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    while True:
        with lock:
            if left[0] == 0: return
            left[0] -= 1
        h = {"X-Prometheus-Scrape-Timeout-Seconds": header} if header else {}
        t = time.monotonic()
        c.request("GET", "/probe?module=tcp_connect&target=" + target, headers=h)
        r = c.getresponse(); body = r.read().decode()
        took = time.monotonic() - t
        ok = [l for l in body.splitlines() if l.startswith("probe_success ")]
        why = [l for l in body.splitlines() if l.startswith("probe_failure_info")]
        with lock: results.append((took, r.status, ok[0] if ok else "-", why[0] if why else ""))
start = time.monotonic()
ts = [threading.Thread(target=worker) for _ in range(16)]
[t.start() for t in ts]; [t.join() for t in ts]
wall = time.monotonic() - start
print(f"{wall:.4f}")
with open(os.environ["OUT"], "w") as f:
    for r in results: f.write(f"{r[0]:.4f} {r[1]} {r[2]} {r[3]}\n")
EOF
load() { python3 "$client" "$@"; }

hwm() { awk '/VmHWM/ {print $2 / 1024 " MiB"}' "/proc/$1/status"; }

# 1 and 2: loopback.
accept_loop 127.0.0.1 47101
"$bbx" --config.file="$tmp/modules.yml" --web.listen-address=127.0.0.1:47115 >"$tmp/bbx.log" 2>&1 &
bench_pids+=($!); bbx_pid=$!
"$bin" serve --listen 127.0.0.1:47116 2>"$tmp/serve.log" &
bench_pids+=($!); serve_pid=$!
sleep 1
export TARGET=127.0.0.1:47101 OUT=$tmp/load.out
# One warm-up each (the first probe of each loads the trust store, the runtime's threads …).
load 47115 16 >/dev/null; load 47116 16 >/dev/null
bt=(); ct=()
failed() { awk '$3" "$4 != "probe_success 1"' "$OUT" | grep -q . && echo "$1: a probe did not succeed" >&2 || true; }
for i in $(seq "$rounds"); do
  bt+=("$(load 47115 "$n")"); failed blackbox_exporter
  ct+=("$(load 47116 "$n")"); failed "canreach serve"
done
med() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "throughput, $n probes of an open loopback port, 16 at a time, $rounds rounds each:"
echo "  blackbox_exporter: ${bt[*]} s (median $(med "${bt[@]}") s)"
echo "  canreach serve:    ${ct[*]} s (median $(med "${ct[@]}") s)"
echo "peak RSS after the load: blackbox_exporter $(hwm $bbx_pid), canreach serve $(hwm $serve_pid)"
echo "open fds of canreach serve after the load: $(ls /proc/$serve_pid/fd | wc -l)"
kill $bbx_pid $serve_pid; wait $bbx_pid $serve_pid 2>/dev/null || true

# 3: a filtered port, in a lab.
lab_up crsb$$
ip netns exec $s nft -f - <<'EOF'
table inet drop5432 {
  chain c {
    type filter hook input priority 0;
    tcp dport 5432 drop
  }
}
EOF
ip netns exec $c "$bbx" --config.file="$tmp/modules.yml" --web.listen-address=127.0.0.1:47115 >"$tmp/bbx2.log" 2>&1 &
bench_pids+=($!)
ip netns exec $c "$bin" serve --listen 127.0.0.1:47116 2>"$tmp/serve2.log" &
bench_pids+=($!)
sleep 1
export TARGET=198.18.2.2:5432
for port in 47115 47116; do
  name=$([ $port = 47115 ] && echo "blackbox_exporter" || echo "canreach serve")
  wall=$(ip netns exec $c env TARGET=$TARGET OUT=$OUT python3 "$client" $port 16 2)
  slowest=$(sort -n "$OUT" | tail -1 | cut -d' ' -f1)
  echo "filtered, 16 at once, scrape timeout 2 s: $name all answered in $wall s, slowest $slowest s"
  sort -k3 "$OUT" | awk '{$1=""; print}' | sort | uniq -c | sed 's/^/    /'
done
