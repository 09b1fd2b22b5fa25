#!/usr/bin/env bash
# A silent port on this machine (an nftables input drop on loopback, in a namespace made here):
# canreach decides it from this machine's own facts (no liveness, no walk) after its 200 ms
# local bound; `nc -z -w 1` waits its one second and says nothing. One hyperfine run.
# Needs root, nftables, hyperfine, netcat-openbsd. Usage: bench/local_silent.sh [RUNS]
runs=${1:-20}
source "$(dirname "$0")/lib.sh"
ns=crbench$$
ip netns add $ns; bench_netns+=($ns); ip -n $ns link set lo up
ip netns exec $ns nft -f - <<'NFT'
table inet bench {
  chain c {
    type filter hook input priority 0;
    tcp dport 5433 drop
  }
}
NFT
hyperfine -N --warmup 2 --runs "$runs" -i --style none --export-json "$out/local-silent.json" \
  -n "canreach (silent local port)" "ip netns exec $ns $bin 127.0.0.1 5433" \
  -n "nc -z -w 1" "ip netns exec $ns nc -z -w 1 127.0.0.1 5433"
echo
echo "| command | median | mean ± σ |"
echo "|---|---|---|"
medians "$out/local-silent.json"
