//! The `network` object (key `tenantName:networkName`), its link-sets, links and oper record.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{model_object, object_fields, EndpointOper};
use crate::format::source as p;
use crate::gojson::go_json;
use crate::link::Link;

/// Config of the Contiv object `Network` as on the wire.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self", default)]
pub struct Network {
    /// `key`: The object key.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub key: String,
    /// `cfgdTag`: Configured Network Tag.
    #[serde(rename = "cfgdTag", skip_serializing_if = "String::is_empty")]
    pub cfgd_tag: String,
    /// `encap`: Encapsulation.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub encap: String,
    /// `gateway`: Gateway.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub gateway: String,
    /// `ipv6Gateway`: IPv6Gateway.
    #[serde(rename = "ipv6Gateway", skip_serializing_if = "String::is_empty")]
    pub ipv6_gateway: String,
    /// `ipv6Subnet`: IPv6Subnet.
    #[serde(rename = "ipv6Subnet", skip_serializing_if = "String::is_empty")]
    pub ipv6_subnet: String,
    /// `networkName`: Network name.
    #[serde(rename = "networkName", skip_serializing_if = "String::is_empty")]
    pub network_name: String,
    /// `nwType`: Network Type.
    #[serde(rename = "nwType", skip_serializing_if = "String::is_empty")]
    pub nw_type: String,
    /// `pktTag`: Vlan/Vxlan Tag.
    #[serde(rename = "pktTag", skip_serializing_if = "crate::gojson::is_zero")]
    pub pkt_tag: i64,
    /// `subnet`: Subnet.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub subnet: String,
    /// `tenantName`: Tenant Name.
    #[serde(rename = "tenantName", skip_serializing_if = "String::is_empty")]
    pub tenant_name: String,
    /// `link-sets`.
    #[serde(rename = "link-sets")]
    pub link_sets: NetworkLinkSets,
    /// `links`.
    pub links: NetworkLinks,
}

/// `link-sets` of Network: maps from the linked object's key to the link.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self", default)]
pub struct NetworkLinkSets {
    /// `EndpointGroups`.
    #[serde(rename = "EndpointGroups", skip_serializing_if = "BTreeMap::is_empty")]
    pub endpoint_groups: BTreeMap<String, Link>,
    /// `Servicelbs`.
    #[serde(rename = "Servicelbs", skip_serializing_if = "BTreeMap::is_empty")]
    pub servicelbs: BTreeMap<String, Link>,
    /// `Services`.
    #[serde(rename = "Services", skip_serializing_if = "BTreeMap::is_empty")]
    pub services: BTreeMap<String, Link>,
}

/// `links` of Network: single links (an unset one encodes as `{}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self", default)]
pub struct NetworkLinks {
    /// `Tenant`.
    #[serde(rename = "Tenant")]
    pub tenant: Link,
}

/// Runtime state of Network shown by inspect (`Oper`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self", default)]
pub struct NetworkOper {
    /// `allocatedAddressesCount`: number of allocated addresses.
    #[serde(
        rename = "allocatedAddressesCount",
        skip_serializing_if = "crate::gojson::is_zero"
    )]
    pub allocated_addresses_count: i64,
    /// `allocatedIPAddresses`: allocated IP addresses.
    #[serde(
        rename = "allocatedIPAddresses",
        skip_serializing_if = "String::is_empty"
    )]
    pub allocated_ip_addresses: String,
    /// `availableIPAddresses`: Available IP addresses.
    #[serde(
        rename = "availableIPAddresses",
        skip_serializing_if = "String::is_empty"
    )]
    pub available_ip_addresses: String,
    /// `endpoints`: endpoints in the network.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<EndpointOper>,
    /// `externalPktTag`: external packet tag.
    #[serde(
        rename = "externalPktTag",
        skip_serializing_if = "crate::gojson::is_zero"
    )]
    pub external_pkt_tag: i64,
    /// `networkTag`: Derived Network Tag.
    #[serde(rename = "networkTag", skip_serializing_if = "String::is_empty")]
    pub network_tag: String,
    /// `numEndpoints`: number of endpoints.
    #[serde(
        rename = "numEndpoints",
        skip_serializing_if = "crate::gojson::is_zero"
    )]
    pub num_endpoints: i64,
    /// `pktTag`: internal packet tag.
    #[serde(rename = "pktTag", skip_serializing_if = "crate::gojson::is_zero")]
    pub pkt_tag: i64,
}

go_json!(Network, NetworkLinkSets, NetworkLinks, NetworkOper);

model_object!(Network, Network, NetworkOper, [tenant_name, network_name]);

// Contiv's field checks for a network, in Go's order; fills `nwType` "" -> "data".
object_fields!(Network {
    "cfgdTag" => string(cfgd_tag).max_len(128).pattern(p::CFGD_TAG),
    "encap" => string(encap).pattern(p::ENCAP).required(),
    "gateway" => string(gateway).pattern(p::IPV4_OR_EMPTY),
    "ipv6Gateway" => string(ipv6_gateway).pattern(p::IPV6_GATEWAY),
    "ipv6Subnet" => string(ipv6_subnet).pattern(p::IPV6_SUBNET),
    "networkName" => string(network_name).max_len(64).pattern(p::NAME).required(),
    "nwType" => string(nw_type).pattern(p::NW_TYPE).default("data"),
    // No lower bound in Contiv's schema; a negative tag can never be allocated.
    "pktTag" => int(pkt_tag).min(0).max(16_777_216),
    "subnet" => string(subnet).pattern(p::NETWORK_SUBNET).required(),
    "tenantName" => string(tenant_name).max_len(64).pattern(p::NAME).required(),
});
