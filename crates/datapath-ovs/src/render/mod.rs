//! Pure rendering of the desired state to flow-mods: the same inputs the Linux driver gets
//! (networks, local and remote endpoints, the policy IR per tenant) plus what only OVS knows (the
//! ofport of each workload port and of the tunnel to each remote host) and the agent's round.
//! No I/O; the same input always gives the same flows, so what is installed can be diffed
//! against it. Forwarding is in [`forwarding`], policy in [`policy`].

mod dns;
mod forwarding;
mod policy;
mod services;

pub use services::group_id;

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use contiv_datapath::{LocalEndpoint, NetworkSpec, RemoteEndpoint, TenantServices};
use contiv_openflow::{Field, FlowMod, GroupMod, Instruction, Match};
use contiv_policy::{HostPolicy, RuleId};

use crate::groups::GroupNumbers;
use crate::pipeline::{cookie, Category, Table};

/// OpenFlow port numbers, read back from OVSDB.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ports {
    /// Local endpoint id → its workload port's ofport.
    pub endpoints: BTreeMap<String, u32>,
    /// Remote host VTEP → the ofport of the VXLAN port to it (`key=flow`).
    pub tunnels: BTreeMap<Ipv4Addr, u32>,
    /// The VLAN trunk uplink's ofport (`--vlan-uplink`), if the agent has one: VLAN networks
    /// reach their remote endpoints through it, tagged.
    pub uplink: Option<u32>,
    /// Tenant → the ofport of its DNS port: a veth whose other end, in a namespace of its
    /// own, holds the gateway address of each of the tenant's networks here (where the agent's
    /// DNS server listens). DNS to a gateway goes there; its answers come back from there.
    pub dns: BTreeMap<String, u32>,
}

/// Everything one host's flows are rendered from.
#[derive(Debug, Clone, Copy)]
pub struct Desired<'a> {
    pub networks: &'a [NetworkSpec],
    pub local_endpoints: &'a [LocalEndpoint],
    pub remote_endpoints: &'a [RemoteEndpoint],
    /// The policy IR of each tenant with local workloads.
    pub policy: &'a HostPolicy,
    pub ports: &'a Ports,
    /// Tenant → its number (metadata tenant bits and conntrack zone, 1-65535). Kept stable by
    /// the agent: a tenant's zone changing would make its open connections look new.
    pub tenants: &'a BTreeMap<String, u16>,
    /// Each policy group's number in its tenant, allocated and kept by the agent
    /// ([`GroupNumbers::assign`]), so a new group changes no other group's flows.
    pub groups: &'a GroupNumbers,
    /// The service balancing of each tenant (SRV_PROXY and its select groups).
    pub services: &'a BTreeMap<String, TenantServices>,
    /// The agent's round, carried in every cookie.
    pub round: u16,
}

/// The rendered flows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rendered {
    pub flows: Vec<FlowMod>,
    /// The select groups the flows name (group-mods with `Add`, sorted by id): groups carry
    /// no cookie, so they are owned by id, which [`group_id`] derives from the service port.
    pub groups: Vec<GroupMod>,
    /// Every (VIP port → provider) choice the service flows offer: when one goes, the agent
    /// drops the unanswered connections that took it (see [`crate::unixctl`]).
    pub bindings: BTreeSet<Binding>,
    /// Policy rule of each policy cookie's object id: flow stats by cookie give per-rule
    /// counters. The id is a hash of the rule, its group and direction, so it stays the same
    /// while the rule does, whatever else changes.
    pub rules: BTreeMap<u64, RuleId>,
    /// Objects left out for now, with why (no ofport yet, an unknown network ...). Rendering
    /// again once they are resolved brings them in.
    pub pending: Vec<String>,
}

/// One provider of one service port, in a tenant's conntrack zone.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Binding {
    pub zone: u16,
    /// IP protocol number (6, 17).
    pub proto: u8,
    pub vip: Ipv4Addr,
    pub port: u16,
    pub provider: Ipv4Addr,
    pub target: u16,
}

/// Renders every flow of the pipeline for `d`.
pub fn render(d: &Desired<'_>) -> Rendered {
    let mut out = Out::new(d.round);
    forwarding::pipeline(&mut out);
    forwarding::networks(&mut out, d);
    forwarding::endpoints(&mut out, d);
    dns::tenants(&mut out, d);
    for tp in d.policy.values() {
        match d.tenants.get(&tp.tenant) {
            Some(&zone) => policy::tenant(&mut out, tp, zone, d.groups),
            None => out.pending(format!("policy of tenant {}: no tenant number", tp.tenant)),
        }
    }
    services::services(&mut out, d);
    out.done()
}

/// Collects flows, each (table, priority, match) once: OVS would replace the first by the
/// second, so a duplicate is a rendering mistake that would otherwise go unseen.
pub(crate) struct Out {
    round: u16,
    seen: BTreeSet<(u8, u16, Vec<u8>)>,
    r: Rendered,
}

impl Out {
    fn new(round: u16) -> Out {
        Out {
            round,
            seen: BTreeSet::new(),
            r: Rendered::default(),
        }
    }

    pub(crate) fn flow(
        &mut self,
        table: Table,
        priority: u16,
        owner: (Category, u64),
        fields: Vec<Field>,
        instructions: Vec<Instruction>,
    ) {
        let m = Match(fields);
        let mut key = vec![];
        m.encode(&mut key);
        if !self.seen.insert((table.id(), priority, key)) {
            return;
        }
        let mut f = FlowMod::add(table.id(), priority, m, instructions);
        f.cookie = cookie(self.round, owner.0, owner.1);
        self.r.flows.push(f);
    }

    pub(crate) fn group(&mut self, g: GroupMod) {
        self.r.groups.push(g);
    }

    pub(crate) fn binding(&mut self, b: Binding) {
        self.r.bindings.insert(b);
    }

    pub(crate) fn pending(&mut self, why: String) {
        self.r.pending.push(why);
    }

    /// Registers a rule (as one group's rule in one direction) for counters; returns the
    /// object id of its cookies.
    pub(crate) fn rule(&mut self, id: &RuleId, group: &str, dir: &str) -> u64 {
        let mut oid = fnv1a(format!("{id}/{group}/{dir}").as_bytes()) & ((1 << 40) - 1);
        // A 40-bit collision is unlikely; if it happens, probe on so counters never mix.
        while self.r.rules.get(&oid).is_some_and(|r| r != id) {
            oid = (oid + 1) & ((1 << 40) - 1);
        }
        self.r.rules.insert(oid, id.clone());
        oid
    }

    fn done(mut self) -> Rendered {
        self.r.groups.sort_by_key(|g| g.group_id);
        self.r
    }
}

/// FNV-1a, 64 bits: a hash that is the same in every build and run (cookies outlive the agent).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The fewest CIDR blocks covering `a..=b` (a policy's `a.b.c.d-e` range).
pub fn range_to_cidrs(a: Ipv4Addr, b: Ipv4Addr) -> Vec<(Ipv4Addr, u8)> {
    let (mut lo, hi) = (u64::from(u32::from(a)), u64::from(u32::from(b)));
    let mut out = vec![];
    while lo <= hi {
        // The largest block aligned at `lo` that stays within `hi`.
        let mut size = if lo == 0 {
            1u64 << 32
        } else {
            1u64 << lo.trailing_zeros().min(32)
        };
        while lo + size - 1 > hi {
            size >>= 1;
        }
        out.push((Ipv4Addr::from(lo as u32), 32 - size.trailing_zeros() as u8));
        lo += size;
    }
    out
}

#[cfg(test)]
mod tests;
