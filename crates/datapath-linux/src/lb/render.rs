//! Service balancing of one tenant as nftables text (pure): table `ip contiv_lb` in the tenant
//! namespace, replaced whole in one transaction per change (NAT bindings live in conntrack, so
//! established connections keep their provider across any change).
//!
//! - `svc_tcp` / `svc_udp`: verdict maps `VIP . port → jump s_<id>`, consulted at prerouting
//!   (priority dstnat, before the forward hook: policy sees the real provider).
//! - `s_<id>` per service port: `numgen random mod N` picks a provider chain per new connection.
//! - `p_<id>_<i>`: marks a client that is itself the provider (hairpin: its reply would come from
//!   its own address) and DNATs to the provider and its target port.
//! - postrouting masquerades marked (hairpin) connections only: everyone else keeps its address,
//!   so providers see the client and ingress policy on their host applies.
//!
//! A VIP without providers has no map element: its packets reach the tenant namespace itself,
//! which owns the VIP and answers TCP with a reset and UDP with port unreachable.

use std::fmt::Write;

use contiv_datapath::{ServiceSpec, TenantServices, Transport};

use crate::names::fnv64;

pub const TABLE: &str = "contiv_lb";
/// Mark of hairpin connections (masqueraded at postrouting).
pub const HAIRPIN_MARK: u32 = 0x0400_0000;

/// Stable short id of a service port (chain names must be identifiers).
fn chain_id(svc: &ServiceSpec, transport: Transport, port: u16) -> String {
    format!(
        "{:012x}",
        fnv64(&format!("{}/{}/{port}", svc.name, transport.as_str())) & 0xffff_ffff_ffff
    )
}

/// The whole table (without the replace preamble: see [`replace_batch`]).
pub fn table(desired: &TenantServices) -> String {
    let mut maps: [(Transport, Vec<String>); 2] =
        [(Transport::Tcp, vec![]), (Transport::Udp, vec![])];
    let mut chains = String::new();
    let mut services: Vec<&ServiceSpec> = desired.services.iter().collect();
    services.sort();
    for svc in services {
        if svc.providers.is_empty() {
            continue;
        }
        let mut ports = svc.ports.clone();
        ports.sort();
        ports.dedup_by_key(|p| (p.transport, p.port));
        for p in ports {
            let id = chain_id(svc, p.transport, p.port);
            let slot = usize::from(p.transport == Transport::Udp);
            maps[slot]
                .1
                .push(format!("{} . {} : jump s_{id}", svc.vip, p.port));
            let n = svc.providers.len();
            let picks: Vec<String> = (0..n).map(|i| format!("{i} : jump p_{id}_{i}")).collect();
            let _ = writeln!(
                chains,
                "  chain s_{id} {{\n    numgen random mod {n} vmap {{ {} }}\n  }}",
                picks.join(", ")
            );
            for (i, ip) in svc.providers.iter().enumerate() {
                let _ = writeln!(
                    chains,
                    "  chain p_{id}_{i} {{\n    ip saddr {ip} meta mark set meta mark | {HAIRPIN_MARK:#x}\n    meta l4proto {} dnat ip to {ip}:{}\n  }}",
                    p.transport.as_str(),
                    p.target
                );
            }
        }
    }
    let mut out = format!("table ip {TABLE} {{\n");
    for (transport, elements) in &maps {
        let t = transport.as_str();
        let _ = write!(
            out,
            "  map svc_{t} {{\n    type ipv4_addr . inet_service : verdict\n"
        );
        if !elements.is_empty() {
            let _ = writeln!(out, "    elements = {{ {} }}", elements.join(", "));
        }
        out.push_str("  }\n");
    }
    out.push_str(
        "  chain prerouting {\n    type nat hook prerouting priority dstnat; policy accept;\n    ip daddr . tcp dport vmap @svc_tcp\n    ip daddr . udp dport vmap @svc_udp\n  }\n",
    );
    let _ = write!(
        out,
        "  chain postrouting {{\n    type nat hook postrouting priority srcnat; policy accept;\n    meta mark & {HAIRPIN_MARK:#x} == {HAIRPIN_MARK:#x} masquerade\n  }}\n"
    );
    out.push_str(&chains);
    out.push_str("}\n");
    out
}

/// One transaction replacing the table (created first so the delete never fails).
pub fn replace_batch(desired: &TenantServices) -> String {
    format!(
        "table ip {TABLE} {{}}\ndelete table ip {TABLE}\n{}",
        table(desired)
    )
}

/// One transaction removing the table if present.
pub fn remove_batch() -> String {
    format!("table ip {TABLE} {{}}\ndelete table ip {TABLE}\n")
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use contiv_datapath::ServicePort;

    use super::*;

    fn svc(name: &str, vip: [u8; 4], ports: &[&str], providers: &[[u8; 4]]) -> ServiceSpec {
        ServiceSpec {
            name: name.into(),
            vip: Ipv4Addr::from(vip),
            ports: ports.iter().filter_map(|p| ServicePort::parse(p)).collect(),
            providers: providers.iter().map(|p| Ipv4Addr::from(*p)).collect(),
        }
    }

    #[test]
    fn golden_table() {
        let desired = TenantServices {
            tenant: "t".into(),
            services: vec![
                svc(
                    "t:web",
                    [10, 1, 0, 100],
                    &["80:8080:TCP"],
                    &[[10, 1, 0, 2], [10, 1, 0, 3]],
                ),
                svc("t:dns", [10, 1, 0, 101], &["53:5353:UDP"], &[[10, 1, 0, 4]]),
                svc("t:empty", [10, 1, 0, 102], &["80:80:TCP"], &[]),
            ],
        };
        crate::golden::check("nft_lb.txt", &replace_batch(&desired));
    }

    #[test]
    fn no_services_is_an_empty_table() {
        let t = table(&TenantServices::default());
        assert!(!t.contains("jump s_"), "{t}");
        assert!(t.contains("map svc_tcp"));
    }
}
