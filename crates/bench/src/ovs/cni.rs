//! `contiv-bench ovs cni`: CNI ADD (and DEL) latency on the Open vSwitch datapath vs the Linux
//! datapath, in the same run. Two 1-host test beds side by side, the same binaries and settings
//! (netmaster + netplugin with their defaults, plain HTTP, network `default:bench`), differing
//! only in `netplugin --datapath`: `linux` (the tenant's router namespace, bridge, kernel VXLAN)
//! or `ovs` (the host's own ovsdb-server + ovs-vswitchd, the agent's integration bridge). Pods
//! are fresh namespaces; `contivk8s` (the real CNI plugin) is called for each, sequentially,
//! alternating between the two beds pod by pod (the first of each pair swapping), after a
//! warm-up of unmeasured pods on each. Same method as `contiv-bench cni` ("CNI plugin and data
//! plane" in docs/BENCHMARKS.md).

use std::time::Duration;

use anyhow::{anyhow, bail};
use clap::Parser;
use contiv_netplugin::testbed::{
    AgentSettings, Binaries, Cluster, Options, Security, TestDatapath,
};

use crate::cni::{binaries_in, drop_pods, loadavg, ours, pods, Plugin};
use crate::policy::{pct, Row};

#[derive(Debug, Parser)]
pub struct Args {
    /// Directory of netmaster, netplugin and contivk8s (default: next to this binary).
    #[arg(long)]
    pub bin_dir: Option<std::path::PathBuf>,
    /// Pods per datapath in the measured run.
    #[arg(long, default_value_t = 100)]
    pub pods: usize,
    /// Unmeasured pods per datapath first (the first ADD builds the tenant's plumbing).
    #[arg(long, default_value_t = 5)]
    pub warmup: usize,
}

fn bed(bins: &Binaries, datapath: TestDatapath) -> anyhow::Result<Cluster> {
    let opts = Options {
        agents: AgentSettings::Defaults,
        security: Security::Plain,
        ..Options::hosts(1)
    }
    .on(datapath);
    let c = Cluster::start_opts(bins.clone(), &[], opts)
        .map_err(|e| anyhow!("{datapath:?} test bed: {e}"))?;
    c.create_network("default", "bench", "10.46.0.0/16", "10.46.0.1")
        .map_err(|e| anyhow!(e))?;
    Ok(c)
}

fn ms(v: &[Duration]) -> Vec<f64> {
    v.iter().map(|d| d.as_secs_f64() * 1e3).collect()
}

pub fn run(args: &Args) -> anyhow::Result<Vec<Row>> {
    if args.pods == 0 {
        bail!("--pods must be at least 1");
    }
    let bins = binaries_in(args.bin_dir.as_ref())?;
    let beds = [
        bed(&bins, TestDatapath::Linux)?,
        bed(&bins, TestDatapath::Ovs)?,
    ];
    let plugins: Vec<Plugin> = beds.iter().map(|c| ours(c, &bins)).collect();

    let warm: Vec<_> = beds
        .iter()
        .map(|c| pods(c, "warm", args.warmup))
        .collect::<anyhow::Result<_>>()?;
    for (k, p) in plugins.iter().enumerate() {
        for (cid, ns) in &warm[k] {
            p.call("ADD", cid, ns)?;
        }
        for (cid, ns) in &warm[k] {
            p.call("DEL", cid, ns)?;
        }
        drop_pods(&warm[k]);
    }

    let n = args.pods;
    let measured: Vec<_> = beds
        .iter()
        .map(|c| pods(c, "m", n))
        .collect::<anyhow::Result<_>>()?;
    let mut add: [Vec<Duration>; 2] = [vec![], vec![]];
    let mut del: [Vec<Duration>; 2] = [vec![], vec![]];
    let load0 = loadavg();
    for (cmd, out) in [("ADD", &mut add), ("DEL", &mut del)] {
        for (i, pair) in measured[0].iter().zip(&measured[1]).enumerate() {
            let pods = [pair.0, pair.1];
            let order = if i % 2 == 0 { [0, 1] } else { [1, 0] };
            for k in order {
                let (cid, ns) = pods[k];
                out[k].push(plugins[k].call(cmd, cid, ns)?);
            }
        }
    }
    for m in &measured {
        drop_pods(m);
    }
    eprintln!(
        "[ovs cni] {n} pods per datapath, sequential, alternating: load {load0} -> {}",
        loadavg()
    );
    let mut rows = vec![];
    for (what, v) in [("ADD", &add), ("DEL", &del)] {
        let (linux, ovs) = (ms(&v[0]), ms(&v[1]));
        for p in [50.0, 99.0] {
            rows.push(
                Row::new(
                    "ovs cni",
                    format!("CNI {what} p{p} on OVS, {n} pods sequential"),
                    "ms",
                    pct(&ovs, p),
                )
                .vs("the Linux datapath", pct(&linux, p)),
            );
        }
    }
    Ok(rows)
}
