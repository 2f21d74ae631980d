//! Forwarding flows: the fixed pipeline (table defaults, ARP punt, conntrack state), per network
//! (DNS punt, tunnel ingress, conntrack zone and commit per tenant) and per endpoint (port to
//! metadata with the source guard, L2 delivery, routing to it).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use contiv_datapath::{Encap, NetworkSpec};
use contiv_openflow::{
    ct_state, Action, Ct, Field, Instruction, Mac, NX_CT_F_COMMIT, NX_CT_RECIRC_NONE,
    OFPP_CONTROLLER,
};

use super::{Desired, Out};
use crate::pipeline::*;

const ETH_IP: u16 = 0x0800;
const ETH_ARP: u16 = 0x0806;

fn goto(t: Table) -> Vec<Instruction> {
    vec![Instruction::GotoTable(t.id())]
}

fn punt() -> Vec<Instruction> {
    vec![Instruction::ApplyActions(vec![Action::Output {
        port: OFPP_CONTROLLER,
        max_len: 0xffff,
    }])]
}

/// Metadata match on the given fields' values.
pub(super) fn meta(fields: &[(MetaField, u64)]) -> Field {
    let (v, m) = fields
        .iter()
        .fold((0, 0), |(v, m), (f, x)| (v | f.value(*x), m | f.mask()));
    Field::Metadata(v, Some(m))
}

fn write_meta(fields: &[(MetaField, u64)]) -> Instruction {
    let (value, mask) = fields
        .iter()
        .fold((0, 0), |(v, m), (f, x)| (v | f.value(*x), m | f.mask()));
    Instruction::WriteMetadata { value, mask }
}

fn ct(flags: u16, zone: u16, recirc: Option<Table>) -> Action {
    Action::Ct(Ct {
        flags,
        zone_src: 0,
        zone,
        recirc_table: recirc.map_or(NX_CT_RECIRC_NONE, Table::id),
        alg: 0,
        actions: vec![],
    })
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
    // The agent answers ARP from what it knows (and learns nothing from it).
    out.flow(
        Table::Input,
        PRIO_PUNT,
        own(Table::Input),
        vec![Field::EthType(ETH_ARP)],
        punt(),
    );
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

/// Per network and tenant: DNS punt, tunnel ingress, conntrack zone and commit.
pub(super) fn networks(out: &mut Out, d: &Desired<'_>) {
    for n in d.networks {
        let Some(zone) = zone_of(out, d, n) else {
            continue;
        };
        let own = (Category::Network, u64::from(n.vni));
        out.flow(
            Table::Input,
            PRIO_PUNT,
            own,
            vec![
                Field::EthType(ETH_IP),
                Field::IpProto(17),
                Field::Ipv4Dst(n.gateway, None),
                Field::UdpDst(53),
            ],
            punt(),
        );
        let tenant = (META_TENANT, u64::from(zone));
        let net = (META_NETWORK, u64::from(n.vni));
        for &port in d.ports.tunnels.values() {
            out.flow(
                Table::Vlan,
                PRIO_HIGH,
                own,
                // OVS's field order (tunnel metadata first), so dumps compare line for line.
                vec![Field::TunnelId(u64::from(n.vni), None), Field::InPort(port)],
                vec![
                    write_meta(&[tenant, net]),
                    Instruction::GotoTable(Table::Conntrack.id()),
                ],
            );
        }
        let t_own = (Category::Network, u64::from(zone));
        out.flow(
            Table::Conntrack,
            PRIO_HIGH,
            t_own,
            vec![meta(&[tenant]), Field::EthType(ETH_IP)],
            vec![Instruction::ApplyActions(vec![ct(
                0,
                zone,
                Some(Table::CtState),
            )])],
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
    for &port in d.ports.tunnels.values() {
        out.flow(
            Table::Input,
            PRIO_PASS,
            (Category::Pipeline, u64::from(port)),
            vec![Field::InPort(port)],
            goto(Table::Vlan),
        );
    }
}

fn zone_of(out: &mut Out, d: &Desired<'_>, n: &NetworkSpec) -> Option<u16> {
    if n.encap == Encap::Vlan {
        out.pending(format!(
            "network {}: VLAN encapsulation is not rendered yet",
            n.id
        ));
        return None;
    }
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
        let Some(&port) = d.ports.tunnels.get(&ep.vtep) else {
            out.pending(format!(
                "remote endpoint {}: no tunnel to {} yet",
                ep.id, ep.vtep
            ));
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
        let Some(&zone) = d.tenants.get(&n.tenant).filter(|_| n.encap == Encap::Vxlan) else {
            continue; // reported once per network
        };
        endpoint(out, d, n, zone, dst);
    }
}

fn endpoint(out: &mut Out, d: &Desired<'_>, n: &NetworkSpec, zone: u16, dst: &Dest) {
    let tenant = (META_TENANT, u64::from(zone));
    let net = (META_NETWORK, u64::from(n.vni));
    if !dst.remote {
        // The source guard: only the endpoint's own MAC and IPv4 address get in.
        let group = d
            .policy
            .get(&n.tenant)
            .and_then(|tp| {
                tp.egress_members
                    .get(&dst.ip)
                    .map(|g| super::policy::group_number(tp, g))
            })
            .unwrap_or(0);
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
                write_meta(&[tenant, net, (META_SRC_GROUP, u64::from(group))]),
                Instruction::GotoTable(Table::Conntrack.id()),
            ],
        );
    }
    let deliver = if dst.remote {
        vec![
            Action::SetField(Field::TunnelId(u64::from(n.vni), None)),
            Action::Output {
                port: dst.port,
                max_len: 0,
            },
        ]
    } else {
        vec![Action::Output {
            port: dst.port,
            max_len: 0,
        }]
    };
    out.flow(
        Table::MacDest,
        PRIO_HIGH,
        dst.owner,
        vec![meta(&[net]), Field::EthDst(dst.mac, None)],
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
            write_meta(&[net]),
            Instruction::GotoTable(Table::MacDest.id()),
        ],
    );
}
