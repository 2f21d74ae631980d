//! `contiv-bench ovs ...`: the Open vSwitch datapath's benchmarks of docs/BENCHMARKS.md ("Open
//! vSwitch datapath"), root only. Each figure is measured against its reference in the same run:
//!
//! - `flows`: N flows through our OpenFlow codec vs `ovs-ofctl add-flows` ([`flows`]);
//! - `iperf`: iperf3 through our pipeline vs a plain OVS NORMAL bridge ([`iperf`]);
//! - `cni`: CNI ADD/DEL p50/p99 on the OVS datapath vs the Linux datapath ([`cni`]);
//! - `policy`: one rule change enforced on 10 hosts, by probes, OVS vs Linux ([`policy`]);
//! - `all`: the four with their defaults, one table.
//!
//! Every simulated host is a namespace `ovb-<pid>-…` with its own ovsdb-server and ovs-vswitchd
//! ([`host::OvsHost`]), stopped by PID and removed when its guard drops, also on error.

mod cni;
mod flows;
pub(crate) mod host;
mod iperf;
mod policy;

use std::path::PathBuf;

use anyhow::bail;
use clap::{Parser, Subcommand};
use contiv_netplugin::testbed::is_root;

use crate::policy::{render, Row};

#[derive(Debug, Parser)]
#[command(
    name = "contiv-bench ovs",
    about = "Open vSwitch datapath benchmarks (root only)"
)]
struct OvsArgs {
    #[command(subcommand)]
    cmd: Cmd,
    /// Write the result table (Markdown) to this file.
    #[arg(long, global = true)]
    markdown: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// N flows through our codec (bundle; flow-mods + barrier) vs ovs-ofctl add-flows.
    Flows(flows::Args),
    /// iperf3 through our pipeline vs a plain OVS NORMAL bridge, same hosts and workloads.
    Iperf(iperf::Args),
    /// CNI ADD/DEL latency on the OVS datapath vs the Linux datapath, same run.
    Cni(cni::Args),
    /// One policy change enforced on 10 hosts (probes), OVS then the Linux datapath.
    Policy(policy::Args),
    /// All four with their defaults, one after the other, one table.
    All,
}

pub fn main(argv: Vec<String>) -> anyhow::Result<()> {
    let args = OvsArgs::parse_from(std::iter::once("contiv-bench ovs".to_string()).chain(argv));
    if !is_root() {
        bail!("contiv-bench ovs needs root (network namespaces, ovs-vswitchd)");
    }
    let (rows, notes): (Vec<Row>, Vec<String>) = match &args.cmd {
        Cmd::Flows(a) => (flows::run(a)?, vec![]),
        Cmd::Iperf(a) => (iperf::run_bench(a)?, vec![]),
        Cmd::Cni(a) => (cni::run(a)?, vec![]),
        Cmd::Policy(a) => policy::run(a)?,
        Cmd::All => {
            let parse = |sub: &str| vec![format!("contiv-bench ovs {sub}")];
            let mut rows = flows::run(&flows::Args::parse_from(parse("flows")))?;
            rows.extend(iperf::run_bench(&iperf::Args::parse_from(parse("iperf")))?);
            rows.extend(cni::run(&cni::Args::parse_from(parse("cni")))?);
            let (more, notes) = policy::run(&policy::Args::parse_from(parse("policy")))?;
            rows.extend(more);
            (rows, notes)
        }
    };
    let table = format!(
        "{}\n{}",
        render(&rows),
        notes.iter().map(|n| format!("- {n}\n")).collect::<String>()
    );
    println!("{table}");
    if let Some(p) = &args.markdown {
        std::fs::write(p, &table)?;
    }
    Ok(())
}
