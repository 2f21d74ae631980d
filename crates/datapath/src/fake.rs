//! A recording in-memory [`Datapath`] for unit tests of the agent. Enabled only by the `fake`
//! feature (the agent turns it on in its dev-dependencies); it keeps the state a real driver
//! would, records every call in order and can be told to fail the next call of a method.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Mutex, MutexGuard};

use crate::{
    validate_common, Datapath, DatapathError, Encap, EndpointAttachment, LocalEndpoint,
    NetworkSpec, ObservedEndpoint, ObservedNetwork, ObservedRemote, ObservedState, RemoteEndpoint,
    WorkloadEnd, WorkloadInterface,
};

/// One recorded call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    EnsureNetwork(String),
    RemoveNetwork(String),
    AddLocalEndpoint(String),
    RemoveLocalEndpoint(String),
    SetRemoteEndpoints(String, usize),
    Observe,
    /// `workload_ends` for this many endpoints.
    WorkloadEnds(usize),
    /// `resync_local_endpoints` with these endpoint ids.
    ResyncLocalEndpoints(Vec<String>),
}

#[derive(Default)]
struct Inner {
    calls: Vec<Call>,
    networks: BTreeMap<String, NetworkSpec>,
    endpoints: BTreeMap<String, LocalEndpoint>,
    remotes: BTreeMap<String, Vec<RemoteEndpoint>>,
    fail_next: HashSet<&'static str>,
}

/// The fake driver. `refuse_vlan` mimics the Linux driver's validation.
#[derive(Default)]
pub struct FakeDatapath {
    inner: Mutex<Inner>,
    pub refuse_vlan: bool,
}

impl FakeDatapath {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Calls so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// The next call of `method` ("ensure_network", "add_local_endpoint" ...) fails.
    pub fn fail_next(&self, method: &'static str) {
        self.lock().fail_next.insert(method);
    }

    /// The local endpoint as last plugged (absent once removed).
    pub fn local_endpoint(&self, id: &str) -> Option<LocalEndpoint> {
        self.lock().endpoints.get(id).cloned()
    }

    /// The remote set last given for a network.
    pub fn remotes(&self, network_id: &str) -> Vec<RemoteEndpoint> {
        self.lock()
            .remotes
            .get(network_id)
            .cloned()
            .unwrap_or_default()
    }

    fn enter(
        &self,
        method: &'static str,
        call: Call,
    ) -> Result<MutexGuard<'_, Inner>, DatapathError> {
        let mut g = self.lock();
        g.calls.push(call);
        if g.fail_next.remove(method) {
            return Err(DatapathError::Backend {
                object: format!("fake {method}"),
                source: "injected failure".into(),
            });
        }
        Ok(g)
    }
}

impl Datapath for FakeDatapath {
    fn validate(&self, net: &NetworkSpec) -> Result<(), DatapathError> {
        if self.refuse_vlan && net.encap == Encap::Vlan {
            return Err(DatapathError::Unsupported {
                network: net.id.clone(),
                reason: "vlan encap".into(),
            });
        }
        validate_common(net)
    }

    fn ensure_network(&self, net: &NetworkSpec) -> Result<(), DatapathError> {
        self.validate(net)?;
        let mut g = self.enter("ensure_network", Call::EnsureNetwork(net.id.clone()))?;
        g.networks.insert(net.id.clone(), net.clone());
        Ok(())
    }

    fn remove_network(&self, network_id: &str) -> Result<(), DatapathError> {
        let mut g = self.enter("remove_network", Call::RemoveNetwork(network_id.into()))?;
        g.networks.remove(network_id);
        g.remotes.remove(network_id);
        g.endpoints.retain(|_, e| e.network_id != network_id);
        Ok(())
    }

    fn add_local_endpoint(&self, ep: &LocalEndpoint) -> Result<EndpointAttachment, DatapathError> {
        let mut g = self.enter("add_local_endpoint", Call::AddLocalEndpoint(ep.id.clone()))?;
        let mtu = match g.networks.get(&ep.network_id) {
            Some(n) => n.mtu,
            None => return Err(DatapathError::NetworkNotFound(ep.network_id.clone())),
        };
        g.endpoints.insert(ep.id.clone(), ep.clone());
        Ok(EndpointAttachment {
            host_ifname: format!("fake-{}", ep.id),
            host_location: "fake".into(),
            mac: ep.mac,
            mtu,
        })
    }

    fn remove_local_endpoint(&self, ep: &LocalEndpoint) -> Result<(), DatapathError> {
        let mut g = self.enter(
            "remove_local_endpoint",
            Call::RemoveLocalEndpoint(ep.id.clone()),
        )?;
        g.endpoints.remove(&ep.id);
        Ok(())
    }

    fn set_remote_endpoints(
        &self,
        network_id: &str,
        remotes: &[RemoteEndpoint],
    ) -> Result<(), DatapathError> {
        let call = Call::SetRemoteEndpoints(network_id.into(), remotes.len());
        let mut g = self.enter("set_remote_endpoints", call)?;
        if !g.networks.contains_key(network_id) {
            return Err(DatapathError::NetworkNotFound(network_id.into()));
        }
        g.remotes.insert(network_id.into(), remotes.to_vec());
        Ok(())
    }

    fn observe(&self) -> Result<ObservedState, DatapathError> {
        let g = self.enter("observe", Call::Observe)?;
        Ok(ObservedState {
            networks: g
                .networks
                .values()
                .map(|n| ObservedNetwork {
                    id: n.id.clone(),
                    vni: n.vni,
                    fwd_mode: n.fwd_mode,
                })
                .collect(),
            local_endpoints: g
                .endpoints
                .values()
                .map(|e| ObservedEndpoint {
                    id: e.id.clone(),
                    network_id: e.network_id.clone(),
                    host_ifname: format!("fake-{}", e.id),
                })
                .collect(),
            remote_endpoints: g
                .remotes
                .iter()
                .flat_map(|(n, rs)| {
                    rs.iter().map(move |r| ObservedRemote {
                        network_id: n.clone(),
                        ip: r.ip,
                        vtep: r.vtep,
                    })
                })
                .collect(),
        })
    }

    /// Recorded only: the fake keeps nothing per endpoint beside its interface.
    fn resync_local_endpoints(&self, eps: &[LocalEndpoint]) -> Result<(), DatapathError> {
        let ids = eps.iter().map(|e| e.id.clone()).collect();
        let _g = self.enter("resync_local_endpoints", Call::ResyncLocalEndpoints(ids))?;
        Ok(())
    }

    /// Found at the netns path it was plugged with (the fake knows no namespaces: the agent's
    /// netns probe decides whether that one lives), gone when it was never plugged or removed.
    fn workload_ends(&self, eps: &[ObservedEndpoint]) -> Result<Vec<WorkloadEnd>, DatapathError> {
        let g = self.enter("workload_ends", Call::WorkloadEnds(eps.len()))?;
        Ok(eps
            .iter()
            .map(|o| match g.endpoints.get(&o.id) {
                Some(e) => WorkloadEnd::Found(WorkloadInterface {
                    netns_path: e.netns_path.clone(),
                    ifname: e.ifname.clone(),
                    mac: e.mac,
                    mtu: g.networks.get(&e.network_id).map_or(0, |n| n.mtu),
                }),
                None => WorkloadEnd::Gone,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FwdMode, MacAddr};
    use std::net::Ipv4Addr;

    fn net() -> NetworkSpec {
        NetworkSpec {
            id: "t:n".into(),
            tenant: "t".into(),
            vni: 5,
            subnet: "10.1.0.0/24".parse().unwrap(),
            gateway: Ipv4Addr::new(10, 1, 0, 1),
            fwd_mode: FwdMode::Bridge,
            encap: Encap::Vxlan,
            mtu: 1450,
        }
    }

    #[test]
    fn records_and_fails_on_demand() {
        let f = FakeDatapath::new();
        f.ensure_network(&net()).unwrap();
        let ep = LocalEndpoint {
            id: "e1".into(),
            network_id: "t:n".into(),
            netns_path: "/x".into(),
            ifname: "eth0".into(),
            ip: "10.1.0.2/24".parse().unwrap(),
            mac: MacAddr::from_ipv4(Ipv4Addr::new(10, 1, 0, 2)),
            gateway: Ipv4Addr::new(10, 1, 0, 1),
            plumbing: crate::Plumbing::InWorkload,
        };
        f.fail_next("add_local_endpoint");
        assert!(f.add_local_endpoint(&ep).is_err());
        assert_eq!(f.add_local_endpoint(&ep).unwrap().mtu, 1450);
        assert_eq!(f.observe().unwrap().local_endpoints.len(), 1);
        f.remove_network("t:n").unwrap();
        assert!(f.observe().unwrap().local_endpoints.is_empty());
        assert_eq!(f.calls().len(), 6);
    }
}

/// A recording [`crate::PolicyDriver`]: keeps the last policy applied per tenant and counts the
/// applies that changed something.
#[derive(Default)]
pub struct FakePolicy {
    applied: Mutex<BTreeMap<String, contiv_policy::TenantPolicy>>,
    calls: std::sync::atomic::AtomicUsize,
}

impl FakePolicy {
    pub fn new() -> Self {
        Self::default()
    }

    /// How many times `apply` was called.
    pub fn apply_calls(&self) -> usize {
        self.calls.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The policy last applied for `tenant`.
    pub fn applied(&self, tenant: &str) -> Option<contiv_policy::TenantPolicy> {
        self.applied
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(tenant)
            .cloned()
    }
}

impl crate::PolicyDriver for FakePolicy {
    fn apply(
        &self,
        policy: &contiv_policy::TenantPolicy,
    ) -> Result<crate::ApplyStats, DatapathError> {
        self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut m = self.applied.lock().unwrap_or_else(|p| p.into_inner());
        let changed = m.get(&policy.tenant) != Some(policy);
        m.insert(policy.tenant.clone(), policy.clone());
        Ok(crate::ApplyStats {
            changed,
            rules: policy.rule_count(),
            elements: policy.element_count(),
            pending: false,
        })
    }

    fn admit(
        &self,
        tenant: &str,
        group: &str,
        _ip: std::net::Ipv4Addr,
    ) -> Result<bool, DatapathError> {
        // Admitted once a full pass applied the group's rules (the member itself is left to the
        // next pass: the agent tests observe passes).
        let m = self.applied.lock().unwrap_or_else(|p| p.into_inner());
        Ok(m.get(tenant).is_some_and(|p| {
            p.groups
                .get(group)
                .is_some_and(|r| !r.ingress.is_empty() || !r.egress.is_empty())
        }))
    }

    fn forget(&self, tenant: &str) {
        self.applied
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(tenant);
    }

    fn counters(&self) -> Result<BTreeMap<String, crate::PolicyCounter>, DatapathError> {
        Ok(BTreeMap::new())
    }
}

/// A recording [`crate::QosDriver`]: keeps the last QoS applied per tenant, counts the applies
/// and the endpoints each changed (an endpoint whose desired QoS differs from the last apply).
#[derive(Default)]
pub struct FakeQos {
    applied: Mutex<BTreeMap<String, crate::TenantQos>>,
    calls: Mutex<Vec<(String, usize)>>,
}

impl FakeQos {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every `apply` so far: tenant and how many endpoints it changed.
    pub fn calls(&self) -> Vec<(String, usize)> {
        self.calls.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The QoS last applied for `tenant`.
    pub fn applied(&self, tenant: &str) -> Option<crate::TenantQos> {
        self.applied
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(tenant)
            .cloned()
    }

    /// The QoS last applied for endpoint `id`, in any tenant.
    pub fn endpoint(&self, id: &str) -> Option<crate::EndpointQos> {
        self.applied
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .find_map(|t| t.endpoints.get(id).cloned())
    }
}

impl crate::QosDriver for FakeQos {
    fn apply(&self, qos: &crate::TenantQos) -> Result<crate::QosStats, DatapathError> {
        let mut m = self.applied.lock().unwrap_or_else(|p| p.into_inner());
        let before = m.get(&qos.tenant);
        let changed = qos
            .endpoints
            .iter()
            .filter(|(id, e)| {
                let old = before.and_then(|b| b.endpoints.get(*id));
                // A new endpoint without QoS needs nothing.
                old.map_or(e.is_set(), |o| o != *e)
            })
            .count();
        m.insert(qos.tenant.clone(), qos.clone());
        self.calls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((qos.tenant.clone(), changed));
        Ok(crate::QosStats {
            changed,
            ..Default::default()
        })
    }

    fn forget(&self, tenant: &str) {
        self.applied
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(tenant);
    }
}
