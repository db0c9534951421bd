#!/usr/bin/env bash
# What each protection costs: Rampart plain and with JWT verification, rate limits, schema
# validation or the OWASP CRS WAF, beside nginx and nginx + ModSecurity + CRS, in one run of
# the shared harness (../shared/bench) on loopback. Extra arguments go to its run.sh, e.g.
# `--reps 1 --duration 5`. Results are ratios from that one run.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
harness=${BENCH_HARNESS:-$here/../../shared/bench}
[ -x "$harness/run.sh" ] || { echo "no harness at $harness" >&2; exit 2; }
command -v wrk >/dev/null || "$harness/setup.sh" --no-oha
(cd "$here/.." && cargo build --release -p rampart)
bin=${RAMPART_BIN:-$here/../target/release/rampart}
export RAMPART_BIN=$bin

# The JWT target's store: one user, and a token of theirs the workloads send as W1/W2's
# bearer token (every target gets the same headers).
export FEATURE_STATE=${FEATURE_STATE:-/tmp/rampart-bench-features}
rm -rf "$FEATURE_STATE" && mkdir -p "$FEATURE_STATE"
RAMPART_KEY=$(head -c 32 /dev/urandom | base64)
export RAMPART_KEY
prep=$FEATURE_STATE/prep
mkdir -p "$prep"
LISTEN=127.0.0.1:19058 UPSTREAM_URL=http://127.0.0.1:19000 TARGET_RUN_DIR=$prep TARGET_PORT=19009 \
  "$here/target-features.sh" jwt > "$prep/stdout.log" 2>&1 &
gw=$!
trap 'kill $gw 2>/dev/null || true' EXIT
password=$(head -c 18 /dev/urandom | base64)
for _ in $(seq 100); do [ -f "$prep/rampart.toml" ] && break; sleep 0.1; done
printf '%s\n' "$password" | "$bin" user add --config "$prep/rampart.toml" bench >/dev/null
token=
for _ in $(seq 100); do
  token=$(curl -sf -H 'content-type: application/json' \
    -d "{\"username\":\"bench\",\"password\":\"$password\"}" http://127.0.0.1:19058/auth/login |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])' 2>/dev/null) && break
  sleep 0.2
done
[ -n "$token" ] || { echo "no token from the JWT target; see $prep/stdout.log" >&2; exit 1; }
kill $gw; wait $gw 2>/dev/null || true
trap - EXIT
export BENCH_JWT=$token

t=$here/target-features.sh
cd "$harness"
exec ./run.sh --peers "${PEERS:-nginx,modsec}" --workloads "${WORKLOADS:-W1,W2}" \
  --target "rampart=$t plain,port=19010,desc=Rampart plain proxy" \
  --target "rampart-jwt=$t jwt,port=19011,desc=Rampart + JWT (EdDSA) on every request" \
  --target "rampart-limits=$t limits,port=19012,desc=Rampart + 2 rate limits per request" \
  --target "rampart-validate=$t validate,port=19013,desc=Rampart + OpenAPI validation" \
  --target "rampart-waf=$t waf,port=19014,waf=1,ready_timeout=120,desc=Rampart + OWASP CRS 4 PL1 blocking" \
  "$@"
