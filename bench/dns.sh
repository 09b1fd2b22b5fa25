#!/usr/bin/env bash
# What the name stage costs: a check of a name against the same check of its address, with
# dnsmasq as the name server in a lab (client, router, server namespaces; 198.18.0.0/15), and
# how fast a dead name server is diagnosed, next to `getent ahosts` and `nc -z` in the same run.
# Needs root, iproute2, dnsmasq-base, hyperfine, netcat-openbsd, python3.
# Usage: sudo bench/dns.sh [RUNS]
runs=${1:-100}
source "$(dirname "$0")/lib.sh"
lab_up "crd$$"
printf 'nameserver 198.18.2.2\noptions timeout:1 attempts:1\n' | install -D /dev/stdin /etc/netns/$c/resolv.conf
printf '127.0.0.1 localhost\n' > /etc/netns/$c/hosts
accept_loop 198.18.2.2 80 $s
ip netns exec $s dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts \
  --user=root --pid-file= --bind-interfaces --listen-address=198.18.2.2 --local=/lab/ \
  --host-record=app.lab,198.18.2.2 2>/dev/null &
dnsmasq_pid=$!
bench_pids+=($dnsmasq_pid)
sleep 0.5
inc="ip netns exec $c"

hyperfine -N --warmup 10 --runs "$runs" --style none --export-json "$out/dns-live.json" \
  -n "canreach 198.18.2.2 80 (address)" "$inc $bin --tcp 198.18.2.2 80" \
  -n "canreach app.lab 80 (name)" "$inc $bin --tcp app.lab 80" \
  -n "getent ahosts app.lab (system lookup alone)" "$inc getent ahosts app.lab" \
  -n "nc -z app.lab 80" "$inc nc -z app.lab 80" >/dev/null
rtt=$($inc "$bin" --json --tcp app.lab 80 | python3 -c 'import json,sys; v=json.load(sys.stdin); print(v["dns"]["servers"][0]["elapsed_ms"])')
# In-process timings (canreach's own elapsed_ms), medians of 50 runs: what the DNS view adds
# beyond the system lookup a name needs anyway.
inproc=$(python3 - "$inc" "$bin" <<'PY'
import json, statistics as st, subprocess, sys
inc, bin_ = sys.argv[1].split(), sys.argv[2]
def runs(args, n=50):
    return [json.loads(subprocess.run(inc + [bin_, "--json", "--tcp"] + args, capture_output=True).stdout) for _ in range(n)]
name, addr = runs(["app.lab", "80"]), runs(["198.18.2.2", "80"])
med = lambda xs: st.median(xs)
total_n = med([v["elapsed_ms"] for v in name]); total_a = med([v["elapsed_ms"] for v in addr])
sys_ms = med([v["dns"]["system"]["elapsed_ms"] for v in name])
srv_ms = med([v["dns"]["servers"][0]["elapsed_ms"] for v in name])
print(f"in-process medians: name check {total_n:.3f} ms, address check {total_a:.3f} ms, system lookup {sys_ms:.3f} ms, "
      f"DNS view (A+AAAA to the server) {srv_ms:.3f} ms; name − address − system lookup = {total_n - total_a - sys_ms:+.3f} ms")
PY
)

kill $dnsmasq_pid; wait $dnsmasq_pid 2>/dev/null || true   # the name server dies: port 53 closed
# Six seconds between runs, as between independent checks: the server's kernel rate-limits
# the ICMP port-unreachable it sends to one peer (a burst of 6, then one a second), and each
# run of each tool spends several; back-to-back runs would measure that limit, not the tools.
hyperfine -N --runs 10 -i --style none --prepare "sleep 6" --export-json "$out/dns-closed.json" \
  -n "canreach app.lab 80 (port 53 closed)" "$inc $bin --tcp app.lab 80" \
  -n "getent ahosts app.lab (port 53 closed)" "$inc getent ahosts app.lab" \
  -n "nc -z -w 5 app.lab 80 (port 53 closed)" "$inc nc -z -w 5 app.lab 80" >/dev/null
# …and now it is silent: its firewall drops port 53.
ip netns exec $s nft -f - <<'NFT'
table inet bench {
  chain c {
    type filter hook input priority 0;
    meta l4proto { tcp, udp } th dport 53 drop
  }
}
NFT
hyperfine -N --runs 10 -i --style none --export-json "$out/dns-silent.json" \
  -n "canreach app.lab 80 (silent server, timeout:1)" "$inc $bin --tcp app.lab 80" \
  -n "getent ahosts app.lab (silent server)" "$inc getent ahosts app.lab" \
  -n "nc -z -w 5 app.lab 80 (silent server)" "$inc nc -z -w 5 app.lab 80" >/dev/null

echo "| command | median | mean ± σ |"
echo "|---|---|---|"
python3 - "$out/dns-live.json" "$out/dns-closed.json" "$out/dns-silent.json" "$rtt" <<'PY'
import json, sys
live = json.load(open(sys.argv[1]))["results"]
rest = json.load(open(sys.argv[2]))["results"] + json.load(open(sys.argv[3]))["results"]
for r in live + rest:
    print(f"| `{r['command']}` | {r['median']*1000:.2f} ms | {r['mean']*1000:.2f} ± {r['stddev']*1000:.2f} ms |")
name = [r["median"] for r in live if "(name)" in r["command"]][0]
addr = [r["median"] for r in live if "(address)" in r["command"]][0]
print(f"\nname − address (medians): {(name-addr)*1000:+.2f} ms; one query to the name server as canreach timed it: {float(sys.argv[4]):.2f} ms")
PY
echo "$inproc"
