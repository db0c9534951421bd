#!/usr/bin/env bash
# Compares Rampart (plain proxy) with nginx, HAProxy and Caddy in one run of the shared
# harness (../shared/bench), on loopback. Extra arguments go to its run.sh, for example
# `--reps 1 --duration 5` for a quick look. Results are ratios from that one run.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
harness=${BENCH_HARNESS:-$here/../../shared/bench}
[ -x "$harness/run.sh" ] || { echo "no harness at $harness" >&2; exit 2; }
command -v wrk >/dev/null || "$harness/setup.sh" --no-oha
(cd "$here/.." && cargo build --release -p rampart)
cd "$harness"
exec ./run.sh --peers "${PEERS:-nginx,haproxy,caddy}" \
  --target "rampart=$here/target-plain.sh,port=19010,desc=Rampart plain proxy" "$@"
