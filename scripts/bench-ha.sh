#!/usr/bin/env bash
# Control plane on etcd, several netmasters (issue 9; docs/BENCHMARKS.md "Control plane on etcd,
# several netmasters"). Builds release, then with contiv-bench (crates/bench):
#
#   1. the control-plane benchmark of scripts/bench.sh with ours on a fresh local 1-member etcd,
#      then on a fresh 3-member etcd (`--etcd-members N`: real etcd processes on free loopback
#      ports, killed afterwards), each with its reference in the same run when given;
#   2. leader failover, 3 etcd members, 3 netmasters, 10 runs, --leader-ttl 10 and 2;
#   3. one change fanned out to 1,000 simulated agents, netmaster on a 1-member etcd and on the
#      embedded store.
#
#   scripts/bench-ha.sh                                     # ours only
#   REFERENCE_URL_1=http://127.0.0.1:29999 REFERENCE_PIDS_1=<netmaster>,<etcd> \
#   REFERENCE_URL_3=http://127.0.0.1:29989 REFERENCE_PIDS_3=<netmaster>,<etcd>,<etcd>,<etcd> \
#   BENCH_MD=/tmp/ha scripts/bench-ha.sh                    # with the original netmaster
#   scripts/bench-ha.sh store|failover|fanout               # one part only
#   ETCD_MEMBERS=1 REFERENCE_URL_1=... scripts/bench-ha.sh store   # the 1-member store run only
#
# REFERENCE_URL_1 / _3: the original Go netmaster, fresh (no networks), on a 1-member / 3-member
# etcd; this script never builds or starts it (see docs/BENCHMARKS.md "The reference").
# (The original netmaster always binds its RPC port 9001, so only one runs at a time: start the
# 1-member one, run with ETCD_MEMBERS=1, stop it, start the 3-member one, run with ETCD_MEMBERS=3.)
# BENCH_MD=PREFIX writes the store tables as PREFIX-etcd1.md and PREFIX-etcd3.md.
set -euo pipefail
cd "$(dirname "$0")/.."

part="${1:-all}"
case "$part" in all|store|failover|fanout) ;; *) echo "usage: $0 [all|store|failover|fanout]" >&2; exit 2 ;; esac
for v in REFERENCE_URL_1 REFERENCE_URL_3; do
  url="${!v:-}"
  case "$url" in
    ""|http://127.0.0.1:*|http://localhost:*) ;;
    *) echo "bench-ha.sh: $v must be http://127.0.0.1:PORT (loopback only)" >&2; exit 2 ;;
  esac
done

cargo build --release -p contiv -p contiv-bench --bin netmaster --bin contiv-bench
# 1,000 watch streams need more than the usual 1,024 descriptors (contiv-bench raises its soft
# limit to the hard one too; the netmaster it spawns inherits it).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

say() { echo "== $* | $(date -u +%Y-%m-%dT%H:%M:%SZ) | nproc $(nproc) | load: $(cut -d' ' -f1-3 /proc/loadavg)"; }

if [[ "$part" == all || "$part" == store ]]; then
  for n in ${ETCD_MEMBERS:-1 3}; do
    case "$n" in 1|3) ;; *) echo "bench-ha.sh: ETCD_MEMBERS: 1 and/or 3" >&2; exit 2 ;; esac
    url_var="REFERENCE_URL_$n"; pids_var="REFERENCE_PIDS_$n"
    args=(--etcd-members "$n")
    [[ -n "${BENCH_MD:-}" ]] && args+=(--markdown "${BENCH_MD}-etcd$n.md")
    if [[ -n "${!url_var:-}" ]]; then
      args+=(--reference-url "${!url_var}")
      [[ -n "${!pids_var:-}" ]] && args+=(--reference-pid "${!pids_var}")
    fi
    say "store benchmark, ours on a $n-member etcd${!url_var:+, reference ${!url_var}}"
    # The single-reference variables of scripts/bench.sh must not leak in.
    env -u REFERENCE_URL -u REFERENCE_PIDS target/release/contiv-bench "${args[@]}"
  done
fi

if [[ "$part" == all || "$part" == failover ]]; then
  for ttl in 10 2; do
    say "leader failover, --leader-ttl $ttl"
    target/release/contiv-bench failover --runs 10 --leader-ttl "$ttl"
  done
fi

if [[ "$part" == all || "$part" == fanout ]]; then
  for members in 1 0; do
    say "fan-out to 1,000 watchers, etcd members: $members (0: embedded store)"
    target/release/contiv-bench fanout --watchers 1000 --changes 20 --etcd-members "$members"
  done
fi
say "done"
