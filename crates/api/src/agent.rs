//! The agent-facing state stream.
//!
//! A host agent registers (`POST /plugin/registerNode`, repeated as its heartbeat), then reads a
//! snapshot of the state it needs (`GET /plugin/agentState`) and follows every later change
//! (`GET /plugin/agentWatch?after=<revision>`: newline-delimited JSON, one [`AgentEvent`] per
//! committed change, plus idle keepalives). The state is expressed as store keys and values
//! (see [`crate::keys`]): the agent keeps a mirror by applying each change in order.
//!
//! Invariant: a snapshot at revision R followed by every event with revision > R reproduces
//! netmaster's state exactly. When netmaster no longer holds the events after R, the stream sends
//! one event with `resync: true` and ends: the agent takes a new snapshot.

use serde::{Deserialize, Serialize};

/// Key prefixes an agent receives: networks and their tags, groups, policies and rules, profiles,
/// services and their VIPs, the global object, endpoints of every host, and registered nodes.
pub const AGENT_PREFIXES: &[&str] = &[
    "/contiv/obj/global/",
    "/contiv/obj/network/",
    "/contiv/obj/endpointGroup/",
    "/contiv/obj/policy/",
    "/contiv/obj/rule/",
    "/contiv/obj/netprofile/",
    "/contiv/obj/serviceLB/",
    "/contiv/oper/net/",
    "/contiv/oper/service/",
    "/contiv/ep/",
    "/contiv/node/",
];

/// Whether `key` is part of what agents receive.
pub fn is_agent_key(key: &str) -> bool {
    AGENT_PREFIXES.iter().any(|p| key.starts_with(p))
}

/// One key's new value (`None`: deleted). Values are the stored JSON documents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KvChange {
    pub key: String,
    pub value: Option<serde_json::Value>,
}

/// `GET /plugin/agentState`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentSnapshot {
    pub revision: u64,
    pub kvs: Vec<KvChange>,
}

/// One line of `GET /plugin/agentWatch`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentEvent {
    /// Revision of the change (keepalives repeat the latest revision with no changes).
    pub revision: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<KvChange>,
    /// The stream cannot continue from the requested revision: take a new snapshot.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub resync: bool,
}

/// `POST /plugin/registerNode`: a host agent announcing itself; repeated as its heartbeat.
/// When heartbeats stop for netmaster's `--node-grace` (default [`NODE_TTL_SECS`]), the node
/// is gone: its record and its endpoints are removed (addresses freed, other hosts unprogram them).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NodeInfo {
    pub hostname: String,
    #[serde(rename = "vtepIP")]
    pub vtep_ip: String,
    /// Datapath driver name ("linux", "ovs", ...).
    pub datapath: String,
    #[serde(rename = "agentVersion")]
    pub agent_version: String,
}

/// Default of netmaster's `--node-grace`: how long a node lives without a heartbeat.
pub const NODE_TTL_SECS: u64 = 120;
