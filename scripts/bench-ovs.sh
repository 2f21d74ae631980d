#!/usr/bin/env bash
# Open vSwitch datapath benchmarks (docs/BENCHMARKS.md, section "Open vSwitch datapath"): builds
# release, prints the machine and load, then runs `contiv-bench ovs SUBCOMMAND` (crates/bench/src/ovs/):
# `flows` (10,000 flows through our OpenFlow codec vs ovs-ofctl add-flows), `iperf` (iperf3 through
# our pipeline vs a plain OVS NORMAL bridge), `cni` (CNI ADD/DEL on --datapath ovs vs linux; needs
# release netmaster, netplugin and contivk8s next to contiv-bench: built here too), `policy` (one
# rule change enforced on 10 hosts, by probes, on OVS then on the Linux datapath). Root only: it creates network namespaces (all named
# ovb-<pid>-..., removed at the end) and starts its own ovsdb-server/ovs-vswitchd per simulated host
# (stopped by PID). Extra arguments go to the subcommand (`contiv-bench ovs flows --help`).
#
#   sudo scripts/bench-ovs.sh flows --runs 7
#   sudo BENCH_MD=/tmp/ovs.md scripts/bench-ovs.sh iperf --hosts 2
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $(id -u) == 0 ]] || { echo "bench-ovs.sh: needs root (network namespaces)" >&2; exit 2; }
for c in ovs-vswitchd ovsdb-server ovs-ofctl iperf3 ethtool; do
  command -v "$c" >/dev/null || { echo "bench-ovs.sh: $c missing (scripts/install-deps.sh)" >&2; exit 2; }
done
[[ $# -ge 1 ]] || { echo "usage: bench-ovs.sh flows|iperf|cni|policy|all [args...]" >&2; exit 2; }

cargo build --release -p contiv-bench
if [[ $1 == cni || $1 == policy || $1 == all ]]; then
  cargo build --release -p contiv --bin netmaster --bin netplugin
  cargo build-contivk8s   # the plugin as installed: statically linked (.cargo/config.toml)
fi

echo "== $(date -u +%Y-%m-%dT%H:%M:%SZ) | nproc $(nproc) | $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs) | kernel $(uname -r) | load: $(cut -d' ' -f1-3 /proc/loadavg) | profile: release | $(ovs-vswitchd --version | head -1) | $(iperf3 --version | head -1)"
sub=$1; shift
args=()
[[ -n "${BENCH_MD:-}" ]] && args+=(--markdown "$BENCH_MD")
start=$SECONDS
"${CARGO_TARGET_DIR:-target}"/release/contiv-bench ovs "${args[@]}" "$sub" "$@"
echo "== load after: $(cut -d' ' -f1-3 /proc/loadavg) | $((SECONDS - start)) s"
