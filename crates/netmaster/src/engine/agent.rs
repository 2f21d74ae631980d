//! What host agents see: node registration (with heartbeats and expiry) and the state snapshot +
//! change stream they mirror (see `contiv_api::agent`).

use std::time::Instant;

use contiv_api::agent::{AgentSnapshot, KvChange, NodeInfo};
use contiv_api::keys;
use contiv_model::{ModelObject, ObjectKind};
use serde::Serialize;

use super::events::Subscription;
use super::Engine;
use crate::error::{ApiError, ApiResult};
use crate::state::State;

fn kv<T: Serialize>(key: String, v: &T) -> Option<KvChange> {
    serde_json::to_value(v).ok().map(|value| KvChange {
        key,
        value: Some(value),
    })
}

fn objects<T: ModelObject>(
    kind: ObjectKind,
    map: &std::collections::BTreeMap<String, T>,
    out: &mut Vec<KvChange>,
) {
    out.extend(map.iter().filter_map(|(k, o)| kv(keys::object(kind, k), o)));
}

fn snapshot_of(st: &State) -> AgentSnapshot {
    let mut kvs = Vec::new();
    objects(ObjectKind::Global, &st.globals, &mut kvs);
    objects(ObjectKind::Network, &st.networks, &mut kvs);
    objects(ObjectKind::EndpointGroup, &st.epgs, &mut kvs);
    objects(ObjectKind::Policy, &st.policies, &mut kvs);
    objects(ObjectKind::Rule, &st.rules, &mut kvs);
    objects(ObjectKind::NetProfile, &st.net_profiles, &mut kvs);
    objects(ObjectKind::ServiceLb, &st.service_lbs, &mut kvs);
    kvs.extend(
        st.net_oper
            .iter()
            .filter_map(|(k, o)| kv(keys::net_oper(k), o)),
    );
    // Derived from the VIP allocations: right for services created before the key existed.
    kvs.extend(st.service_lbs.iter().filter_map(|(k, svc)| {
        let service_vip = crate::rules::service::vip_of(st, svc)?;
        kv(
            keys::service_oper(k),
            &contiv_api::ServiceOper { service_vip },
        )
    }));
    kvs.extend(
        st.endpoints
            .iter()
            .filter_map(|(k, e)| kv(keys::endpoint(k), e)),
    );
    kvs.extend(st.nodes.iter().filter_map(|(k, n)| kv(keys::node(k), n)));
    AgentSnapshot {
        revision: st.revision,
        kvs,
    }
}

impl Engine {
    /// Everything an agent mirrors, at one revision.
    pub fn agent_snapshot(&self) -> AgentSnapshot {
        self.read(snapshot_of)
    }

    /// Changes after `after` (then live); `None`: take a new snapshot.
    pub fn agent_subscribe(&self, after: u64) -> Option<Subscription> {
        self.events.subscribe(after)
    }

    /// `POST /plugin/registerNode`: records the node (a store write only when something changed)
    /// and its heartbeat.
    pub async fn register_node(&self, node: NodeInfo) -> ApiResult<NodeInfo> {
        check_node(&node)?;
        if !node.vtep_ip.is_empty() && node.vtep_ip.parse::<std::net::IpAddr>().is_err() {
            return Err(ApiError::bad_request(format!(
                "invalid vtepIP {}",
                node.vtep_ip
            )));
        }
        self.node_seen
            .lock()
            .insert(node.hostname.clone(), Instant::now());
        let stored = node.clone();
        self.write(move |st, cs| {
            if st.nodes.get(&stored.hostname) != Some(&stored) {
                cs.put_json(keys::node(&stored.hostname), &stored)?;
            }
            Ok(())
        })
        .await?;
        Ok(node)
    }

    /// Removes nodes whose heartbeats stopped more than `--node-grace` ago, with every endpoint
    /// they hold: their addresses are free again and the other hosts' agents unprogram them (they
    /// follow the endpoint deletes). A node that comes back registers again and its agent
    /// re-announces the endpoints it still runs.
    pub async fn expire_nodes(&self) -> ApiResult<Vec<String>> {
        if !self.leadership.is_leader() {
            // Only the leader sees every heartbeat (followers forward them).
            return Ok(Vec::new());
        }
        let grace = self.options.node_grace;
        let dead: Vec<String> = {
            let mut seen = self.node_seen.lock();
            let known: Vec<String> = self.read(|st| st.nodes.keys().cloned().collect());
            let now = Instant::now();
            known
                .into_iter()
                .filter(|n| now.duration_since(*seen.entry(n.clone()).or_insert(now)) > grace)
                .collect()
        };
        if dead.is_empty() {
            return Ok(dead);
        }
        let gone = dead.clone();
        let reclaimed = self
            .write(move |st, cs| {
                let mut reclaimed = 0usize;
                for n in &gone {
                    if st.nodes.contains_key(n) {
                        cs.delete(keys::node(n));
                    }
                }
                for (id, ep) in &st.endpoints {
                    if !gone.contains(&ep.homing_host) {
                        continue;
                    }
                    let net_key = ep.network_key();
                    for addr in [&ep.ip_address, &ep.ipv6_address] {
                        if !addr.is_empty() {
                            cs.delete(keys::ip(&net_key, addr));
                        }
                    }
                    cs.delete(keys::endpoint(id));
                    reclaimed += 1;
                }
                Ok(reclaimed)
            })
            .await?;
        if reclaimed > 0 {
            tracing::info!(nodes = ?dead, endpoints = reclaimed, "reclaimed the endpoints of silent nodes");
        }
        let mut seen = self.node_seen.lock();
        for n in &dead {
            seen.remove(n);
        }
        drop(seen);
        self.policy_reports.forget(&dead);
        Ok(dead)
    }
}

/// Longest host name (RFC 1123: 253 characters).
const MAX_HOST_NAME: usize = 253;
/// Longest datapath name or agent version an agent may report.
const MAX_NODE_TEXT: usize = 128;

/// Refuses a node whose host name is not a host name (it becomes a store key, shows in `/info`
/// and in netctl's tables), or whose other fields hold control characters or run long.
fn check_node(node: &NodeInfo) -> ApiResult<()> {
    let name = &node.hostname;
    if name.is_empty() || name.len() > MAX_HOST_NAME || !contiv_model::format::is_valid_name(name) {
        return Err(ApiError::bad_request(format!(
            "invalid hostname {name:?}: a host name is 1-{MAX_HOST_NAME} letters, digits, '-' \
             and '.' (labels neither start nor end with '-')"
        )));
    }
    for (field, value) in [
        ("datapath", &node.datapath),
        ("agentVersion", &node.agent_version),
    ] {
        if value.len() > MAX_NODE_TEXT || value.chars().any(char::is_control) {
            return Err(ApiError::bad_request(format!(
                "invalid {field} {value:?}: at most {MAX_NODE_TEXT} bytes without control characters"
            )));
        }
    }
    Ok(())
}
