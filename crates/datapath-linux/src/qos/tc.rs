//! A `tbf` root qdisc on one link, over netlink. netlink-packet-route 0.34 knows no tbf
//! options, so they are built (and read back) as raw attributes: `TCA_TBF_PARMS` (struct
//! `tc_tbf_qopt`), `TCA_TBF_RATE64` above 4 GB/s and `TCA_TBF_BURST` (the burst in bytes, so no
//! rate table or tick arithmetic is needed: the rate spec says link layer "ethernet").
//!
//! A tbf root is what this module makes and removes; it never removes a qdisc of another kind.

use std::collections::HashMap;

use futures::{StreamExt, TryStreamExt};
use netlink_packet_route::tc::{TcAttribute, TcHandle, TcMessage, TcOption};
use netlink_packet_route::RouteNetlinkMessage;
use rtnetlink::packet_core::{
    DefaultNla, Emitable, NetlinkMessage, NetlinkPayload, Nla, NlaBuffer, NlasIterator, NLM_F_ACK,
    NLM_F_CREATE, NLM_F_REPLACE, NLM_F_REQUEST,
};

use contiv_datapath::RateLimit;

use crate::error::LinuxError;
use crate::nl::Nl;

const TCA_OPTIONS: u16 = 2;
const TCA_TBF_PARMS: u16 = 1;
const TCA_TBF_RATE64: u16 = 4;
const TCA_TBF_BURST: u16 = 6;
/// `TC_LINKLAYER_ETHERNET`: the kernel then needs no rate table.
const LINKLAYER_ETHERNET: u8 = 1;
/// How long a full queue takes to drain at the rate (what `tc ... latency` sets): packets
/// beyond it are dropped, as a real link of that speed would.
const LATENCY_MS: u64 = 100;
/// The handle of our tbf (`c7f0:`), so a dump tells it from others at a glance.
pub const HANDLE_MAJOR: u16 = 0xc7f0;

/// The tbf parameters the kernel is given (and reports back: rate and queue limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tbf {
    pub rate_bytes: u64,
    pub burst: u32,
    /// Queue limit in bytes.
    pub limit: u32,
}

impl Tbf {
    pub fn from_limit(l: &RateLimit) -> Tbf {
        let rate_bytes = (l.bits_per_sec / 8).max(1);
        let queue = rate_bytes.saturating_mul(LATENCY_MS) / 1000;
        let limit = queue
            .saturating_add(u64::from(l.burst_bytes))
            .max(u64::from(l.burst_bytes) + 3 * 1514);
        Tbf {
            rate_bytes,
            burst: l.burst_bytes,
            limit: u32::try_from(limit).unwrap_or(u32::MAX),
        }
    }

    /// `struct tc_tbf_qopt` (native endian): rate spec, peak rate spec (zero), limit, buffer, mtu.
    fn parms(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(36);
        b.push(0); // cell_log
        b.push(LINKLAYER_ETHERNET);
        b.extend_from_slice(&0u16.to_ne_bytes()); // overhead
        b.extend_from_slice(&0i16.to_ne_bytes()); // cell_align
        b.extend_from_slice(&0u16.to_ne_bytes()); // mpu
        let rate32 = u32::try_from(self.rate_bytes).unwrap_or(u32::MAX);
        b.extend_from_slice(&rate32.to_ne_bytes());
        b.extend_from_slice(&[0u8; 12]); // no peak rate
        b.extend_from_slice(&self.limit.to_ne_bytes());
        b.extend_from_slice(&0u32.to_ne_bytes()); // buffer: TCA_TBF_BURST instead
        b.extend_from_slice(&0u32.to_ne_bytes()); // mtu: only for a peak rate
        b
    }

    fn options(&self) -> Vec<TcOption> {
        let mut o = vec![TcOption::Other(DefaultNla::new(
            TCA_TBF_PARMS,
            self.parms(),
        ))];
        if self.rate_bytes >= 1 << 32 {
            o.push(TcOption::Other(DefaultNla::new(
                TCA_TBF_RATE64,
                self.rate_bytes.to_ne_bytes().to_vec(),
            )));
        }
        o.push(TcOption::Other(DefaultNla::new(
            TCA_TBF_BURST,
            self.burst.to_ne_bytes().to_vec(),
        )));
        o
    }

    /// Whether the kernel's tbf (rate and limit as it reports them) is this one.
    pub fn matches(&self, found: &RootQdisc) -> bool {
        found.kind == "tbf" && found.rate_bytes == self.rate_bytes && found.limit == self.limit
    }
}

/// The root qdisc of a link as a dump reports it (rate and limit only for a tbf).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RootQdisc {
    pub kind: String,
    pub handle_major: u16,
    pub rate_bytes: u64,
    pub limit: u32,
}

/// Reads rate and limit from a tbf's `TCA_OPTIONS` payload.
fn parse_tbf(options: &[u8], q: &mut RootQdisc) {
    for nla in NlasIterator::new(options).flatten() {
        let v = nla.value();
        let u32_at = |o: usize| {
            v.get(o..o + 4)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_ne_bytes)
        };
        match nla.kind() {
            TCA_TBF_PARMS => {
                q.rate_bytes = q.rate_bytes.max(u64::from(u32_at(8).unwrap_or(0)));
                q.limit = u32_at(24).unwrap_or(0);
            }
            TCA_TBF_RATE64 => {
                if let Some(r) = v.get(..8).and_then(|b| b.try_into().ok()) {
                    q.rate_bytes = u64::from_ne_bytes(r);
                }
            }
            _ => {}
        }
    }
}

fn root_of(m: &TcMessage) -> RootQdisc {
    let mut q = RootQdisc {
        handle_major: m.header.handle.major,
        ..Default::default()
    };
    for a in &m.attributes {
        match a {
            TcAttribute::Kind(k) => q.kind = k.clone(),
            TcAttribute::Options(opts) => {
                for o in opts {
                    // Unknown kinds come as one attribute: TCA_OPTIONS itself.
                    if let TcOption::Other(nla) = o {
                        if nla.kind() == TCA_OPTIONS {
                            let mut raw = vec![0u8; nla.buffer_len()];
                            nla.emit(&mut raw);
                            let buf = NlaBuffer::new(&raw[..]);
                            parse_tbf(buf.value(), &mut q);
                        }
                    }
                }
            }
            _ => {}
        }
    }
    q
}

fn nl_err(nl: &Nl, op: &'static str, object: String, e: rtnetlink::Error) -> LinuxError {
    LinuxError::Netlink {
        op,
        object,
        ns: nl.ns.clone(),
        source: Box::new(e),
    }
}

/// The root qdisc of every link of the namespace, by interface index (one dump).
pub async fn root_qdiscs(nl: &Nl) -> Result<HashMap<u32, RootQdisc>, LinuxError> {
    let msgs: Vec<TcMessage> =
        nl.h.qdisc()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(|e| nl_err(nl, "list", "qdiscs".into(), e))?;
    Ok(msgs
        .iter()
        .filter(|m| m.header.parent == TcHandle::ROOT)
        .filter_map(|m| Some((u32::try_from(m.header.index).ok()?, root_of(m))))
        .collect())
}

/// The root qdisc of link `index` (`None`: the kernel reports none for it).
pub async fn root_qdisc(nl: &Nl, index: u32) -> Result<Option<RootQdisc>, LinuxError> {
    Ok(root_qdiscs(nl).await?.remove(&index))
}

/// Sends one qdisc request and waits for its acknowledgement.
async fn send(
    nl: &Nl,
    what: String,
    msg: RouteNetlinkMessage,
    flags: u16,
) -> Result<(), LinuxError> {
    let mut req = NetlinkMessage::from(msg);
    req.header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
    let mut h = nl.h.clone();
    let op = if flags & NLM_F_CREATE != 0 {
        "replace qdisc"
    } else {
        "delete qdisc"
    };
    let mut answers = h
        .request(req)
        .map_err(|e| nl_err(nl, op, what.clone(), e))?;
    while let Some(m) = answers.next().await {
        if let NetlinkPayload::Error(e) = m.payload {
            if e.code.is_some() {
                return Err(nl_err(nl, op, what, rtnetlink::Error::NetlinkError(e)));
            }
        }
    }
    Ok(())
}

fn root_msg(index: u32) -> TcMessage {
    let mut m = TcMessage::with_index(index as i32);
    m.header.parent = TcHandle::ROOT;
    m.header.handle = TcHandle {
        major: HANDLE_MAJOR,
        minor: 0,
    };
    m
}

/// Makes `ifname`'s (index `index`) root qdisc `want`, or removes our tbf when `want` is
/// `None`. Returns whether the kernel was changed. A tbf already there is changed in place
/// (queued packets stay).
pub async fn converge(
    nl: &Nl,
    ifname: &str,
    index: u32,
    want: Option<&Tbf>,
) -> Result<bool, LinuxError> {
    let found = root_qdisc(nl, index).await?;
    let what = format!("tbf on {ifname}");
    match (want, found) {
        (Some(t), Some(f)) if t.matches(&f) => Ok(false),
        (Some(t), _) => {
            let mut m = root_msg(index);
            m.attributes.push(TcAttribute::Kind("tbf".into()));
            m.attributes.push(TcAttribute::Options(t.options()));
            let flags = NLM_F_CREATE | NLM_F_REPLACE;
            send(nl, what, RouteNetlinkMessage::NewQueueDiscipline(m), flags).await?;
            Ok(true)
        }
        (None, Some(f)) if f.kind == "tbf" => {
            let mut m = root_msg(index);
            m.header.handle = TcHandle {
                major: f.handle_major,
                minor: 0,
            };
            send(nl, what, RouteNetlinkMessage::DelQueueDiscipline(m), 0).await?;
            Ok(true)
        }
        (None, _) => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parms_layout_and_limit() {
        let t = Tbf::from_limit(&RateLimit::new(10_000_000, None));
        assert_eq!(t.rate_bytes, 1_250_000);
        assert_eq!(t.burst, 12_500);
        assert_eq!(t.limit, 125_000 + 12_500);
        let p = t.parms();
        assert_eq!(p.len(), 36);
        assert_eq!(p[1], LINKLAYER_ETHERNET);
        assert_eq!(u32::from_ne_bytes(p[8..12].try_into().unwrap()), 1_250_000);
        assert_eq!(u32::from_ne_bytes(p[24..28].try_into().unwrap()), t.limit);
        let slow = Tbf::from_limit(&RateLimit::new(10_000, None));
        assert_eq!(slow.limit, 4096 + 3 * 1514, "at least a few frames queued");
        let fast = Tbf::from_limit(&RateLimit::new(100_000_000_000, None));
        assert_eq!(fast.options().len(), 3, "rate64 above 4 GB/s");
    }

    #[test]
    fn options_read_back() {
        let t = Tbf::from_limit(&RateLimit::new(40_000_000_000, Some(1 << 20)));
        let nested: Vec<u8> = {
            let opts = t.options();
            let mut b = vec![0u8; opts.as_slice().buffer_len()];
            opts.as_slice().emit(&mut b);
            b
        };
        let mut q = RootQdisc {
            kind: "tbf".into(),
            ..Default::default()
        };
        parse_tbf(&nested, &mut q);
        assert!(t.matches(&q), "{q:?} vs {t:?}");
    }
}
