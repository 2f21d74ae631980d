//! Deterministic names and markers: every kernel object the driver creates is named from an id
//! (so a restarted agent finds it) and links carry an alias saying which network/endpoint they
//! belong to (so `observe` can map them back to ids).

use std::net::Ipv4Addr;

use contiv_datapath::{FwdMode, MacAddr};

/// Contiv's gateway MAC, the same on every host (anycast gateway).
pub const GATEWAY_MAC: MacAddr = MacAddr([0x00, 0x00, 0x11, 0x11, 0x11, 0x11]);
/// Standard VXLAN UDP port.
pub const VXLAN_PORT: u16 = 4789;

const NET_ALIAS: &str = "contiv-net";
const EP_ALIAS: &str = "contiv-ep";

/// FNV-1a 64: stable across Rust releases (unlike `DefaultHasher`), good enough for names.
pub fn fnv64(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The tenant's router namespace: `<prefix>-t-<8 hex of the tenant name>`.
pub fn tenant_ns(prefix: &str, tenant: &str) -> String {
    format!("{prefix}-t-{:08x}", fnv64(tenant) as u32)
}

/// A network's bridge in the tenant namespace (≤ 13 chars for a 24-bit VNI).
pub fn bridge(vni: u32) -> String {
    format!("ctvbr{vni}")
}

/// A network's VXLAN device (created in the host namespace, then moved to the tenant's).
pub fn vxlan(vni: u32) -> String {
    format!("ctvvx{vni}")
}

fn ep_hash(ep_id: &str) -> u64 {
    fnv64(ep_id) & 0xff_ffff_ffff
}

/// The prefix of every host veth name (and of no other device the driver makes): the source
/// guard guards every port whose name starts with it.
pub const HOST_VETH_PREFIX: &str = "ctve";

/// Host end of an endpoint's veth, in the tenant namespace (14 chars).
pub fn host_veth(ep_id: &str) -> String {
    format!("{HOST_VETH_PREFIX}{:010x}", ep_hash(ep_id))
}

/// MAC of a host's VXLAN devices in routing mode, derived from its VTEP so peers can compute it.
pub fn vtep_mac(vtep: Ipv4Addr) -> MacAddr {
    let o = vtep.octets();
    MacAddr([0x02, 0xcc, o[0], o[1], o[2], o[3]])
}

fn mode_word(m: FwdMode) -> &'static str {
    match m {
        FwdMode::Bridge => "bridge",
        FwdMode::Routing => "routing",
    }
}

/// Alias of a network's VXLAN device.
pub fn net_alias(mode: FwdMode, network_id: &str) -> String {
    format!("{NET_ALIAS} {} {network_id}", mode_word(mode))
}

/// Parses [`net_alias`] back to (mode, network id).
pub fn parse_net_alias(alias: &str) -> Option<(FwdMode, String)> {
    let mut it = alias.splitn(3, ' ');
    if it.next()? != NET_ALIAS {
        return None;
    }
    let mode = match it.next()? {
        "bridge" => FwdMode::Bridge,
        "routing" => FwdMode::Routing,
        _ => return None,
    };
    Some((mode, it.next()?.to_string()))
}

/// Alias of an endpoint's host veth.
pub fn ep_alias(network_id: &str, ep_id: &str) -> String {
    format!("{EP_ALIAS} {network_id} {ep_id}")
}

/// Parses [`ep_alias`] back to (network id, endpoint id).
pub fn parse_ep_alias(alias: &str) -> Option<(String, String)> {
    let mut it = alias.splitn(3, ' ');
    if it.next()? != EP_ALIAS {
        return None;
    }
    Some((it.next()?.to_string(), it.next()?.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_ifnamsiz_and_are_stable() {
        assert!(bridge(16_777_215).len() <= 15);
        assert!(vxlan(16_777_215).len() <= 15);
        assert_eq!(host_veth("abc").len(), 14);
        assert_eq!(host_veth("abc"), host_veth("abc"));
        assert_ne!(host_veth("abc"), host_veth("abd"));
        assert_eq!(fnv64(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(tenant_ns("ctv", "default"), tenant_ns("ctv", "default"));
    }

    #[test]
    fn aliases_roundtrip() {
        let a = net_alias(FwdMode::Routing, "t1:n1");
        assert_eq!(
            parse_net_alias(&a),
            Some((FwdMode::Routing, "t1:n1".into()))
        );
        assert_eq!(parse_net_alias("something else"), None);
        let e = ep_alias("t1:n1", "ep 1");
        assert_eq!(parse_ep_alias(&e), Some(("t1:n1".into(), "ep 1".into())));
    }
}
