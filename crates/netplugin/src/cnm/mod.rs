//! Docker's libnetwork remote network driver and IPAM driver (CNM), served on one unix socket:
//! a thin front end of the agent's core ([`Agent::attach`] / [`Agent::detach`]), as the CNI
//! server is.
//!
//! Shape of a Docker endpoint: `CreateEndpoint` makes netmaster's endpoint (the address Docker's
//! IPAM call reserved, our MAC), the record and the veth, whose workload end stays in the
//! agent's namespace under a name derived from Docker's endpoint id ([`cnm_ifname`]); `Join`
//! hands that name to dockerd (`InterfaceName` SrcName + DstPrefix `eth`), which moves, renames,
//! addresses and routes it (the network's gateway, so dockerd adds no gateway bridge); `Leave`
//! leaves it to dockerd to move it back; `DeleteEndpoint` deletes both ends and netmaster's
//! endpoint.
//!
//! Naming (Contiv's): the Docker network of a group is `<group>` in tenant `default` and
//! `<group>/<tenant>` elsewhere ([`docker_network_name`]); dockerd does not tell a driver the
//! network's name, so the Contiv network comes from the options: driver options (`-o`)
//! `tenant`, `network`, `group` (and Contiv's `encap`, `pkt-tag`, checked against the network),
//! IPAM options (`--ipam-opt`) `tenant`, `network`, `group`; without `network`, the tenant's
//! network whose subnet is Docker's pool (`--subnet`). Which Contiv network a Docker network is
//! lives in `<state-dir>/docker-networks.json` ([`store`]), since dockerd never sends
//! `CreateNetwork` again after an agent restart. Pool ids name the Contiv network
//! (`<tenant>/<network>[/<group>]`), so they stay valid across restarts with no state at all.
//!
//! Everything from dockerd is untrusted: bodies are parsed whatever the Content-Type (dockerd
//! sends none), ids are checked before they name anything, a failed call leaves nothing behind.

pub mod docker_mode;
pub mod ipam;
pub mod network;
pub mod server;
pub mod store;
pub mod sweep;
pub mod wire;

use std::collections::BTreeMap;
use std::sync::Arc;

use contiv_cni::agent_api::AgentError;
use contiv_datapath::NetworkSpec;
use serde_json::{json, Value};

use crate::agent::Agent;
use crate::netmaster::NmError;
use store::{DockerNetwork, DockerNetworks, StoreError};
use wire::Call;
pub use wire::{
    check_id, check_name, docker_network_name, parse_docker_network_name, ContivOptions, WireError,
    DEFAULT_TENANT,
};

/// Why a Docker plugin call failed; rendered as `{"Err": "<message>"}`.
#[derive(Debug, thiserror::Error)]
pub enum CnmError {
    /// A call this plugin does not implement (HTTP 404).
    #[error("unknown call {0}")]
    UnknownCall(String),
    /// The request is malformed or asks for something impossible.
    #[error("{0}")]
    Invalid(String),
    /// The request names something that does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The agent's core refused or failed.
    #[error("{msg}{}", details.as_ref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Agent {
        msg: String,
        details: Option<String>,
    },
    #[error("{0}")]
    Netmaster(#[from] NmError),
    #[error("{0}")]
    Store(#[from] StoreError),
}

impl CnmError {
    /// The HTTP status of the answer (dockerd reads `Err` whatever it is).
    pub fn status(&self) -> u16 {
        match self {
            CnmError::UnknownCall(_) => 404,
            CnmError::Invalid(_) => 400,
            _ => 500,
        }
    }
}

impl From<WireError> for CnmError {
    fn from(e: WireError) -> Self {
        match e {
            WireError::UnknownCall(c) => CnmError::UnknownCall(c),
            WireError::Invalid(m) => CnmError::Invalid(m),
        }
    }
}

impl From<AgentError> for CnmError {
    fn from(e: AgentError) -> Self {
        CnmError::Agent {
            details: (!e.details.is_empty() && e.details != e.msg).then_some(e.details),
            msg: e.msg,
        }
    }
}

/// The Docker front end: the agent and the Docker networks it serves.
pub struct Cnm {
    pub agent: Arc<Agent>,
    pub networks: DockerNetworks,
    /// Where handed-over interfaces are made: dockerd's network namespace, the one the
    /// datapath calls the host's (`--host-netns`, else the agent's own, [`AGENT_NETNS`]).
    pub host_netns: String,
    /// Swarm mode: the driver answers Scope `global` (dockerd refuses that outside swarm).
    pub swarm: bool,
}

impl Cnm {
    pub fn new(agent: Arc<Agent>, networks: DockerNetworks) -> Self {
        Cnm {
            agent,
            networks,
            host_netns: AGENT_NETNS.to_string(),
            swarm: false,
        }
    }

    /// Handed-over interfaces are made in `path` (dockerd's namespace) instead of the agent's.
    pub fn with_host_netns(mut self, path: &std::path::Path) -> Self {
        self.host_netns = path.display().to_string();
        self
    }

    /// The Contiv options of `map`, a `contiv-tag` resolved to the group (else the network)
    /// whose `cfgdTag` it is (swarm mode: users name the tag, not the objects).
    pub fn options(&self, map: &BTreeMap<String, Value>) -> Result<ContivOptions, CnmError> {
        let mut o = ContivOptions::parse(map)?;
        let Some(tag) = o.contiv_tag.clone() else {
            return Ok(o);
        };
        let guard = self.agent.mirror.read();
        let m = guard
            .as_ref()
            .ok_or_else(|| CnmError::NotFound("no state from netmaster yet".into()))?;
        if let Some(g) = m.groups.values().find(|g| g.cfgd_tag == tag) {
            o.tenant = g.tenant_name.clone();
            o.network = Some(g.network_name.clone());
            o.group = Some(g.group_name.clone());
        } else if let Some(n) = m.networks.values().find(|n| n.cfgd_tag == tag) {
            o.tenant = n.tenant_name.clone();
            o.network = Some(n.network_name.clone());
            o.group = None;
        } else {
            return Err(CnmError::NotFound(format!(
                "no group or network has cfgdTag {tag:?}"
            )));
        }
        Ok(o)
    }

    /// Runs one plugin call (`method` as in the URL path, e.g. `NetworkDriver.Join`) on its
    /// raw body. Blocking (netmaster round trips, the datapath).
    pub fn call(&self, method: &str, body: &[u8]) -> Result<Value, CnmError> {
        match wire::parse_call(method, body)? {
            Call::Activate => Ok(json!({"Implements": ["NetworkDriver", "IpamDriver"]})),
            Call::NetworkCapabilities => {
                let scope = if self.swarm { "global" } else { "local" };
                Ok(json!({"Scope": scope, "ConnectivityScope": "global"}))
            }
            Call::CreateNetwork(r) => self.create_network(r),
            Call::DeleteNetwork(r) => self.delete_network(r),
            // Swarm's manager, for a global-scope network (once per network, on the manager).
            Call::AllocateNetwork(r) => self.allocate_network(r),
            Call::FreeNetwork(r) => self.free_network(r),
            Call::CreateEndpoint(r) => self.create_endpoint(r),
            Call::EndpointOperInfo(r) => self.endpoint_oper_info(r),
            Call::DeleteEndpoint(r) => self.delete_endpoint(r),
            Call::Join(r) => self.join(r),
            Call::Leave(r) => self.leave(r),
            Call::Discover(_) | Call::ExternalConnectivity(_) => Ok(json!({})),
            Call::IpamCapabilities => {
                Ok(json!({"RequiresMACAddress": false, "RequiresRequestReplay": false}))
            }
            Call::DefaultAddressSpaces => Ok(json!({
                "LocalDefaultAddressSpace": ipam::LOCAL_SPACE,
                "GlobalDefaultAddressSpace": ipam::GLOBAL_SPACE,
            })),
            Call::RequestPool(r) => self.request_pool(r),
            Call::ReleasePool(r) => self.release_pool(r),
            Call::RequestAddress(r) => self.request_address(r),
            Call::ReleaseAddress(r) => self.release_address(r),
        }
    }

    /// The Contiv network (and group) the options name, with its spec (validated by the
    /// datapath). `pool`: Docker's subnet, which finds the network when the options name none.
    pub(crate) fn resolve(
        &self,
        opts: &ContivOptions,
        pool: Option<&str>,
    ) -> Result<(DockerNetwork, NetworkSpec), CnmError> {
        let tenant = opts.tenant.clone();
        let network = {
            let guard = self.agent.mirror.read();
            let m = guard.as_ref().ok_or_else(|| CnmError::Agent {
                msg: "netmaster state not loaded yet".into(),
                details: None,
            })?;
            let of_group = match &opts.group {
                Some(g) => {
                    let grp = m.groups.get(&format!("{tenant}:{g}")).ok_or_else(|| {
                        CnmError::NotFound(format!("group {g} not found in tenant {tenant}"))
                    })?;
                    Some(grp.network_name.clone())
                }
                None => None,
            };
            match (&opts.network, of_group) {
                (Some(n), Some(gn)) if *n != gn => {
                    return Err(CnmError::Invalid(format!(
                        "group {} is in network {gn}, not {n}",
                        opts.group.as_deref().unwrap_or_default()
                    )))
                }
                (Some(n), _) => n.clone(),
                (None, Some(gn)) => gn,
                (None, None) => by_subnet(m, &tenant, pool, self.agent.settings.fwd_mode)?,
            }
        };
        let spec = self
            .agent
            .spec_for_add(&format!("{tenant}:{network}"))
            .map_err(|e| match e.code {
                contiv_cni::error::codes::INVALID_NETCONF => CnmError::NotFound(e.msg),
                _ => e.into(),
            })?;
        Ok((
            DockerNetwork {
                tenant,
                network,
                group: opts.group.clone(),
            },
            spec,
        ))
    }
}

/// The tenant's network whose subnet is `pool`.
fn by_subnet(
    m: &crate::mirror::Mirror,
    tenant: &str,
    pool: Option<&str>,
    fallback: contiv_datapath::FwdMode,
) -> Result<String, CnmError> {
    let Some(pool) = pool.filter(|p| !p.is_empty()) else {
        return Err(CnmError::Invalid(
            "name the Contiv network: option network (or group), or its subnet".into(),
        ));
    };
    let want: contiv_datapath::Ipv4Net = pool
        .parse()
        .map_err(|_| CnmError::Invalid(format!("invalid pool {pool:?}")))?;
    let found: Vec<String> = m
        .tenant_networks(tenant)
        .into_iter()
        .filter(|k| m.network_spec(k, fallback).is_ok_and(|s| s.subnet == want))
        .collect();
    match found.as_slice() {
        [one] => Ok(one
            .split_once(':')
            .map_or(one.as_str(), |(_, n)| n)
            .to_string()),
        [] => Err(CnmError::NotFound(format!(
            "no network of tenant {tenant} has subnet {want}"
        ))),
        _ => Err(CnmError::Invalid(format!(
            "several networks of tenant {tenant} have subnet {want}: name one with option network"
        ))),
    }
}

const IFNAME_PREFIX: &str = "ctvd";

/// The name dockerd moves into the container for Docker endpoint `endpoint_id` (15 chars, in
/// the agent's namespace until Join).
pub fn cnm_ifname(endpoint_id: &str) -> String {
    let h = endpoint_id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{IFNAME_PREFIX}{:011x}", h & 0xfff_ffff_ffff)
}

/// Whether `ifname` has the shape of [`cnm_ifname`] (how a rebuilt record tells Docker's
/// endpoints from CNI's: netmaster keeps the interface name).
pub fn is_cnm_ifname(ifname: &str) -> bool {
    ifname.len() == 15
        && ifname
            .strip_prefix(IFNAME_PREFIX)
            .is_some_and(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The agent's own network namespace, whichever process reads the path (where handed-over
/// interfaces are made unless the agent programs another namespace as the host's).
pub const AGENT_NETNS: &str = "/proc/self/ns/net";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(docker_network_name("default", "web"), "web");
        assert_eq!(docker_network_name("demo", "web"), "web/demo");
        assert_eq!(
            parse_docker_network_name("web/demo"),
            Some(("demo".into(), "web".into()))
        );
        assert_eq!(
            parse_docker_network_name("web"),
            Some(("default".into(), "web".into()))
        );
        assert_eq!(parse_docker_network_name("a/b/c"), None);
        assert_eq!(parse_docker_network_name(""), None);
    }

    #[test]
    fn ifname_is_short_and_stable() {
        let a = cnm_ifname("0123456789abcdef");
        assert_eq!(a.len(), 15);
        assert_eq!(a, cnm_ifname("0123456789abcdef"));
        assert_ne!(a, cnm_ifname("0123456789abcdee"));
        assert!(is_cnm_ifname(&a));
        assert!(!is_cnm_ifname("eth0"));
        assert!(!is_cnm_ifname("ctvdxyz00000000"));
    }

    #[test]
    fn options_parse_and_refuse() {
        let m = |v: Value| serde_json::from_value::<BTreeMap<String, Value>>(v).unwrap();
        let o = ContivOptions::parse(&m(json!({"tenant": "t", "pkt-tag": "5", "x": 1}))).unwrap();
        assert_eq!(o.tenant, "t");
        assert_eq!(o.pkt_tag, Some(5));
        assert_eq!(
            ContivOptions::parse(&m(json!({}))).unwrap().tenant,
            "default"
        );
        assert!(ContivOptions::parse(&m(json!({"tenant": 3}))).is_err());
        assert!(ContivOptions::parse(&m(json!({"network": "a:b"}))).is_err());
        assert!(ContivOptions::parse(&m(json!({"pkt-tag": "x"}))).is_err());
    }
}
