#!/usr/bin/env bash
# A UDP check of a DNS server that answers, against `dig` asking the same server the same
# kind of question (`.` NS, no recursion, one try), in one hyperfine run; then how long a
# silent UDP port (dropped by the server's nftables) takes to be reported, against the
# deadline given. A lab of three network namespaces (client, router, server; 198.18.0.0/15,
# no route out) is built and deleted here; dnsmasq answers on the server.
# Needs root, iproute2, nftables, dnsmasq-base, bind9-dnsutils (dig), hyperfine, python3.
# Usage: sudo bench/udp.sh [RUNS]
runs=${1:-100}
source "$(dirname "$0")/lib.sh"
lab_up "cru$$"
ip netns exec $s dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts \
  --user=root --pid-file= --bind-interfaces --listen-address=198.18.2.2 --local=/lab/ \
  --host-record=app.lab,198.18.2.2 2>/dev/null &
bench_pids+=($!)
ip netns exec $s nft -f - <<'NFT'
table inet bench {
  chain c {
    type filter hook input priority 0;
    udp dport 5000 drop
  }
}
NFT
sleep 0.5
inc="ip netns exec $c"
$inc "$bin" -u 198.18.2.2 53 | head -3
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
hyperfine -N --warmup 10 --runs "$runs" --style none --export-json "$out/udp-dns.json" \
  -n "canreach -u 198.18.2.2 53" "$inc $bin -u 198.18.2.2 53" \
  -n "canreach -q -u 198.18.2.2 53" "$inc $bin -q -u 198.18.2.2 53" \
  -n "dig +norecurse +tries=1 @198.18.2.2 . NS" "$inc dig +norecurse +tries=1 +time=2 @198.18.2.2 . NS" >/dev/null
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
hyperfine -N --runs 5 -i --style none --export-json "$out/udp-silent.json" \
  -n "canreach -u --timeout 2s 198.18.2.2 5000 (dropped)" "$inc $bin -u --timeout 2s 198.18.2.2 5000" \
  -n "canreach -u 198.18.2.2 5000 (dropped, default 5 s)" "$inc $bin -u 198.18.2.2 5000" >/dev/null
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
# canreach's own clock (elapsed_ms, from its start to its report) against the deadline.
inproc=$(for i in 1 2 3 4 5; do { $inc "$bin" --json -u --timeout 2s 198.18.2.2 5000 || true; } | python3 -c 'import json,sys; print(json.load(sys.stdin)["elapsed_ms"])'; done | sort -n | tr '\n' ' ')
echo "| command | median | mean ± σ | max |"
echo "|---|---|---|---|"
python3 - "$out/udp-dns.json" "$out/udp-silent.json" <<'PY'
import json, sys
dns = json.load(open(sys.argv[1]))["results"]
silent = json.load(open(sys.argv[2]))["results"]
for r in dns + silent:
    print(f"| `{r['command']}` | {r['median']*1000:.2f} ms | "
          f"{r['mean']*1000:.2f} ± {r['stddev']*1000:.2f} ms | {r['max']*1000:.2f} ms |")
med = {r["command"]: r["median"] for r in dns}
cr = med["canreach -u 198.18.2.2 53"]
q = med["canreach -q -u 198.18.2.2 53"]
dig = [v for k, v in med.items() if k.startswith("dig")][0]
print(f"\ncanreach / dig (medians): {cr/dig:.2f}×; with -q: {q/dig:.2f}×")
PY
echo "silent port, --timeout 2s, canreach's own elapsed_ms over 5 runs: $inproc"
