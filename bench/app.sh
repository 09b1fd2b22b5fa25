#!/usr/bin/env bash
# After the connect, whole-process cost, each case in one hyperfine run with its peers:
#  1. an open loopback port whose server accepts and waits (no protocol spoken): canreach,
#     which watches the connection right after the connect, against `nc -z`;
#  2. an https check of a local TLS server (`openssl s_server -www`, a certificate made here):
#     canreach against `curl -so /dev/null` and `openssl s_client`.
# Loopback only. Needs: hyperfine, netcat-openbsd, openssl, curl, python3.
# Usage: bench/app.sh [RUNS]
runs=${1:-200}
source "$(dirname "$0")/lib.sh"
tmp=$(mktemp -d); bench_tmp=$tmp
trap 'bench_cleanup; rm -rf "$bench_tmp"' EXIT

# 1. A server that accepts and holds every connection (a database waiting for its client).
python3 -c '
import socket, threading, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 27211)); s.listen(4096)
held = []
while True:
    c, _ = s.accept(); held.append(c)
    if len(held) > 2000: held.pop(0).close()
' &
bench_pids+=($!)
sleep 0.3
hyperfine -N --warmup 20 --runs "$runs" -i --style none --export-json "$out/app-open.json" \
  -n "canreach (open, watched after the connect)" "$bin 127.0.0.1 27211" \
  -n "nc -z (open)" "nc -z 127.0.0.1 27211"

# 2. A TLS server with a certificate for 127.0.0.1 from a CA made here, trusted through
#    SSL_CERT_FILE / --cacert / -CAfile (webpki, like browsers, takes no self-signed leaf).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj "/CN=bench CA" -addext basicConstraints=critical,CA:TRUE \
  -keyout "$tmp/ca.key" -out "$tmp/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=127.0.0.1 \
  -keyout "$tmp/key.pem" -out "$tmp/req.pem" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\n' > "$tmp/ext"
openssl x509 -req -in "$tmp/req.pem" -CA "$tmp/ca.pem" -CAkey "$tmp/ca.key" -CAcreateserial \
  -days 2 -extfile "$tmp/ext" -out "$tmp/cert.pem" 2>/dev/null
# A threaded HTTPS server that answers HEAD and GET (`openssl s_server -www` never answers
# HEAD, which canreach meets with a GET on a new connection after 1 s).
python3 -c '
import http.server, ssl, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        self.send_response(200); self.send_header("Content-Length", "2"); self.end_headers()
        if self.command == "GET": self.wfile.write(b"ok")
    do_HEAD = do_GET
    def log_message(self, *a): pass
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 27212), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); ctx.load_cert_chain(sys.argv[1], sys.argv[2])
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
srv.serve_forever()
' "$tmp/cert.pem" "$tmp/key.pem" &
bench_pids+=($!)
sleep 0.5
export SSL_CERT_FILE=$tmp/ca.pem
$bin https://127.0.0.1:27212/ >/dev/null || { echo "canreach does not call the server open" >&2; exit 1; }
# Every peer must really succeed: `hyperfine -N` runs no shell, so a `</dev/null` in a command
# is an argument (an earlier version of this script made s_client exit at once with a usage
# error, and compared canreach with that). Its stdin is already empty: s_client ends after the
# handshake.
openssl s_client -connect 127.0.0.1:27212 -CAfile "$tmp/ca.pem" -verify_return_error -brief \
  </dev/null >/dev/null 2>&1 || { echo "openssl s_client fails against the server" >&2; exit 1; }
curl -so /dev/null --cacert "$tmp/ca.pem" https://127.0.0.1:27212/ \
  || { echo "curl fails against the server" >&2; exit 1; }
hyperfine -N --warmup 10 --runs "$runs" -i --style none --export-json "$out/app-https.json" \
  -n "canreach https://127.0.0.1:27212/" "$bin https://127.0.0.1:27212/" \
  -n "canreach --protocol tls (handshake only)" "$bin --protocol tls 127.0.0.1:27212" \
  -n "curl -so /dev/null" "curl -so /dev/null --cacert $tmp/ca.pem https://127.0.0.1:27212/" \
  -n "openssl s_client" "openssl s_client -connect 127.0.0.1:27212 -CAfile $tmp/ca.pem -verify_return_error -brief"

echo
echo "| command | median | mean ± σ |"
echo "|---|---|---|"
medians "$out/app-open.json" "$out/app-https.json"
