# Shared by the bench scripts (sourced, not run). Traffic stays on loopback or inside the
# namespaces built here (198.18.0.0/15, fd00::/8, no route out); everything started is
# stopped by pid and every namespace deleted by `bench_cleanup` (installed as the EXIT trap).

set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo build --release --quiet
bin=$PWD/target/release/canreach
out=bench/results
mkdir -p "$out"
bench_pids=()
bench_netns=()

bench_cleanup() {
  kill "${bench_pids[@]}" 2>/dev/null || true
  for ns in "${bench_netns[@]}"; do ip netns del "$ns" 2>/dev/null || true; rm -rf "/etc/netns/$ns"; done
}
trap bench_cleanup EXIT

# accept_loop ADDR PORT [NETNS]: a listener that accepts at once (so its backlog never fills)
# and holds each connection (a server waiting for its client: a close at once would be, rightly,
# a `service_error`), in the background; its pid is the last of bench_pids.
accept_loop() {
  local pre=()
  [ -n "${3:-}" ] && pre=(ip netns exec "$3")
  "${pre[@]}" python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(4096)
held = []
while True:
    c, _ = s.accept(); held.append(c)
    if len(held) > 2000: held.pop(0).close()
' "$1" "$2" &
  bench_pids+=($!)
  sleep 0.3
}

# lab_up PREFIX: namespaces ${PREFIX}c (client 198.18.1.2, fd00:1::2), ${PREFIX}r (router,
# forwarding) and ${PREFIX}s (server 198.18.2.2, fd00:2::2); sets $c $r $s.
lab_up() {
  c=${1}c r=${1}r s=${1}s
  for ns in $c $r $s; do
    ip netns add "$ns"; bench_netns+=("$ns"); ip -n "$ns" link set lo up
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
  done
  ip -n $c link add eth0 type veth peer name eth0 netns $r
  ip -n $r link add eth1 type veth peer name eth0 netns $s
  ip -n $c addr add 198.18.1.2/24 dev eth0; ip -n $c -6 addr add fd00:1::2/64 dev eth0 nodad
  ip -n $r addr add 198.18.1.1/24 dev eth0; ip -n $r -6 addr add fd00:1::1/64 dev eth0 nodad
  ip -n $r addr add 198.18.2.1/24 dev eth1; ip -n $r -6 addr add fd00:2::1/64 dev eth1 nodad
  ip -n $s addr add 198.18.2.2/24 dev eth0; ip -n $s -6 addr add fd00:2::2/64 dev eth0 nodad
  local l
  for l in "$c eth0" "$r eth0" "$r eth1" "$s eth0"; do set -- $l; ip -n "$1" link set "$2" up; done
  ip -n $c route add 198.18.2.0/24 via 198.18.1.1; ip -n $c -6 route add fd00:2::/64 via fd00:1::1
  ip -n $s route add 198.18.1.0/24 via 198.18.2.1; ip -n $s -6 route add fd00:1::/64 via fd00:2::1
  ip netns exec $r sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
}

# medians JSON...: a markdown row per command of hyperfine JSON exports.
medians() {
  python3 - "$@" <<'PY'
import json, sys
for path in sys.argv[1:]:
    for r in json.load(open(path))["results"]:
        print(f"| `{r['command']}` | {r['median']*1000:.2f} ms | {r['mean']*1000:.2f} ± {r['stddev']*1000:.2f} ms |")
PY
}
