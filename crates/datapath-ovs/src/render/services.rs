//! Service load balancing (SRV_PROXY): a new connection to a VIP's port goes to an OpenFlow
//! select group of the service port, one bucket per provider with equal weights (OVS hashes
//! each new connection's 5-tuple to pick one). Each bucket commits the connection to
//! conntrack in the tenant's zone with a DNAT to its provider and goes on to DST_GRP, so the
//! policy tables judge the provider as the destination. Later packets of the connection get the
//! same translation from conntrack (CONNTRACK's `ct(nat)`), replies are translated back there,
//! and a change of providers (a group modify) touches only new connections.
//!
//! Hairpin (a provider reaching its own VIP and picked itself): its packet would arrive from
//! its own address, which its kernel drops. As the Linux driver masquerades such connections,
//! the IP table rewrites the source of a local provider's packet to itself to the network's
//! gateway, and CONNTRACK turns the reply (provider's target port → gateway) back before
//! conntrack un-NATs it. Stateless rewrites on both sides of the one conntrack entry: OVS
//! cannot DNAT and SNAT in one commit.

use std::collections::BTreeSet;

use contiv_datapath::{NetworkSpec, Transport};
use contiv_openflow::{
    Action, Bucket, Ct, Field, GroupMod, GroupModCommand, GroupType, Instruction, Nat,
    NX_CT_F_COMMIT, NX_NAT_F_DST, OFPG_ANY, OFPP_ANY,
};

use super::forwarding::{ct_nat, meta, net_meta, write_meta};
use super::{fnv1a, Desired, Out};
use crate::pipeline::*;

const ETH_IP: u16 = 0x0800;

/// Group ids are 28-bit hashes (never 0, far from OpenFlow's reserved ids at the top).
const GROUP_ID_MASK: u32 = 0x0fff_ffff;

/// The select group id of one service port of one tenant: a hash of its names, so the same
/// service port has the same group in every run (a restarted agent modifies it in place).
pub fn group_id(tenant: &str, service: &str, transport: Transport, port: u16) -> u32 {
    let h = fnv1a(format!("{tenant}/{service}/{}/{port}", transport.as_str()).as_bytes());
    ((h ^ (h >> 32)) as u32 & GROUP_ID_MASK).max(1)
}

fn l4(transport: Transport) -> (u8, fn(u16) -> Field, fn(u16) -> Field) {
    match transport {
        Transport::Tcp => (6, Field::TcpDst, Field::TcpSrc),
        Transport::Udp => (17, Field::UdpDst, Field::UdpSrc),
    }
}

pub(super) fn services(out: &mut Out, d: &Desired<'_>) {
    let mut used = BTreeSet::new();
    for ts in d.services.values() {
        let Some(&zone) = d.tenants.get(&ts.tenant) else {
            out.pending(format!(
                "services of tenant {}: no tenant number",
                ts.tenant
            ));
            continue;
        };
        let tenant = (META_TENANT, u64::from(zone));
        let nets: Vec<&NetworkSpec> = d
            .networks
            .iter()
            .filter(|n| n.tenant == ts.tenant)
            .collect();
        for svc in &ts.services {
            // The VIP is an address of the tenant's network: its ARP is answered with the
            // router's MAC, so clients send to it through the IP table.
            for n in &nets {
                if n.subnet.contains(&svc.vip) {
                    super::forwarding::arp_reply(
                        out,
                        (Category::Service, u64::from(u32::from(svc.vip))),
                        n,
                        svc.vip,
                        ROUTER_MAC,
                    );
                }
            }
            for p in &svc.ports {
                // No provider: no group; the VIP's packets go on and meet no route (dropped).
                if svc.providers.is_empty() {
                    continue;
                }
                let mut gid = group_id(&ts.tenant, &svc.name, p.transport, p.port);
                // A 28-bit collision is unlikely; if it happens, probe on (ids stay stable as
                // long as the set of services does).
                while !used.insert(gid) {
                    gid = (gid % GROUP_ID_MASK) + 1;
                }
                let buckets = svc
                    .providers
                    .iter()
                    .map(|ip| Bucket {
                        weight: 1,
                        watch_port: OFPP_ANY,
                        watch_group: OFPG_ANY,
                        actions: vec![Action::Ct(Ct {
                            flags: NX_CT_F_COMMIT,
                            zone_src: 0,
                            zone,
                            recirc_table: Table::DstGrp.id(),
                            alg: 0,
                            actions: vec![Action::Nat(Nat {
                                flags: NX_NAT_F_DST,
                                ipv4_min: Some(*ip),
                                proto_min: Some(p.target),
                                ..Nat::default()
                            })],
                        })],
                    })
                    .collect();
                out.group(GroupMod {
                    command: GroupModCommand::Add,
                    group_type: GroupType::Select,
                    group_id: gid,
                    buckets,
                });
                let (proto, dst, _) = l4(p.transport);
                out.flow(
                    Table::SrvProxy,
                    PRIO_HIGH,
                    (Category::Service, u64::from(gid)),
                    vec![
                        meta(&[tenant]),
                        Field::EthType(ETH_IP),
                        Field::IpProto(proto),
                        Field::Ipv4Dst(svc.vip, None),
                        dst(p.port),
                    ],
                    vec![Instruction::ApplyActions(vec![Action::Group(gid)])],
                );
            }
            hairpin(out, d, &nets, zone, svc);
        }
    }
}

/// The hairpin rewrites for the service's providers on this host.
fn hairpin(
    out: &mut Out,
    d: &Desired<'_>,
    nets: &[&NetworkSpec],
    zone: u16,
    svc: &contiv_datapath::ServiceSpec,
) {
    let tenant = (META_TENANT, u64::from(zone));
    for ep in d.local_endpoints {
        let ip = ep.ip.addr();
        if svc.providers.binary_search(&ip).is_err() {
            continue;
        }
        let Some(n) = nets.iter().find(|n| n.id == ep.network_id) else {
            continue;
        };
        let own = (Category::Service, u64::from(u32::from(ip)));
        // To itself (after the DNAT): from the gateway instead.
        out.flow(
            Table::Ip,
            PRIO_HIGH + 1,
            own,
            vec![
                meta(&[tenant]),
                Field::EthDst(ROUTER_MAC, None),
                Field::EthType(ETH_IP),
                Field::Ipv4Src(ip, None),
                Field::Ipv4Dst(ip, None),
            ],
            vec![
                Instruction::ApplyActions(vec![
                    Action::SetField(Field::EthSrc(ROUTER_MAC, None)),
                    Action::SetField(Field::EthDst(ep.mac.octets(), None)),
                    Action::SetField(Field::Ipv4Src(n.gateway, None)),
                    Action::DecNwTtl,
                ]),
                write_meta(&net_meta(n)),
                Instruction::GotoTable(Table::MacDest.id()),
            ],
        );
        // Its answer to the gateway from a target port: back to itself, then conntrack.
        for p in &svc.ports {
            let (proto, _, src) = l4(p.transport);
            out.flow(
                Table::Conntrack,
                PRIO_HIGH + 1,
                own,
                vec![
                    meta(&[tenant]),
                    Field::EthType(ETH_IP),
                    Field::IpProto(proto),
                    Field::Ipv4Src(ip, None),
                    Field::Ipv4Dst(n.gateway, None),
                    src(p.target),
                ],
                vec![Instruction::ApplyActions(vec![
                    Action::SetField(Field::Ipv4Dst(ip, None)),
                    ct_nat(zone),
                ])],
            );
        }
    }
}
