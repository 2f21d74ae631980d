#!/usr/bin/env bash
# Control-plane benchmark (docs/BENCHMARKS.md): builds release, spawns our netmaster on a free
# loopback port with a fresh temp data dir, runs contiv-bench against it and, when REFERENCE_URL
# is set, against that already running server in the same run with the same client, printing
# ratios. Extra arguments go to contiv-bench (see `contiv-bench --help`).
#
#   scripts/bench.sh                                 # ours only
#   REFERENCE_URL=http://127.0.0.1:29999 REFERENCE_PIDS=<pid>,<pid> scripts/bench.sh
#   BENCH_MD=/tmp/bench.md scripts/bench.sh --with-sync-full
#
# The reference must be a fresh server (no networks) on 127.0.0.1; this script never builds or
# starts it.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ -n "${REFERENCE_URL:-}" ]]; then
  case "$REFERENCE_URL" in
    http://127.0.0.1:*|http://localhost:*) ;;
    *) echo "bench.sh: REFERENCE_URL must be http://127.0.0.1:PORT (loopback only)" >&2; exit 2 ;;
  esac
fi

cargo build --release --workspace

echo "== $(date -u +%Y-%m-%dT%H:%M:%SZ) | nproc $(nproc) | kernel $(uname -r) | load: $(cut -d' ' -f1-3 /proc/loadavg) | profile: release"
args=()
[[ -n "${BENCH_MD:-}" ]] && args+=(--markdown "$BENCH_MD")
# REFERENCE_URL / REFERENCE_PIDS are read by contiv-bench from the environment.
target/release/contiv-bench "${args[@]}" "$@"
echo "== load after: $(cut -d' ' -f1-3 /proc/loadavg)"
