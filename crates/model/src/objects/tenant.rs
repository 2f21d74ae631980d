//! The `tenant` object (key `tenantName`), its link-sets and oper record.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{
    model_object, object_fields, EndpointGroupOper, EndpointOper, NetworkOper, PolicyOper,
    ServiceLbOper,
};
use crate::format::source as p;
use crate::gojson::go_json;
use crate::link::Link;

/// Config of the Contiv object `Tenant` as on the wire.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self", default)]
pub struct Tenant {
    /// `key`: The object key.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub key: String,
    /// `defaultNetwork`: Network name.
    #[serde(rename = "defaultNetwork", skip_serializing_if = "String::is_empty")]
    pub default_network: String,
    /// `tenantName`: Tenant Name.
    #[serde(rename = "tenantName", skip_serializing_if = "String::is_empty")]
    pub tenant_name: String,
    /// `link-sets`.
    #[serde(rename = "link-sets")]
    pub link_sets: TenantLinkSets,
}

/// `link-sets` of Tenant: maps from the linked object's key to the link.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self", default)]
pub struct TenantLinkSets {
    /// `AppProfiles`.
    #[serde(rename = "AppProfiles", skip_serializing_if = "BTreeMap::is_empty")]
    pub app_profiles: BTreeMap<String, Link>,
    /// `EndpointGroups`.
    #[serde(rename = "EndpointGroups", skip_serializing_if = "BTreeMap::is_empty")]
    pub endpoint_groups: BTreeMap<String, Link>,
    /// `NetProfiles`.
    #[serde(rename = "NetProfiles", skip_serializing_if = "BTreeMap::is_empty")]
    pub net_profiles: BTreeMap<String, Link>,
    /// `Networks`.
    #[serde(rename = "Networks", skip_serializing_if = "BTreeMap::is_empty")]
    pub networks: BTreeMap<String, Link>,
    /// `Policies`.
    #[serde(rename = "Policies", skip_serializing_if = "BTreeMap::is_empty")]
    pub policies: BTreeMap<String, Link>,
    /// `Servicelbs`.
    #[serde(rename = "Servicelbs", skip_serializing_if = "BTreeMap::is_empty")]
    pub servicelbs: BTreeMap<String, Link>,
    /// `VolumeProfiles`.
    #[serde(rename = "VolumeProfiles", skip_serializing_if = "BTreeMap::is_empty")]
    pub volume_profiles: BTreeMap<String, Link>,
    /// `Volumes`.
    #[serde(rename = "Volumes", skip_serializing_if = "BTreeMap::is_empty")]
    pub volumes: BTreeMap<String, Link>,
}

/// Runtime state of Tenant shown by inspect (`Oper`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self", default)]
pub struct TenantOper {
    /// `endpointGroups`: endpointGroups in the tenant.
    #[serde(rename = "endpointGroups", skip_serializing_if = "Vec::is_empty")]
    pub endpoint_groups: Vec<EndpointGroupOper>,
    /// `endpoints`: endpoints in the tenant.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<EndpointOper>,
    /// `networks`: networks in the tenant.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub networks: Vec<NetworkOper>,
    /// `policies`: policies in the tenant.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<PolicyOper>,
    /// `servicelbs`: servicelbs in the tenant.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub servicelbs: Vec<ServiceLbOper>,
    /// `totalAppProfiles`: total number of App-Profiles.
    #[serde(
        rename = "totalAppProfiles",
        skip_serializing_if = "crate::gojson::is_zero"
    )]
    pub total_app_profiles: i64,
    /// `totalEPGs`: total number of EPGs.
    #[serde(rename = "totalEPGs", skip_serializing_if = "crate::gojson::is_zero")]
    pub total_epgs: i64,
    /// `totalEndpoints`: total number of endpoints in the tenant.
    #[serde(
        rename = "totalEndpoints",
        skip_serializing_if = "crate::gojson::is_zero"
    )]
    pub total_endpoints: i64,
    /// `totalNetprofiles`: total number of Netprofiles.
    #[serde(
        rename = "totalNetprofiles",
        skip_serializing_if = "crate::gojson::is_zero"
    )]
    pub total_netprofiles: i64,
    /// `totalNetworks`: total number of networks.
    #[serde(
        rename = "totalNetworks",
        skip_serializing_if = "crate::gojson::is_zero"
    )]
    pub total_networks: i64,
    /// `totalPolicies`: total number of totalPolicies.
    #[serde(
        rename = "totalPolicies",
        skip_serializing_if = "crate::gojson::is_zero"
    )]
    pub total_policies: i64,
    /// `totalServicelbs`: total number of Servicelbs.
    #[serde(
        rename = "totalServicelbs",
        skip_serializing_if = "crate::gojson::is_zero"
    )]
    pub total_servicelbs: i64,
}

go_json!(Tenant, TenantLinkSets, TenantOper);

model_object!(Tenant, Tenant, TenantOper, [tenant_name]);

// Contiv's field checks for a tenant, in Go's order.
object_fields!(Tenant {
    "defaultNetwork" => string(default_network).max_len(64).pattern(p::NAME_OR_EMPTY),
    "tenantName" => string(tenant_name).max_len(64).pattern(p::NAME).required(),
});
