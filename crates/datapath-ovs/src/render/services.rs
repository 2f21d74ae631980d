//! Service load balancing (SRV_PROXY): a new TCP connection to a VIP's port goes to an OpenFlow
//! select group of the service port, one bucket per provider with equal weights (OVS hashes
//! each new connection's 5-tuple to pick one); UDP is picked by `multipath` instead (see
//! [`udp_port`]). Each bucket commits the connection to
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

use std::net::Ipv4Addr;

use contiv_datapath::{NetworkSpec, ServicePort, ServiceSpec, Transport};
use contiv_openflow::oxm::nxm_reg_header;
use contiv_openflow::{
    Action, Bucket, Ct, Field, GroupMod, GroupModCommand, GroupType, Instruction, Nat,
    NX_CT_F_COMMIT, NX_NAT_F_DST, NX_VENDOR_ID, OFPG_ANY, OFPP_ANY, OFPP_IN_PORT,
};

use super::forwarding::{ct_nat, meta, net_meta, write_meta};
use super::{fnv1a, Binding, Desired, Out};
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

/// A transport's IP protocol number, its destination-port field and its source-port field.
type L4 = (u8, fn(u16) -> Field, fn(u16) -> Field);

fn l4(transport: Transport) -> L4 {
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
        let nets: Vec<&NetworkSpec> = d
            .networks
            .iter()
            .filter(|n| n.tenant == ts.tenant)
            .collect();
        // Providers this host can deliver to (an endpoint of the tenant's networks, here or
        // on another host): a provider the agent has not been told about yet (its remote
        // endpoint is on its way) would black-hole the connections it is picked for.
        let known: BTreeSet<Ipv4Addr> = d
            .local_endpoints
            .iter()
            .filter(|e| nets.iter().any(|n| n.id == e.network_id))
            .map(|e| e.ip.addr())
            .chain(
                d.remote_endpoints
                    .iter()
                    .filter(|e| nets.iter().any(|n| n.id == e.network_id))
                    .map(|e| e.ip),
            )
            .collect();
        for svc in &ts.services {
            let reachable: Vec<Ipv4Addr> = svc
                .providers
                .iter()
                .copied()
                .filter(|p| known.contains(p))
                .collect();
            if reachable.len() < svc.providers.len() {
                out.pending(format!(
                    "service {}: {} of its providers not known here yet",
                    svc.name,
                    svc.providers.len() - reachable.len()
                ));
            }
            let svc = &ServiceSpec {
                providers: reachable,
                ..svc.clone()
            };
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
                for provider in &svc.providers {
                    out.binding(Binding {
                        zone,
                        proto: l4(p.transport).0,
                        vip: svc.vip,
                        port: p.port,
                        provider: *provider,
                        target: p.target,
                    });
                }
                match p.transport {
                    Transport::Tcp => tcp_port(out, &mut used, &ts.tenant, zone, svc, p),
                    Transport::Udp => udp_port(out, zone, svc, p),
                }
            }
            hairpin(out, d, &nets, zone, svc);
        }
    }
}

/// The bucket (or UDP link) action for `provider`: commit in the tenant's zone with a DNAT to
/// it, then DST_GRP.
fn dnat(zone: u16, provider: Ipv4Addr, target: u16) -> Action {
    Action::Ct(Ct {
        flags: NX_CT_F_COMMIT,
        zone_src: 0,
        zone,
        recirc_table: Table::DstGrp.id(),
        alg: 0,
        actions: vec![Action::Nat(Nat {
            flags: NX_NAT_F_DST,
            ipv4_min: Some(provider),
            proto_min: Some(target),
            ..Nat::default()
        })],
    })
}

/// A TCP port: a select group, one bucket per provider, equal weights. OVS hashes the
/// connection's addresses and ports to a bucket.
fn tcp_port(
    out: &mut Out,
    used: &mut BTreeSet<u32>,
    tenant_name: &str,
    zone: u16,
    svc: &ServiceSpec,
    p: &ServicePort,
) {
    let mut gid = group_id(tenant_name, &svc.name, p.transport, p.port);
    // A 28-bit collision is unlikely; if it happens, probe on (ids stay stable as long as the
    // set of services does).
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
            actions: vec![dnat(zone, *ip, p.target)],
        })
        .collect();
    out.group(GroupMod {
        command: GroupModCommand::Add,
        group_type: GroupType::Select,
        group_id: gid,
        buckets,
    });
    out.flow(
        Table::SrvProxy,
        PRIO_HIGH,
        (Category::Service, u64::from(gid)),
        vip_match(zone, svc, p),
        vec![Instruction::ApplyActions(vec![Action::Group(gid)])],
    );
}

/// A UDP port: OVS's select groups hash UDP without its ports (every socket of a client would
/// reach the same provider: the pinning Contiv's balancer had), so the link is picked by
/// `multipath` over addresses and UDP ports into [`REG_SRV_LINK`] (HRW: removing a provider
/// moves only the flows it had), [`REG_SRV_PICKED`] is set, and SRV_PROXY is entered again: one
/// flow per provider matches its link and DNATs as a TCP bucket does.
fn udp_port(out: &mut Out, zone: u16, svc: &ServiceSpec, p: &ServicePort) {
    let own = (
        Category::Service,
        u64::from(group_id("", &svc.name, p.transport, p.port)),
    );
    let n = svc.providers.len().min(usize::from(SRV_LINK_MAX)) as u16;
    out.flow(
        Table::SrvProxy,
        PRIO_HIGH,
        own,
        vip_match(zone, svc, p),
        vec![Instruction::ApplyActions(vec![
            multipath(n - 1),
            Action::SetField(Field::Reg(REG_SRV_PICKED, 1, None)),
            Action::Resubmit {
                in_port: 0xfff8,
                table: Table::SrvProxy.id(),
            },
        ])],
    );
    for (i, ip) in svc.providers.iter().take(usize::from(n)).enumerate() {
        let mut m = vip_match(zone, svc, p);
        // OVS's field order (registers first), so dumps compare line for line.
        m.splice(
            0..0,
            [
                Field::Reg(REG_SRV_LINK, i as u32, None),
                Field::Reg(REG_SRV_PICKED, 1, None),
            ],
        );
        out.flow(
            Table::SrvProxy,
            PRIO_HIGH + 1,
            own,
            m,
            vec![Instruction::ApplyActions(vec![dnat(zone, *ip, p.target)])],
        );
    }
}

/// NXAST_MULTIPATH: `multipath(symmetric_l3l4+udp, 0, hrw, max_link + 1, 0,
/// reg<REG_SRV_LINK>[0..15])`.
fn multipath(max_link: u16) -> Action {
    const NXAST_MULTIPATH: u16 = 10;
    const NX_HASH_FIELDS_SYMMETRIC_L3L4_UDP: u16 = 3;
    const NX_MP_ALG_HRW: u16 = 2;
    let mut data = vec![];
    for v in [
        NXAST_MULTIPATH,
        NX_HASH_FIELDS_SYMMETRIC_L3L4_UDP,
        0, // basis
        0, // pad
        NX_MP_ALG_HRW,
        max_link,
    ] {
        data.extend_from_slice(&v.to_be_bytes());
    }
    data.extend_from_slice(&0u32.to_be_bytes()); // arg
    data.extend_from_slice(&0u16.to_be_bytes()); // pad
    data.extend_from_slice(&15u16.to_be_bytes()); // ofs 0, 16 bits
    data.extend_from_slice(&nxm_reg_header(REG_SRV_LINK).to_be_bytes());
    Action::Experimenter {
        experimenter: NX_VENDOR_ID,
        data,
    }
}

/// New connections of the tenant to the VIP's port.
fn vip_match(zone: u16, svc: &ServiceSpec, p: &ServicePort) -> Vec<Field> {
    let (proto, dst, _) = l4(p.transport);
    vec![
        meta(&[(META_TENANT, u64::from(zone))]),
        Field::EthType(ETH_IP),
        Field::IpProto(proto),
        Field::Ipv4Dst(svc.vip, None),
        dst(p.port),
    ]
}

/// The hairpin rewrites for the service's providers on this host.
fn hairpin(out: &mut Out, d: &Desired<'_>, nets: &[&NetworkSpec], zone: u16, svc: &ServiceSpec) {
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
        // Both directions of a hairpin connection leave by the port they came in on, which
        // OpenFlow drops unless the output says IN_PORT.
        if let Some(&port) = d.ports.endpoints.get(&ep.id) {
            out.flow(
                Table::MacDest,
                PRIO_HIGH + 1,
                own,
                // OVS's field order (metadata before the port), so dumps compare line for line.
                vec![
                    meta(&net_meta(n)),
                    Field::InPort(port),
                    Field::EthDst(ep.mac.octets(), None),
                ],
                vec![Instruction::ApplyActions(vec![Action::Output {
                    port: OFPP_IN_PORT,
                    max_len: 0,
                }])],
            );
        }
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
