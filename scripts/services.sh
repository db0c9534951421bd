#!/usr/bin/env bash
# Makes sure the services the tests use are installed and running on loopback:
# Redis on 127.0.0.1:6379 and PostgreSQL on 127.0.0.1:5432 (trust auth, database `test`),
# and the programs the tests drive (openssl, curl, pebble, node).
# Installs them with apt when missing (needs root). Idempotent.
set -euo pipefail

need_apt=()
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
command -v pg_ctlcluster >/dev/null 2>&1 || need_apt+=(postgresql)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
# Real peers of the TLS tests: clients, and an ACME server with its DNS stub.
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
command -v pebble >/dev/null 2>&1 || need_apt+=(pebble)
command -v node >/dev/null 2>&1 || need_apt+=(nodejs)
command -v npm >/dev/null 2>&1 || need_apt+=(npm)
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
# Attack tools of the DDoS tests.
command -v slowhttptest >/dev/null 2>&1 || need_apt+=(slowhttptest)
command -v wrk >/dev/null 2>&1 || need_apt+=(wrk)
# schemathesis (the validation tests' request generator) lives in its own virtualenv.
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need_apt+=(python3-venv)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "services: installing ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "services: starting redis"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  for _ in $(seq 1 50); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 0.2; done
fi

pg_ok() { psql -h 127.0.0.1 -U postgres -d test -c 'select 1' >/dev/null 2>&1; }
if ! pg_ok; then
  version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)
  if [ -z "$version" ]; then
    echo "services: no PostgreSQL cluster found" >&2
    exit 1
  fi
  hba=/etc/postgresql/$version/main/pg_hba.conf
  if ! grep -qE '^host\s+all\s+all\s+127\.0\.0\.1/32\s+trust' "$hba"; then
    echo "services: PostgreSQL trust auth on loopback"
    sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
  fi
  echo "services: starting PostgreSQL $version"
  pg_ctlcluster --skip-systemctl-redirect "$version" main restart >/dev/null 2>&1 ||
    pg_ctlcluster --skip-systemctl-redirect "$version" main start
  for _ in $(seq 1 50); do psql -h 127.0.0.1 -U postgres -c 'select 1' >/dev/null 2>&1 && break; sleep 0.2; done
  psql -h 127.0.0.1 -U postgres -tc "select 1 from pg_database where datname = 'test'" | grep -q 1 ||
    psql -h 127.0.0.1 -U postgres -c 'create database test' >/dev/null
fi
echo "services: redis and postgresql ready"

# The browser tests' driver (playwright-core, pinned by clients/browser/package-lock.json).
if [ ! -d "$(dirname "$0")/../clients/browser/node_modules/playwright-core" ]; then
  echo "services: installing playwright-core"
  (cd "$(dirname "$0")/../clients/browser" && npm ci --no-audit --no-fund --loglevel=error)
fi

# The validation tests' request generator, pinned by scripts/requirements-test.txt.
tools=${RAMPART_TOOLS:-/opt/rampart-tools}
req=$(dirname "$0")/requirements-test.txt
if ! cmp -s "$req" "$tools/py/requirements-test.txt" 2>/dev/null || [ ! -x "$tools/py/bin/st" ]; then
  echo "services: installing schemathesis into $tools/py"
  rm -rf "$tools/py"
  python3 -m venv "$tools/py"
  "$tools/py/bin/pip" install -q --disable-pip-version-check -r "$req"
  cp "$req" "$tools/py/requirements-test.txt"
fi
