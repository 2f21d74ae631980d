//! Integer id pools: VLANs, VXLAN VNIs (with their cluster-wide local VLAN), EPG ids.
//!
//! Contiv kept a "free" bitset per resource (netmaster/gstate, netmaster/resources) and
//! reported the ids in use as `"1-5, 7"` (`vlansInUse`, `vxlansInUse`). [`IdPool`] keeps one
//! [`Bitmap`](crate::bitmap::Bitmap) over `lo..=hi` of its configured ranges in which a set
//! bit means "not allocatable" (in use, or a gap between configured ranges), plus a
//! lowest-free hint, so allocation is O(1) amortized for sequential use.
//!
//! Memory is `(hi - lo + 1) / 8` bytes: 512 bytes for VLANs, 2 MiB for the full 24-bit VNI
//! space. Range parsing bounds ids by the caller's `max`; [`IdPool::new`] trusts its caller.

use crate::bitmap::Bitmap;
use crate::ResourceError;

/// A set of integer ids over configured ranges, tracking which are in use.
#[derive(Debug, Clone)]
pub struct IdPool {
    kind: &'static str,
    ranges: Vec<(u32, u32)>,
    lo: u32,
    bits: Bitmap,
    used: u32,
    /// Every index below `hint` is set (used or a gap).
    hint: u32,
}

impl IdPool {
    /// Parses Contiv's range text: `"1-4094"`, or several ranges `"10-50, 70-100"` (as Contiv's
    /// `ParseTagRanges` did for VLANs); a single number `"5"` means `5-5`. Ids must be
    /// `1..=max`. Errors carry Contiv's messages (`invalid range 1-5000, id values exceed 4094
    /// max allowed`, ...; relabel with [`IdPool::parse_kind`]).
    pub fn parse_range(spec: &str, max: u32) -> Result<IdPool, ResourceError> {
        IdPool::parse_kind(spec, max, "id")
    }

    /// [`IdPool::parse_range`] with a resource name used in messages: `"vlan"` gives
    /// `requested vlan not available - vlan:5000` and `no vlans available`.
    pub fn parse_kind(spec: &str, max: u32, kind: &'static str) -> Result<IdPool, ResourceError> {
        let mut ranges = Vec::new();
        for part in spec.split(',') {
            ranges.push(parse_one(part.trim(), max, kind)?);
        }
        ranges.sort_unstable();
        let mut merged: Vec<(u32, u32)> = Vec::with_capacity(ranges.len());
        for (a, b) in ranges {
            match merged.last_mut() {
                Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        Ok(IdPool::from_ranges(merged, kind))
    }

    /// Pool over `lo..=hi` (swapped if reversed). Allocates `(hi - lo + 1) / 8` bytes.
    pub fn new(lo: u32, hi: u32) -> IdPool {
        IdPool::from_ranges(vec![(lo.min(hi), lo.max(hi))], "id")
    }

    /// Sets the resource name used in error messages (`"vlan"`, `"vxlan"`, `"local vlan"`, ...).
    pub fn with_kind(mut self, kind: &'static str) -> IdPool {
        self.kind = kind;
        self
    }

    fn from_ranges(ranges: Vec<(u32, u32)>, kind: &'static str) -> IdPool {
        let lo = ranges.first().map_or(0, |r| r.0);
        let hi = ranges.last().map_or(0, |r| r.1);
        // hi - lo < u32::MAX except for 0..=u32::MAX, whose last id is then not tracked.
        let mut bits = Bitmap::new((hi - lo).saturating_add(1));
        for pair in ranges.windows(2) {
            for id in pair[0].1 + 1..pair[1].0 {
                bits.set(id - lo);
            }
        }
        let mut pool = IdPool {
            kind,
            ranges,
            lo,
            bits,
            used: 0,
            hint: 0,
        };
        pool.advance_hint();
        pool
    }

    /// The configured ranges, sorted and merged.
    pub fn ranges(&self) -> &[(u32, u32)] {
        &self.ranges
    }

    /// Whether `id` lies inside the configured ranges (used or not).
    pub fn contains_range(&self, id: u32) -> bool {
        let i = self.ranges.partition_point(|r| r.1 < id);
        self.ranges.get(i).is_some_and(|r| r.0 <= id) && id - self.lo < self.bits.len()
    }

    fn advance_hint(&mut self) {
        let last = self.bits.len().saturating_sub(1);
        self.hint = self
            .bits
            .next_clear(self.hint, last)
            .unwrap_or(self.bits.len());
    }

    /// The lowest free id, without allocating it.
    pub fn first_free(&self) -> Option<u32> {
        (self.hint < self.bits.len()).then_some(self.lo + self.hint)
    }

    /// Allocates the lowest free id (`no vlans available` style error when exhausted).
    pub fn allocate_lowest(&mut self) -> Result<u32, ResourceError> {
        let id = self
            .first_free()
            .ok_or_else(|| ResourceError::IdsExhausted {
                kind: self.kind.into(),
            })?;
        self.bits.set(id - self.lo);
        self.used += 1;
        self.advance_hint();
        Ok(id)
    }

    /// Marks a specific id used (`requested vlan not available - vlan:5000` when it is
    /// outside the ranges or already taken).
    pub fn reserve(&mut self, id: u32) -> Result<(), ResourceError> {
        if !self.contains_range(id) {
            return Err(ResourceError::IdOutOfRange {
                kind: self.kind.into(),
                id,
            });
        }
        if !self.bits.set(id - self.lo) {
            return Err(ResourceError::IdNotAvailable {
                kind: self.kind.into(),
                id,
            });
        }
        self.used += 1;
        if id - self.lo == self.hint {
            self.advance_hint();
        }
        Ok(())
    }

    /// Frees `id`; returns false if it was not in use (or not in range).
    pub fn release(&mut self, id: u32) -> bool {
        if !self.contains_range(id) || !self.bits.clear(id - self.lo) {
            return false;
        }
        self.used -= 1;
        self.hint = self.hint.min(id - self.lo);
        true
    }

    /// Whether `id` is in range and in use.
    pub fn is_used(&self, id: u32) -> bool {
        self.contains_range(id) && self.bits.get(id - self.lo)
    }

    /// Number of ids in use.
    pub fn used_count(&self) -> u32 {
        self.used
    }

    /// The ids in use as Contiv printed `vlansInUse`: `"1-5, 7"`, `""` when none.
    pub fn used_ranges(&self) -> String {
        let mut out = crate::RangeWriter::default();
        for &(a, b) in &self.ranges {
            self.bits.for_each_run(a - self.lo, b - self.lo, |s, e| {
                out.push(self.lo + s, self.lo + e);
            });
        }
        out.finish()
    }
}

fn parse_one(part: &str, max: u32, kind: &str) -> Result<(u32, u32), ResourceError> {
    let fmt_err = || ResourceError::RangeFormat {
        spec: part.to_string(),
    };
    let mut nums = part.split('-').map(|n| n.trim().parse::<u64>());
    let (a, b) = match (nums.next(), nums.next(), nums.next()) {
        (Some(Ok(a)), None, None) => (a, a),
        (Some(Ok(a)), Some(Ok(b)), None) => (a, b),
        _ => return Err(fmt_err()),
    };
    if a > b {
        return Err(ResourceError::RangeMinGreaterThanMax {
            spec: part.to_string(),
        });
    }
    if a < 1 {
        return Err(ResourceError::RangeBelowOne {
            spec: part.to_string(),
        });
    }
    if b > u64::from(max) {
        return Err(ResourceError::RangeAboveMax {
            spec: part.to_string(),
            kind: kind.to_string(),
            max,
        });
    }
    Ok((a as u32, b as u32))
}

/// VXLAN allocator: a VNI from the configured `vxlans` range plus a local VLAN from the
/// cluster-wide `1-4094` range, taken together or not at all (Contiv's auto-vxlan
/// resource, netmaster/resources/vxlanresource.go).
#[derive(Debug, Clone)]
pub struct VxlanPool {
    /// VNIs (`kind` "vxlan").
    pub vnis: IdPool,
    /// Local VLANs (`kind` "local vlan").
    pub local_vlans: IdPool,
}

impl VxlanPool {
    /// Largest VNI (24 bits).
    pub const MAX_VNI: u32 = 16_777_215;

    /// Parses the `vxlans` range (e.g. `"1-10000"`), local VLANs `1-4094`.
    pub fn parse(vxlans: &str) -> Result<VxlanPool, ResourceError> {
        Ok(VxlanPool {
            vnis: IdPool::parse_kind(vxlans, Self::MAX_VNI, "vxlan")?,
            local_vlans: IdPool::new(1, 4094).with_kind("local vlan"),
        })
    }

    /// Contiv's global `freeVXLANsStart`: the first configured VNI minus one.
    pub fn free_vxlans_start(&self) -> u32 {
        self.vnis
            .ranges()
            .first()
            .map_or(0, |r| r.0.saturating_sub(1))
    }

    /// Allocates `requested` (or the lowest free VNI when `None`) and the lowest free local
    /// VLAN; returns `(vni, local_vlan)`. Nothing changes on error.
    pub fn allocate(&mut self, requested: Option<u32>) -> Result<(u32, u32), ResourceError> {
        if self.local_vlans.first_free().is_none() {
            return Err(ResourceError::IdsExhausted {
                kind: "local vlan".into(),
            });
        }
        let vni = match requested {
            Some(v) => self.vnis.reserve(v).map(|_| v)?,
            None => self.vnis.allocate_lowest()?,
        };
        match self.local_vlans.allocate_lowest() {
            Ok(vlan) => Ok((vni, vlan)),
            Err(e) => {
                self.vnis.release(vni);
                Err(e)
            }
        }
    }

    /// Re-marks a pair read back from the store (restart replay).
    pub fn reserve(&mut self, vni: u32, local_vlan: u32) -> Result<(), ResourceError> {
        self.vnis.reserve(vni)?;
        if let Err(e) = self.local_vlans.reserve(local_vlan) {
            self.vnis.release(vni);
            return Err(e);
        }
        Ok(())
    }

    /// Frees both; returns true if both were in use.
    pub fn release(&mut self, vni: u32, local_vlan: u32) -> bool {
        let a = self.vnis.release(vni);
        let b = self.local_vlans.release(local_vlan);
        a && b
    }
}
