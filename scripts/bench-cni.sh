#!/usr/bin/env bash
# CNI / data-plane benchmark (docs/BENCHMARKS.md, section "CNI plugin and data plane"): builds
# release, prints the machine and load, then runs `contiv-bench cni` (crates/bench/src/cni.rs):
# our contivk8s + netplugin vs the reference bridge + host-local plugins (sequential ADD/DEL p50/p99
# over --pods pods, ADD/DEL throughput with --inflight in flight), and iperf3 single-stream
# (same host vs a bare veth pair, across hosts vs bare kernel VXLAN). Root only: it creates
# network namespaces (all named ctvtb-<pid>-..., removed at the end). Extra arguments go to
# `contiv-bench cni` (see `contiv-bench cni --help`).
#
#   sudo scripts/bench-cni.sh
#   sudo BENCH_MD=/tmp/cni.md scripts/bench-cni.sh --pods 200 --inflight 16
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $(id -u) == 0 ]] || { echo "bench-cni.sh: needs root (network namespaces)" >&2; exit 2; }
for b in /usr/lib/cni/bridge /usr/lib/cni/host-local; do
  [[ -x $b ]] || { echo "bench-cni.sh: $b missing (scripts/install-deps.sh)" >&2; exit 2; }
done
command -v iperf3 >/dev/null || { echo "bench-cni.sh: iperf3 missing (scripts/install-deps.sh)" >&2; exit 2; }

cargo build --release --workspace
cargo build-contivk8s   # the plugin as installed: statically linked (.cargo/config.toml)

echo "== $(date -u +%Y-%m-%dT%H:%M:%SZ) | nproc $(nproc) | $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs) | kernel $(uname -r) | load: $(cut -d' ' -f1-3 /proc/loadavg) | profile: release"
echo "== reference: containernetworking-plugins $(dpkg-query -W -f='${Version}' containernetworking-plugins 2>/dev/null || echo '?'); $(iperf3 --version | head -1)"
args=()
[[ -n "${BENCH_MD:-}" ]] && args+=(--markdown "$BENCH_MD")
target/release/contiv-bench cni "${args[@]}" "$@"
echo "== load after: $(cut -d' ' -f1-3 /proc/loadavg)"
