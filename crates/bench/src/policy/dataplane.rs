//! The policy benchmarks that run a real cluster of the test bed (netmaster + agents, CNI through
//! `contivk8s`): CNI ADD latency with rules in the tenant, iperf3 throughput through the rules,
//! and the agent's memory with many rules and endpoints. The CNI and iperf3 machinery is
//! `cni.rs`'s.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::anyhow;
use contiv_netplugin::testbed::{eventually, ping, Binaries, Cluster};
use serde_json::{json, Value};

use super::{fmt, group_names, ms, pct, rss_kb, Api, Row};
use crate::cni::{self, Plugin};

const T: &str = "default";
const NET: &str = "bench";

#[derive(Debug, clap::Parser)]
#[command(name = "contiv-bench policy cni")]
pub struct CniArgs {
    /// Rules of the policy created in the tenant.
    #[arg(long, default_value_t = 1000)]
    pub rules: usize,
    /// Pods per group kind and phase (sequential ADDs, then DELs).
    #[arg(long, default_value_t = 60)]
    pub pods: usize,
    /// Other groups the rules refer to.
    #[arg(long, default_value_t = 50)]
    pub peer_groups: usize,
}

/// Our plugin with `group` in its network config.
fn in_group(c: &Cluster, bins: &Binaries, group: &str) -> Plugin {
    let mut p = cni::ours(c, bins);
    let mut conf: Value = serde_json::from_str(&p.conf).expect("our own conf");
    conf["group"] = json!(group);
    p.conf = conf.to_string();
    p
}

/// Our plugin attaching to network `bench` of `tenant`.
fn in_tenant(c: &Cluster, bins: &Binaries, tenant: &str) -> Plugin {
    let mut p = cni::ours(c, bins);
    let mut conf: Value = serde_json::from_str(&p.conf).expect("our own conf");
    conf["tenant"] = json!(tenant);
    p.conf = conf.to_string();
    p
}

/// The tenant of the paired reference ADDs (no policy).
const REF_T: &str = "benchref";

/// CPU time (user + system) the process has used so far, ms.
fn cpu_ms(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces): state is the 3rd field overall.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let f: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|x| x.parse().ok())
        .collect();
    f.iter().sum::<u64>() as f64 * 10.0 // USER_HZ 100
}

/// Sequential ADDs alternating between `plugins` (pod i with plugin i % len), then the DELs;
/// ADD wall times (ms) per plugin.
fn phase(c: &Cluster, tag: &str, plugins: &[&Plugin], per: usize) -> anyhow::Result<Vec<Vec<f64>>> {
    let pods = cni::pods(c, tag, per * plugins.len())?;
    let mut out = vec![Vec::new(); plugins.len()];
    let result = (|| {
        for (i, (cid, ns)) in pods.iter().enumerate() {
            out[i % plugins.len()].push(ms(plugins[i % plugins.len()].call("ADD", cid, ns)?));
        }
        for (i, (cid, ns)) in pods.iter().enumerate() {
            plugins[i % plugins.len()].call("DEL", cid, ns)?;
        }
        Ok(())
    })();
    cni::drop_pods(&pods);
    result.map(|_| out)
}

/// CNI ADD p50 with a policy of `rules` rules in the tenant, pods in the group the rules apply to
/// and in a group without rules, vs the same ADDs before any policy exists (same cluster).
pub fn cni_add(
    args: &CniArgs,
    bins: &Binaries,
    rows: &mut Vec<Row>,
    notes: &mut Vec<String>,
) -> anyhow::Result<()> {
    let c = cni::cluster(bins, 1)?;
    let api = Api(&c);
    let peers = group_names(args.peer_groups.max(1));
    for g in &peers {
        api.group(T, g, NET, &[])?;
    }
    api.group(T, "ruled", NET, &[])?;
    api.group(T, "free", NET, &[])?;
    let (ruled, free) = (in_group(&c, bins, "ruled"), in_group(&c, bins, "free"));
    // One pod stays attached throughout (the tenant's namespace and network stay), plus warm-up.
    let anchor = cni::pods(&c, "pa", 1)?;
    free.call("ADD", &anchor[0].0, &anchor[0].1)?;
    phase(&c, "pw", &[&ruled, &free], 3)?;

    let load0 = cni::loadavg();
    let agent = c.agent_pid(0).ok_or_else(|| anyhow!("agent not running"))?;
    let per_pod = |cpu0: f64, pods: usize| (cpu_ms(agent) - cpu0) / pods as f64;
    cni::settle();
    let cpu0 = cpu_ms(agent);
    let without = phase(&c, "p0-", &[&ruled, &free], args.pods)?;
    let cpu_without = per_pod(cpu0, 2 * args.pods);
    let t0 = Instant::now();
    api.synthetic_policy(T, "p1k", 0..args.rules, &peers)?;
    let created = t0.elapsed();
    api.group(T, "ruled", NET, &["p1k"])?;
    let enforced = api.wait_enforced(args.rules as u64, Duration::from_secs(60))?;
    cni::settle();
    let cpu0 = cpu_ms(agent);
    let with = phase(&c, "p1-", &[&ruled, &free], args.pods)?;
    let cpu_with = per_pod(cpu0, 2 * args.pods);
    // The same free-group ADDs without ruled ADDs in between (whose policy passes, reports and
    // their `nft` runs trail into the next ADD in the interleaved phase).
    cni::settle();
    let cpu0 = cpu_ms(agent);
    let free_only = phase(&c, "p2-", &[&free], args.pods)?;
    let cpu_free = per_pod(cpu0, args.pods);
    // Paired: the same ADDs alternating with ADDs into a second tenant that has no policy, in
    // one phase, so machine drift between phases cancels (the phases above are minutes apart).
    c.create_tenant(REF_T).map_err(|e| anyhow!(e))?;
    c.create_network(REF_T, NET, "10.46.0.0/16", "10.46.0.1")
        .map_err(|e| anyhow!(e))?;
    let refp = in_tenant(&c, bins, REF_T);
    let ref_anchor = cni::pods(&c, "pra", 1)?;
    refp.call("ADD", &ref_anchor[0].0, &ref_anchor[0].1)?;
    phase(&c, "pwr", &[&refp], 3)?;
    cni::settle();
    let paired = phase(&c, "p3-", &[&ruled, &refp, &free, &refp], args.pods)?;
    let paired_ref: Vec<f64> = [paired[1].clone(), paired[3].clone()].concat();
    let r50 = pct(&paired_ref, 50.0);
    for (label, v) in [
        ("pod in the group the rules apply to", &paired[0]),
        ("pod in a group without rules", &paired[2]),
    ] {
        let p50 = pct(v, 50.0);
        rows.push(
            Row::new(
                "cni",
                format!(
                    "ADD p50, {} rules in the tenant, {label}, paired",
                    args.rules
                ),
                "ms",
                p50,
            )
            .vs(
                "ADDs into a tenant without policy, alternating in the same phase",
                r50,
            )
            .target("≤ 1.2× without", p50 <= 1.2 * r50),
        );
    }
    refp.call("DEL", &ref_anchor[0].0, &ref_anchor[0].1)?;
    cni::drop_pods(&ref_anchor);
    let base: Vec<f64> = without.concat();
    let n = args.rules;
    let b50 = pct(&base, 50.0);
    for (label, v) in [
        (
            "pod in the group the rules apply to (ADD waits for a policy pass)",
            &with[0],
        ),
        ("pod in a group without rules", &with[1]),
        (
            "pod in a group without rules, no ruled ADDs in between",
            &free_only[0],
        ),
    ] {
        let p50 = pct(v, 50.0);
        rows.push(
            Row::new(
                "cni",
                format!("ADD p50, {n} rules in the tenant, {label}"),
                "ms",
                p50,
            )
            .vs("same ADDs before any policy", b50)
            .target("≤ 1.2× without", p50 <= 1.2 * b50),
        );
        rows.push(
            Row::new(
                "cni",
                format!("ADD p99, {n} rules, {label}"),
                "ms",
                pct(v, 99.0),
            )
            .vs("before any policy", pct(&base, 99.0)),
        );
    }
    notes.push(format!(
        "cni: agent CPU per pod (ADD + DEL, /proc/<pid>/stat): before any policy {} ms, with rules interleaved ruled/free {} ms, free group only {} ms; {} pods per group kind and phase, sequential, 1 host; without policy p50 ruled-to-be {} / free {} ms; {n} rules created by REST in {:.2} s, attached and enforced {:.0} ms later; load {load0} -> {}",
        fmt(cpu_without),
        fmt(cpu_with),
        fmt(cpu_free),
        args.pods,
        fmt(pct(&without[0], 50.0)),
        fmt(pct(&without[1], 50.0)),
        created.as_secs_f64(),
        ms(enforced),
        cni::loadavg()
    ));
    free.call("DEL", &anchor[0].0, &anchor[0].1)?;
    cni::drop_pods(&anchor);
    Ok(())
}

#[derive(Debug, clap::Parser)]
#[command(name = "contiv-bench policy iperf")]
pub struct IperfArgs {
    /// Rules on the server workloads' group (the last one allows the client's group).
    #[arg(long, default_value_t = 1000)]
    pub rules: usize,
    /// Seconds per iperf3 run.
    #[arg(long, default_value_t = 3)]
    pub secs: u32,
    /// Runs per path and state (median), alternating without/with policy.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
}

/// iperf3 single stream between the same workloads with the policy attached to the server's
/// group and detached (no policy: no table, bridge netfilter off), same host and across hosts.
pub fn iperf(
    args: &IperfArgs,
    bins: &Binaries,
    rows: &mut Vec<Row>,
    notes: &mut Vec<String>,
) -> anyhow::Result<()> {
    let c = cni::cluster(bins, 2)?;
    let api = Api(&c);
    let peers = group_names(50);
    for g in &peers {
        api.group(T, g, NET, &[])?;
    }
    api.group(T, "cli", NET, &[])?;
    api.group(T, "srv", NET, &[])?;
    let n = args.rules.max(2);
    api.synthetic_policy(T, "pol", 0..n - 1, &peers)?;
    // Priority 5: the first packet of a connection passes every rule of priority 6-100 first.
    api.rule(
        &json!({"tenantName": T, "policyName": "pol", "ruleId": "iperf", "direction": "in",
        "action": "allow", "priority": 5, "fromEndpointGroup": "cli", "protocol": "tcp"}),
    )?;
    let add = |h, name: &str, g| {
        c.add_workload_in_group(h, name, T, NET, Some(g))
            .map_err(|e| anyhow!(e))
    };
    let (a, b, r) = (
        add(0, "ipa", "cli")?,
        add(0, "ipb", "srv")?,
        add(1, "ipr", "srv")?,
    );
    for to in [&b, &r] {
        if !eventually(Duration::from_secs(10), || ping(&a.netns, to.ip, 1)) {
            anyhow::bail!("{} cannot reach {}", a.name, to.ip);
        }
    }
    let (mut same, mut cross) = ([vec![], vec![]], [vec![], vec![]]);
    let load0 = cni::loadavg();
    let mut port = 5201;
    for _ in 0..args.runs.max(1) {
        for (state, policies, rules) in [(0, vec![], 0u64), (1, vec!["pol"], n as u64)] {
            api.group(T, "srv", NET, &policies)?;
            api.wait_enforced(rules, Duration::from_secs(30))?;
            port += 1;
            same[state].push(cni::iperf(
                &b.netns,
                &a.netns,
                &b.ip.to_string(),
                args.secs,
                port,
            )?);
            port += 1;
            cross[state].push(cni::iperf(
                &r.netns,
                &a.netns,
                &r.ip.to_string(),
                args.secs,
                port,
            )?);
        }
    }
    for (label, v) in [("same host", &same), ("across hosts", &cross)] {
        let (off, on) = (cni::median(v[0].clone()), cni::median(v[1].clone()));
        rows.push(
            Row::new(
                "iperf",
                format!("iperf3 1 stream, {label}, {n} rules on the server's group"),
                "Gbit/s",
                on,
            )
            .vs("same path, policy detached", off)
            .target("≥ 0.90×", on >= 0.9 * off),
        );
    }
    notes.push(format!(
        "iperf ({} runs × {} s per path and state, alternating; Gbit/s): same host without {:.2?} with {:.2?}; across hosts without {:.2?} with {:.2?}; load {load0} -> {}",
        args.runs, args.secs, same[0], same[1], cross[0], cross[1], cni::loadavg()
    ));
    Ok(())
}

#[derive(Debug, clap::Parser)]
#[command(name = "contiv-bench policy rss")]
pub struct RssArgs {
    /// Rules, in policies of 100 rules, each attached to its own group.
    #[arg(long, default_value_t = 10_000)]
    pub rules: usize,
    /// Endpoints (pods attached on the host through contivk8s), spread over the groups.
    #[arg(long, default_value_t = 1000)]
    pub endpoints: usize,
    /// Concurrent CNI ADDs while attaching them.
    #[arg(long, default_value_t = 16)]
    pub inflight: usize,
}

/// `n` ADDs, pod i with `plugins[i % len]`, `inflight` at a time.
fn attach_all(
    plugins: &[Plugin],
    pods: &[(String, PathBuf)],
    inflight: usize,
) -> anyhow::Result<()> {
    let next = AtomicUsize::new(0);
    let err: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..inflight.max(1) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some((cid, ns)) = pods.get(i) else { break };
                if let Err(e) = plugins[i % plugins.len()].call("ADD", cid, ns) {
                    err.lock().unwrap().get_or_insert(e);
                    break;
                }
            });
        }
    });
    match err.into_inner().unwrap() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn mib(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

/// The agent's VmRSS idle, with the endpoints, and with the endpoints and the rules.
pub fn rss(
    args: &RssArgs,
    bins: &Binaries,
    rows: &mut Vec<Row>,
    notes: &mut Vec<String>,
) -> anyhow::Result<()> {
    let c = cni::cluster(bins, 1)?;
    let api = Api(&c);
    let pid = c.agent_pid(0).ok_or_else(|| anyhow!("agent not running"))?;
    std::thread::sleep(Duration::from_secs(1));
    let idle = rss_kb(pid)?;
    let policies = args.rules.div_ceil(100).max(1);
    let groups = group_names(policies);
    for g in &groups {
        api.group(T, g, NET, &[])?;
    }
    let plugins: Vec<Plugin> = groups.iter().map(|g| in_group(&c, bins, g)).collect();
    let t0 = Instant::now();
    let pods = cni::pods(&c, "r", args.endpoints)?;
    let made = t0.elapsed();
    let result = (|| {
        let t1 = Instant::now();
        attach_all(&plugins, &pods, args.inflight)?;
        let attached = t1.elapsed();
        cni::settle();
        let eps = rss_kb(pid)?;
        let t2 = Instant::now();
        for k in 0..policies {
            let ids = k * 100..((k + 1) * 100).min(args.rules);
            api.synthetic_policy(T, &format!("p{k}"), ids, &groups)?;
        }
        let created = t2.elapsed();
        let t3 = Instant::now();
        for (k, g) in groups.iter().enumerate() {
            api.group(T, g, NET, &[&format!("p{k}")])?;
        }
        let enforced = api.wait_enforced(args.rules as u64, Duration::from_secs(180))?;
        let attach_time = t3.elapsed();
        cni::settle();
        std::thread::sleep(Duration::from_secs(1));
        let full = rss_kb(pid)?;
        let label = format!("{} rules, {} endpoints", args.rules, args.endpoints);
        rows.push(
            Row::new("rss", format!("agent VmRSS, {label}"), "MiB", mib(full.0)).vs(
                format!("same agent, {} endpoints, no policy", args.endpoints),
                mib(eps.0),
            ),
        );
        rows.push(
            Row::new("rss", format!("agent VmRSS, {label}"), "MiB", mib(full.0))
                .vs("same agent idle: no pods, no policy", mib(idle.0)),
        );
        rows.push(
            Row::new(
                "rss",
                format!("agent VmHWM (peak), {label}"),
                "MiB",
                mib(full.1),
            )
            .vs(
                format!("peak with {} endpoints, no policy", args.endpoints),
                mib(eps.1),
            ),
        );
        let nm = c
            .netmaster_pid()
            .and_then(|p| rss_kb(p).ok())
            .unwrap_or_default();
        notes.push(format!(
            "rss: {} pod namespaces made in {:.1} s, attached ({} in flight) in {:.1} s; {} rules created by REST in {:.1} s; {policies} policies attached to their groups and enforced in {:.1} s (enforced {:.1} s after the last attach call returned); netmaster VmRSS {:.1} MiB",
            args.endpoints,
            made.as_secs_f64(),
            args.inflight,
            attached.as_secs_f64(),
            args.rules,
            created.as_secs_f64(),
            attach_time.as_secs_f64(),
            enforced.as_secs_f64(),
            mib(nm.0)
        ));
        Ok(())
    })();
    cni::drop_pods(&pods);
    result
}
