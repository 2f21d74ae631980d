//! Verdicts from the IR: which rule decides a connection, for `netctl policy explain` and for
//! tests that check every probe against it. The same first-match walk a datapath performs.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use crate::ir::{CompiledRule, PeerMatch, TenantPolicy};
use crate::spec::{Action, Protocol, RuleId};

/// A new connection to judge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flow {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    /// A concrete protocol (`Any` is treated as a protocol no specific rule names).
    pub protocol: Protocol,
    /// Destination port (ignored unless tcp/udp).
    pub port: u16,
}

/// One side's decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// The group whose rules were consulted (`None`: the endpoint has no group with rules on
    /// this side, so everything is allowed).
    pub group: Option<String>,
    /// The rule that matched (`None`: no rule matched, allowed).
    pub rule: Option<RuleId>,
    pub action: Action,
}

impl Decision {
    fn allowed(group: Option<String>) -> Decision {
        Decision {
            group,
            rule: None,
            action: Action::Allow,
        }
    }
}

/// The verdict on a new connection: both sides must allow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    pub action: Action,
    /// The source group's out-rules.
    pub egress: Decision,
    /// The destination group's in-rules.
    pub ingress: Decision,
}

impl Verdict {
    /// The rule that decided the verdict: a denying side (out first), else the first side whose
    /// rule allowed; `None` when no rule matched.
    pub fn deciding_rule(&self) -> Option<&RuleId> {
        let sides = [&self.egress, &self.ingress];
        if self.action == Action::Deny {
            return sides
                .iter()
                .find(|d| d.action == Action::Deny)
                .and_then(|d| d.rule.as_ref());
        }
        sides.iter().find_map(|d| d.rule.as_ref())
    }
}

fn matches(policy: &TenantPolicy, r: &CompiledRule, peer: Ipv4Addr, flow: &Flow) -> bool {
    let peer_ok = match &r.peer {
        PeerMatch::Any => true,
        PeerMatch::GroupSet(g) => policy.group_sets.get(g).is_some_and(|s| s.contains(&peer)),
        PeerMatch::Addrs(a) => a.contains(peer),
    };
    let proto_ok = r.protocol == Protocol::Any || r.protocol == flow.protocol;
    let port_ok = r.port == 0 || (flow.protocol.has_ports() && r.port == flow.port);
    peer_ok && proto_ok && port_ok
}

fn decide(
    policy: &TenantPolicy,
    group: Option<&String>,
    rules: &[CompiledRule],
    peer: Ipv4Addr,
    flow: &Flow,
) -> Decision {
    match rules.iter().find(|r| matches(policy, r, peer, flow)) {
        Some(r) => Decision {
            group: group.cloned(),
            rule: Some(r.id.clone()),
            action: r.action,
        },
        None => Decision::allowed(group.cloned()),
    }
}

impl TenantPolicy {
    /// The verdict on `flow`, as this IR enforces it (compile with [`crate::Scope::Cluster`] to
    /// judge any pair of endpoints).
    pub fn verdict(&self, flow: &Flow) -> Verdict {
        let egress = match self.egress_members.get(&flow.src) {
            Some(g) => {
                let rules = self.groups.get(g).map_or(&[][..], |r| &r.egress[..]);
                decide(self, Some(g), rules, flow.dst, flow)
            }
            None => Decision::allowed(None),
        };
        let ingress = match self.ingress_members.get(&flow.dst) {
            Some(g) => {
                let rules = self.groups.get(g).map_or(&[][..], |r| &r.ingress[..]);
                decide(self, Some(g), rules, flow.src, flow)
            }
            None => Decision::allowed(None),
        };
        let action = if egress.action == Action::Allow && ingress.action == Action::Allow {
            Action::Allow
        } else {
            Action::Deny
        };
        Verdict {
            action,
            egress,
            ingress,
        }
    }
}
