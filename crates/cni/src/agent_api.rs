//! The protocol between `contivk8s` (the CNI plugin) and the host agent (netplugin).
//!
//! Transport: HTTP/1.1 over a unix stream socket (default [`DEFAULT_AGENT_SOCKET`]), one request
//! per connection (`Connection: close`), JSON bodies (`Content-Type: application/json`).
//!
//! | request | path | success body |
//! |---|---|---|
//! | [`AgentAddRequest`] | `POST /cni/add` | [`AgentAddResponse`] |
//! | [`AgentDelRequest`] | `POST /cni/del` | [`AgentAck`] (`{}`) |
//! | [`AgentCheckRequest`] | `POST /cni/check` | [`AgentAddResponse`]: the agent's current view |
//! | [`AgentStatusRequest`] | `POST /cni/status` | [`AgentAck`] |
//! | [`AgentGcRequest`] | `POST /cni/gc` | [`AgentAck`] |
//!
//! Success is any 2xx status. Any other status carries an [`AgentError`] body whose CNI `code`/`msg`/
//! `details` the plugin passes through to the runtime unchanged; [`AgentError::http_status`] is the
//! suggested status for each code. Agent obligations the plugin relies on:
//! - ADD is idempotent per `(container_id, ifname)`: a repeated ADD returns the same attachment.
//! - DEL of an unknown attachment succeeds (or answers code 3, which the plugin maps to success).
//! - CHECK of an unknown attachment answers code 3.
//! - STATUS answers code 50/51 when ADD cannot be serviced.
//! - GC removes every attachment of `cni_network` not listed in `valid_attachments`.
//! - At start (and periodically) the agent replays the plugin's pending deletes
//!   (see [`crate::spool`]): DELs the plugin could not deliver because the agent was down.
//!
//! Field names are snake_case JSON; optional fields may be omitted and unknown fields are ignored, so
//! both sides can grow the protocol compatibly.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Where the plugin connects unless the netconf says `agentSocket`.
pub const DEFAULT_AGENT_SOCKET: &str = "/run/contiv/contiv-cni.sock";
/// Where DELs that could not reach the agent are recorded unless the netconf says `pendingDeleteDir`.
pub const DEFAULT_PENDING_DELETE_DIR: &str = "/var/lib/contiv/cni/pending-del";
/// ADD path.
pub const PATH_ADD: &str = "/cni/add";
/// DEL path.
pub const PATH_DEL: &str = "/cni/del";
/// CHECK path.
pub const PATH_CHECK: &str = "/cni/check";
/// STATUS path.
pub const PATH_STATUS: &str = "/cni/status";
/// GC path.
pub const PATH_GC: &str = "/cni/gc";

/// Who is being attached, common to ADD/DEL/CHECK.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentIdentity {
    /// Contiv tenant (label `io.contiv.tenant`, default `default`).
    pub tenant: String,
    /// Contiv network (label `io.contiv.network`, default `default-net`).
    pub network: String,
    /// Contiv endpoint group (label `io.contiv.net-group`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Kubernetes pod namespace (`K8S_POD_NAMESPACE`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_namespace: Option<String>,
    /// Kubernetes pod name (`K8S_POD_NAME`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_name: Option<String>,
    /// Kubernetes pod UID (`K8S_POD_UID`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_uid: Option<String>,
    /// Every label the runtime passed (CNI_ARGS, netconf `args.cni.labels`, `runtimeConfig.labels`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// `POST /cni/add`: attach a container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentAddRequest {
    /// `CNI_CONTAINERID`.
    pub container_id: String,
    /// `CNI_NETNS` (path of the container's network namespace).
    pub netns: String,
    /// `CNI_IFNAME` (interface to create in the container).
    pub ifname: String,
    /// The CNI network configuration's `name`.
    pub cni_network: String,
    /// Tenant, network, group and pod identity.
    #[serde(flatten)]
    pub identity: AttachmentIdentity,
}

/// A route to install in the container: the same shape as the CNI result's routes (the
/// agent fills `dst`, `gw` and, for CNI 1.1.0 answers, `mtu` / `priority`).
pub use crate::result::Route as AgentRoute;

/// DNS settings for the container: the same shape as the CNI result's `dns`.
pub use crate::result::Dns as AgentDns;

/// The attachment the agent made (answer to ADD, and to CHECK as its current view).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentAddResponse {
    /// IPv4 (or only) address in CIDR notation, e.g. `10.1.0.5/24`.
    pub ip: String,
    /// Gateway of `ip`'s subnet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    /// IPv6 address in CIDR notation, for dual-stack networks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<String>,
    /// Gateway of `ipv6`'s subnet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6_gateway: Option<String>,
    /// MAC address of the container interface.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// Container interface name (echoes `ifname`).
    pub ifname: String,
    /// Host-side interface (veth peer / OVS port), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_ifname: Option<String>,
    /// MAC of the host-side interface.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_mac: Option<String>,
    /// Interface MTU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    /// Routes installed in the container.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<AgentRoute>,
    /// DNS settings.
    #[serde(default)]
    pub dns: AgentDns,
    /// Contiv endpoint id, for logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_id: Option<String>,
}

/// `POST /cni/del`: detach a container (idempotent).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentDelRequest {
    /// `CNI_CONTAINERID`.
    pub container_id: String,
    /// `CNI_NETNS`, which DEL may lack.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netns: Option<String>,
    /// `CNI_IFNAME`.
    pub ifname: String,
    /// The CNI network configuration's `name`.
    pub cni_network: String,
    /// Tenant, network, group and pod identity.
    #[serde(flatten)]
    pub identity: AttachmentIdentity,
}

/// `POST /cni/check`: is the attachment as the runtime recorded it?
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentCheckRequest {
    /// `CNI_CONTAINERID`.
    pub container_id: String,
    /// `CNI_NETNS`.
    pub netns: String,
    /// `CNI_IFNAME`.
    pub ifname: String,
    /// The CNI network configuration's `name`.
    pub cni_network: String,
    /// Tenant, network, group and pod identity.
    #[serde(flatten)]
    pub identity: AttachmentIdentity,
    /// Addresses (CIDR) `prevResult` lists for the container interface.
    #[serde(default)]
    pub expected_ips: Vec<String>,
    /// MAC `prevResult` lists for the container interface.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_mac: Option<String>,
}

/// `POST /cni/status`: can ADD be serviced for this network?
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentStatusRequest {
    /// The CNI network configuration's `name`.
    pub cni_network: String,
    /// Tenant from the netconf (or default).
    pub tenant: String,
    /// Network from the netconf (or default).
    pub network: String,
}

/// One still-valid attachment in a GC request.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct GcAttachment {
    /// `CNI_CONTAINERID` given at ADD.
    pub container_id: String,
    /// `CNI_IFNAME` given at ADD.
    pub ifname: String,
}

/// `POST /cni/gc`: release every attachment of `cni_network` not listed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentGcRequest {
    /// The CNI network configuration's `name`.
    pub cni_network: String,
    /// Attachments that are still valid (`cni.dev/valid-attachments`).
    #[serde(default)]
    pub valid_attachments: Vec<GcAttachment>,
}

/// Empty success body (`{}`); the agent may also send no body at all.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentAck {}

/// Error body of every non-2xx answer: a CNI error the plugin passes through.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentError {
    /// CNI error code (see [`crate::error::codes`]).
    pub code: u32,
    /// Short message.
    pub msg: String,
    /// Longer description.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub details: String,
}

impl AgentError {
    /// An agent error.
    pub fn new(code: u32, msg: impl Into<String>) -> Self {
        Self {
            code,
            msg: msg.into(),
            details: String::new(),
        }
    }

    /// The HTTP status an agent should answer with for this error (the plugin only reads the body).
    pub fn http_status(&self) -> u16 {
        match self.code {
            1 | 2 | 4 | 6 | 7 => 400,
            3 => 404,
            11 | 50 | 51 => 503,
            _ => 500,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_request_is_flat_snake_case() {
        let req = AgentAddRequest {
            container_id: "c1".into(),
            netns: "/run/netns/x".into(),
            ifname: "eth0".into(),
            cni_network: "contiv".into(),
            identity: AttachmentIdentity {
                tenant: "t".into(),
                network: "n".into(),
                group: Some("g".into()),
                pod_namespace: Some("ns".into()),
                pod_name: Some("p".into()),
                ..Default::default()
            },
        };
        let v = serde_json::to_value(&req).expect("serialize");
        assert_eq!(v["container_id"], "c1");
        assert_eq!(v["tenant"], "t");
        assert_eq!(v["group"], "g");
        assert_eq!(v["pod_name"], "p");
        let back: AgentAddRequest = serde_json::from_value(v).expect("round trip");
        assert_eq!(back, req);
    }

    #[test]
    fn minimal_add_response_decodes() {
        let r: AgentAddResponse =
            serde_json::from_str(r#"{"ip":"10.0.0.2/24","ifname":"eth0","extra":1}"#)
                .expect("decode");
        assert_eq!(r.ip, "10.0.0.2/24");
        assert!(r.routes.is_empty() && r.gateway.is_none());
    }

    #[test]
    fn error_status_mapping() {
        assert_eq!(AgentError::new(3, "x").http_status(), 404);
        assert_eq!(AgentError::new(11, "x").http_status(), 503);
        assert_eq!(AgentError::new(7, "x").http_status(), 400);
        assert_eq!(AgentError::new(120, "x").http_status(), 500);
    }
}
