//! What dockerd sends, parsed and checked before anything acts on it: each call's body
//! ([`parse_call`]), the Contiv options of a network or pool, pool ids, Docker ids and Contiv
//! names. Pure (serde only, nothing of the agent), so the fuzz target compiles this file as it
//! is (`fuzz/fuzz_targets/cnm_bodies.rs`) without netplugin's dependency tree: keep it free of
//! `crate::` and `super::` paths.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

/// The tenant a network is in when the options name none (Contiv's).
pub const DEFAULT_TENANT: &str = "default";

/// The option key under which dockerd passes a network's `-o` options.
pub const GENERIC_OPTIONS: &str = "com.docker.network.generic";

/// Why a body or a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// A call this plugin does not implement.
    #[error("unknown call {0}")]
    UnknownCall(String),
    /// Malformed, or not a valid id, name or option.
    #[error("{0}")]
    Invalid(String),
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct IpamData {
    #[serde(rename = "AddressSpace")]
    pub address_space: String,
    #[serde(rename = "Pool")]
    pub pool: String,
    #[serde(rename = "Gateway")]
    pub gateway: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CreateNetworkRequest {
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    #[serde(rename = "Options")]
    pub options: BTreeMap<String, Value>,
    #[serde(rename = "IPv4Data")]
    pub ipv4_data: Option<Vec<IpamData>>,
    #[serde(rename = "IPv6Data")]
    pub ipv6_data: Option<Vec<IpamData>>,
}

/// Swarm's `AllocateNetwork`: options are a flat string map (the `-o` options; null when none).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct AllocateNetworkRequest {
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    #[serde(rename = "Options")]
    pub options: Option<BTreeMap<String, String>>,
    #[serde(rename = "IPv4Data")]
    pub ipv4_data: Option<Vec<IpamData>>,
    #[serde(rename = "IPv6Data")]
    pub ipv6_data: Option<Vec<IpamData>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct NetworkRequest {
    #[serde(rename = "NetworkID")]
    pub network_id: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Interface {
    #[serde(rename = "Address")]
    pub address: String,
    #[serde(rename = "AddressIPv6")]
    pub address_ipv6: String,
    #[serde(rename = "MacAddress")]
    pub mac_address: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CreateEndpointRequest {
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    #[serde(rename = "Interface")]
    pub interface: Option<Interface>,
}

/// Requests naming a network and an endpoint (DeleteEndpoint, EndpointOperInfo, Leave,
/// Program/RevokeExternalConnectivity, and Join's first two fields).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct EndpointRequest {
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct JoinRequest {
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    #[serde(rename = "SandboxKey")]
    pub sandbox_key: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct DiscoveryRequest {
    #[serde(rename = "DiscoveryType")]
    pub discovery_type: i64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RequestPoolRequest {
    #[serde(rename = "AddressSpace")]
    pub address_space: String,
    #[serde(rename = "Pool")]
    pub pool: String,
    #[serde(rename = "SubPool")]
    pub sub_pool: String,
    #[serde(rename = "Options")]
    pub options: Option<BTreeMap<String, Value>>,
    #[serde(rename = "V6")]
    pub v6: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PoolRequest {
    #[serde(rename = "PoolID")]
    pub pool_id: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct AddressRequest {
    #[serde(rename = "PoolID")]
    pub pool_id: String,
    #[serde(rename = "Address")]
    pub address: String,
    #[serde(rename = "Options")]
    pub options: Option<BTreeMap<String, Value>>,
}

/// One plugin call with its parsed body.
#[derive(Debug)]
pub enum Call {
    Activate,
    NetworkCapabilities,
    CreateNetwork(CreateNetworkRequest),
    DeleteNetwork(NetworkRequest),
    AllocateNetwork(AllocateNetworkRequest),
    FreeNetwork(NetworkRequest),
    CreateEndpoint(CreateEndpointRequest),
    EndpointOperInfo(EndpointRequest),
    DeleteEndpoint(EndpointRequest),
    Join(JoinRequest),
    Leave(EndpointRequest),
    /// DiscoverNew / DiscoverDelete: acknowledged, nothing to do.
    Discover(DiscoveryRequest),
    /// Program / RevokeExternalConnectivity (ids checked): acknowledged, nothing to do.
    ExternalConnectivity(EndpointRequest),
    IpamCapabilities,
    DefaultAddressSpaces,
    RequestPool(RequestPoolRequest),
    ReleasePool(PoolRequest),
    RequestAddress(AddressRequest),
    ReleaseAddress(AddressRequest),
}

/// Parses plugin call `method` (as in the URL path, e.g. `NetworkDriver.Join`) on its raw body
/// (any Content-Type; dockerd sends none). Calls without a request body ignore it.
pub fn parse_call(method: &str, body: &[u8]) -> Result<Call, WireError> {
    Ok(match method {
        "Plugin.Activate" => Call::Activate,
        "NetworkDriver.GetCapabilities" => Call::NetworkCapabilities,
        "NetworkDriver.CreateNetwork" => Call::CreateNetwork(parse(body)?),
        "NetworkDriver.DeleteNetwork" => Call::DeleteNetwork(parse(body)?),
        "NetworkDriver.AllocateNetwork" => Call::AllocateNetwork(parse(body)?),
        "NetworkDriver.FreeNetwork" => Call::FreeNetwork(parse(body)?),
        "NetworkDriver.CreateEndpoint" => Call::CreateEndpoint(parse(body)?),
        "NetworkDriver.EndpointOperInfo" => Call::EndpointOperInfo(parse(body)?),
        "NetworkDriver.DeleteEndpoint" => Call::DeleteEndpoint(parse(body)?),
        "NetworkDriver.Join" => Call::Join(parse(body)?),
        "NetworkDriver.Leave" => Call::Leave(parse(body)?),
        "NetworkDriver.DiscoverNew" | "NetworkDriver.DiscoverDelete" => {
            Call::Discover(parse(body)?)
        }
        "NetworkDriver.ProgramExternalConnectivity"
        | "NetworkDriver.RevokeExternalConnectivity" => {
            let r: EndpointRequest = parse(body)?;
            check_id("NetworkID", &r.network_id)?;
            check_id("EndpointID", &r.endpoint_id)?;
            Call::ExternalConnectivity(r)
        }
        "IpamDriver.GetCapabilities" => Call::IpamCapabilities,
        "IpamDriver.GetDefaultAddressSpaces" => Call::DefaultAddressSpaces,
        "IpamDriver.RequestPool" => Call::RequestPool(parse(body)?),
        "IpamDriver.ReleasePool" => Call::ReleasePool(parse(body)?),
        "IpamDriver.RequestAddress" => Call::RequestAddress(parse(body)?),
        "IpamDriver.ReleaseAddress" => Call::ReleaseAddress(parse(body)?),
        other => return Err(WireError::UnknownCall(short(other))),
    })
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, WireError> {
    serde_json::from_slice(body).map_err(|e| {
        // serde quotes a mistyped string value whole: a body of one long string would come
        // back to dockerd, and into both logs, entire.
        let msg = e.to_string();
        let msg = if msg.chars().count() <= 200 {
            msg
        } else {
            format!(
                "{}... at line {} column {}",
                msg.chars().take(160).collect::<String>(),
                e.line(),
                e.column()
            )
        };
        WireError::Invalid(format!("invalid request body: {msg}"))
    })
}

/// The `-o` options of a network (a string map under [`GENERIC_OPTIONS`]).
pub fn generic_options(
    options: &BTreeMap<String, Value>,
) -> Result<BTreeMap<String, Value>, WireError> {
    match options.get(GENERIC_OPTIONS) {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(Value::Object(m)) => Ok(m.clone().into_iter().collect()),
        Some(v) => Err(WireError::Invalid(format!(
            "option {GENERIC_OPTIONS}: not an object: {}",
            short(&v.to_string())
        ))),
    }
}

/// The Contiv options of a Docker network or pool (`-o` / `--ipam-opt`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContivOptions {
    pub tenant: String,
    pub network: Option<String>,
    pub group: Option<String>,
    pub encap: Option<String>,
    pub pkt_tag: Option<u32>,
    /// Swarm mode's `contiv-tag`: the `cfgdTag` of a group (else a network), resolved against
    /// the agent's mirror (`Cnm::options`).
    pub contiv_tag: Option<String>,
}

impl ContivOptions {
    /// From an option map; values must be strings, names valid Contiv names. Other keys
    /// (dockerd adds its own) are ignored.
    pub fn parse(map: &BTreeMap<String, Value>) -> Result<Self, WireError> {
        let get = |k: &str| -> Result<Option<String>, WireError> {
            match map.get(k) {
                None => Ok(None),
                Some(Value::String(s)) if s.is_empty() => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(v) => Err(WireError::Invalid(format!(
                    "option {k}: not a string: {}",
                    short(&v.to_string())
                ))),
            }
        };
        let name = |k: &str| -> Result<Option<String>, WireError> {
            let v = get(k)?;
            if let Some(s) = &v {
                check_name(k, s)?;
            }
            Ok(v)
        };
        let pkt_tag = match get("pkt-tag")? {
            None => None,
            Some(s) => Some(s.parse::<u32>().map_err(|_| {
                WireError::Invalid(format!("option pkt-tag: {:?} is not a number", short(&s)))
            })?),
        };
        Ok(ContivOptions {
            tenant: name("tenant")?.unwrap_or_else(|| DEFAULT_TENANT.to_string()),
            network: name("network")?,
            group: name("group")?,
            encap: get("encap")?,
            pkt_tag,
            contiv_tag: get("contiv-tag")?,
        })
    }
}

/// A pool: a Contiv network, or a group's part of it; its id is `<tenant>/<network>[/<group>]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolId {
    pub tenant: String,
    pub network: String,
    pub group: Option<String>,
}

impl fmt::Display for PoolId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.tenant, self.network)?;
        if let Some(g) = &self.group {
            write!(f, "/{g}")?;
        }
        Ok(())
    }
}

impl FromStr for PoolId {
    type Err = WireError;
    fn from_str(s: &str) -> Result<Self, WireError> {
        let bad = || WireError::Invalid(format!("unknown pool {:?}", short(s)));
        let parts: Vec<&str> = s.split('/').collect();
        let (t, n, g) = match parts.as_slice() {
            [t, n] => (*t, *n, None),
            [t, n, g] => (*t, *n, Some(*g)),
            _ => return Err(bad()),
        };
        for p in [Some(t), Some(n), g].into_iter().flatten() {
            check_name("pool", p).map_err(|_| bad())?;
        }
        Ok(PoolId {
            tenant: t.into(),
            network: n.into(),
            group: g.map(str::to_string),
        })
    }
}

/// Contiv's Docker network name of a group (or of a network without groups).
pub fn docker_network_name(tenant: &str, group_or_network: &str) -> String {
    if tenant == DEFAULT_TENANT {
        group_or_network.to_string()
    } else {
        format!("{group_or_network}/{tenant}")
    }
}

/// Parses [`docker_network_name`] back to (tenant, group or network).
pub fn parse_docker_network_name(name: &str) -> Option<(String, String)> {
    let (g, t) = name.split_once('/').unwrap_or((name, DEFAULT_TENANT));
    (check_name("name", g).is_ok() && check_name("tenant", t).is_ok())
        .then(|| (t.to_string(), g.to_string()))
}

/// Docker ids (networks, endpoints): 1-128 of `[A-Za-z0-9_.-]`.
pub fn check_id(what: &str, id: &str) -> Result<(), WireError> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(WireError::Invalid(format!(
            "invalid {what} {:?}",
            short(id)
        )))
    }
}

/// Contiv object names: 1-64 of `[A-Za-z0-9_.-]`, no `/` or `:` (they separate keys).
pub fn check_name(what: &str, s: &str) -> Result<(), WireError> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(WireError::Invalid(format!("invalid {what} {:?}", short(s))))
    }
}

/// At most 80 characters of what dockerd sent, for messages (its log keeps them).
fn short(s: &str) -> String {
    s.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `cnm_bodies` fuzz target: a body that is one long JSON string came back
    /// whole in the refusal (serde quotes the mistyped value).
    #[test]
    fn a_refused_body_is_quoted_short() {
        let long = format!("\"{}\"", "\u{7f}".repeat(5000));
        for call in ["IpamDriver.ReleaseAddress", "NetworkDriver.CreateNetwork"] {
            let e = parse_call(call, long.as_bytes()).expect_err("a string is no request");
            let m = e.to_string();
            assert!(m.len() < 400, "{} chars: {m}", m.len());
            assert!(
                m.starts_with("invalid request body: invalid type: string"),
                "{m}"
            );
            assert!(
                m.ends_with(&format!("at line 1 column {}", long.len())),
                "{m}"
            );
        }
        // Short messages are kept whole.
        let e = parse_call("NetworkDriver.Join", b"{").expect_err("torn");
        assert_eq!(
            e.to_string(),
            "invalid request body: EOF while parsing an object at line 1 column 1"
        );
    }
}
