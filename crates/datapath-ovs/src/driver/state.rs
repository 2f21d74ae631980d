//! The desired state the agent declared through the trait, and what it renders to.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use contiv_datapath::{
    DatapathError, FwdMode, LocalEndpoint, NetworkSpec, ObservedEndpoint, ObservedNetwork,
    ObservedState, RemoteEndpoint,
};
use contiv_ovsdb::vswitch::PortInfo;
use contiv_policy::HostPolicy;

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
    /// Policy group numbers, kept beside the tenants' for the same reason.
    groups: GroupNumbers,
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
            policy: &HostPolicy::new(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use contiv_datapath::Encap;

    fn net(id: &str, tenant: &str) -> NetworkSpec {
        NetworkSpec {
            id: id.into(),
            tenant: tenant.into(),
            vni: 5000,
            subnet: "10.10.0.0/24".parse().unwrap(),
            gateway: "10.10.0.1".parse().unwrap(),
            fwd_mode: FwdMode::Bridge,
            encap: Encap::Vxlan,
            mtu: 0,
        }
    }

    #[test]
    fn tenant_numbers_survive_a_restart_that_declares_tenants_in_another_order() {
        let mut a = State::default();
        a.add_network(net("t1:n", "t1")).unwrap();
        a.add_network(net("t2:n", "t2")).unwrap();
        a.add_network(net("t3:n", "t3")).unwrap();
        let kept = a.numbers();

        // Without the kept numbers, t3 first would take 1 (t1's zone).
        let mut b = State::default();
        b.restore_numbers(&kept).unwrap();
        b.add_network(net("t3:n", "t3")).unwrap();
        b.add_network(net("t4:n", "t4")).unwrap();
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
        s.add_network(net("t1:n", "t1")).unwrap();
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
}
