//! The nftables form of a tenant's policy, as data ([`Ruleset`], rendered by a pure function from
//! the IR), and the one `nft -f` batch that turns one ruleset into another ([`batch`]).
//!
//! Layout, one `inet` table per tenant namespace (bridged IPv4 reaches it through
//! `bridge-nf-call-iptables`, routed traffic through the forward hook):
//! ```text
//! table inet contiv {
//!   counter r_<policy>_<rule>_<hash> {}       one per rule: what it decided (named, so it
//!                                             survives chain rewrites and is summed per rule)
//!   set g_<group>_<hash> { type ipv4_addr; }  members of a group a rule refers to
//!   map dst_groups { type ipv4_addr : verdict; } local member → jump in_<its group>
//!   map src_groups { type ipv4_addr : verdict; } local member → jump out_<its group>
//!   chain in_<group>_<hash> / out_<group>_<hash> { first match decides: drop or return }
//!   chain enforce { type filter hook forward priority filter; policy accept;
//!     ct state established,related accept
//!     ip saddr vmap @src_groups
//!     ip daddr vmap @dst_groups }
//! }
//! ```
//! Endpoint churn changes set and map elements only; rule changes rewrite only the chains of the
//! groups concerned; every change is one transaction.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::sync::Arc;

use contiv_policy::{AddrMatch, CompiledRule, MemberPlaces, PeerMatch, Protocol, TenantPolicy};

use crate::names::fnv64;

/// The table every tenant namespace gets.
pub const TABLE: &str = "inet contiv";
/// The table's name alone (netlink names family and table apart).
pub const TABLE_NAME: &str = "contiv";
/// The base chain (a hook chain; `fwd`, `policy`, `ingress` are reserved words in nft).
/// Verdict maps: destination address → its group's in-chain, source → out-chain.
pub const DST_MAP: &str = "dst_groups";
pub const SRC_MAP: &str = "src_groups";
pub const BASE_CHAIN: &str = "enforce";

/// A tenant's policy as nftables objects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ruleset {
    /// Named counters, name → rule key (`tenant:policy:rule`). Shared (like `chains`): rulesets
    /// rendered from the same rules hold the same maps, so copying and comparing them is cheap.
    pub counters: Arc<BTreeMap<String, String>>,
    /// Address sets, name → elements.
    pub sets: BTreeMap<String, BTreeSet<Ipv4Addr>>,
    /// `ingress` and `egress` verdict maps: address → chain to jump to.
    pub ingress: BTreeMap<Ipv4Addr, String>,
    pub egress: BTreeMap<Ipv4Addr, String>,
    /// Regular chains, name → rules (nft statement text).
    pub chains: Arc<BTreeMap<String, Vec<String>>>,
}

impl Ruleset {
    pub fn is_empty(&self) -> bool {
        self.chains.is_empty()
    }
}

/// The first `max` characters of `name`, with everything but ASCII letters and digits as `_`.
fn sanitized(name: &str, max: usize) -> String {
    name.chars()
        .take(max)
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// A name nft accepts unquoted, readable and unique: `<prefix>_<sanitized>_<hash>`.
fn object_name(prefix: &str, name: &str) -> String {
    format!(
        "{prefix}_{}_{:08x}",
        sanitized(name, 24),
        fnv64(name) as u32
    )
}

pub fn set_name(group: &str) -> String {
    object_name("g", group)
}

pub fn chain_name(ingress: bool, group: &str) -> String {
    object_name(if ingress { "in" } else { "out" }, group)
}

/// A rule's named counter, `r_<policy>_<rule>_<hash of the rule key>`: readable in `nft list`
/// (the table is the tenant's), so rules carry no comment (a comment per rule cost ~6 % of a
/// 10,000-rule install).
pub fn counter_name(rule_key: &str) -> String {
    let readable = rule_key.split_once(':').map_or(rule_key, |(_, rest)| rest);
    format!(
        "r_{}_{:08x}",
        sanitized(readable, 40),
        fnv64(rule_key) as u32
    )
}

fn addr(a: &AddrMatch) -> String {
    a.to_string()
}

/// One rule as an nft statement; `peer_field` is `saddr` for in-rules, `daddr` for out-rules.
fn rule_text(r: &CompiledRule, peer_field: &str) -> String {
    let mut s = String::new();
    match &r.peer {
        PeerMatch::Any => {}
        PeerMatch::GroupSet(g) => {
            let _ = write!(s, "ip {peer_field} @{} ", set_name(g));
        }
        PeerMatch::Addrs(a) => {
            let _ = write!(s, "ip {peer_field} {} ", addr(a));
        }
    }
    match (r.protocol, r.port) {
        (Protocol::Any, _) => {}
        (Protocol::Tcp, p) if p != 0 => {
            let _ = write!(s, "tcp dport {p} ");
        }
        (Protocol::Udp, p) if p != 0 => {
            let _ = write!(s, "udp dport {p} ");
        }
        (Protocol::Tcp, _) => s.push_str("meta l4proto tcp "),
        (Protocol::Udp, _) => s.push_str("meta l4proto udp "),
        (Protocol::Icmp, _) => s.push_str("meta l4proto icmp "),
        (Protocol::Number(n), _) => {
            let _ = write!(s, "meta l4proto {n} ");
        }
    }
    let verdict = match r.action {
        contiv_policy::Action::Allow => "return",
        contiv_policy::Action::Deny => "drop",
    };
    let counter = counter_name(&r.id.to_string());
    let _ = write!(s, "counter name \"{counter}\" {verdict}");
    s
}

/// The nftables objects that enforce `p`. Pure.
pub fn render(p: &TenantPolicy) -> Ruleset {
    let mut chains = BTreeMap::new();
    let mut counters = BTreeMap::new();
    for (g, rules) in p.groups.iter() {
        for (ingress, list) in [(true, &rules.ingress), (false, &rules.egress)] {
            if list.is_empty() {
                continue;
            }
            let field = if ingress { "saddr" } else { "daddr" };
            let texts = list.iter().map(|r| rule_text(r, field)).collect();
            chains.insert(chain_name(ingress, g), texts);
            for r in list {
                let key = r.id.to_string();
                counters.insert(counter_name(&key), key);
            }
        }
    }
    let mut out = Ruleset {
        chains: Arc::new(chains),
        counters: Arc::new(counters),
        ..Default::default()
    };
    add_members(&mut out, p);
    out
}

/// [`render`] for a `p` whose rules (`groups`) equal those `prev` was rendered from: the chains
/// and counters are taken over, only sets and maps are rendered (endpoint churn on a large
/// ruleset costs no rule rendering). Pure.
pub fn render_members_onto(p: &TenantPolicy, prev: &Ruleset) -> Ruleset {
    let mut out = Ruleset {
        counters: prev.counters.clone(),
        chains: prev.chains.clone(),
        ..Default::default()
    };
    add_members(&mut out, p);
    out
}

/// Adds one member's elements to `out` (what [`render`] would give it in `places`).
pub fn add_member(out: &mut Ruleset, group: &str, ip: Ipv4Addr, places: MemberPlaces) {
    if let Some(m) = out.sets.get_mut(&set_name(group)).filter(|_| places.set) {
        m.insert(ip);
    }
    if places.ingress {
        out.ingress.insert(ip, chain_name(true, group));
    }
    if places.egress {
        out.egress.insert(ip, chain_name(false, group));
    }
}

fn add_members(out: &mut Ruleset, p: &TenantPolicy) {
    for (g, members) in &p.group_sets {
        out.sets.insert(set_name(g), members.clone());
    }
    for (ip, g) in &p.ingress_members {
        out.ingress.insert(*ip, chain_name(true, g));
    }
    for (ip, g) in &p.egress_members {
        out.egress.insert(*ip, chain_name(false, g));
    }
}

fn elements<T: std::fmt::Display>(items: impl Iterator<Item = T>) -> String {
    items.map(|i| i.to_string()).collect::<Vec<_>>().join(", ")
}

fn verdicts<'a>(items: impl Iterator<Item = (&'a Ipv4Addr, &'a String)>) -> String {
    elements(items.map(|(ip, c)| format!("{ip} : jump {c}")))
}

/// The skeleton every non-empty ruleset shares: table, maps and the base chain.
fn skeleton(s: &mut String) {
    let _ = writeln!(s, "add table {TABLE}");
    for m in [DST_MAP, SRC_MAP] {
        let _ = writeln!(s, "add map {TABLE} {m} {{ type ipv4_addr : verdict; }}");
    }
    let _ = writeln!(
        s,
        "add chain {TABLE} {BASE_CHAIN} {{ type filter hook forward priority filter; policy accept; }}"
    );
    let _ = writeln!(s, "flush chain {TABLE} {BASE_CHAIN}");
    let _ = writeln!(
        s,
        "add rule {TABLE} {BASE_CHAIN} ct state established,related accept"
    );
    let _ = writeln!(s, "add rule {TABLE} {BASE_CHAIN} ip saddr vmap @{SRC_MAP}");
    let _ = writeln!(s, "add rule {TABLE} {BASE_CHAIN} ip daddr vmap @{DST_MAP}");
}

/// Counter values to carry over when a table is rebuilt (name → packets, bytes).
pub type Seed = BTreeMap<String, (u64, u64)>;

/// The batch that replaces whatever the table holds with `new` (used when what is installed is
/// not known: the first apply after a start). Deleting and re-adding the table inside one
/// transaction is atomic for packets and leaves conntrack alone; `seed` restores counters.
pub fn full_batch(new: &Ruleset, seed: &Seed) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "add table {TABLE}");
    let _ = writeln!(s, "delete table {TABLE}");
    if new.is_empty() {
        return s;
    }
    skeleton(&mut s);
    for name in new.counters.keys() {
        match seed.get(name) {
            Some((p, b)) => {
                let _ = writeln!(s, "add counter {TABLE} {name} {{ packets {p} bytes {b} }}");
            }
            None => {
                let _ = writeln!(s, "add counter {TABLE} {name}");
            }
        }
    }
    for (name, members) in &new.sets {
        let _ = writeln!(s, "add set {TABLE} {name} {{ type ipv4_addr; }}");
        if !members.is_empty() {
            let _ = writeln!(
                s,
                "add element {TABLE} {name} {{ {} }}",
                elements(members.iter())
            );
        }
    }
    for (name, rules) in new.chains.iter() {
        let _ = writeln!(s, "add chain {TABLE} {name}");
        for r in rules {
            let _ = writeln!(s, "add rule {TABLE} {name} {r}");
        }
    }
    for (map, entries) in [(DST_MAP, &new.ingress), (SRC_MAP, &new.egress)] {
        if !entries.is_empty() {
            let _ = writeln!(
                s,
                "add element {TABLE} {map} {{ {} }}",
                verdicts(entries.iter())
            );
        }
    }
    s
}

fn map_diff<'a>(
    old: &'a BTreeMap<Ipv4Addr, String>,
    new: &'a BTreeMap<Ipv4Addr, String>,
) -> (Vec<&'a Ipv4Addr>, Vec<(&'a Ipv4Addr, &'a String)>) {
    let removed = old
        .iter()
        .filter(|(ip, c)| new.get(ip) != Some(c))
        .map(|(ip, _)| ip)
        .collect();
    let added = new
        .iter()
        .filter(|(ip, c)| old.get(ip) != Some(c))
        .collect();
    (removed, added)
}

/// The batch that turns `old` (what is installed) into `new`; empty when they are equal.
/// Order inside the transaction: create what is referenced before the references, rewrite
/// chains and map entries, then delete what nothing references any more.
pub fn delta_batch(old: &Ruleset, new: &Ruleset) -> String {
    if old == new {
        return String::new();
    }
    if old.is_empty() || new.is_empty() {
        return full_batch(new, &Seed::new());
    }
    let mut s = String::new();
    for name in new
        .counters
        .keys()
        .filter(|n| !old.counters.contains_key(*n))
    {
        let _ = writeln!(s, "add counter {TABLE} {name}");
    }
    for (name, members) in &new.sets {
        match old.sets.get(name) {
            None => {
                let _ = writeln!(s, "add set {TABLE} {name} {{ type ipv4_addr; }}");
                if !members.is_empty() {
                    let _ = writeln!(
                        s,
                        "add element {TABLE} {name} {{ {} }}",
                        elements(members.iter())
                    );
                }
            }
            Some(had) => {
                let gone: Vec<_> = had.difference(members).collect();
                let new_ones: Vec<_> = members.difference(had).collect();
                if !gone.is_empty() {
                    let _ = writeln!(
                        s,
                        "delete element {TABLE} {name} {{ {} }}",
                        elements(gone.into_iter())
                    );
                }
                if !new_ones.is_empty() {
                    let _ = writeln!(
                        s,
                        "add element {TABLE} {name} {{ {} }}",
                        elements(new_ones.into_iter())
                    );
                }
            }
        }
    }
    for (name, rules) in new.chains.iter() {
        match old.chains.get(name) {
            Some(had) if had == rules => continue,
            Some(_) => {
                let _ = writeln!(s, "flush chain {TABLE} {name}");
            }
            None => {
                let _ = writeln!(s, "add chain {TABLE} {name}");
            }
        }
        for r in rules {
            let _ = writeln!(s, "add rule {TABLE} {name} {r}");
        }
    }
    for (map, o, n) in [
        (DST_MAP, &old.ingress, &new.ingress),
        (SRC_MAP, &old.egress, &new.egress),
    ] {
        let (removed, added) = map_diff(o, n);
        if !removed.is_empty() {
            let _ = writeln!(
                s,
                "delete element {TABLE} {map} {{ {} }}",
                elements(removed.into_iter())
            );
        }
        if !added.is_empty() {
            let _ = writeln!(
                s,
                "add element {TABLE} {map} {{ {} }}",
                verdicts(added.into_iter())
            );
        }
    }
    for name in old.chains.keys().filter(|n| !new.chains.contains_key(*n)) {
        let _ = writeln!(s, "delete chain {TABLE} {name}");
    }
    for name in old.sets.keys().filter(|n| !new.sets.contains_key(*n)) {
        let _ = writeln!(s, "delete set {TABLE} {name}");
    }
    for name in old
        .counters
        .keys()
        .filter(|n| !new.counters.contains_key(*n))
    {
        let _ = writeln!(s, "delete counter {TABLE} {name}");
    }
    s
}

/// When `old` and `new` differ only in set and map elements (endpoint churn), those changes as
/// element batches for [`super::nfnl`]: deletions first, then additions (a map entry that moves
/// to another chain is deleted and added again). `None` when anything else differs.
pub fn element_delta(old: &Ruleset, new: &Ruleset) -> Option<Vec<super::nfnl::ElemChange>> {
    use super::nfnl::{ElemChange, Op};
    let same_sets = old.sets.keys().eq(new.sets.keys());
    if old.is_empty() || old.counters != new.counters || old.chains != new.chains || !same_sets {
        return None;
    }
    let mut deletes = Vec::new();
    let mut adds = Vec::new();
    for (name, members) in &new.sets {
        let had = &old.sets[name];
        let gone = had.difference(members).map(|ip| (*ip, None)).collect();
        let added = members.difference(had).map(|ip| (*ip, None)).collect();
        deletes.push(ElemChange {
            set: name.clone(),
            op: Op::Delete,
            elems: gone,
        });
        adds.push(ElemChange {
            set: name.clone(),
            op: Op::Add,
            elems: added,
        });
    }
    for (map, o, n) in [
        (DST_MAP, &old.ingress, &new.ingress),
        (SRC_MAP, &old.egress, &new.egress),
    ] {
        let (removed, added) = map_diff(o, n);
        deletes.push(ElemChange {
            set: map.to_string(),
            op: Op::Delete,
            elems: removed.into_iter().map(|ip| (*ip, None)).collect(),
        });
        adds.push(ElemChange {
            set: map.to_string(),
            op: Op::Add,
            elems: added
                .into_iter()
                .map(|(ip, c)| (*ip, Some(c.clone())))
                .collect(),
        });
    }
    deletes.extend(adds);
    deletes.retain(|c| !c.elems.is_empty());
    Some(deletes)
}
