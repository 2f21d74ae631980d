//! The `global` object (key `name`, always "global") and its oper record.

use serde::{Deserialize, Serialize};

use super::{model_object, object_fields};
use crate::format::source as p;
use crate::gojson::go_json;

/// Config of the Contiv object `Global` as on the wire.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self", default)]
pub struct Global {
    /// `key`: The object key.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub key: String,
    /// `arpMode`: ARP Mode.
    #[serde(rename = "arpMode", skip_serializing_if = "String::is_empty")]
    pub arp_mode: String,
    /// `fwdMode`: Forwarding Mode.
    #[serde(rename = "fwdMode", skip_serializing_if = "String::is_empty")]
    pub fwd_mode: String,
    /// `name`: name of this block(must be 'global').
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// `networkInfraType`: Network infrastructure type.
    #[serde(rename = "networkInfraType", skip_serializing_if = "String::is_empty")]
    pub network_infra_type: String,
    /// `pvtSubnet`: Private Subnet used by host bridge.
    #[serde(rename = "pvtSubnet", skip_serializing_if = "String::is_empty")]
    pub pvt_subnet: String,
    /// `vlans`: Allowed vlan range.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub vlans: String,
    /// `vxlans`: Allwed vxlan range.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub vxlans: String,
}

/// Runtime state of Global shown by inspect (`Oper`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self", default)]
pub struct GlobalOper {
    /// `clusterMode`.
    #[serde(rename = "clusterMode", skip_serializing_if = "String::is_empty")]
    pub cluster_mode: String,
    /// `defaultNetwork`.
    #[serde(rename = "defaultNetwork", skip_serializing_if = "String::is_empty")]
    pub default_network: String,
    /// `freeVXLANsStart`.
    #[serde(
        rename = "freeVXLANsStart",
        skip_serializing_if = "crate::gojson::is_zero"
    )]
    pub free_vxlans_start: i64,
    /// `numNetworks`.
    #[serde(rename = "numNetworks", skip_serializing_if = "crate::gojson::is_zero")]
    pub num_networks: i64,
    /// `vlansInUse`.
    #[serde(rename = "vlansInUse", skip_serializing_if = "String::is_empty")]
    pub vlans_in_use: String,
    /// `vxlansInUse`.
    #[serde(rename = "vxlansInUse", skip_serializing_if = "String::is_empty")]
    pub vxlans_in_use: String,
}

go_json!(Global, GlobalOper);

model_object!(Global, Global, GlobalOper, [name]);

// Contiv's field checks for the global object, in Go's order (no defaults are filled:
// `pvtSubnet`, `vlans` and `vxlans` are required by their formats).
object_fields!(Global {
    "arpMode" => string(arp_mode).max_len(64).pattern(p::ARP_MODE),
    "fwdMode" => string(fwd_mode).max_len(64).pattern(p::FWD_MODE),
    "name" => string(name).max_len(64).pattern(p::GLOBAL_NAME).required(),
    "networkInfraType" => string(network_infra_type).max_len(64).pattern(p::NETWORK_INFRA_TYPE),
    "pvtSubnet" => string(pvt_subnet).pattern(p::PVT_SUBNET).required(),
    "vlans" => string(vlans).pattern(p::VLANS).required(),
    "vxlans" => string(vxlans).pattern(p::VXLANS).required(),
});
