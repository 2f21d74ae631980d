//! The Contiv object kinds: type names, REST route plurals and key fields.
//!
//! Each kind also names its field table ([`ObjectKind::fields`]) and its `link-sets` / `links`
//! members.
//!
//! Plurals are the URL segments Contiv's generated `AddRoutes` registers
//! (`/api/v1/<plural>/{key}/`, `/api/v1/inspect/<plural>/{key}/`), including its quirks
//! (`policys`, `Bgps`, `serviceLBs`, `netprofiles`). `endpoints` only has the inspect route.

use crate::objects::*;
use crate::FieldSpec;

/// One Contiv object type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ObjectKind {
    Tenant,
    Network,
    EndpointGroup,
    Policy,
    Rule,
    AppProfile,
    ServiceLb,
    NetProfile,
    Global,
    Bgp,
    AciGw,
    ExtContractsGroup,
    Endpoint,
}

impl ObjectKind {
    /// Every kind.
    pub const ALL: [ObjectKind; 13] = [
        ObjectKind::Tenant,
        ObjectKind::Network,
        ObjectKind::EndpointGroup,
        ObjectKind::Policy,
        ObjectKind::Rule,
        ObjectKind::AppProfile,
        ObjectKind::ServiceLb,
        ObjectKind::NetProfile,
        ObjectKind::Global,
        ObjectKind::Bgp,
        ObjectKind::AciGw,
        ObjectKind::ExtContractsGroup,
        ObjectKind::Endpoint,
    ];

    /// Contiv's object name (what `GetType()` returns and links carry in `type`).
    pub fn type_name(self) -> &'static str {
        match self {
            ObjectKind::Tenant => "tenant",
            ObjectKind::Network => "network",
            ObjectKind::EndpointGroup => "endpointGroup",
            ObjectKind::Policy => "policy",
            ObjectKind::Rule => "rule",
            ObjectKind::AppProfile => "appProfile",
            ObjectKind::ServiceLb => "serviceLB",
            ObjectKind::NetProfile => "netprofile",
            ObjectKind::Global => "global",
            ObjectKind::Bgp => "Bgp",
            ObjectKind::AciGw => "aciGw",
            ObjectKind::ExtContractsGroup => "extContractsGroup",
            ObjectKind::Endpoint => "endpoint",
        }
    }

    /// The kind with this type name.
    pub fn from_type_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.type_name() == s)
    }

    /// URL segment exactly as Contiv routes it.
    pub fn plural(self) -> &'static str {
        match self {
            ObjectKind::Tenant => "tenants",
            ObjectKind::Network => "networks",
            ObjectKind::EndpointGroup => "endpointGroups",
            ObjectKind::Policy => "policys",
            ObjectKind::Rule => "rules",
            ObjectKind::AppProfile => "appProfiles",
            ObjectKind::ServiceLb => "serviceLBs",
            ObjectKind::NetProfile => "netprofiles",
            ObjectKind::Global => "globals",
            ObjectKind::Bgp => "Bgps",
            ObjectKind::AciGw => "aciGws",
            ObjectKind::ExtContractsGroup => "extContractsGroups",
            ObjectKind::Endpoint => "endpoints",
        }
    }

    /// The kind routed under this URL segment (exact, case-sensitive like gorilla/mux).
    pub fn from_plural(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.plural() == s)
    }

    /// JSON names of the key fields, in key order (joined by `:` to form the key).
    pub fn key_fields(self) -> &'static [&'static str] {
        match self {
            ObjectKind::Tenant => &["tenantName"],
            ObjectKind::Network => &["tenantName", "networkName"],
            ObjectKind::EndpointGroup => &["tenantName", "groupName"],
            ObjectKind::Policy => &["tenantName", "policyName"],
            ObjectKind::Rule => &["tenantName", "policyName", "ruleId"],
            ObjectKind::AppProfile => &["tenantName", "appProfileName"],
            ObjectKind::ServiceLb => &["tenantName", "serviceName"],
            ObjectKind::NetProfile => &["tenantName", "profileName"],
            ObjectKind::Global => &["name"],
            ObjectKind::Bgp => &["hostname"],
            ObjectKind::AciGw => &["name"],
            ObjectKind::ExtContractsGroup => &["tenantName", "contractsGroupName"],
            ObjectKind::Endpoint => &["endpointID"],
        }
    }

    /// The field table of the config object (JSON names, types and the constraints `validate`
    /// enforces), in Go's validation order; empty for the inspect-only `endpoint`. `key`,
    /// `link-sets` and `links` are not listed.
    pub fn fields(self) -> &'static [FieldSpec] {
        match self {
            ObjectKind::Tenant => Tenant::FIELDS,
            ObjectKind::Network => Network::FIELDS,
            ObjectKind::EndpointGroup => EndpointGroup::FIELDS,
            ObjectKind::Policy => Policy::FIELDS,
            ObjectKind::Rule => Rule::FIELDS,
            ObjectKind::AppProfile => AppProfile::FIELDS,
            ObjectKind::ServiceLb => ServiceLb::FIELDS,
            ObjectKind::NetProfile => NetProfile::FIELDS,
            ObjectKind::Global => Global::FIELDS,
            ObjectKind::Bgp => Bgp::FIELDS,
            ObjectKind::AciGw => AciGw::FIELDS,
            ObjectKind::ExtContractsGroup => ExtContractsGroup::FIELDS,
            ObjectKind::Endpoint => Endpoint::FIELDS,
        }
    }

    /// Members of the object's `link-sets` (maps from key to [`Link`](crate::Link)); empty when
    /// the object has no `link-sets` at all.
    pub fn link_sets(self) -> &'static [&'static str] {
        match self {
            ObjectKind::Tenant => &[
                "AppProfiles",
                "EndpointGroups",
                "NetProfiles",
                "Networks",
                "Policies",
                "Servicelbs",
                "VolumeProfiles",
                "Volumes",
            ],
            ObjectKind::Network => &["EndpointGroups", "Servicelbs", "Services"],
            ObjectKind::EndpointGroup => {
                &["ExtContractsGrps", "MatchRules", "Policies", "Services"]
            }
            ObjectKind::Policy => &["EndpointGroups", "Rules"],
            ObjectKind::Rule => &["Policies"],
            ObjectKind::AppProfile | ObjectKind::NetProfile | ObjectKind::ExtContractsGroup => {
                &["EndpointGroups"]
            }
            ObjectKind::ServiceLb
            | ObjectKind::Global
            | ObjectKind::Bgp
            | ObjectKind::AciGw
            | ObjectKind::Endpoint => &[],
        }
    }

    /// Members of the object's `links` (single [`Link`](crate::Link)s); empty when the object has
    /// no `links` at all.
    pub fn links(self) -> &'static [&'static str] {
        match self {
            ObjectKind::Network
            | ObjectKind::Policy
            | ObjectKind::AppProfile
            | ObjectKind::NetProfile => &["Tenant"],
            ObjectKind::EndpointGroup => &["AppProfile", "NetProfile", "Network", "Tenant"],
            ObjectKind::Rule => &["MatchEndpointGroup"],
            ObjectKind::ServiceLb => &["Network", "Tenant"],
            ObjectKind::Tenant
            | ObjectKind::Global
            | ObjectKind::Bgp
            | ObjectKind::AciGw
            | ObjectKind::ExtContractsGroup
            | ObjectKind::Endpoint => &[],
        }
    }

    /// False only for `endpoint`, which is inspect-only (no config, no CRUD routes).
    pub fn is_config(self) -> bool {
        self != ObjectKind::Endpoint
    }

    /// Whether Go's `<Obj>Inspect` has an `Oper` member: false for appProfile,
    /// extContractsGroup, netprofile and rule (their inspect is `{"Config": ...}` only).
    pub fn has_oper(self) -> bool {
        !matches!(
            self,
            ObjectKind::AppProfile
                | ObjectKind::ExtContractsGroup
                | ObjectKind::NetProfile
                | ObjectKind::Rule
        )
    }
}

impl std::fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.type_name())
    }
}
