//! Resource allocators: VLAN/VXLAN/id ranges, IPv4/IPv6 address pools, range formatting, MAC derivation (no I/O)
//!
//! Everything here is pure, synchronous, in-memory logic that netmaster calls on every
//! request; nothing touches the store. netmaster persists each allocation as its own key and
//! rebuilds these structures at start by replaying the keys (`reserve`, `allocate_specific`,
//! `reserve_pool`).
//!
//! - [`IdPool`]: VLANs (`"1-4094"`), VXLAN VNIs, EPG ids; `used_ranges()` prints Contiv's
//!   `vlansInUse` format `"1-5, 7"`. [`VxlanPool`] pairs a VNI with a cluster-wide local VLAN.
//! - [`Ipv4Pool`]: one network's addresses (plain or range subnet, gateway, EPG ip-pools);
//!   `allocated_ranges()` / `available_ranges()` print Contiv's inspect strings
//!   (`"10.1.1.2-10.1.1.254"`, several runs joined by `", "`).
//! - [`Ipv6Pool`]: sparse IPv6 pool.
//! - [`parse_subnet`], [`Ipv4Range`], [`subnets_overlap`], [`mac_from_ipv4`].
//!
//! Error texts follow the original Contiv where clients may match on them; see [`ResourceError`].

mod bitmap;
mod error;
mod idpool;
mod ipv4;
mod ipv6;
mod subnet;

use std::fmt::{Display, Write};
use std::net::Ipv4Addr;

pub use error::ResourceError;
pub use idpool::{IdPool, VxlanPool};
pub use ipnet::{Ipv4Net, Ipv6Net};
pub use ipv4::Ipv4Pool;
pub use ipv6::Ipv6Pool;
pub use subnet::{
    parse_subnet, parse_subnet_v6, subnets_overlap, Ipv4Range, MAX_PREFIX_V4, MIN_PREFIX_V4,
};

/// Contiv's endpoint MAC for an IPv4 address: `02:02:` followed by the four address bytes
/// in lower-case hex, e.g. `10.1.1.2` gives `"02:02:0a:01:01:02"`.
pub fn mac_from_ipv4(ip: Ipv4Addr) -> String {
    let [a, b, c, d] = ip.octets();
    format!("02:02:{a:02x}:{b:02x}:{c:02x}:{d:02x}")
}

/// Builds Contiv's range lists: `"a-b"` per run, a lone value for a one-element run,
/// runs joined by `", "`, empty string for none.
#[derive(Debug, Default)]
pub(crate) struct RangeWriter {
    out: String,
}

impl RangeWriter {
    pub(crate) fn push<T: Display + PartialEq>(&mut self, start: T, end: T) {
        if !self.out.is_empty() {
            self.out.push_str(", ");
        }
        // Writing to a String cannot fail.
        let _ = if start == end {
            write!(self.out, "{start}")
        } else {
            write!(self.out, "{start}-{end}")
        };
    }

    pub(crate) fn finish(self) -> String {
        self.out
    }
}
