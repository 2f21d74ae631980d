//! The desired state the agent declared through the trait, and what it renders to.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use contiv_datapath::{
    DatapathError, LocalEndpoint, NetworkSpec, ObservedEndpoint, ObservedNetwork, ObservedRemote,
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

    /// Networks (with the forwarding mode they were declared with) and remote endpoints as
    /// declared this run; local endpoints from the bridge's ports marked with one. Reporting
    /// what was declared matters: the agent rebuilds a network whose observed mode differs, and
    /// sets again remote endpoints it does not see (a routing network was torn down and every
    /// workload re-plugged on each reconcile pass while this said "bridge").
    pub fn observed(&self, ports: &[PortInfo]) -> ObservedState {
        ObservedState {
            networks: self
                .networks
                .values()
                .map(|n| ObservedNetwork {
                    id: n.id.clone(),
                    vni: n.vni,
                    fwd_mode: n.fwd_mode,
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
            remote_endpoints: self
                .remotes
                .iter()
                .flat_map(|(net, rs)| {
                    rs.iter().map(move |r| ObservedRemote {
                        network_id: net.clone(),
                        ip: r.ip,
                        vtep: r.vtep,
                    })
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use contiv_datapath::{Encap, FwdMode, MacAddr};

    fn net(mode: FwdMode) -> NetworkSpec {
        NetworkSpec {
            id: "t:r".into(),
            tenant: "t".into(),
            vni: 7,
            subnet: "10.5.0.0/24".parse().unwrap(),
            gateway: Ipv4Addr::new(10, 5, 0, 1),
            fwd_mode: mode,
            encap: Encap::Vxlan,
            mtu: 0,
        }
    }

    /// The agent compares these with what it wants: a mode or remote set reported wrong makes
    /// every reconcile pass rebuild the network (regression: routing networks were).
    #[test]
    fn observed_reports_the_declared_mode_and_remote_endpoints() {
        let mut s = State::default();
        s.add_network(net(FwdMode::Routing)).unwrap();
        let ip = Ipv4Addr::new(10, 5, 0, 3);
        s.remotes.insert(
            "t:r".into(),
            vec![RemoteEndpoint {
                id: "e3".into(),
                network_id: "t:r".into(),
                ip,
                mac: MacAddr::from_ipv4(ip),
                vtep: Ipv4Addr::new(192, 0, 2, 2),
            }],
        );
        let o = s.observed(&[]);
        assert_eq!(o.networks[0].fwd_mode, FwdMode::Routing);
        assert_eq!(
            o.remote_endpoints,
            vec![ObservedRemote {
                network_id: "t:r".into(),
                ip,
                vtep: Ipv4Addr::new(192, 0, 2, 2),
            }]
        );
    }
}
