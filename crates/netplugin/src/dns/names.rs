//! Name resolution as data: [`Table`] holds, per tenant, every name the agent answers (built
//! from the mirror by [`Table::from_mirror`]), and [`Table::resolve`] answers one question
//! without any I/O.
//!
//! The scheme (documented in the README): inside tenant `T` the agent is authoritative for
//! `T.contiv` (lowercase). A name is
//! - a service load balancer's `serviceName`: its VIP;
//! - an endpoint group's name: every member's address (cluster-wide, sorted; none for a group
//!   without members);
//! - a workload's name: its address. For Kubernetes pods (`epCommonName` = `namespace/pod`) both
//!   `pod` and `pod.namespace`.
//!
//! Each may be asked bare (`web`, as Contiv answered) or qualified (`web.T.contiv`, what the
//! search domain makes of `web`). On a clash a service wins over a group, a group over a
//! workload. A name of `T.contiv` that is not known is NXDOMAIN; names under another tenant's
//! domain are NXDOMAIN too (a tenant never sees another's names); any other unknown name is
//! forwarded to the host's resolvers.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::Ipv4Addr;
use std::sync::{Arc, RwLock};

use crate::mirror::Mirror;

/// The parent domain of every tenant's zone.
pub const ZONE: &str = "contiv";
/// TTL of every answer, in seconds: short, so a resolver that caches follows changes soon.
pub const TTL: u32 = 5;

/// A tenant's domain: `<tenant>.contiv`, lowercase.
pub fn tenant_domain(tenant: &str) -> String {
    format!("{}.{ZONE}", tenant.to_ascii_lowercase())
}

/// What the agent says to one question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The name is ours: these addresses (A), or no record of the asked type (empty).
    Records(Vec<Ipv4Addr>),
    /// The name is under `contiv` but unknown: NXDOMAIN.
    NxDomain,
    /// Not ours: ask the host's resolvers.
    Forward,
}

/// Record types the resolver distinguishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QType {
    /// A (and ANY): the addresses.
    A,
    /// Any other type: a known name has no such record (NOERROR, no answer).
    Other,
}

/// Every tenant's names, lowercase, relative to the tenant's domain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    tenants: HashMap<String, HashMap<String, Vec<Ipv4Addr>>>,
}

/// A [`Table`] shared between the builder (on every mirror change) and the servers.
#[derive(Debug, Default)]
pub struct SharedTable(RwLock<Arc<Table>>);

impl SharedTable {
    /// The table in force (a cheap clone of an `Arc`).
    pub fn get(&self) -> Arc<Table> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Replaces the table; returns whether it changed.
    pub fn set(&self, t: Table) -> bool {
        let mut g = self.0.write().unwrap_or_else(|p| p.into_inner());
        if **g == t {
            return false;
        }
        *g = Arc::new(t);
        true
    }
}

/// Names of one tenant as they are collected, by priority (workloads, groups, services).
#[derive(Default)]
struct Collect {
    workloads: BTreeMap<String, BTreeSet<Ipv4Addr>>,
    groups: BTreeMap<String, BTreeSet<Ipv4Addr>>,
    services: BTreeMap<String, Ipv4Addr>,
}

impl Collect {
    fn into_names(self) -> HashMap<String, Vec<Ipv4Addr>> {
        let mut out: HashMap<String, Vec<Ipv4Addr>> = HashMap::new();
        for (n, a) in self.workloads.into_iter().chain(self.groups) {
            out.insert(n, a.into_iter().collect());
        }
        for (n, a) in self.services {
            out.insert(n, vec![a]);
        }
        out
    }
}

/// A usable name: lowercase, non-empty, without leading/trailing dots.
fn name_of(s: &str) -> Option<String> {
    let s = s.trim().trim_matches('.').to_ascii_lowercase();
    (!s.is_empty() && !s.contains("..")).then_some(s)
}

/// Names of a workload from its `epCommonName` (`namespace/pod` for pods).
fn workload_names(common: &str) -> Vec<String> {
    match common.split_once('/') {
        Some((ns, pod)) => [name_of(pod), name_of(&format!("{pod}.{ns}"))]
            .into_iter()
            .flatten()
            .collect(),
        None => name_of(common).into_iter().collect(),
    }
}

impl Table {
    /// Every tenant's names in the mirror: endpoints (groups and workloads) and services with
    /// a VIP.
    pub fn from_mirror(m: &Mirror) -> Table {
        let mut by_tenant: BTreeMap<String, Collect> = BTreeMap::new();
        for e in m.endpoints.values() {
            let Ok(ip) = e.ip_address.parse::<Ipv4Addr>() else {
                continue;
            };
            let c = by_tenant.entry(e.tenant_name.clone()).or_default();
            for n in workload_names(&e.ep_common_name) {
                c.workloads.entry(n).or_default().insert(ip);
            }
            if let Some(g) = name_of(&e.service_name) {
                c.groups.entry(g).or_default().insert(ip);
            }
        }
        // A group without members is still a name (an empty answer, not forwarded).
        for g in m.groups.values() {
            if let Some(n) = name_of(&g.group_name) {
                let c = by_tenant.entry(g.tenant_name.clone()).or_default();
                c.groups.entry(n).or_default();
            }
        }
        for (svc, vip) in crate::services::services(m) {
            let Some(vip) = vip else {
                continue;
            };
            if let Some(n) = name_of(&svc.service_name) {
                let c = by_tenant.entry(svc.tenant_name.clone()).or_default();
                c.services.insert(n, vip);
            }
        }
        Table {
            tenants: by_tenant
                .into_iter()
                .map(|(t, c)| (t, c.into_names()))
                .collect(),
        }
    }

    /// Answers `name` (any case, with or without the final dot) of type `qtype`, asked in
    /// `tenant`.
    pub fn resolve(&self, tenant: &str, name: &str, qtype: QType) -> Answer {
        let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
        let names = self.tenants.get(tenant);
        let domain = tenant_domain(tenant);
        let found = |rel: &str| names.and_then(|n| n.get(rel));
        let records = |addrs: &Vec<Ipv4Addr>| match qtype {
            QType::A => Answer::Records(addrs.clone()),
            QType::Other => Answer::Records(Vec::new()),
        };
        if name == domain {
            return Answer::Records(Vec::new());
        }
        if let Some(rel) = name.strip_suffix(domain.as_str()) {
            if let Some(rel) = rel.strip_suffix('.') {
                return found(rel).map_or(Answer::NxDomain, records);
            }
        }
        if name == ZONE || name.strip_suffix(ZONE).is_some_and(|r| r.ends_with('.')) {
            return Answer::NxDomain;
        }
        found(&name).map_or(Answer::Forward, records)
    }

    /// Tenants with at least one name.
    pub fn tenants(&self) -> impl Iterator<Item = &str> {
        self.tenants.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use contiv_api::keys;
    use contiv_model::ObjectKind;

    use super::*;
    use contiv_api::agent::{AgentSnapshot, KvChange};
    use serde_json::{json, Value};

    fn kv(key: String, v: Value) -> KvChange {
        KvChange {
            key,
            value: Some(v),
        }
    }

    fn ep(id: &str, tenant: &str, group: &str, ip: &str, common: &str) -> KvChange {
        kv(
            keys::endpoint(id),
            json!({"id": id, "tenantName": tenant, "networkName": "n", "serviceName": group,
                "ipAddress": ip, "epCommonName": common, "homingHost": "h1"}),
        )
    }

    fn mirror() -> Mirror {
        Mirror::from_snapshot(&AgentSnapshot {
            revision: 3,
            kvs: vec![
                ep("a", "t1", "Web", "10.1.0.3", "prod/web-1"),
                ep("b", "t1", "web", "10.1.0.2", ""),
                ep("c", "t1", "db", "10.1.0.4", "db-0"),
                ep("d", "t2", "web", "10.1.0.9", ""),
                ep("e", "t1", "", "not an address", "x"),
                kv(
                    keys::object(ObjectKind::ServiceLb, "t1:api"),
                    json!({"tenantName": "t1", "serviceName": "api", "networkName": "n",
                        "selectors": ["app=api"]}),
                ),
                kv(
                    keys::service_oper("t1:api"),
                    json!({"serviceVip": "10.1.0.100"}),
                ),
                // configured address, no oper key yet
                kv(
                    keys::object(ObjectKind::ServiceLb, "t2:db"),
                    json!({"tenantName": "t2", "serviceName": "db", "networkName": "n",
                        "ipAddress": "10.1.0.200"}),
                ),
                // a service named like a group wins
                kv(
                    keys::object(ObjectKind::ServiceLb, "t1:db"),
                    json!({"tenantName": "t1", "serviceName": "db", "networkName": "n"}),
                ),
                kv(
                    keys::service_oper("t1:db"),
                    json!({"serviceVip": "10.1.0.101"}),
                ),
                kv(
                    keys::object(ObjectKind::EndpointGroup, "t2:empty"),
                    json!({"tenantName": "t2", "groupName": "empty", "networkName": "n"}),
                ),
            ],
        })
    }

    fn a(ips: &[&str]) -> Answer {
        Answer::Records(ips.iter().map(|i| i.parse().expect("ip")).collect())
    }

    #[test]
    fn services_groups_and_workloads() {
        let t = Table::from_mirror(&mirror());
        assert_eq!(t.resolve("t1", "api.", QType::A), a(&["10.1.0.100"]));
        assert_eq!(
            t.resolve("t1", "WEB.t1.contiv.", QType::A),
            a(&["10.1.0.2", "10.1.0.3"]),
            "group: every member, sorted, any case"
        );
        assert_eq!(t.resolve("t1", "web-1", QType::A), a(&["10.1.0.3"]));
        assert_eq!(t.resolve("t1", "web-1.prod", QType::A), a(&["10.1.0.3"]));
        assert_eq!(
            t.resolve("t1", "web-1.prod.t1.contiv.", QType::A),
            a(&["10.1.0.3"])
        );
        assert_eq!(t.resolve("t1", "db-0.", QType::A), a(&["10.1.0.4"]));
        assert_eq!(t.resolve("t1", "db", QType::A), a(&["10.1.0.101"]));
        assert_eq!(t.resolve("t2", "db", QType::A), a(&["10.1.0.200"]));
        assert_eq!(
            t.resolve("t1", "x", QType::A),
            Answer::Forward,
            "no address"
        );
    }

    #[test]
    fn tenants_see_only_their_own_names() {
        let t = Table::from_mirror(&mirror());
        assert_eq!(t.resolve("t2", "web.", QType::A), a(&["10.1.0.9"]));
        assert_eq!(
            t.resolve("t2", "empty", QType::A),
            a(&[]),
            "known, no member"
        );
        assert_eq!(t.resolve("t1", "empty", QType::A), Answer::Forward);
        assert_eq!(t.resolve("t2", "api.", QType::A), Answer::Forward);
        assert_eq!(
            t.resolve("t2", "api.t1.contiv.", QType::A),
            Answer::NxDomain
        );
        assert_eq!(
            t.resolve("t2", "api.t2.contiv.", QType::A),
            Answer::NxDomain
        );
        assert_eq!(t.resolve("t3", "web", QType::A), Answer::Forward);
        assert_eq!(t.resolve("t3", "web.t3.contiv", QType::A), Answer::NxDomain);
    }

    #[test]
    fn other_types_and_misses() {
        let t = Table::from_mirror(&mirror());
        assert_eq!(
            t.resolve("t1", "api.", QType::Other),
            a(&[]),
            "AAAA: no data"
        );
        assert_eq!(t.resolve("t1", "t1.contiv.", QType::A), a(&[]), "apex");
        assert_eq!(t.resolve("t1", "example.org.", QType::A), Answer::Forward);
        assert_eq!(t.resolve("t1", "contiv.", QType::A), Answer::NxDomain);
        assert_eq!(t.resolve("t1", "xt1.contiv.", QType::A), Answer::NxDomain);
    }

    #[test]
    fn shared_table_reports_changes() {
        let s = SharedTable::default();
        assert!(!s.set(Table::default()));
        let t = Table::from_mirror(&mirror());
        assert!(s.set(t.clone()));
        assert!(!s.set(t));
        assert_eq!(s.get().tenants().count(), 2);
    }
}
