//! The desired state the agent declared through the trait, and what it renders to.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use contiv_datapath::{
    DatapathError, FwdMode, LocalEndpoint, NetworkSpec, ObservedEndpoint, ObservedNetwork,
    ObservedState, RemoteEndpoint,
};
use contiv_ovsdb::vswitch::PortInfo;
use contiv_policy::{HostPolicy, RuleId};

use crate::groups::GroupNumbers;
use crate::render::{render, Desired, Ports, Rendered};

#[derive(Debug, Default)]
pub(super) struct State {
    pub networks: BTreeMap<String, NetworkSpec>,
    pub locals: BTreeMap<String, LocalEndpoint>,
    /// Network → its endpoints on other hosts.
    pub remotes: BTreeMap<String, Vec<RemoteEndpoint>>,
    pub ports: Ports,
    /// Tenant → number (metadata, conntrack zone): given on first sight, kept for the run.
    tenants: BTreeMap<String, u16>,
    /// The policy applied per tenant (what [`super::OvsPolicy`] installed, admitted members
    /// included); tenants without rules are absent.
    pub policy: HostPolicy,
    /// Each policy group's number, kept while the policy names the group (in-process only).
    groups: GroupNumbers,
    /// The rule of each policy cookie's object id, from the last rendering (for counters).
    pub rules: BTreeMap<u64, RuleId>,
}

/// The VXLAN port to `vtep`'s name (fits IFNAMSIZ).
pub(super) fn tunnel_name(vtep: Ipv4Addr) -> String {
    format!("vx{:08x}", u32::from(vtep))
}

impl State {
    pub fn add_network(&mut self, net: NetworkSpec) -> Result<(), DatapathError> {
        if !self.tenants.contains_key(&net.tenant) {
            let used: BTreeSet<u16> = self.tenants.values().copied().collect();
            let n = (1..=u16::MAX).find(|n| !used.contains(n)).ok_or_else(|| {
                DatapathError::Invalid {
                    object: format!("network {}", net.id),
                    reason: "no tenant number left (65535 tenants on this host)".into(),
                }
            })?;
            self.tenants.insert(net.tenant.clone(), n);
        }
        self.networks.insert(net.id.clone(), net);
        Ok(())
    }

    /// Whether `tenant` has a number (one of its networks was ensured on this host this run).
    pub fn has_tenant(&self, tenant: &str) -> bool {
        self.tenants.contains_key(tenant)
    }

    /// Numbers the groups `self.policy` names (kept for groups that stay, released for groups
    /// gone), after every change of it.
    pub fn assign_groups(&mut self) {
        self.groups.assign(&self.policy);
    }

    /// Remote VTEPs some network's endpoints need a tunnel to.
    pub fn vteps(&self) -> Vec<Ipv4Addr> {
        let set: BTreeSet<Ipv4Addr> = self.remotes.values().flatten().map(|r| r.vtep).collect();
        set.into_iter().collect()
    }

    pub fn render(&self, round: u16) -> Rendered {
        let networks: Vec<NetworkSpec> = self.networks.values().cloned().collect();
        let locals: Vec<LocalEndpoint> = self.locals.values().cloned().collect();
        let remotes: Vec<RemoteEndpoint> = self.remotes.values().flatten().cloned().collect();
        render(&Desired {
            networks: &networks,
            local_endpoints: &locals,
            remote_endpoints: &remotes,
            policy: &self.policy,
            ports: &self.ports,
            tenants: &self.tenants,
            groups: &self.groups,
            round,
        })
    }

    /// Networks as declared this run; endpoints from the bridge's ports marked with one.
    pub fn observed(&self, ports: &[PortInfo]) -> ObservedState {
        ObservedState {
            networks: self
                .networks
                .values()
                .map(|n| ObservedNetwork {
                    id: n.id.clone(),
                    vni: n.vni,
                    fwd_mode: FwdMode::Bridge,
                })
                .collect(),
            local_endpoints: ports
                .iter()
                .filter(|p| p.ours)
                .filter_map(|p| {
                    Some(ObservedEndpoint {
                        id: p.external_ids.get("contiv-endpoint")?.clone(),
                        network_id: p.external_ids.get("contiv-network")?.clone(),
                        host_ifname: p.name.clone(),
                    })
                })
                .collect(),
            remote_endpoints: vec![],
        }
    }
}
