//! Thin binary: parse flags, choose the drivers (the one factory), run the host agent library,
//! map errors to an exit code.

use std::sync::Arc;

use contiv_datapath::{NoPolicy, PolicyDriver};
use contiv_datapath_linux::{netns, LinuxConfig, LinuxDatapath, NftPolicy};
use contiv_netplugin::config::{DatapathKind, Flags, PolicyKind};
use contiv_netplugin::run::Drivers;

/// The datapath and policy drivers the flags ask for.
fn drivers(flags: &Flags) -> Drivers {
    match flags.datapath {
        DatapathKind::Linux => {
            let cfg = LinuxConfig {
                host: flags.host_spec(),
                host_netns: flags.host_netns.clone(),
                netns_dir: flags.netns_dir.clone(),
                ns_prefix: flags.ns_prefix.clone(),
            };
            let pol: Arc<dyn PolicyDriver> = match flags.policy {
                PolicyKind::Nftables => Arc::new(NftPolicy::new(&cfg)),
                PolicyKind::None => Arc::new(NoPolicy),
            };
            Drivers {
                name: "linux",
                dp: Arc::new(LinuxDatapath::new(cfg)),
                pol,
                netns_alive: Arc::new(|p: &std::path::Path| netns::is_netns(p)),
            }
        }
    }
}

fn main() -> std::process::ExitCode {
    contiv_netplugin::cli_main(drivers)
}
