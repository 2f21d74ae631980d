//! The source guard's nftables form, as data: the tables installed in every tenant namespace
//! ([`install`]), the whole-set replacement a re-sync sends ([`replace`]), and the element
//! changes of one port ([`port_changes`]). Pure functions; golden files
//! `tests/golden/nft_guard*.txt`.
//!
//! Layout, the same in three families (a bridged workload port is seen by the `bridge` family's
//! prerouting hook, with or without `br_netfilter`; a routed one by `inet` prerouting for IP and
//! by the `arp` family's input hook for ARP):
//! ```text
//! table bridge|inet|arp contiv_guard {
//!   set allowed { type ifname . ether_addr . ipv4_addr; }  host veth . workload MAC . address
//!   counter dropped {}
//!   chain ports { type filter hook prerouting (arp: input) priority -300; policy accept;
//!     iifname != "ctve*" accept                      not a workload port: not guarded
//!     <IPv4 whose port . ether saddr . ip saddr is in @allowed> accept
//!     <ARP for IPv4 over Ethernet whose port . ether saddr . arp sender IP and
//!      port . arp sender MAC . arp sender IP are in @allowed> accept
//!     counter name "dropped" drop                   everything else from a workload port
//!   }
//! }
//! ```
//! Every workload port is guarded by its name's prefix, not by an element: a port whose elements
//! are missing is closed, never open. Elements of every port go to all three tables (a port of a
//! network changed between bridge and routing mode stays guarded; an element for a port a
//! family never sees costs nothing).

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use contiv_datapath::MacAddr;

use crate::names;
use crate::policy::nfnl::{ElemChange, ElemKey, Family, Op};

/// The tables' name (one per family).
pub const TABLE_NAME: &str = "contiv_guard";
/// The set of allowed (port, MAC, address) triples.
pub const SET: &str = "allowed";
/// The named counter of dropped frames (one per table).
pub const COUNTER: &str = "dropped";
/// The base chain.
pub const CHAIN: &str = "ports";
/// The families holding a guard table, in the order they are rendered.
pub const FAMILIES: [Family; 3] = [Family::Bridge, Family::Inet, Family::Arp];
/// `IFNAMSIZ`: an `ifname` key field is the name padded with NULs to this length.
const IFNAMSIZ: usize = 16;

/// What one workload port may send: frames from `mac` and, for IPv4 and ARP, from `ip`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Entry {
    /// The host end of the workload's veth ([`names::host_veth`]).
    pub port: String,
    pub mac: MacAddr,
    pub ip: Ipv4Addr,
}

impl ElemKey for Entry {
    /// `ifname . ether_addr . ipv4_addr`: 16 bytes of name, the MAC padded to 8, the address.
    fn key_bytes(&self) -> Vec<u8> {
        let mut k = vec![0u8; IFNAMSIZ + 8 + 4];
        let name = self.port.as_bytes();
        let n = name.len().min(IFNAMSIZ - 1);
        k[..n].copy_from_slice(&name[..n]);
        k[IFNAMSIZ..IFNAMSIZ + 6].copy_from_slice(&self.mac.octets());
        k[IFNAMSIZ + 8..].copy_from_slice(&self.ip.octets());
        k
    }
}

impl Entry {
    /// The element in nft syntax.
    fn nft(&self) -> String {
        format!("\"{}\" . {} . {}", self.port, self.mac, self.ip)
    }
}

/// The family's word in nft syntax.
pub fn family_word(f: Family) -> &'static str {
    match f {
        Family::Bridge => "bridge",
        Family::Inet => "inet",
        Family::Arp => "arp",
    }
}

/// `"<family> contiv_guard"`.
pub fn table(f: Family) -> String {
    format!("{} {TABLE_NAME}", family_word(f))
}

/// The rules of a family's chain, in order (after the "not a workload port" accept).
fn rules(f: Family) -> Vec<&'static str> {
    // ARP is judged only as IPv4 over Ethernet (hardware type 1, protocol IPv4, lengths 6/4):
    // the kernel's own parsing of anything else differs from the fields compared here.
    match f {
        Family::Bridge => vec![
            "ether type ip iifname . ether saddr . ip saddr @allowed accept",
            // Both the frame's and the ARP payload's sender MAC must be the endpoint's.
            concat!(
                "ether type arp arp htype 1 arp ptype ip arp hlen 6 arp plen 4 ",
                "iifname . ether saddr . arp saddr ip @allowed ",
                "iifname . arp saddr ether . arp saddr ip @allowed accept"
            ),
        ],
        Family::Inet => {
            vec!["meta nfproto ipv4 iifname . ether saddr . ip saddr @allowed accept"]
        }
        // The arp family cannot read the Ethernet header; the frame's source MAC of a routed
        // port's ARP is not checked (the IPv4 it announces still is, and its IP traffic is).
        Family::Arp => {
            vec![concat!(
                "arp htype 1 arp ptype ip arp hlen 6 arp plen 4 ",
                "iifname . arp saddr ether . arp saddr ip @allowed accept"
            )]
        }
    }
}

fn hook(f: Family) -> &'static str {
    match f {
        Family::Arp => "input",
        Family::Bridge | Family::Inet => "prerouting",
    }
}

/// The batch that makes the guard tables exist with their current rules, keeping the elements
/// (and counters) already there: `add` is idempotent for the table, set, counter and chain, the
/// chain's rules are flushed and written again in the same transaction. Pure.
pub fn install() -> String {
    let mut s = String::new();
    let glob = format!("{}*", names::HOST_VETH_PREFIX);
    for f in FAMILIES {
        let t = table(f);
        let _ = writeln!(s, "add table {t}");
        let _ = writeln!(
            s,
            "add set {t} {SET} {{ type ifname . ether_addr . ipv4_addr; }}"
        );
        let _ = writeln!(s, "add counter {t} {COUNTER}");
        let _ = writeln!(
            s,
            "add chain {t} {CHAIN} {{ type filter hook {} priority -300; policy accept; }}",
            hook(f)
        );
        let _ = writeln!(s, "flush chain {t} {CHAIN}");
        let _ = writeln!(s, "add rule {t} {CHAIN} iifname != \"{glob}\" accept");
        for r in rules(f) {
            let _ = writeln!(s, "add rule {t} {CHAIN} {r}");
        }
        let _ = writeln!(s, "add rule {t} {CHAIN} counter name \"{COUNTER}\" drop");
    }
    s
}

/// [`install`], then every table's set replaced by exactly `entries`, in one transaction: no
/// moment in which an attached port has no element. Pure; entries are sorted.
pub fn replace(entries: &[Entry]) -> String {
    let mut s = install();
    let mut sorted: Vec<&Entry> = entries.iter().collect();
    sorted.sort();
    sorted.dedup();
    for f in FAMILIES {
        let t = table(f);
        let _ = writeln!(s, "flush set {t} {SET}");
        if sorted.is_empty() {
            continue;
        }
        let elems: Vec<String> = sorted.iter().map(|e| e.nft()).collect();
        let _ = writeln!(s, "add element {t} {SET} {{ {} }}", elems.join(", "));
    }
    s
}

/// The element change of one port, per family (for `nfnl::send_tables`).
pub fn port_changes(op: Op, entry: &Entry) -> Vec<(Family, ElemChange<Entry>)> {
    FAMILIES
        .iter()
        .map(|&f| {
            let c = ElemChange {
                set: SET.to_string(),
                op,
                elems: vec![(entry.clone(), None)],
            };
            (f, c)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::golden;

    fn entry(n: u8) -> Entry {
        Entry {
            port: names::host_veth(&format!("ep{n}")),
            mac: MacAddr([0x02, 0x00, 0x0a, 0x01, 0x00, n]),
            ip: Ipv4Addr::new(10, 1, 0, n),
        }
    }

    #[test]
    fn install_renders_the_three_tables() {
        golden::check("nft_guard.txt", &install());
    }

    #[test]
    fn replace_renders_every_entry_once_in_every_table() {
        let text = replace(&[entry(3), entry(2), entry(3)]);
        golden::check("nft_guard_replace.txt", &text);
        assert_eq!(text.matches(&entry(3).nft()).count(), 3, "deduplicated");
        let empty = replace(&[]);
        assert_eq!(empty.matches("flush set").count(), 3);
        assert!(!empty.contains("add element"));
    }

    #[test]
    fn keys_are_name_padded_mac_padded_address() {
        let e = Entry {
            port: "ctve0123456789".into(),
            mac: MacAddr([0x02, 0x00, 0x0a, 0x01, 0x00, 0x02]),
            ip: Ipv4Addr::new(10, 1, 0, 2),
        };
        // As `nft --debug=netlink` shows the element of the same triple.
        let mut want = b"ctve0123456789\0\0".to_vec();
        want.extend_from_slice(&[2, 0, 10, 1, 0, 2, 0, 0, 10, 1, 0, 2]);
        assert_eq!(e.key_bytes(), want);
    }

    #[test]
    fn port_changes_touch_every_family() {
        let c = port_changes(Op::Delete, &entry(4));
        let fams: Vec<Family> = c.iter().map(|(f, _)| *f).collect();
        assert_eq!(fams, FAMILIES);
        assert!(c.iter().all(|(_, ch)| ch.set == SET && ch.elems.len() == 1));
    }
}
