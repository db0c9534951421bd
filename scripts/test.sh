#!/usr/bin/env bash
# The test command: starts what the tests need, then runs every test of the workspace
# (and, without arguments, the JavaScript client's tests first).
# Extra arguments go to `cargo test` (for example `-p rampart-waf`).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/services.sh
if [ "$#" -eq 0 ]; then
    # The browser client library's unit tests (node's own runner, no dependencies).
    (cd clients/js && node --test)
fi
cargo test --workspace "$@"
