//! Golden bytes: what `ovs-ofctl -O OpenFlow13` (Open vSwitch 3.1) sends for representative flows,
//! captured by `golden/capture-all.sh` (each file names its command), against our encoder.
//! Xids are zeroed in the captures, so our messages are encoded with xid 0.

use std::net::Ipv4Addr;

use contiv_openflow::oxm::{nxm_reg_header, Field::*};
use contiv_openflow::*;

fn golden(name: &str) -> Vec<Vec<u8>> {
    let path = format!("{}/tests/golden/{name}.golden", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            (0..l.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&l[i..i + 2], 16).unwrap())
                .collect()
        })
        .collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Our encoding of `msgs` equals the capture, message by message.
fn check(name: &str, msgs: &[Message]) {
    let want = golden(name);
    assert_eq!(want.len(), msgs.len(), "{name}: number of messages");
    for (w, m) in want.iter().zip(msgs) {
        assert_eq!(hex(&m.encode(0)), hex(w), "{name}");
    }
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn apply(a: Vec<Action>) -> Vec<Instruction> {
    vec![Instruction::ApplyActions(a)]
}

fn out(port: u32) -> Action {
    Action::Output { port, max_len: 0 }
}

fn to_controller() -> Action {
    Action::Output {
        port: OFPP_CONTROLLER,
        max_len: 0xffff,
    }
}

fn add(table: u8, prio: u16, m: Vec<Field>, i: Vec<Instruction>) -> Message {
    Message::FlowMod(FlowMod::add(table, prio, Match(m), i))
}

#[test]
fn output() {
    check(
        "output",
        &[add(0, 100, vec![InPort(1)], apply(vec![out(2)]))],
    );
}

#[test]
fn punts_to_controller() {
    check(
        "arp_punt",
        &[add(
            0,
            100,
            vec![EthType(0x0806), ArpOp(1)],
            apply(vec![to_controller()]),
        )],
    );
    let m = vec![
        EthSrc([2, 2, 0, 0, 0, 0], Some([0xff, 0xff, 0, 0, 0, 0])),
        EthType(0x0800),
        IpProto(17),
        UdpDst(53),
    ];
    check("dns_punt", &[add(0, 100, m, apply(vec![to_controller()]))]);
}

#[test]
fn vlan_to_metadata() {
    let i = vec![
        Instruction::ApplyActions(vec![Action::PopVlan]),
        Instruction::WriteMetadata {
            value: 0x1_0001_0002,
            mask: 0xff_7fff_fffe,
        },
        Instruction::GotoTable(2),
    ];
    check(
        "vlan_metadata",
        &[add(1, 100, vec![InPort(3), VlanVid(0x100a, None)], i)],
    );
}

#[test]
fn policy_with_cookie_timeouts_and_flags() {
    let m = vec![
        EthType(0x0800),
        Ipv4Src(ip("10.1.0.0"), Some(ip("255.255.0.0"))),
        Ipv4Dst(ip("10.1.1.5"), None),
        IpProto(6),
        TcpDst(80),
        Metadata(0x20, Some(0x7ffe)),
    ];
    let mut f = FlowMod::add(5, 20, Match(m), vec![Instruction::GotoTable(6)]);
    f.cookie = 0x1234;
    f.idle_timeout = 30;
    f.hard_timeout = 60;
    f.flags = OFPFF_SEND_FLOW_REM;
    check("policy", &[Message::FlowMod(f)]);
    let m = vec![
        EthType(0x0800),
        Ipv4Dst(ip("10.1.1.0"), Some(ip("255.255.255.0"))),
        IpProto(17),
        UdpSrc(53),
        UdpDst(5353),
    ];
    check("udp_ports", &[add(5, 30, m, vec![])]);
}

#[test]
fn registers_and_conntrack_matches_load_move_resubmit() {
    let m = vec![
        EthType(0x0800),
        Reg(0, 5, Some(0xff)),
        CtState(
            ct_state::TRK | ct_state::EST,
            Some(ct_state::TRK | ct_state::EST | ct_state::NEW),
        ),
        CtZone(7),
        CtMark(1, Some(0xf)),
    ];
    let a = vec![
        Action::RegLoad {
            ofs_nbits: 7,
            dst: nxm_reg_header(1),
            value: 3,
        },
        Action::RegMove {
            n_bits: 16,
            src_ofs: 0,
            dst_ofs: 16,
            src: nxm_reg_header(0),
            dst: nxm_reg_header(2),
        },
        Action::Resubmit {
            in_port: 0xfff8,
            table: 7,
        },
    ];
    check("regs_ct", &[add(2, 50, m, apply(a))]);
}

#[test]
fn ct_commit_with_nat_range_and_plain_ct() {
    let nat = Nat {
        flags: NX_NAT_F_DST,
        ipv4_min: Some(ip("10.0.0.10")),
        ipv4_max: Some(ip("10.0.0.20")),
        proto_min: Some(8080),
        proto_max: Some(8090),
        ..Nat::default()
    };
    let ct = Ct {
        flags: NX_CT_F_COMMIT,
        zone_src: 0,
        zone: 5,
        recirc_table: 4,
        alg: 0,
        actions: vec![Action::Nat(nat)],
    };
    check(
        "ct_nat",
        &[add(
            3,
            10,
            vec![EthType(0x0800)],
            apply(vec![Action::Ct(ct)]),
        )],
    );
    let ct = Ct {
        flags: 0,
        zone_src: 0,
        zone: 9,
        recirc_table: 4,
        alg: 0,
        actions: vec![],
    };
    check(
        "ct_plain",
        &[add(
            3,
            11,
            vec![EthType(0x0800)],
            apply(vec![Action::Ct(ct)]),
        )],
    );
}

#[test]
fn set_fields_vlan_push_dec_ttl() {
    let m = vec![EthType(0x0800), TunnelId(0x64, None), CtLabel(1, Some(1))];
    let a = vec![
        Action::SetField(EthSrc([0, 0, 0x11, 0x11, 0x11, 0x11], None)),
        Action::SetField(Reg(3, 5, None)),
        Action::DecNwTtl,
        Action::PushVlan(0x8100),
        Action::SetField(VlanVid(0x100a, None)),
        out(4),
    ];
    check("set_fields", &[add(4, 5, m, apply(a))]);
}

#[test]
fn arp_responder_fields() {
    let mac = [2, 2, 0x0a, 1, 1, 5];
    let m = vec![
        EthType(0x0806),
        ArpOp(1),
        ArpSpa(ip("10.1.1.0"), Some(ip("255.255.255.0"))),
        ArpTpa(ip("10.1.1.5"), None),
        ArpSha([2, 2, 0x0a, 1, 1, 6], None),
        ArpTha([0; 6], None),
    ];
    let a = vec![
        Action::SetField(EthSrc(mac, None)),
        Action::SetField(ArpOp(2)),
        Action::SetField(ArpSha(mac, None)),
        Action::SetField(ArpSpa(ip("10.1.1.5"), None)),
        out(OFPP_IN_PORT),
    ];
    check("arp_reply", &[add(0, 200, m, apply(a))]);
}

#[test]
fn group_clear_write_goto() {
    let i = vec![
        Instruction::ApplyActions(vec![Action::Group(3)]),
        Instruction::ClearActions,
        Instruction::WriteActions(vec![out(1)]),
        Instruction::GotoTable(9),
    ];
    let m = vec![EthDst([1, 0, 0, 0, 0, 0], Some([1, 0, 0, 0, 0, 0]))];
    check("write_actions", &[add(6, 1, m, i)]);
}

#[test]
fn modify_and_delete() {
    let base = |table, cmd, prio, m| FlowMod {
        command: cmd,
        ..FlowMod::add(table, prio, Match(m), vec![])
    };
    check(
        "mod_loose",
        &[Message::FlowMod(base(
            1,
            FlowModCommand::Modify,
            0x8000,
            vec![InPort(3)],
        ))],
    );
    let mut f = base(1, FlowModCommand::ModifyStrict, 100, vec![InPort(3)]);
    f.instructions = apply(vec![out(5)]);
    check("mod_strict", &[Message::FlowMod(f)]);
    let mut f = base(
        5,
        FlowModCommand::DeleteStrict,
        20,
        vec![EthType(0x0800), IpProto(6), TcpDst(80)],
    );
    f.out_port = 2;
    check("del_strict", &[Message::FlowMod(f)]);
    check(
        "del_cookie",
        &[Message::FlowMod(FlowMod::delete_by_cookie(0x100, 0xff00))],
    );
}

#[test]
fn groups_all_and_select() {
    let bucket = |weight, port| Bucket {
        weight,
        watch_port: OFPP_ANY,
        watch_group: OFPG_ANY,
        actions: vec![out(port)],
    };
    let g = |id, t, buckets| {
        Message::GroupMod(GroupMod {
            command: GroupModCommand::Add,
            group_type: t,
            group_id: id,
            buckets,
        })
    };
    check(
        "group_all",
        &[g(1, GroupType::All, vec![bucket(0, 1), bucket(0, 2)])],
    );
    check(
        "group_select",
        &[g(2, GroupType::Select, vec![bucket(10, 1), bucket(20, 2)])],
    );
}

#[test]
fn bundle_open_add_commit() {
    let flags = OFPBF_ATOMIC | OFPBF_ORDERED;
    let ctl = |typ| {
        Message::BundleControl(BundleControl {
            bundle_id: 0,
            typ,
            flags,
            properties: vec![],
        })
    };
    let flow = add(0, 100, vec![InPort(1)], apply(vec![out(2)]));
    let add = Message::BundleAdd(BundleAdd {
        bundle_id: 0,
        flags,
        inner: Box::new(Envelope { xid: 2, msg: flow }),
    });
    check(
        "bundle",
        &[
            ctl(BundleCtrlType::OpenRequest),
            add,
            ctl(BundleCtrlType::CommitRequest),
        ],
    );
}

/// Every capture decodes, and re-encodes to the same bytes.
#[test]
fn every_capture_round_trips() {
    let dir = format!("{}/tests/golden", env!("CARGO_MANIFEST_DIR"));
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        let Some(stem) = name.strip_suffix(".golden") else {
            continue;
        };
        for bytes in golden(stem) {
            let env = Message::decode(&bytes).unwrap_or_else(|e| panic!("{stem}: {e}"));
            assert!(
                !matches!(env.msg, Message::Other { .. }),
                "{stem}: {:?}",
                env.msg
            );
            assert_eq!(hex(&env.msg.encode(env.xid)), hex(&bytes), "{stem}");
            n += 1;
        }
    }
    assert!(n >= 20, "only {n} captures");
}

#[test]
fn packet_out_and_packet_in() {
    let data = vec![
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 2, 0x0a, 1, 1, 5, 8, 6,
    ];
    let po = PacketOut {
        buffer_id: OFP_NO_BUFFER,
        in_port: 1,
        actions: vec![out(2)],
        data: data.clone(),
    };
    check("packet_out", &[Message::PacketOut(po)]);
    // No ovs-ofctl command sends a packet-in: a round trip of our own encoding instead.
    let pi = Message::PacketIn(PacketIn {
        buffer_id: OFP_NO_BUFFER,
        total_len: data.len() as u16,
        reason: 1,
        table_id: 0,
        cookie: 0x42,
        r#match: Match(vec![InPort(7), Reg(0, 3, None)]),
        data,
    });
    let bytes = pi.encode(9);
    assert_eq!(Message::decode(&bytes), Ok(Envelope { xid: 9, msg: pi }));
}

/// OVS's `OFPGC11_ADD_OR_MOD` (0x8000, what `ovs-ofctl --may-create mod-group` sends): the
/// command field carries it and it decodes back.
#[test]
fn group_add_or_modify_round_trips() {
    let m = Message::GroupMod(GroupMod {
        command: GroupModCommand::AddOrModify,
        group_type: GroupType::Select,
        group_id: 7,
        buckets: vec![Bucket {
            weight: 1,
            watch_port: OFPP_ANY,
            watch_group: OFPG_ANY,
            actions: vec![out(3)],
        }],
    });
    let bytes = m.encode(9);
    assert_eq!(&bytes[8..10], &[0x80, 0x00]);
    assert_eq!(Message::decode(&bytes), Ok(Envelope { xid: 9, msg: m }));
}
