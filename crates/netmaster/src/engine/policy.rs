//! What host agents report about the policy they enforce (`POST /plugin/policyReport`), and what
//! netmaster derives from it: the policy status of every registered host, the packet counters of
//! rule inspect and the `policyViolations` of policy inspect.
//!
//! Reports live in memory only (an agent sends one with every heartbeat), keyed by hostname; only
//! registered nodes count, and a node's report goes when the node expires.

use std::collections::BTreeMap;

use contiv_api::policy::{HostPolicyStatus, PolicyReport, PolicyStatus, RuleCounter};
use contiv_model::{Inspect, Policy, Rule};
use parking_lot::Mutex;
use serde::Serialize;

use super::Engine;
use crate::error::{ApiError, ApiResult};
use crate::state::State;

/// The latest report of each host.
#[derive(Default)]
pub(super) struct Reports(Mutex<BTreeMap<String, PolicyReport>>);

impl Reports {
    /// Drops the reports of `hosts` (nodes that expired).
    pub(super) fn forget(&self, hosts: &[String]) {
        let mut m = self.0.lock();
        for h in hosts {
            m.remove(h);
        }
    }

    /// Runs `f` on the reports of registered nodes.
    fn of_nodes<R>(&self, st: &State, f: impl FnOnce(Vec<&PolicyReport>) -> R) -> R {
        let m = self.0.lock();
        f(m.values()
            .filter(|r| st.nodes.contains_key(&r.hostname))
            .collect())
    }
}

/// Rule inspect's `Oper`: the rule's counters summed over hosts, and per host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RuleCounters {
    pub packets: u64,
    pub bytes: u64,
    pub hosts: BTreeMap<String, RuleCounter>,
}

/// `GET /api/v1/inspect/rules/<key>/`: Contiv's rule inspect has no `Oper`; netmaster adds the
/// counters agents report (Go clients ignore the extra member).
#[derive(Debug, Clone, Serialize)]
pub struct RuleInspect {
    #[serde(rename = "Config")]
    pub config: Rule,
    #[serde(rename = "Oper")]
    pub oper: RuleCounters,
}

fn host_status(report: Option<&PolicyReport>, host: &str, latest: u64) -> HostPolicyStatus {
    let (revision, rules, elements) =
        report.map_or((0, 0, 0), |r| (r.revision, r.rules, r.elements));
    HostPolicyStatus {
        hostname: host.to_owned(),
        enforced_revision: revision,
        current: revision >= latest && report.is_some(),
        rules,
        elements,
    }
}

impl Engine {
    /// `POST /plugin/policyReport`: keeps the host's latest report; answers the host's status.
    pub fn record_policy_report(&self, report: PolicyReport) -> ApiResult<HostPolicyStatus> {
        if report.hostname.is_empty() || report.hostname.contains('/') {
            return Err(ApiError::bad_request("invalid hostname"));
        }
        let latest = self.events.latest();
        let host = report.hostname.clone();
        let status = host_status(Some(&report), &host, latest);
        let mut report = report;
        let mut reports = self.policy_reports.0.lock();
        if report.counters.is_none() {
            // Counters unchanged since the host's previous report.
            report.counters = reports.remove(&host).and_then(|r| r.counters);
        }
        reports.insert(host, report);
        Ok(status)
    }

    /// The latest published revision of netmaster (what a host must have applied to be
    /// current).
    pub fn published_revision(&self) -> u64 {
        self.events.latest()
    }

    /// The policy status of the registered hosts `hosts` (all of them when `None`).
    pub fn host_policy_status(&self, hosts: Option<&[&str]>) -> Vec<HostPolicyStatus> {
        let latest = self.events.latest();
        // Lock order everywhere: state, then reports.
        self.read(|st| {
            let reports = self.policy_reports.0.lock();
            let names: Vec<&str> = match hosts {
                Some(h) => h.to_vec(),
                None => st.nodes.keys().map(String::as_str).collect(),
            };
            names
                .into_iter()
                .map(|h| {
                    let r = reports.get(h).filter(|_| st.nodes.contains_key(h));
                    host_status(r, h, latest)
                })
                .collect()
        })
    }

    /// `GET /api/v1/policyStatus/`.
    pub fn policy_status(&self) -> PolicyStatus {
        PolicyStatus {
            revision: self.events.latest(),
            hosts: self.host_policy_status(None),
        }
    }

    /// Policy inspect, with `policyViolations`: packets denied by the policy's deny rules,
    /// summed over hosts.
    pub fn inspect_policy(&self, key: &str) -> ApiResult<Inspect<Policy>> {
        let mut out = self.inspect::<Policy>(key)?;
        let prefix = format!("{key}:");
        let denied = self.read(|st| {
            let deny: Vec<&String> = st
                .rules
                .range(prefix.clone()..)
                .take_while(|(k, _)| k.starts_with(&prefix))
                .filter(|(_, r)| r.action == "deny")
                .map(|(k, _)| k)
                .collect();
            self.policy_reports.of_nodes(st, |reports| {
                reports
                    .iter()
                    .filter_map(|r| r.counters.as_ref())
                    .flat_map(|c| deny.iter().filter_map(|k| c.get(*k)))
                    .map(|c| c.packets)
                    .fold(0u64, u64::saturating_add)
            })
        });
        out.oper.policy_violations = i64::try_from(denied).unwrap_or(i64::MAX);
        Ok(out)
    }

    /// Rule inspect with the counters hosts report.
    pub fn inspect_rule(&self, key: &str) -> ApiResult<RuleInspect> {
        let config = self.inspect::<Rule>(key)?.config;
        let oper = self.read(|st| {
            self.policy_reports.of_nodes(st, |reports| {
                let mut oper = RuleCounters::default();
                for r in reports {
                    if let Some(c) = r.counters.as_ref().and_then(|c| c.get(key)) {
                        oper.packets = oper.packets.saturating_add(c.packets);
                        oper.bytes = oper.bytes.saturating_add(c.bytes);
                        oper.hosts.insert(r.hostname.clone(), *c);
                    }
                }
                oper
            })
        });
        Ok(RuleInspect { config, oper })
    }
}
