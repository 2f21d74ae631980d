//! Flow-mod, group-mod and the flow/table multipart (stats) bodies.

use crate::action::{decode_actions, decode_instructions, encode_actions, Action, Instruction};
use crate::buf::{patch_len, Reader};
use crate::oxm::Match;
use crate::DecodeError;

/// Reserved port and group numbers.
pub const OFPP_ANY: u32 = 0xffff_ffff;
pub const OFPP_CONTROLLER: u32 = 0xffff_fffd;
pub const OFPP_IN_PORT: u32 = 0xffff_fff8;
pub const OFPP_NORMAL: u32 = 0xffff_fffa;
pub const OFPG_ANY: u32 = 0xffff_ffff;
pub const OFP_NO_BUFFER: u32 = 0xffff_ffff;
/// Priority ovs-ofctl sends when none is given (OFP_DEFAULT_PRIORITY).
pub const OFP_DEFAULT_PRIORITY: u16 = 0x8000;
/// All tables (flow stats, delete).
pub const OFPTT_ALL: u8 = 0xff;

/// Flow-mod flags.
pub const OFPFF_SEND_FLOW_REM: u16 = 1;
pub const OFPFF_CHECK_OVERLAP: u16 = 2;
pub const OFPFF_RESET_COUNTS: u16 = 4;

/// `ofp_flow_mod_command`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowModCommand {
    Add = 0,
    Modify = 1,
    ModifyStrict = 2,
    Delete = 3,
    DeleteStrict = 4,
}

impl FlowModCommand {
    fn from_u8(v: u8) -> Result<Self, DecodeError> {
        use FlowModCommand::*;
        Ok(match v {
            0 => Add,
            1 => Modify,
            2 => ModifyStrict,
            3 => Delete,
            4 => DeleteStrict,
            _ => {
                return Err(DecodeError::BadValue {
                    what: "flow-mod command",
                    value: v.into(),
                })
            }
        })
    }
}

/// OFPT_FLOW_MOD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowMod {
    pub cookie: u64,
    pub cookie_mask: u64,
    pub table_id: u8,
    pub command: FlowModCommand,
    pub idle_timeout: u16,
    pub hard_timeout: u16,
    pub priority: u16,
    pub buffer_id: u32,
    pub out_port: u32,
    pub out_group: u32,
    pub flags: u16,
    pub r#match: Match,
    pub instructions: Vec<Instruction>,
}

impl FlowMod {
    /// An add in `table_id` with ovs-ofctl's defaults for everything not given.
    pub fn add(table_id: u8, priority: u16, m: Match, instructions: Vec<Instruction>) -> Self {
        FlowMod {
            cookie: 0,
            cookie_mask: 0,
            table_id,
            command: FlowModCommand::Add,
            idle_timeout: 0,
            hard_timeout: 0,
            priority,
            buffer_id: OFP_NO_BUFFER,
            out_port: OFPP_ANY,
            out_group: OFPG_ANY,
            flags: 0,
            r#match: m,
            instructions,
        }
    }

    /// A non-strict delete of every flow whose cookie matches `cookie` under `mask`, in all tables.
    pub fn delete_by_cookie(cookie: u64, mask: u64) -> Self {
        FlowMod {
            cookie,
            cookie_mask: mask,
            command: FlowModCommand::Delete,
            ..FlowMod::add(
                OFPTT_ALL,
                OFP_DEFAULT_PRIORITY,
                Match::default(),
                Vec::new(),
            )
        }
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.cookie.to_be_bytes());
        out.extend_from_slice(&self.cookie_mask.to_be_bytes());
        out.extend_from_slice(&[self.table_id, self.command as u8]);
        for v in [self.idle_timeout, self.hard_timeout, self.priority] {
            out.extend_from_slice(&v.to_be_bytes());
        }
        for v in [self.buffer_id, self.out_port, self.out_group] {
            out.extend_from_slice(&v.to_be_bytes());
        }
        out.extend_from_slice(&self.flags.to_be_bytes());
        out.extend_from_slice(&[0, 0]);
        self.r#match.encode(out);
        for i in &self.instructions {
            i.encode(out);
        }
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let cookie = r.u64()?;
        let cookie_mask = r.u64()?;
        let table_id = r.u8()?;
        let command = FlowModCommand::from_u8(r.u8()?)?;
        let (idle_timeout, hard_timeout, priority) = (r.u16()?, r.u16()?, r.u16()?);
        let (buffer_id, out_port, out_group) = (r.u32()?, r.u32()?, r.u32()?);
        let flags = r.u16()?;
        r.skip(2)?;
        let r#match = Match::decode(r)?;
        let instructions = decode_instructions(r)?;
        Ok(FlowMod {
            cookie,
            cookie_mask,
            table_id,
            command,
            idle_timeout,
            hard_timeout,
            priority,
            buffer_id,
            out_port,
            out_group,
            flags,
            r#match,
            instructions,
        })
    }
}

/// `ofp_group_mod_command`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupModCommand {
    Add = 0,
    Modify = 1,
    Delete = 2,
    /// Open vSwitch's extension (`OFPGC11_ADD_OR_MOD`, OpenFlow 1.1-1.4): adds the group or
    /// replaces its buckets, so a restarted controller converges a group it cannot know exists.
    AddOrModify = 0x8000,
}

/// `ofp_group_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupType {
    All = 0,
    Select = 1,
    Indirect = 2,
    FastFailover = 3,
}

/// One bucket of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket {
    pub weight: u16,
    pub watch_port: u32,
    pub watch_group: u32,
    pub actions: Vec<Action>,
}

/// OFPT_GROUP_MOD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMod {
    pub command: GroupModCommand,
    pub group_type: GroupType,
    pub group_id: u32,
    pub buckets: Vec<Bucket>,
}

impl GroupMod {
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&(self.command as u16).to_be_bytes());
        out.extend_from_slice(&[self.group_type as u8, 0]);
        out.extend_from_slice(&self.group_id.to_be_bytes());
        for b in &self.buckets {
            let start = out.len();
            out.extend_from_slice(&[0, 0]);
            out.extend_from_slice(&b.weight.to_be_bytes());
            out.extend_from_slice(&b.watch_port.to_be_bytes());
            out.extend_from_slice(&b.watch_group.to_be_bytes());
            out.extend_from_slice(&[0; 4]);
            encode_actions(&b.actions, out);
            let len = out.len() - start;
            patch_len(out, start, len);
        }
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let command = match r.u16()? {
            0 => GroupModCommand::Add,
            1 => GroupModCommand::Modify,
            2 => GroupModCommand::Delete,
            0x8000 => GroupModCommand::AddOrModify,
            v => {
                return Err(DecodeError::BadValue {
                    what: "group-mod command",
                    value: v.into(),
                })
            }
        };
        let group_type = match r.u8()? {
            0 => GroupType::All,
            1 => GroupType::Select,
            2 => GroupType::Indirect,
            3 => GroupType::FastFailover,
            v => {
                return Err(DecodeError::BadValue {
                    what: "group type",
                    value: v.into(),
                })
            }
        };
        r.skip(1)?;
        let group_id = r.u32()?;
        let mut buckets = Vec::new();
        while r.remaining() > 0 {
            let len = r.u16()? as usize;
            let mut b = r.sub(len, 2, "bucket")?;
            let (weight, watch_port, watch_group) = (b.u16()?, b.u32()?, b.u32()?);
            b.skip(4)?;
            let actions = decode_actions(&mut b)?;
            buckets.push(Bucket {
                weight,
                watch_port,
                watch_group,
                actions,
            });
        }
        Ok(GroupMod {
            command,
            group_type,
            group_id,
            buckets,
        })
    }
}

/// OFPMP_FLOW request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowStatsRequest {
    pub table_id: u8,
    pub out_port: u32,
    pub out_group: u32,
    pub cookie: u64,
    pub cookie_mask: u64,
    pub r#match: Match,
}

impl FlowStatsRequest {
    /// Every flow of every table.
    pub fn all() -> Self {
        FlowStatsRequest {
            table_id: OFPTT_ALL,
            out_port: OFPP_ANY,
            out_group: OFPG_ANY,
            cookie: 0,
            cookie_mask: 0,
            r#match: Match::default(),
        }
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&[self.table_id, 0, 0, 0]);
        out.extend_from_slice(&self.out_port.to_be_bytes());
        out.extend_from_slice(&self.out_group.to_be_bytes());
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&self.cookie.to_be_bytes());
        out.extend_from_slice(&self.cookie_mask.to_be_bytes());
        self.r#match.encode(out);
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let table_id = r.u8()?;
        r.skip(3)?;
        let (out_port, out_group) = (r.u32()?, r.u32()?);
        r.skip(4)?;
        let (cookie, cookie_mask) = (r.u64()?, r.u64()?);
        let r#match = Match::decode(r)?;
        Ok(FlowStatsRequest {
            table_id,
            out_port,
            out_group,
            cookie,
            cookie_mask,
            r#match,
        })
    }
}

/// One entry of an OFPMP_FLOW reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowStats {
    pub table_id: u8,
    pub duration_sec: u32,
    pub duration_nsec: u32,
    pub priority: u16,
    pub idle_timeout: u16,
    pub hard_timeout: u16,
    pub flags: u16,
    pub cookie: u64,
    pub packet_count: u64,
    pub byte_count: u64,
    pub r#match: Match,
    pub instructions: Vec<Instruction>,
}

impl FlowStats {
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&[0, 0, self.table_id, 0]);
        out.extend_from_slice(&self.duration_sec.to_be_bytes());
        out.extend_from_slice(&self.duration_nsec.to_be_bytes());
        for v in [
            self.priority,
            self.idle_timeout,
            self.hard_timeout,
            self.flags,
        ] {
            out.extend_from_slice(&v.to_be_bytes());
        }
        out.extend_from_slice(&[0; 4]);
        for v in [self.cookie, self.packet_count, self.byte_count] {
            out.extend_from_slice(&v.to_be_bytes());
        }
        self.r#match.encode(out);
        for i in &self.instructions {
            i.encode(out);
        }
        let len = out.len() - start;
        patch_len(out, start, len);
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let len = r.u16()? as usize;
        let mut b = r.sub(len, 2, "flow stats")?;
        let table_id = b.u8()?;
        b.skip(1)?;
        let (duration_sec, duration_nsec) = (b.u32()?, b.u32()?);
        let (priority, idle_timeout, hard_timeout, flags) =
            (b.u16()?, b.u16()?, b.u16()?, b.u16()?);
        b.skip(4)?;
        let (cookie, packet_count, byte_count) = (b.u64()?, b.u64()?, b.u64()?);
        let r#match = Match::decode(&mut b)?;
        let instructions = decode_instructions(&mut b)?;
        Ok(FlowStats {
            table_id,
            duration_sec,
            duration_nsec,
            priority,
            idle_timeout,
            hard_timeout,
            flags,
            cookie,
            packet_count,
            byte_count,
            r#match,
            instructions,
        })
    }
}

/// One entry of an OFPMP_TABLE reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableStats {
    pub table_id: u8,
    pub active_count: u32,
    pub lookup_count: u64,
    pub matched_count: u64,
}

impl TableStats {
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&[self.table_id, 0, 0, 0]);
        out.extend_from_slice(&self.active_count.to_be_bytes());
        out.extend_from_slice(&self.lookup_count.to_be_bytes());
        out.extend_from_slice(&self.matched_count.to_be_bytes());
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let table_id = r.u8()?;
        r.skip(3)?;
        Ok(TableStats {
            table_id,
            active_count: r.u32()?,
            lookup_count: r.u64()?,
            matched_count: r.u64()?,
        })
    }
}
