#!/usr/bin/env bash
# netplugin as a managed (v2) Docker plugin, built and installed offline (what swarm mode needs:
# dockerd refuses a socket plugin for swarm networks).
#
#   bash scripts/docker-plugin.sh build DIR [BINARY]
#       builds the plugin directory DIR: rootfs/ with BINARY (default: a statically linked
#       target/release/netplugin, built here with +crt-static) as /netplugin, and config.json
#       declaring docker.networkdriver/1.0 and docker.ipamdriver/1.0 on socket netplugin.sock,
#       host network, the capabilities and mounts the agent needs (/run/netns shared, so the
#       tenant namespaces it makes are the host's; its state dir /var/lib/contiv). The rootfs
#       also holds the host's `nft` (and the libraries of both): the datapath installs its
#       policy, source guard and service tables by running `nft -f -`. The agent remounts the
#       plugin's /proc/sys read-write (dockerd makes it read-only; the datapath sets sysctls).
#   bash scripts/docker-plugin.sh install DOCKER_SOCKET NAME DIR NETPLUGIN-ARGS...
#       `docker plugin create NAME DIR`, `docker plugin set NAME args=...`, `docker plugin enable
#       NAME` on the dockerd at DOCKER_SOCKET (run it once per node). The Docker driver and IPAM
#       driver name is then NAME (e.g. `contiv/netplugin:latest`). With STATE_DIR set, that host
#       directory is the plugin's /var/lib/contiv instead of the host's own (the swarm e2e runs
#       two nodes on one machine).
#
# Nothing is downloaded: the rootfs holds only copies of binaries already on this machine.
set -euo pipefail
cd "$(dirname "$0")/.."

# add_binary SRC DEST ROOTFS: copies SRC to DEST and, if it is dynamically linked, its shared
# libraries (and loader) to the same paths under ROOTFS.
add_binary() {
    local src=$1 dest=$2 root=$3
    mkdir -p "$(dirname "$dest")"
    cp "$src" "$dest"
    # A static binary has none: ldd and grep then fail, which is not an error here.
    local libs
    libs=$(ldd "$src" 2>/dev/null | grep -o '/[^ ]*' || true)
    for lib in $libs; do
        mkdir -p "$root$(dirname "$lib")"
        cp -L "$lib" "$root$lib"
    done
}

build() {
    local dir=$1 bin=${2:-}
    if [ -z "$bin" ]; then
        cargo rustc --release -p contiv --bin netplugin -- -C target-feature=+crt-static
        bin=${CARGO_TARGET_DIR:-target}/release/netplugin
    fi
    local nft
    nft=$(command -v nft) || { echo "nft not found: the plugin's datapath runs it" >&2; exit 1; }
    rm -rf "$dir"
    mkdir -p "$dir/rootfs"/{run/docker/plugins,run/netns,var/lib/contiv,proc,sys,dev,etc,tmp}
    add_binary "$bin" "$dir/rootfs/netplugin" "$dir/rootfs"
    add_binary "$nft" "$dir/rootfs/usr/sbin/nft" "$dir/rootfs"
    cat > "$dir/config.json" <<'JSON'
{
  "description": "Contiv netplugin: Docker network and IPAM driver",
  "documentation": "https://github.com/contiv/netplugin",
  "entrypoint": ["/netplugin", "--docker-plugin-socket", "/run/docker/plugins/netplugin.sock",
                 "--state-dir", "/var/lib/contiv/netplugin", "--remount-proc-sys"],
  "args": {"name": "args", "description": "further netplugin flags (--host, --netmaster, --vtep-ip, ...)",
           "settable": ["value"], "value": []},
  "interface": {"socket": "netplugin.sock",
                "types": ["docker.networkdriver/1.0", "docker.ipamdriver/1.0"]},
  "network": {"type": "host"},
  "linux": {"capabilities": ["CAP_SYS_ADMIN", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_SYS_PTRACE"],
            "allowAllDevices": false},
  "mounts": [
    {"name": "netns", "type": "bind", "source": "/run/netns", "destination": "/run/netns",
     "options": ["rbind", "rshared"]},
    {"name": "state", "type": "bind", "source": "/var/lib/contiv", "destination": "/var/lib/contiv",
     "options": ["rbind"], "settable": ["source"]}
  ]
}
JSON
    echo "plugin directory: $dir"
}

install() {
    local sock=$1 name=$2 dir=$3
    shift 3
    local d=(docker -H "unix://$sock")
    "${d[@]}" plugin create "$name" "$dir"
    if [ -n "${STATE_DIR:-}" ]; then
        mkdir -p "$STATE_DIR"
        "${d[@]}" plugin set "$name" "state.source=$STATE_DIR"
    fi
    if [ $# -gt 0 ]; then
        "${d[@]}" plugin set "$name" "args=$*"
    fi
    "${d[@]}" plugin enable "$name"
}

case "${1:-}" in
    build) shift; build "$@" ;;
    install) shift; install "$@" ;;
    *) sed -n '2,22p' "$0"; exit 2 ;;
esac
