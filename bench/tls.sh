#!/usr/bin/env bash
# TLS cost, Rampart vs nginx with the same certificate and the same upstream, on loopback:
#   handshakes/s   a new TLS connection per request (wrk with `Connection: close`)
#   keep-alive     requests/s and p99 over TLS keep-alive connections
# One run; the output is ratios (rampart / nginx) from that run, not absolute claims.
# Environment: DURATION (s, default 10), CONNS (keep-alive connections, default 64),
# HS_CONNS (handshake connections, default 16), RAMPART_BIN.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${RAMPART_BIN:-$here/../target/release/rampart}
duration=${DURATION:-10}
conns=${CONNS:-64}
hs_conns=${HS_CONNS:-16}
missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v nginx >/dev/null || missing+=(nginx)
command -v openssl >/dev/null || missing+=(openssl)
if [ ${#missing[@]} -gt 0 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
[ -x "$bin" ] || (cd "$here/.." && cargo build --release -p rampart)

run=$(mktemp -d /tmp/rampart-tls-bench.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 0.5
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
}
trap cleanup EXIT INT TERM

up=19070 ngx=19071 ram=19072 admin=19073
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj /CN=localhost -addext subjectAltName=DNS:localhost \
  -addext basicConstraints=critical,CA:FALSE \
  -keyout "$run/key.pem" -out "$run/cert.pem" 2>/dev/null

mkdir -p "$run/nginx-up" "$run/nginx-tls"
cat > "$run/upstream.conf" <<NGINX
worker_processes 1;
pid $run/nginx-up/pid;
error_log $run/nginx-up/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  server { listen 127.0.0.1:$up; location / { return 200 '{"ok":true}'; } }
}
NGINX
cat > "$run/tls.conf" <<NGINX
worker_processes auto;
pid $run/nginx-tls/pid;
error_log $run/nginx-tls/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  upstream app { server 127.0.0.1:$up; keepalive 128; }
  server {
    listen 127.0.0.1:$ngx ssl http2;
    ssl_certificate $run/cert.pem;
    ssl_certificate_key $run/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      add_header Strict-Transport-Security "max-age=31536000; includeSubDomains" always;
    }
  }
}
NGINX
cat > "$run/rampart.toml" <<TOML
version = 1
data_dir = "./data"
[admin]
bind = "127.0.0.1:$admin"
[[listener]]
name = "public"
bind = "127.0.0.1:$ram"
tls = { cert = "cert.pem", key = "key.pem" }
[events]
sink = "events.jsonl"
access_log = false
[[route]]
name = "app"
upstream = "http://127.0.0.1:$up"
TOML

nginx -p "$run/nginx-up" -c "$run/upstream.conf" -g 'daemon off;' & pids+=($!)
nginx -p "$run/nginx-tls" -c "$run/tls.conf" -g 'daemon off;' & pids+=($!)
"$bin" serve --config "$run/rampart.toml" 2>"$run/rampart.log" & pids+=($!)
for port in $up $ngx $ram; do
  for _ in $(seq 1 100); do
    (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break
    sleep 0.1
  done
done
for port in $ngx $ram; do
  code=$(curl -sk -o /dev/null -w '%{http_code}' "https://127.0.0.1:$port/")
  [ "$code" = 200 ] || { echo "port $port answered $code" >&2; exit 1; }
done

# wrk output → "requests/s p99_ms"
measure() {
  wrk --latency -t2 "$@" | awk '
    /Requests\/sec/ {rps=$2}
    /^ +99%/ {v=$2; u=v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v);
              ms = (u=="us") ? v/1000 : (u=="s") ? v*1000 : v}
    END {printf "%s %.3f\n", rps, ms}'
}

printf '%-12s %-10s %12s %10s\n' workload server 'req/s' 'p99 ms'
declare -A r
for server in nginx rampart; do
  port=$([ $server = nginx ] && echo $ngx || echo $ram)
  url="https://127.0.0.1:$port/"
  wrk -t2 -c"$conns" -d2s "$url" >/dev/null   # warm-up
  read -r rps p99 < <(measure -c"$conns" -d"${duration}s" "$url")
  r[ka_$server]=$rps; r[kap_$server]=$p99
  printf '%-12s %-10s %12s %10s\n' keep-alive $server "$rps" "$p99"
  read -r rps p99 < <(measure -c"$hs_conns" -d"${duration}s" -H 'Connection: close' "$url")
  r[hs_$server]=$rps; r[hsp_$server]=$p99
  printf '%-12s %-10s %12s %10s\n' handshakes $server "$rps" "$p99"
done
echo
awk -v a="${r[ka_rampart]}" -v b="${r[ka_nginx]}" -v c="${r[hs_rampart]}" -v d="${r[hs_nginx]}" \
    -v e="${r[kap_rampart]}" -v f="${r[kap_nginx]}" -v g="${r[hsp_rampart]}" -v h="${r[hsp_nginx]}" \
  'BEGIN {
     printf "rampart / nginx  keep-alive req/s %.2fx  p99 %.2fx\n", a/b, e/f;
     printf "rampart / nginx  handshakes/s     %.2fx  p99 %.2fx\n", c/d, g/h;
   }'
