//! The CNI commands: validation order, version gates, and what each command asks the agent.
//!
//! Order of checks (as libcni's skel): environment (code 4), then stdin decode (6), version (1),
//! network name (7), command-specific version gates (CHECK from 0.4.0, STATUS/GC from 1.1.0,
//! code 1), then the command. VERSION needs no valid stdin at all.

use serde_json::json;

use crate::agent_api::{
    AgentAddRequest, AgentAddResponse, AgentCheckRequest, AgentDelRequest, AgentError,
    AgentGcRequest, AgentStatusRequest, AttachmentIdentity, GcAttachment,
};
use crate::client::{AgentCallError, AgentClient};
use crate::env::{CniEnv, Command, Invocation};
use crate::error::{codes, CniError};
use crate::netconf::NetConf;
use crate::result::{parse_cidr, CniResult};
use crate::spool;
use crate::version::{supported_list, CniVersion};

/// Makes the agent client for a decoded netconf (the real one reads `agentSocket`).
pub type Connector<'a> = dyn Fn(&NetConf) -> Box<dyn AgentClient + 'a> + 'a;

/// Runs one invocation: returns the exit status and what goes to stdout.
pub fn execute(env: &CniEnv, stdin: &[u8], connect: &Connector<'_>) -> (u8, Vec<u8>) {
    let mut reply_version = guess_version(stdin);
    match dispatch(env, stdin, connect, &mut reply_version) {
        Ok(out) => (0, out),
        Err(err) => {
            let body =
                serde_json::to_vec(&err.to_result(reply_version.as_str())).unwrap_or_default();
            (1, body)
        }
    }
}

/// The version to tag an early error with: the input's if supported, else the latest.
fn guess_version(stdin: &[u8]) -> CniVersion {
    serde_json::from_slice::<serde_json::Value>(stdin)
        .ok()
        .and_then(|v| {
            v.get("cniVersion")
                .and_then(|s| s.as_str())
                .and_then(|s| CniVersion::parse(s).ok())
        })
        .unwrap_or(CniVersion::LATEST)
}

fn dispatch(
    env: &CniEnv,
    stdin: &[u8],
    connect: &Connector<'_>,
    reply_version: &mut CniVersion,
) -> Result<Vec<u8>, CniError> {
    let inv = env.validate()?;
    if inv.command == Command::Version {
        return Ok(version_reply(stdin));
    }
    let conf = NetConf::decode(stdin)?;
    let version = CniVersion::parse(conf.version_str())?;
    *reply_version = version;
    conf.validate_name()?;
    let allowed = match inv.command {
        Command::Check => version.has_check(),
        Command::Status | Command::Gc => version.is_1_1(),
        _ => true,
    };
    if !allowed {
        return Err(CniError::version(format!(
            "config version {version} does not allow {}",
            inv.command.as_str()
        )));
    }
    let client = connect(&conf);
    let ctx = Ctx {
        inv: &inv,
        conf: &conf,
        version,
        client: client.as_ref(),
    };
    match inv.command {
        Command::Add => ctx.add(),
        Command::Del => ctx.del().map(|()| Vec::new()),
        Command::Check => ctx.check().map(|()| Vec::new()),
        Command::Status => ctx.status().map(|()| Vec::new()),
        Command::Gc => ctx.gc().map(|()| Vec::new()),
        Command::Version => Ok(version_reply(stdin)),
    }
}

/// VERSION: echoes the input `cniVersion` (if any) and lists the supported versions.
fn version_reply(stdin: &[u8]) -> Vec<u8> {
    let asked = serde_json::from_slice::<serde_json::Value>(stdin)
        .ok()
        .and_then(|v| {
            v.get("cniVersion")
                .and_then(|s| s.as_str())
                .map(str::to_string)
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| CniVersion::LATEST.as_str().to_string());
    let body = json!({ "cniVersion": asked, "supportedVersions": supported_list() });
    serde_json::to_vec(&body).unwrap_or_default()
}

/// Maps an agent failure to the CNI error for an attachment command.
fn agent_error(err: AgentCallError, unavailable_code: u32) -> CniError {
    match err {
        AgentCallError::Unavailable(m) => {
            let msg = if unavailable_code == codes::TRY_AGAIN_LATER {
                "contiv agent (netplugin) is unavailable, try again later"
            } else {
                "contiv agent (netplugin) is unavailable"
            };
            CniError::new(unavailable_code, msg).with_details(m)
        }
        AgentCallError::Agent(e) => CniError {
            code: e.code,
            msg: e.msg,
            details: e.details,
        },
        AgentCallError::Protocol(m) => {
            CniError::new(codes::AGENT_PROTOCOL, "bad answer from contiv agent").with_details(m)
        }
    }
}

struct Ctx<'a> {
    inv: &'a Invocation,
    conf: &'a NetConf,
    version: CniVersion,
    client: &'a dyn AgentClient,
}

impl Ctx<'_> {
    fn identity(&self) -> AttachmentIdentity {
        self.conf.identity(&self.inv.args)
    }

    fn netns(&self) -> String {
        self.inv.netns.clone().unwrap_or_default()
    }

    fn add(&self) -> Result<Vec<u8>, CniError> {
        let prev = self
            .conf
            .prev_result
            .as_ref()
            .map(CniResult::from_prev)
            .transpose()?;
        let req = AgentAddRequest {
            container_id: self.inv.container_id.clone(),
            netns: self.netns(),
            ifname: self.inv.ifname.clone(),
            cni_network: self.conf.name.clone(),
            identity: self.identity(),
        };
        let resp = self
            .client
            .add(&req)
            .map_err(|e| agent_error(e, codes::TRY_AGAIN_LATER))?;
        let mut result = CniResult::from_agent(&resp, &self.inv.ifname, &req.netns)?;
        if let Some(prev) = prev {
            result = result.chained_after(prev);
        }
        serde_json::to_vec(&result.for_version(self.version)).map_err(|e| {
            CniError::new(codes::INTERNAL, "cannot encode result").with_details(e.to_string())
        })
    }

    fn del(&self) -> Result<(), CniError> {
        let req = AgentDelRequest {
            container_id: self.inv.container_id.clone(),
            netns: self.inv.netns.clone(),
            ifname: self.inv.ifname.clone(),
            cni_network: self.conf.name.clone(),
            identity: self.identity(),
        };
        let dir = self.conf.pending_delete_dir();
        match self.client.del(&req) {
            Err(AgentCallError::Unavailable(m)) => {
                defer_delete(&dir, &req, &m);
                Ok(())
            }
            // Delivered (an unknown attachment is already gone): no record left to replay.
            Ok(())
            | Err(AgentCallError::Agent(AgentError {
                code: codes::UNKNOWN_CONTAINER,
                ..
            })) => {
                let _ = spool::forget(&dir, &req.container_id, &req.ifname);
                Ok(())
            }
            Err(e) => Err(agent_error(e, codes::TRY_AGAIN_LATER)),
        }
    }

    fn check(&self) -> Result<(), CniError> {
        let prev =
            self.conf.prev_result.as_ref().ok_or_else(|| {
                CniError::netconf("CHECK requires prevResult in the network config")
            })?;
        let prev = CniResult::from_prev(prev)?;
        let netns = self.netns();
        let (index, iface) = prev
            .container_interface(&self.inv.ifname, &netns)
            .ok_or_else(|| {
                CniError::new(
                    codes::CHECK_MISMATCH,
                    "prevResult lists no container interface of this attachment",
                )
                .with_details(format!(
                    "no interface {} with sandbox {netns}",
                    self.inv.ifname
                ))
            })?;
        let expected_ips: Vec<String> = prev.ips_of(index).map(|ip| ip.address.clone()).collect();
        let req = AgentCheckRequest {
            container_id: self.inv.container_id.clone(),
            netns,
            ifname: self.inv.ifname.clone(),
            cni_network: self.conf.name.clone(),
            identity: self.identity(),
            expected_ips,
            expected_mac: iface.mac.clone(),
        };
        let current = self
            .client
            .check(&req)
            .map_err(|e| agent_error(e, codes::TRY_AGAIN_LATER))?;
        compare_attachment(&req, &current)
    }

    fn status(&self) -> Result<(), CniError> {
        let id = self.conf.identity(&Default::default());
        let req = AgentStatusRequest {
            cni_network: self.conf.name.clone(),
            tenant: id.tenant,
            network: id.network,
        };
        self.client
            .status(&req)
            .map_err(|e| agent_error(e, codes::PLUGIN_NOT_AVAILABLE))
    }

    fn gc(&self) -> Result<(), CniError> {
        let mut valid_attachments: Vec<GcAttachment> = self
            .conf
            .gc_valid_attachments()
            .into_iter()
            .map(|a| GcAttachment {
                container_id: a.container_id,
                ifname: a.ifname,
            })
            .collect();
        valid_attachments.sort();
        valid_attachments.dedup();
        let req = AgentGcRequest {
            cni_network: self.conf.name.clone(),
            valid_attachments,
        };
        self.client
            .gc(&req)
            .map_err(|e| agent_error(e, codes::TRY_AGAIN_LATER))
    }
}

/// Records an undeliverable DEL for the agent to replay; DEL succeeds either way (see [`spool`]).
fn defer_delete(dir: &std::path::Path, req: &AgentDelRequest, why: &str) {
    match spool::record(dir, req) {
        Ok(path) => eprintln!(
            "contivk8s: DEL {}/{}: agent unreachable ({why}); recorded {} for the agent to replay",
            req.container_id,
            req.ifname,
            path.display()
        ),
        Err(e) => eprintln!(
            "contivk8s: DEL {}/{}: agent unreachable ({why}) and cannot record it in {} ({e}); \
             the agent's GC will reclaim it",
            req.container_id,
            req.ifname,
            dir.display()
        ),
    }
}

/// CHECK: the agent's addresses and MAC must be those `prevResult` recorded.
fn compare_attachment(req: &AgentCheckRequest, current: &AgentAddResponse) -> Result<(), CniError> {
    let norm = |s: &str| parse_cidr(s).map_or_else(|| s.to_string(), |(a, p)| format!("{a}/{p}"));
    let mut expected: Vec<String> = req.expected_ips.iter().map(|s| norm(s)).collect();
    let mut actual: Vec<String> = std::iter::once(&current.ip)
        .chain(current.ipv6.as_ref())
        .map(|s| norm(s))
        .collect();
    expected.sort();
    actual.sort();
    let mismatch = |what: String| {
        CniError::new(codes::CHECK_MISMATCH, "attachment differs from prevResult")
            .with_details(what)
    };
    if expected != actual {
        return Err(mismatch(format!(
            "prevResult addresses {expected:?}, agent has {actual:?}"
        )));
    }
    if let (Some(want), Some(have)) = (&req.expected_mac, &current.mac) {
        if !want.eq_ignore_ascii_case(have) {
            return Err(mismatch(format!("prevResult mac {want}, agent has {have}")));
        }
    }
    Ok(())
}
