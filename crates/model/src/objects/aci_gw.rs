//! The `aciGw` object (key `name`, always "aciGw") and its oper record.

use serde::{Deserialize, Serialize};

use super::{model_object, object_fields};
use crate::format::source as p;
use crate::gojson::go_json;

/// Config of the Contiv object `AciGw` as on the wire.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self", default)]
pub struct AciGw {
    /// `key`: The object key.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub key: String,
    /// `enforcePolicies`: Enforce security policy.
    #[serde(rename = "enforcePolicies", skip_serializing_if = "String::is_empty")]
    pub enforce_policies: String,
    /// `includeCommonTenant`: Include common tenant when searching for objects.
    #[serde(
        rename = "includeCommonTenant",
        skip_serializing_if = "String::is_empty"
    )]
    pub include_common_tenant: String,
    /// `name`: name of this block(must be 'aciGw').
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// `nodeBindings`: List of ACI complete nodes to be bound.
    #[serde(rename = "nodeBindings", skip_serializing_if = "String::is_empty")]
    pub node_bindings: String,
    /// `pathBindings`: List of ACI fabric ports connected to cluster.
    #[serde(rename = "pathBindings", skip_serializing_if = "String::is_empty")]
    pub path_bindings: String,
    /// `physicalDomain`: Name of the physical domain.
    #[serde(rename = "physicalDomain", skip_serializing_if = "String::is_empty")]
    pub physical_domain: String,
}

/// Runtime state of AciGw shown by inspect (`Oper`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self", default)]
pub struct AciGwOper {
    /// `numAppProfiles`.
    #[serde(
        rename = "numAppProfiles",
        skip_serializing_if = "crate::gojson::is_zero"
    )]
    pub num_app_profiles: i64,
}

go_json!(AciGw, AciGwOper);

model_object!(AciGw, AciGw, AciGwOper, [name]);

// Contiv's field checks for the aciGw object, in Go's order (`enforcePolicies` and
// `includeCommonTenant` must be "yes"/"no": the schema default "no" is *not* filled).
object_fields!(AciGw {
    "enforcePolicies" => string(enforce_policies).max_len(64).pattern(p::YES_NO).required(),
    "includeCommonTenant" => string(include_common_tenant).max_len(64).pattern(p::YES_NO).required(),
    "name" => string(name).max_len(64).pattern(p::ACI_GW_NAME).required(),
    "nodeBindings" => string(node_bindings).max_len(2048).pattern(p::NODE_BINDINGS),
    "pathBindings" => string(path_bindings).max_len(2048).pattern(p::PATH_BINDINGS),
    "physicalDomain" => string(physical_domain).max_len(128).pattern(p::NAME).required(),
});
