//! The Docker endpoint sweep: releases Docker endpoints dockerd gave up on.
//!
//! Why: when the agent is down longer than dockerd's plugin retries (~30 s), `docker rm -f`
//! still completes, but dockerd drops its `Leave`/`DeleteEndpoint` calls. Our record, the
//! handed-over interface, netmaster's endpoint and its address would then stay forever (the
//! reconcile never destroys what it cannot account for). So on start and on every full
//! reconcile the agent asks its dockerd which endpoints it still has, and releases (the
//! `DeleteEndpoint` path: [`Agent::detach`]) a Docker record dockerd no longer lists.
//!
//! Safety: nothing is released unless dockerd answered every call successfully (an error, a
//! missing socket: keep all), and only records older than [`GRACE`]: dockerd lists an endpoint
//! under its network only after `Join`, so a fresh `CreateEndpoint` is absent for a moment.
//! A record of unknown age (`created` 0: older journal, rebuilt from netmaster) is kept.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use super::docker_mode::{EngineError, EngineSocket};
use crate::agent::Agent;
use crate::attach::DetachRequest;
use crate::records::{unix_now, Attachment, Frontend};

/// How old a Docker record must be before its absence from dockerd counts (seconds).
pub const GRACE: u64 = 60;

/// The endpoint ids dockerd has on any of its networks.
pub trait DockerEndpoints {
    fn endpoint_ids(&self) -> Result<BTreeSet<String>, EngineError>;
}

impl DockerEndpoints for EngineSocket {
    /// `GET /networks`, then `GET /networks/{id}` for each (the list carries no containers):
    /// the `EndpointID` of every entry of `Containers`. Any failed call fails the whole answer.
    fn endpoint_ids(&self) -> Result<BTreeSet<String>, EngineError> {
        let nets = self.get("/networks")?;
        let bad = |msg: &str| EngineError::BadAnswer {
            call: "GET /networks".into(),
            msg: msg.into(),
        };
        let mut out = BTreeSet::new();
        for n in nets.as_array().ok_or_else(|| bad("not a list"))? {
            let id = n["Id"].as_str().unwrap_or_default();
            if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(bad("bad network id"));
            }
            let full = self.get(&format!("/networks/{id}"))?;
            if let Some(cs) = full["Containers"].as_object() {
                out.extend(
                    cs.values()
                        .filter_map(|c| c["EndpointID"].as_str())
                        .map(str::to_string),
                );
            }
        }
        Ok(out)
    }
}

/// The Docker records to release: those dockerd (which answered) does not have, older than
/// `grace`. `dockerd` is `None` when it did not answer: nothing is released.
pub fn stale(
    records: &[Attachment],
    dockerd: Option<&BTreeSet<String>>,
    now: u64,
    grace: u64,
) -> Vec<Attachment> {
    let Some(known) = dockerd else {
        return Vec::new();
    };
    records
        .iter()
        .filter(|a| a.frontend == Frontend::Docker)
        .filter(|a| a.created != 0 && now.saturating_sub(a.created) >= grace)
        .filter(|a| !known.contains(&a.container_id))
        .cloned()
        .collect()
}

/// The sweep as the agent runs it: dockerd's socket, and whether its absence was logged.
pub struct Sweep {
    engine: EngineSocket,
    logged_absent: AtomicBool,
}

impl Sweep {
    pub fn new(path: PathBuf) -> Self {
        Sweep {
            engine: EngineSocket {
                path,
                driver: String::new(),
            },
            logged_absent: AtomicBool::new(false),
        }
    }

    /// One pass; returns how many endpoints it released.
    pub fn run(&self, agent: &Agent) -> usize {
        if !self.engine.path.exists() {
            // No dockerd here (or not yet): nothing to compare with, so nothing is released.
            if !self.logged_absent.swap(true, Ordering::Relaxed) {
                tracing::info!(dockerd = %self.engine.path.display(), "no dockerd socket: docker endpoint sweep skipped");
            }
            return 0;
        }
        let records = agent.records.list();
        if !records.iter().any(|a| a.frontend == Frontend::Docker) {
            return 0;
        }
        let known = match self.engine.endpoint_ids() {
            Ok(k) => Some(k),
            Err(e) => {
                tracing::warn!(
                    "docker endpoint sweep: dockerd did not answer, nothing released: {e}"
                );
                None
            }
        };
        release(agent, &stale(&records, known.as_ref(), unix_now(), GRACE))
    }
}

fn release(agent: &Agent, gone: &[Attachment]) -> usize {
    let mut n = 0;
    for a in gone {
        let req = DetachRequest {
            workload: a.container_id.clone(),
            ifname: a.ifname.clone(),
            tenant: a.tenant.clone(),
            network: a.network.clone(),
            netns: Some(a.netns.clone()),
            frontend: Frontend::Docker,
        };
        match agent.detach(&req) {
            Ok(()) => {
                n += 1;
                tracing::info!(endpoint = %a.container_id, ip = %a.ip, "docker endpoint dockerd no longer has: released");
            }
            Err(e) => {
                tracing::warn!(endpoint = %a.container_id, "docker endpoint sweep: release failed: {}", e.msg)
            }
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str, frontend: Frontend, created: u64) -> Attachment {
        Attachment {
            container_id: id.into(),
            ifname: super::super::cnm_ifname(id),
            frontend,
            created,
            ..Default::default()
        }
    }

    fn ids(v: &[Attachment]) -> Vec<&str> {
        v.iter().map(|a| a.container_id.as_str()).collect()
    }

    #[test]
    fn releases_only_old_docker_records_an_answering_dockerd_lacks() {
        let now = 10_000;
        let records = [
            rec("gone", Frontend::Docker, now - 600),
            rec("kept", Frontend::Docker, now - 600),
            rec("fresh", Frontend::Docker, now - 5),
            rec("unknownage", Frontend::Docker, 0),
            rec("cni", Frontend::Cni, now - 600),
        ];
        let dockerd: BTreeSet<String> = ["kept".to_string()].into();
        assert_eq!(ids(&stale(&records, Some(&dockerd), now, GRACE)), ["gone"]);
        // Exactly at the grace period counts as old.
        let edge = [rec("edge", Frontend::Docker, now - GRACE)];
        assert_eq!(ids(&stale(&edge, Some(&dockerd), now, GRACE)), ["edge"]);
        // dockerd with nothing at all: every old Docker record goes, CNI never.
        assert_eq!(
            ids(&stale(&records, Some(&BTreeSet::new()), now, GRACE)),
            ["gone", "kept"]
        );
    }

    #[test]
    fn an_unanswering_dockerd_releases_nothing() {
        let records = [rec("a", Frontend::Docker, 1), rec("b", Frontend::Docker, 2)];
        assert!(stale(&records, None, 10_000, GRACE).is_empty());
    }
}
