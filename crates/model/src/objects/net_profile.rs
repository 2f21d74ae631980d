//! The `netprofile` object (key `tenantName:profileName`), its link-sets and links (no oper).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{model_object, object_fields, NoOper};
use crate::format::source as p;
use crate::gojson::go_json;
use crate::link::Link;

/// Config of the Contiv object `NetProfile` as on the wire.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self", default)]
pub struct NetProfile {
    /// `key`: The object key.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub key: String,
    /// `DSCP`: DSCP.
    #[serde(rename = "DSCP", skip_serializing_if = "crate::gojson::is_zero")]
    pub dscp: i64,
    /// `bandwidth`: Allocated bandwidth.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub bandwidth: String,
    /// `burst`: burst size.
    #[serde(skip_serializing_if = "crate::gojson::is_zero")]
    pub burst: i64,
    /// `profileName`: Network profile name.
    #[serde(rename = "profileName", skip_serializing_if = "String::is_empty")]
    pub profile_name: String,
    /// `tenantName`: Tenant name.
    #[serde(rename = "tenantName", skip_serializing_if = "String::is_empty")]
    pub tenant_name: String,
    /// `link-sets`.
    #[serde(rename = "link-sets")]
    pub link_sets: NetProfileLinkSets,
    /// `links`.
    pub links: NetProfileLinks,
}

/// `link-sets` of NetProfile: maps from the linked object's key to the link.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self", default)]
pub struct NetProfileLinkSets {
    /// `EndpointGroups`.
    #[serde(rename = "EndpointGroups", skip_serializing_if = "BTreeMap::is_empty")]
    pub endpoint_groups: BTreeMap<String, Link>,
}

/// `links` of NetProfile: single links (an unset one encodes as `{}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self", default)]
pub struct NetProfileLinks {
    /// `Tenant`.
    #[serde(rename = "Tenant")]
    pub tenant: Link,
}

go_json!(NetProfile, NetProfileLinkSets, NetProfileLinks);

model_object!(NetProfile, NetProfile, NoOper, [tenant_name, profile_name]);

// Contiv's field checks for a netprofile, in Go's order (`profileName` is only
// length-checked and `tenantName` not at all, like Contiv; `DSCP` and `burst` have no
// lower bound).
object_fields!(NetProfile {
    "DSCP" => int(dscp).max(63),
    "bandwidth" => string(bandwidth).max_len(64).pattern(p::BANDWIDTH),
    "burst" => int(burst).max(10486),
    "profileName" => string(profile_name).max_len(64),
    "tenantName" => string(tenant_name),
});
