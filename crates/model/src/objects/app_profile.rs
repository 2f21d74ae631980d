//! The `appProfile` object (key `tenantName:appProfileName`), its link-sets and links (no oper).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{model_object, object_fields, NoOper};
use crate::format::source as p;
use crate::gojson::go_json;
use crate::link::Link;

/// Config of the Contiv object `AppProfile` as on the wire.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self", default)]
pub struct AppProfile {
    /// `key`: The object key.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub key: String,
    /// `appProfileName`: Application Profile Name.
    #[serde(rename = "appProfileName", skip_serializing_if = "String::is_empty")]
    pub app_profile_name: String,
    /// `endpointGroups`: Member groups of the appProf.
    #[serde(rename = "endpointGroups", skip_serializing_if = "Vec::is_empty")]
    pub endpoint_groups: Vec<String>,
    /// `tenantName`: Tenant Name.
    #[serde(rename = "tenantName", skip_serializing_if = "String::is_empty")]
    pub tenant_name: String,
    /// `link-sets`.
    #[serde(rename = "link-sets")]
    pub link_sets: AppProfileLinkSets,
    /// `links`.
    pub links: AppProfileLinks,
}

/// `link-sets` of AppProfile: maps from the linked object's key to the link.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self", default)]
pub struct AppProfileLinkSets {
    /// `EndpointGroups`.
    #[serde(rename = "EndpointGroups", skip_serializing_if = "BTreeMap::is_empty")]
    pub endpoint_groups: BTreeMap<String, Link>,
}

/// `links` of AppProfile: single links (an unset one encodes as `{}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self", default)]
pub struct AppProfileLinks {
    /// `Tenant`.
    #[serde(rename = "Tenant")]
    pub tenant: Link,
}

go_json!(AppProfile, AppProfileLinkSets, AppProfileLinks);

model_object!(
    AppProfile,
    AppProfile,
    NoOper,
    [tenant_name, app_profile_name]
);

// Contiv's field checks for an app profile, in Go's order.
object_fields!(AppProfile {
    "appProfileName" => string(app_profile_name).max_len(64).pattern(p::NAME).required(),
    "endpointGroups" => list(endpoint_groups),
    "tenantName" => string(tenant_name).max_len(64).pattern(p::NAME).required(),
});
