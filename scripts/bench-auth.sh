#!/usr/bin/env bash
# What TLS and tokens cost (issue 13; docs/BENCHMARKS.md "TLS and tokens"). Builds release, then
# contiv-bench auth spawns two netmasters of ours on free loopback ports, each on a fresh embedded
# store in a temp dir: one in plain HTTP without users, one with TLS (certificates from
# `netmaster certs init`, client certificates verified) and --auth. Same run, same client,
# interleaved call by call: network create (token) and allocAddress (host certificate) over
# keep-alive connections, p50/p99 and the ratio; then logins (argon2id). Extra arguments go to
# contiv-bench auth (see `contiv-bench auth --help`).
#
#   scripts/bench-auth.sh
#   BENCH_MD=/tmp/auth.md scripts/bench-auth.sh --count 2000
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release -p contiv -p contiv-bench --bin netmaster --bin contiv-bench
bin="${CARGO_TARGET_DIR:-target}/release"
echo "== $(date -u +%Y-%m-%dT%H:%M:%SZ) | nproc $(nproc) | kernel $(uname -r) | load: $(cut -d' ' -f1-3 /proc/loadavg) | profile: release"
args=()
[[ -n "${BENCH_MD:-}" ]] && args+=(--markdown "$BENCH_MD")
"$bin/contiv-bench" auth "${args[@]}" "$@"
echo "== load after: $(cut -d' ' -f1-3 /proc/loadavg)"
