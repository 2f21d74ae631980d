//! The `rule` object (key `tenantName:policyName:ruleId`), its link-sets and links (no oper).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{model_object, object_fields, NoOper};
use crate::format::source as p;
use crate::gojson::go_json;
use crate::link::Link;

/// Config of the Contiv object `Rule` as on the wire.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self", default)]
pub struct Rule {
    /// `key`: The object key.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub key: String,
    /// `action`: Action.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub action: String,
    /// `direction`: Direction.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub direction: String,
    /// `fromEndpointGroup`: From Endpoint Group.
    #[serde(rename = "fromEndpointGroup", skip_serializing_if = "String::is_empty")]
    pub from_endpoint_group: String,
    /// `fromIpAddress`: IP Address.
    #[serde(rename = "fromIpAddress", skip_serializing_if = "String::is_empty")]
    pub from_ip_address: String,
    /// `fromNetwork`: From Network.
    #[serde(rename = "fromNetwork", skip_serializing_if = "String::is_empty")]
    pub from_network: String,
    /// `policyName`: Policy Name.
    #[serde(rename = "policyName", skip_serializing_if = "String::is_empty")]
    pub policy_name: String,
    /// `port`: Port No.
    #[serde(skip_serializing_if = "crate::gojson::is_zero")]
    pub port: i64,
    /// `priority`: Priority.
    #[serde(skip_serializing_if = "crate::gojson::is_zero")]
    pub priority: i64,
    /// `protocol`: Protocol.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub protocol: String,
    /// `ruleId`: Rule Id.
    #[serde(rename = "ruleId", skip_serializing_if = "String::is_empty")]
    pub rule_id: String,
    /// `tenantName`: Tenant Name.
    #[serde(rename = "tenantName", skip_serializing_if = "String::is_empty")]
    pub tenant_name: String,
    /// `toEndpointGroup`: To Endpoint Group.
    #[serde(rename = "toEndpointGroup", skip_serializing_if = "String::is_empty")]
    pub to_endpoint_group: String,
    /// `toIpAddress`: IP Address.
    #[serde(rename = "toIpAddress", skip_serializing_if = "String::is_empty")]
    pub to_ip_address: String,
    /// `toNetwork`: To Network.
    #[serde(rename = "toNetwork", skip_serializing_if = "String::is_empty")]
    pub to_network: String,
    /// `link-sets`.
    #[serde(rename = "link-sets")]
    pub link_sets: RuleLinkSets,
    /// `links`.
    pub links: RuleLinks,
}

/// `link-sets` of Rule: maps from the linked object's key to the link.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self", default)]
pub struct RuleLinkSets {
    /// `Policies`.
    #[serde(rename = "Policies", skip_serializing_if = "BTreeMap::is_empty")]
    pub policies: BTreeMap<String, Link>,
}

/// `links` of Rule: single links (an unset one encodes as `{}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self", default)]
pub struct RuleLinks {
    /// `MatchEndpointGroup`.
    #[serde(rename = "MatchEndpointGroup")]
    pub match_endpoint_group: Link,
}

go_json!(Rule, RuleLinkSets, RuleLinks);

model_object!(Rule, Rule, NoOper, [tenant_name, policy_name, rule_id]);

// Contiv's field checks for a rule, in Go's order; fills `priority` 0 -> 1.
object_fields!(Rule {
    "action" => string(action).pattern(p::RULE_ACTION).required(),
    "direction" => string(direction).pattern(p::RULE_DIRECTION).required(),
    "fromEndpointGroup" => string(from_endpoint_group).max_len(64).pattern(p::NAME_OR_EMPTY),
    "fromIpAddress" => string(from_ip_address).pattern(p::RULE_IP),
    "fromNetwork" => string(from_network).max_len(64).pattern(p::NAME_OR_EMPTY),
    "policyName" => string(policy_name).max_len(64).pattern(p::NAME).required(),
    // Contiv's schema has no lower bound; Go stored -1 and the datapath then failed on it.
    "port" => int(port).min(0).max(65535),
    "priority" => int(priority).min(1).max(100).default("1"),
    "protocol" => string(protocol).pattern(p::RULE_PROTOCOL),
    "ruleId" => string(rule_id).max_len(64).pattern(p::NAME).required(),
    "tenantName" => string(tenant_name).max_len(64).pattern(p::NAME).required(),
    "toEndpointGroup" => string(to_endpoint_group).max_len(64).pattern(p::NAME_OR_EMPTY),
    "toIpAddress" => string(to_ip_address).pattern(p::RULE_IP),
    "toNetwork" => string(to_network).max_len(64).pattern(p::NAME_OR_EMPTY),
});
