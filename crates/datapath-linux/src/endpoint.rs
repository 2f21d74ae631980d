//! Local endpoints: a veth pair whose host end lives in the tenant namespace (on the network's
//! bridge, or routed as a /32 with proxy ARP in routing mode) and whose other end becomes the
//! workload's interface with its address, MAC, MTU and default route via the gateway; or, for a
//! handed-over endpoint (Docker CNM), stays in the agent's namespace with its MAC and MTU only,
//! for the runtime to move and configure ([`Plumbing::HandedOver`]). The port is under the
//! source guard (`crate::guard`) before it comes up and until it is gone.

use std::fs::File;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsRawFd, RawFd};

use contiv_datapath::{DatapathError, EndpointAttachment, FwdMode, LocalEndpoint, Plumbing};
use rtnetlink::packet_route::link::{
    AfSpecInet6, AfSpecUnspec, In6AddrGenMode, InfoData, InfoVeth, LinkAttribute,
};
use rtnetlink::packet_route::neighbour::NeighbourState;
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::{LinkBridgePort, LinkMessageBuilder, LinkUnspec, LinkVeth, RouteMessageBuilder};

use crate::driver::{LinuxDatapath, NetLoc};
use crate::error::{Errors, LinuxError};
use crate::guard;
use crate::names;
use crate::netns;
use crate::nl::Nl;

/// Plugs `ep` in; rolls back the veth on failure; converges when it already exists.
///
/// One job on a kept thread of the tenant namespace, holding a netlink handle there and one in
/// the workload's namespace (no thread per workload). A fresh ADD is seven netlink requests,
/// five of them under the kernel's rtnl lock (which concurrent ADDs contend for): create the
/// pair (workload end made inside the workload namespace, host end already on the bridge), then
/// in the workload: link up with IPv6 address generation off, the address, the default route;
/// last the host end's alias and link up. Only when the host end already exists (retried ADD,
/// restart) is the workload end checked and the host end converged.
///
/// Two kernel waits are avoided on purpose, both RCU grace periods taken under the rtnl lock
/// (every other ADD waits behind them, and the CPUs idle): a veth made without explicit queue
/// counts gets one queue per CPU and is then cut down to one real queue, which synchronizes RCU;
/// and a link that is up when its carrier-off event is processed is deactivated, which
/// synchronizes RCU too. So both ends are made with one queue each, and the host end comes up
/// last, when its peer is already up (carrier on at once).
///
/// Before any of it, the port's source-guard element goes in (one netlink batch; a release of
/// the same port still queued by an earlier DEL is taken back first): the host end never carries
/// a frame from the workload that the guard does not judge by this endpoint's MAC and address. A
/// failed ADD queues the element's release after removing the veth.
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
    let ws = ep.netns_path.display().to_string();
    let ws_file = File::open(&ep.netns_path).map_err(|source| LinuxError::Netns {
        ns: ws.clone(),
        op: "open",
        source,
    })?;
    let fd = ws_file.as_raw_fd();
    let entry = guard_entry(ep);
    d.guard.forget_port(&loc.ns_path, &entry.port);
    guard::admit(&loc.ns_path, &entry)?;
    let res = d.in_tenant_and_workload(loc, &ws_file, &ws, |tnl, wnl| async move {
        let out = async {
            let fresh = plug(&tnl, &wnl, loc, ep, fd).await?;
            if ep.plumbing == Plumbing::InWorkload {
                configure_workload(&wnl, ep, loc.mtu, fresh).await?;
            }
            if fresh {
                finish_host(&tnl, loc, ep).await?;
            }
            Ok(())
        }
        .await;
        if out.is_err() {
            let _ = tnl.del_link(&host).await;
        }
        out
    });
    match res {
        Ok(()) => Ok(attachment),
        Err(e) => {
            d.guard.release_later(&loc.ns_path, entry);
            Err(e.into())
        }
    }
}

/// What the source guard lets `ep`'s port send.
pub(crate) fn guard_entry(ep: &LocalEndpoint) -> guard::Entry {
    guard::Entry {
        port: names::host_veth(&ep.id),
        mac: ep.mac,
        ip: ep.ip.addr(),
    }
}

/// Makes the pair exist with its host end configured; true when it was created just now (so
/// the workload end is known to have no address yet).
async fn plug(
    tnl: &Nl,
    wnl: &Nl,
    loc: &NetLoc,
    ep: &LocalEndpoint,
    fd: RawFd,
) -> Result<bool, LinuxError> {
    let host = &names::host_veth(&ep.id);
    match create_veth(tnl, loc, ep, fd).await {
        Ok(()) => return Ok(true),
        Err(e) if e.is_exists() => {}
        Err(e) => return Err(e),
    }
    // The host end exists: keep the pair if its workload end is ours, else start over (an
    // interrupted call left half of it). A handed-over end is the runtime's to move: it may be
    // in any namespace by now, so the pair is kept as it is.
    let ours = ep.plumbing == Plumbing::HandedOver
        || wnl
            .link(&ep.ifname)
            .await?
            .is_some_and(|l| l.mac == ep.mac.octets());
    if !ours {
        tnl.del_link(host).await?;
        create_veth(tnl, loc, ep, fd).await?;
    }
    configure_host(tnl, loc, ep).await?;
    Ok(false)
}

/// Creates the pair in the tenant namespace with the workload end made directly inside the
/// workload's namespace (`VETH_INFO_PEER` carrying `IFLA_NET_NS_FD`), already named, addressed
/// (MAC) and sized (MTU), and the host end sized and (bridge mode) a port of the network's
/// bridge (`IFLA_MASTER` is honoured on creation); both down, with one queue each (see [`add`]).
/// Creating the peer in its namespace avoids moving a device between namespaces afterwards,
/// which waits for an RCU grace period too. Fails with EEXIST (checked before anything is made)
/// when the host end exists.
async fn create_veth(
    nl: &Nl,
    loc: &NetLoc,
    ep: &LocalEndpoint,
    fd: RawFd,
) -> Result<(), LinuxError> {
    let host = names::host_veth(&ep.id);
    let workload_end = LinkMessageBuilder::<LinkUnspec>::new()
        .name(ep.ifname.clone())
        .mtu(loc.mtu)
        .address(ep.mac.octets().to_vec())
        .setns_by_fd(fd)
        .append_extra_attribute(LinkAttribute::NumTxQueues(1))
        .append_extra_attribute(LinkAttribute::NumRxQueues(1))
        .build();
    let mut b = LinkVeth::new(&host, &ep.ifname)
        .mtu(loc.mtu)
        .append_extra_attribute(LinkAttribute::NumTxQueues(1))
        .append_extra_attribute(LinkAttribute::NumRxQueues(1))
        .set_info_data(InfoData::Veth(InfoVeth::Peer(workload_end)));
    if loc.mode == FwdMode::Bridge {
        b = b.controller(nl.need_link(&names::bridge(loc.vni)).await?.index);
    }
    nl.add_link(&host, b.build()).await
}

/// What a freshly created host end still needs once its peer is up: its alias (the kernel
/// ignores `IFLA_IFALIAS` on creation) and link up, in bridge mode with the port in hairpin mode
/// (see [`hairpin`]), in one request; in routing mode proxy ARP and the /32 route.
async fn finish_host(nl: &Nl, loc: &NetLoc, ep: &LocalEndpoint) -> Result<(), LinuxError> {
    let host = names::host_veth(&ep.id);
    let alias = names::ep_alias(&ep.network_id, &ep.id);
    if loc.mode == FwdMode::Bridge {
        // Index 0 and a name: the kernel finds the device by name; the port data is applied
        // by the bridge in the same request (the host end is a port since its creation).
        let msg = LinkBridgePort::new(0)
            .name(host.clone())
            .alias(alias)
            .up()
            .hairpin(true)
            .build();
        return nl.set_port(&host, msg).await;
    }
    let msg = LinkUnspec::new_with_name(&host).alias(alias).up().build();
    nl.set_link(&host, msg).await?;
    if loc.mode == FwdMode::Routing {
        let index = nl.need_link(&host).await?.index;
        route_host_end(nl, ep, &host, index).await?;
    }
    Ok(())
}

/// Converges an existing host end: attached to the bridge (or routed as a /32 with proxy ARP),
/// sized, aliased, up.
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
    match loc.mode {
        FwdMode::Bridge => hairpin(nl, &host, h.index).await?,
        FwdMode::Routing => route_host_end(nl, ep, &host, h.index).await?,
    }
    Ok(())
}

/// Bridge mode: the workload's port in hairpin mode, so the bridge may send a frame back out of
/// the port it came in on.
///
/// Why (service balancing, measured): with `bridge-nf-call-iptables=1` the VIP's DNAT happens
/// in br_netfilter's bridge PREROUTING pass. When the new destination is on the same bridge,
/// br_netfilter takes its "bridged DNAT" path: it rewrites the destination MAC to the
/// provider's and hands the frame back to bridge forwarding instead of routing it. For a client
/// that is itself the chosen provider (hairpin) the destination port is the ingress port, and
/// a bridge without hairpin mode drops such a frame silently: the connection times out. (A
/// promiscuous tap on the bridge hides the bug: it makes the bridge also pass every frame up to
/// the tenant router, which then routes the copy.) Hairpin mode is what Kubernetes' kubenet and
/// Docker without the userland proxy set for the same reason; its cost is that flooded frames
/// (ARP requests, unknown unicast) also go back to their sender, which ignores them.
async fn hairpin(nl: &Nl, host: &str, index: u32) -> Result<(), LinuxError> {
    nl.set_port(host, LinkBridgePort::new(index).hairpin(true).build())
        .await
}

/// Routing mode: the tenant router answers ARP on the host end and routes the workload's /32
/// to it.
async fn route_host_end(
    nl: &Nl,
    ep: &LocalEndpoint,
    host: &str,
    index: u32,
) -> Result<(), LinuxError> {
    netns::sysctl(&nl.ns, &format!("net.ipv4.conf.{host}.proxy_arp"), "1")?;
    let r = RouteMessageBuilder::<Ipv4Addr>::new()
        .destination_prefix(ep.ip.addr(), 32)
        .output_interface(index)
        .scope(rtnetlink::packet_route::route::RouteScope::Link)
        .build();
    nl.replace_route(&format!("{}/32 dev {host}", ep.ip.addr()), r)
        .await
}

/// Converges the workload end: up with no IPv6 address generation, its address, the default
/// route. (`lo` is the runtime's: CNI runtimes run the loopback plugin themselves.)
///
/// The datapath is IPv4 only, so the workload's interface gets `addr_gen_mode` none
/// (`IFLA_INET6_ADDR_GEN_MODE`) in the same request that brings it up: otherwise each new
/// interface makes a link-local address, runs DAD, joins its solicited-node group (MLD reports)
/// and sends router solicitations into the tenant's bridge. The kernel applies `IFLA_AF_SPEC`
/// after the flags within that request, but IPv6 only configures the link once its carrier is
/// seen (link watch, which needs the rtnl lock the request still holds), so the mode is in place
/// first; a test checks no IPv6 address appears. Done over netlink rather than with the
/// `disable_ipv6` sysctl, whose handler only `rtnl_trylock()`s and restarts the syscall,
/// spinning while concurrent ADDs hold the rtnl lock. Without IPv6 in the kernel (module
/// absent) the request is refused and the link is brought up without it. `fresh`: the pair was
/// created just now with the right MAC and MTU and no address.
async fn configure_workload(
    nl: &Nl,
    ep: &LocalEndpoint,
    mtu: u32,
    fresh: bool,
) -> Result<(), LinuxError> {
    let l = nl.need_link(&ep.ifname).await?;
    let up = |no_v6: bool| {
        let mut b = LinkUnspec::new_with_index(l.index).up();
        if !fresh {
            b = b.mtu(mtu).address(ep.mac.octets().to_vec());
        }
        if no_v6 {
            b = b.append_extra_attribute(LinkAttribute::AfSpecUnspec(vec![AfSpecUnspec::Inet6(
                vec![AfSpecInet6::AddrGenMode(In6AddrGenMode::None)],
            )]));
        }
        b.build()
    };
    if let Err(e) = nl.set_link(&ep.ifname, up(true)).await {
        tracing::debug!(ns = %nl.ns, error = %e, "workload interface keeps IPv6 address generation");
        nl.set_link(&ep.ifname, up(false)).await?;
    }
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
        // After the port: until it is gone its traffic stays judged. Queued (coalesced with
        // other DELs, see `guard::Releases`): a deletion commit waits ~14 ms in the kernel.
        d.guard.release_later(&loc.ns_path, guard_entry(ep));
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
