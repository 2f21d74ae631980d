//! The `extContractsGroup` object (key `tenantName:contractsGroupName`) and its link-sets (no links, no oper).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{model_object, object_fields, NoOper};
use crate::format::source as p;
use crate::gojson::go_json;
use crate::link::Link;

/// Config of the Contiv object `ExtContractsGroup` as on the wire.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self", default)]
pub struct ExtContractsGroup {
    /// `key`: The object key.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub key: String,
    /// `contracts`: Contracts list.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub contracts: Vec<String>,
    /// `contractsGroupName`: Contracts group name.
    #[serde(
        rename = "contractsGroupName",
        skip_serializing_if = "String::is_empty"
    )]
    pub contracts_group_name: String,
    /// `contractsType`: Contracts type.
    #[serde(rename = "contractsType", skip_serializing_if = "String::is_empty")]
    pub contracts_type: String,
    /// `tenantName`: Tenant name.
    #[serde(rename = "tenantName", skip_serializing_if = "String::is_empty")]
    pub tenant_name: String,
    /// `link-sets`.
    #[serde(rename = "link-sets")]
    pub link_sets: ExtContractsGroupLinkSets,
}

/// `link-sets` of ExtContractsGroup: maps from the linked object's key to the link.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self", default)]
pub struct ExtContractsGroupLinkSets {
    /// `EndpointGroups`.
    #[serde(rename = "EndpointGroups", skip_serializing_if = "BTreeMap::is_empty")]
    pub endpoint_groups: BTreeMap<String, Link>,
}

go_json!(ExtContractsGroup, ExtContractsGroupLinkSets);

model_object!(
    ExtContractsGroup,
    ExtContractsGroup,
    NoOper,
    [tenant_name, contracts_group_name]
);

// Contiv's field checks for an external contracts group, in Go's order (`contractsType`
// is not checked).
object_fields!(ExtContractsGroup {
    "contracts" => list(contracts),
    "contractsGroupName" => string(contracts_group_name).max_len(64).pattern(p::NAME).required(),
    "contractsType" => string(contracts_type),
    "tenantName" => string(tenant_name).max_len(64).pattern(p::NAME).required(),
});
