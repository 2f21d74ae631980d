//! The intermediate form the compiler produces and every consumer reads: per tenant, group
//! member address sets, per group the ordered in/out rule lists, and which addresses' traffic
//! this host checks. Datapaths render it (nftables today, OpenFlow later); `explain` evaluates it.
//!
//! Order is the semantics: within a list the first matching rule decides (the compiler sorts by
//! priority, highest first, deny before allow at equal priority), and an empty or unmatched list
//! allows.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::Ipv4Addr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::spec::{Action, AddrMatch, Protocol, RuleId};

/// What a compiled rule matches on the other side of the connection.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum PeerMatch {
    Any,
    /// Members of a group of the same tenant (an entry of [`TenantPolicy::group_sets`]).
    GroupSet(String),
    Addrs(AddrMatch),
}

/// One rule as enforced.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CompiledRule {
    pub id: RuleId,
    pub action: Action,
    pub priority: u8,
    pub peer: PeerMatch,
    pub protocol: Protocol,
    /// Destination port, 0 = any.
    pub port: u16,
}

/// The ordered rules of one group.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupRules {
    /// Rules for traffic entering the group's members (match the source).
    pub ingress: Vec<CompiledRule>,
    /// Rules for traffic leaving the group's members (match the destination).
    pub egress: Vec<CompiledRule>,
}

/// The policy of one tenant, as one host (or, for `explain`, the whole cluster) enforces it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantPolicy {
    pub tenant: String,
    /// Member addresses of every group a rule refers to, by group name (possibly empty).
    pub group_sets: BTreeMap<String, BTreeSet<Ipv4Addr>>,
    /// Groups with at least one rule, by name. Shared: IRs compiled from the same rules hold
    /// the same map (comparing them is a pointer comparison).
    pub groups: Arc<BTreeMap<String, GroupRules>>,
    /// Addresses whose incoming traffic is checked here → their group (local members of groups
    /// with in-rules).
    pub ingress_members: BTreeMap<Ipv4Addr, String>,
    /// Addresses whose outgoing traffic is checked here → their group (local members of groups
    /// with out-rules).
    pub egress_members: BTreeMap<Ipv4Addr, String>,
    /// Rules that were left out, with why (a network that does not exist ...).
    pub skipped: Vec<(RuleId, String)>,
}

/// Where a member of a group goes in a [`TenantPolicy`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemberPlaces {
    /// Its group's address set (a rule refers to the group).
    pub set: bool,
    /// The dispatch map of incoming traffic (the group has in-rules; local members only).
    pub ingress: bool,
    /// The dispatch map of outgoing traffic (the group has out-rules; local members only).
    pub egress: bool,
}

impl TenantPolicy {
    /// Where a local member of `group` belongs.
    pub fn member_places(&self, group: &str) -> MemberPlaces {
        let rules = self.groups.get(group);
        MemberPlaces {
            set: self.group_sets.contains_key(group),
            ingress: rules.is_some_and(|r| !r.ingress.is_empty()),
            egress: rules.is_some_and(|r| !r.egress.is_empty()),
        }
    }

    /// Adds `ip` as a member of `group`: to the group's set, and when `local` (its traffic is
    /// checked here) to the dispatch maps. Returns where it went.
    pub fn add_member(&mut self, group: &str, ip: Ipv4Addr, local: bool) -> MemberPlaces {
        let mut places = self.member_places(group);
        places.ingress &= local;
        places.egress &= local;
        if let Some(set) = self.group_sets.get_mut(group).filter(|_| places.set) {
            set.insert(ip);
        }
        if places.ingress {
            self.ingress_members.insert(ip, group.to_string());
        }
        if places.egress {
            self.egress_members.insert(ip, group.to_string());
        }
        places
    }

    /// Whether there is nothing to enforce.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// Number of rule entries installed (a rule attached to two groups counts twice).
    pub fn rule_count(&self) -> usize {
        self.groups
            .values()
            .map(|g| g.ingress.len() + g.egress.len())
            .sum()
    }

    /// Number of set and map elements installed.
    pub fn element_count(&self) -> usize {
        self.group_sets.values().map(BTreeSet::len).sum::<usize>()
            + self.ingress_members.len()
            + self.egress_members.len()
    }
}

/// Per tenant, what one host enforces.
pub type HostPolicy = BTreeMap<String, TenantPolicy>;

fn write_rule(f: &mut fmt::Formatter<'_>, r: &CompiledRule) -> fmt::Result {
    write!(f, "    {:>3} {:<5} ", r.priority, r.action.to_string())?;
    match &r.peer {
        PeerMatch::Any => write!(f, "any")?,
        PeerMatch::GroupSet(g) => write!(f, "group {g}")?,
        PeerMatch::Addrs(a) => write!(f, "addr {a}")?,
    }
    write!(f, " {}", r.protocol)?;
    if r.port != 0 {
        write!(f, "/{}", r.port)?;
    }
    writeln!(f, "  [{}]", r.id)
}

/// A stable text form for golden tests and debugging.
impl fmt::Display for TenantPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "tenant {}", self.tenant)?;
        for (g, members) in &self.group_sets {
            let m: Vec<String> = members.iter().map(ToString::to_string).collect();
            writeln!(f, "  set {g} = {{{}}}", m.join(", "))?;
        }
        for (g, rules) in self.groups.iter() {
            writeln!(f, "  group {g}")?;
            if !rules.ingress.is_empty() {
                writeln!(f, "   in:")?;
                for r in &rules.ingress {
                    write_rule(f, r)?;
                }
            }
            if !rules.egress.is_empty() {
                writeln!(f, "   out:")?;
                for r in &rules.egress {
                    write_rule(f, r)?;
                }
            }
        }
        for (name, members) in [
            ("checked in", &self.ingress_members),
            ("checked out", &self.egress_members),
        ] {
            if !members.is_empty() {
                let m: Vec<String> = members.iter().map(|(ip, g)| format!("{ip}:{g}")).collect();
                writeln!(f, "  {name} {}", m.join(", "))?;
            }
        }
        for (id, why) in &self.skipped {
            writeln!(f, "  skipped {id}: {why}")?;
        }
        Ok(())
    }
}
