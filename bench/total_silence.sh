#!/usr/bin/env bash
# Total silence: the server drops everything (no answer, no ICMP). One address, canreach beside
# `nmap -sT -Pn`; then a name with 16 A + 16 AAAA records (all the server's, all silent; the
# client namespace's /etc/hosts), canreach alone. SYNs are counted on the router (prerouting,
# from the client: the walk's TTL-1 SYNs die there and count too). A lab of three network
# namespaces (198.18.0.0/15, fd00::/8, no route out) is built and deleted here.
# Needs root, iproute2, nftables, hyperfine, nmap.   Usage: sudo bench/total_silence.sh [RUNS]
runs=${1:-5}
source "$(dirname "$0")/lib.sh"
lab_up "crt$$"
for i in $(seq 10 25); do
  ip -n $s addr add 198.18.2.$i/24 dev eth0; ip -n $s -6 addr add fd00:2::$i/64 dev eth0 nodad
done
mkdir -p /etc/netns/$c
{ for i in $(seq 10 25); do echo "198.18.2.$i many.lab"; done
  for i in $(seq 10 25); do echo "fd00:2::$i many.lab"; done; } > /etc/netns/$c/hosts
# Warm the neighbour caches (the server still answers), then drop everything.
for i in $(seq 10 25); do ip netns exec $c "$bin" --no-trace --no-local 198.18.2.$i 22 >/dev/null || true; ip netns exec $c "$bin" --no-trace --no-local fd00:2::$i 22 >/dev/null || true; done
ip netns exec $s nft -f - <<'NFT'
table inet bench {
  chain c {
    type filter hook input priority 0; policy drop;
  }
}
NFT
counting() { # (re)create the router's SYN counters
  ip netns exec $r nft delete table inet count 2>/dev/null || true
  ip netns exec $r nft -f - <<'NFT'
  table inet count {
    chain c {
      type filter hook prerouting priority -300;
      iifname "eth0" tcp flags & (syn | ack) == syn ip ttl < 4 counter comment "walk v4 (TTL<4)"
      iifname "eth0" tcp flags & (syn | ack) == syn ip6 hoplimit < 4 counter comment "walk v6 (hop limit<4)"
      iifname "eth0" tcp flags & (syn | ack) == syn ip ttl >= 4 ip daddr 198.18.2.10 counter comment "to 198.18.2.10"
      iifname "eth0" tcp flags & (syn | ack) == syn ip ttl >= 4 ip daddr != 198.18.2.10 counter comment "other v4 addresses"
      iifname "eth0" tcp flags & (syn | ack) == syn ip6 hoplimit >= 4 counter comment "v6 addresses"
    }
  }
NFT
}
counting
inc="ip netns exec $c"
syns() { ip netns exec $r nft -j list table inet count | python3 -c 'import json,sys
rules=[o["rule"] for o in json.load(sys.stdin)["nftables"] if "rule" in o]
n={r.get("comment"): next(e["counter"]["packets"] for e in r["expr"] if "counter" in e) for r in rules}
print(sum(n.values()), "(" + ", ".join(f"{k} {v}" for k, v in n.items() if v) + ")")'; }
reset() { counting; }
one() { # label command...: one run, its verdict/time, and the SYNs it sent
  reset; local t0=$(date +%s.%N); local v; v=$("${@:2}" 2>/dev/null | tee "$out/total-$(echo "$1" | tr -c "a-z0-9" _).json" | python3 -c 'import json,sys
try:
  v=json.load(sys.stdin); print(v["verdict"], "· alive:", v["liveness"]["alive"], "· last hop:", (v["trace"] or {}).get("last_responding"), "· addresses:", len(v["probes"]), "·", v["elapsed_ms"], "ms")
except Exception: print("-")' || true); local t1=$(date +%s.%N)
  sleep 5; echo "| $1 | $v | $(python3 -c "print(f'{$t1-$t0:.3f} s')") | $(syns) SYNs |"
}
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| check | verdict | wall | SYNs sent (router count, incl. retransmissions) |"
echo "|---|---|---|---|"
one "canreach 198.18.2.10 5432" $inc "$bin" --json 198.18.2.10 5432
one "nmap -sT -Pn 198.18.2.10 5432" $inc nmap -sT -Pn -n -p 5432 198.18.2.10
one "canreach many.lab 5432 (32 addresses)" $inc "$bin" --json many.lab 5432
[ "$runs" = 0 ] && exit 0
hyperfine -N --runs "$runs" -i --style none --prepare "sleep 1" --export-json "$out/total-silence.json" \
  -n "canreach (1 address)" "$inc $bin 198.18.2.10 5432" \
  -n "canreach (32 addresses)" "$inc $bin many.lab 5432" \
  -n "nmap -sT -Pn (1 address)" "$inc nmap -sT -Pn -n -p 5432 198.18.2.10" >/dev/null
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$out/total-silence.json" <<'PY'
import json, sys
for r in json.load(open(sys.argv[1]))["results"]:
    print(f"| `{r['command']}` | {r['median']:.3f} s | {r['min']:.3f} s | {r['max']:.3f} s |")
PY
