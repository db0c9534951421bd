#!/usr/bin/env bash
# Rampart as a plain reverse proxy (no auth, no WAF) for ../shared/bench: run by its run.sh
# with LISTEN, UPSTREAM_URL and TARGET_RUN_DIR set.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${RAMPART_BIN:-$here/../target/release/rampart}
dir=${TARGET_RUN_DIR:-/tmp/rampart-bench}
mkdir -p "$dir"
cat > "$dir/rampart.toml" <<TOML
version = 1
data_dir = "./data"

[admin]
bind = "127.0.0.1:$(( ${TARGET_PORT:-19010} + 50 ))"

[[listener]]
name = "public"
bind = "$LISTEN"

[events]
sink = "events.jsonl"
access_log = false   # like the peers, which run with access logs off

[[route]]
name = "api"
upstream = "$UPSTREAM_URL"
TOML
exec "$bin" serve --config "$dir/rampart.toml"
