//! Match fields: OXM (OpenFlow basic class) and the NXM fields Contiv's pipeline needs (registers,
//! conntrack state/zone/mark/label), and the `ofp_match` that carries them.
//!
//! A [`Match`] keeps its fields in the order given: Open vSwitch sends them in its own canonical
//! order, and golden tests build matches in that order to compare bytes.

use std::net::Ipv4Addr;

use crate::buf::{pad_to_8, patch_len, Reader};
use crate::DecodeError;

/// OXM class of the OpenFlow basic fields.
pub const OFPXMC_OPENFLOW_BASIC: u16 = 0x8000;
/// NXM class 1 (Nicira extension fields: registers, conntrack).
pub const NXM_1: u16 = 0x0001;

/// An Ethernet address.
pub type Mac = [u8; 6];

/// One match field (or, in `SetField`, one field to set). Masks are `None` for an exact match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    InPort(u32),
    Metadata(u64, Option<u64>),
    EthDst(Mac, Option<Mac>),
    EthSrc(Mac, Option<Mac>),
    EthType(u16),
    /// Includes OFPVID_PRESENT (0x1000) as on the wire.
    VlanVid(u16, Option<u16>),
    IpProto(u8),
    Ipv4Src(Ipv4Addr, Option<Ipv4Addr>),
    Ipv4Dst(Ipv4Addr, Option<Ipv4Addr>),
    TcpSrc(u16),
    TcpDst(u16),
    UdpSrc(u16),
    UdpDst(u16),
    ArpOp(u16),
    ArpSpa(Ipv4Addr, Option<Ipv4Addr>),
    ArpTpa(Ipv4Addr, Option<Ipv4Addr>),
    ArpSha(Mac, Option<Mac>),
    ArpTha(Mac, Option<Mac>),
    TunnelId(u64, Option<u64>),
    /// NXM_NX_REG0..15: register number, value, mask.
    Reg(u8, u32, Option<u32>),
    CtState(u32, Option<u32>),
    CtZone(u16),
    CtMark(u32, Option<u32>),
    CtLabel(u128, Option<u128>),
    /// Any other field, kept as raw bytes so decoding never loses or refuses it.
    Other {
        class: u16,
        field: u8,
        value: Vec<u8>,
        mask: Option<Vec<u8>>,
    },
}

/// `(class, field)` of an NXM register, for `reg_load`/`reg_move` headers.
pub fn nxm_reg_header(reg: u8) -> u32 {
    header(NXM_1, reg, false, 4)
}

/// The 32-bit OXM/NXM header.
pub fn header(class: u16, field: u8, hasmask: bool, len: u8) -> u32 {
    (u32::from(class) << 16) | (u32::from(field) << 9) | (u32::from(hasmask) << 8) | u32::from(len)
}

fn opt<T, const N: usize>(
    v: T,
    m: Option<T>,
    f: impl Fn(T) -> [u8; N],
) -> (Vec<u8>, Option<Vec<u8>>) {
    (f(v).to_vec(), m.map(|m| f(m).to_vec()))
}

impl Field {
    /// `(class, field, value, mask)` as they go on the wire.
    fn parts(&self) -> (u16, u8, Vec<u8>, Option<Vec<u8>>) {
        use Field::*;
        let b = OFPXMC_OPENFLOW_BASIC;
        let ip = |a: Ipv4Addr| a.octets();
        let be16 = |v: u16| v.to_be_bytes();
        let be32 = |v: u32| v.to_be_bytes();
        let be64 = |v: u64| v.to_be_bytes();
        let mac = |m: Mac| m;
        let (class, field, (v, m)) = match self {
            InPort(p) => (b, 0, (be32(*p).to_vec(), None)),
            Metadata(v, m) => (b, 2, opt(*v, *m, be64)),
            EthDst(v, m) => (b, 3, opt(*v, *m, mac)),
            EthSrc(v, m) => (b, 4, opt(*v, *m, mac)),
            EthType(v) => (b, 5, (be16(*v).to_vec(), None)),
            VlanVid(v, m) => (b, 6, opt(*v, *m, be16)),
            IpProto(v) => (b, 10, (vec![*v], None)),
            Ipv4Src(v, m) => (b, 11, opt(*v, *m, ip)),
            Ipv4Dst(v, m) => (b, 12, opt(*v, *m, ip)),
            TcpSrc(v) => (b, 13, (be16(*v).to_vec(), None)),
            TcpDst(v) => (b, 14, (be16(*v).to_vec(), None)),
            UdpSrc(v) => (b, 15, (be16(*v).to_vec(), None)),
            UdpDst(v) => (b, 16, (be16(*v).to_vec(), None)),
            ArpOp(v) => (b, 21, (be16(*v).to_vec(), None)),
            ArpSpa(v, m) => (b, 22, opt(*v, *m, ip)),
            ArpTpa(v, m) => (b, 23, opt(*v, *m, ip)),
            ArpSha(v, m) => (b, 24, opt(*v, *m, mac)),
            ArpTha(v, m) => (b, 25, opt(*v, *m, mac)),
            TunnelId(v, m) => (b, 38, opt(*v, *m, be64)),
            Reg(r, v, m) => (NXM_1, *r, opt(*v, *m, be32)),
            CtState(v, m) => (NXM_1, 105, opt(*v, *m, be32)),
            CtZone(v) => (NXM_1, 106, (be16(*v).to_vec(), None)),
            CtMark(v, m) => (NXM_1, 107, opt(*v, *m, be32)),
            CtLabel(v, m) => (NXM_1, 108, opt(*v, *m, |x: u128| x.to_be_bytes())),
            Other {
                class,
                field,
                value,
                mask,
            } => (*class, *field, (value.clone(), mask.clone())),
        };
        (class, field, v, m)
    }

    /// Appends header, value and mask (TLV).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let (class, field, v, m) = self.parts();
        let len = v.len() + m.as_ref().map_or(0, Vec::len);
        out.extend_from_slice(&header(class, field, m.is_some(), len as u8).to_be_bytes());
        out.extend_from_slice(&v);
        if let Some(m) = m {
            out.extend_from_slice(&m);
        }
    }

    /// Reads one TLV. A known field with an unexpected length is kept as [`Field::Other`].
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Field, DecodeError> {
        let h = r.u32()?;
        let (class, field, hasmask) = ((h >> 16) as u16, ((h >> 9) & 0x7f) as u8, h & 0x100 != 0);
        let len = (h & 0xff) as usize;
        if hasmask && len & 1 != 0 {
            return Err(DecodeError::BadLength {
                what: "oxm field",
                len,
            });
        }
        let body = r.bytes(len)?;
        let (v, m) = if hasmask {
            body.split_at(len / 2)
        } else {
            (body, &[][..])
        };
        let m = hasmask.then_some(m);
        Ok(typed(class, field, v, m).unwrap_or_else(|| Field::Other {
            class,
            field,
            value: v.to_vec(),
            mask: m.map(<[u8]>::to_vec),
        }))
    }
}

fn arr<const N: usize>(b: &[u8]) -> Option<[u8; N]> {
    b.try_into().ok()
}

/// Value and optional mask of `N` bytes each.
fn vm<const N: usize, T>(
    v: &[u8],
    m: Option<&[u8]>,
    f: impl Fn([u8; N]) -> T,
) -> Option<(T, Option<T>)> {
    let val = f(arr(v)?);
    let mask = match m {
        Some(m) => Some(f(arr(m)?)),
        None => None,
    };
    Some((val, mask))
}

/// Exact-only field of `N` bytes.
fn exact<const N: usize, T>(v: &[u8], m: Option<&[u8]>, f: impl Fn([u8; N]) -> T) -> Option<T> {
    if m.is_some() {
        return None;
    }
    arr(v).map(f)
}

fn typed(class: u16, field: u8, v: &[u8], m: Option<&[u8]>) -> Option<Field> {
    use Field::*;
    let ip = Ipv4Addr::from;
    let mac = |a: Mac| a;
    Some(match (class, field) {
        (OFPXMC_OPENFLOW_BASIC, f) => match f {
            0 => InPort(exact(v, m, u32::from_be_bytes)?),
            2 => vm(v, m, u64::from_be_bytes).map(|(a, b)| Metadata(a, b))?,
            3 => vm(v, m, mac).map(|(a, b)| EthDst(a, b))?,
            4 => vm(v, m, mac).map(|(a, b)| EthSrc(a, b))?,
            5 => EthType(exact(v, m, u16::from_be_bytes)?),
            6 => vm(v, m, u16::from_be_bytes).map(|(a, b)| VlanVid(a, b))?,
            10 => IpProto(exact(v, m, |a: [u8; 1]| a[0])?),
            11 => vm(v, m, ip).map(|(a, b)| Ipv4Src(a, b))?,
            12 => vm(v, m, ip).map(|(a, b)| Ipv4Dst(a, b))?,
            13 => TcpSrc(exact(v, m, u16::from_be_bytes)?),
            14 => TcpDst(exact(v, m, u16::from_be_bytes)?),
            15 => UdpSrc(exact(v, m, u16::from_be_bytes)?),
            16 => UdpDst(exact(v, m, u16::from_be_bytes)?),
            21 => ArpOp(exact(v, m, u16::from_be_bytes)?),
            22 => vm(v, m, ip).map(|(a, b)| ArpSpa(a, b))?,
            23 => vm(v, m, ip).map(|(a, b)| ArpTpa(a, b))?,
            24 => vm(v, m, mac).map(|(a, b)| ArpSha(a, b))?,
            25 => vm(v, m, mac).map(|(a, b)| ArpTha(a, b))?,
            38 => vm(v, m, u64::from_be_bytes).map(|(a, b)| TunnelId(a, b))?,
            _ => return None,
        },
        (NXM_1, r @ 0..=15) => vm(v, m, u32::from_be_bytes).map(|(a, b)| Reg(r, a, b))?,
        (NXM_1, 105) => vm(v, m, u32::from_be_bytes).map(|(a, b)| CtState(a, b))?,
        (NXM_1, 106) => CtZone(exact(v, m, u16::from_be_bytes)?),
        (NXM_1, 107) => vm(v, m, u32::from_be_bytes).map(|(a, b)| CtMark(a, b))?,
        (NXM_1, 108) => vm(v, m, u128::from_be_bytes).map(|(a, b)| CtLabel(a, b))?,
        _ => return None,
    })
}

/// Conntrack state bits for [`Field::CtState`].
pub mod ct_state {
    pub const NEW: u32 = 0x01;
    pub const EST: u32 = 0x02;
    pub const REL: u32 = 0x04;
    pub const RPL: u32 = 0x08;
    pub const INV: u32 = 0x10;
    pub const TRK: u32 = 0x20;
    pub const SNAT: u32 = 0x40;
    pub const DNAT: u32 = 0x80;
}

/// An OXM `ofp_match` (type 1): the fields in wire order. Empty matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Match(pub Vec<Field>);

impl Match {
    /// Appends the match with its padding to 8 bytes.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&1u16.to_be_bytes());
        out.extend_from_slice(&[0, 0]);
        for f in &self.0 {
            f.encode(out);
        }
        let len = out.len() - start;
        patch_len(out, start + 2, len);
        pad_to_8(out, start);
    }

    /// Reads a match and its padding.
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Match, DecodeError> {
        let typ = r.u16()?;
        if typ != 1 {
            return Err(DecodeError::BadValue {
                what: "match type",
                value: typ.into(),
            });
        }
        let len = r.u16()? as usize;
        let mut body = r.sub(len, 4, "match")?;
        r.skip(crate::buf::pad8(len))?;
        let mut fields = Vec::new();
        while body.remaining() > 0 {
            fields.push(Field::decode(&mut body)?);
        }
        Ok(Match(fields))
    }
}
