//! The desired state the agent declared through the trait, and what it renders to.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use contiv_datapath::{
    DatapathError, Encap, LocalEndpoint, NetworkSpec, ObservedEndpoint, ObservedNetwork,
    ObservedRemote, ObservedState, RemoteEndpoint,
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
    /// Tenant → number (metadata, conntrack zone): given on first sight, never moved. Kept in
    /// the bridge's `external_ids` ([`State::numbers`]), so a restarted agent (even after
    /// kill -9) gives every tenant the zone its open connections are tracked in.
    tenants: BTreeMap<String, u16>,
    /// The policy applied per tenant (what [`super::OvsPolicy`] installed, admitted members
    /// included); tenants without rules are absent.
    pub policy: HostPolicy,
    /// Each policy group's number, kept while the policy names the group; kept on the bridge
    /// beside the tenants' numbers for the same reason.
    groups: GroupNumbers,
    /// The service balancing applied per tenant (what [`super::OvsServices`] installed).
    pub services: BTreeMap<String, contiv_datapath::TenantServices>,
    /// The service bindings of the last rendering the switch took.
    pub bindings: std::collections::BTreeSet<crate::render::Binding>,
    /// The rule of each policy cookie's object id, from the last rendering (for counters).
    pub rules: BTreeMap<u64, RuleId>,
}

/// The bridge `external_ids` key holding the tenant numbers (JSON: tenant → number).
pub(super) const TENANTS_KEY: &str = "contiv-tenant-numbers";
/// The bridge `external_ids` key holding the group numbers (JSON: tenant → group → number).
pub(super) const GROUPS_KEY: &str = "contiv-group-numbers";

/// Numbers kept on the bridge that cannot be used as they are.
#[derive(Debug, thiserror::Error)]
#[error("bridge external_ids:{key}: {why} (remove the key to let the agent number afresh)")]
pub struct NumbersError {
    pub key: &'static str,
    pub why: String,
}

/// The VXLAN port to `vtep`'s name (fits IFNAMSIZ).
pub(super) fn tunnel_name(vtep: Ipv4Addr) -> String {
    format!("vx{:08x}", u32::from(vtep))
}

/// Tenant → number, checked: 1-65535, no number given twice.
fn parse_tenants(text: &str) -> Result<BTreeMap<String, u16>, String> {
    let map: BTreeMap<String, u16> = serde_json::from_str(text)
        .map_err(|e| format!("not valid JSON of tenant → number (1-65535): {e}"))?;
    let mut seen = BTreeSet::new();
    for (tenant, &n) in &map {
        if n == 0 {
            return Err(format!("tenant {tenant} has the number 0 (reserved)"));
        }
        if !seen.insert(n) {
            return Err(format!("number {n} given to two tenants"));
        }
    }
    Ok(map)
}

impl State {
    /// Takes network `net` in (a new one, or a new spec of one known). Refused, changing
    /// nothing: a VLAN id another network of this host already has (the tag names the network
    /// on the trunk, so two networks sharing one would see each other's traffic).
    pub fn add_network(&mut self, net: NetworkSpec) -> Result<(), DatapathError> {
        if net.encap == Encap::Vlan {
            if let Some(other) = self
                .networks
                .values()
                .find(|o| o.id != net.id && o.encap == Encap::Vlan && o.vni == net.vni)
            {
                return Err(DatapathError::Invalid {
                    object: format!("network {}", net.id),
                    reason: format!(
                        "VLAN id {} is already used by network {} on this host",
                        net.vni, other.id
                    ),
                });
            }
        }
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

    /// The numbers to keep on the bridge, as `external_ids` entries.
    pub fn numbers(&self) -> BTreeMap<String, String> {
        // Maps of strings to numbers always serialize.
        let tenants = serde_json::to_string(&self.tenants).unwrap_or_default();
        let groups = serde_json::to_string(&self.groups).unwrap_or_default();
        [
            (TENANTS_KEY.to_string(), tenants),
            (GROUPS_KEY.to_string(), groups),
        ]
        .into_iter()
        .collect()
    }

    /// Takes the numbers a previous run kept on the bridge (absent keys: nothing kept yet).
    /// Bad ones are refused whole, leaving the state as it was.
    pub fn restore_numbers(&mut self, ids: &BTreeMap<String, String>) -> Result<(), NumbersError> {
        let tenants = match ids.get(TENANTS_KEY) {
            Some(text) => parse_tenants(text).map_err(|why| NumbersError {
                key: TENANTS_KEY,
                why,
            })?,
            None => BTreeMap::new(),
        };
        let groups = match ids.get(GROUPS_KEY) {
            Some(text) => GroupNumbers::from_json(text).map_err(|e| NumbersError {
                key: GROUPS_KEY,
                why: e.to_string(),
            })?,
            None => GroupNumbers::default(),
        };
        self.tenants = tenants;
        self.groups = groups;
        Ok(())
    }

    /// The number of `tenant`, if it has one.
    #[cfg(test)]
    pub fn tenant_number(&self, tenant: &str) -> Option<u16> {
        self.tenants.get(tenant).copied()
    }

    /// Whether `tenant` has a number (one of its networks was ensured on this host this run).
    pub fn has_tenant(&self, tenant: &str) -> bool {
        self.tenants.contains_key(tenant)
    }

    /// Numbers the groups `tenant`'s policy names (kept for groups that stay, released for
    /// groups gone), after every change of it; other tenants' numbers are left alone.
    pub fn assign_groups(&mut self, tenant: &str) {
        self.groups.assign_tenant(tenant, self.policy.get(tenant));
    }

    /// Remote VTEPs some VXLAN network's endpoints need a tunnel to (VLAN networks go by the
    /// trunk uplink).
    pub fn vteps(&self) -> Vec<Ipv4Addr> {
        let set: BTreeSet<Ipv4Addr> = self
            .remotes
            .iter()
            .filter(|(id, _)| {
                self.networks
                    .get(*id)
                    .is_some_and(|n| n.encap == Encap::Vxlan)
            })
            .flat_map(|(_, eps)| eps)
            .map(|r| r.vtep)
            .collect();
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
            services: &self.services,
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
    use crate::driver::tests::vlan_net;
    use contiv_datapath::{FwdMode, MacAddr};

    #[test]
    fn a_vlan_id_another_network_has_is_refused_and_nothing_changes() {
        let mut s = State::default();
        s.add_network(vlan_net("t:red", 100)).unwrap();
        let before = (s.networks.clone(), s.tenants.clone());
        let mut blue = vlan_net("t:blue", 100);
        blue.tenant = "u".into();
        let e = s.add_network(blue).unwrap_err().to_string();
        assert!(
            e.contains("network t:blue")
                && e.contains("VLAN id 100 is already used by network t:red"),
            "{e}"
        );
        // No network, no tenant number taken.
        assert_eq!((s.networks.clone(), s.tenants.clone()), before);
        // The same network again (a repeated ensure) is fine, so is another id, and a VXLAN
        // network whose VNI equals the VLAN id.
        s.add_network(vlan_net("t:red", 100)).unwrap();
        s.add_network(vlan_net("t:blue", 101)).unwrap();
        s.add_network(NetworkSpec {
            encap: Encap::Vxlan,
            ..vlan_net("t:vx", 100)
        })
        .unwrap();
        assert_eq!(s.networks.len(), 3);
    }

    #[test]
    fn vlan_networks_need_no_tunnels() {
        let mut s = State::default();
        s.add_network(vlan_net("t:red", 100)).unwrap();
        let r = |vtep: [u8; 4]| RemoteEndpoint {
            id: "r".into(),
            network_id: "t:red".into(),
            ip: "10.1.0.9".parse().unwrap(),
            mac: Default::default(),
            vtep: vtep.into(),
        };
        s.remotes.insert("t:red".into(), vec![r([192, 0, 2, 2])]);
        assert!(s.vteps().is_empty());
    }

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

    /// Network `id` of `tenant` (bridge mode).
    fn tnet(id: &str, tenant: &str) -> NetworkSpec {
        NetworkSpec {
            id: id.into(),
            tenant: tenant.into(),
            ..net(FwdMode::Bridge)
        }
    }

    #[test]
    fn tenant_numbers_survive_a_restart_that_declares_tenants_in_another_order() {
        let mut a = State::default();
        a.add_network(tnet("t1:n", "t1")).unwrap();
        a.add_network(tnet("t2:n", "t2")).unwrap();
        a.add_network(tnet("t3:n", "t3")).unwrap();
        let kept = a.numbers();

        // Without the kept numbers, t3 first would take 1 (t1's zone).
        let mut b = State::default();
        b.restore_numbers(&kept).unwrap();
        b.add_network(tnet("t3:n", "t3")).unwrap();
        b.add_network(tnet("t4:n", "t4")).unwrap();
        for t in ["t1", "t2", "t3"] {
            assert_eq!(b.tenant_number(t), a.tenant_number(t), "{t}");
        }
        assert_eq!(
            b.tenant_number("t4"),
            Some(4),
            "a new tenant takes a free number"
        );
        // Nothing kept yet: nothing restored, no error.
        let mut c = State::default();
        c.restore_numbers(&BTreeMap::new()).unwrap();
        assert_eq!(c.numbers(), State::default().numbers());
    }

    #[test]
    fn bad_kept_numbers_are_refused_and_change_nothing() {
        let mut s = State::default();
        s.add_network(tnet("t1:n", "t1")).unwrap();
        let before = s.numbers();
        for (key, text, want) in [
            (TENANTS_KEY, "[", "not valid JSON"),
            (TENANTS_KEY, r#"{"a":0}"#, "number 0"),
            (TENANTS_KEY, r#"{"a":70000}"#, "not valid JSON"),
            (TENANTS_KEY, r#"{"a":2,"b":2}"#, "two tenants"),
            (GROUPS_KEY, r#"{"t":{"a":2,"b":2}}"#, "two groups"),
        ] {
            let ids = [(key.to_string(), text.to_string())].into_iter().collect();
            let e = s.restore_numbers(&ids).unwrap_err().to_string();
            assert!(e.contains(want) && e.contains(key), "{text}: {e}");
            assert_eq!(s.numbers(), before);
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
