//! Subnet text: plain CIDR and Contiv's range subnets, endpoint-group ip-pools, overlap.
//!
//! Contiv (utils/netutils/netutils.go) accepts `a.b.c.d/len` and `a.b.c.d-e.f.g.h/len`; in
//! the second form only `a.b.c.d..=e.f.g.h` is handed out. The network address and the
//! broadcast address are never handed out.
//!
//! Prefix lengths: Contiv's schema allows 1..=31 but its netmaster refused lengths below 8
//! ("subnet length %d not supported"); we keep 8..=31 so that a pool's bitset stays at most
//! 2 MiB. A /31 follows RFC 3021 (point-to-point): both of its addresses are usable, where
//! Contiv reserved both and so could never allocate from it. /32 holds no usable address
//! and is refused.

use std::net::Ipv4Addr;

use ipnet::{Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};

use crate::ResourceError;

/// Shortest IPv4 prefix a pool accepts.
pub const MIN_PREFIX_V4: u8 = 8;
/// Longest IPv4 prefix a pool accepts.
pub const MAX_PREFIX_V4: u8 = 31;

/// An inclusive IPv4 address range, `start <= end` (an EPG `ipPool`, a network's
/// allocatable range). Displays as `"a.b.c.d-e.f.g.h"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Ipv4Range {
    pub start: Ipv4Addr,
    pub end: Ipv4Addr,
}

impl Ipv4Range {
    /// Range from two addresses (swapped if reversed).
    pub fn new(a: Ipv4Addr, b: Ipv4Addr) -> Ipv4Range {
        Ipv4Range {
            start: a.min(b),
            end: a.max(b),
        }
    }

    /// Parses an EPG ip-pool `"10.1.1.10-10.1.1.20"`; a single address means a one-address
    /// pool (Contiv's schema allowed it, its netmaster then crashed). Contiv's messages:
    /// `invalid ip-pool ...`, `ipv6 address pool is not supported for Endpoint Groups`.
    pub fn parse(spec: &str) -> Result<Ipv4Range, ResourceError> {
        let s = spec.trim();
        if s.contains(':') {
            return Err(ResourceError::Ipv6PoolNotSupported {
                pool: spec.to_string(),
            });
        }
        let bad = || ResourceError::InvalidIpPool {
            pool: spec.to_string(),
        };
        let (a, b) = match s.split_once('-') {
            Some((a, b)) => (
                a.trim().parse().map_err(|_| bad())?,
                b.trim().parse().map_err(|_| bad())?,
            ),
            None => {
                let a: Ipv4Addr = s.parse().map_err(|_| bad())?;
                (a, a)
            }
        };
        if a > b {
            return Err(bad());
        }
        Ok(Ipv4Range { start: a, end: b })
    }

    /// Whether `ip` lies in the range.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        self.start <= ip && ip <= self.end
    }

    /// Number of addresses (up to 2^32, hence u64); 0 for a reversed range (which only
    /// deserialization or a struct literal can build).
    pub fn len(&self) -> u64 {
        (u64::from(u32::from(self.end)) + 1).saturating_sub(u64::from(u32::from(self.start)))
    }

    /// True only for a reversed range.
    pub fn is_empty(&self) -> bool {
        self.start > self.end
    }

    /// Whether the two ranges share an address.
    pub fn overlaps(&self, other: &Ipv4Range) -> bool {
        self.start <= other.end && other.start <= self.end
    }

    /// Contiv's endpoint-group check (master/endpointGroup.go): the pool must not span
    /// beyond one `/len` block (`invalid ip-pool 10.1.1.250-10.1.2.5`) and must lie inside
    /// `subnet` (`bad ip-pool 10.2.2.1-10.2.2.5, EPG ip-pool must be a subset of network
    /// 10.1.1.0/24`). Whether the addresses are free is checked by
    /// [`Ipv4Pool::check_pool`](crate::Ipv4Pool::check_pool).
    pub fn check_subset(&self, subnet: Ipv4Net) -> Result<(), ResourceError> {
        if self.is_empty() {
            return Err(ResourceError::InvalidIpPool {
                pool: self.to_string(),
            });
        }
        let block = Ipv4Net::new(self.start, subnet.prefix_len()).map(|n| n.trunc());
        if !block.is_ok_and(|b| b.contains(&self.end)) {
            return Err(ResourceError::InvalidIpPool {
                pool: self.to_string(),
            });
        }
        if !subnet.contains(&self.start) || !subnet.contains(&self.end) {
            return Err(ResourceError::IpPoolNotSubset {
                pool: self.to_string(),
                subnet: subnet.to_string(),
            });
        }
        Ok(())
    }
}

impl std::fmt::Display for Ipv4Range {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.start, self.end)
    }
}

impl std::str::FromStr for Ipv4Range {
    type Err = ResourceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ipv4Range::parse(s)
    }
}

/// Syntax-level split of `addr[-addr]/len`: (subnet truncated to its network address, the
/// written address span). No length policy; used by [`parse_subnet`] and the overlap check.
fn parse_v4_span(spec: &str) -> Result<(Ipv4Net, Ipv4Range), ResourceError> {
    let bad = || ResourceError::InvalidSubnet {
        spec: spec.to_string(),
    };
    let (addrs, len) = spec.trim().split_once('/').ok_or_else(bad)?;
    let len: u8 = len.trim().parse().map_err(|_| bad())?;
    let (a, b) = match addrs.split_once('-') {
        Some((a, b)) => (
            a.trim().parse::<Ipv4Addr>(),
            Some(b.trim().parse::<Ipv4Addr>()),
        ),
        None => (addrs.trim().parse::<Ipv4Addr>(), None),
    };
    let a = a.map_err(|_| bad())?;
    let net = Ipv4Net::new(a, len).map_err(|_| bad())?.trunc();
    let span = match b {
        None => Ipv4Range {
            start: net.network(),
            end: net.broadcast(),
        },
        Some(b) => {
            let b = b.map_err(|_| bad())?;
            if a > b || !net.contains(&b) {
                return Err(ResourceError::InvalidNetworkRange {
                    spec: spec.to_string(),
                });
            }
            Ipv4Range { start: a, end: b }
        }
    };
    Ok((net, span))
}

/// Parses a network's subnet (`"10.1.1.0/24"` or range subnet `"10.1.1.10-10.1.1.100/24"`)
/// into the subnet (host bits cleared) and its allocatable range: the written range without
/// the network and broadcast addresses (a /31 keeps both). Lengths 8..=31.
pub fn parse_subnet(spec: &str) -> Result<(Ipv4Net, Ipv4Range), ResourceError> {
    let (net, span) = parse_v4_span(spec)?;
    let len = net.prefix_len();
    if !(MIN_PREFIX_V4..=MAX_PREFIX_V4).contains(&len) {
        return Err(ResourceError::SubnetLengthNotSupported { len });
    }
    let (lo, hi) = if len == 31 {
        (u32::from(net.network()), u32::from(net.broadcast()))
    } else {
        (u32::from(net.network()) + 1, u32::from(net.broadcast()) - 1)
    };
    let start = u32::from(span.start).max(lo);
    let end = u32::from(span.end).min(hi);
    if start > end {
        return Err(ResourceError::InvalidNetworkRange {
            spec: spec.to_string(),
        });
    }
    Ok((
        net,
        Ipv4Range {
            start: start.into(),
            end: end.into(),
        },
    ))
}

/// Parses an IPv6 prefix `"2001:db8::/64"` (host bits cleared). Lengths 16..=127, as
/// Contiv's IPv6 helpers (netutils.GetSubnetIPv6) refused below 16.
pub fn parse_subnet_v6(spec: &str) -> Result<Ipv6Net, ResourceError> {
    let net: Ipv6Net = spec
        .trim()
        .parse()
        .map_err(|_| ResourceError::InvalidSubnet {
            spec: spec.to_string(),
        })?;
    if !(16..=127).contains(&net.prefix_len()) {
        return Err(ResourceError::SubnetLengthNotSupported {
            len: net.prefix_len(),
        });
    }
    Ok(net.trunc())
}

/// Whether two network subnets overlap, as Contiv's network-create check (netutils
/// `IsOverlappingSubnet` / `IsOverlappingSubnetv6`; netmaster then says `network n1
/// conflicts with subnet 10.1.1.0/24`). Range subnets compare by their written address
/// range, so `10.1.1.1-10.1.1.100/24` and `10.1.1.101-10.1.1.200/24` do not overlap.
/// Plain subnets compare as whole subnets (Contiv compared from the written address, so
/// `10.1.1.5/24` missed `10.1.1.0/30`: fixed). IPv4 against IPv6 never overlaps.
pub fn subnets_overlap(a: &str, b: &str) -> Result<bool, ResourceError> {
    match (a.contains(':'), b.contains(':')) {
        (false, false) => {
            let (_, ra) = parse_v4_span(a)?;
            let (_, rb) = parse_v4_span(b)?;
            Ok(ra.overlaps(&rb))
        }
        (true, true) => {
            let na = parse_v6_any(a)?;
            let nb = parse_v6_any(b)?;
            Ok(na.contains(&nb) || nb.contains(&na))
        }
        (true, false) => parse_v6_any(a).and(parse_v4_span(b)).map(|_| false),
        (false, true) => parse_v4_span(a).and(parse_v6_any(b)).map(|_| false),
    }
}

fn parse_v6_any(spec: &str) -> Result<Ipv6Net, ResourceError> {
    spec.trim()
        .parse::<Ipv6Net>()
        .map(|n| n.trunc())
        .map_err(|_| ResourceError::InvalidSubnet {
            spec: spec.to_string(),
        })
}
