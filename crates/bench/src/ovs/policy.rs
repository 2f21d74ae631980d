//! `contiv-bench ovs policy`: one policy change enforced on 10 simulated hosts on the Open
//! vSwitch datapath, with the Linux datapath measured by the same method in the same run as
//! the reference. The method is `contiv-bench policy converge` ([`crate::policy::converge`]):
//! a test bed per datapath (netmaster + an agent per host with its default settings; on OVS
//! each host has its own ovsdb-server + ovs-vswitchd and the agent's pipeline with its policy
//! driver), a deny-all on group `srv`, and rule `srv-in:toggle` (allow tcp 80 from `cli`)
//! created and deleted through netmaster's REST API `--changes` times. Enforcement is seen by
//! real packets: from the REST call's return, a TCP probe per host (from the next host's `cli`
//! workload to this host's `srv` workload) until it shows the new verdict; per change the last
//! host's time. OVS first, then Linux (one 10-host bed at a time on this machine).

use anyhow::Context;
use clap::Parser;

use crate::policy::converge::{self, Dp};
use crate::policy::Row;

#[derive(Debug, Parser)]
pub struct Args {
    /// Directory of netmaster, netplugin and contivk8s (default: next to this binary).
    #[arg(long)]
    pub bin_dir: Option<std::path::PathBuf>,
    /// Skip the Linux reference run.
    #[arg(long)]
    pub no_reference: bool,
    #[command(flatten)]
    pub converge: converge::Args,
}

pub fn run(args: &Args) -> anyhow::Result<(Vec<Row>, Vec<String>)> {
    let bins = crate::cni::binaries_in(args.bin_dir.as_ref())?;
    let (mut rows, mut notes) = (vec![], vec![]);
    let mut dps = vec![Dp::Ovs];
    if !args.no_reference {
        dps.push(Dp::Linux);
    }
    for dp in dps {
        let mut a = args.converge.clone();
        a.datapath = dp;
        converge::run(&a, &bins, &mut rows, &mut notes)
            .with_context(|| format!("converge on {}", dp.name()))?;
    }
    Ok((rows, notes))
}
