//! Set and map element changes sent to nftables over netlink, as one batch (one transaction),
//! without the `nft` process. Used by the policy driver (`inet contiv`, IPv4 keys) and by the
//! source guard (`crate::guard`: one element in tables of three families per batch, keys that
//! are concatenations). `nft` reads the whole table back from the kernel before it applies
//! even a one-element batch (31 ms on a 10,000-rule table here); endpoint churn only moves
//! elements, and this path costs a socket round trip. No maintained crate encodes these messages
//! at this scale (see CRATES.md), so the few we need are written here: [`encode`] is pure, the
//! socket part is [`send`].
//!
//! Message shapes (linux `nf_tables.h`, `nfnetlink.h`): a batch is `NFNL_MSG_BATCH_BEGIN`, one
//! `NFT_MSG_{NEW,DEL}SETELEM` per set, `NFNL_MSG_BATCH_END`; each element is a nested
//! `NFTA_LIST_ELEM` with its key (`NFTA_DATA_VALUE`, the IPv4 address in network order) and, in a
//! verdict map, its data (`NFTA_DATA_VERDICT`: code `NFT_JUMP`, chain name).

use std::fs::File;
use std::net::Ipv4Addr;
use std::path::Path;

use netlink_sys::{protocols::NETLINK_NETFILTER, Socket};

const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;
const NFT_MSG_NEWSETELEM: u16 = 12;
const NFT_MSG_DELSETELEM: u16 = 14;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_CREATE: u16 = 0x400;
const NLA_F_NESTED: u16 = 0x8000;
const NFTA_SET_ELEM_LIST_TABLE: u16 = 1;
const NFTA_SET_ELEM_LIST_SET: u16 = 2;
const NFTA_SET_ELEM_LIST_ELEMENTS: u16 = 3;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_SET_ELEM_KEY: u16 = 1;
const NFTA_SET_ELEM_DATA: u16 = 2;
const NFTA_DATA_VALUE: u16 = 1;
const NFTA_DATA_VERDICT: u16 = 2;
const NFTA_VERDICT_CODE: u16 = 1;
const NFTA_VERDICT_CHAIN: u16 = 2;
const NFT_JUMP: i32 = -3;
/// Elements per message: a verdict-map element is ~76 bytes, far below the 64 KiB attribute limit.
const MAX_ELEMS_PER_MESSAGE: usize = 256;
/// How long `send` waits for the kernel's acknowledgements.
const ACK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The nftables family of a table (`NFPROTO_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Inet,
    Arp,
    Bridge,
}

impl Family {
    fn proto(self) -> u8 {
        match self {
            Family::Inet => 1,
            Family::Arp => 3,
            Family::Bridge => 7,
        }
    }
}

/// A set element's key as nftables holds it: the bytes of each field of the set's type, each
/// padded to 4 bytes (a concatenation is stored field after field, register-aligned).
pub trait ElemKey {
    fn key_bytes(&self) -> Vec<u8>;
}

impl ElemKey for Ipv4Addr {
    /// `ipv4_addr`: the address in network order.
    fn key_bytes(&self) -> Vec<u8> {
        self.octets().to_vec()
    }
}

/// Add or delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Add,
    Delete,
}

/// Elements to add to or delete from one set or verdict map of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElemChange<K = Ipv4Addr> {
    pub set: String,
    pub op: Op,
    /// Key (an address for the policy table), and for a verdict map the chain to jump to
    /// (ignored by deletes).
    pub elems: Vec<(K, Option<String>)>,
}

/// The element changes of one table of a batch.
#[derive(Debug, Clone, Copy)]
pub struct TableChanges<'a, K> {
    pub family: Family,
    pub table: &'a str,
    pub changes: &'a [ElemChange<K>],
}

/// Why the batch was not applied.
#[derive(Debug, thiserror::Error)]
pub enum NfnlError {
    #[error("netlink socket in {ns}: {source}")]
    Socket {
        ns: String,
        #[source]
        source: std::io::Error,
    },
    #[error("nftables refused the element batch: {0}")]
    Refused(std::io::Error),
    #[error("nftables answer: {0}")]
    Answer(String),
}

/// Appends a netlink attribute (header, payload, padding to 4 bytes).
fn attr(buf: &mut Vec<u8>, kind: u16, payload: &[u8]) {
    let len = 4 + payload.len();
    buf.extend_from_slice(&(len as u16).to_ne_bytes());
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(payload);
    buf.resize(buf.len() + (4 - len % 4) % 4, 0);
}

/// Appends a nested attribute built by `f`.
fn nested(buf: &mut Vec<u8>, kind: u16, f: impl FnOnce(&mut Vec<u8>)) {
    let mut inner = Vec::new();
    f(&mut inner);
    attr(buf, kind | NLA_F_NESTED, &inner);
}

fn c_string(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

/// One netlink message: header, `nfgenmsg`, attributes.
fn message(
    out: &mut Vec<u8>,
    kind: u16,
    flags: u16,
    seq: u32,
    family: u8,
    res_id: u16,
    attrs: &[u8],
) {
    let len = 16 + 4 + attrs.len();
    out.extend_from_slice(&(len as u32).to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(&flags.to_ne_bytes());
    out.extend_from_slice(&seq.to_ne_bytes());
    out.extend_from_slice(&0u32.to_ne_bytes());
    out.push(family);
    out.push(0); // NFNETLINK_V0
    out.extend_from_slice(&res_id.to_be_bytes());
    out.extend_from_slice(attrs);
}

/// The batch for `changes` to table `inet <table>`: bytes to send, and the sequence numbers of
/// the messages that will be acknowledged. Pure.
pub fn encode(table: &str, changes: &[ElemChange], first_seq: u32) -> (Vec<u8>, Vec<u32>) {
    let t = TableChanges {
        family: Family::Inet,
        table,
        changes,
    };
    encode_tables(&[t], first_seq)
}

/// The batch for changes to several tables (of any family), one transaction. Pure.
pub fn encode_tables<K: ElemKey>(
    tables: &[TableChanges<'_, K>],
    first_seq: u32,
) -> (Vec<u8>, Vec<u32>) {
    let mut out = Vec::new();
    let mut seq = first_seq;
    message(
        &mut out,
        NFNL_MSG_BATCH_BEGIN,
        NLM_F_REQUEST,
        seq,
        0,
        NFNL_SUBSYS_NFTABLES,
        &[],
    );
    let mut acked = Vec::new();
    // An attribute's length is 16 bits: a long element list goes in several messages of the
    // same batch (still one transaction).
    let chunks = tables.iter().flat_map(|t| {
        t.changes.iter().flat_map(move |c| {
            c.elems
                .chunks(MAX_ELEMS_PER_MESSAGE)
                .map(move |elems| (t, c, elems))
        })
    });
    for (t, c, elems) in chunks {
        seq += 1;
        let mut attrs = Vec::new();
        attr(&mut attrs, NFTA_SET_ELEM_LIST_TABLE, &c_string(t.table));
        attr(&mut attrs, NFTA_SET_ELEM_LIST_SET, &c_string(&c.set));
        nested(&mut attrs, NFTA_SET_ELEM_LIST_ELEMENTS, |list| {
            for (key, jump) in elems {
                nested(list, NFTA_LIST_ELEM, |e| {
                    nested(e, NFTA_SET_ELEM_KEY, |k| {
                        attr(k, NFTA_DATA_VALUE, &key.key_bytes())
                    });
                    if let (Op::Add, Some(chain)) = (c.op, jump) {
                        nested(e, NFTA_SET_ELEM_DATA, |d| {
                            nested(d, NFTA_DATA_VERDICT, |v| {
                                attr(v, NFTA_VERDICT_CODE, &NFT_JUMP.to_be_bytes());
                                attr(v, NFTA_VERDICT_CHAIN, &c_string(chain));
                            })
                        });
                    }
                });
            }
        });
        let (kind, flags) = match c.op {
            Op::Add => (NFT_MSG_NEWSETELEM, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_ACK),
            Op::Delete => (NFT_MSG_DELSETELEM, NLM_F_REQUEST | NLM_F_ACK),
        };
        message(
            &mut out,
            (NFNL_SUBSYS_NFTABLES << 8) | kind,
            flags,
            seq,
            t.family.proto(),
            0,
            &attrs,
        );
        acked.push(seq);
    }
    seq += 1;
    message(
        &mut out,
        NFNL_MSG_BATCH_END,
        NLM_F_REQUEST,
        seq,
        0,
        NFNL_SUBSYS_NFTABLES,
        &[],
    );
    (out, acked)
}

/// Reads the `NLMSG_ERROR` answers in `buf`: the acknowledged sequence numbers, or the first
/// error. Never panics on any input.
pub fn parse_acks(buf: &[u8]) -> Result<Vec<u32>, NfnlError> {
    let mut acked = Vec::new();
    let mut rest = buf;
    while rest.len() >= 16 {
        let word =
            |at: usize| u32::from_ne_bytes([rest[at], rest[at + 1], rest[at + 2], rest[at + 3]]);
        let len = word(0) as usize;
        if len < 16 || len > rest.len() {
            return Err(NfnlError::Answer(format!(
                "message length {len} of {}",
                rest.len()
            )));
        }
        let kind = u16::from_ne_bytes([rest[4], rest[5]]);
        let seq = word(8);
        if kind == NLMSG_ERROR {
            if len < 20 {
                return Err(NfnlError::Answer("short error message".into()));
            }
            let code = i32::from_ne_bytes([rest[16], rest[17], rest[18], rest[19]]);
            if code != 0 {
                return Err(NfnlError::Refused(std::io::Error::from_raw_os_error(-code)));
            }
            acked.push(seq);
        }
        rest = rest.get((len + 3) & !3usize..).unwrap_or(&[]);
    }
    Ok(acked)
}

fn set_receive_timeout(socket: &Socket, d: std::time::Duration) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let tv = libc::timeval {
        tv_sec: d.as_secs() as libc::time_t,
        tv_usec: d.subsec_micros() as libc::suseconds_t,
    };
    // SAFETY: setsockopt on a descriptor this function's caller owns, with a valid timeval.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            &tv as *const libc::timeval as *const libc::c_void,
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// A netfilter netlink socket in namespace `ns` (opened by a thread that entered it: a netlink
/// socket belongs to the namespace of the thread that opens it), receiving with `timeout`.
pub(crate) fn open_socket(ns: &Path, timeout: std::time::Duration) -> Result<Socket, NfnlError> {
    let sock_err = |source: std::io::Error| NfnlError::Socket {
        ns: ns.display().to_string(),
        source,
    };
    let fd = File::open(ns).map_err(sock_err)?;
    let socket = std::thread::scope(|s| {
        s.spawn(|| -> std::io::Result<Socket> {
            nix::sched::setns(&fd, nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(std::io::Error::from)?;
            let mut sock = Socket::new(NETLINK_NETFILTER)?;
            sock.bind_auto()?;
            Ok(sock)
        })
        .join()
        .unwrap_or_else(|_| Err(std::io::Error::other("socket thread panicked")))
    })
    .map_err(sock_err)?;
    set_receive_timeout(&socket, timeout).map_err(sock_err)?;
    Ok(socket)
}

/// Sends `changes` to table `inet <table>` in namespace `ns` as one transaction and waits for
/// every acknowledgement (at most [`ACK_TIMEOUT`]).
pub fn send(ns: &Path, table: &str, changes: &[ElemChange]) -> Result<(), NfnlError> {
    let t = TableChanges {
        family: Family::Inet,
        table,
        changes,
    };
    send_tables(ns, &[t])
}

/// Sends changes to several tables in namespace `ns` as one transaction (all or nothing) and
/// waits for every acknowledgement (at most [`ACK_TIMEOUT`]).
pub fn send_tables<K: ElemKey>(ns: &Path, tables: &[TableChanges<'_, K>]) -> Result<(), NfnlError> {
    let socket = open_socket(ns, ACK_TIMEOUT)?;
    let (bytes, mut waiting) = encode_tables(tables, 1);
    socket.send(&bytes, 0).map_err(NfnlError::Refused)?;
    let mut buf = vec![0u8; 1 << 16];
    while !waiting.is_empty() {
        let n = socket
            .recv(&mut &mut buf[..], 0)
            .map_err(NfnlError::Refused)?
            .min(buf.len());
        if n == 0 {
            return Err(NfnlError::Answer("socket closed".into()));
        }
        let acked = parse_acks(&buf[..n])?;
        waiting.retain(|s| !acked.contains(s));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_a_batch_of_element_changes() {
        let changes = [
            ElemChange {
                set: "g_web".into(),
                op: Op::Delete,
                elems: vec![(Ipv4Addr::new(10, 1, 0, 3), None)],
            },
            ElemChange {
                set: "dst_groups".into(),
                op: Op::Add,
                elems: vec![(Ipv4Addr::new(10, 1, 0, 6), Some("in_db".into()))],
            },
            ElemChange {
                set: "empty".into(),
                op: Op::Add,
                elems: vec![],
            },
        ];
        let (bytes, acked) = encode("contiv", &changes, 7);
        assert_eq!(
            acked,
            [8, 9],
            "one acknowledged message per non-empty change"
        );
        // begin (20) + delete + add + end (20), every message 4-byte aligned.
        let mut at = 0;
        let mut kinds = Vec::new();
        while at < bytes.len() {
            let len = u32::from_ne_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
            assert_eq!(len % 4, 0);
            kinds.push(u16::from_ne_bytes(
                bytes[at + 4..at + 6].try_into().unwrap(),
            ));
            at += len;
        }
        assert_eq!(at, bytes.len());
        assert_eq!(kinds, [0x10, (10 << 8) | 14, (10 << 8) | 12, 0x11]);
        // The address in network order, the jump code big-endian, names NUL-terminated.
        let find = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
        assert!(find(&[10, 1, 0, 6]));
        assert!(find(&(-3i32).to_be_bytes()));
        assert!(find(b"in_db\0"));
        assert!(find(b"contiv\0"));
    }

    #[test]
    fn encodes_tables_of_several_families_with_any_key() {
        struct Raw(Vec<u8>);
        impl ElemKey for Raw {
            fn key_bytes(&self) -> Vec<u8> {
                self.0.clone()
            }
        }
        let key = b"ctve0123456789\0\0\x02\x00\x0a\x01\x00\x02\0\0\x0a\x01\x00\x02";
        let change = [ElemChange {
            set: "allowed".into(),
            op: Op::Add,
            elems: vec![(Raw(key.to_vec()), None)],
        }];
        let tables = [Family::Bridge, Family::Arp].map(|family| TableChanges {
            family,
            table: "contiv_guard",
            changes: &change,
        });
        let (bytes, acked) = encode_tables(&tables, 1);
        assert_eq!(acked, [2, 3]);
        // nfgenmsg family byte (offset 16 of each message) of the two element messages.
        let first = u32::from_ne_bytes(bytes[0..4].try_into().unwrap()) as usize;
        let second =
            first + u32::from_ne_bytes(bytes[first..first + 4].try_into().unwrap()) as usize;
        assert_eq!((bytes[first + 16], bytes[second + 16]), (7, 3));
        assert_eq!(bytes.windows(key.len()).filter(|w| w == key).count(), 2);
    }

    #[test]
    fn acks_parse_and_garbage_never_panics() {
        let mut ok = Vec::new();
        for seq in [8u32, 9] {
            ok.extend_from_slice(&36u32.to_ne_bytes());
            ok.extend_from_slice(&NLMSG_ERROR.to_ne_bytes());
            ok.extend_from_slice(&0u16.to_ne_bytes());
            ok.extend_from_slice(&seq.to_ne_bytes());
            ok.extend_from_slice(&0u32.to_ne_bytes());
            ok.extend_from_slice(&0i32.to_ne_bytes());
            ok.extend_from_slice(&[0u8; 16]);
        }
        assert_eq!(parse_acks(&ok).expect("acks"), [8, 9]);
        let mut refused = ok[..36].to_vec();
        refused[16..20].copy_from_slice(&(-2i32).to_ne_bytes());
        assert!(matches!(parse_acks(&refused), Err(NfnlError::Refused(_))));
        for cut in 0..ok.len() {
            let _ = parse_acks(&ok[..cut]);
        }
        // A length whose 4-byte alignment runs past the end.
        let mut odd = ok[..36].to_vec();
        odd[0..4].copy_from_slice(&37u32.to_ne_bytes());
        odd.push(0);
        let _ = parse_acks(&odd);
        let _ = parse_acks(&[0xff; 40]);
        assert!(parse_acks(&[1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]).is_err());
    }
}
