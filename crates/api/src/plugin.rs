//! Requests and responses of netmaster's `/plugin/*` routes, with Contiv's field names (Go structs
//! without JSON tags, so the Go field names as-is). Contiv's own agent sends these; so does ours.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::EndpointState;

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct AllocAddressRequest {
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    pub address_pool: String,
    #[serde(rename = "PreferredIPv4Address")]
    pub preferred_ipv4_address: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AllocAddressResponse {
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    #[serde(rename = "IPv4Address")]
    pub ipv4_address: String,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReleaseAddressRequest {
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    #[serde(rename = "IPv4Address")]
    pub ipv4_address: String,
}

/// Contiv's intent.ConfigEP, plus optional agent facts (old clients simply omit them).
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct ConfigEp {
    pub container: String,
    pub host: String,
    #[serde(rename = "IPAddress")]
    pub ip_address: String,
    #[serde(rename = "IPv6Address")]
    pub ipv6_address: String,
    pub service_name: String,
    pub intf_name: String,
    #[serde(rename = "VtepIP")]
    pub vtep_ip: String,
    pub labels: BTreeMap<String, String>,
    #[serde(rename = "ContainerID")]
    pub container_id: String,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct CreateEndpointRequest {
    pub tenant_name: String,
    pub network_name: String,
    pub service_name: String,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    #[serde(rename = "EPCommonName")]
    pub ep_common_name: String,
    #[serde(rename = "ConfigEP")]
    pub config_ep: ConfigEp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointResponse {
    #[serde(rename = "EndpointConfig")]
    pub endpoint_config: EndpointState,
    /// netmaster's published revision when the request arrived (not in Contiv's answer; Go
    /// clients ignore it): an agent whose mirror has reached it knows every group and rule
    /// created before the request.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub revision: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct DeleteEndpointRequest {
    pub tenant_name: String,
    pub network_name: String,
    pub service_name: String,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    #[serde(rename = "IPv4Address")]
    pub ipv4_address: String,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct UpdateEndpointRequest {
    #[serde(rename = "IPAddress")]
    pub ip_address: String,
    #[serde(rename = "ContainerID")]
    pub container_id: String,
    pub labels: BTreeMap<String, String>,
    pub tenant: String,
    pub network: String,
    pub event: String,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    #[serde(rename = "EPCommonName")]
    pub ep_common_name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpdateEndpointResponse {
    #[serde(rename = "IPAddress")]
    pub ip_address: String,
}
