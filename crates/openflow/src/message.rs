//! OpenFlow 1.3 messages: the header, the [`Message`] enum and encode/decode of each body.
//! Pure data: no I/O (the connection lives in `conn`).

use crate::action::{decode_actions, encode_actions, Action};
use crate::buf::{patch_len, Reader};
use crate::flow::{FlowMod, FlowStats, FlowStatsRequest, GroupMod, TableStats};
use crate::oxm::Match;
use crate::DecodeError;

/// OpenFlow 1.3 wire version.
pub const OFP13_VERSION: u8 = 0x04;
/// Length of `ofp_header`.
pub const HEADER_LEN: usize = 8;
/// ONF's experimenter id (bundles in OpenFlow 1.3, extension 230).
pub const ONF_EXPERIMENTER_ID: u32 = 0x4f4e_4600;
const ONFT_BUNDLE_CONTROL: u32 = 2300;
const ONFT_BUNDLE_ADD_MESSAGE: u32 = 2301;

const OFPMP_FLOW: u16 = 1;
const OFPMP_TABLE: u16 = 3;

/// A decoded message with its transaction id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub xid: u32,
    pub msg: Message,
}

/// Every message this crate models; anything else decodes to [`Message::Other`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// `versions`: the bitmap element (bit n = wire version n), `None` when absent.
    Hello {
        versions: Option<u32>,
    },
    Error(ErrorMsg),
    EchoRequest(Vec<u8>),
    EchoReply(Vec<u8>),
    FeaturesRequest,
    FeaturesReply(Features),
    BarrierRequest,
    BarrierReply,
    FlowMod(FlowMod),
    GroupMod(GroupMod),
    PacketIn(PacketIn),
    PacketOut(PacketOut),
    MultipartRequest(MultipartRequest),
    MultipartReply(MultipartReply),
    BundleControl(BundleControl),
    BundleAdd(BundleAdd),
    /// Another message type: type and body.
    Other {
        typ: u8,
        body: Vec<u8>,
    },
}

/// OFPT_ERROR: type, code and the data (usually the start of the offending message). For an
/// experimenter error (type 0xffff, e.g. ONF bundle errors 2300-2316) `code` is the exp_type and
/// `data` starts with the experimenter id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorMsg {
    pub typ: u16,
    pub code: u16,
    pub data: Vec<u8>,
}

/// OFPT_FEATURES_REPLY.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Features {
    pub datapath_id: u64,
    pub n_buffers: u32,
    pub n_tables: u8,
    pub auxiliary_id: u8,
    pub capabilities: u32,
}

/// OFPT_PACKET_IN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketIn {
    pub buffer_id: u32,
    pub total_len: u16,
    pub reason: u8,
    pub table_id: u8,
    pub cookie: u64,
    pub r#match: Match,
    pub data: Vec<u8>,
}

/// OFPT_PACKET_OUT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketOut {
    pub buffer_id: u32,
    pub in_port: u32,
    pub actions: Vec<Action>,
    pub data: Vec<u8>,
}

/// OFPT_MULTIPART_REQUEST bodies modelled here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultipartRequest {
    Flow(FlowStatsRequest),
    Table,
    Other { typ: u16, flags: u16, body: Vec<u8> },
}

/// OFPT_MULTIPART_REPLY; `more` is OFPMPF_REPLY_MORE (further parts follow with the same xid).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultipartReply {
    Flow { more: bool, stats: Vec<FlowStats> },
    Table { more: bool, stats: Vec<TableStats> },
    Other { typ: u16, flags: u16, body: Vec<u8> },
}

/// Bundle control types (ONF extension 230 / OpenFlow 1.4 numbering).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BundleCtrlType {
    OpenRequest = 0,
    OpenReply = 1,
    CloseRequest = 2,
    CloseReply = 3,
    CommitRequest = 4,
    CommitReply = 5,
    DiscardRequest = 6,
    DiscardReply = 7,
}

/// Bundle flags.
pub const OFPBF_ATOMIC: u16 = 1;
pub const OFPBF_ORDERED: u16 = 2;

/// ONFT_BUNDLE_CONTROL (properties are not modelled; kept raw).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleControl {
    pub bundle_id: u32,
    pub typ: BundleCtrlType,
    pub flags: u16,
    pub properties: Vec<u8>,
}

/// ONFT_BUNDLE_ADD_MESSAGE: one message (with its own xid) added to an open bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleAdd {
    pub bundle_id: u32,
    pub flags: u16,
    pub inner: Box<Envelope>,
}

impl Message {
    fn type_code(&self) -> u8 {
        match self {
            Message::Hello { .. } => 0,
            Message::Error(_) => 1,
            Message::EchoRequest(_) => 2,
            Message::EchoReply(_) => 3,
            Message::BundleControl(_) | Message::BundleAdd(_) => 4,
            Message::FeaturesRequest => 5,
            Message::FeaturesReply(_) => 6,
            Message::PacketIn(_) => 10,
            Message::PacketOut(_) => 13,
            Message::FlowMod(_) => 14,
            Message::GroupMod(_) => 15,
            Message::MultipartRequest(_) => 18,
            Message::MultipartReply(_) => 19,
            Message::BarrierRequest => 20,
            Message::BarrierReply => 21,
            Message::Other { typ, .. } => *typ,
        }
    }

    /// The whole message, header included, with `xid`.
    pub fn encode(&self, xid: u32) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        self.encode_into(xid, &mut out);
        out
    }

    /// Appends the whole message to `out` (for batching many messages in one write).
    pub fn encode_into(&self, xid: u32, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&[OFP13_VERSION, self.type_code(), 0, 0]);
        out.extend_from_slice(&xid.to_be_bytes());
        self.encode_body(out);
        let len = out.len() - start;
        patch_len(out, start + 2, len);
    }

    fn encode_body(&self, out: &mut Vec<u8>) {
        match self {
            Message::Hello { versions } => {
                if let Some(bm) = versions {
                    out.extend_from_slice(&[0, 1, 0, 8]);
                    out.extend_from_slice(&bm.to_be_bytes());
                }
            }
            Message::Error(e) => {
                out.extend_from_slice(&e.typ.to_be_bytes());
                out.extend_from_slice(&e.code.to_be_bytes());
                out.extend_from_slice(&e.data);
            }
            Message::EchoRequest(d) | Message::EchoReply(d) => out.extend_from_slice(d),
            Message::FeaturesRequest | Message::BarrierRequest | Message::BarrierReply => {}
            Message::FeaturesReply(f) => {
                out.extend_from_slice(&f.datapath_id.to_be_bytes());
                out.extend_from_slice(&f.n_buffers.to_be_bytes());
                out.extend_from_slice(&[f.n_tables, f.auxiliary_id, 0, 0]);
                out.extend_from_slice(&f.capabilities.to_be_bytes());
                out.extend_from_slice(&[0; 4]);
            }
            Message::FlowMod(f) => f.encode(out),
            Message::GroupMod(g) => g.encode(out),
            Message::PacketIn(p) => {
                out.extend_from_slice(&p.buffer_id.to_be_bytes());
                out.extend_from_slice(&p.total_len.to_be_bytes());
                out.extend_from_slice(&[p.reason, p.table_id]);
                out.extend_from_slice(&p.cookie.to_be_bytes());
                p.r#match.encode(out);
                out.extend_from_slice(&[0, 0]);
                out.extend_from_slice(&p.data);
            }
            Message::PacketOut(p) => {
                out.extend_from_slice(&p.buffer_id.to_be_bytes());
                out.extend_from_slice(&p.in_port.to_be_bytes());
                let at = out.len();
                out.extend_from_slice(&[0; 8]);
                encode_actions(&p.actions, out);
                let alen = out.len() - at - 8;
                patch_len(out, at, alen);
                out.extend_from_slice(&p.data);
            }
            Message::MultipartRequest(m) => encode_mp_request(m, out),
            Message::MultipartReply(m) => encode_mp_reply(m, out),
            Message::BundleControl(b) => {
                out.extend_from_slice(&ONF_EXPERIMENTER_ID.to_be_bytes());
                out.extend_from_slice(&ONFT_BUNDLE_CONTROL.to_be_bytes());
                out.extend_from_slice(&b.bundle_id.to_be_bytes());
                out.extend_from_slice(&(b.typ as u16).to_be_bytes());
                out.extend_from_slice(&b.flags.to_be_bytes());
                out.extend_from_slice(&b.properties);
            }
            Message::BundleAdd(b) => {
                out.extend_from_slice(&ONF_EXPERIMENTER_ID.to_be_bytes());
                out.extend_from_slice(&ONFT_BUNDLE_ADD_MESSAGE.to_be_bytes());
                out.extend_from_slice(&b.bundle_id.to_be_bytes());
                out.extend_from_slice(&[0, 0]);
                out.extend_from_slice(&b.flags.to_be_bytes());
                b.inner.msg.encode_into(b.inner.xid, out);
            }
            Message::Other { body, .. } => out.extend_from_slice(body),
        }
    }

    /// Length of the first message in `buf` as its header says, once 8 bytes are there; for
    /// framing a stream. Lengths below the header size are an error (the stream is lost).
    pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, DecodeError> {
        if buf.len() < HEADER_LEN {
            return Ok(None);
        }
        let len = u16::from_be_bytes([buf[2], buf[3]]) as usize;
        if len < HEADER_LEN {
            return Err(DecodeError::BadLength {
                what: "message header",
                len,
            });
        }
        Ok(Some(len))
    }

    /// Decodes exactly one message occupying all of `buf`.
    pub fn decode(buf: &[u8]) -> Result<Envelope, DecodeError> {
        let mut r = Reader::new(buf, "message");
        let version = r.u8()?;
        let typ = r.u8()?;
        let len = r.u16()? as usize;
        let xid = r.u32()?;
        if len != buf.len() {
            return Err(DecodeError::BadLength {
                what: "message",
                len,
            });
        }
        // A hello of any version is decodable: version negotiation needs it.
        if version != OFP13_VERSION && typ != 0 {
            return Err(DecodeError::Version(version));
        }
        let msg = decode_body(typ, &mut r)?;
        Ok(Envelope { xid, msg })
    }
}

fn decode_body(typ: u8, r: &mut Reader<'_>) -> Result<Message, DecodeError> {
    Ok(match typ {
        0 => decode_hello(r)?,
        1 => Message::Error(ErrorMsg {
            typ: r.u16()?,
            code: r.u16()?,
            data: r.rest().to_vec(),
        }),
        2 => Message::EchoRequest(r.rest().to_vec()),
        3 => Message::EchoReply(r.rest().to_vec()),
        4 => decode_experimenter(r)?,
        5 => Message::FeaturesRequest,
        6 => {
            let (datapath_id, n_buffers, n_tables, auxiliary_id) =
                (r.u64()?, r.u32()?, r.u8()?, r.u8()?);
            r.skip(2)?;
            let capabilities = r.u32()?;
            r.skip(4)?;
            Message::FeaturesReply(Features {
                datapath_id,
                n_buffers,
                n_tables,
                auxiliary_id,
                capabilities,
            })
        }
        10 => {
            let (buffer_id, total_len, reason, table_id) = (r.u32()?, r.u16()?, r.u8()?, r.u8()?);
            let cookie = r.u64()?;
            let r#match = Match::decode(r)?;
            r.skip(2)?;
            let data = r.rest().to_vec();
            Message::PacketIn(PacketIn {
                buffer_id,
                total_len,
                reason,
                table_id,
                cookie,
                r#match,
                data,
            })
        }
        13 => {
            let (buffer_id, in_port) = (r.u32()?, r.u32()?);
            let alen = r.u16()? as usize;
            r.skip(6)?;
            let actions = decode_actions(&mut r.sub(alen, 0, "packet-out actions")?)?;
            Message::PacketOut(PacketOut {
                buffer_id,
                in_port,
                actions,
                data: r.rest().to_vec(),
            })
        }
        14 => Message::FlowMod(FlowMod::decode(r)?),
        15 => Message::GroupMod(GroupMod::decode(r)?),
        18 => Message::MultipartRequest(decode_mp_request(r)?),
        19 => Message::MultipartReply(decode_mp_reply(r)?),
        20 => Message::BarrierRequest,
        21 => Message::BarrierReply,
        _ => Message::Other {
            typ,
            body: r.rest().to_vec(),
        },
    })
}

fn decode_hello(r: &mut Reader<'_>) -> Result<Message, DecodeError> {
    let mut versions = None;
    while r.remaining() >= 4 {
        let (typ, len) = (r.u16()?, r.u16()? as usize);
        let mut e = r.sub(len, 4, "hello element")?;
        r.skip(crate::buf::pad8(len))?;
        if typ == 1 && e.remaining() >= 4 {
            versions = Some(e.u32()?);
        }
    }
    Ok(Message::Hello { versions })
}

fn decode_experimenter(r: &mut Reader<'_>) -> Result<Message, DecodeError> {
    let all = r.rest();
    let mut b = Reader::new(all, "experimenter message");
    let (exp, exp_type) = (b.u32()?, b.u32()?);
    if exp != ONF_EXPERIMENTER_ID
        || !(ONFT_BUNDLE_CONTROL..=ONFT_BUNDLE_ADD_MESSAGE).contains(&exp_type)
    {
        return Ok(Message::Other {
            typ: 4,
            body: all.to_vec(),
        });
    }
    let bundle_id = b.u32()?;
    if exp_type == ONFT_BUNDLE_CONTROL {
        use BundleCtrlType::*;
        let t = b.u16()?;
        let typ = [
            OpenRequest,
            OpenReply,
            CloseRequest,
            CloseReply,
            CommitRequest,
            CommitReply,
            DiscardRequest,
            DiscardReply,
        ]
        .get(t as usize)
        .copied()
        .ok_or(DecodeError::BadValue {
            what: "bundle control type",
            value: t.into(),
        })?;
        let flags = b.u16()?;
        return Ok(Message::BundleControl(BundleControl {
            bundle_id,
            typ,
            flags,
            properties: b.rest().to_vec(),
        }));
    }
    b.skip(2)?;
    let flags = b.u16()?;
    let rest = b.rest();
    let len = Message::frame_len(rest)?.ok_or(DecodeError::Truncated {
        what: "bundled message",
        need: HEADER_LEN,
        have: rest.len(),
    })?;
    if len > rest.len() {
        return Err(DecodeError::Truncated {
            what: "bundled message",
            need: len,
            have: rest.len(),
        });
    }
    // Properties after the inner message (padded) are not modelled.
    let inner = Message::decode(&rest[..len])?;
    Ok(Message::BundleAdd(BundleAdd {
        bundle_id,
        flags,
        inner: Box::new(inner),
    }))
}

fn encode_mp_request(m: &MultipartRequest, out: &mut Vec<u8>) {
    let (typ, flags) = match m {
        MultipartRequest::Flow(_) => (OFPMP_FLOW, 0),
        MultipartRequest::Table => (OFPMP_TABLE, 0),
        MultipartRequest::Other { typ, flags, .. } => (*typ, *flags),
    };
    out.extend_from_slice(&typ.to_be_bytes());
    out.extend_from_slice(&flags.to_be_bytes());
    out.extend_from_slice(&[0; 4]);
    match m {
        MultipartRequest::Flow(f) => f.encode(out),
        MultipartRequest::Table => {}
        MultipartRequest::Other { body, .. } => out.extend_from_slice(body),
    }
}

fn decode_mp_request(r: &mut Reader<'_>) -> Result<MultipartRequest, DecodeError> {
    let (typ, flags) = (r.u16()?, r.u16()?);
    r.skip(4)?;
    Ok(match typ {
        OFPMP_FLOW => MultipartRequest::Flow(FlowStatsRequest::decode(r)?),
        OFPMP_TABLE => MultipartRequest::Table,
        _ => MultipartRequest::Other {
            typ,
            flags,
            body: r.rest().to_vec(),
        },
    })
}

fn encode_mp_reply(m: &MultipartReply, out: &mut Vec<u8>) {
    let (typ, flags) = match m {
        MultipartReply::Flow { more, .. } => (OFPMP_FLOW, u16::from(*more)),
        MultipartReply::Table { more, .. } => (OFPMP_TABLE, u16::from(*more)),
        MultipartReply::Other { typ, flags, .. } => (*typ, *flags),
    };
    out.extend_from_slice(&typ.to_be_bytes());
    out.extend_from_slice(&flags.to_be_bytes());
    out.extend_from_slice(&[0; 4]);
    match m {
        MultipartReply::Flow { stats, .. } => stats.iter().for_each(|s| s.encode(out)),
        MultipartReply::Table { stats, .. } => stats.iter().for_each(|s| s.encode(out)),
        MultipartReply::Other { body, .. } => out.extend_from_slice(body),
    }
}

fn decode_mp_reply(r: &mut Reader<'_>) -> Result<MultipartReply, DecodeError> {
    let (typ, flags) = (r.u16()?, r.u16()?);
    r.skip(4)?;
    let more = flags & 1 != 0;
    Ok(match typ {
        OFPMP_FLOW => {
            let mut stats = Vec::new();
            while r.remaining() > 0 {
                stats.push(FlowStats::decode(r)?);
            }
            MultipartReply::Flow { more, stats }
        }
        OFPMP_TABLE => {
            let mut stats = Vec::new();
            while r.remaining() > 0 {
                stats.push(TableStats::decode(r)?);
            }
            MultipartReply::Table { more, stats }
        }
        _ => MultipartReply::Other {
            typ,
            flags,
            body: r.rest().to_vec(),
        },
    })
}
