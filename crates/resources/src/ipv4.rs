//! IPv4 address pool of one network.
//!
//! One [`Bitmap`] bit per address of the allocatable range (not of the whole subnet), set =
//! allocated; the gateway, when inside the range, is a set bit that is not counted as an
//! allocation. A lowest-free hint makes sequential allocation O(1) amortized; searches and
//! range strings skip 4,096 addresses per summary word, so a /8 costs at most a few
//! thousand word reads per call.
//!
//! Endpoint-group ip-pools: Contiv marked an EPG's whole pool as used in the network's
//! bitset and allocated EPG members from a separate bitset. Here the pool is registered with
//! [`Ipv4Pool::reserve_pool`]: un-scoped allocation skips it, members are allocated with
//! `allocate_lowest(Some(&pool))`, the network's `allocated_ranges` shows the whole pool
//! (as Contiv's inspect did) and `allocated_ranges_in(&pool)` gives the EPG's own view.

use std::net::{IpAddr, Ipv4Addr};

use ipnet::Ipv4Net;

use crate::bitmap::Bitmap;
use crate::subnet::{parse_subnet, Ipv4Range};
use crate::{RangeWriter, ResourceError};

/// Address pool of one IPv4 network (plain or range subnet, optional gateway).
#[derive(Debug, Clone)]
pub struct Ipv4Pool {
    net: Ipv4Net,
    range: Ipv4Range,
    base: u32,
    bits: Bitmap,
    gateway: Option<Ipv4Addr>,
    gw_idx: Option<u32>,
    /// Reserved endpoint-group pools, sorted, disjoint, inside `range`.
    pools: Vec<Ipv4Range>,
    /// Every index below `hint` is set.
    hint: u32,
}

impl Ipv4Pool {
    /// Pool for `subnet_spec` (`"10.1.1.0/24"`, `"10.1.1.10-10.1.1.100/24"`, lengths 8..=31).
    /// The network and broadcast addresses and the gateway are never handed out; the gateway
    /// must lie in the subnet (it may lie outside a range subnet's range) and may not be the
    /// network or broadcast address.
    pub fn new(subnet_spec: &str, gateway: Option<Ipv4Addr>) -> Result<Ipv4Pool, ResourceError> {
        let (net, range) = parse_subnet(subnet_spec)?;
        let base = u32::from(range.start);
        let len = u32::from(range.end) - base + 1; // at most 2^24 for a /8
        let mut pool = Ipv4Pool {
            net,
            range,
            base,
            bits: Bitmap::new(len),
            gateway,
            gw_idx: None,
            pools: Vec::new(),
            hint: 0,
        };
        if let Some(gw) = gateway {
            if !net.contains(&gw) {
                return Err(ResourceError::GatewayOutsideSubnet {
                    gateway: gw.into(),
                    subnet: net.to_string(),
                });
            }
            if net.prefix_len() < 31 && (gw == net.network() || gw == net.broadcast()) {
                return Err(ResourceError::GatewayReserved {
                    gateway: gw.into(),
                    subnet: net.to_string(),
                });
            }
            if let Some(i) = pool.idx(gw) {
                pool.bits.set(i);
                pool.gw_idx = Some(i);
                pool.advance_hint();
            }
        }
        Ok(pool)
    }

    /// The subnet (host bits cleared), e.g. `10.1.1.0/24`.
    pub fn prefix(&self) -> Ipv4Net {
        self.net
    }

    /// The prefix length.
    pub fn prefix_len(&self) -> u8 {
        self.net.prefix_len()
    }

    /// The allocatable range (`10.1.1.1-10.1.1.254` for a plain /24).
    pub fn range(&self) -> Ipv4Range {
        self.range
    }

    /// The gateway given at creation.
    pub fn gateway(&self) -> Option<Ipv4Addr> {
        self.gateway
    }

    /// Whether `ip` lies in the subnet.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        self.net.contains(&ip)
    }

    fn idx(&self, ip: Ipv4Addr) -> Option<u32> {
        self.range.contains(ip).then(|| u32::from(ip) - self.base)
    }

    fn addr(&self, i: u32) -> Ipv4Addr {
        Ipv4Addr::from(self.base + i)
    }

    fn last(&self) -> u32 {
        self.bits.len() - 1
    }

    fn advance_hint(&mut self) {
        self.hint = self
            .bits
            .next_clear(self.hint, self.last())
            .unwrap_or(self.bits.len());
    }

    fn take(&mut self, i: u32) {
        self.bits.set(i);
        if i == self.hint {
            self.advance_hint();
        }
    }

    /// Allocates the lowest free address: of the whole network outside reserved EPG pools
    /// (`within = None`; `auto allocation failed - address exhaustion in subnet
    /// 10.1.1.0/24`), or of the sub-range `within` (`... exhaustion in pool
    /// 10.1.1.10-10.1.1.20`; a range not inside the subnet is refused).
    pub fn allocate_lowest(
        &mut self,
        within: Option<&Ipv4Range>,
    ) -> Result<Ipv4Addr, ResourceError> {
        let i = self.lowest_index(within)?;
        self.take(i);
        Ok(self.addr(i))
    }

    /// The address [`allocate_lowest`](Self::allocate_lowest) would hand out, without taking
    /// it (for planning a change before it is committed).
    pub fn peek_lowest(&self, within: Option<&Ipv4Range>) -> Result<Ipv4Addr, ResourceError> {
        self.lowest_index(within).map(|i| self.addr(i))
    }

    fn lowest_index(&self, within: Option<&Ipv4Range>) -> Result<u32, ResourceError> {
        let i = match within {
            None => self.find_unscoped(),
            Some(w) => self.find_within(w)?,
        };
        i.ok_or_else(|| match within {
            None => ResourceError::AddressExhausted {
                subnet: self.net.to_string(),
            },
            Some(w) => ResourceError::PoolExhausted {
                pool: w.to_string(),
            },
        })
    }

    fn find_unscoped(&self) -> Option<u32> {
        let mut from = self.hint;
        loop {
            let c = self.bits.next_clear(from, self.last())?;
            match self.pool_of(self.addr(c)) {
                None => return Some(c),
                Some(p) => from = self.idx(p.end)?.checked_add(1)?,
            }
        }
    }

    fn find_within(&self, w: &Ipv4Range) -> Result<Option<u32>, ResourceError> {
        if !self.net.contains(&w.start) || !self.net.contains(&w.end) {
            return Err(ResourceError::IpPoolNotSubset {
                pool: w.to_string(),
                subnet: self.net.to_string(),
            });
        }
        let lo = w.start.max(self.range.start);
        let hi = w.end.min(self.range.end);
        match (self.idx(lo), self.idx(hi)) {
            (Some(a), Some(b)) if a <= b => Ok(self.bits.next_clear(a.max(self.hint), b)),
            _ => Ok(None),
        }
    }

    /// Index of `ip` if it is an allocatable address, else the reason it is not.
    fn check_addr(&self, ip: Ipv4Addr) -> Result<u32, ResourceError> {
        let subnet = || self.net.to_string();
        if !self.net.contains(&ip) {
            return Err(ResourceError::AddressOutsideSubnet {
                ip: ip.into(),
                subnet: subnet(),
            });
        }
        let edge =
            self.net.prefix_len() < 31 && (ip == self.net.network() || ip == self.net.broadcast());
        if edge || Some(ip) == self.gateway {
            return Err(ResourceError::AddressReserved {
                ip: ip.into(),
                subnet: subnet(),
            });
        }
        self.idx(ip)
            .ok_or_else(|| ResourceError::AddressOutsideRange {
                ip: ip.into(),
                range: self.range.to_string(),
                subnet: subnet(),
            })
    }

    /// Allocates a requested (preferred) address. Refused when outside the subnet or its
    /// range, reserved (network, broadcast, gateway) or already allocated (`ip address
    /// 10.1.1.5 is not available`): a preferred address is never handed out twice (Contiv
    /// did). An address inside a reserved EPG pool is accepted; the caller decides who may
    /// use it (see [`Ipv4Pool::pool_of`]).
    pub fn allocate_specific(&mut self, ip: Ipv4Addr) -> Result<(), ResourceError> {
        let i = self.free_index(ip)?;
        self.take(i);
        Ok(())
    }

    /// Whether [`allocate_specific`](Self::allocate_specific) would accept `ip`, without
    /// taking it; the same errors.
    pub fn check_available(&self, ip: Ipv4Addr) -> Result<(), ResourceError> {
        self.free_index(ip).map(|_| ())
    }

    fn free_index(&self, ip: Ipv4Addr) -> Result<u32, ResourceError> {
        let i = self.check_addr(ip)?;
        if self.bits.get(i) {
            return Err(ResourceError::AddressNotAvailable { ip: ip.into() });
        }
        Ok(i)
    }

    /// Frees an allocated address; false if it was not allocated (the gateway is never freed).
    pub fn release(&mut self, ip: Ipv4Addr) -> bool {
        match self.idx(ip) {
            Some(i) if Some(i) != self.gw_idx && self.bits.clear(i) => {
                self.hint = self.hint.min(i);
                true
            }
            _ => false,
        }
    }

    /// Whether `ip` is allocated to an endpoint (the gateway is not an allocation).
    pub fn is_allocated(&self, ip: Ipv4Addr) -> bool {
        self.idx(ip)
            .is_some_and(|i| Some(i) != self.gw_idx && self.bits.get(i))
    }

    /// Number of endpoint allocations (network, broadcast, gateway and reserved EPG pools
    /// excluded). Contiv's `allocatedAddressesCount` counted only automatic allocations
    /// but decremented on every release; we count every allocation.
    pub fn allocated_count(&self) -> u32 {
        self.bits.ones() - u32::from(self.gw_idx.is_some())
    }

    /// Number of addresses still free for un-scoped allocation plus inside EPG pools.
    pub fn free_count(&self) -> u32 {
        self.bits.len() - self.bits.ones()
    }

    /// Contiv's network `allocatedIPAddresses`: allocated addresses, the gateway when inside
    /// the range, and every reserved EPG pool, as `"10.1.1.1-10.1.1.3, 10.1.1.9"`; `""` if none.
    pub fn allocated_ranges(&self) -> String {
        let runs = self.runs(0, self.last(), true);
        let mut w = RangeWriter::default();
        runs.iter()
            .for_each(|&(a, b)| w.push(self.addr(a), self.addr(b)));
        w.finish()
    }

    /// Contiv's network `availableIPAddresses`: the complement of
    /// [`allocated_ranges`](Self::allocated_ranges) within the allocatable range, e.g.
    /// `"10.1.1.2-10.1.1.254"` for a fresh /24 with gateway 10.1.1.1.
    pub fn available_ranges(&self) -> String {
        self.complement(0, self.last(), &self.runs(0, self.last(), true))
    }

    /// Contiv's endpoint-group `allocatedIPAddresses`: allocations inside `pool`.
    pub fn allocated_ranges_in(&self, pool: &Ipv4Range) -> String {
        let Some((a, b)) = self.clip(pool) else {
            return String::new();
        };
        let mut w = RangeWriter::default();
        self.bits
            .for_each_run(a, b, |s, e| w.push(self.addr(s), self.addr(e)));
        w.finish()
    }

    /// Contiv's endpoint-group `availableIPAddresses`: free addresses inside `pool`.
    pub fn available_ranges_in(&self, pool: &Ipv4Range) -> String {
        let Some((a, b)) = self.clip(pool) else {
            return String::new();
        };
        self.complement(a, b, &self.runs(a, b, false))
    }

    /// `pool` intersected with the allocatable range, as bit indices.
    fn clip(&self, pool: &Ipv4Range) -> Option<(u32, u32)> {
        let a = self.idx(pool.start.max(self.range.start))?;
        let b = self.idx(pool.end.min(self.range.end))?;
        (pool.start <= self.range.end && pool.end >= self.range.start && a <= b).then_some((a, b))
    }

    /// Sorted, coalesced runs of set bits in `lo..=hi`, with reserved pools if asked.
    fn runs(&self, lo: u32, hi: u32, with_pools: bool) -> Vec<(u32, u32)> {
        let mut runs = Vec::new();
        self.bits.for_each_run(lo, hi, |s, e| runs.push((s, e)));
        if !with_pools || self.pools.is_empty() {
            return runs;
        }
        runs.extend(self.pools.iter().filter_map(|p| self.clip(p)));
        runs.sort_unstable();
        let mut out: Vec<(u32, u32)> = Vec::with_capacity(runs.len());
        for (s, e) in runs {
            match out.last_mut() {
                Some(l) if s <= l.1.saturating_add(1) => l.1 = l.1.max(e),
                _ => out.push((s, e)),
            }
        }
        out
    }

    fn complement(&self, lo: u32, hi: u32, runs: &[(u32, u32)]) -> String {
        let mut w = RangeWriter::default();
        let mut at = lo;
        for &(s, e) in runs {
            if s > at {
                w.push(self.addr(at), self.addr(s - 1));
            }
            at = e.saturating_add(1);
        }
        if at <= hi {
            w.push(self.addr(at), self.addr(hi));
        }
        w.finish()
    }
}

/// Endpoint-group ip-pool reservations.
impl Ipv4Pool {
    /// Checks that `pool` may become an EPG ip-pool of this network, without changing
    /// anything: Contiv's subset check ([`Ipv4Range::check_subset`]), then every address must
    /// be allocatable and free and in no other pool (`ip address 10.1.1.1 is not available`,
    /// naming the first offending address, as Contiv's TestIPAddrRange did).
    pub fn check_pool(&self, pool: &Ipv4Range) -> Result<(), ResourceError> {
        pool.check_subset(self.net)?;
        let mut first: Option<Ipv4Addr> = None;
        let mut note = |ip: Ipv4Addr| first = Some(first.map_or(ip, |f| f.min(ip)));
        if pool.start < self.range.start {
            note(pool.start);
        }
        if pool.end > self.range.end {
            note(Ipv4Addr::from(u32::from(self.range.end) + 1));
        }
        if let Some((a, b)) = self.clip(pool) {
            if let Some(i) = self.bits.next_set(a, b) {
                note(self.addr(i));
            }
        }
        for p in self.pools.iter().filter(|p| p.overlaps(pool)) {
            note(p.start.max(pool.start));
        }
        match first {
            Some(ip) => Err(ResourceError::AddressNotAvailable { ip: IpAddr::V4(ip) }),
            None => Ok(()),
        }
    }

    /// [`check_pool`](Self::check_pool), then reserves `pool`: un-scoped allocation no longer
    /// hands out its addresses.
    pub fn reserve_pool(&mut self, pool: &Ipv4Range) -> Result<(), ResourceError> {
        self.check_pool(pool)?;
        let at = self.pools.partition_point(|p| p.start < pool.start);
        self.pools.insert(at, *pool);
        Ok(())
    }

    /// Drops a reservation made by [`reserve_pool`](Self::reserve_pool); allocations inside
    /// it stay (release them first). False if `pool` was not reserved.
    pub fn release_pool(&mut self, pool: &Ipv4Range) -> bool {
        match self.pools.iter().position(|p| p == pool) {
            Some(i) => {
                self.pools.remove(i);
                true
            }
            None => false,
        }
    }

    /// The reserved EPG pools, sorted.
    pub fn reserved_pools(&self) -> &[Ipv4Range] {
        &self.pools
    }

    /// The reserved EPG pool containing `ip`, if any.
    pub fn pool_of(&self, ip: Ipv4Addr) -> Option<&Ipv4Range> {
        let i = self.pools.partition_point(|p| p.end < ip);
        self.pools.get(i).filter(|p| p.contains(ip))
    }
}
