#!/usr/bin/env bash
# Installs what building and testing Contiv-rs needs on a fresh Debian 12 machine (root).
# Idempotent: skips apt when everything is already there.
set -euo pipefail
PKGS=(build-essential pkg-config iproute2 iputils-ping netcat-openbsd ethtool nftables procps curl)
# tests/e2e_containerd.rs (a real CRI runtime drives contivk8s) and scripts/bench-cni.sh (the
# reference CNI plugins, iperf3).
PKGS+=(containerd runc busybox-static containernetworking-plugins iperf3)
# contiv-store's etcd backend: etcd-client compiles etcd's protobufs at build time (protoc and the
# well-known types), and its tests start real etcd members (contiv_store::testing::EtcdCluster).
PKGS+=(etcd-server etcd-client protobuf-compiler libprotobuf-dev)
# tests/e2e_dns.rs: dig (dnsutils) queries the agent's DNS from workload namespaces (nsenter is
# util-linux, always there).
PKGS+=(dnsutils)
# netprofile tests (crates/datapath-linux/tests/qos_kernel.rs, tests/e2e_qos.rs): the DSCP a workload's
# packets carry, captured in the receiving namespace.
PKGS+=(tcpdump)
# tests/e2e_docker.rs: a real dockerd 20.10 per simulated host (Docker's network and IPAM driver);
# its image is built offline from busybox-static (above).
PKGS+=(docker.io)
# contiv-openflow (issue 14): golden bytes are captured from ovs-ofctl, and the OVS datapath runs
# userspace ovsdb-server + ovs-vswitchd per simulated host (no kernel module here); contiv-ovsdb
# tests start ovsdb-server on a fresh vswitch database (ovsdb-tool, vswitch.ovsschema).
PKGS+=(openvswitch-switch)
# tests/api_ldap.rs: LDAP/AD login against a real OpenLDAP slapd the test starts itself on a
# loopback port (its own slapd.conf and database; slapadd loads the users and groups).
PKGS+=(slapd ldap-utils)
# scripts/schemathesis.sh: schemathesis (PyPI) runs in a venv of Debian's python3.
PKGS+=(python3-venv)
missing=()
for p in "${PKGS[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # RUNLEVEL=1: no service is started by the install (invoke-rc.d); docker.io's dockerd would
  # otherwise take over the root namespace (docker0, iptables) that the tests leave alone.
  RUNLEVEL=1 apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if [[ " ${missing[*]} " == *" docker.io "* ]] && command -v systemctl >/dev/null &&
    systemctl is-active --quiet docker 2>/dev/null; then
    # Installed just now and started anyway (systemd): the tests run their own dockerds.
    systemctl disable --now docker.service docker.socket >/dev/null 2>&1 || true
  fi
fi
command -v cargo >/dev/null || { echo "cargo (Rust toolchain) not found" >&2; exit 1; }
# scripts/fuzz.sh: cargo-fuzz, pinned (its targets build with the nightly toolchain these
# machines carry); built once from crates.io with its lock file (~2.5 min on 2 cores).
CARGO_FUZZ_VERSION=0.13.1
if [[ $(cargo fuzz --version 2>/dev/null) != "cargo-fuzz $CARGO_FUZZ_VERSION" ]]; then
  # Its own target dir: a CARGO_TARGET_DIR set for the project would take its build too.
  tmp=$(mktemp -d)
  CARGO_TARGET_DIR=$tmp cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked --quiet
  rm -rf "$tmp"
fi
# scripts/schemathesis.sh: schemathesis, pinned, in its own venv (the path is in that script).
SCHEMATHESIS_VERSION=4.32.5
ST_VENV=${XDG_CACHE_HOME:-$HOME/.cache}/contiv-schemathesis-$SCHEMATHESIS_VERSION
if [[ ! -x $ST_VENV/bin/schemathesis ]]; then
  /usr/bin/python3 -m venv "$ST_VENV"
  "$ST_VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi
