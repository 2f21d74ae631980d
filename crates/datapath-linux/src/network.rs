//! Networks: the tenant router namespace, the per-network bridge (bridge mode) and the VXLAN
//! device. The VXLAN device is created in the host namespace (its UDP socket stays bound there,
//! on the underlay) and then moved into the tenant namespace.

use std::fs::File;
use std::os::fd::AsRawFd;

use contiv_datapath::{DatapathError, FwdMode, NetworkSpec};
use rtnetlink::packet_route::link::{InfoBridge, InfoBridgePort, InfoKind};
use rtnetlink::{LinkBridge, LinkBridgePort, LinkUnspec, LinkVxlan};

use crate::driver::{LinuxDatapath, NetLoc};
use crate::error::{Errors, LinuxError};
use crate::guard;
use crate::names;
use crate::netns;
use crate::nl::Nl;

/// Creates or converges `net`; returns where it lives.
pub(crate) fn ensure(d: &LinuxDatapath, net: &NetworkSpec) -> Result<NetLoc, LinuxError> {
    let ns_name = names::tenant_ns(&d.cfg.ns_prefix, &net.tenant);
    let fresh = !netns::is_netns(&d.cfg.netns_dir.join(&ns_name));
    let ns_path = netns::create_named(&d.cfg.netns_dir, &ns_name)?;
    let vx = names::vxlan(net.vni);
    let (vni, vtep) = (net.vni, d.vtep());
    let vx_ok = d.in_ns(&ns_path, &ns_name, |nl| async move {
        prepare_tenant(&nl, fresh).await?;
        match nl.link(&vx).await? {
            Some(l) if l.vni() == Some(vni) && l.vxlan_local() == Some(vtep) => Ok(true),
            Some(_) => nl.del_link(&vx).await.map(|_| false),
            None => Ok(false),
        }
    })?;
    // The source guard of workload ports, before any port of this network can exist.
    guard::install(&ns_path)?;
    if !vx_ok {
        create_vxlan(d, net, &ns_path)?;
    }
    let mtu = d.workload_mtu(net);
    d.in_ns(&ns_path, &ns_name, |nl| async move {
        drop_other_vni(&nl, net).await?;
        match net.fwd_mode {
            FwdMode::Bridge => converge_bridge_mode(&nl, net, mtu).await,
            FwdMode::Routing => converge_routing_mode(&nl, net, mtu, vtep).await,
        }
    })?;
    let (id, vni, mode) = (net.id.clone(), net.vni, net.fwd_mode);
    Ok(NetLoc {
        id,
        ns_name,
        ns_path,
        vni,
        mode,
        mtu,
    })
}

/// Loopback up and IPv4 forwarding on: the namespace is the tenant's router.
///
/// IPv6 off in the namespace (`all` and `default`, so every host veth, bridge and VXLAN device
/// made here is born without it): the tenant router is IPv4 only, and an IPv6-enabled host
/// veth sends DAD, router solicitations and MLD reports when it comes up, which the bridge
/// floods to every other port (O(pods) per ADD on a busy host).
///
/// Bridged traffic does not go through the IP netfilter hooks (`bridge-nf-call-iptables`,
/// `-ip6tables`, `-arptables` = 0, when `br_netfilter` is loaded; the kernel's per-namespace
/// default is 1): the hooks cost every bridged frame a conntrack lookup (measured: a few % of
/// cross-host iperf3 throughput). The policy driver turns `bridge-nf-call-iptables` back on
/// while the tenant has policy (its `inet` table must see bridged IPv4), so after the namespace
/// was created (`fresh`) that one is the policy driver's and is left alone here: a later
/// `ensure_network` must never switch enforcement off.
async fn prepare_tenant(nl: &Nl, fresh: bool) -> Result<(), LinuxError> {
    let lo = nl.need_link("lo").await?;
    nl.set_link("lo", LinkUnspec::new_with_index(lo.index).up().build())
        .await?;
    netns::sysctl(&nl.ns, "net.ipv4.ip_forward", "1")?;
    for key in [
        "net.ipv6.conf.default.disable_ipv6",
        "net.ipv6.conf.all.disable_ipv6",
    ] {
        if std::path::Path::new(&format!("/proc/sys/{}", key.replace('.', "/"))).exists() {
            netns::sysctl(&nl.ns, key, "1")?;
        }
    }
    let owned: &[&str] = if fresh {
        &["iptables", "ip6tables", "arptables"]
    } else {
        &["ip6tables", "arptables"]
    };
    for key in owned {
        let key = format!("net.bridge.bridge-nf-call-{key}");
        if std::path::Path::new(&format!("/proc/sys/{}", key.replace('.', "/"))).exists() {
            netns::sysctl(&nl.ns, &key, "0")?;
        }
    }
    Ok(())
}

/// Creates the VXLAN device in the host namespace (`local <vtep> dev <underlay> nolearning`)
/// and moves it into the tenant namespace; deletes it again if the move fails.
fn create_vxlan(
    d: &LinuxDatapath,
    net: &NetworkSpec,
    tenant: &std::path::Path,
) -> Result<(), LinuxError> {
    let tenant_fd = File::open(tenant).map_err(|source| LinuxError::Netns {
        ns: tenant.display().to_string(),
        op: "open",
        source,
    })?;
    let fd = tenant_fd.as_raw_fd();
    let vx = names::vxlan(net.vni);
    let host = &d.cfg.host;
    d.in_ns(d.host_ns(), "host", |nl| async move {
        nl.del_link(&vx).await?; // leftover of an interrupted earlier attempt
        let ul = nl.need_link(&host.underlay_ifname).await?;
        let msg = LinkVxlan::new(&vx, net.vni)
            .dev(ul.index)
            .local(host.vtep_ip)
            .port(names::VXLAN_PORT)
            .learning(false)
            .build();
        nl.add_link(&vx, msg).await?;
        let l = nl.need_link(&vx).await?;
        if let Err(e) = nl.move_to_ns(&vx, l.index, fd).await {
            let _ = nl.del_link(&vx).await;
            return Err(e);
        }
        Ok(())
    })
}

/// Removes devices of this network id left under another VNI (the network was re-created).
async fn drop_other_vni(nl: &Nl, net: &NetworkSpec) -> Result<(), LinuxError> {
    for l in nl.links().await? {
        let Some((_, id)) = l.alias.as_deref().and_then(names::parse_net_alias) else {
            continue;
        };
        if id == net.id && l.vni().is_some_and(|v| v != net.vni) {
            nl.del_link(&l.name).await?;
            nl.del_link(&names::bridge(l.vni().unwrap_or_default()))
                .await?;
        }
    }
    Ok(())
}

async fn converge_bridge_mode(nl: &Nl, net: &NetworkSpec, mtu: u32) -> Result<(), LinuxError> {
    let br = names::bridge(net.vni);
    if nl.link(&br).await?.is_none() {
        // No multicast snooping: multicast is flooded within the network, like broadcast (what
        // Contiv's OVS pipeline did too). Snooping would cost a per-port timer and query work
        // for every new workload port, and buys nothing here: the workloads' interfaces have
        // no IPv6 address generation (no MLD reports or DAD probes), and the VXLAN port floods
        // to the known remote VTEPs only.
        let msg = LinkBridge::new(&br)
            .append_info_data(InfoBridge::MulticastSnooping(false))
            .build();
        nl.add_link(&br, msg).await?;
    }
    let b = nl.need_link(&br).await?;
    let msg = LinkUnspec::new_with_index(b.index)
        .mtu(mtu)
        .address(names::GATEWAY_MAC.octets().to_vec())
        .up()
        .build();
    nl.set_link(&br, msg).await?;
    nl.converge_addr(&br, b.index, net.gateway, net.subnet.prefix_len())
        .await?;
    let vx = names::vxlan(net.vni);
    let v = nl.need_link(&vx).await?;
    let msg = LinkUnspec::new_with_index(v.index)
        .controller(b.index)
        .mtu(mtu)
        .alias(names::net_alias(FwdMode::Bridge, &net.id))
        .up()
        .build();
    nl.set_link(&vx, msg).await?;
    // Static FDB only (no learning) and ARP answered by the bridge from static neighbours.
    let port = LinkBridgePort::new(v.index)
        .learning(false)
        .append_info_data(InfoBridgePort::NeighSupress(true))
        .build();
    nl.set_port(&vx, port).await
}

async fn converge_routing_mode(
    nl: &Nl,
    net: &NetworkSpec,
    mtu: u32,
    vtep: std::net::Ipv4Addr,
) -> Result<(), LinuxError> {
    nl.del_link(&names::bridge(net.vni)).await?; // was bridge mode before
    let vx = names::vxlan(net.vni);
    let v = nl.need_link(&vx).await?;
    let msg = LinkUnspec::new_with_index(v.index)
        .mtu(mtu)
        .address(names::vtep_mac(vtep).octets().to_vec())
        .alias(names::net_alias(FwdMode::Routing, &net.id))
        .up()
        .build();
    nl.set_link(&vx, msg).await?;
    // The gateway is a local /32 of the tenant router: answers the workloads' ARP for it.
    nl.converge_addr(&vx, v.index, net.gateway, 32).await
}

/// Removes every trace of network `id` (best effort); the tenant namespace goes with its last
/// network.
pub(crate) fn remove(d: &LinuxDatapath, id: &str) -> Result<(), DatapathError> {
    let mut errs = Errors::default();
    let locs = d.scan()?;
    let mine: Vec<&NetLoc> = locs.iter().filter(|l| l.id == id).collect();
    for loc in &mine {
        let r = d.in_ns(&loc.ns_path, &loc.ns_name, |nl| async move {
            teardown(&nl, loc).await
        });
        match r {
            Ok(inner) => errs.0.extend(inner.0),
            Err(e) => errs.push(e.into()),
        }
        let vx = names::vxlan(loc.vni);
        errs.absorb(d.in_ns(
            d.host_ns(),
            "host",
            |nl| async move { nl.del_link(&vx).await },
        ));
        let others = locs.iter().any(|l| l.ns_name == loc.ns_name && l.id != id);
        if !others {
            errs.absorb(d.delete_tenant_ns(&loc.ns_path));
        }
    }
    errs.finish()
}

/// Deletes the network's endpoints' host veths, its VXLAN device and bridge in one tenant
/// namespace (routes, neighbours and FDB entries on them go with the devices).
async fn teardown(nl: &Nl, loc: &NetLoc) -> Result<Errors, LinuxError> {
    let mut errs = Errors::default();
    for l in nl.links().await? {
        let ours = l.kind == Some(InfoKind::Veth)
            && l.alias
                .as_deref()
                .and_then(names::parse_ep_alias)
                .is_some_and(|(n, _)| n == loc.id);
        if ours {
            errs.absorb(nl.del_link(&l.name).await);
        }
    }
    errs.absorb(nl.del_link(&names::vxlan(loc.vni)).await);
    errs.absorb(nl.del_link(&names::bridge(loc.vni)).await);
    Ok(errs)
}
