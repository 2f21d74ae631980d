//! The `serviceLB` object (key `tenantName:serviceName`), its links and oper record (no link-sets).

use serde::{Deserialize, Serialize};

use super::{model_object, object_fields, EndpointOper};
use crate::format::source as p;
use crate::gojson::go_json;
use crate::link::Link;

/// Config of the Contiv object `ServiceLb` as on the wire.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self", default)]
pub struct ServiceLb {
    /// `key`: The object key.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub key: String,
    /// `ipAddress`: Service ip.
    #[serde(rename = "ipAddress", skip_serializing_if = "String::is_empty")]
    pub ip_address: String,
    /// `networkName`: Service network name.
    #[serde(rename = "networkName", skip_serializing_if = "String::is_empty")]
    pub network_name: String,
    /// `ports`: service provider port.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<String>,
    /// `selectors`: labels key value pair.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub selectors: Vec<String>,
    /// `serviceName`: service name.
    #[serde(rename = "serviceName", skip_serializing_if = "String::is_empty")]
    pub service_name: String,
    /// `tenantName`: Tenant Name.
    #[serde(rename = "tenantName", skip_serializing_if = "String::is_empty")]
    pub tenant_name: String,
    /// `links`.
    pub links: ServiceLbLinks,
}

/// `links` of ServiceLb: single links (an unset one encodes as `{}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self", default)]
pub struct ServiceLbLinks {
    /// `Network`.
    #[serde(rename = "Network")]
    pub network: Link,
    /// `Tenant`.
    #[serde(rename = "Tenant")]
    pub tenant: Link,
}

/// Runtime state of ServiceLb shown by inspect (`Oper`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self", default)]
pub struct ServiceLbOper {
    /// `numProviders`:  number of provider endpoints for the service.
    #[serde(
        rename = "numProviders",
        skip_serializing_if = "crate::gojson::is_zero"
    )]
    pub num_providers: i64,
    /// `providers`: provider endpoints for the service.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub providers: Vec<EndpointOper>,
    /// `serviceVip`: allocated IP addresses.
    #[serde(rename = "serviceVip", skip_serializing_if = "String::is_empty")]
    pub service_vip: String,
}

go_json!(ServiceLb, ServiceLbLinks, ServiceLbOper);

model_object!(
    ServiceLb,
    ServiceLb,
    ServiceLbOper,
    [tenant_name, service_name]
);

// Contiv's field checks for a service load balancer, in Go's order.
object_fields!(ServiceLb {
    "ipAddress" => string(ip_address).max_len(15).pattern(p::IPV4_OR_EMPTY),
    "networkName" => string(network_name).max_len(64).pattern(p::NAME).required(),
    "ports" => list(ports),
    "selectors" => list(selectors),
    "serviceName" => string(service_name).max_len(256).pattern(p::NAME).required(),
    "tenantName" => string(tenant_name).max_len(64).pattern(p::NAME).required(),
});
