#!/usr/bin/env bash
# The test command: starts what the tests need, then runs every test of the workspace.
# Extra arguments go to `cargo test` (for example `-p rampart-waf`).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/services.sh
cargo test --workspace "$@"
