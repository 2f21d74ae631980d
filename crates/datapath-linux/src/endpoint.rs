//! Local endpoints: a veth pair whose host end lives in the tenant namespace (on the network's
//! bridge, or routed as a /32 with proxy ARP in routing mode) and whose other end becomes the
//! workload's interface with its address, MAC, MTU and default route via the gateway.

use std::fs::File;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;

use contiv_datapath::{DatapathError, EndpointAttachment, FwdMode, LocalEndpoint};
use rtnetlink::packet_route::link::{
    AfSpecInet6, AfSpecUnspec, In6AddrGenMode, InfoData, InfoVeth, LinkAttribute,
};
use rtnetlink::packet_route::neighbour::NeighbourState;
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::{LinkMessageBuilder, LinkUnspec, LinkVeth, RouteMessageBuilder};

use crate::driver::{LinuxDatapath, NetLoc};
use crate::error::{Errors, LinuxError};
use crate::names;
use crate::netns;
use crate::nl::Nl;

/// Plugs `ep` in; rolls back the veth on failure; converges when it already exists.
///
/// A fresh ADD is two namespace visits: the tenant's (pooled thread: create the pair with the
/// workload end made inside the workload namespace, configure the host end) and the workload's
/// (one-off thread: address, link up, default route). Only when the host end already exists is
/// the workload end checked first (retried ADD, restart).
pub(crate) fn add(
    d: &LinuxDatapath,
    loc: &NetLoc,
    ep: &LocalEndpoint,
) -> Result<EndpointAttachment, DatapathError> {
    let host = names::host_veth(&ep.id);
    let attachment = EndpointAttachment {
        host_ifname: host.clone(),
        host_location: loc.ns_name.clone(),
        mac: ep.mac,
        mtu: loc.mtu,
    };
    let res = plug(d, loc, ep).and_then(|fresh| {
        let ws = ep.netns_path.display().to_string();
        d.in_ns(&ep.netns_path, &ws, |nl| async move {
            configure_workload(&nl, ep, loc.mtu, fresh).await
        })
    });
    match res {
        Ok(()) => Ok(attachment),
        Err(e) => {
            let _ = d.in_ns(&loc.ns_path, &loc.ns_name, |nl| async move {
                nl.del_link(&host).await
            });
            Err(e.into())
        }
    }
}

/// Makes the pair exist with its host end configured; true when it was created just now (so
/// the workload end is known to have no address yet).
fn plug(d: &LinuxDatapath, loc: &NetLoc, ep: &LocalEndpoint) -> Result<bool, LinuxError> {
    let ws_file = File::open(&ep.netns_path).map_err(|source| LinuxError::Netns {
        ns: ep.netns_path.display().to_string(),
        op: "open",
        source,
    })?;
    let fd = ws_file.as_raw_fd();
    let host = &names::host_veth(&ep.id);
    let created = d.in_ns(&loc.ns_path, &loc.ns_name, |nl| async move {
        if nl.link(host).await?.is_some() {
            return Ok(false);
        }
        create_veth(&nl, loc, ep, fd).await?;
        configure_host(&nl, loc, ep).await?;
        Ok(true)
    })?;
    if created {
        return Ok(true);
    }
    let ws = ep.netns_path.display().to_string();
    let present = d.in_ns(&ep.netns_path, &ws, |nl| async move {
        Ok(nl
            .link(&ep.ifname)
            .await?
            .is_some_and(|l| l.mac == ep.mac.octets()))
    })?;
    d.in_ns(&loc.ns_path, &loc.ns_name, |nl| async move {
        if !present {
            nl.del_link(host).await?; // half-built by an interrupted call: start over
            create_veth(&nl, loc, ep, fd).await?;
        }
        configure_host(&nl, loc, ep).await
    })?;
    Ok(false)
}

/// Creates the pair in the tenant namespace with the workload end made directly inside the
/// workload's namespace (`VETH_INFO_PEER` carrying `IFLA_NET_NS_FD`), already named, addressed
/// (MAC) and sized (MTU). Creating the peer in its namespace avoids moving a device between
/// namespaces afterwards, which waits for an RCU grace period (`synchronize_net`) and cost
/// ~10-25 ms per ADD on a 2-core VM; it also saves the rename and the MAC/MTU calls.
async fn create_veth(
    nl: &Nl,
    loc: &NetLoc,
    ep: &LocalEndpoint,
    fd: std::os::fd::RawFd,
) -> Result<(), LinuxError> {
    let host = names::host_veth(&ep.id);
    nl.del_link(&names::temp_peer(&ep.id)).await?; // left by an interrupted call of an earlier version
    let workload_end = LinkMessageBuilder::<LinkUnspec>::new()
        .name(ep.ifname.clone())
        .mtu(loc.mtu)
        .address(ep.mac.octets().to_vec())
        .setns_by_fd(fd)
        .build();
    let msg = LinkVeth::new(&host, &ep.ifname)
        .mtu(loc.mtu)
        .set_info_data(InfoData::Veth(InfoVeth::Peer(workload_end)))
        .build();
    nl.add_link(&host, msg).await
}

/// Converges the host end: attached to the bridge (or routed as a /32 with proxy ARP), up.
async fn configure_host(nl: &Nl, loc: &NetLoc, ep: &LocalEndpoint) -> Result<(), LinuxError> {
    let host = names::host_veth(&ep.id);
    let h = nl.need_link(&host).await?;
    let mut b = LinkUnspec::new_with_index(h.index)
        .mtu(loc.mtu)
        .alias(names::ep_alias(&ep.network_id, &ep.id))
        .up();
    if loc.mode == FwdMode::Bridge {
        b = b.controller(nl.need_link(&names::bridge(loc.vni)).await?.index);
    }
    nl.set_link(&host, b.build()).await?;
    if loc.mode == FwdMode::Routing {
        netns::sysctl(&nl.ns, &format!("net.ipv4.conf.{host}.proxy_arp"), "1")?;
        let r = RouteMessageBuilder::<Ipv4Addr>::new()
            .destination_prefix(ep.ip.addr(), 32)
            .output_interface(h.index)
            .scope(rtnetlink::packet_route::route::RouteScope::Link)
            .build();
        nl.replace_route(&format!("{}/32 dev {host}", ep.ip.addr()), r)
            .await?;
    }
    Ok(())
}

/// Converges the workload end: no IPv6 address generation on it, `lo` and it up, its address,
/// the default route.
///
/// The datapath is IPv4 only, so the workload's interface gets `addr_gen_mode` none
/// (`IFLA_INET6_ADDR_GEN_MODE`) before it goes up: otherwise each new interface makes a link-local
/// address, runs DAD, joins its solicited-node group (MLD reports) and sends router solicitations
/// into the tenant's bridge. Done over netlink rather than with the `disable_ipv6` sysctl, whose
/// handler only `rtnl_trylock()`s and restarts the syscall, spinning while concurrent ADDs hold
/// the rtnl lock. Best effort: without IPv6 (module absent, disabled in the namespace) there is
/// nothing to turn off. `fresh`: the pair was created just now, so the interface has no address
/// to diff. `lo` is ifindex 1 in every network namespace.
async fn configure_workload(
    nl: &Nl,
    ep: &LocalEndpoint,
    mtu: u32,
    fresh: bool,
) -> Result<(), LinuxError> {
    let l = nl.need_link(&ep.ifname).await?;
    let no_v6 = LinkUnspec::new_with_index(l.index)
        .append_extra_attribute(LinkAttribute::AfSpecUnspec(vec![AfSpecUnspec::Inet6(vec![
            AfSpecInet6::AddrGenMode(In6AddrGenMode::None),
        ])]))
        .build();
    if let Err(e) = nl.set_link(&ep.ifname, no_v6).await {
        tracing::debug!(ns = %nl.ns, error = %e, "workload interface keeps IPv6 address generation");
    }
    nl.set_link("lo", LinkUnspec::new_with_index(LOOPBACK_IFINDEX).up().build())
        .await?;
    let msg = LinkUnspec::new_with_index(l.index)
        .mtu(mtu)
        .address(ep.mac.octets().to_vec())
        .up()
        .build();
    nl.set_link(&ep.ifname, msg).await?;
    if fresh {
        nl.add_addr(&ep.ifname, l.index, ep.ip.addr(), ep.ip.prefix_len())
            .await?;
    } else {
        nl.converge_addr(&ep.ifname, l.index, ep.ip.addr(), ep.ip.prefix_len())
            .await?;
    }
    let r = RouteMessageBuilder::<Ipv4Addr>::new()
        .gateway(ep.gateway)
        .output_interface(l.index)
        .build();
    nl.replace_route(&format!("default via {}", ep.gateway), r)
        .await
}

/// The loopback device's index, fixed in every network namespace (`LOOPBACK_IFINDEX`).
const LOOPBACK_IFINDEX: u32 = 1;

/// Unplugs `ep` (best effort). `loc` is `None` when its network is already gone.
pub(crate) fn remove(
    d: &LinuxDatapath,
    loc: Option<&NetLoc>,
    ep: &LocalEndpoint,
) -> Result<(), DatapathError> {
    let mut errs = Errors::default();
    let host = names::host_veth(&ep.id);
    let mut peer_gone = false;
    if let Some(loc) = loc {
        let r = d.in_ns(&loc.ns_path, &loc.ns_name, |nl| async move {
            let mut errs = Errors::default();
            let existed = nl.link(&host).await?.is_some();
            let del = nl.del_link(&host).await;
            let gone = existed && del.is_ok();
            errs.absorb(del);
            // Neighbour entries the router learnt for the workload (the link's own went with it).
            let ip = IpAddr::V4(ep.ip.addr());
            for n in nl.neighs(AddressFamily::Inet).await? {
                if n.ip == Some(ip) && n.state() != NeighbourState::Permanent {
                    errs.absorb(nl.del_neigh(&ip.to_string(), &n).await);
                }
            }
            Ok((errs, gone))
        });
        match r {
            Ok((e, gone)) => {
                errs.0.extend(e.0);
                peer_gone = gone;
            }
            Err(e) => errs.push(e.into()),
        }
    }
    // The workload end, should the host end have been lost (e.g. network removed first); a
    // deleted host end took its peer with it.
    if !peer_gone && netns::is_netns(&ep.netns_path) {
        let ws = ep.netns_path.display().to_string();
        errs.absorb(d.in_ns(&ep.netns_path, &ws, |nl| async move {
            match nl.link(&ep.ifname).await? {
                Some(l) if l.mac == ep.mac.octets() => nl.del_link(&ep.ifname).await,
                _ => Ok(()),
            }
        }));
    }
    errs.finish()
}
