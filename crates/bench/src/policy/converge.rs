//! `contiv-bench policy converge`: from the return of the REST call that changes one rule to the
//! moment every host enforces it, measured with real packets.
//!
//! A cluster of `--hosts` simulated hosts (netmaster + one agent per host, agents with their
//! default settings); network `default:net`; group `srv` with policy `srv-in` (deny all in,
//! priority 1) and group `cli` without rules; on every host one `srv` and one `cli` workload.
//! Host i's probe goes from the `cli` workload of host i+1 to the `srv` workload of host i: a
//! TCP connect to port 80 (a fresh source port each time), so host i's agent is the one that
//! must enforce (in-rules are checked where the destination lives). The change toggles rule
//! `srv-in:toggle` (allow in from `cli`, tcp 80, priority 10): created (expect allow), deleted
//! (expect deny), `--changes` times.
//!
//! Per change and host, the time from the API's return to the start of the first probe showing
//! the new verdict (that probe's SYN met the new ruleset); per change the max over hosts. The
//! probe threads enter their namespaces before the call and start probing when it returns. A
//! denied probe costs `--probe-timeout` (resolution for deny → allow); an allowed one is a
//! loopback-fast handshake followed by a 1 ms pause (resolution for allow → deny); a deny is
//! only counted when the next probe is denied too (a slow handshake is not taken for a deny).

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use contiv_netplugin::probe::{probe, Probe, Responder};
use contiv_netplugin::testbed::{
    eventually, AgentSettings, Binaries, Cluster, Options, Security, TestDatapath,
};
use serde_json::json;

use super::{fmt, ms, pct, Api, Row};

#[derive(Debug, Clone, clap::Parser)]
#[command(name = "contiv-bench policy converge")]
pub struct Args {
    /// The agents' datapath: `linux` (nftables policy) or `ovs` (the OpenFlow pipeline's policy;
    /// an ovsdb-server + ovs-vswitchd per host).
    #[arg(long, value_enum, default_value = "linux")]
    pub(crate) datapath: Dp,
    /// Simulated hosts.
    #[arg(long, default_value_t = 10)]
    hosts: usize,
    /// Rule changes (alternately create and delete).
    #[arg(long, default_value_t = 100)]
    changes: usize,
    /// How long a probe waits for the handshake, ms (a denied probe costs this).
    #[arg(long, default_value_t = 20)]
    probe_timeout: u64,
    /// Pause between changes, ms.
    #[arg(long, default_value_t = 100)]
    pause: u64,
    /// Attach the deny-all to `srv` before the workloads exist (checks that the first ADDs of
    /// a tenant on each host get the policy installed); by default it is attached after them.
    #[arg(long)]
    attach_first: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Dp {
    Linux,
    Ovs,
}

impl Dp {
    fn testbed(self) -> TestDatapath {
        match self {
            Dp::Linux => TestDatapath::Linux,
            Dp::Ovs => TestDatapath::Ovs,
        }
    }
    pub(crate) fn name(self) -> &'static str {
        match self {
            Dp::Linux => "linux",
            Dp::Ovs => "ovs",
        }
    }
}

const T: &str = "default";

fn toggle_rule() -> serde_json::Value {
    json!({"tenantName": T, "policyName": "srv-in", "ruleId": "toggle", "direction": "in",
        "action": "allow", "priority": 10, "fromEndpointGroup": "cli", "protocol": "tcp", "port": 80})
}

/// Connect to `dst` from the calling thread's namespace: true when the handshake completes.
fn connects(dst: SocketAddr, timeout: Duration) -> bool {
    TcpStream::connect_timeout(&dst, timeout).is_ok()
}

/// Enters the network namespace `ns` for the rest of this thread's life.
fn enter(ns: &Path) -> anyhow::Result<()> {
    let f = std::fs::File::open(ns)?;
    // SAFETY: setns(2) on an open namespace fd; affects only the calling thread.
    if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        bail!(
            "setns {}: {}",
            ns.display(),
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}

/// Probes from the calling thread until `want` shows (deny confirmed by a second probe);
/// returns the start of the first probe showing it, relative to `t0`, and the probe count.
fn until(
    dst: SocketAddr,
    want: bool,
    t0: Instant,
    timeout: Duration,
    limit: Duration,
) -> Option<(Duration, u32)> {
    let mut n = 0;
    while t0.elapsed() < limit {
        let start = t0.elapsed();
        let ok = connects(dst, timeout);
        n += 1;
        if ok == want && (want || !connects(dst, timeout)) {
            return Some((start, n));
        }
        if ok {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    None
}

pub fn run(
    args: &Args,
    bins: &Binaries,
    rows: &mut Vec<Row>,
    notes: &mut Vec<String>,
) -> anyhow::Result<()> {
    let h = args.hosts.max(2);
    let t_start = Instant::now();
    // Plain HTTP as in the earlier runs of docs/BENCHMARKS.md; `contiv-bench auth` measures
    // what TLS and tokens cost.
    let opts = Options {
        agents: AgentSettings::Defaults,
        security: Security::Plain,
        ..Options::hosts(h)
    }
    .on(args.datapath.testbed());
    let c = Cluster::start_opts(bins.clone(), &[], opts).map_err(|e| anyhow!("cluster: {e}"))?;
    let api = Api(&c);
    c.create_network(T, "net", "10.60.0.0/16", "10.60.0.1")
        .map_err(|e| anyhow!(e))?;
    api.policy(T, "srv-in")?;
    api.rule(
        &json!({"tenantName": T, "policyName": "srv-in", "ruleId": "deny-all",
        "direction": "in", "action": "deny", "priority": 1}),
    )?;
    // Attached once the workloads exist unless --attach-first (before 25cf65e, a pass that ran
    // before a host's tenant namespace existed installed nothing and never retried).
    let first: &[&str] = if args.attach_first { &["srv-in"] } else { &[] };
    api.group(T, "srv", "net", first)?;
    api.group(T, "cli", "net", &[])?;
    let (mut srv, mut cli, mut responders) = (vec![], vec![], vec![]);
    for i in 0..h {
        let s = c
            .add_workload_in_group(i, &format!("cv-s{i}"), T, "net", Some("srv"))
            .map_err(|e| anyhow!(e))?;
        responders.push(Responder::start(&s.netns).map_err(|e| anyhow!(e))?);
        srv.push(s);
        cli.push(
            c.add_workload_in_group(i, &format!("cv-c{i}"), T, "net", Some("cli"))
                .map_err(|e| anyhow!(e))?,
        );
    }
    api.group(T, "srv", "net", &["srv-in"])?;
    // Host i: cli of host i+1 → srv of host i, tcp 80.
    let pairs: Vec<(PathBuf, Ipv4Addr)> = (0..h)
        .map(|i| (cli[(i + 1) % h].netns.clone(), srv[i].ip))
        .collect();
    let timeout = Duration::from_millis(args.probe_timeout);
    let all_are = |want: bool| {
        pairs
            .iter()
            .all(|(ns, ip)| probe(ns, *ip, Probe::Tcp(80), Duration::from_millis(300)) == want)
    };
    if !eventually(Duration::from_secs(20), || all_are(false)) {
        let got: Vec<bool> = pairs
            .iter()
            .map(|(ns, ip)| probe(ns, *ip, Probe::Tcp(80), Duration::from_millis(300)))
            .collect();
        let status = c.get_json("/api/v1/policyStatus/").unwrap_or_default();
        for i in 0..h {
            let ns = c.tenant_ns(i, T);
            let name = ns
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .to_string();
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("ip netns exec {name} nft list tables; ip netns exec {name} sysctl net.bridge.bridge-nf-call-iptables"))
                .output()?;
            eprintln!("host {i}: {}", String::from_utf8_lossy(&out.stdout));
        }
        bail!("the deny-all is not in force on every host (allowed: {got:?}; {status})");
    }
    let dp = args.datapath.name();
    notes.push(format!(
        "converge ({dp}): {h} hosts, {} workloads, set up in {:.1} s",
        2 * h,
        t_start.elapsed().as_secs_f64()
    ));
    let limit = Duration::from_secs(5);
    let (mut per_change, mut api_ms, mut failures) = (vec![], vec![], 0usize);
    let (mut allow_ms, mut deny_ms, mut all_hosts) = (vec![], vec![], vec![]);
    let mut probes_total = 0u32;
    for k in 0..args.changes {
        let want = k % 2 == 0;
        let barrier = Barrier::new(h + 1);
        let t0: Mutex<Option<Instant>> = Mutex::new(None);
        let results: Vec<Option<(Duration, u32)>> = std::thread::scope(|s| {
            let handles: Vec<_> = pairs
                .iter()
                .map(|(ns, ip)| {
                    let (barrier, t0) = (&barrier, &t0);
                    s.spawn(move || {
                        let entered = enter(ns);
                        barrier.wait();
                        entered.ok()?;
                        let t0 = (*t0.lock().unwrap())?;
                        until(SocketAddr::from((*ip, 80)), want, t0, timeout, limit)
                    })
                })
                .collect();
            let call = Instant::now();
            let r = if want {
                api.rule(&toggle_rule())
            } else {
                api.delete("/api/v1/rules/default:srv-in:toggle/")
            };
            let now = Instant::now();
            *t0.lock().unwrap() = r.is_ok().then_some(now);
            api_ms.push(ms(now - call));
            barrier.wait();
            handles
                .into_iter()
                .map(|h| h.join().ok().flatten())
                .collect()
        });
        let got: Vec<f64> = results.iter().flatten().map(|(d, _)| ms(*d)).collect();
        probes_total += results.iter().flatten().map(|(_, n)| n).sum::<u32>();
        if got.len() < h {
            failures += 1;
            per_change.push(ms(limit));
        } else {
            let worst = got.iter().cloned().fold(0.0, f64::max);
            per_change.push(worst);
            if want {
                allow_ms.push(worst);
            } else {
                deny_ms.push(worst);
            }
        }
        all_hosts.extend(got);
        std::thread::sleep(Duration::from_millis(args.pause));
    }
    let n = args.changes;
    let p99 = pct(&per_change, 99.0);
    rows.push(
        Row::new(
            "converge",
            format!("rule change → enforced on all {h} hosts ({dp}), p99 of per-change max ({n} changes)"),
            "ms",
            p99,
        )
        .vs("Cilium docs: < 600 ms per endpoint (cited)", 600.0)
        .target("≤ 100 ms", p99 <= 100.0 && failures == 0),
    );
    rows.push(
        Row::new(
            "converge",
            format!("same ({dp}), p50"),
            "ms",
            pct(&per_change, 50.0),
        )
        .vs("OVN-Kubernetes: 3.3 s p50 (cited)", 3300.0),
    );
    rows.push(Row::new(
        "converge",
        format!("same ({dp}), max"),
        "ms",
        pct(&per_change, 100.0),
    ));
    rows.push(Row::new(
        "converge",
        format!("single host (all hosts × changes) ({dp}), p50"),
        "ms",
        pct(&all_hosts, 50.0),
    ));
    rows.push(Row::new(
        "converge",
        format!("REST call (rule create/delete) ({dp}) p50"),
        "ms",
        pct(&api_ms, 50.0),
    ));
    notes.push(format!(
        "converge ({dp}): per-change max p50/p99 deny→allow (rule created) {} / {} ms, allow→deny (rule deleted) {} / {} ms; {failures} change(s) not converged within {limit:?}; {probes_total} probes; probe resolution: deny→allow ≤ {} ms (a denied connect waits that long), allow→deny ~1-2 ms; REST call p99 {} ms",
        fmt(pct(&allow_ms, 50.0)),
        fmt(pct(&allow_ms, 99.0)),
        fmt(pct(&deny_ms, 50.0)),
        fmt(pct(&deny_ms, 99.0)),
        args.probe_timeout,
        fmt(pct(&api_ms, 99.0)),
    ));
    drop(responders);
    Ok(())
}
