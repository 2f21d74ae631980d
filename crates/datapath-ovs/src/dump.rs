//! Flow-mods as text the way `ovs-ofctl -O OpenFlow13 --no-stats --no-names dump-flows` prints
//! them (`cookie=0x…, table=N, priority=P,<match> actions=<actions>`), for golden tests, logs
//! and docs. For the flows the renderers make the lines are identical to ovs-ofctl's (the
//! renderers put match fields in OVS's order; `tests/pipeline_root.rs` checks it against a real
//! vswitchd). Anything else prints recognisably (`field?`, `action?`) rather than being hidden.

use std::fmt::Write;
use std::net::Ipv4Addr;

use contiv_openflow::{
    ct_state, Action, Ct, Field, FlowMod, FlowModCommand, Instruction, Mac, Match, NX_CT_F_COMMIT,
    NX_CT_RECIRC_NONE, NX_NAT_F_DST, NX_NAT_F_SRC, OFPP_CONTROLLER, OFPP_IN_PORT,
};

const ETH_IP: u16 = 0x0800;
const ETH_ARP: u16 = 0x0806;

/// One flow as a line of text.
pub fn flow_line(f: &FlowMod) -> String {
    // ovs-ofctl leaves out `table=0`.
    let mut s = format!("cookie={:#x}, ", f.cookie);
    if f.table_id != 0 {
        let _ = write!(s, "table={}, ", f.table_id);
    }
    let _ = write!(s, "priority={}", f.priority);
    let m = match_text(&f.r#match);
    if !m.is_empty() {
        s.push(',');
        s.push_str(&m);
    }
    s.push_str(" actions=");
    s.push_str(&instructions_text(&f.instructions));
    s
}

/// Every flow, one per line, sorted by table, then priority (highest first), then text: the
/// order `dump-flows` uses within a table, and stable for comparing.
pub fn dump(flows: &[FlowMod]) -> String {
    let mut lines: Vec<(u8, std::cmp::Reverse<u16>, String)> = flows
        .iter()
        .map(|f| (f.table_id, std::cmp::Reverse(f.priority), flow_line(f)))
        .collect();
    lines.sort();
    let mut out = String::new();
    for (_, _, l) in lines {
        out.push_str(&l);
        out.push('\n');
    }
    out
}

/// Flow-mods as a change list: `+ <flow>` for an add, `- <flow>` for a delete, sorted like
/// [`dump`] (what a diff sends, for golden tests and logs).
pub fn mods(mods: &[FlowMod]) -> String {
    let mut lines: Vec<(u8, std::cmp::Reverse<u16>, String)> = mods
        .iter()
        .map(|f| {
            let sign = match f.command {
                FlowModCommand::Add => "+",
                FlowModCommand::Delete | FlowModCommand::DeleteStrict => "-",
                FlowModCommand::Modify | FlowModCommand::ModifyStrict => "~",
            };
            let line = match f.command {
                // A delete's cookie and instructions mean nothing: show what it removes.
                FlowModCommand::Delete | FlowModCommand::DeleteStrict => {
                    let m = match_text(&f.r#match);
                    format!(
                        "table={}, priority={}{}{m}",
                        f.table_id,
                        f.priority,
                        if m.is_empty() { "" } else { "," }
                    )
                }
                _ => flow_line(f),
            };
            (
                f.table_id,
                std::cmp::Reverse(f.priority),
                format!("{sign} {line}"),
            )
        })
        .collect();
    lines.sort();
    lines.into_iter().map(|(_, _, l)| l + "\n").collect()
}

fn mac(m: &Mac) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn ip_masked(a: &Ipv4Addr, m: &Option<Ipv4Addr>) -> String {
    match m {
        None => a.to_string(),
        Some(m) => match u32::from(*m).leading_ones() {
            n if u32::from(*m) == u32::MAX.checked_shl(32 - n).unwrap_or(0) => format!("{a}/{n}"),
            _ => format!("{a}/{m}"),
        },
    }
}

fn hex_masked<T: std::fmt::LowerHex>(v: T, m: Option<T>) -> String {
    match m {
        None => format!("{v:#x}"),
        Some(m) => format!("{v:#x}/{m:#x}"),
    }
}

fn ct_state_text(v: u32, m: Option<u32>) -> String {
    let mask = m.unwrap_or(v);
    let names = [
        (ct_state::NEW, "new"),
        (ct_state::EST, "est"),
        (ct_state::REL, "rel"),
        (ct_state::RPL, "rpl"),
        (ct_state::INV, "inv"),
        (ct_state::TRK, "trk"),
        (ct_state::SNAT, "snat"),
        (ct_state::DNAT, "dnat"),
    ];
    let mut s = String::new();
    for (bit, name) in names {
        if mask & bit != 0 {
            s.push(if v & bit != 0 { '+' } else { '-' });
            s.push_str(name);
        }
    }
    s
}

/// The match, with ovs-ofctl's protocol shorthands (`ip`, `arp`, `tcp`, `udp`, `icmp`).
pub fn match_text(m: &Match) -> String {
    let eth = m.0.iter().find_map(|f| match f {
        Field::EthType(t) => Some(*t),
        _ => None,
    });
    let proto = m.0.iter().find_map(|f| match f {
        Field::IpProto(p) => Some(*p),
        _ => None,
    });
    let mut parts: Vec<String> = vec![];
    match (eth, proto) {
        (Some(ETH_IP), Some(6)) => parts.push("tcp".into()),
        (Some(ETH_IP), Some(17)) => parts.push("udp".into()),
        (Some(ETH_IP), Some(1)) => parts.push("icmp".into()),
        (Some(ETH_IP), _) => parts.push("ip".into()),
        (Some(ETH_ARP), _) => parts.push("arp".into()),
        (Some(t), _) => parts.push(format!("dl_type={t:#06x}")),
        (None, _) => {}
    }
    for f in &m.0 {
        let p = match f {
            Field::EthType(_) => continue,
            Field::IpProto(p) if eth == Some(ETH_IP) && matches!(p, 1 | 6 | 17) => continue,
            Field::IpProto(p) => format!("nw_proto={p}"),
            Field::InPort(p) => format!("in_port={p}"),
            Field::Metadata(v, m) => format!("metadata={}", hex_masked(*v, *m)),
            Field::EthDst(v, None) => format!("dl_dst={}", mac(v)),
            Field::EthDst(v, Some(m)) => format!("dl_dst={}/{}", mac(v), mac(m)),
            Field::EthSrc(v, None) => format!("dl_src={}", mac(v)),
            Field::EthSrc(v, Some(m)) => format!("dl_src={}/{}", mac(v), mac(m)),
            // ovs-ofctl's spelling of an exact tagged id.
            Field::VlanVid(v, None) if v & 0x1000 != 0 => format!("dl_vlan={}", v & 0xfff),
            Field::VlanVid(v, m) => format!("vlan_tci={}", hex_masked(*v, *m)),
            Field::Ipv4Src(a, m) => format!("nw_src={}", ip_masked(a, m)),
            Field::Ipv4Dst(a, m) => format!("nw_dst={}", ip_masked(a, m)),
            Field::TcpSrc(p) | Field::UdpSrc(p) => format!("tp_src={p}"),
            Field::TcpDst(p) | Field::UdpDst(p) => format!("tp_dst={p}"),
            Field::ArpOp(o) => format!("arp_op={o}"),
            Field::ArpSpa(a, m) => format!("arp_spa={}", ip_masked(a, m)),
            Field::ArpTpa(a, m) => format!("arp_tpa={}", ip_masked(a, m)),
            Field::ArpSha(v, _) => format!("arp_sha={}", mac(v)),
            Field::ArpTha(v, _) => format!("arp_tha={}", mac(v)),
            Field::TunnelId(v, m) => format!("tun_id={}", hex_masked(*v, *m)),
            // ovs-ofctl writes an exact 0 as `0`, not `0x0`.
            Field::Reg(r, 0, None) => format!("reg{r}=0"),
            Field::Reg(r, v, m) => format!("reg{r}={}", hex_masked(*v, *m)),
            Field::CtState(v, m) => format!("ct_state={}", ct_state_text(*v, *m)),
            Field::CtZone(z) => format!("ct_zone={z}"),
            Field::CtMark(v, m) => format!("ct_mark={}", hex_masked(*v, *m)),
            Field::CtLabel(v, m) => format!("ct_label={}", hex_masked(*v, *m)),
            Field::Other { class, field, .. } => format!("field?{class:#x}:{field}"),
        };
        parts.push(p);
    }
    parts.join(",")
}

fn set_field_text(f: &Field) -> String {
    match f {
        Field::EthSrc(m, _) => format!("set_field:{}->eth_src", mac(m)),
        Field::EthDst(m, _) => format!("set_field:{}->eth_dst", mac(m)),
        Field::TunnelId(v, _) => format!("set_field:{v:#x}->tun_id"),
        Field::Reg(r, v, _) => format!("set_field:{v:#x}->reg{r}"),
        // OpenFlow 1.3's set_field (ovs-ofctl writes mod_nw_* only for OpenFlow 1.0's actions).
        Field::Ipv4Dst(a, _) => format!("set_field:{a}->ip_dst"),
        Field::Ipv4Src(a, _) => format!("set_field:{a}->ip_src"),
        Field::ArpOp(o) => format!("set_field:{o}->arp_op"),
        Field::ArpSha(m, _) => format!("set_field:{}->arp_sha", mac(m)),
        Field::ArpSpa(a, _) => format!("set_field:{a}->arp_spa"),
        Field::VlanVid(v, _) => format!("set_field:{v}->vlan_vid"),
        other => format!("set_field:{}", match_text(&Match(vec![other.clone()]))),
    }
}

fn ct_text(ct: &Ct) -> String {
    let mut args = vec![];
    if ct.flags & NX_CT_F_COMMIT != 0 {
        args.push("commit".to_string());
    }
    if ct.recirc_table != NX_CT_RECIRC_NONE {
        args.push(format!("table={}", ct.recirc_table));
    }
    if ct.zone_src == 0 {
        args.push(format!("zone={}", ct.zone));
    } else {
        args.push(format!("zone=field?{:#x}", ct.zone_src));
    }
    // As ovs-ofctl: a leading nat outside the exec envelope.
    let mut rest = &ct.actions[..];
    if let Some((Action::Nat(nat), tail)) = rest.split_first() {
        args.push(nat_text(nat));
        rest = tail;
    }
    if !rest.is_empty() {
        args.push(format!("exec({})", actions_text(rest)));
    }
    format!("ct({})", args.join(","))
}

/// NXAST_MULTIPATH (as the renderers write it: a register's bits 0-15) as ovs-ofctl writes it.
fn multipath_text(data: &[u8]) -> Option<String> {
    let be16 = |i: usize| Some(u16::from_be_bytes([*data.get(i)?, *data.get(i + 1)?]));
    if be16(0)? != 10 || data.len() != 24 {
        return None;
    }
    let fields = match be16(2)? {
        0 => "eth_src",
        1 => "symmetric_l4",
        2 => "symmetric_l3l4",
        3 => "symmetric_l3l4+udp",
        _ => return None,
    };
    let alg = match be16(8)? {
        0 => "modulo_n",
        1 => "hash_threshold",
        2 => "hrw",
        3 => "iter_hash",
        _ => return None,
    };
    let dst = u32::from_be_bytes([data[20], data[21], data[22], data[23]]);
    let ofs_nbits = be16(18)?;
    let (ofs, n) = (ofs_nbits >> 6, (ofs_nbits & 0x3f) + 1);
    let reg = (dst >> 9) & 0x7f;
    Some(format!(
        "multipath({fields},{},{alg},{},{},NXM_NX_REG{reg}[{ofs}..{}])",
        be16(4)?,
        be16(10)? + 1,
        u32::from_be_bytes([data[12], data[13], data[14], data[15]]),
        ofs + n - 1
    ))
}

/// `nat`, `nat(dst=10.1.0.2:8080)`, as ovs-ofctl writes them.
fn nat_text(nat: &contiv_openflow::Nat) -> String {
    let kind = if nat.flags & NX_NAT_F_SRC != 0 {
        "src"
    } else if nat.flags & NX_NAT_F_DST != 0 {
        "dst"
    } else {
        return "nat".into();
    };
    let mut s = format!("nat({kind}=");
    if let Some(a) = nat.ipv4_min {
        s.push_str(&a.to_string());
        if let Some(b) = nat.ipv4_max.filter(|b| *b != a) {
            s.push_str(&format!("-{b}"));
        }
    }
    if let Some(p) = nat.proto_min {
        s.push_str(&format!(":{p}"));
        if let Some(q) = nat.proto_max.filter(|q| *q != p) {
            s.push_str(&format!("-{q}"));
        }
    }
    s.push(')');
    s
}

/// Groups, one line each, sorted by id: `group_id=N,type=select,bucket=actions=...,...`.
pub fn dump_groups(groups: &[contiv_openflow::GroupMod]) -> String {
    let mut lines: Vec<(u32, String)> = groups
        .iter()
        .map(|g| {
            let kind = match g.group_type {
                contiv_openflow::GroupType::All => "all",
                contiv_openflow::GroupType::Select => "select",
                contiv_openflow::GroupType::Indirect => "indirect",
                contiv_openflow::GroupType::FastFailover => "ff",
            };
            let mut line = format!("group_id={},type={kind}", g.group_id);
            for b in &g.buckets {
                line.push_str(&format!(",bucket=actions={}", actions_text(&b.actions)));
            }
            (g.group_id, line)
        })
        .collect();
    lines.sort();
    lines.into_iter().map(|(_, l)| l + "\n").collect()
}

fn actions_text(actions: &[Action]) -> String {
    let mut parts = vec![];
    for a in actions {
        parts.push(match a {
            Action::Output { port, max_len } if *port == OFPP_CONTROLLER => {
                format!("CONTROLLER:{max_len}")
            }
            Action::Output { port, .. } if *port == OFPP_IN_PORT => "IN_PORT".into(),
            Action::Output { port, .. } => format!("output:{port}"),
            Action::RegMove {
                n_bits,
                src_ofs: 0,
                dst_ofs: 0,
                src,
                dst,
            } if whole(*src, *n_bits) && whole(*dst, *n_bits) => {
                format!("move:{}[]->{}[]", nxm_name(*src), nxm_name(*dst))
            }
            Action::Group(g) => format!("group:{g}"),
            Action::SetField(f) => set_field_text(f),
            Action::PushVlan(t) => format!("push_vlan:{t:#06x}"),
            Action::PopVlan => "pop_vlan".into(),
            Action::DecNwTtl => "dec_ttl".into(),
            Action::Resubmit { in_port, table } if *in_port == 0xfff8 => {
                format!("resubmit(,{table})")
            }
            Action::Resubmit { in_port, table } => format!("resubmit({in_port},{table})"),
            Action::Ct(ct) => ct_text(ct),
            Action::Experimenter { data, .. } if multipath_text(data).is_some() => {
                multipath_text(data).unwrap_or_default()
            }
            other => format!("action?{other:?}"),
        });
    }
    parts.join(",")
}

/// Whether `n_bits` is the whole of the field `header` names (ovs-ofctl then writes `[]`).
fn whole(header: u32, n_bits: u16) -> bool {
    u32::from(n_bits) == (header & 0x7f) * 8
}

/// ovs-ofctl's name of an NXM header (those the renderers move; others by number).
fn nxm_name(header: u32) -> String {
    let name = match (header >> 16, (header >> 9) & 0x7f) {
        (0, 1) => "NXM_OF_ETH_DST",
        (0, 2) => "NXM_OF_ETH_SRC",
        (0, 16) => "NXM_OF_ARP_SPA",
        (0, 17) => "NXM_OF_ARP_TPA",
        (1, 17) => "NXM_NX_ARP_SHA",
        (1, 18) => "NXM_NX_ARP_THA",
        _ => return format!("field?{header:#x}"),
    };
    name.to_string()
}

/// The instructions as ovs-ofctl prints them (`drop` when there are none).
pub fn instructions_text(instr: &[Instruction]) -> String {
    let mut s = String::new();
    for i in instr {
        if !s.is_empty() {
            s.push(',');
        }
        match i {
            Instruction::ApplyActions(a) => s.push_str(&actions_text(a)),
            Instruction::WriteActions(a) => {
                let _ = write!(s, "write_actions({})", actions_text(a));
            }
            Instruction::ClearActions => s.push_str("clear_actions"),
            Instruction::WriteMetadata { value, mask } => {
                let _ = write!(s, "write_metadata:{value:#x}/{mask:#x}");
            }
            Instruction::GotoTable(t) => {
                let _ = write!(s, "goto_table:{t}");
            }
            Instruction::Unknown { typ, .. } => {
                let _ = write!(s, "instruction?{typ}");
            }
        }
    }
    if s.is_empty() {
        s.push_str("drop");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_read_like_ovs_ofctl() {
        let mut f = FlowMod::add(
            5,
            1002,
            Match(vec![
                Field::EthType(ETH_IP),
                Field::IpProto(6),
                Field::Metadata(0x2_0000_0000, Some(0xffff_0000_0000)),
                Field::Ipv4Dst(
                    "10.1.0.0".parse().unwrap(),
                    Some("255.255.0.0".parse().unwrap()),
                ),
                Field::TcpDst(80),
                Field::CtState(
                    ct_state::NEW | ct_state::TRK,
                    Some(ct_state::NEW | ct_state::TRK | ct_state::EST),
                ),
            ]),
            vec![],
        );
        f.cookie = 0x1_0500_0000_0003;
        assert_eq!(
            flow_line(&f),
            "cookie=0x1050000000003, table=5, priority=1002,tcp,metadata=0x200000000/0xffff00000000,nw_dst=10.1.0.0/16,tp_dst=80,ct_state=+new-est+trk actions=drop"
        );
        let g = FlowMod::add(
            0,
            0,
            Match::default(),
            vec![
                Instruction::ApplyActions(vec![Action::Output {
                    port: OFPP_CONTROLLER,
                    max_len: 65535,
                }]),
                Instruction::WriteMetadata {
                    value: 1,
                    mask: 0xffff,
                },
                Instruction::GotoTable(1),
            ],
        );
        assert_eq!(
            flow_line(&g),
            "cookie=0x0, priority=0 actions=CONTROLLER:65535,write_metadata:0x1/0xffff,goto_table:1"
        );
    }
}
