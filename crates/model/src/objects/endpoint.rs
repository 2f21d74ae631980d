//! The inspect-only `endpoint` (key `endpointID`): its oper record, used on its own and inside network/EPG/policy/tenant/serviceLB oper lists.

use serde::{Deserialize, Serialize};

use super::{model_object, object_fields};
use crate::gojson::go_json;

/// An endpoint's runtime record (Go `EndpointOper`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self", default)]
pub struct EndpointOper {
    /// `key`: Oper object key.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub key: String,
    /// `containerID`.
    #[serde(rename = "containerID", skip_serializing_if = "String::is_empty")]
    pub container_id: String,
    /// `containerName`.
    #[serde(rename = "containerName", skip_serializing_if = "String::is_empty")]
    pub container_name: String,
    /// `endpointGroupId`.
    #[serde(
        rename = "endpointGroupId",
        skip_serializing_if = "crate::gojson::is_zero"
    )]
    pub endpoint_group_id: i64,
    /// `endpointGroupKey`.
    #[serde(rename = "endpointGroupKey", skip_serializing_if = "String::is_empty")]
    pub endpoint_group_key: String,
    /// `endpointID`.
    #[serde(rename = "endpointID", skip_serializing_if = "String::is_empty")]
    pub endpoint_id: String,
    /// `homingHost`.
    #[serde(rename = "homingHost", skip_serializing_if = "String::is_empty")]
    pub homing_host: String,
    /// `intfName`.
    #[serde(rename = "intfName", skip_serializing_if = "String::is_empty")]
    pub intf_name: String,
    /// `ipAddress`.
    #[serde(rename = "ipAddress", skip_serializing_if = "Vec::is_empty")]
    pub ip_address: Vec<String>,
    /// `labels`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub labels: String,
    /// `macAddress`.
    #[serde(rename = "macAddress", skip_serializing_if = "String::is_empty")]
    pub mac_address: String,
    /// `network`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub network: String,
    /// `serviceName`.
    #[serde(rename = "serviceName", skip_serializing_if = "String::is_empty")]
    pub service_name: String,
    /// `virtualPort`.
    #[serde(rename = "virtualPort", skip_serializing_if = "String::is_empty")]
    pub virtual_port: String,
    /// `vtepIP`.
    #[serde(rename = "vtepIP", skip_serializing_if = "String::is_empty")]
    pub vtep_ip: String,
}

/// The endpoint "object": Contiv has no endpoint config, only `GET /api/v1/inspect/endpoints/{key}/`
/// returning `{"Oper": {...}}`. This struct carries the key so the endpoint fits
/// [`ModelObject`](crate::ModelObject); it is never a REST body of its own.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self", default)]
pub struct Endpoint {
    /// `key`: the endpoint id.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub key: String,
    /// `endpointID`.
    #[serde(rename = "endpointID", skip_serializing_if = "String::is_empty")]
    pub endpoint_id: String,
}

go_json!(EndpointOper, Endpoint);

model_object!(Endpoint, Endpoint, EndpointOper, [endpoint_id]);

impl Endpoint {
    /// An endpoint reference with `key == endpoint_id`.
    pub fn new(endpoint_id: impl Into<String>) -> Self {
        let endpoint_id = endpoint_id.into();
        Endpoint {
            key: endpoint_id.clone(),
            endpoint_id,
        }
    }
}

// Contiv generates no validation for endpoints: only the key check applies.
object_fields!(Endpoint {});
