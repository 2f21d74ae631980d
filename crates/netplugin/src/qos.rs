//! Netprofiles on this host: a pass computes the desired QoS of every local endpoint from the
//! mirror (attachment → its group → the group's `netProfile` → bandwidth, burst, DSCP) and
//! hands each tenant's to the QoS driver, which changes only what differs (so a pass with
//! nothing new costs no kernel call). Passes run on the policy loop after each policy pass
//! (the same kicks: every mirror change, so a profile edited or a group (de)attached applies
//! live, and every ADD and DEL), and for the new endpoint's tenant at the end of an ADD, so a
//! workload starts limited. A restarted agent's first pass converges by diff against what the
//! driver reads back from the kernel.
//!
//! QoS fails open: an ADD does not fail because its limit could not be set (the loop tries
//! again on the next pass); a value the agent cannot parse (netmaster refuses them) is logged
//! and left out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Mutex;

use contiv_datapath::{EndpointQos, QosStats, RateLimit, TenantQos};
use contiv_model::NetProfile;

use crate::agent::{lock, Agent};
use crate::mirror::Mirror;
use crate::records::{Attachment, Phase};

/// What the QoS passes share.
#[derive(Default)]
pub struct QosState {
    /// Tenants handed to the driver by the last full pass (the others are forgotten). Held
    /// for the length of a pass: passes (loop and ADDs) do not overlap.
    tenants: Mutex<BTreeSet<String>>,
}

/// Numbers of one pass.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QosPass {
    pub tenants: usize,
    /// Endpoints whose limits were changed in the kernel.
    pub changed: usize,
    pub pending: usize,
    pub errors: usize,
}

/// The QoS a netprofile asks for (`None` fields: nothing to enforce, or a value that does not
/// parse, logged).
fn profile_qos(key: &str, p: &NetProfile) -> (Option<RateLimit>, Option<u8>) {
    let burst = ok(key, "burst", p.burst_bytes());
    let limit = ok(key, "bandwidth", p.bandwidth_bps()).map(|bps| RateLimit::new(bps, burst));
    (limit, ok(key, "DSCP", p.dscp_value()))
}

/// The value, or `None` with a warning.
fn ok<T>(key: &str, what: &str, r: Result<Option<T>, contiv_model::QosValueError>) -> Option<T> {
    r.unwrap_or_else(|e| {
        tracing::warn!(netprofile = %key, "{what} not enforced: {e}");
        None
    })
}

/// The desired QoS of every local endpoint in `live` (all but those being released), per
/// tenant, from the mirror's groups and netprofiles. Pure.
pub fn desired_qos(m: &Mirror, live: &[Attachment]) -> BTreeMap<String, TenantQos> {
    let mut out: BTreeMap<String, TenantQos> = BTreeMap::new();
    for a in live.iter().filter(|a| a.phase != Phase::Releasing) {
        let profile = a
            .group
            .as_deref()
            .and_then(|g| m.groups.get(&format!("{}:{g}", a.tenant)))
            .filter(|g| !g.net_profile.is_empty())
            .map(|g| format!("{}:{}", a.tenant, g.net_profile))
            .and_then(|k| m.net_profiles.get(&k).map(|p| (k, p)));
        let (limit, dscp) = profile.map_or((None, None), |(k, p)| profile_qos(&k, p));
        let t = out.entry(a.tenant.clone()).or_insert_with(|| TenantQos {
            tenant: a.tenant.clone(),
            ..Default::default()
        });
        t.endpoints.insert(
            a.endpoint_id.clone(),
            EndpointQos {
                id: a.endpoint_id.clone(),
                network_id: a.network_key(),
                netns_path: PathBuf::from(&a.netns),
                ifname: a.ifname.clone(),
                limit,
                dscp,
            },
        );
    }
    out
}

impl Agent {
    /// One QoS pass over every tenant with a local endpoint (see the module docs).
    pub fn enforce_qos(&self) -> QosPass {
        self.qos_pass(None)
    }

    /// A QoS pass for `tenant` only (the end of an ADD).
    pub(crate) fn enforce_qos_of(&self, tenant: &str) -> QosPass {
        self.qos_pass(Some(tenant))
    }

    fn qos_pass(&self, only: Option<&str>) -> QosPass {
        let mut applied = lock(&self.qos_state.tenants);
        let live = self.records.list();
        let wanted = {
            let guard = self.mirror.read();
            // Without netmaster's state no profile is known: keep what is installed.
            let Some(m) = guard.as_ref() else {
                return QosPass::default();
            };
            desired_qos(m, &live)
        };
        let mut pass = QosPass::default();
        for (tenant, q) in wanted.iter().filter(|(t, _)| only.is_none_or(|o| o == *t)) {
            pass.tenants += 1;
            match self.qos.apply(q) {
                Ok(QosStats {
                    changed, pending, ..
                }) => {
                    pass.changed += changed;
                    pass.pending += pending;
                }
                Err(e) => {
                    pass.errors += 1;
                    tracing::warn!(tenant = %tenant, "netprofile not applied: {e}");
                }
            }
        }
        if only.is_none() {
            let now: BTreeSet<String> = wanted.keys().cloned().collect();
            for gone in applied.difference(&now) {
                self.qos.forget(gone);
            }
            *applied = now;
        }
        if pass.changed > 0 {
            tracing::debug!(changed = pass.changed, "netprofiles applied");
        }
        pass
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use contiv_api::agent::{AgentSnapshot, KvChange};
    use contiv_api::keys;
    use contiv_model::ObjectKind;
    use serde_json::json;

    fn kv(kind: ObjectKind, key: &str, v: serde_json::Value) -> KvChange {
        KvChange {
            key: keys::object(kind, key),
            value: Some(v),
        }
    }

    fn att(id: &str, tenant: &str, group: Option<&str>, phase: Phase) -> Attachment {
        Attachment {
            container_id: id.into(),
            ifname: "eth0".into(),
            netns: format!("/run/netns/{id}"),
            tenant: tenant.into(),
            network: "n".into(),
            group: group.map(Into::into),
            endpoint_id: format!("ep-{id}"),
            ip: "10.1.0.2/24".into(),
            phase,
            ..Default::default()
        }
    }

    #[test]
    fn endpoints_get_their_groups_profile() {
        let m = Mirror::from_snapshot(&AgentSnapshot {
            revision: 1,
            kvs: vec![
                kv(
                    ObjectKind::NetProfile,
                    "t:gold",
                    json!({"tenantName":"t","profileName":"gold","bandwidth":"10mbps","DSCP":46,"burst":20}),
                ),
                kv(
                    ObjectKind::NetProfile,
                    "t:bad",
                    json!({"tenantName":"t","profileName":"bad","bandwidth":"fast","DSCP":10}),
                ),
                kv(
                    ObjectKind::EndpointGroup,
                    "t:web",
                    json!({"tenantName":"t","groupName":"web","networkName":"n","netProfile":"gold"}),
                ),
                kv(
                    ObjectKind::EndpointGroup,
                    "t:odd",
                    json!({"tenantName":"t","groupName":"odd","networkName":"n","netProfile":"bad"}),
                ),
                kv(
                    ObjectKind::EndpointGroup,
                    "t:db",
                    json!({"tenantName":"t","groupName":"db","networkName":"n"}),
                ),
            ],
        });
        let live = [
            att("a", "t", Some("web"), Phase::Ready),
            att("b", "t", Some("db"), Phase::Ready),
            att("c", "t", None, Phase::Adding),
            att("d", "t", Some("odd"), Phase::Ready),
            att("e", "t", Some("web"), Phase::Releasing),
            att("f", "u", Some("web"), Phase::Ready),
        ];
        let d = desired_qos(&m, &live);
        let t = &d["t"];
        assert_eq!(t.endpoints.len(), 4, "all but the released one");
        let a = &t.endpoints["ep-a"];
        assert_eq!(
            (a.limit, a.dscp),
            (
                Some(RateLimit {
                    bits_per_sec: 10_000_000,
                    burst_bytes: 20 * 1024
                }),
                Some(46)
            )
        );
        assert_eq!(a.netns_path, PathBuf::from("/run/netns/a"));
        assert_eq!(a.network_id, "t:n");
        assert!(!t.endpoints["ep-b"].is_set(), "db has no profile");
        assert!(!t.endpoints["ep-c"].is_set(), "no group");
        let odd = &t.endpoints["ep-d"];
        assert_eq!(
            (odd.limit, odd.dscp),
            (None, Some(10)),
            "a bad value is left out"
        );
        assert!(
            !d["u"].endpoints["ep-f"].is_set(),
            "group names are per tenant"
        );
    }
}
