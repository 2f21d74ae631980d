#!/usr/bin/env bash
# Quickstart: a 2-host Contiv cluster on this machine, in network namespaces.
#
#   bash scripts/quickstart.sh        build, start netmaster (embedded store) + 2 netplugins, create a
#                                     tenant, a network and two groups, start 4 workloads through the
#                                     CNI plugin and print their connectivity matrix; then attach a
#                                     policy to group db and show it enforced on both hosts, with
#                                     `netctl policy explain` saying which rule decided; a service VIP
#                                     balanced over the web workloads and the tenant's DNS; then scales out:
#                                     the store copied into etcd (`netmaster migrate`), two netmasters
#                                     electing a leader, the leader killed, traffic and policy kept
#                                     (left running). Everything runs over TLS: `netmaster certs init`
#                                     makes a CA and certificates in $QS_DIR/pki; each agent proves its
#                                     host with its own.
#   bash scripts/quickstart.sh --datapath ovs
#                                     the same hosts on Open vSwitch: an ovsdb-server + ovs-vswitchd
#                                     per host (userspace datapath), the agents programming Contiv's
#                                     OpenFlow pipeline (docs/ovs-pipeline.md); workloads and their
#                                     connectivity matrix, the demo policy enforced in the pipeline
#                                     (matrix, explain, status), the service balanced by a select
#                                     group, the same scale-out to etcd, then the flows and groups of
#                                     qs-h1 (left running)
#   bash scripts/quickstart.sh down   stop everything and remove what `up` created (OVS daemons included)
#
# QS_BIN=DIR uses the binaries in DIR (netmaster, netplugin, netctl, contivk8s) instead of building.
# Needs root (network namespaces). Everything it makes is named qs-* (namespaces) and lives under
# $QS_DIR (default /tmp/contiv-quickstart); only 127.0.0.1 and these namespaces see traffic.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
QS_DIR=${QS_DIR:-/tmp/contiv-quickstart}
PORT=${QS_PORT:-19999}
PORT2=$((PORT + 1))
URL="https://127.0.0.1:$PORT"
URL2="https://127.0.0.1:$PORT2"
ETCD_PORT=${QS_ETCD_PORT:-12479}
ETCD_PEER=$((ETCD_PORT + 1))
ETCD="http://127.0.0.1:$ETCD_PORT"
# netctl talks to this netmaster (any netmaster answers; the demo moves it after a failover).
NM=$URL
# TLS: a CA, netmaster's certificate and one per host (`netmaster certs init`); netmaster verifies
# the agents' certificates, so each agent acts only as its host. netctl trusts the CA.
PKI="$QS_DIR/pki"
export CONTIV_CACERT="$PKI/ca.pem"
NM_TLS=(--tls-cert "$PKI/netmaster.pem" --tls-key "$PKI/netmaster-key.pem" --tls-client-ca "$PKI/ca.pem")
# Users and tokens (--auth): every /api/v1 call needs a token. The admin's password is generated
# into a 0600 file; netctl logs in with it and keeps its token under $QS_DIR/home (not your own
# ~/.netctl), so `down` removes it too.
ADMIN_PW="$QS_DIR/admin-password"
NM_AUTH=(--auth --admin-password-file "$ADMIN_PW")
NETCTL_HOME="$QS_DIR/home"
https_get() { curl -sf --cacert "$PKI/ca.pem" "$@"; }
# Where cargo puts the release binaries (CARGO_TARGET_DIR when set), unless QS_BIN names others.
BIN="${QS_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release}"
# linux (default) or ovs: `--datapath ovs`.
DATAPATH=linux
# OVS: the netdev bridge holding each host's underlay veth and VTEP address (userspace VXLAN
# sends from an address OVS owns), and the integration bridge the agent makes and programs.
OVS_PHY=qsphy
OVS_BR=contivbr
HOSTS=(qs-h1 qs-h2)
VTEPS=(172.30.99.1 172.30.99.2)
# workload: name host-index group
WORKLOADS=("qs-w1 0 web" "qs-w2 0 db" "qs-w3 1 web" "qs-w4 1 db")

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
netctl() { HOME=$NETCTL_HOME "$BIN/netctl" --netmaster "$NM" "$@"; }

cni() { # cni CMD workload-name host-index group
  local cmd=$1 name=$2 host=$3 group=$4
  local conf
  conf=$(printf '{"cniVersion":"1.0.0","name":"contiv","type":"contivk8s","agentSocket":"%s","pendingDeleteDir":"%s","tenant":"demo","network":"app-net","group":"%s"}' \
    "$QS_DIR/h$((host + 1))/cni.sock" "$QS_DIR/h$((host + 1))/pending" "$group")
  CNI_COMMAND=$cmd CNI_CONTAINERID=$name CNI_NETNS=/run/netns/$name CNI_IFNAME=eth0 CNI_PATH="$BIN" \
    CNI_ARGS="IgnoreUnknown=1;app=$group" "$BIN/contivk8s" <<<"$conf"
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
    for w in "${WORKLOADS[@]}" "qs-w5 0 web"; do
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
      # Only if still there: a pid that exited may already be someone else's.
      if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid" 2>/dev/null; fi
      rm -f "$pidfile"
    done
    ovs_down
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
  disown "$!"   # killed on purpose later (the demo kills a leader): no job-control notice
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

ovs_dir() { echo "$QS_DIR/h$(($1 + 1))/ovs"; }

ovs_in() { # ovs_in host-index command...: in the host's netns, with its OVS's files
  local i=$1 d
  d=$(ovs_dir "$1"); shift
  ip netns exec "${HOSTS[$i]}" env OVS_RUNDIR="$d" OVS_LOGDIR="$d" OVS_DBDIR="$d" "$@"
}

ovs_up() {
  say "Open vSwitch per host: its own ovsdb-server + ovs-vswitchd (userspace datapath), ul0 in netdev bridge $OVS_PHY holding the VTEP address"
  local i d
  for i in 0 1; do
    d=$(ovs_dir "$i")
    mkdir -p "$d"
    ovsdb-tool create "$d/conf.db" /usr/share/openvswitch/vswitch.ovsschema
    # Their logs go to files in $d only (-vconsole:off).
    ovs_in "$i" ovsdb-server "$d/conf.db" --remote="punix:$d/db.sock" --pidfile --log-file --detach -vconsole:off
    ovs_in "$i" ovs-vsctl --no-wait init
    ovs_in "$i" ovs-vswitchd "unix:$d/db.sock" --pidfile --log-file --detach -vconsole:off
    ovs_in "$i" ovs-vsctl add-br "$OVS_PHY" -- set bridge "$OVS_PHY" datapath_type=netdev -- add-port "$OVS_PHY" ul0
    ip -n "${HOSTS[$i]}" addr del "${VTEPS[$i]}/24" dev ul0
    ip -n "${HOSTS[$i]}" addr add "${VTEPS[$i]}/24" dev "$OVS_PHY"
    ip -n "${HOSTS[$i]}" link set "$OVS_PHY" up
  done
}

ovs_down() { # the OVS daemons ovs_up started, by their pid files (only while the pid is still theirs)
  local pf pid
  for pf in "$QS_DIR"/h*/ovs/ovs-vswitchd.pid "$QS_DIR"/h*/ovs/ovsdb-server.pid; do
    [[ -f $pf ]] || continue
    pid=$(cat "$pf")
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$QS_DIR/" || continue
    say "stopping $(basename "$pf" .pid) of $(basename "$(dirname "$(dirname "$pf")")")"
    kill "$pid" 2>/dev/null
    for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid" 2>/dev/null; fi
  done
}

stop_pid() { # stop_pid name [signal]: ends a process this script started, by its pid file
  local f="$QS_DIR/$1.pid" pid
  [[ -f $f ]] || return 0
  pid=$(cat "$f")
  kill "-${2:-TERM}" "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  # Gone for good before going on: a netmaster still exiting holds its store's lock (on a loaded
  # machine `netmaster migrate` found it "in use by another process").
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  rm -f "$f"
}

start_netplugin() { # start_netplugin host-index netmaster-urls
  local i=$1 d="$QS_DIR/h$(($1 + 1))"
  local dp=(--underlay-if ul0)
  if [[ $DATAPATH == ovs ]]; then
    # Policy and service balancing are the pipeline's own (`--policy/--services auto` =
    # openflow).
    dp=(--underlay-if "$OVS_PHY" --datapath ovs --ovsdb "unix:$(ovs_dir "$i")/db.sock"
      --ovs-bridge "$OVS_BR")
  fi
  mkdir -p "$d"
  start "netplugin-h$((i + 1))" "$d/netplugin.log" "$BIN/netplugin" --host "${HOSTS[$i]}" \
    --vtep-ip "${VTEPS[$i]}" --netmaster "$2" --host-netns "/run/netns/${HOSTS[$i]}" \
    "${dp[@]}" --state-dir "$d/state" --cni-socket "$d/cni.sock" --cni-pending-dir "$d/pending" \
    --ns-prefix "qs$((i + 1))" --tls-ca "$PKI/ca.pem" \
    --tls-cert "$PKI/host-${HOSTS[$i]}.pem" --tls-key "$PKI/host-${HOSTS[$i]}-key.pem"
  wait_for "netplugin ${HOSTS[$i]}" test -S "$d/cni.sock"
}

leads() { https_get "$1/info" | grep -q '"current-state":"leader"'; }
any_leads() { leads "$URL" || leads "$URL2"; }
# Every host reports enforcing the policy revision netmaster holds (what `netctl policy status` shows).
policy_current() {
  local st
  st=$(netctl policy status -j) || return 1
  [[ $(grep -c '"current": true' <<<"$st") == "${#HOSTS[@]}" ]]
}

control_plane_up() {
  say "certificates: a CA, netmaster's and one per host in $PKI (netmaster certs init)"
  [[ -f $PKI/ca.pem ]] || "$BIN/netmaster" certs init "$PKI" --host "${HOSTS[0]}" --host "${HOSTS[1]}" >/dev/null
  (umask 077; head -c 18 /dev/urandom | base64 >"$ADMIN_PW")
  say "starting netmaster on $URL (TLS, agents prove their host; users and tokens on; embedded store in $QS_DIR/netmaster)"
  start netmaster "$QS_DIR/netmaster.log" "$BIN/netmaster" --external-address "127.0.0.1:$PORT" \
    --data-dir "$QS_DIR/netmaster" "${NM_TLS[@]}" "${NM_AUTH[@]}"
  wait_for netmaster https_get "$URL/version"
  say "without a token every API call is refused:"
  curl -s --cacert "$PKI/ca.pem" -w '  (HTTP %{http_code})\n' "$URL/api/v1/tenants/"
  say "netctl login as admin (password in $ADMIN_PW, mode 0600; token kept in $NETCTL_HOME/.netctl/token)"
  netctl login -u admin <"$ADMIN_PW"
  for i in 0 1; do
    say "starting netplugin for ${HOSTS[$i]} (vtep ${VTEPS[$i]})"
    start_netplugin "$i" "$URL"
  done
}

# A TCP server in workload $1 answering its name on port 8080 to every connection (one python
# process, ended by pid at `down`).
serve_name() {
  start "srv-$1" "$QS_DIR/srv-$1.log" ip netns exec "$1" python3 -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 8080)); s.listen(64)
while True:
    c, _ = s.accept(); c.sendall((sys.argv[1] + "\n").encode()); c.close()
' "$1"
}

services_up() {
  say "service load balancing: websvc, a VIP on app-net balanced over the workloads labelled app=web"
  netctl service create -t demo -s app-net --selector app=web --port 80:8080:TCP websvc
  local inspect vip
  wait_for "websvc's providers" bash -c "HOME='$NETCTL_HOME' '$BIN/netctl' --netmaster '$NM' service inspect -t demo websvc | grep -q '\"numProviders\": *2'"
  inspect=$(netctl service inspect -t demo websvc)
  grep -E '"(serviceVip|numProviders)"' <<<"$inspect" | sed 's/^ */  /'
  vip=$(sed -n 's/.*"serviceVip": *"\([0-9.]*\)".*/\1/p' <<<"$inspect" | head -1)
  serve_name qs-w1
  serve_name qs-w3
  wait_for "websvc to answer" ip netns exec qs-w2 nc -w 1 "$vip" 80
  printf '  20 new connections from qs-w2 (db, on qs-h1) to %s:80 answered by:' "$vip"
  for _ in $(seq 1 20); do ip netns exec qs-w2 nc -w 1 "$vip" 80 </dev/null; done | sort | uniq -c | tr '\n' ' '
  echo
  say "DNS: each tenant's names answered on its gateway (TTL 5 s), other names forwarded"
  for name in websvc.demo.contiv web.demo.contiv db; do
    printf '  dig @10.10.0.1 %-20s -> %s\n' "$name" "$(ip netns exec qs-w2 dig +short +time=2 @10.10.0.1 "$name" | sort | tr '\n' ' ')"
  done
  echo
}

scale_out() {
  say "scale out: etcd on $ETCD, the embedded store copied into it (netmaster migrate)"
  start etcd "$QS_DIR/etcd.log" etcd --name qs --data-dir "$QS_DIR/etcd" \
    --listen-client-urls "$ETCD" --advertise-client-urls "$ETCD" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER" \
    --initial-cluster "qs=http://127.0.0.1:$ETCD_PEER"
  wait_for etcd curl -sf "$ETCD/health"
  stop_pid netmaster   # the embedded store is locked by its netmaster; agents keep forwarding meanwhile
  "$BIN/netmaster" migrate --from "$QS_DIR/netmaster" --to "etcd://127.0.0.1:$ETCD_PORT"
  say "two netmasters on etcd ($URL, $URL2) elect a leader; agents get both URLs"
  for n in 1 2; do
    local port=$PORT; [[ $n == 2 ]] && port=$PORT2
    start "netmaster$([[ $n == 2 ]] && echo 2)" "$QS_DIR/netmaster$n-etcd.log" "$BIN/netmaster" \
      --external-address "127.0.0.1:$port" --etcd "$ETCD" --leader-ttl 3 "${NM_TLS[@]}" "${NM_AUTH[@]}"
  done
  wait_for "a leader" any_leads
  for i in 0 1; do
    stop_pid "netplugin-h$((i + 1))"   # a restarted agent changes nothing in the datapath
    start_netplugin "$i" "$URL,$URL2"
  done
  netctl cluster
  echo
  local leader=netmaster other=$URL2
  if leads "$URL2"; then leader=netmaster2; other=$URL; fi
  say "kill -9 of the leader ($leader): the other netmaster takes over within the lease TTL (3 s)"
  stop_pid "$leader" KILL
  NM=$other
  wait_for "the other netmaster to lead" leads "$other"
  netctl cluster
  echo
  say "after the failover: the state is all there, and a new workload is attached through the new leader"
  netctl group ls -t demo
  echo
}

config_up() {
  say "netctl: tenant demo, network app-net 10.10.0.0/24 (vxlan), groups web and db"
  netctl tenant create demo
  netctl network create -t demo -e vxlan -s 10.10.0.0/24 -g 10.10.0.1 app-net
  netctl group create -t demo app-net web
  netctl group create -t demo app-net db
  say "a user scoped to tenant demo (tenant-admin of demo): its netctl lists tenant demo only"
  (umask 077; head -c 18 /dev/urandom | base64 >"$QS_DIR/demo-admin-password")
  netctl user create demo-admin -p "$(cat "$QS_DIR/demo-admin-password")" -r tenant-admin -t demo
  netctl user ls
  HOME=$QS_DIR/demo-home "$BIN/netctl" --netmaster "$NM" login -u demo-admin <"$QS_DIR/demo-admin-password"
  HOME=$QS_DIR/demo-home "$BIN/netctl" --netmaster "$NM" tenant ls
}

workloads_up_one() { # workloads_up_one name host-index group
  local name=$1 host=$2 group=$3 ip
  ip netns add "$name"
  ip -n "$name" link set lo up
  ip=$(cni ADD "$name" "$host" "$group" | sed -n 's/.*"address": *"\([0-9.]*\)\/.*/\1/p' | head -1)
  [[ -n $ip ]] || { echo "CNI ADD of $name failed" >&2; return 1; }
  echo "$ip" >"$QS_DIR/$name.ip"
  printf '  %-6s on %-6s group %-4s ip %s\n' "$name" "${HOSTS[$host]}" "$group" "$ip"
}

workloads_up() {
  say "starting 4 workloads through the CNI plugin (contivk8s)"
  for w in "${WORKLOADS[@]}"; do
    read -r name host group <<<"$w"
    workloads_up_one "$name" "$host" "$group"
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

source_guard() {
  local dst tns spoof=10.10.0.250
  dst=$(cat "$QS_DIR/qs-w3.ip")
  say "source guard: qs-w1 (web) pings qs-w3 (web) from $spoof, an address that is not its own: dropped on its port"
  ip netns exec qs-w1 ip addr add "$spoof/32" dev eth0
  if ip netns exec qs-w1 ping -c 1 -W 2 -I "$spoof" "$dst" >/dev/null 2>&1; then
    ip netns exec qs-w1 ip addr del "$spoof/32" dev eth0
    say "a spoofed source address got through" && exit 1
  fi
  ip netns exec qs-w1 ip addr del "$spoof/32" dev eth0
  echo "  from $spoof: dropped"
  ip netns exec qs-w1 ping -c 1 -W 2 "$dst" >/dev/null && echo "  from its own address: ok"
  tns=$(ip netns list | awk '/^qs1-t-/{print $1; exit}')
  echo "  qs-h1's guard counter: $(ip netns exec "$tns" nft list counter bridge contiv_guard dropped | grep -o 'packets [0-9]*')"
  echo
}

policy_up() {
  say "policy: into group db only web may ping (deny icmp at priority 1, allow icmp from web at 10)"
  netctl policy create -t demo db-in
  netctl policy rule-add -t demo -d in -j deny -l icmp -p 1 db-in 1
  netctl policy rule-add -t demo -d in -j allow -l icmp -g web -p 10 db-in 2
  netctl group create -t demo -p db-in app-net db
  netctl policy rule-ls -t demo db-in
  wait_for "both hosts to enforce the policy (netctl policy status)" policy_current
  echo
}

ovs_flows() { # the end of `--datapath ovs`: what the agent of qs-h1 programmed
  say "the flows of qs-h1 (ovs-ofctl dump-flows $OVS_BR; the tables are in docs/ovs-pipeline.md)"
  ovs_in 0 ovs-ofctl -O OpenFlow13 --no-stats dump-flows "$OVS_BR"
  echo
  say "the ports of qs-h1's bridge: one per workload, one VXLAN port per other host, one per tenant's DNS"
  ovs_in 0 ovs-vsctl list-ports "$OVS_BR"
  echo
  say "the service's select group on qs-h1 (one bucket per provider, DNAT in conntrack)"
  ovs_in 0 ovs-ofctl -O OpenFlow13 dump-groups "$OVS_BR"
  echo
  echo "Try:  ip netns exec qs-h1 env OVS_RUNDIR=$(ovs_dir 0) ovs-ofctl -O OpenFlow13 dump-flows $OVS_BR   (with packet counters)"
}

up() {
  [[ $(id -u) == 0 ]] || { echo "quickstart needs root (network namespaces)" >&2; exit 1; }
  if [[ -d $QS_DIR ]] || ip netns list 2>/dev/null | grep -qE '^qs-'; then
    say "an earlier quickstart is still there: removing it first"
    down
  fi
  bash scripts/install-deps.sh
  if [[ -z ${QS_BIN:-} ]]; then
    say "building (release)"
    cargo build --release --bin netmaster --bin netctl --bin netplugin
    cargo build-contivk8s   # statically linked: see .cargo/config.toml
  fi
  mkdir -p "$QS_DIR"
  hosts_up
  [[ $DATAPATH == ovs ]] && ovs_up
  control_plane_up
  config_up
  workloads_up
  echo
  netctl network ls -t demo
  echo
  netctl group ls -t demo
  echo
  if [[ $DATAPATH == ovs ]]; then
    # Userspace VXLAN drops the first packet to a VTEP whose MAC it has not resolved yet.
    wait_for "OVS to resolve the other host's VTEP" ip netns exec qs-w1 ping -c 1 -W 1 "$(cat "$QS_DIR/qs-w3.ip")"
    wait_for "OVS to resolve the other host's VTEP" ip netns exec qs-w3 ping -c 1 -W 1 "$(cat "$QS_DIR/qs-w1.ip")"
  fi
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
  # The source guard's demo reads the Linux driver's nftables counters; on OVS the guard is the
  # VLAN table's flows (docs/ovs-pipeline.md), shown with the flow dump at the end.
  [[ $DATAPATH == ovs ]] || source_guard
  services_up
  scale_out
  WORKLOADS+=("qs-w5 0 web")
  workloads_up_one qs-w5 0 web
  wait_for "both hosts to enforce the policy (netctl policy status)" policy_current
  if matrix policy; then
    say "after moving to etcd and losing the leader: traffic and policy as before, qs-w5 attached"
  else
    say "the matrix does not follow the policy after the failover (marked !): see $QS_DIR/*.log" && exit 1
  fi
  echo
  if [[ $DATAPATH == ovs ]]; then
    ovs_flows
  fi
  echo "Try:  export CONTIV_CACERT=$PKI/ca.pem                 (netctl trusts the cluster's CA)"
  echo "      $BIN/netctl --netmaster $NM login -u admin <$ADMIN_PW   (a token in ~/.netctl/token)"
  echo "      $BIN/netctl --netmaster $NM endpoint inspect qs-w1"
  echo "      $BIN/netctl --netmaster $NM policy inspect -t demo db-in     (policyViolations: denied packets)"
  echo "      $BIN/netctl --netmaster $NM cluster                          (leader, netmasters, agents, store)"
  echo "      ip netns exec qs-w2 ping $(cat "$QS_DIR/qs-w4.ip")               (denied: db to db)"
  if [[ $DATAPATH == linux ]]; then
    echo "      ip netns exec $(ip netns list | awk '/^qs1-t-/{print $1; exit}') nft list table inet contiv   (the rules on qs-h1)"
  fi
  echo "Stop: bash scripts/quickstart.sh down"
}

usage() { echo "usage: $0 [up|down] [--datapath linux|ovs]" >&2; exit 2; }
CMD=up
while (($#)); do
  case $1 in
    up | down) CMD=$1 ;;
    --datapath) DATAPATH=${2:-}; shift ;;
    --datapath=*) DATAPATH=${1#*=} ;;
    *) usage ;;
  esac
  shift
done
[[ $DATAPATH == linux || $DATAPATH == ovs ]] || usage
case $CMD in
  up) up ;;
  down) down ;;
esac
