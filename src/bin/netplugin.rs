//! Thin binary: parse flags, choose the drivers (the one factory), run the host agent library,
//! map errors to an exit code.

use std::sync::Arc;

use contiv_datapath::{NoPolicy, NoQos, NoServices, PolicyDriver, ServiceDriver};
use contiv_datapath_linux::lb::LinuxServices;
use contiv_datapath_linux::{names, netns, LinuxConfig, LinuxDatapath, LinuxQos, NftPolicy};
use contiv_datapath_ovs::switch::SwitchConfig;
use contiv_datapath_ovs::{DnsNetns, OvsConfig, OvsDatapath};
use contiv_netplugin::config::{DatapathKind, DnsMode, Flags, PolicyKind, ServicesKind};
use contiv_netplugin::dns::NetnsBinder;
use contiv_netplugin::run::{Drivers, RunError};

/// The datapath, policy, QoS, service and DNS drivers the flags ask for.
fn drivers(flags: &Flags) -> Result<Drivers, RunError> {
    // Checked before anything is touched: a driver of the other datapath is refused.
    let (policy, services) = (flags.policy_kind()?, flags.services_kind()?);
    match flags.datapath {
        DatapathKind::Linux => {
            let cfg = LinuxConfig {
                host: flags.host_spec(),
                host_netns: flags.host_netns.clone(),
                netns_dir: flags.netns_dir.clone(),
                ns_prefix: flags.ns_prefix.clone(),
            };
            // `kinds` resolved `auto` and refused the other datapath's drivers.
            let pol: Arc<dyn PolicyDriver> = match policy {
                PolicyKind::Nftables => Arc::new(NftPolicy::new(&cfg)),
                _ => Arc::new(NoPolicy),
            };
            let svc: Arc<dyn ServiceDriver> = match services {
                ServicesKind::Nftables => Arc::new(LinuxServices::new(&cfg)),
                _ => Arc::new(NoServices),
            };
            let (netns_dir, ns_prefix) = (cfg.netns_dir.clone(), cfg.ns_prefix.clone());
            let dp = Arc::new(LinuxDatapath::new(cfg));
            Ok(Drivers {
                name: "linux",
                qos: Arc::new(LinuxQos::new(dp.clone())),
                dp,
                pol,
                svc,
                netns_alive: Arc::new(|p: &std::path::Path| netns::is_netns(p)),
                dns: Some(Arc::new(NetnsBinder {
                    path: Arc::new(move |t: &str| netns_dir.join(names::tenant_ns(&ns_prefix, t))),
                })),
            })
        }
        DatapathKind::Ovs => ovs(flags, policy, services),
    }
}

/// The OVS datapath with its policy and service drivers (flows in the same pipeline) and the
/// tenant DNS namespaces its DNS servers bind in.
fn ovs(flags: &Flags, policy: PolicyKind, services: ServicesKind) -> Result<Drivers, RunError> {
    // Each tenant's DNS server binds in the tenant DNS namespace the driver makes.
    let dns_ns = DnsNetns {
        dir: flags.netns_dir.clone(),
        prefix: flags.ns_prefix.clone(),
    };
    let dp = OvsDatapath::start(OvsConfig {
        switch: SwitchConfig {
            ovsdb: flags.ovsdb.clone(),
            bridge: flags.ovs_bridge.clone(),
            openflow_port: flags.ovs_openflow_port,
            owner: "netplugin".into(),
        },
        host: flags.host_spec(),
        host_netns: flags.host_netns.clone(),
        vlan_uplink: flags.vlan_uplink.clone(),
        // `--dns off`: no namespaces nor ports for a server that does not run.
        dns: (flags.dns == DnsMode::On).then(|| dns_ns.clone()),
    })
    .map_err(|e| RunError::Datapath(e.to_string()))?;
    let pol: Arc<dyn PolicyDriver> = match policy {
        PolicyKind::Openflow => dp.policy_driver(),
        _ => Arc::new(NoPolicy),
    };
    let svc: Arc<dyn ServiceDriver> = match services {
        ServicesKind::Openflow => dp.service_driver(),
        _ => Arc::new(NoServices),
    };
    Ok(Drivers {
        name: "ovs",
        dp: Arc::new(dp),
        pol,
        qos: Arc::new(NoQos),
        svc,
        netns_alive: Arc::new(|p: &std::path::Path| netns::is_netns(p)),
        dns: Some(Arc::new(NetnsBinder {
            path: Arc::new(move |t: &str| dns_ns.path(t)),
        })),
    })
}

fn main() -> std::process::ExitCode {
    contiv_netplugin::cli_main(drivers)
}
