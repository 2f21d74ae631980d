//! DNS flows: each tenant with a DNS port (`Ports::dns`) gets, per network of its here, DNS
//! (UDP and TCP port 53) to the network's gateway sent out of that port, and what comes back
//! from the gateway address (answers, and ARP for the asking workload) taken into that network.
//!
//! DNS to the gateway skips conntrack and policy, as on the Linux driver, where the gateway is
//! a local address of the tenant's router namespace and its policy hooks only forwarded
//! traffic: name lookups work whatever a group's rules deny. The answers come from the
//! gateway address, and each network has its own, so the source address names the network
//! (tenants reusing a subnet have ports, and metadata, of their own).

use contiv_datapath::NetworkSpec;
use contiv_openflow::{Action, Field, Instruction};

use super::forwarding::{goto, meta, net_meta, write_meta, ETH_ARP, ETH_IP};
use super::{Desired, Out};
use crate::pipeline::*;

const UDP: u8 = 17;
const TCP: u8 = 6;
/// The DNS port.
pub const DNS_PORT: u16 = 53;

/// Every tenant DNS port's flows.
pub(super) fn tenants(out: &mut Out, d: &Desired<'_>) {
    for (tenant, &port) in &d.ports.dns {
        let own = (Category::Dns, u64::from(port));
        let mut any = false;
        for n in d.networks.iter().filter(|n| &n.tenant == tenant) {
            let Some(&zone) = d.tenants.get(&n.tenant) else {
                continue; // reported once per network by the forwarding flows
            };
            network(out, own, port, zone, n);
            any = true;
        }
        // A port without a network here is on its way out: nothing comes in by it.
        if any {
            out.flow(
                Table::Input,
                PRIO_PASS,
                own,
                vec![Field::InPort(port)],
                goto(Table::Vlan),
            );
        }
    }
}

fn network(out: &mut Out, own: (Category, u64), port: u32, zone: u16, n: &NetworkSpec) {
    let tenant = (META_TENANT, u64::from(zone));
    let [net, kind] = net_meta(n);
    // Queries: after the workload's source guard (VLAN), before conntrack.
    for (proto, dst) in [
        (UDP, Field::UdpDst(DNS_PORT)),
        (TCP, Field::TcpDst(DNS_PORT)),
    ] {
        out.flow(
            Table::Conntrack,
            PRIO_PUNT,
            own,
            vec![
                meta(&[tenant, net, kind]),
                Field::EthType(ETH_IP),
                Field::IpProto(proto),
                Field::Ipv4Dst(n.gateway, None),
                dst,
            ],
            vec![Instruction::ApplyActions(vec![Action::Output {
                port,
                max_len: 0,
            }])],
        );
    }
    // Answers: from the gateway address (the server binds there) and the router MAC (the
    // namespace's interface has it, so workloads' frames to the gateway reach it unchanged),
    // into the network, then delivered as routed or bridged traffic is (IP, MAC_DEST).
    out.flow(
        Table::Vlan,
        PRIO_HIGH,
        own,
        vec![
            Field::InPort(port),
            Field::EthSrc(ROUTER_MAC, None),
            Field::EthType(ETH_IP),
            Field::Ipv4Src(n.gateway, None),
        ],
        vec![
            write_meta(&[tenant, net, kind]),
            Instruction::GotoTable(Table::Ip.id()),
        ],
    );
    // Its ARP for the asking workload, answered by ARP_RESP like a workload's.
    out.flow(
        Table::Vlan,
        PRIO_HIGH,
        own,
        vec![
            Field::InPort(port),
            Field::EthSrc(ROUTER_MAC, None),
            Field::EthType(ETH_ARP),
            Field::ArpSpa(n.gateway, None),
            Field::ArpSha(ROUTER_MAC, None),
        ],
        vec![
            write_meta(&[tenant, net, kind]),
            Instruction::GotoTable(Table::ArpResp.id()),
        ],
    );
}
