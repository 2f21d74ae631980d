#!/usr/bin/env bash
# The test command: installs dependencies, then runs every unit, integration and end-to-end test.
# Tests that need root (kernel datapath and end-to-end tests: they create network namespaces) are
# marked #[ignore = "needs root"]. As root (CI) they run too (--include-ignored); as non-root they
# are skipped, cargo's summary counts them as ignored and this script says so at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cargo build --workspace --all-targets
if [[ $(id -u) == 0 ]]; then
  cargo test --workspace --no-fail-fast -- --include-ignored
else
  rc=0
  cargo test --workspace --no-fail-fast || rc=$?
  echo "test.sh: not root: the tests that need root were skipped (counted as 'ignored' above); run as root to include them" >&2
  exit "$rc"
fi
