//! Accounting before clean-up: a full reconcile pass first accounts for every local interface
//! the datapath observes, and only then removes anything.
//!
//! An interface no record owns (its record lost: a damaged or deleted journal, a wiped state
//! dir) is matched with what the kernel and netmaster still know. The host veth's alias names
//! its network and endpoint (`observe`); [`Datapath::workload_ends`] finds the workload's side
//! (its namespace, named by a path that lives as long as it, and the interface there);
//! netmaster's endpoint record for this host gives the container id, interface name, group and
//! address; the mirror's network gives the prefix and gateway. With all of that the record is
//! re-created as it was (phase `Ready`, everything a later CNI DEL needs) and nothing is
//! touched: the interface is *adopted*. The CNI network name is the one field no one else
//! keeps: adopted records have none, so a CNI GC (which names its network) leaves them alone.
//!
//! What cannot be adopted is removed only when it is provably dead: its workload end is gone
//! (a veth goes with its namespace), or sits in a namespace the netns probe says is gone. An
//! interface that is alive but cannot be adopted (netmaster holds no endpoint for it on this
//! host, or its namespace has no path) is kept, its network too, and named in a warning at
//! every full pass. Records whose namespace path is gone while their interface still lives in
//! a namespace found elsewhere are pointed at that namespace instead of being released.
//!
//! The pass accounts only when it knows enough: the kernel observed, netmaster's state loaded
//! and netmaster not known unreachable, and `workload_ends` answered. Otherwise it cleans up
//! nothing (no interface, network or endpoint removed; releases a DEL asked for still finish).

use std::collections::BTreeSet;
use std::path::Path;

use contiv_api::EndpointState;
use contiv_datapath::{ObservedEndpoint, ObservedState, WorkloadEnd, WorkloadInterface};

use crate::agent::Agent;
use crate::mirror::Mirror;
use crate::reconcile::container_of;
use crate::records::{Attachment, Phase};

/// What accounting found, for the clean-up that follows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Accounting {
    /// Interfaces without a record whose workload is provably gone: may be removed.
    pub dead: BTreeSet<String>,
    /// Interfaces without a record that are alive but could not be adopted: kept.
    pub kept: BTreeSet<String>,
    /// Recorded endpoints whose namespace path is gone while their workload lives where no
    /// path names it: not released.
    pub spared: BTreeSet<String>,
    /// Records re-created from the kernel and netmaster.
    pub adopted: usize,
    /// Records whose namespace path was replaced by the one the workload was found at.
    pub repointed: usize,
}

impl Agent {
    /// Accounts for every observed local interface (see the module docs): adopts what can be
    /// adopted, re-points records at namespaces found elsewhere, and says what is dead. Runs
    /// in a full pass (under the exclusive gate) with netmaster's state `m`. `Err`: the
    /// workload ends could not be read; the pass then removes nothing.
    pub(crate) fn account(
        &self,
        observed: &ObservedState,
        m: &Mirror,
    ) -> Result<Accounting, String> {
        let mut acc = Accounting::default();
        let records = self.records.list();
        let owned: BTreeSet<&str> = records.iter().map(|a| a.endpoint_id.as_str()).collect();
        let alive = |p: &Path| (self.netns_alive)(p);
        // Records whose namespace path is gone, whose interface may still live elsewhere.
        let lost_ns: BTreeSet<&str> = records
            .iter()
            .filter(|a| a.phase != Phase::Releasing && !alive(Path::new(&a.netns)))
            .map(|a| a.endpoint_id.as_str())
            .collect();
        let query: Vec<ObservedEndpoint> = observed
            .local_endpoints
            .iter()
            .filter(|o| !owned.contains(o.id.as_str()) || lost_ns.contains(o.id.as_str()))
            .cloned()
            .collect();
        if query.is_empty() {
            return Ok(acc);
        }
        let ends = self
            .dp
            .workload_ends(&query)
            .map_err(|e| format!("workload ends: {e}"))?;
        for (o, end) in query.iter().zip(ends) {
            let found = match end {
                WorkloadEnd::Found(w) if alive(&w.netns_path) => Some(w),
                WorkloadEnd::Found(_) | WorkloadEnd::Gone => None,
                WorkloadEnd::Unnamed => {
                    if owned.contains(o.id.as_str()) {
                        acc.spared.insert(o.id.clone());
                    } else {
                        tracing::warn!(endpoint = %o.id, host_if = %o.host_ifname,
                            "keeping an interface without a record: its workload namespace \
                             lives but no path names it");
                        acc.kept.insert(o.id.clone());
                    }
                    continue;
                }
            };
            if owned.contains(o.id.as_str()) {
                if let Some(w) = found {
                    acc.repointed += usize::from(self.repoint(&o.id, &records, &w));
                }
                continue;
            }
            let Some(w) = found else {
                acc.dead.insert(o.id.clone());
                continue;
            };
            match self.adopt(o, &w, m) {
                Ok(a) => {
                    tracing::warn!(endpoint = %a.endpoint_id, container = %a.container_id,
                        netns = %a.netns, "adopted a running workload whose record was lost");
                    acc.adopted += 1;
                }
                Err(why) => {
                    tracing::warn!(endpoint = %o.id, host_if = %o.host_ifname,
                        "keeping an interface without a record: {why}");
                    acc.kept.insert(o.id.clone());
                }
            }
        }
        Ok(acc)
    }

    /// Points the record of endpoint `id` at the namespace its workload was found in.
    fn repoint(&self, id: &str, records: &[Attachment], w: &WorkloadInterface) -> bool {
        let Some(a) = records.iter().find(|a| a.endpoint_id == id) else {
            return false;
        };
        let mut a = a.clone();
        let old = std::mem::replace(&mut a.netns, w.netns_path.display().to_string());
        match self.records.put(&a) {
            Ok(()) => {
                tracing::warn!(endpoint = %id, %old, new = %a.netns,
                    "workload namespace path gone but the workload lives: record re-pointed");
                true
            }
            Err(e) => {
                tracing::warn!(endpoint = %id, "cannot re-point the record: {e}");
                false
            }
        }
    }

    /// Re-creates the record of the interface `o` (workload end `w`) from netmaster's endpoint.
    fn adopt(
        &self,
        o: &ObservedEndpoint,
        w: &WorkloadInterface,
        m: &Mirror,
    ) -> Result<Attachment, String> {
        let host = &self.settings.host;
        let ep = m
            .endpoints
            .get(&o.id)
            .filter(|ep| &ep.homing_host == host)
            .ok_or_else(|| format!("netmaster holds no endpoint {} for host {host}", o.id))?;
        let a = rebuilt_record(o, w, ep, m, self.settings.fwd_mode)?;
        if let Some(other) = self.records.get(&a.key()) {
            return Err(format!(
                "attachment {} {} is recorded for endpoint {}",
                a.container_id, a.ifname, other.endpoint_id
            ));
        }
        self.records
            .put(&a)
            .map_err(|e| format!("cannot record it: {e}"))?;
        Ok(a)
    }
}

/// The record of interface `o` (workload end `w`) rebuilt from netmaster's endpoint `ep` and
/// the network in `m`: what ADD wrote, except the CNI network name (nobody else keeps it).
pub(crate) fn rebuilt_record(
    o: &ObservedEndpoint,
    w: &WorkloadInterface,
    ep: &EndpointState,
    m: &Mirror,
    fallback: contiv_datapath::FwdMode,
) -> Result<Attachment, String> {
    if ep.network_key() != o.network_id {
        return Err(format!(
            "the interface is on network {}, netmaster's endpoint on {}",
            o.network_id,
            ep.network_key()
        ));
    }
    let spec = m
        .network_spec(&o.network_id, fallback)
        .map_err(|e| format!("network {}: {e}", o.network_id))?;
    let ip: std::net::Ipv4Addr = ep
        .ip_address
        .parse()
        .map_err(|_| format!("endpoint address {:?}", ep.ip_address))?;
    let ep_container = container_of(ep);
    let ifname = if ep.intf_name.is_empty() {
        w.ifname.clone()
    } else {
        ep.intf_name.clone()
    };
    let container_id = if !ep.container_id.is_empty() {
        ep.container_id.clone()
    } else if ifname == "eth0" {
        ep_container.clone()
    } else {
        let suffix = format!("-{ifname}");
        ep_container
            .strip_suffix(&suffix)
            .unwrap_or(&ep_container)
            .to_string()
    };
    // Docker's interfaces are recorded under the name dockerd moved (netmaster has it): so
    // DeleteEndpoint finds the record, and the workload end is never touched again.
    let frontend = if crate::cnm::is_cnm_ifname(&ifname) {
        crate::records::Frontend::Docker
    } else {
        crate::records::Frontend::Cni
    };
    Ok(Attachment {
        container_id,
        ifname,
        netns: w.netns_path.display().to_string(),
        cni_network: String::new(),
        tenant: ep.tenant_name.clone(),
        network: ep.network_name.clone(),
        group: (!ep.service_name.is_empty()).then(|| ep.service_name.clone()),
        ep_container,
        endpoint_id: ep.id.clone(),
        ip: format!("{ip}/{}", spec.subnet.prefix_len()),
        gateway: spec.gateway.to_string(),
        mac: w.mac.to_string(),
        host_ifname: o.host_ifname.clone(),
        mtu: w.mtu,
        phase: Phase::Ready,
        frontend,
        // Age unknown: the Docker endpoint sweep keeps it (never releases what it cannot date).
        created: 0,
    })
}
