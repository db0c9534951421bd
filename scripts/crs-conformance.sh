#!/usr/bin/env bash
# Runs the OWASP CRS regression suite (../shared/crs/tests) against the real gateway, configured
# as the CRS CI does (../shared/tools/ftw/crs-test), and fails on any test that fails and is not
# in crates/rampart-waf/crs-known-failures.txt. Usage: scripts/crs-conformance.sh [RAMPART_BIN]
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
shared=${RAMPART_SHARED_DIR:-$repo/../shared}
bin=${1:-$repo/target/debug/rampart}
ftw=$shared/tools/ftw
[ -x "$bin" ] || { echo "no rampart binary at $bin (build it first)" >&2; exit 2; }
[ -d "$shared/crs/rules" ] && [ -d "$ftw" ] ||
  { echo "no CRS rules or runner under $shared (set RAMPART_SHARED_DIR)" >&2; exit 2; }
python3 -c 'import yaml' 2>/dev/null || { apt-get install -y -qq python3-yaml >/dev/null 2>&1 || python3 -m pip install -q PyYAML; }
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
port_gw=18480 port_be=18481 port_admin=18490
cat > "$work/rampart.toml" <<TOML
version = 1
data_dir = "./data"
[admin]
bind = "127.0.0.1:$port_admin"
[[listener]]
name = "public"
bind = "127.0.0.1:$port_gw"
[limits]
max_header_bytes = 65536
[events]
sink = "events.jsonl"
access_log = false
[waf]
mode = "detect"
rules = ["$ftw/crs-test/engine.conf", "$ftw/crs-test/crs-setup-test.conf", "$shared/crs/rules/*.conf"]
audit_log = "waf.jsonl"
audit_log_mode = "all"
[[route]]
name = "backend"
upstream = "http://127.0.0.1:$port_be"
TOML
python3 "$ftw/albedo_backend.py" --bind 127.0.0.1 --port "$port_be" > "$work/backend.log" 2>&1 & pids+=($!)
"$bin" serve --config "$work/rampart.toml" > "$work/gateway.out" 2> "$work/gateway.err" & pids+=($!)
for _ in $(seq 1 100); do
  curl -s -o /dev/null "http://127.0.0.1:$port_gw/status/200" && break
  sleep 0.2
done
run_suite() { # $1: results file, $2...: extra runner arguments
  local out=$1
  shift
  (cd "$ftw" && python3 ftw_runner.py "$shared/crs/tests/regression/tests" --host 127.0.0.1 --port "$port_gw" \
    --log-file "$work/waf.jsonl" --log-format jsonl -o "$out" --show-failures-only "$@") \
    >> "$work/run.log" 2>&1 || true
}
run_suite "$work/results.json" --correlate request-id -j 2
if [ ! -s "$work/results.json" ]; then
  echo "the CRS runner wrote no results; its output and the gateway's:" >&2
  tail -n 30 "$work/run.log" "$work/gateway.err" >&2
  exit 1
fi
# A failed test is run once more on its own, the way go-ftw and the CRS CI run it: marker
# requests around each stage and the log lines between them. So a loaded machine's timeout is
# not taken for a regression, and a request hyper refused with its own 400 (no X-Request-Id to
# correlate by) is judged by what the WAF logged of it (`Gate::unparsable`).
failed=$(python3 - "$work/results.json" <<'PY'
import json, sys
print("|".join(t['id'] for t in json.load(open(sys.argv[1]))['tests'] if t['result'] == 'failed'))
PY
)
if [ -n "$failed" ]; then
  run_suite "$work/retry.json" -j 1 --correlate marker -i "^($failed)\$"
  python3 - "$work/results.json" "$work/retry.json" <<'PY'
import json, sys
main, retry = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
again = {t['id']: t for t in retry['tests']}
for t in main['tests']:
    if t['id'] in again and again[t['id']]['result'] == 'passed':
        t['result'] = 'passed'
json.dump(main, open(sys.argv[1], 'w'))
PY
  [ -z "${CRS_KEEP:-}" ] || cp "$work/retry.json" "$CRS_KEEP"
fi
python3 - "$work/results.json" "$repo/crates/rampart-waf/crs-known-failures.txt" <<'PY'
import json, sys
results = json.load(open(sys.argv[1]))
known = {l.split('\t')[0] for l in open(sys.argv[2]) if l.strip() and not l.startswith('#')}
failed = {t['id']: t.get('reason') or '' for t in results['tests'] if t['result'] == 'failed'}
new = sorted(set(failed) - known)
fixed = sorted(known - set(failed))
run = len(results['tests'])
passed = sum(1 for t in results['tests'] if t['result'] == 'passed')
print(f"CRS regression through the gateway: {passed} of {run} tests pass ({100 * passed / run:.2f} %); {len(known)} known failures listed")
if fixed:
    print("now passing (remove from the known list):", " ".join(fixed))
for t in new:
    print(f"NEW FAILURE {t}: {failed[t]}")
sys.exit(1 if new else 0)
PY
