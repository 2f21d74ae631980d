#!/usr/bin/env bash
# The test command: installs dependencies, then runs every unit, integration and end-to-end test.
# End-to-end networking tests need root (they create network namespaces); as non-root they skip.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cargo build --workspace --all-targets
cargo test --workspace --no-fail-fast
