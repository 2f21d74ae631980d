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
    /// Counters by rule key (`tenant:policy:rule`), summed over the host's tenants. Absent:
    /// unchanged since the host's previous report (the quick report right after a change does
    /// not read them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counters: Option<BTreeMap<String, RuleCounter>>,
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

/// One side of the connection in `GET /api/v1/policyExplain/`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExplainSide {
    pub ip: String,
    /// Endpoint id (`None`: an address of no endpoint of the tenant).
    pub endpoint: Option<String>,
    pub group: Option<String>,
    pub host: Option<String>,
}

/// One side's decision: the group whose rules were consulted, the rule that matched, and its
/// action (`allow` / `deny`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExplainDecision {
    pub group: Option<String>,
    pub rule: Option<String>,
    pub action: String,
}

/// `GET /api/v1/policyExplain/?tenant=&from=&to=&protocol=&port=`: the verdict on a new
/// connection and the rule that decided it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Explanation {
    pub tenant: String,
    pub from: ExplainSide,
    pub to: ExplainSide,
    pub protocol: String,
    pub port: u16,
    /// `allow` or `deny`.
    pub verdict: String,
    /// The deciding rule (`tenant:policy:rule`), `None` when no rule matched.
    pub rule: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The source group's out-rules.
    pub egress: ExplainDecision,
    /// The destination group's in-rules.
    pub ingress: ExplainDecision,
    /// netmaster's latest published revision.
    pub revision: u64,
    /// The hosts of the two endpoints, with the revision they enforce.
    pub hosts: Vec<HostPolicyStatus>,
}
