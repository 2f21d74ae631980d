//! The compiler: typed groups, rules, networks and endpoints in, per-tenant [`TenantPolicy`] out.
//! Pure and deterministic (same input, same output, whatever the input order), so agents on every
//! host and netmaster's `explain` agree.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::ir::{CompiledRule, GroupRules, HostPolicy, PeerMatch, TenantPolicy};
use crate::spec::{AddrMatch, Direction, GroupRef, Member, NetworkRef, Peer, RuleId, RuleSpec};

/// Everything the compiler reads, for any number of tenants.
#[derive(Debug, Clone, Default)]
pub struct PolicyInput {
    pub networks: Vec<NetworkRef>,
    pub groups: Vec<GroupRef>,
    pub rules: Vec<RuleSpec>,
    pub endpoints: Vec<Member>,
}

/// Whose traffic the output checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope<'a> {
    /// What one host enforces: its own endpoints' traffic.
    Host(&'a str),
    /// Every endpoint, wherever it lives (`explain`).
    Cluster,
}

impl Scope<'_> {
    fn covers(&self, m: &Member) -> bool {
        match self {
            Scope::Host(h) => m.host == *h,
            Scope::Cluster => true,
        }
    }
}

/// Compiles the policy of `tenants` (every tenant of the input when `None`).
pub fn compile(
    input: &PolicyInput,
    scope: Scope<'_>,
    tenants: Option<&BTreeSet<String>>,
) -> HostPolicy {
    let wanted = |t: &str| tenants.is_none_or(|ts| ts.contains(t));
    let mut names: BTreeSet<&str> = BTreeSet::new();
    names.extend(input.groups.iter().map(|g| g.tenant.as_str()));
    names.extend(input.endpoints.iter().map(|e| e.tenant.as_str()));
    names
        .into_iter()
        .filter(|t| wanted(t))
        .map(|t| (t.to_string(), compile_tenant(input, scope, t)))
        .collect()
}

/// What a rule's peer matches: a group's member set (noted in `referenced`), a network's subnet,
/// addresses. `None` (and the rule noted in `skipped`) when the network does not exist.
fn resolve_peer(
    r: &RuleSpec,
    subnets: &BTreeMap<&str, ipnet::Ipv4Net>,
    referenced: &mut BTreeSet<String>,
    skipped: &mut Vec<(RuleId, String)>,
) -> Option<PeerMatch> {
    Some(match &r.peer {
        Peer::Any => PeerMatch::Any,
        Peer::Group(name) => {
            referenced.insert(name.clone());
            PeerMatch::GroupSet(name.clone())
        }
        Peer::Network(name) => match subnets.get(name.as_str()) {
            Some(net) => PeerMatch::Addrs(AddrMatch::Net(*net)),
            None => {
                if !skipped.iter().any(|(id, _)| *id == r.id) {
                    skipped.push((r.id.clone(), format!("network {name} not found")));
                }
                return None;
            }
        },
        Peer::Addrs(a) => PeerMatch::Addrs(*a),
    })
}

/// The rule side of a tenant's policy: per group its ordered rules, the groups rules refer to,
/// and the rules left out. It depends on networks, groups, policies and rules only, not on
/// endpoints, so a caller may keep it while only endpoints change ([`compile_members`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompiledRules {
    pub groups: Arc<BTreeMap<String, GroupRules>>,
    /// Groups whose members a rule matches (they get an address set).
    pub referenced: BTreeSet<String>,
    pub skipped: Vec<(RuleId, String)>,
}

/// Compiles one tenant.
pub fn compile_tenant(input: &PolicyInput, scope: Scope<'_>, tenant: &str) -> TenantPolicy {
    compile_members(input, scope, tenant, &compile_rules(input, tenant))
}

/// The rule side of `tenant`'s policy (see [`CompiledRules`]).
pub fn compile_rules(input: &PolicyInput, tenant: &str) -> CompiledRules {
    let subnets: BTreeMap<&str, _> = input
        .networks
        .iter()
        .filter(|n| n.tenant == tenant)
        .map(|n| (n.name.as_str(), n.subnet))
        .collect();
    let mut by_policy: BTreeMap<&str, Vec<&RuleSpec>> = BTreeMap::new();
    for r in input.rules.iter().filter(|r| r.id.tenant == tenant) {
        by_policy.entry(r.id.policy.as_str()).or_default().push(r);
    }
    let mut out = CompiledRules::default();
    let mut groups = BTreeMap::new();
    for g in input.groups.iter().filter(|g| g.tenant == tenant) {
        let policies: BTreeSet<&str> = g.policies.iter().map(String::as_str).collect();
        let mut rules = GroupRules::default();
        for r in policies.iter().filter_map(|p| by_policy.get(p)).flatten() {
            let Some(peer) = resolve_peer(r, &subnets, &mut out.referenced, &mut out.skipped)
            else {
                continue;
            };
            let c = CompiledRule {
                id: r.id.clone(),
                action: r.action,
                priority: r.priority,
                peer,
                protocol: r.protocol,
                port: r.port,
            };
            match r.direction {
                Direction::In => rules.ingress.push(c),
                Direction::Out => rules.egress.push(c),
            }
        }
        if rules.ingress.is_empty() && rules.egress.is_empty() {
            continue;
        }
        for list in [&mut rules.ingress, &mut rules.egress] {
            // First match decides: highest priority first, deny before allow, then by id so the
            // order (and the rendered ruleset) is deterministic.
            list.sort_by(|a, b| {
                b.priority
                    .cmp(&a.priority)
                    .then(a.action.cmp(&b.action))
                    .then_with(|| a.id.cmp(&b.id))
            });
        }
        groups.insert(g.name.clone(), rules);
    }
    out.groups = Arc::new(groups);
    out.skipped.sort();
    out
}

/// `tenant`'s policy from its compiled rules and the endpoints of `input` (only its endpoints
/// are read). Cheap next to [`compile_rules`]: linear in the tenant's endpoints.
pub fn compile_members(
    input: &PolicyInput,
    scope: Scope<'_>,
    tenant: &str,
    rules: &CompiledRules,
) -> TenantPolicy {
    let mut out = TenantPolicy {
        tenant: tenant.to_string(),
        groups: rules.groups.clone(),
        skipped: rules.skipped.clone(),
        ..Default::default()
    };
    for name in &rules.referenced {
        out.group_sets.entry(name.clone()).or_default();
    }
    for m in input.endpoints.iter().filter(|e| e.tenant == tenant) {
        if !m.group.is_empty() {
            out.add_member(&m.group, m.ip, scope.covers(m));
        }
    }
    out
}
