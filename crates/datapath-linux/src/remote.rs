//! Remote endpoints, converged by diff against what is programmed.
//!
//! Bridge mode, per remote: `fdb <mac> dev vxlan self dst <vtep>` (where to tunnel),
//! `fdb <mac> dev vxlan master static` (the bridge knows the port without learning) and
//! `neigh <ip> lladdr <mac> dev bridge permanent` (the router's entry, and the source of the
//! bridge's ARP suppression answers to local workloads).
//!
//! Routing mode, per remote: `route <ip>/32 via <vtep> dev vxlan onlink`; per remote host:
//! `neigh <vtep> lladdr <vtep-mac> dev vxlan permanent` and `fdb <vtep-mac> dev vxlan self
//! dst <vtep>`, where `<vtep-mac>` is the MAC every host derives for its VXLAN devices.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};

use contiv_datapath::{DatapathError, FwdMode, RemoteEndpoint};
use rtnetlink::packet_route::neighbour::{NeighbourFlags, NeighbourState};
use rtnetlink::packet_route::route::{RouteMessage, RouteProtocol};
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::RouteMessageBuilder;

use crate::driver::{LinuxDatapath, NetLoc};
use crate::error::{Errors, LinuxError};
use crate::names;
use crate::nl::{route_parts, Neigh, Nl};

/// What is programmed for one network (the keys the diff works on).
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Programmed {
    /// VXLAN FDB: MAC → VTEP.
    pub tunnel: BTreeMap<[u8; 6], Ipv4Addr>,
    /// Bridge FDB static entries on the VXLAN port (bridge mode).
    pub port: BTreeSet<[u8; 6]>,
    /// Permanent neighbours: IP → MAC (on the bridge, or on the VXLAN device in routing mode).
    pub neigh: BTreeMap<Ipv4Addr, [u8; 6]>,
    /// /32 routes through the VXLAN device: IP → VTEP (routing mode).
    pub routes: BTreeMap<Ipv4Addr, Ipv4Addr>,
}

/// The desired [`Programmed`] for `remotes`.
pub(crate) fn desired(mode: FwdMode, remotes: &[&RemoteEndpoint]) -> Programmed {
    let mut p = Programmed::default();
    for r in remotes {
        match mode {
            FwdMode::Bridge => {
                p.tunnel.insert(r.mac.octets(), r.vtep);
                p.port.insert(r.mac.octets());
                p.neigh.insert(r.ip, r.mac.octets());
            }
            FwdMode::Routing => {
                let vmac = names::vtep_mac(r.vtep).octets();
                p.tunnel.insert(vmac, r.vtep);
                p.neigh.insert(r.vtep, vmac);
                p.routes.insert(r.ip, r.vtep);
            }
        }
    }
    p
}

pub(crate) struct Devs {
    vx: String,
    vx_index: u32,
    /// Where neighbours live: the bridge (bridge mode) or the VXLAN device.
    neigh_dev: String,
    neigh_index: u32,
}

pub(crate) async fn devs(nl: &Nl, loc: &NetLoc) -> Result<Devs, LinuxError> {
    let vx = names::vxlan(loc.vni);
    let v = nl.need_link(&vx).await?;
    let (neigh_dev, neigh_index) = match loc.mode {
        FwdMode::Bridge => {
            let br = names::bridge(loc.vni);
            let b = nl.need_link(&br).await?;
            (br, b.index)
        }
        FwdMode::Routing => (vx.clone(), v.index),
    };
    Ok(Devs {
        vx,
        vx_index: v.index,
        neigh_dev,
        neigh_index,
    })
}

/// Reads what is programmed; also returns the raw entries for deletion.
pub(crate) async fn read(
    nl: &Nl,
    d: &Devs,
) -> Result<(Programmed, Vec<Neigh>, Vec<RouteMessage>), LinuxError> {
    let mut p = Programmed::default();
    let mut raw = Vec::new();
    for n in nl.neighs(AddressFamily::Bridge).await? {
        let (Some(mac), true) = (n.lladdr, n.ifindex() == d.vx_index) else {
            continue;
        };
        if n.flags().contains(NeighbourFlags::Own) {
            if let Some(IpAddr::V4(dst)) = n.ip {
                if mac != [0; 6] {
                    p.tunnel.insert(mac, dst);
                    raw.push(n);
                }
            }
        } else if n.state() == NeighbourState::Noarp {
            // Bridge FDB dumps carry NDA_MASTER, not NTF_MASTER; static = NUD_NOARP.
            p.port.insert(mac);
            raw.push(n);
        }
    }
    for n in nl.neighs(AddressFamily::Inet).await? {
        if n.ifindex() == d.neigh_index && n.state() == NeighbourState::Permanent {
            if let (Some(IpAddr::V4(ip)), Some(mac)) = (n.ip, n.lladdr) {
                p.neigh.insert(ip, mac);
                raw.push(n);
            }
        }
    }
    let mut routes = Vec::new();
    for r in nl.routes().await? {
        let (dst, gw, oif) = route_parts(&r);
        if let (Some(dst), Some(gw), Some(oif)) = (dst, gw, oif) {
            if oif == d.vx_index && r.header.destination_prefix_length == 32 {
                p.routes.insert(dst, gw);
                routes.push(r);
            }
        }
    }
    Ok((p, raw, routes))
}

/// Converges the network's remote entries to exactly `remotes`.
pub(crate) fn converge(
    d: &LinuxDatapath,
    loc: &NetLoc,
    remotes: &[&RemoteEndpoint],
) -> Result<(), DatapathError> {
    let want = desired(loc.mode, remotes);
    let r = d.in_ns(&loc.ns_path, &loc.ns_name, |nl| async move {
        let devs = devs(&nl, loc).await?;
        let (have, raw, routes) = read(&nl, &devs).await?;
        let mut errs = Errors::default();
        remove_stale(&nl, &devs, &want, &raw, &routes, &mut errs).await;
        add_missing(&nl, &devs, &want, &have).await?;
        Ok(errs)
    });
    match r {
        Ok(errs) => errs.finish(),
        Err(e) => Err(e.into()),
    }
}

async fn remove_stale(
    nl: &Nl,
    d: &Devs,
    want: &Programmed,
    raw: &[Neigh],
    routes: &[RouteMessage],
    errs: &mut Errors,
) {
    for r in routes {
        let (Some(dst), gw, _) = route_parts(r) else {
            continue;
        };
        if want.routes.get(&dst) != gw.as_ref() {
            errs.absorb(
                nl.del_route(&format!("{dst}/32 dev {}", d.vx), r.clone())
                    .await,
            );
        }
    }
    for n in raw {
        let (ip, mac) = (n.ip, n.lladdr.unwrap_or_default());
        let stale = if n.msg.header.family == AddressFamily::Bridge {
            if n.flags().contains(NeighbourFlags::Own) {
                let dst = match ip {
                    Some(IpAddr::V4(v)) => Some(v),
                    _ => None,
                };
                want.tunnel.get(&mac).copied() != dst
            } else {
                !want.port.contains(&mac)
            }
        } else {
            let ip4 = match ip {
                Some(IpAddr::V4(v)) => v,
                _ => continue,
            };
            want.neigh.get(&ip4) != Some(&mac)
        };
        if stale {
            let what = format!(
                "{} on {}",
                names_of(n),
                if n.msg.header.family == AddressFamily::Bridge {
                    &d.vx
                } else {
                    &d.neigh_dev
                }
            );
            errs.absorb(nl.del_neigh(&what, n).await);
        }
    }
}

fn names_of(n: &Neigh) -> String {
    let mac = contiv_datapath::MacAddr(n.lladdr.unwrap_or_default());
    match n.ip {
        Some(ip) => format!("{ip} {mac}"),
        None => mac.to_string(),
    }
}

async fn add_missing(
    nl: &Nl,
    d: &Devs,
    want: &Programmed,
    have: &Programmed,
) -> Result<(), LinuxError> {
    for (mac, vtep) in &want.tunnel {
        if have.tunnel.get(mac) != Some(vtep) {
            nl.replace_vxlan_fdb(&d.vx, d.vx_index, *mac, *vtep).await?;
        }
    }
    for mac in want.port.difference(&have.port) {
        nl.replace_bridge_fdb(&d.vx, d.vx_index, *mac).await?;
    }
    for (ip, mac) in &want.neigh {
        if have.neigh.get(ip) != Some(mac) {
            nl.replace_neigh(&d.neigh_dev, d.neigh_index, *ip, *mac)
                .await?;
        }
    }
    for (ip, vtep) in &want.routes {
        if have.routes.get(ip) != Some(vtep) {
            let r = RouteMessageBuilder::<Ipv4Addr>::new()
                .destination_prefix(*ip, 32)
                .gateway(*vtep)
                .output_interface(d.vx_index)
                .protocol(RouteProtocol::Static)
                .onlink()
                .build();
            nl.replace_route(&format!("{ip}/32 via {vtep} dev {}", d.vx), r)
                .await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use contiv_datapath::MacAddr;

    fn rep(ip: [u8; 4], vtep: [u8; 4]) -> RemoteEndpoint {
        let ip = Ipv4Addr::from(ip);
        RemoteEndpoint {
            id: ip.to_string(),
            network_id: "t:n".into(),
            ip,
            mac: MacAddr::from_ipv4(ip),
            vtep: Ipv4Addr::from(vtep),
        }
    }

    #[test]
    fn routing_mode_shares_one_tunnel_entry_per_host() {
        let (a, b, c) = (
            rep([10, 0, 0, 2], [1, 1, 1, 2]),
            rep([10, 0, 0, 3], [1, 1, 1, 2]),
            rep([10, 0, 0, 4], [1, 1, 1, 3]),
        );
        let p = desired(FwdMode::Routing, &[&a, &b, &c]);
        assert_eq!(p.tunnel.len(), 2);
        assert_eq!(p.neigh.len(), 2);
        assert_eq!(p.routes.len(), 3);
        assert!(p.port.is_empty());
    }

    #[test]
    fn bridge_mode_one_entry_of_each_kind_per_endpoint() {
        let (a, b) = (
            rep([10, 0, 0, 2], [1, 1, 1, 2]),
            rep([10, 0, 0, 3], [1, 1, 1, 2]),
        );
        let p = desired(FwdMode::Bridge, &[&a, &b]);
        assert_eq!(
            (p.tunnel.len(), p.port.len(), p.neigh.len(), p.routes.len()),
            (2, 2, 2, 0)
        );
    }
}
