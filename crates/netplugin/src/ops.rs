//! CNI CHECK, STATUS and GC, and the replay of the plugin's pending-delete spool.

use std::collections::BTreeSet;

use contiv_cni::agent_api::{
    AgentAddResponse, AgentCheckRequest, AgentError, AgentGcRequest, AgentStatusRequest,
};
use contiv_cni::error::codes;
use contiv_cni::spool;

use crate::agent::{hold, internal, response, Agent};
use crate::records::Phase;

impl Agent {
    /// CNI CHECK: the attachment exists, matches what the runtime recorded, and is plugged.
    pub fn check(&self, req: &AgentCheckRequest) -> Result<AgentAddResponse, AgentError> {
        let key = (req.container_id.clone(), req.ifname.clone());
        let a = match self.records.get(&key) {
            Some(a) if a.phase != Phase::Releasing => a,
            _ => {
                return Err(AgentError::new(
                    codes::UNKNOWN_CONTAINER,
                    format!("no attachment for {} {}", req.container_id, req.ifname),
                ))
            }
        };
        let mismatch = |what: String| AgentError::new(codes::CHECK_MISMATCH, what);
        if !req.expected_ips.is_empty() && !req.expected_ips.contains(&a.ip) {
            return Err(mismatch(format!(
                "address {} not in {:?}",
                a.ip, req.expected_ips
            )));
        }
        if let Some(mac) = &req.expected_mac {
            if !mac.eq_ignore_ascii_case(&a.mac) {
                return Err(mismatch(format!("mac {} is not {mac}", a.mac)));
            }
        }
        if !(self.netns_alive)(std::path::Path::new(&a.netns)) {
            return Err(mismatch(format!("network namespace {} is gone", a.netns)));
        }
        let observed = self
            .dp
            .observe()
            .map_err(|e| internal("datapath unusable", e))?;
        if !observed
            .local_endpoints
            .iter()
            .any(|e| e.id == a.endpoint_id)
        {
            return Err(mismatch(format!(
                "interface of {} is missing",
                a.endpoint_id
            )));
        }
        Ok(response(&a))
    }

    /// CNI STATUS: 50 when ADD cannot be serviced (netmaster unreachable or never loaded),
    /// 51 when the datapath itself is unusable (existing workloads may suffer too).
    pub fn status(&self, _req: &AgentStatusRequest) -> Result<(), AgentError> {
        if let Err(e) = self.dp.observe() {
            return Err(AgentError {
                code: codes::PLUGIN_NOT_AVAILABLE_LIMITED,
                msg: "datapath unusable".into(),
                details: e.to_string(),
            });
        }
        let loaded = self.mirror.read().is_some();
        if !loaded || !self.link.healthy() {
            return Err(AgentError::new(
                codes::PLUGIN_NOT_AVAILABLE,
                "netmaster unreachable",
            ));
        }
        Ok(())
    }

    /// CNI GC: releases every attachment of `cni_network` not listed as valid.
    pub fn gc(&self, req: &AgentGcRequest) -> Result<(), AgentError> {
        let valid: BTreeSet<(String, String)> = req
            .valid_attachments
            .iter()
            .map(|v| (v.container_id.clone(), v.ifname.clone()))
            .collect();
        let _gate = self.shared();
        let mut failed = Vec::new();
        for a in self.records.list() {
            if a.cni_network != req.cni_network || valid.contains(&a.key()) {
                continue;
            }
            let lock = self.attachment_lock(&a.container_id, &a.ifname);
            let _att = hold(&lock.lock);
            let Some(a) = self.records.get(&a.key()) else {
                continue; // released meanwhile by a DEL
            };
            if let Err(e) = self.release(&a) {
                failed.push(format!("{} {}: {}", a.container_id, a.ifname, e.msg));
            }
        }
        if failed.is_empty() {
            Ok(())
        } else {
            Err(internal(
                "gc could not release every attachment",
                failed.join("; "),
            ))
        }
    }

    /// Replays the DELs the plugin spooled while the agent was unreachable; returns how many
    /// were done (records of failed ones stay for the next round).
    pub fn replay_spool(&self) -> usize {
        let entries = match spool::list(&self.settings.pending_dir) {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(dir = %self.settings.pending_dir.display(), "pending deletes: {e}");
                return 0;
            }
        };
        let mut done = 0;
        for (path, req) in entries {
            match self.del(&req) {
                Ok(()) => {
                    let _ = spool::remove(&path);
                    done += 1;
                }
                Err(e) => {
                    tracing::warn!(container = %req.container_id, "pending delete: {}", e.msg)
                }
            }
        }
        done
    }
}
