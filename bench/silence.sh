#!/usr/bin/env bash
# Time to a `filtered` verdict on a silent port of a live host, canreach side by side with
# `nmap -sT` (defaults: its host discovery, then the scan) and `nmap -sT -Pn`, in one hyperfine
# run per case; then canreach back to back (no pause: routers' ICMP budget toward the client
# runs out, and the walk must not hold the verdict). A lab of three network namespaces
# (client, router, server; 198.18.0.0/15 and fd00::/8 only, no route out) is built and deleted
# here.
#   case "server": the server's nftables input chain drops the port (other ports answer)
#   case "router": the router's forward chain drops the port
# Needs root, iproute2, nftables, hyperfine, nmap.   Usage: sudo bench/silence.sh [RUNS]
runs=${1:-10}
source "$(dirname "$0")/lib.sh"
lab_up "crb$$"
ip netns exec $s nft -f - <<'NFT'
table inet bench {
  chain c {
    type filter hook input priority 0;
    tcp dport 5432 drop
  }
}
NFT
ip netns exec $r nft -f - <<'NFT'
table inet bench {
  chain c {
    type filter hook forward priority 0;
    tcp dport 8443 drop
  }
}
NFT
# Warm up neighbour caches so the first timed run is not an ARP/ND measurement.
for h in 198.18.2.2 fd00:2::2; do
  for _ in 1 2 3; do ip netns exec $c "$bin" --no-trace $h 22 >/dev/null || true; sleep 0.5; done
done

inc="ip netns exec $c"
cases=("server 198.18.2.2 5432" "router 198.18.2.2 8443" "server-v6 fd00:2::2 5432" "router-v6 fd00:2::2 8443")
show() {
  $inc "$bin" --json "$1" "$2" | python3 -c 'import json,sys; v=json.load(sys.stdin); t=v["trace"] or {}; print(v["verdict"], "· alive:", v["liveness"]["alive"], "· last hop:", t.get("last_responding"), "· hops:", len(t.get("hops") or []), "·", v["elapsed_ms"], "ms")' || true
}
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
for case in "${cases[@]}"; do
  set -- $case; name=$1 host=$2 port=$3; six=; [[ $host == *:* ]] && six="-6 "
  echo "$name: canreach: $(show $host $port)"
  echo "$name: nmap -sT: $($inc nmap $six-sT -n -p "$port" "$host" | awk -v p="$port/tcp" '$1==p {print $2}')"
  sleep 1
  # --prepare: a second between runs, as between independent checks.
  hyperfine -N --runs "$runs" -i --style none --prepare "sleep 1" --export-json "$out/silence-$name.json" \
    -n "canreach ($name)" "$inc $bin $host $port" \
    -n "nmap -sT ($name)" "$inc nmap $six-sT -n -p $port $host" \
    -n "nmap -sT -Pn ($name)" "$inc nmap $six-sT -Pn -n -p $port $host" >/dev/null
done
# Back to back: the router's ICMP budget toward the client runs out.
hyperfine -N --runs "$((runs * 2))" -i --style none --export-json "$out/silence-b2b.json" \
  -n "canreach back to back (server)" "$inc $bin 198.18.2.2 5432" >/dev/null
echo "after back-to-back runs: $(show 198.18.2.2 5432)"
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"

echo
echo "| case | tool | median | min | max | canreach / nmap -sT |"
echo "|---|---|---|---|---|---|"
python3 - "$out"/silence-{server,router,server-v6,router-v6,b2b}.json <<'PY'
import json, sys
for path in sys.argv[1:]:
    res = json.load(open(path))["results"]
    med = {r["command"].split(" (")[0]: r["median"] for r in res}
    for r in res:
        tool = r["command"].split(" (")[0]
        ratio = f"**{med['canreach'] / med['nmap -sT']:.2f}**" if tool == "canreach" and "nmap -sT" in med else ""
        case = r["command"].split("(")[-1].rstrip(")")
        print(f"| {case} | `{tool}` | {r['median']:.3f} s | {r['min']:.3f} s | {r['max']:.3f} s | {ratio} |")
PY
