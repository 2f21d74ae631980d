#!/usr/bin/env bash
# Service load balancing benchmark (docs/BENCHMARKS.md, section "Service load balancing"): builds
# release, prints the machine and load, then runs `contiv-bench services`
# (crates/bench/src/services.rs), every figure against its reference in the same run:
#  - TCP connect (+close) p50/p99 from a client workload to the VIP vs to the provider directly;
#  - iperf3 single stream through the VIP vs directly (apt iperf3);
#  - a provider change (label toggle) enforced in the `ip contiv_lb` table of all of 10 hosts:
#    p50/p99/max from netmaster's acknowledgement, seen by an nftables monitor socket per host.
# Root only: it creates network namespaces (all named ctvtb-<pid>-..., removed at the end). Extra
# arguments go to `contiv-bench services` (see `contiv-bench services --help`).
#
#   sudo scripts/bench-services.sh
#   sudo scripts/bench-services.sh --connects 10000 --changes 500 --only change
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $(id -u) == 0 ]] || { echo "bench-services.sh: needs root (network namespaces)" >&2; exit 2; }
command -v iperf3 >/dev/null || { echo "bench-services.sh: needs iperf3 (apt iperf3)" >&2; exit 2; }

cargo build --release --workspace
cargo build-contivk8s   # the plugin as installed: statically linked (.cargo/config.toml)

echo "== $(date -u +%Y-%m-%dT%H:%M:%SZ) | nproc $(nproc) | $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs) | kernel $(uname -r) | load: $(cut -d' ' -f1-3 /proc/loadavg) | profile: release"
echo "== $(uptime); cargo processes running: $(pgrep -c cargo || true)"
target/release/contiv-bench services "$@"
