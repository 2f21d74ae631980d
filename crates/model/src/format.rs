//! Contiv's schema formats (the `format` regexes of the object schema, compiled once) and small
//! parsing helpers netmaster shares: names, netprofile bandwidth, rule protocol.
//!
//! The patterns are Contiv's, byte for byte (RE2 and Rust's `regex` agree on all of them; both
//! anchor `$` at the very end of the text).

use std::collections::HashMap;
use std::sync::LazyLock;

use regex::Regex;

fn compile(pattern: &'static str) -> Regex {
    // Patterns are compile-time constants covered by tests; a failure is a programming error.
    Regex::new(pattern).unwrap_or_else(|e| panic!("bad built-in pattern {pattern:?}: {e}"))
}

macro_rules! patterns {
    ($($(#[$doc:meta])* $name:ident = $pat:expr;)+) => {
        /// The pattern sources, byte for byte: what [`FieldSpec::pattern`](crate::FieldSpec)
        /// carries, what validation compiles and what the OpenAPI document publishes.
        pub mod source {
            $( $(#[$doc])* pub const $name: &str = $pat; )+
        }
        $( $(#[$doc])* pub static $name: LazyLock<Regex> = LazyLock::new(|| compile(source::$name)); )+
        /// Every pattern of this module with its name (for tests and diagnostics).
        pub fn all_patterns() -> Vec<(&'static str, &'static Regex)> {
            vec![$((stringify!($name), &*$name)),+]
        }
        /// Every pattern keyed by its source.
        static BY_SOURCE: LazyLock<HashMap<&'static str, &'static Regex>> =
            LazyLock::new(|| HashMap::from([$((source::$name, &*$name)),+]));
    };
}

/// The compiled regex of one of this module's pattern sources (`None` for any other string).
pub fn compiled(source: &str) -> Option<&'static Regex> {
    BY_SOURCE.get(source).copied()
}

patterns! {
    /// Hostname-style object name (tenantName, networkName, groupName, ...): required.
    NAME = r"^(([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9\-]*[a-zA-Z0-9])\.)*([A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9\-]*[A-Za-z0-9])$";
    /// Name that may be empty (rule from/to EPG and network, tenant defaultNetwork). Like
    /// Contiv it also accepts a trailing dot (`"a."`).
    NAME_OR_EMPTY = r"^(([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9\-]*[a-zA-Z0-9])\.)*([A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9\-]*[A-Za-z0-9])?$";
    /// Network / EPG `cfgdTag`: a name or empty.
    CFGD_TAG = r"^((([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9\-]*[a-zA-Z0-9])\.)*([A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9\-]*[A-Za-z0-9]))?$";
    /// Dotted-quad IPv4 address or empty (network gateway, bgp neighbor, serviceLB ipAddress).
    IPV4_OR_EMPTY = r"^((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3})?$";
    /// Network `subnet`: `a.b.c.d[-e.f.g.h]/len`, len 1..31.
    NETWORK_SUBNET = r"^((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3})(\-((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}))?/(3[0-1]|2[0-9]|1[0-9]|[1-9])$";
    /// Network `ipv6Gateway` (or empty).
    IPV6_GATEWAY = r"^(((([0-9]|[a-f]|[A-F]){1,4})((\:([0-9]|[a-f]|[A-F]){1,4}){7}))|(((([0-9]|[a-f]|[A-F]){1,4}\:){0,6}|\:)((\:([0-9]|[a-f]|[A-F]){1,4}){0,6}|\:)))?$";
    /// Network `ipv6Subnet` (or empty).
    IPV6_SUBNET = r"^((((([0-9]|[a-f]|[A-F]){1,4})((\:([0-9]|[a-f]|[A-F]){1,4}){7}))|(((([0-9]|[a-f]|[A-F]){1,4}\:){0,6}|\:)((\:([0-9]|[a-f]|[A-F]){1,4}){0,6}|\:)))/(1[0-2][0-7]|[1-9][0-9]|[1-9]))?$";
    /// Network `encap`.
    ENCAP = r"^(vlan|vxlan)$";
    /// Network `nwType`.
    NW_TYPE = r"^(infra|data)$";
    /// EPG `ipPool`: empty or `a.b.c.d[-e.f.g.h]`.
    IP_POOL = r"^$|^((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3})(\-((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}))?$";
    /// Rule `action`.
    RULE_ACTION = r"^(allow|deny)$";
    /// Rule `direction`.
    RULE_DIRECTION = r"^(in|out)$";
    /// Rule `fromIpAddress` / `toIpAddress`: empty or `a.b.c.d[-e][/len]`.
    RULE_IP = r"^(((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3})(\-(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9]))?(/(3[0-1]|2[0-9]|1[0-9]|[1-9]))?)?$";
    /// Rule `protocol`: tcp, udp, icmp, empty or 1-3 digits (note: not `igmp`).
    RULE_PROTOCOL = r"^(tcp|udp|icmp||[0-9]{1,3}?)$";
    /// Netprofile `bandwidth` (e.g. `10 kbps`, `100mbps`, `1G`, `5 Mb`) or empty.
    BANDWIDTH = r"^([1-9][0-9]* (([kmgKMG{1}]bps)|[kmgKMG{1}]|(kb|Kb|Gb|gb|Mb|mb)))?$|^([1-9][0-9]*(((k|m|g|K|G|M)bps)|(k|m|g|K|M|G)|(kb|Kb|Gb|gb|Mb|mb)))?$";
    /// Global `name` (must be `global`).
    GLOBAL_NAME = r"^(global)$";
    /// Global `arpMode` (or empty).
    ARP_MODE = r"^(proxy|flood)?$";
    /// Global `fwdMode` (or empty).
    FWD_MODE = r"^(bridge|routing)?$";
    /// Global `networkInfraType` (or empty).
    NETWORK_INFRA_TYPE = r"^(aci|aci-opflex|default)?$";
    /// Global `pvtSubnet`: an IPv4 `/16`.
    PVT_SUBNET = r"^((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3})/16$";
    /// Global `vlans`: `a-b` (one range, 1-4 digits each).
    VLANS = r"^([0-9]{1,4}?-[0-9]{1,4}?)$";
    /// Global `vxlans`: `a-b` (one range, 1-8 digits each).
    VXLANS = r"^([0-9]{1,8}?-[0-9]{1,8}?)$";
    /// Bgp `routerip`: `a.b.c.d[-e]/len`.
    ROUTER_IP = r"^((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3})(\-(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9]))?/(3[0-1]|2[0-9]|1[0-9]|[1-9])$";
    /// aciGw `enforcePolicies` / `includeCommonTenant`: `yes` or `no` (empty is refused).
    YES_NO = r"^(yes|no){1}$";
    /// aciGw `name` (must be `aciGw`).
    ACI_GW_NAME = r"^(aciGw)$";
    /// aciGw `nodeBindings`.
    NODE_BINDINGS = r"^$|^(topology/pod-[0-9]{1,4}/node-[0-9]{1,4}){1}(,topology/pod-[0-9]{1,4}/node-[0-9]{1,4})*$";
    /// aciGw `pathBindings`.
    PATH_BINDINGS = r"^$|^(topology/pod-[0-9]{1,4}/paths-[0-9]{1,4}/pathep-\[eth[0-9]{1,2}/[0-9]{1,2}\]){1}(,topology/pod-[0-9]{1,4}/paths-[0-9]{1,4}/pathep-\[eth[0-9]{1,2}/[0-9]{1,2}\])*$";
}

/// Whether `s` is a valid hostname-style object name (the schema's name regex; no length check,
/// Contiv checks length separately, 64 bytes for most names).
pub fn is_valid_name(s: &str) -> bool {
    NAME.is_match(s)
}

/// Netprofile bandwidth string to the kbps rate netplugin programs, computed like Contiv's
/// `netutils.ConvertBandwidth`: first run of digits times 1024 (k), 1024² (m) or 1024³ (g)
/// — the unit is found by the first of g/G, m/M, k/K present anywhere — then divided by 1000
/// (integer division). No unit gives 0, like Contiv. `None` when there is no number or it
/// overflows.
///
/// `"10 kbps"` -> 10, `"100mbps"` -> 104857, `"1G"` -> 1073741.
pub fn bandwidth_to_kbps(bandwidth: &str) -> Option<i64> {
    let start = bandwidth.find(|c: char| c.is_ascii_digit())?;
    let digits: &str = &bandwidth[start..];
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    let number: i64 = digits[..end].parse().ok()?;
    let has = |set: &[char]| bandwidth.contains(set);
    let rate: i64 = if has(&['g', 'G', '|']) {
        1024 * 1024 * 1024
    } else if has(&['m', 'M']) {
        1024 * 1024
    } else if has(&['k', 'K']) {
        1024
    } else {
        0
    };
    Some(number.checked_mul(rate)? / 1000)
}

/// Rule protocol string to the IP protocol number, as Contiv's policy code maps it:
/// `tcp` 6, `udp` 17, `icmp` 1, `igmp` 2, `""` 0 (any), a decimal number below 256 as is.
/// `None` for anything else (Contiv silently uses 0 then).
pub fn protocol_number(protocol: &str) -> Option<u8> {
    match protocol {
        "tcp" => Some(6),
        "udp" => Some(17),
        "icmp" => Some(1),
        "igmp" => Some(2),
        "" => Some(0),
        s if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => s.parse::<u8>().ok(),
        _ => None,
    }
}

/// The IP protocol name of a number where Contiv has one (inverse of [`protocol_number`]).
pub fn protocol_name(number: u8) -> Option<&'static str> {
    match number {
        6 => Some("tcp"),
        17 => Some("udp"),
        1 => Some("icmp"),
        2 => Some("igmp"),
        _ => None,
    }
}
