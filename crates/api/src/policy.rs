//! What a host agent reports about the policy it enforces (`POST /plugin/policyReport`), and
//! netmaster's answers about policy state (`GET /api/v1/policyStatus/`, `GET
//! /api/v1/policyExplain/`). Not part of Contiv's API: new routes with their own names.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Packet and byte counts of one rule on one host (new connections it allowed, or packets it
/// denied).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RuleCounter {
    pub packets: u64,
    pub bytes: u64,
}

/// `POST /plugin/policyReport`: sent by each agent after it applied a policy change and with
/// every heartbeat.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PolicyReport {
    pub hostname: String,
    /// The netmaster revision whose policy the host enforces (every change up to it applied).
    pub revision: u64,
    /// Rule entries and set/map elements installed on the host.
    pub rules: u64,
    pub elements: u64,
    /// Counters by rule key (`tenant:policy:rule`), summed over the host's tenants.
    pub counters: BTreeMap<String, RuleCounter>,
}

/// One host in `GET /api/v1/policyStatus/`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HostPolicyStatus {
    pub hostname: String,
    /// Revision the host reported enforcing (0: never reported).
    #[serde(rename = "enforcedRevision")]
    pub enforced_revision: u64,
    /// Whether it covers every change netmaster has published.
    pub current: bool,
    pub rules: u64,
    pub elements: u64,
}

/// `GET /api/v1/policyStatus/`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PolicyStatus {
    /// netmaster's latest published revision.
    pub revision: u64,
    pub hosts: Vec<HostPolicyStatus>,
}
