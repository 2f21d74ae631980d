//! Thin binary: parse flags, choose the drivers (the one factory), run the host agent library,
//! map errors to an exit code.

use std::sync::Arc;

use contiv_datapath::{NoPolicy, NoServices, PolicyDriver, ServiceDriver};
use contiv_datapath_linux::lb::LinuxServices;
use contiv_datapath_linux::{names, netns, LinuxConfig, LinuxDatapath, LinuxQos, NftPolicy};
use contiv_netplugin::config::{DatapathKind, Flags, PolicyKind, ServicesKind};
use contiv_netplugin::dns::NetnsBinder;
use contiv_netplugin::run::Drivers;

/// The datapath, policy, QoS, service and DNS drivers the flags ask for.
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
            let svc: Arc<dyn ServiceDriver> = match flags.services {
                ServicesKind::Nftables => Arc::new(LinuxServices::new(&cfg)),
                ServicesKind::None => Arc::new(NoServices),
            };
            let (netns_dir, ns_prefix) = (cfg.netns_dir.clone(), cfg.ns_prefix.clone());
            let dp = Arc::new(LinuxDatapath::new(cfg));
            Drivers {
                name: "linux",
                qos: Arc::new(LinuxQos::new(dp.clone())),
                dp,
                pol,
                svc,
                netns_alive: Arc::new(|p: &std::path::Path| netns::is_netns(p)),
                dns: Some(Arc::new(NetnsBinder {
                    path: Arc::new(move |t: &str| netns_dir.join(names::tenant_ns(&ns_prefix, t))),
                })),
            }
        }
    }
}

fn main() -> std::process::ExitCode {
    contiv_netplugin::cli_main(drivers)
}
