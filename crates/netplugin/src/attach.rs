//! CNI ADD and DEL: an attachment's life from netmaster's address to the workload interface and
//! back, with its durable record written first and removed last (see `records`).
//!
//! ADD: resolve the network in the mirror (waiting briefly for a network netmaster just made),
//! let the datapath validate it (the Linux driver refuses VLAN), `createEndpoint` at netmaster,
//! record, ensure the network with its remotes, plug the interface. A failure after netmaster
//! answered rolls back (datapath, netmaster, record). DEL: unplug, then `deleteEndpoint`; when
//! netmaster is unreachable the record stays in phase `Releasing` and the reconciler finishes it.
//!
//! The core is front-end neutral: [`Agent::attach`] takes an [`AttachRequest`] (CNI ADD and
//! Docker's CreateEndpoint both build one) and [`Agent::detach`] undoes it; `add` and `del` are
//! the CNI adapters around them, `crate::cnm` the Docker one.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use contiv_api::plugin::{ConfigEp, CreateEndpointRequest, DeleteEndpointRequest};
use contiv_cni::agent_api::{AgentAddRequest, AgentAddResponse, AgentDelRequest, AgentError};
use contiv_cni::error::codes;
use contiv_datapath::{DatapathError, MacAddr, NetworkSpec};

use crate::agent::{hold, internal, local_endpoint, lock, response, Agent};
use crate::mirror::SpecError;
use crate::netmaster::NmError;
use crate::reconcile::orphan_endpoint;
use crate::records::{ep_container, Attachment, Frontend, Phase};

/// An attachment to make, whatever the front end asking (CNI ADD, Docker's CreateEndpoint).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttachRequest {
    /// The workload: CNI's container id, or Docker's endpoint id.
    pub workload: String,
    /// The interface: its name in the workload (CNI), or the name dockerd moves (Docker).
    pub ifname: String,
    /// The namespace the interface is made in (the workload's, or the agent's own for Docker).
    pub netns: String,
    /// The CNI network name (empty for Docker).
    pub cni_network: String,
    pub tenant: String,
    pub network: String,
    pub group: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// Contiv's `EpCommonName` (a pod's `namespace/name`), may be empty.
    pub common_name: String,
    /// An address allocated beforehand (Docker's IPAM); else netmaster picks one.
    pub ip: Option<Ipv4Addr>,
    /// A MAC the runtime chose; else netmaster's (Contiv's derivation from the address).
    pub mac: Option<MacAddr>,
    pub frontend: Frontend,
}

impl AttachRequest {
    /// The CNI ADD's attachment.
    pub fn from_cni(req: &AgentAddRequest) -> Self {
        let id = &req.identity;
        AttachRequest {
            workload: req.container_id.clone(),
            ifname: req.ifname.clone(),
            netns: req.netns.clone(),
            cni_network: req.cni_network.clone(),
            tenant: id.tenant.clone(),
            network: id.network.clone(),
            group: id.group.clone(),
            labels: id.labels.clone(),
            common_name: match (&id.pod_namespace, &id.pod_name) {
                (Some(ns), Some(n)) => format!("{ns}/{n}"),
                _ => String::new(),
            },
            ip: None,
            mac: None,
            frontend: Frontend::Cni,
        }
    }

    fn net_key(&self) -> String {
        format!("{}:{}", self.tenant, self.network)
    }

    fn container(&self) -> String {
        container_of_workload(self.frontend, &self.workload, &self.ifname)
    }
}

/// Contiv's `Container` of an endpoint: Docker's endpoint id as it is (as Contiv's docker driver
/// had it), CNI's container id with the interface unless `eth0`.
fn container_of_workload(frontend: Frontend, workload: &str, ifname: &str) -> String {
    match frontend {
        Frontend::Docker => workload.to_string(),
        Frontend::Cni => ep_container(workload, ifname),
    }
}

/// An attachment to undo, whatever the front end asking (CNI DEL, Docker's DeleteEndpoint).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DetachRequest {
    pub workload: String,
    pub ifname: String,
    /// The network, when known (may be empty): used only when no record exists.
    pub tenant: String,
    pub network: String,
    /// The namespace the interface was made in, when known: used only when no record exists.
    pub netns: Option<String>,
    pub frontend: Frontend,
}

impl DetachRequest {
    /// The CNI DEL's attachment.
    pub fn from_cni(req: &AgentDelRequest) -> Self {
        DetachRequest {
            workload: req.container_id.clone(),
            ifname: req.ifname.clone(),
            tenant: req.identity.tenant.clone(),
            network: req.identity.network.clone(),
            netns: req.netns.clone(),
            frontend: Frontend::Cni,
        }
    }
}

fn invalid(msg: impl Into<String>) -> AgentError {
    AgentError::new(codes::INVALID_NETCONF, msg)
}

/// netmaster errors as CNI errors: unreachable is transient (11), unknown objects and bad
/// requests are configuration errors (7), the rest internal.
pub(crate) fn nm_error(e: NmError) -> AgentError {
    let code = match &e {
        NmError::Unreachable { .. } => codes::TRY_AGAIN_LATER,
        NmError::Refused {
            status: 400 | 404, ..
        } => codes::INVALID_NETCONF,
        _ => codes::INTERNAL,
    };
    let msg = match &e {
        NmError::Refused { message, .. } => message.clone(),
        _ => "netmaster unreachable".to_string(),
    };
    AgentError {
        code,
        msg,
        details: e.to_string(),
    }
}

fn dp_error(e: DatapathError) -> AgentError {
    match e {
        DatapathError::Unsupported { .. } | DatapathError::Invalid { .. } => {
            AgentError::new(codes::INVALID_NETCONF, e.to_string())
        }
        e => internal("datapath failure", e),
    }
}

fn check_add_request(req: &AgentAddRequest) -> Result<(), AgentError> {
    let missing = [
        ("container_id", req.container_id.is_empty()),
        ("netns", req.netns.is_empty()),
        ("ifname", req.ifname.is_empty()),
        ("tenant", req.identity.tenant.is_empty()),
        ("network", req.identity.network.is_empty()),
    ];
    match missing.iter().find(|(_, m)| *m) {
        Some((name, _)) => Err(AgentError::new(
            codes::INVALID_ENV,
            format!("missing {name}"),
        )),
        None => Ok(()),
    }
}

impl Agent {
    /// CNI ADD (idempotent per container id + ifname).
    pub fn add(&self, req: &AgentAddRequest) -> Result<AgentAddResponse, AgentError> {
        check_add_request(req)?;
        let a = self.attach(&AttachRequest::from_cni(req))?;
        let mut out = response(&a);
        if self.settings.dns {
            out.dns = crate::dns::cni_dns(&a.tenant, &a.gateway);
        }
        Ok(out)
    }

    /// Makes an attachment: netmaster's endpoint (address, MAC), the record, the network and
    /// the interface; idempotent per (workload, ifname). A failure after netmaster answered rolls
    /// everything back. The caller has checked that the request names what it needs.
    pub fn attach(&self, req: &AttachRequest) -> Result<Attachment, AgentError> {
        let _gate = self.shared();
        let net_key = req.net_key();
        let lock = self.attachment_lock(&req.workload, &req.ifname);
        let _att = hold(&lock.lock);
        let key = (req.workload.clone(), req.ifname.clone());
        if let Some(a) = self.records.get(&key) {
            if a.network_key() != net_key {
                return Err(invalid(format!(
                    "{} {} is already attached to network {}",
                    a.container_id,
                    a.ifname,
                    a.network_key()
                )));
            }
            if a.phase != Phase::Releasing {
                let spec = self.spec_for_add(&net_key)?;
                return self.plug(a, &spec, 0);
            }
            self.finish_release(&a)?;
        }
        let spec = self.spec_for_add(&net_key)?;
        let (ep, revision) = self
            .nm
            .create_endpoint(&self.create_request(req))
            .map_err(nm_error)?;
        let a = Attachment {
            created: crate::records::unix_now(),
            container_id: req.workload.clone(),
            ifname: req.ifname.clone(),
            netns: req.netns.clone(),
            cni_network: req.cni_network.clone(),
            tenant: req.tenant.clone(),
            network: req.network.clone(),
            group: req.group.clone(),
            ep_container: req.container(),
            endpoint_id: ep.id.clone(),
            ip: format!("{}/{}", ep.ip_address, spec.subnet.prefix_len()),
            gateway: spec.gateway.to_string(),
            mac: req
                .mac
                .map_or_else(|| ep.mac_address.clone(), |m| m.to_string()),
            phase: Phase::Adding,
            frontend: req.frontend,
            ..Default::default()
        };
        if let Err(e) = self.records.put(&a) {
            let _ = self.nm.delete_endpoint(&delete_request(&a));
            return Err(internal("cannot record the attachment", e));
        }
        self.plug(a.clone(), &spec, revision)
            .inspect_err(|_| self.rollback(&a))
    }

    /// Undoes [`Agent::attach`] (idempotent; an unknown attachment is success). Without a
    /// record, netmaster's endpoint and an interface of it still go when the request names the
    /// network (a crash right after `createEndpoint`, a lost record).
    pub fn detach(&self, req: &DetachRequest) -> Result<(), AgentError> {
        let _gate = self.shared();
        let lock = self.attachment_lock(&req.workload, &req.ifname);
        let _att = hold(&lock.lock);
        let key = (req.workload.clone(), req.ifname.clone());
        match self.records.get(&key) {
            Some(a) => self.release(&a),
            None => self.del_unknown(req),
        }
    }

    /// The network's spec from the mirror, validated by the datapath.
    pub(crate) fn spec_for_add(&self, net_key: &str) -> Result<NetworkSpec, AgentError> {
        let fallback = self.settings.fwd_mode;
        let ready = |m: &crate::mirror::Mirror| {
            !matches!(
                m.network_spec(net_key, fallback),
                Err(SpecError::NotFound(_) | SpecError::NoTag(_))
            )
        };
        self.mirror.wait_for(self.settings.mirror_wait, ready);
        let spec = match self.mirror.read().as_ref() {
            None => Err(AgentError {
                code: codes::TRY_AGAIN_LATER,
                msg: "netmaster state not loaded yet".into(),
                details: "the agent has not reached netmaster since it started".into(),
            }),
            Some(m) => m.network_spec(net_key, fallback).map_err(|e| match e {
                SpecError::NoTag(_) => AgentError::new(codes::TRY_AGAIN_LATER, e.to_string()),
                e => invalid(e.to_string()),
            }),
        }?;
        self.dp.validate(&spec).map_err(dp_error)?;
        Ok(spec)
    }

    fn create_request(&self, req: &AttachRequest) -> CreateEndpointRequest {
        let container = req.container();
        CreateEndpointRequest {
            tenant_name: req.tenant.clone(),
            network_name: req.network.clone(),
            service_name: req.group.clone().unwrap_or_default(),
            endpoint_id: container.clone(),
            ep_common_name: req.common_name.clone(),
            config_ep: ConfigEp {
                container,
                host: self.settings.host.clone(),
                ip_address: req.ip.map(|ip| ip.to_string()).unwrap_or_default(),
                service_name: req.group.clone().unwrap_or_default(),
                intf_name: req.ifname.clone(),
                vtep_ip: self.settings.vtep_ip.to_string(),
                labels: req.labels.clone(),
                container_id: req.workload.clone(),
                ..Default::default()
            },
        }
    }

    /// Ensures the network (with its remotes) and plugs the interface; marks the record ready.
    /// `seen`: netmaster's revision when it created the endpoint; the policy decision below
    /// waits for the mirror to reach it, so a group or rule made just before is not missed.
    fn plug(
        &self,
        mut a: Attachment,
        spec: &NetworkSpec,
        seen: u64,
    ) -> Result<Attachment, AgentError> {
        let cached = self.converge_network(spec, false)?;
        let ep = local_endpoint(&a)?;
        // The record (written before this) makes the policy loop count the new member: when its
        // group has rules, they are in force before its interface exists, so no packet of it
        // ever passes unjudged.
        if let Some(g) = a.group.as_deref() {
            let caught_up = |m: &crate::mirror::Mirror| m.revision >= seen;
            if !self.mirror.wait_for(self.settings.mirror_wait, caught_up) {
                return Err(AgentError {
                    code: codes::TRY_AGAIN_LATER,
                    msg: format!("the policy of group {g} is not known on this host yet"),
                    details: format!("netmaster's state at revision {seen} has not arrived"),
                });
            }
            if self.group_has_rules(&a.tenant, g) {
                self.admit_to_policy(&a, g, ep.ip.addr())?;
            }
        }
        let att = match self.dp.add_local_endpoint(&ep) {
            Ok(att) => att,
            // The network may have been changed behind the cache's back: converge it for real.
            Err(_) if cached => {
                self.converge_network(spec, true)?;
                self.dp.add_local_endpoint(&ep).map_err(dp_error)?
            }
            Err(e) => return Err(dp_error(e)),
        };
        a.host_ifname = att.host_ifname;
        a.mtu = att.mtu;
        a.mac = att.mac.to_string();
        a.phase = Phase::Ready;
        self.records
            .put(&a)
            .map_err(|e| internal("cannot record the attachment", e))?;
        // Its netprofile before the runtime gets the interface (fails open: the loop retries).
        self.enforce_qos_of(&a.tenant);
        self.kick.kick(); // the tenant's other networks, stale entries
        self.policy.kick.kick(); // the new member's traffic
        tracing::info!(endpoint = %a.endpoint_id, ip = %a.ip, "attached");
        Ok(a)
    }

    /// Puts a new member of `group` under its group's rules before its interface exists: added
    /// at once to what the policy driver installed when the group's rules are there (the pass
    /// that follows finds it in place), else after a full pass installed them. Fails closed: when
    /// the rules are still not in force, the ADD fails with "try again later" (and is rolled
    /// back) instead of plugging a workload its policy does not cover.
    fn admit_to_policy(
        &self,
        a: &Attachment,
        group: &str,
        ip: std::net::Ipv4Addr,
    ) -> Result<(), AgentError> {
        let admit = || match self.pol.admit(&a.tenant, group, ip) {
            Ok(admitted) => admitted,
            Err(e) => {
                tracing::debug!(endpoint = %a.endpoint_id, "policy admission failed: {e}");
                false
            }
        };
        // The pass kicked when the ADD is done finds the member in place.
        if admit() {
            return Ok(());
        }
        let passed = self.await_policy(self.settings.policy_wait);
        if passed && admit() {
            return Ok(());
        }
        if passed && self.policy.compiled_group_has_rules(&a.tenant, group) == Some(false) {
            // The mirror lists rules, but none can be enforced (each names a network that is
            // gone): there is nothing to put in force.
            return Ok(());
        }
        Err(AgentError {
            code: codes::TRY_AGAIN_LATER,
            msg: format!("the policy of group {group} is not in force on this host yet"),
            details: if passed {
                "the policy pass did not install the group's rules (see the agent log)".into()
            } else {
                format!(
                    "no policy pass finished within {:?}",
                    self.settings.policy_wait
                )
            },
        })
    }

    /// Ensures the network and its remote endpoints (from the mirror) unless they are known
    /// converged to exactly that (`force`: regardless). Returns whether the cache answered.
    fn converge_network(&self, spec: &NetworkSpec, force: bool) -> Result<bool, AgentError> {
        let mut conv = lock(&self.converged);
        let remotes = self
            .mirror
            .read()
            .as_ref()
            .map(|m| m.remote_endpoints(&spec.id, &self.settings.host))
            .unwrap_or_default();
        if !force {
            if let Some((s, r)) = conv.get(&spec.id) {
                if s == spec && *r == remotes {
                    return Ok(true);
                }
            }
        }
        conv.remove(&spec.id);
        self.dp.ensure_network(spec).map_err(dp_error)?;
        match self.dp.set_remote_endpoints(&spec.id, &remotes) {
            Ok(()) => {
                conv.insert(spec.id.clone(), (spec.clone(), remotes));
            }
            Err(e) => tracing::warn!(network = %spec.id, "remote endpoints: {e}"),
        }
        Ok(false)
    }

    fn rollback(&self, a: &Attachment) {
        if let Ok(ep) = local_endpoint(a) {
            if let Err(e) = self.dp.remove_local_endpoint(&ep) {
                tracing::warn!(endpoint = %a.endpoint_id, "rollback: {e}");
            }
        }
        match self.nm.delete_endpoint(&delete_request(a)) {
            Ok(()) => {
                let _ = self.records.remove(&a.key());
            }
            Err(e) => {
                tracing::warn!(endpoint = %a.endpoint_id, "rollback: {e}");
                let mut r = a.clone();
                r.phase = Phase::Releasing;
                let _ = self.records.put(&r);
            }
        }
    }

    /// CNI DEL (idempotent; an unknown attachment is success).
    pub fn del(&self, req: &AgentDelRequest) -> Result<(), AgentError> {
        self.detach(&DetachRequest::from_cni(req))
    }

    /// No record: netmaster may still hold an endpoint (crash right after createEndpoint), and
    /// an interface of it may be plugged (its record lost before a full pass rebuilt it): both
    /// go, as the runtime asks.
    fn del_unknown(&self, req: &DetachRequest) -> Result<(), AgentError> {
        if req.tenant.is_empty() || req.network.is_empty() {
            return Ok(());
        }
        let d = DeleteEndpointRequest {
            tenant_name: req.tenant.clone(),
            network_name: req.network.clone(),
            endpoint_id: container_of_workload(req.frontend, &req.workload, &req.ifname),
            ..Default::default()
        };
        let observed = contiv_datapath::ObservedEndpoint {
            id: format!("{}.{}-{}", req.network, req.tenant, d.endpoint_id),
            network_id: format!("{}:{}", req.tenant, req.network),
            host_ifname: String::new(),
        };
        let mut ep = orphan_endpoint(&observed, self.mirror.read().as_ref());
        ep.ifname.clone_from(&req.ifname);
        if let Some(ns) = req.netns.as_deref().filter(|n| !n.is_empty()) {
            ep.netns_path = ns.into();
        }
        self.dp.remove_local_endpoint(&ep).map_err(dp_error)?;
        if let Err(e) = self.nm.delete_endpoint(&d) {
            tracing::warn!(workload = %req.workload, "delete of unrecorded endpoint: {e}");
        }
        Ok(())
    }

    /// Unplugs, then releases at netmaster (or leaves that to the reconciler); kicks the
    /// reconciler (networks no longer needed).
    pub(crate) fn release(&self, a: &Attachment) -> Result<(), AgentError> {
        self.release_quietly(a)?;
        self.kick.kick();
        self.policy.kick.kick();
        Ok(())
    }

    /// [`Agent::release`] without the kick (for the reconciler itself).
    pub(crate) fn release_quietly(&self, a: &Attachment) -> Result<(), AgentError> {
        if a.phase != Phase::Releasing {
            self.dp
                .remove_local_endpoint(&local_endpoint(a)?)
                .map_err(dp_error)?;
            let mut r = a.clone();
            r.phase = Phase::Releasing;
            self.records
                .put(&r)
                .map_err(|e| internal("cannot record the attachment", e))?;
        }
        if let Err(e) = self.finish_release(a) {
            tracing::warn!(endpoint = %a.endpoint_id, "netmaster delete deferred: {}", e.details);
        }
        Ok(())
    }

    /// netmaster's delete, then the record goes.
    pub(crate) fn finish_release(&self, a: &Attachment) -> Result<(), AgentError> {
        self.nm
            .delete_endpoint(&delete_request(a))
            .map_err(nm_error)?;
        self.records
            .remove(&a.key())
            .map_err(|e| internal("cannot remove the attachment record", e))?;
        tracing::info!(endpoint = %a.endpoint_id, "released");
        Ok(())
    }
}

pub(crate) fn delete_request(a: &Attachment) -> DeleteEndpointRequest {
    DeleteEndpointRequest {
        tenant_name: a.tenant.clone(),
        network_name: a.network.clone(),
        endpoint_id: a.ep_container.clone(),
        ipv4_address: a.ip.split('/').next().unwrap_or_default().to_string(),
        ..Default::default()
    }
}
