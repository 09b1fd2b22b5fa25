#!/usr/bin/env bash
# After the connect, whole-process cost, each case in one hyperfine run with its peers:
#  1. an open loopback port whose server accepts and waits (no protocol spoken): canreach's
#     first moments against `nc -z`;
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
s.bind(("127.0.0.1", 47011)); s.listen(4096)
held = []
while True:
    c, _ = s.accept(); held.append(c)
    if len(held) > 2000: held.pop(0).close()
' &
bench_pids+=($!)
sleep 0.3
hyperfine -N --warmup 20 --runs "$runs" -i --style none --export-json "$out/app-open.json" \
  -n "canreach (open, first moments)" "$bin 127.0.0.1 47011" \
  -n "nc -z (open)" "nc -z 127.0.0.1 47011"

# 2. A TLS server with a certificate for 127.0.0.1, trusted through SSL_CERT_FILE / --cacert.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
  -keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>/dev/null
openssl s_server -quiet -www -accept 47012 -cert "$tmp/cert.pem" -key "$tmp/key.pem" >/dev/null 2>&1 &
bench_pids+=($!)
sleep 0.5
export SSL_CERT_FILE=$tmp/cert.pem
hyperfine -N --warmup 10 --runs "$runs" -i --style none --export-json "$out/app-https.json" \
  -n "canreach https://127.0.0.1:47012/" "$bin https://127.0.0.1:47012/" \
  -n "curl -so /dev/null" "curl -so /dev/null --cacert $tmp/cert.pem https://127.0.0.1:47012/" \
  -n "openssl s_client" "openssl s_client -connect 127.0.0.1:47012 -CAfile $tmp/cert.pem -verify_return_error -brief </dev/null"

echo
echo "| command | median | mean ± σ |"
echo "|---|---|---|"
medians "$out/app-open.json" "$out/app-https.json"
