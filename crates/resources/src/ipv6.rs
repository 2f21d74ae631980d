//! IPv6 address pool of one network: sparse, since a /64 cannot be a bitset.
//!
//! Allocated host offsets live in a `BTreeSet<u128>`; offset 0 (the subnet-router anycast
//! address) and the gateway are reserved. `allocate_lowest` hands out the lowest free
//! offset with a lowest-free hint, so sequential allocation is O(log n) amortized. Contiv
//! instead continued after the last address it handed out (netutils.GetNextIPv6HostID);
//! lowest-free keeps addresses dense and predictable and matches the IPv4 pool.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv6Addr};

use ipnet::Ipv6Net;

use crate::subnet::parse_subnet_v6;
use crate::ResourceError;

/// Address pool of one IPv6 network (`ipv6Subnet`, `ipv6Gateway`), prefix 16..=127.
#[derive(Debug, Clone)]
pub struct Ipv6Pool {
    net: Ipv6Net,
    base: u128,
    /// Largest host offset.
    max: u128,
    gateway: Option<Ipv6Addr>,
    /// Allocated offsets, not including the reserved ones.
    used: BTreeSet<u128>,
    /// Every offset in `1..hint` is allocated or reserved.
    hint: u128,
}

impl Ipv6Pool {
    /// Pool for `subnet` (`"2001:db8::/64"`). The gateway must be inside the subnet and not
    /// the subnet-router anycast address (offset 0).
    pub fn new(subnet: &str, gateway: Option<Ipv6Addr>) -> Result<Ipv6Pool, ResourceError> {
        let net = parse_subnet_v6(subnet)?;
        let bits = 128 - u32::from(net.prefix_len());
        let max = if bits == 128 {
            u128::MAX
        } else {
            (1u128 << bits) - 1
        };
        let mut pool = Ipv6Pool {
            net,
            base: u128::from(net.network()),
            max,
            gateway,
            used: BTreeSet::new(),
            hint: 1,
        };
        if let Some(gw) = gateway {
            if !net.contains(&gw) {
                return Err(ResourceError::GatewayOutsideSubnet {
                    gateway: gw.into(),
                    subnet: net.to_string(),
                });
            }
            if gw == net.network() {
                return Err(ResourceError::GatewayReserved {
                    gateway: gw.into(),
                    subnet: net.to_string(),
                });
            }
            pool.advance_hint();
        }
        Ok(pool)
    }

    /// The subnet (host bits cleared).
    pub fn prefix(&self) -> Ipv6Net {
        self.net
    }

    /// The prefix length.
    pub fn prefix_len(&self) -> u8 {
        self.net.prefix_len()
    }

    /// The gateway given at creation.
    pub fn gateway(&self) -> Option<Ipv6Addr> {
        self.gateway
    }

    /// Whether `ip` lies in the subnet.
    pub fn contains(&self, ip: Ipv6Addr) -> bool {
        self.net.contains(&ip)
    }

    fn offset(&self, ip: Ipv6Addr) -> Option<u128> {
        self.net.contains(&ip).then(|| u128::from(ip) - self.base)
    }

    fn gw_offset(&self) -> Option<u128> {
        self.gateway.and_then(|g| self.offset(g))
    }

    fn taken(&self, off: u128) -> bool {
        off == 0 || Some(off) == self.gw_offset() || self.used.contains(&off)
    }

    /// Moves the hint past allocated/reserved offsets: walks the set from the hint while it
    /// is contiguous, so the cost is the length of the run it skips (once per address).
    fn advance_hint(&mut self) {
        let mut h = self.hint;
        loop {
            if Some(h) == self.gw_offset() || self.used.contains(&h) {
                match h.checked_add(1) {
                    Some(n) => h = n,
                    None => break,
                }
            } else {
                break;
            }
        }
        self.hint = h;
    }

    /// Allocates the lowest free address (`auto allocation failed - address exhaustion in
    /// subnet 2001:db8::/126` when none is left).
    pub fn allocate_lowest(&mut self) -> Result<Ipv6Addr, ResourceError> {
        let ip = self.peek_lowest()?;
        let off = self.hint;
        self.used.insert(off);
        self.hint = off.saturating_add(1);
        self.advance_hint();
        Ok(ip)
    }

    /// The address [`allocate_lowest`](Self::allocate_lowest) would hand out, without taking it.
    pub fn peek_lowest(&self) -> Result<Ipv6Addr, ResourceError> {
        if self.hint > self.max {
            return Err(ResourceError::AddressExhausted {
                subnet: self.net.to_string(),
            });
        }
        Ok(Ipv6Addr::from(self.base + self.hint))
    }

    /// Allocates a requested address; refused when outside the subnet, reserved or taken.
    pub fn allocate_specific(&mut self, ip: Ipv6Addr) -> Result<(), ResourceError> {
        let off = self.free_offset(ip)?;
        self.used.insert(off);
        if off == self.hint {
            self.hint = off.saturating_add(1);
            self.advance_hint();
        }
        Ok(())
    }

    /// Whether [`allocate_specific`](Self::allocate_specific) would accept `ip`; same errors.
    pub fn check_available(&self, ip: Ipv6Addr) -> Result<(), ResourceError> {
        self.free_offset(ip).map(|_| ())
    }

    fn free_offset(&self, ip: Ipv6Addr) -> Result<u128, ResourceError> {
        let off = self
            .offset(ip)
            .ok_or_else(|| ResourceError::AddressOutsideSubnet {
                ip: ip.into(),
                subnet: self.net.to_string(),
            })?;
        if off == 0 || Some(off) == self.gw_offset() {
            return Err(ResourceError::AddressReserved {
                ip: ip.into(),
                subnet: self.net.to_string(),
            });
        }
        if self.used.contains(&off) {
            return Err(ResourceError::AddressNotAvailable { ip: IpAddr::V6(ip) });
        }
        Ok(off)
    }

    /// Frees an allocated address; false if it was not allocated.
    pub fn release(&mut self, ip: Ipv6Addr) -> bool {
        match self.offset(ip) {
            Some(off) if self.used.remove(&off) => {
                self.hint = self.hint.min(off);
                true
            }
            _ => false,
        }
    }

    /// Whether `ip` is allocated to an endpoint (reserved addresses are not).
    pub fn is_allocated(&self, ip: Ipv6Addr) -> bool {
        self.offset(ip).is_some_and(|o| self.used.contains(&o))
    }

    /// Whether `ip` cannot be allocated (allocated, reserved or outside the subnet).
    pub fn is_taken(&self, ip: Ipv6Addr) -> bool {
        self.offset(ip).is_none_or(|o| self.taken(o))
    }

    /// Number of endpoint allocations.
    pub fn allocated_count(&self) -> u32 {
        u32::try_from(self.used.len()).unwrap_or(u32::MAX)
    }
}
