//! Policy flows from one tenant's IR: DST_GRP marks the destination's group in reg0, POLICY_OUT
//! holds the source group's out-rules, POLICY_IN the destination group's in-rules. A rule's flow
//! priority comes from its Contiv priority (deny one above allow), which is the IR's order, so
//! "first match decides" holds; no match falls through to the table default, which allows. Only
//! new connections get here (CT_STATE): established ones are never re-judged.

use std::net::Ipv4Addr;

use contiv_openflow::{Field, Instruction};
use contiv_policy::{Action, AddrMatch, CompiledRule, PeerMatch, Protocol, TenantPolicy};

use super::forwarding::meta;
use super::{range_to_cidrs, Out};
use crate::groups::GroupNumbers;
use crate::pipeline::*;

const ETH_IP: u16 = 0x0800;

/// Which side of the connection a rule's peer is.
#[derive(Clone, Copy)]
enum Dir {
    /// Out-rule: the peer is the destination.
    Out,
    /// In-rule: the peer is the source.
    In,
}

impl Dir {
    fn name(self) -> &'static str {
        match self {
            Dir::Out => "out",
            Dir::In => "in",
        }
    }
}

pub(super) fn tenant(out: &mut Out, tp: &TenantPolicy, zone: u16, groups: &GroupNumbers) {
    let tenant = (META_TENANT, u64::from(zone));
    // A group without a number (the agent has not assigned one) is left out whole, reported.
    let number = |out: &mut Out, g: &str| {
        let n = groups.get(&tp.tenant, g);
        if n.is_none() {
            out.pending(format!(
                "group {g} of tenant {}: no group number",
                tp.tenant
            ));
        }
        n
    };
    for (ip, g) in &tp.ingress_members {
        let Some(gid) = number(out, g) else { continue };
        out.flow(
            Table::DstGrp,
            PRIO_HIGH,
            (Category::Policy, u64::from(u32::from(*ip))),
            vec![
                meta(&[tenant]),
                Field::EthType(ETH_IP),
                Field::Ipv4Dst(*ip, None),
            ],
            vec![
                Instruction::ApplyActions(vec![contiv_openflow::Action::SetField(Field::Reg(
                    REG_DST_GROUP,
                    u32::from(gid),
                    None,
                ))]),
                Instruction::GotoTable(Table::PolicyOut.id()),
            ],
        );
    }
    for (g, rules) in tp.groups.iter() {
        let Some(gid) = number(out, g) else { continue };
        let out_sel = vec![meta(&[tenant, (META_SRC_GROUP, u64::from(gid))])];
        // OVS's own field order (registers before metadata), so dumps compare line for line.
        let in_sel = vec![
            Field::Reg(REG_DST_GROUP, u32::from(gid), None),
            meta(&[tenant]),
        ];
        group_rules(out, tp, g, &rules.egress, Dir::Out, &out_sel);
        group_rules(out, tp, g, &rules.ingress, Dir::In, &in_sel);
    }
}

fn group_rules(
    out: &mut Out,
    tp: &TenantPolicy,
    group: &str,
    rules: &[CompiledRule],
    dir: Dir,
    sel: &[Field],
) {
    let (table, allow) = match dir {
        Dir::Out => (Table::PolicyOut, Table::PolicyIn),
        Dir::In => (Table::PolicyIn, Table::CtCommit),
    };
    for r in rules {
        // From the rule's own priority, so a change to one rule moves no other flow; deny one
        // above allow, as the IR orders them ("deny wins at equal priority").
        let prio = PRIO_RULE_BASE + 2 * u16::from(r.priority) + u16::from(r.action == Action::Deny);
        let id = out.rule(&r.id, group, dir.name());
        let instr = match r.action {
            Action::Allow => vec![Instruction::GotoTable(allow.id())],
            Action::Deny => vec![],
        };
        for peer in peers(tp, &r.peer) {
            let mut m = sel.to_vec();
            m.push(Field::EthType(ETH_IP));
            if let Some(p) = r.protocol.number() {
                m.push(Field::IpProto(p));
            }
            if let Some((a, len)) = peer {
                let mask = (len < 32).then(|| {
                    Ipv4Addr::from(u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0))
                });
                m.push(match dir {
                    Dir::Out => Field::Ipv4Dst(a, mask),
                    Dir::In => Field::Ipv4Src(a, mask),
                });
            }
            if r.port != 0 {
                match r.protocol {
                    Protocol::Tcp => m.push(Field::TcpDst(r.port)),
                    Protocol::Udp => m.push(Field::UdpDst(r.port)),
                    // The compiler refuses a port without tcp/udp; nothing to match on otherwise.
                    _ => {}
                }
            }
            out.flow(table, prio, (Category::Policy, id), m, instr.clone());
        }
    }
}

/// The peer as address blocks: `None` for any; a group's members one by one (no members: the
/// rule matches nothing, so no flow).
fn peers(tp: &TenantPolicy, peer: &PeerMatch) -> Vec<Option<(Ipv4Addr, u8)>> {
    match peer {
        PeerMatch::Any => vec![None],
        PeerMatch::GroupSet(g) => tp
            .group_sets
            .get(g)
            .map(|s| s.iter().map(|ip| Some((*ip, 32))).collect())
            .unwrap_or_default(),
        PeerMatch::Addrs(AddrMatch::Net(n)) => vec![Some((n.network(), n.prefix_len()))],
        PeerMatch::Addrs(AddrMatch::Range(a, b)) => {
            range_to_cidrs(*a, *b).into_iter().map(Some).collect()
        }
    }
}
