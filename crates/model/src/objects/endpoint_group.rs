//! The `endpointGroup` object (key `tenantName:groupName`), its link-sets, links and oper record.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{model_object, object_fields, EndpointOper};
use crate::format::source as p;
use crate::gojson::go_json;
use crate::link::Link;

/// Config of the Contiv object `EndpointGroup` as on the wire.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self", default)]
pub struct EndpointGroup {
    /// `key`: The object key.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub key: String,
    /// `cfgdTag`.
    #[serde(rename = "cfgdTag", skip_serializing_if = "String::is_empty")]
    pub cfgd_tag: String,
    /// `extContractsGrps`.
    #[serde(rename = "extContractsGrps", skip_serializing_if = "Vec::is_empty")]
    pub ext_contracts_grps: Vec<String>,
    /// `groupName`.
    #[serde(rename = "groupName", skip_serializing_if = "String::is_empty")]
    pub group_name: String,
    /// `ipPool`: IP-pool.
    #[serde(rename = "ipPool", skip_serializing_if = "String::is_empty")]
    pub ip_pool: String,
    /// `netProfile`.
    #[serde(rename = "netProfile", skip_serializing_if = "String::is_empty")]
    pub net_profile: String,
    /// `networkName`.
    #[serde(rename = "networkName", skip_serializing_if = "String::is_empty")]
    pub network_name: String,
    /// `policies`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<String>,
    /// `tenantName`.
    #[serde(rename = "tenantName", skip_serializing_if = "String::is_empty")]
    pub tenant_name: String,
    /// `link-sets`.
    #[serde(rename = "link-sets")]
    pub link_sets: EndpointGroupLinkSets,
    /// `links`.
    pub links: EndpointGroupLinks,
}

/// `link-sets` of EndpointGroup: maps from the linked object's key to the link.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self", default)]
pub struct EndpointGroupLinkSets {
    /// `ExtContractsGrps`.
    #[serde(
        rename = "ExtContractsGrps",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub ext_contracts_grps: BTreeMap<String, Link>,
    /// `MatchRules`.
    #[serde(rename = "MatchRules", skip_serializing_if = "BTreeMap::is_empty")]
    pub match_rules: BTreeMap<String, Link>,
    /// `Policies`.
    #[serde(rename = "Policies", skip_serializing_if = "BTreeMap::is_empty")]
    pub policies: BTreeMap<String, Link>,
    /// `Services`.
    #[serde(rename = "Services", skip_serializing_if = "BTreeMap::is_empty")]
    pub services: BTreeMap<String, Link>,
}

/// `links` of EndpointGroup: single links (an unset one encodes as `{}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self", default)]
pub struct EndpointGroupLinks {
    /// `AppProfile`.
    #[serde(rename = "AppProfile")]
    pub app_profile: Link,
    /// `NetProfile`.
    #[serde(rename = "NetProfile")]
    pub net_profile: Link,
    /// `Network`.
    #[serde(rename = "Network")]
    pub network: Link,
    /// `Tenant`.
    #[serde(rename = "Tenant")]
    pub tenant: Link,
}

/// Runtime state of EndpointGroup shown by inspect (`Oper`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self", default)]
pub struct EndpointGroupOper {
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
    /// `endpoints`: endpoints in the group.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<EndpointOper>,
    /// `externalPktTag`: external packet tag.
    #[serde(
        rename = "externalPktTag",
        skip_serializing_if = "crate::gojson::is_zero"
    )]
    pub external_pkt_tag: i64,
    /// `groupTag`: Derived EndpointGroup Tag.
    #[serde(rename = "groupTag", skip_serializing_if = "String::is_empty")]
    pub group_tag: String,
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

go_json!(
    EndpointGroup,
    EndpointGroupLinkSets,
    EndpointGroupLinks,
    EndpointGroupOper
);

model_object!(
    EndpointGroup,
    EndpointGroup,
    EndpointGroupOper,
    [tenant_name, group_name]
);

// Contiv's field checks for an endpoint group, in Go's order (`netProfile` is only
// length-checked, `ipPool` only format-checked).
object_fields!(EndpointGroup {
    "cfgdTag" => string(cfgd_tag).max_len(128).pattern(p::CFGD_TAG),
    "extContractsGrps" => list(ext_contracts_grps),
    "groupName" => string(group_name).max_len(64).pattern(p::NAME).required(),
    "ipPool" => string(ip_pool).pattern(p::IP_POOL),
    "netProfile" => string(net_profile).max_len(64),
    "networkName" => string(network_name).max_len(64).pattern(p::NAME).required(),
    "policies" => list(policies),
    "tenantName" => string(tenant_name).max_len(64).pattern(p::NAME).required(),
});
