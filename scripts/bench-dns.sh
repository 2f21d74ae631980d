#!/usr/bin/env bash
# DNS benchmark (docs/BENCHMARKS.md, section "DNS service discovery"): builds release, installs
# dnsmasq-base if missing (the reference; the tests do not need it), prints the machine and load,
# then runs `contiv-bench dns` (crates/bench/src/dns.rs): queries/s and p50/p99 latency from one
# workload against the agent's DNS (hickory-server on the gateway, port 53) and against dnsmasq
# serving the same names in the same tenant namespace (port 5353), same run. Root only: it
# creates network namespaces (all named ctvtb-<pid>-..., removed at the end). Extra arguments go
# to `contiv-bench dns` (see `contiv-bench dns --help`).
#
#   sudo scripts/bench-dns.sh
#   sudo scripts/bench-dns.sh --inflight 1,16,64 --seconds 10 --rounds 3
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $(id -u) == 0 ]] || { echo "bench-dns.sh: needs root (network namespaces)" >&2; exit 2; }
if ! command -v dnsmasq >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends dnsmasq-base >/dev/null
fi

cargo build --release --workspace
cargo build-contivk8s   # the plugin as installed: statically linked (.cargo/config.toml)

echo "== $(date -u +%Y-%m-%dT%H:%M:%SZ) | nproc $(nproc) | $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs) | kernel $(uname -r) | load: $(cut -d' ' -f1-3 /proc/loadavg) | profile: release"
echo "== reference: $(dnsmasq --version | head -1); cargo processes running: $(pgrep -c cargo || true)"
target/release/contiv-bench dns "$@"
