//! The Contiv object kinds: type names, REST route plurals and key fields.
//!
//! Plurals are the URL segments Contiv's generated `AddRoutes` registers
//! (`/api/v1/<plural>/{key}/`, `/api/v1/inspect/<plural>/{key}/`), including its quirks
//! (`policys`, `Bgps`, `serviceLBs`, `netprofiles`). `endpoints` only has the inspect route.

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
