#!/usr/bin/env bash
# Quickstart: a 2-host Contiv cluster on this machine, in network namespaces.
#
#   bash scripts/quickstart.sh        build, start netmaster (embedded store) + 2 netplugins, create a
#                                     tenant, a network and two groups, start 4 workloads through the
#                                     CNI plugin and print their connectivity matrix; then attach a
#                                     policy to group db and show it enforced on both hosts, with
#                                     `netctl policy explain` saying which rule decided (left running)
#   bash scripts/quickstart.sh down   stop everything and remove what `up` created
#
# Needs root (network namespaces). Everything it makes is named qs-* (namespaces) and lives under
# $QS_DIR (default /tmp/contiv-quickstart); only 127.0.0.1 and these namespaces see traffic.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
QS_DIR=${QS_DIR:-/tmp/contiv-quickstart}
PORT=${QS_PORT:-19999}
URL="http://127.0.0.1:$PORT"
BIN="$ROOT/target/release"
HOSTS=(qs-h1 qs-h2)
VTEPS=(172.30.99.1 172.30.99.2)
# workload: name host-index group
WORKLOADS=("qs-w1 0 web" "qs-w2 0 db" "qs-w3 1 web" "qs-w4 1 db")

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
netctl() { "$BIN/netctl" --netmaster "$URL" "$@"; }

cni() { # cni CMD workload-name host-index group
  local cmd=$1 name=$2 host=$3 group=$4
  local conf
  conf=$(printf '{"cniVersion":"1.0.0","name":"contiv","type":"contivk8s","agentSocket":"%s","pendingDeleteDir":"%s","tenant":"demo","network":"app-net","group":"%s"}' \
    "$QS_DIR/h$((host + 1))/cni.sock" "$QS_DIR/h$((host + 1))/pending" "$group")
  CNI_COMMAND=$cmd CNI_CONTAINERID=$name CNI_NETNS=/run/netns/$name CNI_IFNAME=eth0 CNI_PATH="$BIN" \
    "$BIN/contivk8s" <<<"$conf"
}

wait_for() { # wait_for description command...
  local what=$1; shift
  for _ in $(seq 1 100); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  echo "timed out waiting for $what" >&2
  return 1
}

down() {
  set +e
  if [[ -d $QS_DIR ]]; then
    say "removing workloads"
    for w in "${WORKLOADS[@]}"; do
      read -r name host group <<<"$w"
      [[ -S $QS_DIR/h$((host + 1))/cni.sock ]] && cni DEL "$name" "$host" "$group" >/dev/null 2>&1
    done
    sleep 0.5
    say "stopping processes"
    for pidfile in "$QS_DIR"/*.pid; do
      [[ -f $pidfile ]] || continue
      pid=$(cat "$pidfile")
      kill "$pid" 2>/dev/null
      for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null
      rm -f "$pidfile"
    done
  fi
  say "removing namespaces"
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^(qs-|qs[12]-)'); do
    ip netns del "$ns"
  done
  rm -rf "$QS_DIR"
  say "quickstart removed"
}

start() { # start name logfile command...
  local name=$1 log=$2; shift 2
  "$@" >"$log" 2>&1 &
  echo $! >"$QS_DIR/$name.pid"
}

hosts_up() {
  say "creating 2 simulated hosts joined by an underlay"
  for h in "${HOSTS[@]}"; do ip netns add "$h"; ip -n "$h" link set lo up; done
  ip link add ul0 netns qs-h1 type veth peer name ul0 netns qs-h2
  for i in 0 1; do
    ip -n "${HOSTS[$i]}" addr add "${VTEPS[$i]}/24" dev ul0
    ip -n "${HOSTS[$i]}" link set ul0 up
  done
}

control_plane_up() {
  say "starting netmaster on $URL (embedded store in $QS_DIR/netmaster)"
  start netmaster "$QS_DIR/netmaster.log" "$BIN/netmaster" --external-address "127.0.0.1:$PORT" --data-dir "$QS_DIR/netmaster"
  wait_for netmaster curl -sf "$URL/version"
  for i in 0 1; do
    local d="$QS_DIR/h$((i + 1))"
    mkdir -p "$d"
    say "starting netplugin for ${HOSTS[$i]} (vtep ${VTEPS[$i]})"
    start "netplugin-h$((i + 1))" "$d/netplugin.log" "$BIN/netplugin" --host "${HOSTS[$i]}" \
      --vtep-ip "${VTEPS[$i]}" --netmaster "$URL" --host-netns "/run/netns/${HOSTS[$i]}" \
      --underlay-if ul0 --state-dir "$d/state" --cni-socket "$d/cni.sock" --cni-pending-dir "$d/pending" \
      --ns-prefix "qs$((i + 1))"
    wait_for "netplugin ${HOSTS[$i]}" test -S "$d/cni.sock"
  done
}

config_up() {
  say "netctl: tenant demo, network app-net 10.10.0.0/24 (vxlan), groups web and db"
  netctl tenant create demo
  netctl network create -t demo -e vxlan -s 10.10.0.0/24 -g 10.10.0.1 app-net
  netctl group create -t demo app-net web
  netctl group create -t demo app-net db
}

workloads_up() {
  say "starting 4 workloads through the CNI plugin (contivk8s)"
  for w in "${WORKLOADS[@]}"; do
    read -r name host group <<<"$w"
    ip netns add "$name"
    ip -n "$name" link set lo up
    ip=$(cni ADD "$name" "$host" "$group" | sed -n 's/.*"address": *"\([0-9.]*\)\/.*/\1/p' | head -1)
    [[ -n $ip ]] || { echo "CNI ADD of $name failed" >&2; return 1; }
    echo "$ip" >"$QS_DIR/$name.ip"
    printf '  %-6s on %-6s group %-4s ip %s\n' "$name" "${HOSTS[$host]}" "$group" "$ip"
  done
}

group_of() { # group_of workload-name
  local w name group
  for w in "${WORKLOADS[@]}"; do
    read -r name _ group <<<"$w"
    [[ $name == "$1" ]] && echo "$group"
  done
}

matrix() { # matrix [policy]: with "policy", a ping into db is expected only from web
  say "connectivity matrix (ping from row to column)"
  printf '%-8s' ""
  for w in "${WORKLOADS[@]}"; do read -r name _ _ <<<"$w"; printf '%-8s' "$name"; done
  echo
  local fails=0 expect
  for src in "${WORKLOADS[@]}"; do
    read -r s _ _ <<<"$src"
    printf '%-8s' "$s"
    for dst in "${WORKLOADS[@]}"; do
      read -r d _ _ <<<"$dst"
      if [[ $s == "$d" ]]; then printf '%-8s' "-"; continue; fi
      expect=ok
      [[ ${1:-} == policy && $(group_of "$d") == db && $(group_of "$s") != web ]] && expect=denied
      if ip netns exec "$s" ping -c 1 -W 2 "$(cat "$QS_DIR/$d.ip")" >/dev/null 2>&1; then
        got=ok
      else
        got=denied
      fi
      if [[ $got == "$expect" ]]; then printf '%-8s' "$got"; else printf '%-8s' "$got!"; fails=$((fails + 1)); fi
    done
    echo
  done
  return "$fails"
}

policy_up() {
  say "policy: into group db only web may ping (deny icmp at priority 1, allow icmp from web at 10)"
  netctl policy create -t demo db-in
  netctl policy rule-add -t demo -d in -j deny -l icmp -p 1 db-in 1
  netctl policy rule-add -t demo -d in -j allow -l icmp -g web -p 10 db-in 2
  netctl group create -t demo -p db-in app-net db
  netctl policy rule-ls -t demo db-in
  echo
}

up() {
  [[ $(id -u) == 0 ]] || { echo "quickstart needs root (network namespaces)" >&2; exit 1; }
  if [[ -d $QS_DIR ]] || ip netns list 2>/dev/null | grep -qE '^qs-'; then
    say "an earlier quickstart is still there: removing it first"
    down
  fi
  bash scripts/install-deps.sh
  say "building (release)"
  cargo build --release --bin netmaster --bin netctl --bin netplugin
  cargo build-contivk8s   # statically linked: see .cargo/config.toml
  mkdir -p "$QS_DIR"
  hosts_up
  control_plane_up
  config_up
  workloads_up
  echo
  netctl network ls -t demo
  echo
  netctl group ls -t demo
  echo
  if matrix; then
    say "all workloads reach each other (same host and across hosts over VXLAN)"
  else
    say "some pings failed: see $QS_DIR/*.log" && exit 1
  fi
  echo
  policy_up
  if matrix policy; then
    say "policy enforced on both hosts: db (qs-w2, qs-w4) answers web only; everything else unchanged"
  else
    say "the matrix does not follow the policy (marked !): see $QS_DIR/*.log" && exit 1
  fi
  echo
  say "netctl policy explain: which rule decided"
  netctl policy explain -t demo --from qs-w2 --to qs-w4 --protocol icmp
  echo
  netctl policy explain -t demo --from qs-w1 --to qs-w4 --protocol icmp
  echo
  say "netctl policy status: the revision each host enforces"
  netctl policy status
  echo
  echo "Try:  $BIN/netctl --netmaster $URL endpoint inspect qs-w1"
  echo "      $BIN/netctl --netmaster $URL policy inspect -t demo db-in     (policyViolations: denied packets)"
  echo "      ip netns exec qs-w2 ping $(cat "$QS_DIR/qs-w4.ip")               (denied: db to db)"
  echo "      ip netns exec $(ip netns list | awk '/^qs1-t-/{print $1; exit}') nft list table inet contiv   (the rules on qs-h1)"
  echo "Stop: bash scripts/quickstart.sh down"
}

case "${1:-up}" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 [up|down]" >&2; exit 2 ;;
esac
