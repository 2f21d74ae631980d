#!/usr/bin/env bash
# Policy benchmarks (docs/BENCHMARKS.md, section "Policy"): builds release, prints the machine and
# load, then runs `contiv-bench policy all` (crates/bench/src/policy/): compile + render + nft
# install of 1k/10k/100k rules vs flat nft rules, rule-change convergence over 10 simulated hosts
# by probes, CNI ADD p50 with 1,000 rules vs before any policy, iperf3 with 1,000 rules vs the
# policy detached, agent RSS with 10,000 rules and 1,000 endpoints vs idle. Root only: it creates
# network namespaces (all named ctvtb-<pid>-..., removed at the end). Extra arguments go to
# `contiv-bench policy` before the subcommand (e.g. --bin-dir); one subcommand alone:
# `target/release/contiv-bench policy converge --help`.
#
#   sudo scripts/bench-policy.sh
#   sudo BENCH_MD=/tmp/policy.md scripts/bench-policy.sh
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $(id -u) == 0 ]] || { echo "bench-policy.sh: needs root (network namespaces)" >&2; exit 2; }
for c in nft iperf3; do
  command -v "$c" >/dev/null || { echo "bench-policy.sh: $c missing (scripts/install-deps.sh)" >&2; exit 2; }
done

cargo build --release --workspace
cargo build-contivk8s   # the plugin as installed: statically linked (.cargo/config.toml)

echo "== $(date -u +%Y-%m-%dT%H:%M:%SZ) | nproc $(nproc) | $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs) | kernel $(uname -r) | load: $(cut -d' ' -f1-3 /proc/loadavg) | profile: release | $(nft --version) | $(iperf3 --version | head -1)"
args=()
[[ -n "${BENCH_MD:-}" ]] && args+=(--markdown "$BENCH_MD")
start=$SECONDS
target/release/contiv-bench policy "${args[@]}" "$@" all
echo "== load after: $(cut -d' ' -f1-3 /proc/loadavg) | $((SECONDS - start)) s"
