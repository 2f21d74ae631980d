//! Forwarding flows: the fixed pipeline (table defaults, conntrack state), per network (tunnel
//! ingress, conntrack zone and commit per tenant, ARP for the gateway) and per endpoint
//! (port to metadata with the source guard, ARP answered for it, L2 delivery, routing to it).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use contiv_datapath::{Encap, FwdMode, NetworkSpec};
use contiv_openflow::oxm::{header, NXM_1};
use contiv_openflow::{
    ct_state, Action, Ct, Field, Instruction, Mac, Nat, NX_CT_F_COMMIT, NX_CT_RECIRC_NONE,
    OFPP_IN_PORT,
};

use super::{Desired, Out};
use crate::pipeline::*;

pub(super) const ETH_IP: u16 = 0x0800;
pub(super) const ETH_ARP: u16 = 0x0806;
const ARP_REQUEST: u16 = 1;
const ARP_REPLY: u16 = 2;

pub(super) fn goto(t: Table) -> Vec<Instruction> {
    vec![Instruction::GotoTable(t.id())]
}

/// Metadata match on the given fields' values.
pub(super) fn meta(fields: &[(MetaField, u64)]) -> Field {
    let (v, m) = fields
        .iter()
        .fold((0, 0), |(v, m), (f, x)| (v | f.value(*x), m | f.mask()));
    Field::Metadata(v, Some(m))
}

pub(super) fn write_meta(fields: &[(MetaField, u64)]) -> Instruction {
    let (value, mask) = fields
        .iter()
        .fold((0, 0), |(v, m), (f, x)| (v | f.value(*x), m | f.mask()));
    Instruction::WriteMetadata { value, mask }
}

/// CONNTRACK's lookup in the tenant's zone: `nat` gives later packets of a connection a service
/// DNAT'd (SRV_PROXY) the same translation, and its replies the reverse one; recirculates to
/// CT_STATE.
pub(super) fn ct_nat(zone: u16) -> Action {
    Action::Ct(Ct {
        actions: vec![Action::Nat(Nat::default())],
        ..ct_plain(0, zone, Some(Table::CtState))
    })
}

fn ct(flags: u16, zone: u16, recirc: Option<Table>) -> Action {
    Action::Ct(ct_plain(flags, zone, recirc))
}

fn ct_plain(flags: u16, zone: u16, recirc: Option<Table>) -> Ct {
    Ct {
        flags,
        zone_src: 0,
        zone,
        recirc_table: recirc.map_or(NX_CT_RECIRC_NONE, Table::id),
        alg: 0,
        actions: vec![],
    }
}

/// Table defaults and the flows that do not depend on any object.
pub(super) fn pipeline(out: &mut Out) {
    let own = |t: Table| (Category::Pipeline, u64::from(t.id()));
    for t in Table::ALL {
        let next = match t {
            Table::SrvProxy => goto(Table::DstGrp),
            Table::DstGrp => goto(Table::PolicyOut),
            Table::PolicyOut => goto(Table::PolicyIn),
            Table::PolicyIn => goto(Table::CtCommit),
            Table::Ip => goto(Table::MacDest),
            // No flooding, no learning: what no flow names is dropped.
            _ => vec![],
        };
        out.flow(t, PRIO_DEFAULT, own(t), vec![], next);
    }
    let st = |v: u32, m: u32| vec![Field::CtState(v | ct_state::TRK, Some(m | ct_state::TRK))];
    let t = Table::CtState;
    // Replies and related traffic of a connection policy admitted pass without policy.
    out.flow(
        t,
        PRIO_HIGH,
        own(t),
        st(ct_state::EST, ct_state::EST | ct_state::INV),
        goto(Table::Ip),
    );
    out.flow(
        t,
        PRIO_HIGH,
        own(t),
        st(ct_state::REL, ct_state::REL | ct_state::INV),
        goto(Table::Ip),
    );
    out.flow(
        t,
        PRIO_PASS,
        own(t),
        st(ct_state::NEW, ct_state::NEW | ct_state::INV),
        goto(Table::SrvProxy),
    );
}

/// Per network and tenant: tunnel ingress, conntrack zone and commit.
pub(super) fn networks(out: &mut Out, d: &Desired<'_>) {
    for n in d.networks {
        let Some(zone) = zone_of(out, d, n) else {
            continue;
        };
        // A VLAN network's cookie id is its VLAN id above bit 24, apart from the VNIs.
        let own = (
            Category::Network,
            u64::from(n.vni) | u64::from(n.encap == Encap::Vlan) << 24,
        );
        let tenant = (META_TENANT, u64::from(zone));
        let [net, kind] = net_meta(n);
        arp_reply(out, own, n, n.gateway, ROUTER_MAC);
        match n.encap {
            Encap::Vxlan => {
                for &port in d.ports.tunnels.values() {
                    out.flow(
                        Table::Vlan,
                        PRIO_HIGH,
                        own,
                        // OVS's field order (tunnel metadata first), so dumps compare line for
                        // line.
                        vec![Field::TunnelId(u64::from(n.vni), None), Field::InPort(port)],
                        vec![
                            write_meta(&[tenant, net, kind]),
                            Instruction::GotoTable(Table::Conntrack.id()),
                        ],
                    );
                }
            }
            // Tagged frames from the trunk: the tag names the network; popped here, so the rest
            // of the pipeline sees the frame as a workload sent it. Unknown tags meet the
            // table's default drop.
            Encap::Vlan => match d.ports.uplink {
                Some(port) => out.flow(
                    Table::Vlan,
                    PRIO_HIGH,
                    own,
                    vec![Field::InPort(port), Field::VlanVid(vid(n), None)],
                    vec![
                        Instruction::ApplyActions(vec![Action::PopVlan]),
                        write_meta(&[tenant, net, kind]),
                        Instruction::GotoTable(Table::Conntrack.id()),
                    ],
                ),
                None => out.pending(format!("network {}: VLAN without an uplink", n.id)),
            },
        }
        let t_own = (Category::Network, u64::from(zone));
        out.flow(
            Table::Conntrack,
            PRIO_HIGH,
            t_own,
            vec![meta(&[tenant]), Field::EthType(ETH_IP)],
            vec![Instruction::ApplyActions(vec![ct_nat(zone)])],
        );
        out.flow(
            Table::CtCommit,
            PRIO_HIGH,
            t_own,
            vec![meta(&[tenant]), Field::EthType(ETH_IP)],
            vec![
                Instruction::ApplyActions(vec![ct(NX_CT_F_COMMIT, zone, None)]),
                Instruction::GotoTable(Table::Ip.id()),
            ],
        );
    }
    for &port in d.ports.tunnels.values().chain(d.ports.uplink.iter()) {
        out.flow(
            Table::Input,
            PRIO_PASS,
            (Category::Pipeline, u64::from(port)),
            vec![Field::InPort(port)],
            goto(Table::Vlan),
        );
    }
}

/// The network's metadata: its number (VNI or VLAN id) and whether that is a VLAN id.
pub(super) fn net_meta(n: &NetworkSpec) -> [(MetaField, u64); 2] {
    [
        (META_NETWORK, u64::from(n.vni)),
        (META_NET_VLAN, u64::from(n.encap == Encap::Vlan)),
    ]
}

/// The `vlan_vid` of a VLAN network's tagged frames (its tag is `vni` in the spec).
fn vid(n: &NetworkSpec) -> u16 {
    VID_PRESENT | (n.vni & 0xfff) as u16
}

fn zone_of(out: &mut Out, d: &Desired<'_>, n: &NetworkSpec) -> Option<u16> {
    let z = d.tenants.get(&n.tenant).copied();
    if z.is_none() {
        out.pending(format!(
            "network {}: no number for tenant {}",
            n.id, n.tenant
        ));
    }
    z
}

/// One endpoint, local or remote, as the delivery and routing flows need it.
struct Dest {
    network: String,
    ip: Ipv4Addr,
    mac: Mac,
    /// Local ofport, or (tunnel ofport) for a remote one.
    port: u32,
    remote: bool,
    owner: (Category, u64),
}

/// Per endpoint: port ingress with the source guard (local), delivery, routing.
pub(super) fn endpoints(out: &mut Out, d: &Desired<'_>) {
    let nets: BTreeMap<&str, &NetworkSpec> =
        d.networks.iter().map(|n| (n.id.as_str(), n)).collect();
    let mut dests = vec![];
    for ep in d.local_endpoints {
        let Some(&port) = d.ports.endpoints.get(&ep.id) else {
            out.pending(format!("endpoint {}: no ofport yet", ep.id));
            continue;
        };
        dests.push(Dest {
            network: ep.network_id.clone(),
            ip: ep.ip.addr(),
            mac: ep.mac.octets(),
            port,
            remote: false,
            owner: (Category::LocalEndpoint, u64::from(port)),
        });
    }
    for ep in d.remote_endpoints {
        // A VLAN network reaches every remote host through the trunk; a VXLAN one through the
        // tunnel to the endpoint's host.
        let vlan = nets
            .get(ep.network_id.as_str())
            .is_some_and(|n| n.encap == Encap::Vlan);
        let port = if vlan {
            d.ports.uplink
        } else {
            d.ports.tunnels.get(&ep.vtep).copied()
        };
        let Some(port) = port else {
            out.pending(if vlan {
                format!("remote endpoint {}: no VLAN uplink", ep.id)
            } else {
                format!("remote endpoint {}: no tunnel to {} yet", ep.id, ep.vtep)
            });
            continue;
        };
        dests.push(Dest {
            network: ep.network_id.clone(),
            ip: ep.ip,
            mac: ep.mac.octets(),
            port,
            remote: true,
            owner: (Category::RemoteEndpoint, u64::from(u32::from(ep.ip))),
        });
    }
    for dst in &dests {
        let Some(n) = nets.get(dst.network.as_str()) else {
            out.pending(format!(
                "endpoint {}: unknown network {}",
                dst.ip, dst.network
            ));
            continue;
        };
        let Some(&zone) = d.tenants.get(&n.tenant) else {
            continue; // reported once per network
        };
        endpoint(out, d, n, zone, dst);
    }
}

fn endpoint(out: &mut Out, d: &Desired<'_>, n: &NetworkSpec, zone: u16, dst: &Dest) {
    let tenant = (META_TENANT, u64::from(zone));
    let [net, kind] = net_meta(n);
    if !dst.remote {
        // The source guard: only the endpoint's own MAC and IPv4 address get in.
        // Its group's number if its group has out-rules (0: none to check). A group without a
        // number keeps the endpoint out (the policy rendering reports it): its traffic must not
        // get in unchecked.
        let egress = d
            .policy
            .get(&n.tenant)
            .and_then(|tp| tp.egress_members.get(&dst.ip));
        let group = match egress.map(|g| d.groups.get(&n.tenant, g)) {
            None => 0,
            Some(Some(g)) => g,
            Some(None) => return,
        };
        out.flow(
            Table::Input,
            PRIO_PASS,
            dst.owner,
            vec![Field::InPort(dst.port)],
            goto(Table::Vlan),
        );
        out.flow(
            Table::Vlan,
            PRIO_HIGH,
            dst.owner,
            vec![
                Field::InPort(dst.port),
                Field::EthSrc(dst.mac, None),
                Field::EthType(ETH_IP),
                Field::Ipv4Src(dst.ip, None),
            ],
            vec![
                write_meta(&[tenant, net, kind, (META_SRC_GROUP, u64::from(group))]),
                Instruction::GotoTable(Table::Conntrack.id()),
            ],
        );
        // Its ARP goes to the responder, under the same guard (sender MAC and address its own).
        out.flow(
            Table::Vlan,
            PRIO_HIGH,
            dst.owner,
            vec![
                Field::InPort(dst.port),
                Field::EthSrc(dst.mac, None),
                Field::EthType(ETH_ARP),
                Field::ArpSpa(dst.ip, None),
                Field::ArpSha(dst.mac, None),
            ],
            vec![
                write_meta(&[tenant, net, kind]),
                Instruction::GotoTable(Table::ArpResp.id()),
            ],
        );
    }
    // Routing mode: every endpoint is behind the one router MAC, so even a neighbour in the
    // same subnet is reached through IP (a /32 per endpoint, TTL decremented), as Contiv's
    // routing mode; bridge mode answers with the endpoint's own MAC.
    let answer = match n.fwd_mode {
        FwdMode::Routing => ROUTER_MAC,
        FwdMode::Bridge => dst.mac,
    };
    arp_reply(out, dst.owner, n, dst.ip, answer);
    let output = Action::Output {
        port: dst.port,
        max_len: 0,
    };
    let deliver = match (dst.remote, n.encap) {
        (false, _) => vec![output],
        (true, Encap::Vxlan) => vec![
            Action::SetField(Field::TunnelId(u64::from(n.vni), None)),
            output,
        ],
        // Out of the trunk with the network's 802.1Q tag.
        (true, Encap::Vlan) => vec![
            Action::PushVlan(ETH_8021Q),
            Action::SetField(Field::VlanVid(vid(n), None)),
            output,
        ],
    };
    out.flow(
        Table::MacDest,
        PRIO_HIGH,
        dst.owner,
        vec![meta(&[net, kind]), Field::EthDst(dst.mac, None)],
        vec![Instruction::ApplyActions(deliver)],
    );
    // Routed to it from any network of its tenant (sent to the gateway's MAC).
    out.flow(
        Table::Ip,
        PRIO_HIGH,
        dst.owner,
        vec![
            meta(&[tenant]),
            Field::EthDst(ROUTER_MAC, None),
            Field::EthType(ETH_IP),
            Field::Ipv4Dst(dst.ip, None),
        ],
        vec![
            Instruction::ApplyActions(vec![
                Action::SetField(Field::EthSrc(ROUTER_MAC, None)),
                Action::SetField(Field::EthDst(dst.mac, None)),
                Action::DecNwTtl,
            ]),
            write_meta(&[net, kind]),
            Instruction::GotoTable(Table::MacDest.id()),
        ],
    );
}

/// NXM headers of the fields the ARP responder moves (`reg_move` takes NXM, not OXM, headers).
const NXM_OF_ETH_DST: (u16, u8, u8) = (0, 1, 6);
const NXM_OF_ETH_SRC: (u16, u8, u8) = (0, 2, 6);
const NXM_OF_ARP_SPA: (u16, u8, u8) = (0, 16, 4);
const NXM_OF_ARP_TPA: (u16, u8, u8) = (0, 17, 4);
const NXM_NX_ARP_SHA: (u16, u8, u8) = (NXM_1, 17, 6);
const NXM_NX_ARP_THA: (u16, u8, u8) = (NXM_1, 18, 6);

/// `reg_move` of a whole field onto another of the same width.
fn mv(src: (u16, u8, u8), dst: (u16, u8, u8)) -> Action {
    Action::RegMove {
        n_bits: u16::from(src.2) * 8,
        src_ofs: 0,
        dst_ofs: 0,
        src: header(src.0, src.1, false, src.2),
        dst: header(dst.0, dst.1, false, dst.2),
    }
}

/// ARP_RESP: a request in network `n` for `ip` becomes the reply "`ip` is at `mac`", sent back
/// out of the port it came in on. Nothing is flooded and nothing learned: an address the agent
/// does not know gets no answer (the table's default drops it).
pub(super) fn arp_reply(
    out: &mut Out,
    owner: (Category, u64),
    n: &NetworkSpec,
    ip: Ipv4Addr,
    mac: Mac,
) {
    out.flow(
        Table::ArpResp,
        PRIO_HIGH,
        owner,
        // OVS's field order (metadata, then the ARP fields), so dumps compare line for line.
        vec![
            meta(&net_meta(n)),
            Field::EthType(ETH_ARP),
            Field::ArpTpa(ip, None),
            Field::ArpOp(ARP_REQUEST),
        ],
        vec![Instruction::ApplyActions(vec![
            mv(NXM_OF_ETH_SRC, NXM_OF_ETH_DST),
            Action::SetField(Field::EthSrc(mac, None)),
            Action::SetField(Field::ArpOp(ARP_REPLY)),
            mv(NXM_NX_ARP_SHA, NXM_NX_ARP_THA),
            Action::SetField(Field::ArpSha(mac, None)),
            mv(NXM_OF_ARP_SPA, NXM_OF_ARP_TPA),
            Action::SetField(Field::ArpSpa(ip, None)),
            Action::Output {
                port: OFPP_IN_PORT,
                max_len: 0,
            },
        ])],
    );
}
