#!/usr/bin/env bash
# Time to a `filtered` verdict on silent ports, canreach side by side with `nmap -sT -Pn` and
# `nc -z -w 5`, in one hyperfine run per case. A lab of three network namespaces (client,
# router, server; 198.18.0.0/15 and fd00::/8 only, no route out) is built and deleted here.
#   case "server": the server's nftables input chain drops the port (other ports answer)
#   case "router": the router's forward chain drops the port
# Needs root, iproute2, nftables, hyperfine, nmap, netcat-openbsd.
# Usage: sudo bench/silence.sh [RUNS]
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
ip netns exec $c "$bin" --no-trace 198.18.2.2 22 >/dev/null || true
ip netns exec $c "$bin" --no-trace fd00:2::2 22 >/dev/null || true

inc="ip netns exec $c"
echo "| case | tool | verdict |"
echo "|---|---|---|"
for case in "server 198.18.2.2 5432" "router 198.18.2.2 8443" "server-v6 fd00:2::2 5432" "router-v6 fd00:2::2 8443"; do
  set -- $case; name=$1 host=$2 port=$3; six=; [[ $host == *:* ]] && six=-6
  v1=$($inc "$bin" --json "$host" "$port" | python3 -c 'import json,sys; v=json.load(sys.stdin); print(v["verdict"], "· alive:", v["liveness"]["alive"], "· last hop:", (v["trace"] or {}).get("last_responding"))') || true
  v2=$($inc nmap $six -sT -Pn -n -p "$port" "$host" | awk -v p="$port/tcp" '$1==p {print $2}') || true
  v3=$($inc nc -z -w 5 "$host" "$port" 2>&1 && echo succeeded || echo "failed (exit $?)")
  echo "| $name | canreach | $v1 |"; echo "| $name | nmap -sT -Pn | $v2 |"; echo "| $name | nc -z -w 5 | ${v3:-timed out, no message} |"
done

for case in "server 198.18.2.2 5432" "router 198.18.2.2 8443" "server-v6 fd00:2::2 5432" "router-v6 fd00:2::2 8443"; do
  set -- $case; name=$1 host=$2 port=$3; six=; [[ $host == *:* ]] && six="-6 "
  # --prepare: a second between runs, as between independent checks. Routers rate-limit the
  # ICMP they send to one peer (Linux: a burst, then about one a second); back-to-back runs
  # would measure that limit instead of the tools.
  hyperfine -N --runs "$runs" -i --style none --prepare "sleep 1" --export-json "$out/silence-$name.json" \
    -n "canreach ($name)" "$inc $bin $host $port" \
    -n "nmap -sT -Pn ($name)" "$inc nmap $six-sT -Pn -n -p $port $host" \
    -n "nc -z -w 5 ($name)" "$inc nc -z -w 5 $host $port" >/dev/null
done

echo
echo "| case | tool | median | min | max | canreach / nmap |"
echo "|---|---|---|---|---|---|"
python3 - "$out"/silence-{server,router,server-v6,router-v6}.json <<'PY'
import json, sys
for path in sys.argv[1:]:
    res = json.load(open(path))["results"]
    med = {r["command"].split(" (")[0]: r["median"] for r in res}
    for r in res:
        tool = r["command"].split(" (")[0]
        ratio = f"**{med['canreach'] / med['nmap -sT -Pn']:.2f}**" if tool == "canreach" else ""
        case = r["command"].split("(")[-1].rstrip(")")
        print(f"| {case} | `{tool}` | {r['median']:.3f} s | {r['min']:.3f} s | {r['max']:.3f} s | {ratio} |")
PY
