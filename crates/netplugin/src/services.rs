//! East-west service load balancing on this host: each serviceLB of a tenant with workloads here
//! becomes a [`ServiceSpec`] (its VIP, port maps, and the addresses of the endpoints of its
//! network whose labels match every selector), computed from the mirror by pure functions and
//! handed to the [`ServiceDriver`] per tenant. The service loop follows the mirror: a provider
//! that comes, goes or changes labels is balanced to (or not) as soon as its event arrives.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::time::Duration;

use contiv_api::keys::{self, Parsed};
use contiv_api::ServiceOper;
use contiv_datapath::{ServiceDriver, ServicePort, ServiceSpec, TenantServices};
use contiv_model::{ObjectKind, ServiceLb};

use crate::agent::Agent;
use crate::follow::Stop;
use crate::mirror::Mirror;
use crate::records::Phase;

/// Every serviceLB the mirror holds, with its VIP (the one netmaster allocated, else the
/// configured address; `None` when neither is known yet).
pub fn services(m: &Mirror) -> Vec<(ServiceLb, Option<Ipv4Addr>)> {
    let mut out = Vec::new();
    for (key, value) in &m.other {
        let Some(Parsed::Object(ObjectKind::ServiceLb, k)) = keys::parse(key) else {
            continue;
        };
        let Ok(svc) = serde_json::from_value::<ServiceLb>(value.clone()) else {
            continue;
        };
        let oper = m
            .other
            .get(&keys::service_oper(k))
            .and_then(|v| serde_json::from_value::<ServiceOper>(v.clone()).ok())
            .map(|o| o.service_vip)
            .filter(|v| !v.is_empty());
        let vip = oper
            .unwrap_or_else(|| svc.ip_address.clone())
            .split('/')
            .next()
            .and_then(|v| v.trim().parse().ok());
        out.push((svc, vip));
    }
    out
}

/// `key=value` selectors (netmaster refuses others; one that slipped through selects nothing).
fn selectors(svc: &ServiceLb) -> Option<Vec<(&str, &str)>> {
    svc.selectors.iter().map(|s| s.split_once('=')).collect()
}

/// What each of `tenants` must balance (every tenant listed gets an entry, empty if it has no
/// service, so the caller can tell "nothing" from "not computed").
pub fn desired(m: &Mirror, tenants: &BTreeSet<String>) -> BTreeMap<String, TenantServices> {
    let mut out: BTreeMap<String, TenantServices> = tenants
        .iter()
        .map(|t| {
            (
                t.clone(),
                TenantServices {
                    tenant: t.clone(),
                    services: Vec::new(),
                },
            )
        })
        .collect();
    for (svc, vip) in services(m) {
        let (Some(entry), Some(vip), Some(sel)) =
            (out.get_mut(&svc.tenant_name), vip, selectors(&svc))
        else {
            continue;
        };
        let mut providers: Vec<Ipv4Addr> = m
            .endpoints
            .values()
            .filter(|ep| ep.tenant_name == svc.tenant_name && ep.network_name == svc.network_name)
            .filter(|ep| {
                sel.iter()
                    .all(|(k, v)| ep.labels.get(*k).is_some_and(|have| have == v))
            })
            .filter_map(|ep| ep.ip_address.split('/').next()?.parse().ok())
            .collect();
        providers.sort();
        providers.dedup();
        let mut ports: Vec<ServicePort> = svc
            .ports
            .iter()
            .filter_map(|p| ServicePort::parse(p))
            .collect();
        ports.sort();
        ports.dedup();
        entry.services.push(ServiceSpec {
            name: format!("{}:{}", svc.tenant_name, svc.service_name),
            vip,
            ports,
            providers,
        });
    }
    for t in out.values_mut() {
        t.services.sort();
    }
    out
}

/// How long the loop waits for a mirror change before a pass anyway (re-checks what the kernel
/// has, e.g. a tenant namespace that was rebuilt).
const SAFETY_PASS: Duration = Duration::from_secs(30);
/// Pause before retrying a pass that failed (e.g. the tenant namespace of a first ADD is being
/// made).
const RETRY: Duration = Duration::from_millis(200);

/// Follows the mirror and keeps every local tenant's balancing as [`desired`] says, until `stop`.
pub fn service_loop(agent: &Agent, driver: &dyn ServiceDriver, stop: &Stop) {
    let mut seen = 0u64;
    let mut applied: BTreeSet<String> = BTreeSet::new();
    while !stop.is_raised() {
        // Wake on the next mirror change (1 s slices, to notice `stop`).
        let mut waited = Duration::ZERO;
        while waited < SAFETY_PASS
            && !agent
                .mirror
                .wait_for(Duration::from_secs(1), |m| m.revision > seen)
        {
            if stop.is_raised() {
                return;
            }
            waited += Duration::from_secs(1);
        }
        let (revision, wanted) = {
            let guard = agent.mirror.read();
            let Some(m) = guard.as_ref() else {
                continue;
            };
            let tenants: BTreeSet<String> = agent
                .records
                .list()
                .into_iter()
                .filter(|a| a.phase != Phase::Releasing)
                .map(|a| a.tenant)
                .collect();
            (m.revision, desired(m, &tenants))
        };
        let mut failed = false;
        for (tenant, want) in &wanted {
            if want.services.is_empty() && !applied.contains(tenant) {
                continue;
            }
            match driver.apply(want) {
                Ok(_) => {
                    applied.insert(tenant.clone());
                }
                Err(e) => {
                    tracing::warn!("service balancing of tenant {tenant}: {e}");
                    failed = true;
                }
            }
        }
        for gone in applied
            .iter()
            .filter(|t| !wanted.contains_key(*t))
            .cloned()
            .collect::<Vec<_>>()
        {
            match driver.forget(&gone) {
                Ok(()) => {
                    applied.remove(&gone);
                }
                Err(e) => {
                    tracing::warn!("removing service balancing of tenant {gone}: {e}");
                    failed = true;
                }
            }
        }
        if failed {
            if stop.sleep(RETRY) {
                return;
            }
        } else {
            seen = revision;
        }
    }
}

#[cfg(test)]
mod tests {
    use contiv_api::agent::{AgentEvent, KvChange};
    use contiv_api::EndpointState;
    use serde_json::json;

    use super::*;

    fn ep(id: &str, net: &str, ip: &str, labels: &[(&str, &str)]) -> KvChange {
        let e = EndpointState {
            id: id.into(),
            tenant_name: "t".into(),
            network_name: net.into(),
            ip_address: ip.into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        };
        KvChange {
            key: keys::endpoint(id),
            value: serde_json::to_value(e).ok(),
        }
    }

    fn mirror(changes: Vec<KvChange>) -> Mirror {
        let mut m = Mirror::default();
        m.apply(&AgentEvent {
            revision: 1,
            changes,
            resync: false,
        });
        m
    }

    #[test]
    fn providers_are_the_endpoints_of_the_network_matching_every_selector() {
        let m = mirror(vec![
            KvChange {
                key: keys::object(ObjectKind::ServiceLb, "t:web"),
                value: Some(
                    json!({"tenantName": "t", "serviceName": "web", "networkName": "n",
                    "selectors": ["app=web", "tier=fe"], "ports": ["80:8080:TCP", "81:8081:udp", "bad"]}),
                ),
            },
            KvChange {
                key: keys::service_oper("t:web"),
                value: Some(json!({"serviceVip": "10.1.0.100"})),
            },
            ep("n.t-a", "n", "10.1.0.3", &[("app", "web"), ("tier", "fe")]),
            ep(
                "n.t-b",
                "n",
                "10.1.0.2",
                &[("app", "web"), ("tier", "fe"), ("x", "y")],
            ),
            ep("n.t-c", "n", "10.1.0.4", &[("app", "web")]),
            ep("m.t-d", "m", "10.2.0.2", &[("app", "web"), ("tier", "fe")]),
        ]);
        let tenants: BTreeSet<String> = ["t".to_string(), "other".to_string()].into();
        let d = desired(&m, &tenants);
        assert_eq!(d["other"].services, vec![]);
        let svc = &d["t"].services[0];
        assert_eq!(svc.name, "t:web");
        assert_eq!(svc.vip, Ipv4Addr::new(10, 1, 0, 100));
        assert_eq!(
            svc.providers,
            vec![Ipv4Addr::new(10, 1, 0, 2), Ipv4Addr::new(10, 1, 0, 3)]
        );
        assert_eq!(svc.ports.len(), 2, "{:?}", svc.ports);
    }

    #[test]
    fn a_service_without_a_known_vip_or_of_a_tenant_not_here_is_left_out() {
        let m = mirror(vec![KvChange {
            key: keys::object(ObjectKind::ServiceLb, "t:novip"),
            value: Some(
                json!({"tenantName": "t", "serviceName": "novip", "networkName": "n",
                "selectors": ["app=x"], "ports": ["80:80:TCP"]}),
            ),
        }]);
        let d = desired(&m, &["t".to_string()].into());
        assert!(d["t"].services.is_empty());
        assert!(desired(&m, &BTreeSet::new()).is_empty());
    }
}
