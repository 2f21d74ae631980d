//! The `network` object (key `tenantName:networkName`), its link-sets, links and oper record.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{model_object, EndpointOper};
use crate::format as f;
use crate::gojson::go_json;
use crate::link::Link;
use crate::validate as v;
use crate::ValidationError;

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

impl Network {
    /// Contiv's field checks for a network, in Go's order; fills `nwType` "" -> "data".
    fn validate_fields(&mut self) -> Result<(), ValidationError> {
        v::string("cfgdTag", &self.cfgd_tag, 128, &f::CFGD_TAG)?;
        v::format("encap", &self.encap, &f::ENCAP)?;
        v::format("gateway", &self.gateway, &f::IPV4_OR_EMPTY)?;
        v::format("ipv6Gateway", &self.ipv6_gateway, &f::IPV6_GATEWAY)?;
        v::format("ipv6Subnet", &self.ipv6_subnet, &f::IPV6_SUBNET)?;
        v::string("networkName", &self.network_name, 64, &f::NAME)?;
        if self.nw_type.is_empty() {
            self.nw_type = "data".to_owned();
        }
        v::format("nwType", &self.nw_type, &f::NW_TYPE)?;
        v::max("pktTag", self.pkt_tag, 16_777_216)?;
        v::format("subnet", &self.subnet, &f::NETWORK_SUBNET)?;
        v::string("tenantName", &self.tenant_name, 64, &f::NAME)
    }
}
