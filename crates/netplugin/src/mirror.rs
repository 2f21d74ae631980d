//! The agent's mirror of netmaster state: built from a snapshot, advanced by each event of the
//! change stream (see `contiv_api::agent`), and queried for what the datapath needs (network
//! specs, remote endpoints). [`SharedMirror`] is the thread-safe handle with change waits.
//!
//! Invariant: a mirror at revision R holds exactly netmaster's agent-visible keys at R. Networks,
//! groups, policies, rules, endpoints and nodes are typed values (rules already parsed into the
//! policy compiler's [`RuleSpec`]), and so are netprofiles; keys it does not interpret yet (services) are
//! kept raw for later consumers.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::{Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};

use contiv_api::agent::{AgentEvent, AgentSnapshot, KvChange, NodeInfo};
use contiv_api::keys::{self, Parsed};
use contiv_api::{EndpointState, NetOper};
use contiv_datapath::{Encap, FwdMode, MacAddr, NetworkSpec, RemoteEndpoint};
use contiv_model::{EndpointGroup, Global, NetProfile, Network, ObjectKind, Policy, Rule};
use contiv_policy::{PolicyInput, RuleSpec};
use serde_json::Value;

/// Why a network cannot be handed to the datapath.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("network {0} not found")]
    NotFound(String),
    #[error("network {0} has no allocated tag yet")]
    NoTag(String),
    #[error("network {net}: {reason}")]
    Invalid { net: String, reason: String },
}

/// netmaster's agent-visible state at one revision.
#[derive(Debug, Clone, Default)]
pub struct Mirror {
    pub revision: u64,
    pub networks: BTreeMap<String, Network>,
    pub net_oper: BTreeMap<String, NetOper>,
    pub global: Option<Global>,
    pub endpoints: BTreeMap<String, EndpointState>,
    pub nodes: BTreeMap<String, NodeInfo>,
    /// Endpoint groups, by key `tenant:group`.
    pub groups: BTreeMap<String, EndpointGroup>,
    /// Policies, by key `tenant:policy`.
    pub policies: BTreeMap<String, Policy>,
    /// Rules, by key `tenant:policy:rule`, parsed (netmaster refuses rules that do not parse;
    /// one that slipped through anyway is logged and left out, so it enforces nothing).
    pub rules: BTreeMap<String, RuleSpec>,
    /// Revision of the last change to what policy is compiled from (networks, groups, policies,
    /// rules, endpoints): a policy pass at an equal value has nothing new to compile.
    pub policy_revision: u64,
    /// Revision of the last change to the rule side of policy (networks, groups, policies,
    /// rules): compiled rules kept from a pass at an equal value are still right.
    pub rules_revision: u64,
    /// Netprofiles (bandwidth, burst, DSCP of groups), by key `tenant:profile`.
    pub net_profiles: BTreeMap<String, NetProfile>,
    /// Every other key (services), raw.
    pub other: BTreeMap<String, Value>,
}

fn typed<T: serde::de::DeserializeOwned>(v: &Option<Value>) -> Option<T> {
    v.as_ref()
        .and_then(|v| serde_json::from_value(v.clone()).ok())
}

fn set<T>(map: &mut BTreeMap<String, T>, k: &str, v: Option<T>) {
    match v {
        Some(v) => map.insert(k.to_string(), v),
        None => map.remove(k),
    };
}

impl Mirror {
    pub fn from_snapshot(s: &AgentSnapshot) -> Mirror {
        let mut m = Mirror {
            revision: s.revision,
            policy_revision: s.revision,
            rules_revision: s.revision,
            ..Default::default()
        };
        for kv in &s.kvs {
            m.apply_change(kv);
        }
        m
    }

    /// Applies one stream event (keepalives only move the revision).
    pub fn apply(&mut self, ev: &AgentEvent) {
        for c in &ev.changes {
            self.apply_change(c);
        }
        if ev.changes.iter().any(|c| policy_relevant(&c.key)) {
            self.policy_revision = self.policy_revision.max(ev.revision);
        }
        if ev.changes.iter().any(|c| rules_relevant(&c.key)) {
            self.rules_revision = self.rules_revision.max(ev.revision);
        }
        self.revision = self.revision.max(ev.revision);
    }

    fn apply_change(&mut self, c: &KvChange) {
        match keys::parse(&c.key) {
            Some(Parsed::Object(ObjectKind::Network, k)) => {
                set(&mut self.networks, k, typed(&c.value))
            }
            Some(Parsed::Object(ObjectKind::Global, _)) => self.global = typed(&c.value),
            Some(Parsed::NetOper(k)) => set(&mut self.net_oper, k, typed(&c.value)),
            Some(Parsed::Endpoint(k)) => set(&mut self.endpoints, k, typed(&c.value)),
            Some(Parsed::Node(k)) => set(&mut self.nodes, k, typed(&c.value)),
            Some(Parsed::Object(ObjectKind::EndpointGroup, k)) => {
                set(&mut self.groups, k, typed(&c.value))
            }
            Some(Parsed::Object(ObjectKind::Policy, k)) => {
                set(&mut self.policies, k, typed(&c.value))
            }
            Some(Parsed::Object(ObjectKind::NetProfile, k)) => {
                set(&mut self.net_profiles, k, typed(&c.value))
            }
            Some(Parsed::Object(ObjectKind::Rule, k)) => {
                let rule = typed::<Rule>(&c.value).and_then(|r| match RuleSpec::from_model(&r) {
                    Ok(spec) => Some(spec),
                    Err(e) => {
                        tracing::warn!("rule {k} not enforced: {e}");
                        None
                    }
                });
                set(&mut self.rules, k, rule)
            }
            _ => set(&mut self.other, &c.key, c.value.clone()),
        }
    }

    /// The cluster forwarding mode (global `fwdMode`), else `fallback`.
    pub fn fwd_mode(&self, fallback: FwdMode) -> FwdMode {
        match self.global.as_ref().map(|g| g.fwd_mode.as_str()) {
            Some("routing") => FwdMode::Routing,
            Some("bridge") => FwdMode::Bridge,
            _ => fallback,
        }
    }

    /// The datapath spec of network `key` ("tenant:network").
    pub fn network_spec(&self, key: &str, fallback: FwdMode) -> Result<NetworkSpec, SpecError> {
        let n = self
            .networks
            .get(key)
            .ok_or_else(|| SpecError::NotFound(key.to_string()))?;
        let invalid = |reason: String| SpecError::Invalid {
            net: key.to_string(),
            reason,
        };
        let subnet =
            parse_subnet(&n.subnet).ok_or_else(|| invalid(format!("subnet {:?}", n.subnet)))?;
        let gateway: Ipv4Addr = n.gateway.parse().map_err(|_| {
            invalid("has no IPv4 gateway (the linux datapath routes through one)".into())
        })?;
        let encap = if n.encap == "vlan" {
            Encap::Vlan
        } else {
            Encap::Vxlan
        };
        let oper = self.net_oper.get(key);
        let vni = oper.map_or(0, |o| o.ext_pkt_tag);
        if vni == 0 && encap == Encap::Vxlan {
            return Err(SpecError::NoTag(key.to_string()));
        }
        Ok(NetworkSpec {
            id: key.to_string(),
            tenant: n.tenant_name.clone(),
            vni,
            subnet,
            gateway,
            fwd_mode: self.fwd_mode(fallback),
            encap,
            mtu: 0,
        })
    }

    /// Keys of every network of `tenant`.
    pub fn tenant_networks(&self, tenant: &str) -> Vec<String> {
        self.networks
            .iter()
            .filter(|(_, n)| n.tenant_name == tenant)
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Endpoints of network `key` homed on another host with a usable VTEP, sorted by id.
    pub fn remote_endpoints(&self, key: &str, host: &str) -> Vec<RemoteEndpoint> {
        self.endpoints
            .values()
            .filter(|e| e.in_network(key) && e.homing_host != host)
            .filter_map(|e| remote_of(e, key))
            .collect()
    }

    /// The policy compiler's input: every network, group, rule and endpoint mirrored.
    pub fn policy_input(&self) -> PolicyInput {
        let (mut input, _) = contiv_policy::input_from_objects(
            self.networks.values(),
            self.groups.values(),
            std::iter::empty(),
            self.endpoints.values(),
        );
        input.rules = self.rules.values().cloned().collect();
        input
    }

    /// The compiler's input without the rule side (endpoints only), for a pass that keeps its
    /// compiled rules.
    pub fn policy_members_input(&self) -> PolicyInput {
        PolicyInput {
            endpoints: self
                .endpoints
                .values()
                .filter_map(contiv_policy::objects::member)
                .collect(),
            ..Default::default()
        }
    }

    /// Ids of every endpoint netmaster holds.
    pub fn endpoint_ids(&self) -> impl Iterator<Item = &str> + '_ {
        self.endpoints.keys().map(String::as_str)
    }

    /// Endpoints netmaster believes are homed on `host`.
    pub fn host_endpoints<'a>(
        &'a self,
        host: &'a str,
    ) -> impl Iterator<Item = &'a EndpointState> + 'a {
        self.endpoints
            .values()
            .filter(move |e| e.homing_host == host)
    }
}

/// Whether a key is part of what policy is compiled from.
fn policy_relevant(key: &str) -> bool {
    matches!(keys::parse(key), Some(Parsed::Endpoint(_))) || rules_relevant(key)
}

/// Whether a key is part of the rule side of policy.
fn rules_relevant(key: &str) -> bool {
    matches!(
        keys::parse(key),
        Some(Parsed::Object(
            ObjectKind::Network | ObjectKind::EndpointGroup | ObjectKind::Policy | ObjectKind::Rule,
            _
        ))
    )
}

fn remote_of(e: &EndpointState, key: &str) -> Option<RemoteEndpoint> {
    let vtep: Ipv4Addr = e.vtep_ip.parse().ok()?;
    let ip: Ipv4Addr = e.ip_address.parse().ok()?;
    let mac = e
        .mac_address
        .parse()
        .unwrap_or_else(|_| MacAddr::from_ipv4(ip));
    Some(RemoteEndpoint {
        id: e.id.clone(),
        network_id: key.to_string(),
        ip,
        mac,
        vtep,
    })
}

pub use contiv_policy::parse_subnet;

/// The mirror shared between the follower (writer) and everyone else (readers), with a change
/// counter to wait on.
#[derive(Default)]
pub struct SharedMirror {
    state: RwLock<Option<Mirror>>,
    changes: Mutex<u64>,
    cond: Condvar,
}

impl SharedMirror {
    pub fn new() -> Self {
        Self::default()
    }

    /// The mirror, `None` until the first snapshot arrived.
    pub fn read(&self) -> RwLockReadGuard<'_, Option<Mirror>> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn bump(&self) {
        *self.counter() += 1;
        self.cond.notify_all();
    }

    fn counter(&self) -> MutexGuard<'_, u64> {
        self.changes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Replaces the whole mirror (a snapshot).
    pub fn replace(&self, m: Mirror) {
        *self.state.write().unwrap_or_else(|p| p.into_inner()) = Some(m);
        self.bump();
    }

    /// Applies one event; returns whether it changed anything (not a keepalive).
    pub fn apply(&self, ev: &AgentEvent) -> bool {
        let mut g = self.state.write().unwrap_or_else(|p| p.into_inner());
        if let Some(m) = g.as_mut() {
            m.apply(ev);
        }
        drop(g);
        if ev.changes.is_empty() {
            return false;
        }
        self.bump();
        true
    }

    /// Waits until `pred` holds on the mirror, or `timeout` passes; returns whether it holds.
    pub fn wait_for(&self, timeout: Duration, pred: impl Fn(&Mirror) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut seen = self.counter();
        loop {
            if self.read().as_ref().is_some_and(&pred) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            seen = self
                .cond
                .wait_timeout(seen, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn kv(key: String, v: Value) -> KvChange {
        KvChange {
            key,
            value: Some(v),
        }
    }

    fn snapshot() -> AgentSnapshot {
        AgentSnapshot {
            revision: 7,
            kvs: vec![
                kv(
                    keys::object(ObjectKind::Global, "global"),
                    json!({"name":"global","fwdMode":"routing"}),
                ),
                kv(
                    keys::object(ObjectKind::Network, "t:n"),
                    json!({"tenantName":"t","networkName":"n","subnet":"10.1.0.10-10.1.0.99/24","gateway":"10.1.0.1","encap":"vxlan"}),
                ),
                kv(keys::net_oper("t:n"), json!({"pktTag":1,"extPktTag":5001})),
                kv(
                    keys::endpoint("n.t-a"),
                    json!({"id":"n.t-a","tenantName":"t","networkName":"n","ipAddress":"10.1.0.10","macAddress":"02:02:0a:01:00:0a","homingHost":"h1","vtepIP":"10.255.0.1"}),
                ),
                kv(
                    keys::endpoint("n.t-b"),
                    json!({"id":"n.t-b","tenantName":"t","networkName":"n","ipAddress":"10.1.0.11","homingHost":"h2","vtepIP":"10.255.0.2"}),
                ),
                kv("/contiv/obj/policy/t:p".into(), json!({"policyName":"p"})),
                kv(
                    "/contiv/obj/rule/t:p:1".into(),
                    json!({"tenantName":"t","policyName":"p","ruleId":"1","direction":"in","action":"deny","priority":1}),
                ),
                kv(
                    "/contiv/obj/rule/t:p:2".into(),
                    json!({"tenantName":"t","policyName":"p","ruleId":"2","direction":"in","action":"deny","priority":1,"port":80}),
                ),
                kv(
                    "/contiv/obj/netprofile/t:np".into(),
                    json!({"profileName":"np"}),
                ),
            ],
        }
    }

    #[test]
    fn snapshot_specs_and_remotes() {
        let m = Mirror::from_snapshot(&snapshot());
        let spec = m.network_spec("t:n", FwdMode::Bridge).expect("spec");
        assert_eq!((spec.vni, spec.fwd_mode), (5001, FwdMode::Routing));
        assert_eq!(spec.subnet.to_string(), "10.1.0.0/24");
        let r = m.remote_endpoints("t:n", "h1");
        assert_eq!(r.len(), 1);
        assert_eq!(
            (r[0].ip, r[0].vtep),
            (Ipv4Addr::new(10, 1, 0, 11), Ipv4Addr::new(10, 255, 0, 2))
        );
        assert_eq!(r[0].mac.to_string(), "02:02:0a:01:00:0b");
        assert_eq!(m.net_profiles["t:np"].profile_name, "np");
        assert_eq!(m.policies.len(), 1);
        // The rule with a port but no protocol cannot be enforced as written: left out.
        assert_eq!(m.rules.keys().collect::<Vec<_>>(), ["t:p:1"]);
        assert_eq!(m.policy_input().rules.len(), 1);
        assert!(matches!(
            m.network_spec("t:x", FwdMode::Bridge),
            Err(SpecError::NotFound(_))
        ));
    }

    #[test]
    fn events_advance_and_delete() {
        let shared = SharedMirror::new();
        shared.replace(Mirror::from_snapshot(&snapshot()));
        let ev = AgentEvent {
            revision: 9,
            changes: vec![KvChange {
                key: keys::endpoint("n.t-b"),
                value: None,
            }],
            resync: false,
        };
        assert!(shared.apply(&ev));
        assert!(shared.wait_for(Duration::from_millis(10), |m| m.revision == 9));
        let g = shared.read();
        let m = g.as_ref().expect("mirror");
        assert!(m.remote_endpoints("t:n", "h1").is_empty());
        drop(g);
        assert!(!shared.apply(&AgentEvent {
            revision: 9,
            ..Default::default()
        }));
    }
}
