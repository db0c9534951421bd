#!/usr/bin/env bash
# Rampart with one protection switched on, for ../shared/bench (run by its run.sh with
# LISTEN, UPSTREAM_URL and TARGET_RUN_DIR set). Usage: target-features.sh FEATURE, where
# FEATURE is one of:
#   plain     proxy only (the reference)
#   jwt       every request verifies the bearer token (EdDSA) of a user of the gateway
#             (bench/features.sh prepares the store in $FEATURE_STATE and exports BENCH_JWT)
#   limits    two rate-limit policies per request (per IP and per header), in memory
#   validate  every request checked against bench/features/items.yaml
#   waf       OWASP CRS (../shared/crs) at paranoia level 1, blocking
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
feature=${1:?feature}
bin=${RAMPART_BIN:-$here/../target/release/rampart}
dir=${TARGET_RUN_DIR:-/tmp/rampart-bench-$feature}
shared=${RAMPART_SHARED_DIR:-$here/../../shared}
state=${FEATURE_STATE:-/tmp/rampart-bench-features}
mkdir -p "$dir"
cfg=$dir/rampart.toml
data_dir=$dir/data
[ "$feature" = jwt ] && data_dir=$state/jwt-data
cat > "$cfg" <<TOML
version = 1
data_dir = "$data_dir"

[admin]
bind = "127.0.0.1:$(( ${TARGET_PORT:-19010} + 50 ))"

[[listener]]
name = "public"
bind = "$LISTEN"

[events]
sink = "events.jsonl"
access_log = false   # like the peers, which run with access logs off
TOML
route_extra=""
case $feature in
  plain) ;;
  jwt)
    cat >> "$cfg" <<TOML

[auth]
issuer = "https://auth.example.com"
audience = ["api"]
access_ttl = "24h"
TOML
    route_extra='auth = ["jwt"]'
    ;;
  limits)
    cat >> "$cfg" <<TOML

[[rate_limit]]
name = "per-ip"
key = "ip"
rate = "1000000/s"
burst = 1000000

[[rate_limit]]
name = "per-request-id"
key = "header:x-request-id"
rate = "1000000/s"
burst = 1000000
TOML
    route_extra='rate_limit = ["per-ip", "per-request-id"]'
    ;;
  validate)
    route_extra="schema = \"$here/features/items.yaml\""
    ;;
  waf)
    cat >> "$cfg" <<TOML

[waf]
mode = "enforce"
paranoia_level = 1
rules = ["$shared/crs/crs-setup.conf.example", "$shared/crs/rules/*.conf"]
TOML
    ;;
  *) echo "unknown feature $feature" >&2; exit 2 ;;
esac
cat >> "$cfg" <<TOML

[[route]]
name = "api"
upstream = "$UPSTREAM_URL"
$route_extra
TOML
exec "$bin" serve --config "$cfg"
