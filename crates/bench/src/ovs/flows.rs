//! `contiv-bench ovs flows`: N flows (default 10,000) installed through our OpenFlow codec vs
//! `ovs-ofctl -O OpenFlow13 --bundle add-flows` of the same flows from a file, each on a fresh
//! netdev bridge of a fresh simulated host (its own netns, ovsdb-server and ovs-vswitchd).
//!
//! The flows are the agent's own pipeline: [`render`] for 4 VXLAN networks of one tenant with
//! remote endpoints behind 9 tunnels (ARP reply, MAC delivery and routed delivery per endpoint),
//! cut to exactly N. Both sides get the bridge the agent makes ([`OvsSwitch::start`]: netdev,
//! fail_mode secure, OpenFlow 1.3) and install into an empty table:
//!
//! - **ours, bundle**: [`OvsSwitch::apply`], the agent's path (diff against the empty table,
//!   one ONF bundle, commit reply), against `ovs-ofctl --bundle add-flows`;
//! - **ours, flow-mods + barrier**: the same flow-mods sent on one connection followed by a
//!   barrier ([`contiv_openflow::Switch::send_batch`]), against plain `ovs-ofctl add-flows`
//!   (which also ends with a barrier).
//!
//! ovs-ofctl's time includes starting the process and parsing the file: the same command on an
//! empty file is measured too (its floor). After every install the bridge's `dump-flows` must
//! equal the rendered flows exactly (N lines, the same text), or the run fails.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use clap::Parser;
use contiv_datapath::{Encap, FwdMode, MacAddr, NetworkSpec, RemoteEndpoint};
use contiv_datapath_ovs::switch::{OvsSwitch, SwitchConfig};
use contiv_datapath_ovs::{dump, render, Desired, GroupNumbers, Ports, Rendered};
use contiv_openflow::{ConnOptions, FlowMod, Message};
use contiv_policy::HostPolicy;

use super::host::OvsHost;
use crate::policy::{fmt, pct, Row};

const BRIDGE: &str = "br-bench";
/// The bridge's passive OpenFlow target on the host's loopback (each host has its own netns).
const OF_PORT: u16 = 16653;

#[derive(Debug, Parser)]
pub struct Args {
    /// Flows per install.
    #[arg(long, default_value_t = 10_000)]
    pub flows: usize,
    /// Installs per method (each on a fresh host); medians are reported.
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    OursBundle,
    OfctlBundle,
    OursBatch,
    OfctlPlain,
}

impl Method {
    const ALL: [Method; 4] = [
        Method::OursBundle,
        Method::OfctlBundle,
        Method::OursBatch,
        Method::OfctlPlain,
    ];
    fn label(self) -> &'static str {
        match self {
            Method::OursBundle => "ours: OvsSwitch::apply (one bundle)",
            Method::OfctlBundle => "ovs-ofctl --bundle add-flows",
            Method::OursBatch => "ours: flow-mods + barrier",
            Method::OfctlPlain => "ovs-ofctl add-flows",
        }
    }
}

/// The agent's rendering for enough remote endpoints to make at least `n` flows, cut to `n`.
pub fn flows(n: usize, round: u16) -> anyhow::Result<Vec<FlowMod>> {
    let networks: Vec<NetworkSpec> = (0..4u8)
        .map(|k| NetworkSpec {
            id: format!("bench:n{k}"),
            tenant: "bench".into(),
            vni: 5001 + u32::from(k),
            subnet: format!("10.{}.0.0/16", 100 + k)
                .parse()
                .expect("literal subnet"),
            gateway: Ipv4Addr::new(10, 100 + k, 0, 1),
            fwd_mode: FwdMode::Bridge,
            encap: Encap::Vxlan,
            mtu: 0,
        })
        .collect();
    let vteps: Vec<Ipv4Addr> = (2..11).map(|i| Ipv4Addr::new(192, 0, 2, i)).collect();
    let ports = Ports {
        endpoints: BTreeMap::new(),
        tunnels: vteps.iter().zip(1u32..).map(|(v, p)| (*v, p)).collect(),
        ..Ports::default()
    };
    // Three flows per remote endpoint, plus the pipeline's own.
    let count = n / 3 + 1;
    if count > 4 * 60_000 {
        bail!("--flows {n}: too many for the synthetic endpoints");
    }
    let remotes: Vec<RemoteEndpoint> = (0..count)
        .map(|i| {
            let k = i % 4;
            let j = i / 4 + 2;
            let ip = Ipv4Addr::new(10, 100 + k as u8, (j >> 8) as u8, j as u8);
            RemoteEndpoint {
                id: format!("r{i}"),
                network_id: networks[k].id.clone(),
                ip,
                mac: MacAddr::from_ipv4(ip),
                vtep: vteps[i % vteps.len()],
            }
        })
        .collect();
    let tenants: BTreeMap<String, u16> = [("bench".to_string(), 1)].into_iter().collect();
    let mut r = render(&Desired {
        networks: &networks,
        local_endpoints: &[],
        remote_endpoints: &remotes,
        policy: &HostPolicy::new(),
        ports: &ports,
        tenants: &tenants,
        groups: &GroupNumbers::default(),
        services: &BTreeMap::new(),
        round,
    });
    if !r.pending.is_empty() {
        bail!("rendering left objects out: {:?}", r.pending);
    }
    if r.flows.len() < n {
        bail!("rendered {} flows, fewer than {n}", r.flows.len());
    }
    r.flows.truncate(n);
    Ok(r.flows)
}

fn cfg(host: &OvsHost) -> SwitchConfig {
    SwitchConfig {
        ovsdb: format!("unix:{}", host.sock()),
        bridge: BRIDGE.into(),
        openflow_port: OF_PORT,
        owner: "contiv-bench".into(),
    }
}

/// A fresh host whose bridge the agent's code made (empty flow table). Returns the host and
/// the round the switch picked (1 on a fresh bridge).
fn fresh_host(tag: &str) -> anyhow::Result<OvsHost> {
    let host = OvsHost::start(tag)?;
    let c = cfg(&host);
    let round = super::host::in_ns(&host.netns_path(), || async move {
        OvsSwitch::start(c).await.map(|s| s.round())
    })?
    .context("making the bridge")?;
    if round != 1 {
        bail!("fresh bridge started at round {round}, not 1");
    }
    Ok(host)
}

/// One install on a fresh host; returns its wall time (verified: the bridge then holds exactly
/// `want`).
fn install(
    m: Method,
    tag: &str,
    flows: &[FlowMod],
    file: &std::path::Path,
    want: &[String],
) -> anyhow::Result<Duration> {
    let host = fresh_host(tag)?;
    let took = match m {
        Method::OursBundle => {
            let c = cfg(&host);
            let r = Rendered {
                flows: flows.to_vec(),
                rules: BTreeMap::new(),
                pending: vec![],
                ..Rendered::default()
            };
            super::host::in_ns(&host.netns_path(), || async move {
                let mut sw = OvsSwitch::start(c).await?;
                let t = Instant::now();
                let sent = sw.apply(&r, true).await?;
                let took = t.elapsed();
                anyhow::Ok((sent, took))
            })?
            .map(|(sent, took)| {
                debug_assert_eq!(sent, flows.len());
                took
            })?
        }
        Method::OursBatch => {
            let msgs: Vec<Message> = flows.iter().cloned().map(Message::FlowMod).collect();
            super::host::in_ns(&host.netns_path(), || async move {
                let (sw, _events) =
                    contiv_openflow::connect(&format!("127.0.0.1:{OF_PORT}"), &opts()).await?;
                let t = Instant::now();
                sw.send_batch(&msgs).await?;
                anyhow::Ok(t.elapsed())
            })??
        }
        Method::OfctlBundle | Method::OfctlPlain => {
            let opts: &[&str] = if m == Method::OfctlBundle {
                &["--bundle"]
            } else {
                &[]
            };
            let f = file.display().to_string();
            let t = Instant::now();
            host.ofctl(opts, "add-flows", BRIDGE, &[&f])?;
            t.elapsed()
        }
    };
    let got = host.flow_lines(BRIDGE)?;
    if got != want {
        let missing = want.iter().filter(|l| !got.contains(l)).count();
        bail!(
            "{}: the bridge holds {} flows, {} of the {} rendered missing (first: {:?})",
            m.label(),
            got.len(),
            missing,
            want.len(),
            got.iter().find(|l| !want.contains(l))
        );
    }
    Ok(took)
}

fn opts() -> ConnOptions {
    ConnOptions {
        // 10,000 flows on a loaded machine: give vswitchd time before calling it dead.
        timeout: Duration::from_secs(120),
        ..ConnOptions::default()
    }
}

/// ovs-ofctl's own cost: the same command with an empty file, on a fresh host.
fn ofctl_floor(tag: &str, empty: &std::path::Path, bundle: bool) -> anyhow::Result<Duration> {
    let host = fresh_host(tag)?;
    let opts: &[&str] = if bundle { &["--bundle"] } else { &[] };
    let f = empty.display().to_string();
    let t = Instant::now();
    host.ofctl(opts, "add-flows", BRIDGE, &[&f])?;
    Ok(t.elapsed())
}

pub fn run(args: &Args) -> anyhow::Result<Vec<Row>> {
    if args.flows == 0 || args.runs == 0 {
        bail!("--flows and --runs must be at least 1");
    }
    let flows = flows(args.flows, 1)?;
    let text = dump::dump(&flows);
    let mut want: Vec<String> = text.lines().map(str::to_string).collect();
    want.sort();
    want.dedup();
    if want.len() != flows.len() {
        bail!("the rendering has duplicate flows");
    }
    let dir = tempfile::Builder::new().prefix("ovb-flows").tempdir()?;
    let file: PathBuf = dir.path().join("flows.txt");
    std::fs::write(&file, &text).with_context(|| format!("writing {}", file.display()))?;
    let empty = dir.path().join("empty.txt");
    std::fs::write(&empty, "")?;

    let mut times: BTreeMap<&'static str, Vec<f64>> = BTreeMap::new();
    let mut floors: BTreeMap<bool, Vec<f64>> = BTreeMap::new();
    for run in 0..args.runs {
        // Rotate the order so a busy moment of the machine does not always hit the same method.
        for i in 0..Method::ALL.len() {
            let m = Method::ALL[(i + run) % Method::ALL.len()];
            let took = install(m, &format!("f{run}{i}"), &flows, &file, &want)?;
            eprintln!(
                "[ovs flows] run {run}: {:<38} {:>8.1} ms",
                m.label(),
                took.as_secs_f64() * 1e3
            );
            times.entry(m.label()).or_default().push(took.as_secs_f64());
        }
        for bundle in [true, false] {
            let took = ofctl_floor(&format!("e{run}{}", u8::from(bundle)), &empty, bundle)?;
            floors.entry(bundle).or_default().push(took.as_secs_f64());
        }
    }
    let n = flows.len() as f64;
    let rate = |m: Method| -> anyhow::Result<(f64, Vec<f64>)> {
        let v = times
            .get(m.label())
            .ok_or_else(|| anyhow!("no samples of {}", m.label()))?;
        let rates: Vec<f64> = v.iter().map(|s| n / s).collect();
        Ok((pct(&rates, 50.0), rates))
    };
    let mut rows = vec![];
    for (ours, theirs) in [
        (Method::OursBundle, Method::OfctlBundle),
        (Method::OursBatch, Method::OfctlPlain),
    ] {
        let (o, orates) = rate(ours)?;
        let (t, trates) = rate(theirs)?;
        let spread = |r: &[f64]| format!("{}-{}", fmt(pct(r, 0.0)), fmt(pct(r, 100.0)));
        eprintln!(
            "[ovs flows] {}: median {} flow-mods/s (runs {}); {}: {} (runs {})",
            ours.label(),
            fmt(o),
            spread(&orates),
            theirs.label(),
            fmt(t),
            spread(&trates)
        );
        rows.push(
            Row::new(
                "ovs flows",
                format!(
                    "{} {} flows, median of {}",
                    ours.label(),
                    args.flows,
                    args.runs
                ),
                "flow-mods/s",
                o,
            )
            .vs(theirs.label(), t)
            .target("≥ 1× ovs-ofctl", o >= t),
        );
    }
    for (bundle, v) in &floors {
        let label = if *bundle { "--bundle " } else { "" };
        rows.push(Row::new(
            "ovs flows",
            format!("ovs-ofctl {label}add-flows of an empty file (its floor), median"),
            "ms",
            pct(v, 50.0) * 1e3,
        ));
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The benchmark's flow set is exactly N distinct flows of the agent's rendering, and the
    /// text given to ovs-ofctl has one line per flow.
    #[test]
    fn flows_are_exactly_n_distinct() {
        for n in [1, 100, 10_000] {
            let f = flows(n, 1).unwrap();
            assert_eq!(f.len(), n);
            let text = dump::dump(&f);
            let lines: std::collections::BTreeSet<&str> = text.lines().collect();
            assert_eq!(lines.len(), n, "duplicate flows for n = {n}");
            assert!(
                f.iter().all(|m| m.cookie >> 48 == 1),
                "round 1 in every cookie"
            );
        }
    }
}
