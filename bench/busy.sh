#!/usr/bin/env bash
# A busy server on this machine (issue 21, items 3 and 4): N checks at once against one
# Python asyncio server with backlog 100, in a namespace made here (loopback only), to count
# the verdicts and findings a busy program gets, and how late the program takes a connection
# under that load (`accepted_ms`: what `session::watch::ACCEPT_WAIT` must stay above).
#   1. a TLS server (a certificate made here), `canreach https://127.0.0.1:PORT/`;
#   2. a plain server that takes every connection, `canreach --tcp 127.0.0.1 PORT`.
# Needs root, python3, openssl. Usage: bench/busy.sh [N] [BATCHES]
n=${1:-200}
batches=${2:-3}
source "$(dirname "$0")/lib.sh"
ns=crbusy$$
ip netns add $ns; bench_netns+=($ns); ip -n $ns link set lo up
dir=$(mktemp -d); trap 'bench_cleanup; rm -rf "$dir"' EXIT
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$dir/key.pem" -out "$dir/cert.pem" \
  -days 2 -subj "/CN=localhost" -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" 2>/dev/null
cat > "$dir/server.py" <<'PY'
import asyncio, ssl, sys
tls = sys.argv[2] == "tls"
ctx = None
if tls:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(sys.argv[3] + "/cert.pem", sys.argv[3] + "/key.pem")
async def handle(r, w):
    try:
        if tls:
            while (await asyncio.wait_for(r.readline(), 5)) not in (b"\r\n", b""):
                pass
            w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            await w.drain()
        else:
            await asyncio.wait_for(r.read(100), 5)
    except Exception:
        pass
    w.close()
async def main():
    srv = await asyncio.start_server(handle, "127.0.0.1", int(sys.argv[1]), ssl=ctx, backlog=100)
    async with srv:
        await srv.serve_forever()
asyncio.run(main())
PY
ip netns exec $ns python3 "$dir/server.py" 22500 tls "$dir" & bench_pids+=($!)
ip netns exec $ns python3 "$dir/server.py" 22501 plain "$dir" & bench_pids+=($!)
sleep 1
tally() {
  python3 - "$@" <<'PY'
import json, glob, sys, collections
verdicts, findings, accepted = collections.Counter(), collections.Counter(), []
for p in glob.glob(sys.argv[1] + "/*.json"):
    try:
        v = json.load(open(p))
    except Exception:
        verdicts["(no report)"] += 1
        continue
    verdicts[v["verdict"]] += 1
    findings.update(f["id"] for f in v["findings"])
    for pr in v["probes"]:
        a = (pr.get("session") or {}).get("accepted_ms")
        if a is not None:
            accepted.append(a)
accepted.sort()
print("| " + sys.argv[2] + " | " + ", ".join(f"{k} {c}" for k, c in verdicts.most_common())
      + " | " + ", ".join(f"{k} {c}" for k, c in findings.most_common()) + " | "
      + (f"{accepted[len(accepted)//2]:.0f} / {accepted[-1]:.0f} ms" if accepted else "—") + " |")
PY
}
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| batch | verdicts | findings | accepted_ms median / max |"
echo "|---|---|---|---|"
for b in $(seq 1 "$batches"); do
  for kind in tls plain; do
    rm -rf "$dir/$kind"; mkdir "$dir/$kind"
    for i in $(seq 1 "$n"); do
      if [ $kind = tls ]; then
        ip netns exec $ns env SSL_CERT_FILE="$dir/cert.pem" "$bin" --json https://127.0.0.1:22500/ >"$dir/$kind/$i.json" 2>/dev/null &
      else
        ip netns exec $ns "$bin" --json --tcp 127.0.0.1 22501 >"$dir/$kind/$i.json" 2>/dev/null &
      fi
    done
    wait $(jobs -p | grep -v -x -e "${bench_pids[0]}" -e "${bench_pids[1]}") 2>/dev/null || true
    tally "$dir/$kind" "$b, $kind ($n at once)"
  done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
