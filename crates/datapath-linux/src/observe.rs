//! `observe`: what the driver finds in the kernel, mapped back to Contiv ids through the link
//! aliases it sets (network id on VXLAN devices, endpoint id on host veths).

use std::collections::BTreeSet;

use contiv_datapath::{FwdMode, ObservedEndpoint, ObservedNetwork, ObservedRemote, ObservedState};
use rtnetlink::packet_route::link::InfoKind;

use crate::driver::LinuxDatapath;
use crate::error::LinuxError;
use crate::names;
use crate::remote;

pub(crate) fn observe(d: &LinuxDatapath) -> Result<ObservedState, LinuxError> {
    let mut st = ObservedState::default();
    let locs = d.scan()?;
    let namespaces: BTreeSet<_> = locs
        .iter()
        .map(|l| (l.ns_name.clone(), l.ns_path.clone()))
        .collect();
    for (ns_name, ns_path) in &namespaces {
        let links = d.in_ns(ns_path, ns_name, |nl| async move { nl.links().await })?;
        for l in links.iter().filter(|l| l.kind == Some(InfoKind::Veth)) {
            if let Some((network_id, id)) = l.alias.as_deref().and_then(names::parse_ep_alias) {
                st.local_endpoints.push(ObservedEndpoint {
                    id,
                    network_id,
                    host_ifname: l.name.clone(),
                });
            }
        }
    }
    for loc in &locs {
        st.networks.push(ObservedNetwork {
            id: loc.id.clone(),
            vni: loc.vni,
            fwd_mode: loc.mode,
        });
        let prog = d.in_ns(&loc.ns_path, &loc.ns_name, |nl| async move {
            let devs = remote::devs(&nl, loc).await?;
            Ok(remote::read(&nl, &devs).await?.0)
        })?;
        let remotes: Vec<ObservedRemote> = match loc.mode {
            FwdMode::Bridge => prog
                .neigh
                .iter()
                .filter_map(|(ip, mac)| {
                    let vtep = *prog.tunnel.get(mac)?;
                    Some(ObservedRemote {
                        network_id: loc.id.clone(),
                        ip: *ip,
                        vtep,
                    })
                })
                .collect(),
            FwdMode::Routing => prog
                .routes
                .iter()
                .map(|(ip, vtep)| ObservedRemote {
                    network_id: loc.id.clone(),
                    ip: *ip,
                    vtep: *vtep,
                })
                .collect(),
        };
        st.remote_endpoints.extend(remotes);
    }
    Ok(st)
}
