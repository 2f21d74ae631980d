//! Actions (OpenFlow 1.3 and the Nicira extensions: resubmit, reg_load, reg_move, ct, nat) and
//! instructions. Unknown actions and instructions decode to raw variants instead of failing.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::buf::{pad_to_8, patch_len, Reader};
use crate::oxm::Field;
use crate::DecodeError;

/// Nicira's experimenter id.
pub const NX_VENDOR_ID: u32 = 0x0000_2320;

const OFPAT_OUTPUT: u16 = 0;
const OFPAT_PUSH_VLAN: u16 = 17;
const OFPAT_POP_VLAN: u16 = 18;
const OFPAT_GROUP: u16 = 22;
const OFPAT_DEC_NW_TTL: u16 = 24;
const OFPAT_SET_FIELD: u16 = 25;
const OFPAT_EXPERIMENTER: u16 = 0xffff;

const NXAST_REG_MOVE: u16 = 6;
const NXAST_REG_LOAD: u16 = 7;
const NXAST_RESUBMIT_TABLE: u16 = 14;
const NXAST_CT: u16 = 35;
const NXAST_NAT: u16 = 36;

/// `ct` flags.
pub const NX_CT_F_COMMIT: u16 = 1;
pub const NX_CT_F_FORCE: u16 = 2;
/// `ct` without recirculation.
pub const NX_CT_RECIRC_NONE: u8 = 0xff;

/// `nat` flags.
pub const NX_NAT_F_SRC: u16 = 1;
pub const NX_NAT_F_DST: u16 = 2;
pub const NX_NAT_F_PERSISTENT: u16 = 4;
pub const NX_NAT_F_PROTO_HASH: u16 = 8;
pub const NX_NAT_F_PROTO_RANDOM: u16 = 16;

/// One action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Output {
        port: u32,
        max_len: u16,
    },
    Group(u32),
    SetField(Field),
    PushVlan(u16),
    PopVlan,
    DecNwTtl,
    /// NXAST_RESUBMIT_TABLE; `in_port` 0xfff8 (OFPP_IN_PORT, 1.0 numbering) keeps the packet's port.
    Resubmit {
        in_port: u16,
        table: u8,
    },
    /// NXAST_REG_LOAD: `ofs_nbits` = ofs << 6 | (n_bits - 1), `dst` an NXM header.
    RegLoad {
        ofs_nbits: u16,
        dst: u32,
        value: u64,
    },
    /// NXAST_REG_MOVE: `src`/`dst` NXM headers.
    RegMove {
        n_bits: u16,
        src_ofs: u16,
        dst_ofs: u16,
        src: u32,
        dst: u32,
    },
    Ct(Ct),
    Nat(Nat),
    /// Another experimenter action: id and the bytes after it.
    Experimenter {
        experimenter: u32,
        data: Vec<u8>,
    },
    /// An action type this crate does not model: type and the bytes after the 4-byte header.
    Unknown {
        typ: u16,
        data: Vec<u8>,
    },
}

/// NXAST_CT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ct {
    pub flags: u16,
    /// 0 for an immediate zone, else the NXM header of the field holding it.
    pub zone_src: u32,
    /// The zone (immediate) or `ofs << 6 | (n_bits - 1)` of `zone_src`.
    pub zone: u16,
    /// Table to recirculate to, [`NX_CT_RECIRC_NONE`] for none.
    pub recirc_table: u8,
    pub alg: u16,
    /// Nested actions (nat, set_field of ct_mark/ct_label).
    pub actions: Vec<Action>,
}

/// NXAST_NAT; `None` fields are absent from the range.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Nat {
    pub flags: u16,
    pub ipv4_min: Option<Ipv4Addr>,
    pub ipv4_max: Option<Ipv4Addr>,
    pub ipv6_min: Option<Ipv6Addr>,
    pub ipv6_max: Option<Ipv6Addr>,
    pub proto_min: Option<u16>,
    pub proto_max: Option<u16>,
}

fn be16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}
fn be32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

impl Action {
    /// Appends the action; its length covers padding to 8 bytes.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        let typ = match self {
            Action::Output { .. } => OFPAT_OUTPUT,
            Action::Group(_) => OFPAT_GROUP,
            Action::SetField(_) => OFPAT_SET_FIELD,
            Action::PushVlan(_) => OFPAT_PUSH_VLAN,
            Action::PopVlan => OFPAT_POP_VLAN,
            Action::DecNwTtl => OFPAT_DEC_NW_TTL,
            Action::Unknown { typ, .. } => *typ,
            _ => OFPAT_EXPERIMENTER,
        };
        be16(out, typ);
        be16(out, 0);
        self.encode_body(out);
        pad_to_8(out, start);
        let len = out.len() - start;
        patch_len(out, start + 2, len);
    }

    fn encode_body(&self, out: &mut Vec<u8>) {
        let nx = |out: &mut Vec<u8>, sub: u16| {
            be32(out, NX_VENDOR_ID);
            be16(out, sub);
        };
        match self {
            Action::Output { port, max_len } => {
                be32(out, *port);
                be16(out, *max_len);
                out.extend_from_slice(&[0; 6]);
            }
            Action::Group(g) => be32(out, *g),
            Action::SetField(f) => f.encode(out),
            Action::PushVlan(t) => {
                be16(out, *t);
                be16(out, 0);
            }
            Action::PopVlan | Action::DecNwTtl => be32(out, 0),
            Action::Resubmit { in_port, table } => {
                nx(out, NXAST_RESUBMIT_TABLE);
                be16(out, *in_port);
                out.extend_from_slice(&[*table, 0, 0, 0]);
            }
            Action::RegLoad {
                ofs_nbits,
                dst,
                value,
            } => {
                nx(out, NXAST_REG_LOAD);
                be16(out, *ofs_nbits);
                be32(out, *dst);
                out.extend_from_slice(&value.to_be_bytes());
            }
            Action::RegMove {
                n_bits,
                src_ofs,
                dst_ofs,
                src,
                dst,
            } => {
                nx(out, NXAST_REG_MOVE);
                for v in [n_bits, src_ofs, dst_ofs] {
                    be16(out, *v);
                }
                be32(out, *src);
                be32(out, *dst);
            }
            Action::Ct(ct) => {
                nx(out, NXAST_CT);
                be16(out, ct.flags);
                be32(out, ct.zone_src);
                be16(out, ct.zone);
                out.extend_from_slice(&[ct.recirc_table, 0, 0, 0]);
                be16(out, ct.alg);
                for a in &ct.actions {
                    a.encode(out);
                }
            }
            Action::Nat(nat) => {
                nx(out, NXAST_NAT);
                be16(out, 0);
                be16(out, nat.flags);
                let mut present = 0u16;
                let mut ranges = Vec::new();
                let bits = [(1, nat.ipv4_min), (2, nat.ipv4_max)];
                for (bit, a) in bits {
                    if let Some(a) = a {
                        present |= bit;
                        ranges.extend_from_slice(&a.octets());
                    }
                }
                for (bit, a) in [(4, nat.ipv6_min), (8, nat.ipv6_max)] {
                    if let Some(a) = a {
                        present |= bit;
                        ranges.extend_from_slice(&a.octets());
                    }
                }
                for (bit, p) in [(16, nat.proto_min), (32, nat.proto_max)] {
                    if let Some(p) = p {
                        present |= bit;
                        ranges.extend_from_slice(&p.to_be_bytes());
                    }
                }
                be16(out, present);
                out.extend_from_slice(&ranges);
            }
            Action::Experimenter { experimenter, data } => {
                be32(out, *experimenter);
                out.extend_from_slice(data);
            }
            Action::Unknown { data, .. } => out.extend_from_slice(data),
        }
    }

    /// Reads one action (TLV with a length that includes its padding).
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Action, DecodeError> {
        let typ = r.u16()?;
        let len = r.u16()? as usize;
        if len & 7 != 0 {
            return Err(DecodeError::BadLength {
                what: "action",
                len,
            });
        }
        let mut b = r.sub(len, 4, "action")?;
        Ok(match typ {
            OFPAT_OUTPUT => Action::Output {
                port: b.u32()?,
                max_len: b.u16()?,
            },
            OFPAT_GROUP => Action::Group(b.u32()?),
            OFPAT_SET_FIELD => Action::SetField(Field::decode(&mut b)?),
            OFPAT_PUSH_VLAN => Action::PushVlan(b.u16()?),
            OFPAT_POP_VLAN => Action::PopVlan,
            OFPAT_DEC_NW_TTL => Action::DecNwTtl,
            OFPAT_EXPERIMENTER => decode_experimenter(&mut b)?,
            _ => Action::Unknown {
                typ,
                data: b.rest().to_vec(),
            },
        })
    }
}

fn decode_experimenter(b: &mut Reader<'_>) -> Result<Action, DecodeError> {
    let experimenter = b.u32()?;
    if experimenter != NX_VENDOR_ID {
        return Ok(Action::Experimenter {
            experimenter,
            data: b.rest().to_vec(),
        });
    }
    let all = b.rest();
    let mut b = Reader::new(all, "nicira action");
    let sub = b.u16()?;
    Ok(match sub {
        NXAST_RESUBMIT_TABLE => Action::Resubmit {
            in_port: b.u16()?,
            table: b.u8()?,
        },
        NXAST_REG_LOAD => Action::RegLoad {
            ofs_nbits: b.u16()?,
            dst: b.u32()?,
            value: b.u64()?,
        },
        NXAST_REG_MOVE => Action::RegMove {
            n_bits: b.u16()?,
            src_ofs: b.u16()?,
            dst_ofs: b.u16()?,
            src: b.u32()?,
            dst: b.u32()?,
        },
        NXAST_CT => {
            let (flags, zone_src, zone) = (b.u16()?, b.u32()?, b.u16()?);
            let recirc_table = b.u8()?;
            b.skip(3)?;
            let alg = b.u16()?;
            let actions = decode_actions(&mut b)?;
            Action::Ct(Ct {
                flags,
                zone_src,
                zone,
                recirc_table,
                alg,
                actions,
            })
        }
        NXAST_NAT => decode_nat(&mut b)?,
        _ => Action::Experimenter {
            experimenter: NX_VENDOR_ID,
            data: all.to_vec(),
        },
    })
}

fn decode_nat(b: &mut Reader<'_>) -> Result<Action, DecodeError> {
    b.skip(2)?;
    let flags = b.u16()?;
    let present = b.u16()?;
    let mut nat = Nat {
        flags,
        ..Nat::default()
    };
    let has = |bit: u16| present & bit != 0;
    if has(1) {
        nat.ipv4_min = Some(Ipv4Addr::from(b.array::<4>()?));
    }
    if has(2) {
        nat.ipv4_max = Some(Ipv4Addr::from(b.array::<4>()?));
    }
    if has(4) {
        nat.ipv6_min = Some(Ipv6Addr::from(b.array::<16>()?));
    }
    if has(8) {
        nat.ipv6_max = Some(Ipv6Addr::from(b.array::<16>()?));
    }
    if has(16) {
        nat.proto_min = Some(b.u16()?);
    }
    if has(32) {
        nat.proto_max = Some(b.u16()?);
    }
    Ok(Action::Nat(nat))
}

/// Reads actions until the reader is empty.
pub(crate) fn decode_actions(r: &mut Reader<'_>) -> Result<Vec<Action>, DecodeError> {
    let mut v = Vec::new();
    while r.remaining() > 0 {
        v.push(Action::decode(r)?);
    }
    Ok(v)
}

pub(crate) fn encode_actions(actions: &[Action], out: &mut Vec<u8>) {
    for a in actions {
        a.encode(out);
    }
}

/// One instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Instruction {
    GotoTable(u8),
    WriteMetadata { value: u64, mask: u64 },
    WriteActions(Vec<Action>),
    ApplyActions(Vec<Action>),
    ClearActions,
    Unknown { typ: u16, data: Vec<u8> },
}

impl Instruction {
    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        let typ = match self {
            Instruction::GotoTable(_) => 1,
            Instruction::WriteMetadata { .. } => 2,
            Instruction::WriteActions(_) => 3,
            Instruction::ApplyActions(_) => 4,
            Instruction::ClearActions => 5,
            Instruction::Unknown { typ, .. } => *typ,
        };
        be16(out, typ);
        be16(out, 0);
        match self {
            Instruction::GotoTable(t) => out.extend_from_slice(&[*t, 0, 0, 0]),
            Instruction::WriteMetadata { value, mask } => {
                be32(out, 0);
                out.extend_from_slice(&value.to_be_bytes());
                out.extend_from_slice(&mask.to_be_bytes());
            }
            Instruction::WriteActions(a) | Instruction::ApplyActions(a) => {
                be32(out, 0);
                encode_actions(a, out);
            }
            Instruction::ClearActions => be32(out, 0),
            Instruction::Unknown { data, .. } => out.extend_from_slice(data),
        }
        let len = out.len() - start;
        patch_len(out, start + 2, len);
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Instruction, DecodeError> {
        let typ = r.u16()?;
        let len = r.u16()? as usize;
        let mut b = r.sub(len, 4, "instruction")?;
        Ok(match typ {
            1 => Instruction::GotoTable(b.u8()?),
            2 => {
                b.skip(4)?;
                Instruction::WriteMetadata {
                    value: b.u64()?,
                    mask: b.u64()?,
                }
            }
            3 | 4 => {
                b.skip(4)?;
                let a = decode_actions(&mut b)?;
                if typ == 3 {
                    Instruction::WriteActions(a)
                } else {
                    Instruction::ApplyActions(a)
                }
            }
            5 => Instruction::ClearActions,
            _ => Instruction::Unknown {
                typ,
                data: b.rest().to_vec(),
            },
        })
    }
}

pub(crate) fn decode_instructions(r: &mut Reader<'_>) -> Result<Vec<Instruction>, DecodeError> {
    let mut v = Vec::new();
    while r.remaining() > 0 {
        v.push(Instruction::decode(r)?);
    }
    Ok(v)
}
