//! Conntrack clean-up after a provider leaves a service (kube-proxy does the same): the NAT
//! binding of a connection lives in conntrack, so without this a connection that picked a
//! provider just before the host applied its removal keeps it: a TCP SYN retransmitted to a dead
//! provider follows the same binding until it times out, and a UDP flow keeps its provider for
//! as long as it keeps sending.
//!
//! Deleted, for a removed provider of a service (VIP, port, transport): the entries whose original
//! destination is that VIP and port and whose reply comes from the provider, **UDP all, TCP only
//! those not yet assured** (the handshake not completed). An established connection to a
//! provider that was relabelled out (and still runs) is left to finish: the issue asks that
//! "established ones are untouched", and tearing down a live connection would be worse than the
//! window it closes. One to a provider that died fails on its own (reset or timeout).
//!
//! Hand-written ctnetlink (`NFNL_SUBSYS_CTNETLINK`): one `IPCTNL_MSG_CT_GET` dump of the tenant
//! namespace's table, then one `IPCTNL_MSG_CT_DELETE` per match with the dumped original tuple,
//! from a socket opened on a thread that entered the namespace.

use std::net::Ipv4Addr;
use std::path::Path;

use netlink_sys::Socket;

use super::super::policy::nfnl::NfnlError;

const NFNL_SUBSYS_CTNETLINK: u16 = 1;
const IPCTNL_MSG_CT_GET: u16 = 1;
const IPCTNL_MSG_CT_DELETE: u16 = 2;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_DUMP: u16 = 0x300;
const CTA_TUPLE_ORIG: u16 = 1;
const CTA_TUPLE_REPLY: u16 = 2;
const CTA_STATUS: u16 = 3;
const CTA_TUPLE_IP: u16 = 1;
const CTA_TUPLE_PROTO: u16 = 2;
const CTA_IP_V4_SRC: u16 = 1;
const CTA_IP_V4_DST: u16 = 2;
const CTA_PROTO_NUM: u16 = 1;
const CTA_PROTO_SRC_PORT: u16 = 2;
const CTA_PROTO_DST_PORT: u16 = 3;
const NLA_F_NESTED: u16 = 0x8000;
const IPS_ASSURED: u32 = 1 << 2;
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;

/// A provider gone from a service port: connections to `vip:port` (`proto`) answered by
/// `provider`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Gone {
    pub vip: Ipv4Addr,
    pub port: u16,
    /// IPPROTO_TCP or IPPROTO_UDP.
    pub proto: u8,
    pub provider: Ipv4Addr,
}

impl Gone {
    pub fn tcp(vip: Ipv4Addr, port: u16, provider: Ipv4Addr) -> Gone {
        Gone {
            vip,
            port,
            proto: IPPROTO_TCP,
            provider,
        }
    }

    pub fn udp(vip: Ipv4Addr, port: u16, provider: Ipv4Addr) -> Gone {
        Gone {
            vip,
            port,
            proto: IPPROTO_UDP,
            provider,
        }
    }
}

/// One conntrack entry as far as the clean-up needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    proto: u8,
    orig_dst: Option<Ipv4Addr>,
    orig_dport: Option<u16>,
    reply_src: Option<Ipv4Addr>,
    status: u32,
    /// The `CTA_TUPLE_ORIG` attribute as dumped (header included), sent back to delete.
    orig_attr: Vec<u8>,
}

impl Entry {
    fn doomed(&self, gone: &[Gone]) -> bool {
        let tcp_open = self.proto == IPPROTO_TCP && self.status & IPS_ASSURED == 0;
        (tcp_open || self.proto == IPPROTO_UDP)
            && gone.iter().any(|g| {
                g.proto == self.proto
                    && Some(g.vip) == self.orig_dst
                    && Some(g.port) == self.orig_dport
                    && Some(g.provider) == self.reply_src
            })
    }
}

/// Netlink attributes of `b`: (type without flags, whole attribute, payload).
fn attrs(mut b: &[u8]) -> Vec<(u16, &[u8], &[u8])> {
    let mut out = Vec::new();
    while b.len() >= 4 {
        let len = u16::from_ne_bytes([b[0], b[1]]) as usize;
        let kind = u16::from_ne_bytes([b[2], b[3]]) & 0x3fff;
        if len < 4 || len > b.len() {
            break;
        }
        out.push((kind, &b[..len], &b[4..len]));
        b = b.get((len + 3) & !3..).unwrap_or(&[]);
    }
    out
}

fn find(b: &[u8], kind: u16) -> Option<&[u8]> {
    attrs(b)
        .into_iter()
        .find(|(k, _, _)| *k == kind)
        .map(|(_, _, p)| p)
}

fn v4(p: &[u8]) -> Option<Ipv4Addr> {
    <[u8; 4]>::try_from(p).ok().map(Ipv4Addr::from)
}

fn be16(p: &[u8]) -> Option<u16> {
    <[u8; 2]>::try_from(p).ok().map(u16::from_be_bytes)
}

/// (src, dst, proto, sport, dport) of a tuple attribute's payload.
type Tuple = (
    Option<Ipv4Addr>,
    Option<Ipv4Addr>,
    Option<u8>,
    Option<u16>,
    Option<u16>,
);

fn tuple(p: &[u8]) -> Tuple {
    let ip = find(p, CTA_TUPLE_IP).unwrap_or(&[]);
    let pr = find(p, CTA_TUPLE_PROTO).unwrap_or(&[]);
    (
        find(ip, CTA_IP_V4_SRC).and_then(v4),
        find(ip, CTA_IP_V4_DST).and_then(v4),
        find(pr, CTA_PROTO_NUM).and_then(|x| x.first().copied()),
        find(pr, CTA_PROTO_SRC_PORT).and_then(be16),
        find(pr, CTA_PROTO_DST_PORT).and_then(be16),
    )
}

/// Entries of a dump answer (one datagram); `done` when it holds `NLMSG_DONE`.
fn parse_dump(buf: &[u8], out: &mut Vec<Entry>) -> Result<bool, NfnlError> {
    let mut rest = buf;
    while rest.len() >= 16 {
        let len = u32::from_ne_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let ty = u16::from_ne_bytes([rest[4], rest[5]]);
        if len < 16 || len > rest.len() {
            return Err(NfnlError::Answer(format!("bad message length {len}")));
        }
        let body = &rest[16..len];
        match ty {
            NLMSG_DONE => return Ok(true),
            NLMSG_ERROR => {
                let code = body
                    .get(..4)
                    .map(|c| i32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
                    .unwrap_or(0);
                if code != 0 {
                    return Err(NfnlError::Refused(std::io::Error::from_raw_os_error(-code)));
                }
            }
            _ if ty >> 8 == NFNL_SUBSYS_CTNETLINK && body.len() >= 4 => {
                let a = &body[4..];
                let orig = attrs(a).into_iter().find(|(k, _, _)| *k == CTA_TUPLE_ORIG);
                if let Some((_, whole, p)) = orig {
                    let (_, dst, proto, _, dport) = tuple(p);
                    let (rsrc, ..) = find(a, CTA_TUPLE_REPLY).map(tuple).unwrap_or_default();
                    out.push(Entry {
                        proto: proto.unwrap_or(0),
                        orig_dst: dst,
                        orig_dport: dport,
                        reply_src: rsrc,
                        status: find(a, CTA_STATUS)
                            .and_then(|s| <[u8; 4]>::try_from(s).ok())
                            .map(u32::from_be_bytes)
                            .unwrap_or(0),
                        orig_attr: whole.to_vec(),
                    });
                }
            }
            _ => {}
        }
        rest = rest.get((len + 3) & !3usize..).unwrap_or(&[]);
    }
    Ok(false)
}

fn message(kind: u16, flags: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
    let len = 16 + 4 + payload.len();
    let mut m = Vec::with_capacity(len);
    m.extend_from_slice(&(len as u32).to_ne_bytes());
    m.extend_from_slice(&((NFNL_SUBSYS_CTNETLINK << 8) | kind).to_ne_bytes());
    m.extend_from_slice(&flags.to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    // nfgenmsg: AF_INET, version 0, res_id 0.
    m.extend_from_slice(&[libc::AF_INET as u8, 0, 0, 0]);
    m.extend_from_slice(payload);
    m
}

/// The delete request for an entry (its original tuple, with the nested flag as dumped).
fn delete_message(e: &Entry, seq: u32) -> Vec<u8> {
    let mut attr = e.orig_attr.clone();
    if attr.len() >= 4 {
        let kind = u16::from_ne_bytes([attr[2], attr[3]]) | NLA_F_NESTED;
        attr[2..4].copy_from_slice(&kind.to_ne_bytes());
    }
    while !attr.len().is_multiple_of(4) {
        attr.push(0);
    }
    message(IPCTNL_MSG_CT_DELETE, NLM_F_REQUEST | NLM_F_ACK, seq, &attr)
}

fn recv(socket: &Socket, buf: &mut [u8]) -> Result<usize, NfnlError> {
    let n = socket
        .recv(&mut &mut buf[..], 0)
        .map_err(NfnlError::Refused)?
        .min(buf.len());
    if n == 0 {
        return Err(NfnlError::Answer("socket closed".into()));
    }
    Ok(n)
}

/// Deletes, in namespace `ns`, the conntrack entries of connections bound to a provider in
/// `gone` (see the module docs); how many.
pub fn forget_providers(ns: &Path, gone: &[Gone]) -> Result<usize, NfnlError> {
    if gone.is_empty() {
        return Ok(0);
    }
    let socket = crate::policy::nfnl::open_socket(ns, std::time::Duration::from_secs(5))?;
    socket
        .send(
            &message(IPCTNL_MSG_CT_GET, NLM_F_REQUEST | NLM_F_DUMP, 1, &[]),
            0,
        )
        .map_err(NfnlError::Refused)?;
    let mut buf = vec![0u8; 1 << 16];
    let mut entries = Vec::new();
    loop {
        let n = recv(&socket, &mut buf)?;
        if parse_dump(&buf[..n], &mut entries)? {
            break;
        }
    }
    let doomed: Vec<&Entry> = entries.iter().filter(|e| e.doomed(gone)).collect();
    let mut deleted = 0;
    for (i, e) in doomed.iter().enumerate() {
        socket
            .send(&delete_message(e, 2 + i as u32), 0)
            .map_err(NfnlError::Refused)?;
        // The ack: ENOENT means the entry went meanwhile (fine).
        let mut ignore = Vec::new();
        let n = recv(&socket, &mut buf)?;
        match parse_dump(&buf[..n], &mut ignore) {
            Ok(_) => deleted += 1,
            Err(NfnlError::Refused(e)) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(kind: u16, payload: &[u8]) -> Vec<u8> {
        let mut a = Vec::new();
        a.extend_from_slice(&((4 + payload.len()) as u16).to_ne_bytes());
        a.extend_from_slice(&kind.to_ne_bytes());
        a.extend_from_slice(payload);
        while a.len() % 4 != 0 {
            a.push(0);
        }
        a
    }

    fn tuple_attr(kind: u16, src: [u8; 4], dst: [u8; 4], proto: u8, sp: u16, dp: u16) -> Vec<u8> {
        let ip = [attr(CTA_IP_V4_SRC, &src), attr(CTA_IP_V4_DST, &dst)].concat();
        let pr = [
            attr(CTA_PROTO_NUM, &[proto]),
            attr(CTA_PROTO_SRC_PORT, &sp.to_be_bytes()),
            attr(CTA_PROTO_DST_PORT, &dp.to_be_bytes()),
        ]
        .concat();
        attr(
            kind | NLA_F_NESTED,
            &[
                attr(CTA_TUPLE_IP | NLA_F_NESTED, &ip),
                attr(CTA_TUPLE_PROTO | NLA_F_NESTED, &pr),
            ]
            .concat(),
        )
    }

    #[test]
    fn dump_parses_and_only_open_tcp_and_udp_to_gone_providers_are_doomed() {
        let vip = [10, 1, 0, 100];
        let entry = |proto: u8, provider: [u8; 4], status: u32| {
            let payload = [
                tuple_attr(CTA_TUPLE_ORIG, [10, 1, 0, 9], vip, proto, 40000, 80),
                tuple_attr(CTA_TUPLE_REPLY, provider, [10, 1, 0, 9], proto, 8080, 40000),
                attr(CTA_STATUS, &status.to_be_bytes()),
            ]
            .concat();
            message(0, 0, 1, &payload)
        };
        let mut buf = [
            entry(IPPROTO_TCP, [10, 1, 0, 2], 0), // half-open to the gone one
            entry(IPPROTO_TCP, [10, 1, 0, 2], IPS_ASSURED), // established: kept
            entry(IPPROTO_TCP, [10, 1, 0, 3], 0), // another provider
            entry(IPPROTO_UDP, [10, 1, 0, 2], IPS_ASSURED), // UDP: always
        ]
        .concat();
        let mut got = Vec::new();
        assert!(!parse_dump(&buf, &mut got).expect("parse"));
        assert_eq!(got.len(), 4);
        assert_eq!(got[0].orig_dst, Some(Ipv4Addr::from(vip)));
        assert_eq!(got[0].orig_dport, Some(80));
        assert_eq!(got[0].reply_src, Some(Ipv4Addr::new(10, 1, 0, 2)));
        let gone = [
            Gone::tcp(vip.into(), 80, [10, 1, 0, 2].into()),
            Gone::udp(vip.into(), 80, [10, 1, 0, 2].into()),
        ];
        let doomed: Vec<bool> = got.iter().map(|e| e.doomed(&gone)).collect();
        assert_eq!(doomed, [true, false, false, true]);
        // The delete carries the original tuple.
        let del = delete_message(&got[0], 7);
        assert_eq!(&del[20..], &got[0].orig_attr[..]);
        // DONE ends the dump; garbage never panics.
        let mut done = vec![0u8; 20];
        done[..4].copy_from_slice(&20u32.to_ne_bytes());
        done[4..6].copy_from_slice(&NLMSG_DONE.to_ne_bytes());
        buf.extend_from_slice(&done);
        assert!(parse_dump(&buf, &mut Vec::new()).expect("parse"));
        for cut in 0..buf.len() {
            let _ = parse_dump(&buf[..cut], &mut Vec::new());
        }
    }
}
