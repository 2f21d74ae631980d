//! The `policy` object (key `tenantName:policyName`), its link-sets, links and oper record.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{model_object, object_fields, EndpointOper};
use crate::format::source as p;
use crate::gojson::go_json;
use crate::link::Link;

/// Config of the Contiv object `Policy` as on the wire.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self", default)]
pub struct Policy {
    /// `key`: The object key.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub key: String,
    /// `policyName`: Policy Name.
    #[serde(rename = "policyName", skip_serializing_if = "String::is_empty")]
    pub policy_name: String,
    /// `tenantName`: Tenant Name.
    #[serde(rename = "tenantName", skip_serializing_if = "String::is_empty")]
    pub tenant_name: String,
    /// `link-sets`.
    #[serde(rename = "link-sets")]
    pub link_sets: PolicyLinkSets,
    /// `links`.
    pub links: PolicyLinks,
}

/// `link-sets` of Policy: maps from the linked object's key to the link.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self", default)]
pub struct PolicyLinkSets {
    /// `EndpointGroups`.
    #[serde(rename = "EndpointGroups", skip_serializing_if = "BTreeMap::is_empty")]
    pub endpoint_groups: BTreeMap<String, Link>,
    /// `Rules`.
    #[serde(rename = "Rules", skip_serializing_if = "BTreeMap::is_empty")]
    pub rules: BTreeMap<String, Link>,
}

/// `links` of Policy: single links (an unset one encodes as `{}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self", default)]
pub struct PolicyLinks {
    /// `Tenant`.
    #[serde(rename = "Tenant")]
    pub tenant: Link,
}

/// Runtime state of Policy shown by inspect (`Oper`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self", default)]
pub struct PolicyOper {
    /// `endpoints`: endpoints associate with the policy.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<EndpointOper>,
    /// `numEndpoints`: number of endpoints.
    #[serde(
        rename = "numEndpoints",
        skip_serializing_if = "crate::gojson::is_zero"
    )]
    pub num_endpoints: i64,
    /// `policyViolations`: number of policyViolations.
    #[serde(
        rename = "policyViolations",
        skip_serializing_if = "crate::gojson::is_zero"
    )]
    pub policy_violations: i64,
}

go_json!(Policy, PolicyLinkSets, PolicyLinks, PolicyOper);

model_object!(Policy, Policy, PolicyOper, [tenant_name, policy_name]);

// Contiv's field checks for a policy, in Go's order.
object_fields!(Policy {
    "policyName" => string(policy_name).max_len(64).pattern(p::NAME).required(),
    "tenantName" => string(tenant_name).max_len(64).pattern(p::NAME).required(),
});
