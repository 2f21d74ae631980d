//! `workload_ends`: from a host veth that `observe` found (its alias names the network and the
//! endpoint) to the workload's side of it, so the agent can rebuild a lost attachment record
//! with a netns path that works for a later DEL, or know that the workload is gone.
//!
//! The host end carries its peer's index (`IFLA_LINK`) and the peer's namespace as the tenant
//! namespace numbers it (`IFLA_LINK_NETNSID`). Every namespace this process can name (mounts,
//! then processes: [`netns::all_namespaces`]) is asked for its id in the tenant namespace
//! (`RTM_GETNSID` by descriptor, a request on the tenant's kept thread, no `setns()` per
//! candidate) until the peer's is found; the peer is then read in that namespace. Exact: no
//! guessing by name or address.

use std::collections::BTreeMap;
use std::fs::File;
use std::os::fd::{AsRawFd, RawFd};
use std::path::PathBuf;

use contiv_datapath::{MacAddr, ObservedEndpoint, WorkloadEnd, WorkloadInterface};
use rtnetlink::packet_route::link::InfoKind;

use crate::driver::{LinuxDatapath, NetLoc};
use crate::error::LinuxError;
use crate::netns;

/// A namespace this process can name, open.
struct Candidate {
    path: PathBuf,
    file: File,
}

pub(crate) fn workload_ends(
    d: &LinuxDatapath,
    eps: &[ObservedEndpoint],
) -> Result<Vec<WorkloadEnd>, LinuxError> {
    let mut out = vec![WorkloadEnd::Gone; eps.len()];
    if eps.is_empty() {
        return Ok(out);
    }
    let locs = d.scan()?;
    // Endpoints by the tenant namespace their network lives in; a network gone took its
    // endpoints' veths along (Gone).
    let mut by_ns: BTreeMap<PathBuf, (NetLoc, Vec<usize>)> = BTreeMap::new();
    for (i, ep) in eps.iter().enumerate() {
        if let Some(loc) = locs.iter().find(|l| l.id == ep.network_id) {
            by_ns
                .entry(loc.ns_path.clone())
                .or_insert_with(|| (loc.clone(), Vec::new()))
                .1
                .push(i);
        }
    }
    let own: Vec<PathBuf> = locs.iter().map(|l| l.ns_path.clone()).collect();
    let candidates: Vec<Candidate> = netns::all_namespaces()
        .into_iter()
        .filter(|p| !own.contains(p) && p.as_path() != d.host_ns())
        .filter_map(|path| {
            Some(Candidate {
                file: File::open(&path).ok()?,
                path,
            })
        })
        .collect();
    for (loc, idxs) in by_ns.values() {
        let hosts: Vec<String> = idxs.iter().map(|&i| eps[i].host_ifname.clone()).collect();
        let fds: Vec<RawFd> = candidates.iter().map(|c| c.file.as_raw_fd()).collect();
        let found = d.in_ns(&loc.ns_path, &loc.ns_name, |nl| async move {
            let links = nl.links().await?;
            // Per endpoint: (peer index, peer's nsid) of its host end, if it exists.
            let peers: Vec<Option<(Option<u32>, Option<i32>)>> = hosts
                .iter()
                .map(|h| {
                    links
                        .iter()
                        .find(|l| &l.name == h && l.kind == Some(InfoKind::Veth))
                        .map(|l| (l.peer, l.link_netnsid))
                })
                .collect();
            let mut wanted: Vec<i32> = peers.iter().flatten().filter_map(|p| p.1).collect();
            wanted.sort_unstable();
            wanted.dedup();
            // nsid -> candidate index, until every wanted one is found.
            let mut names = BTreeMap::new();
            for (c, fd) in fds.iter().enumerate() {
                if names.len() == wanted.len() {
                    break;
                }
                // A candidate that vanished or is no network namespace answers an error.
                if let Ok(Some(id)) = nl.nsid_of(*fd).await {
                    if wanted.binary_search(&id).is_ok() {
                        names.entry(id).or_insert(c);
                    }
                }
            }
            Ok((peers, names))
        })?;
        let (peers, names) = found;
        for (&i, peer) in idxs.iter().zip(peers) {
            out[i] = match peer {
                None => WorkloadEnd::Gone,
                Some((Some(index), Some(nsid))) => match names.get(&nsid) {
                    Some(&c) => read_peer(d, &candidates[c].path, index)?,
                    None => WorkloadEnd::Unnamed,
                },
                // A peer in the tenant namespace itself, or no peer: not a workload's.
                Some(_) => WorkloadEnd::Unnamed,
            };
        }
    }
    Ok(out)
}

/// The veth with `index` in the namespace at `path`.
fn read_peer(
    d: &LinuxDatapath,
    path: &std::path::Path,
    index: u32,
) -> Result<WorkloadEnd, LinuxError> {
    let label = path.display().to_string();
    let link = d.in_ns(path, &label, |nl| async move {
        Ok(nl.links().await?.into_iter().find(|l| l.index == index))
    })?;
    Ok(match link {
        Some(l) if l.kind == Some(InfoKind::Veth) && l.mac.len() == 6 => {
            let mut mac = [0u8; 6];
            mac.copy_from_slice(&l.mac);
            WorkloadEnd::Found(WorkloadInterface {
                netns_path: path.to_path_buf(),
                ifname: l.name,
                mac: MacAddr(mac),
                mtu: l.mtu,
            })
        }
        _ => WorkloadEnd::Unnamed,
    })
}
