//! The DNS request handler hickory-server runs for one tenant: answers from the shared
//! [`SharedTable`] (read on every query, so a table swapped in is in force at once), misses
//! forwarded to the host's resolvers ([`Forwarder`]).

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_server::net::xfer::Protocol;
use hickory_server::proto::op::{Edns, Header, HeaderCounts, Message, Metadata, OpCode};
use hickory_server::proto::op::{MessageType, ResponseCode};
use hickory_server::proto::rr::{rdata::A, Name, RData, Record, RecordType};
use hickory_server::proto::serialize::binary::BinEncoder;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::names::{Answer, QType, SharedTable, TTL};

/// How long one upstream resolver gets to answer a forwarded query.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);
/// Bytes of a UDP answer besides its records: header, question (name + type + class), OPT.
const FIXED_OVERHEAD: usize = 12 + 4 + 11;
/// Bytes of one A record whose owner name is a compression pointer.
const A_RECORD: usize = 16;

/// Forwards queries the agent does not own to the host's resolvers, in order, the first
/// answer winning. Sockets are opened per query in the agent's own namespace (the host's).
#[derive(Debug, Clone)]
pub struct Forwarder {
    upstreams: Arc<[SocketAddr]>,
}

impl Forwarder {
    pub fn new(upstreams: Vec<SocketAddr>) -> Self {
        Forwarder {
            upstreams: upstreams.into(),
        }
    }

    /// The upstream's answer to the raw query `raw` (same id): over UDP, and again over TCP
    /// when the answer was truncated and the client asked over TCP (`tcp`).
    async fn forward(&self, raw: &[u8], tcp: bool) -> Option<Message> {
        for up in self.upstreams.iter() {
            let once = async {
                match forward_udp(*up, raw).await {
                    Ok(m) if tcp && m.metadata.truncation => forward_tcp(*up, raw).await,
                    other => other,
                }
            };
            match tokio::time::timeout(UPSTREAM_TIMEOUT, once).await {
                Ok(Ok(m)) => return Some(m),
                Ok(Err(e)) => tracing::debug!(upstream = %up, "dns forward: {e}"),
                Err(_) => tracing::debug!(upstream = %up, "dns forward: timed out"),
            }
        }
        None
    }
}

fn bad(msg: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg.to_string())
}

async fn forward_udp(up: SocketAddr, raw: &[u8]) -> std::io::Result<Message> {
    let any: SocketAddr = match up {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let sock = tokio::net::UdpSocket::bind(any).await?;
    sock.connect(up).await?;
    sock.send(raw).await?;
    let mut buf = vec![0u8; 65535];
    loop {
        let n = sock.recv(&mut buf).await?;
        // Only the reply to this query (same id) counts.
        if n >= 2 && buf[..2] == raw[..2] {
            return Message::from_vec(&buf[..n]).map_err(bad);
        }
    }
}

async fn forward_tcp(up: SocketAddr, raw: &[u8]) -> std::io::Result<Message> {
    let mut s = tokio::net::TcpStream::connect(up).await?;
    let len = u16::try_from(raw.len()).map_err(bad)?;
    let mut out = Vec::with_capacity(raw.len() + 2);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(raw);
    s.write_all(&out).await?;
    let n = s.read_u16().await? as usize;
    let mut buf = vec![0u8; n];
    s.read_exact(&mut buf).await?;
    Message::from_vec(&buf).map_err(bad)
}

/// hickory-server's handler for one tenant's listeners (cheap to clone: shared table).
#[derive(Clone)]
pub struct TenantHandler {
    pub tenant: String,
    pub table: Arc<SharedTable>,
    pub forwarder: Forwarder,
}

fn info_of(metadata: Metadata) -> ResponseInfo {
    ResponseInfo::from(Header {
        metadata,
        counts: HeaderCounts::default(),
    })
}

/// The EDNS of an answer to a request that had one.
fn response_edns(req: Option<&Edns>) -> Option<Edns> {
    req.map(|e| {
        let mut out = Edns::new();
        out.set_max_payload(e.max_payload().max(512));
        out
    })
}

/// How many A records fit in a UDP answer of at most `max` bytes to a question of `qname_len`.
fn udp_fit(max: usize, qname_len: usize) -> usize {
    max.saturating_sub(FIXED_OVERHEAD + qname_len) / A_RECORD
}

/// What to answer a request with.
enum Reply {
    /// Answered here: the header and the answer records.
    Local(Metadata, Vec<Record>),
    /// Ask the upstream resolvers.
    Forward,
}

/// An upstream's answer, re-addressed to the client.
struct Upstreamed(Message);

impl TenantHandler {
    /// The answer to `request` from the table (`udp_max`: the size a UDP answer must fit in).
    fn decide(&self, request: &Request, udp_max: Option<usize>) -> Reply {
        let mut md = Metadata::response_from_request(&request.metadata);
        md.recursion_available = true;
        if request.metadata.op_code != OpCode::Query
            || request.metadata.message_type != MessageType::Query
        {
            md.response_code = ResponseCode::NotImp;
            return Reply::Local(md, Vec::new());
        }
        let [query] = request.queries.queries() else {
            md.response_code = ResponseCode::FormErr;
            return Reply::Local(md, Vec::new());
        };
        let qtype = match query.query_type() {
            RecordType::A | RecordType::ANY => QType::A,
            _ => QType::Other,
        };
        let answer = self
            .table
            .get()
            .resolve(&self.tenant, &query.name().to_string(), qtype);
        match answer {
            Answer::Records(addrs) => {
                md.authoritative = true;
                let name: Name = query.original().name().clone();
                let mut fit = addrs.len();
                if let Some(max) = udp_max {
                    fit = fit.min(udp_fit(max, name.len() + 1));
                    md.truncation = fit < addrs.len();
                }
                let records = addrs[..fit]
                    .iter()
                    .map(|ip| Record::from_rdata(name.clone(), TTL, RData::A(A(*ip))))
                    .collect();
                Reply::Local(md, records)
            }
            Answer::NxDomain => {
                md.authoritative = true;
                md.response_code = ResponseCode::NXDomain;
                Reply::Local(md, Vec::new())
            }
            Answer::Forward => Reply::Forward,
        }
    }

    /// The upstream's answer to a forwarded request (`None`: none answered).
    async fn forwarded(&self, request: &Request) -> Option<Upstreamed> {
        let tcp = request.protocol() != Protocol::Udp;
        let mut up = self.forwarder.forward(request.as_slice(), tcp).await?;
        up.metadata.id = request.metadata.id;
        up.metadata.authoritative = false;
        Some(Upstreamed(up))
    }
}

fn servfail(request: &Request) -> Reply {
    let mut md = Metadata::response_from_request(&request.metadata);
    md.response_code = ResponseCode::ServFail;
    Reply::Local(md, Vec::new())
}

#[async_trait::async_trait]
impl RequestHandler for TenantHandler {
    async fn handle_request<R: ResponseHandler, T: hickory_server::net::runtime::Time>(
        &self,
        request: &Request,
        mut response: R,
    ) -> ResponseInfo {
        let edns = response_edns(request.edns.as_ref());
        let builder = || MessageResponseBuilder::new(&request.queries, edns.as_ref());
        let udp_max = (request.protocol() == Protocol::Udp)
            .then(|| edns.as_ref().map_or(512, |e| e.max_payload()) as usize);
        let mut reply = self.decide(request, udp_max);
        if let Reply::Forward = reply {
            match self.forwarded(request).await {
                Some(Upstreamed(up)) => {
                    let msg = builder().build(
                        up.metadata,
                        up.answers.iter(),
                        up.authorities.iter(),
                        [],
                        up.additionals.iter(),
                    );
                    return send(&mut response, msg).await;
                }
                None => reply = servfail(request),
            }
        }
        match reply {
            Reply::Local(md, records) => {
                send(
                    &mut response,
                    builder().build(md, records.iter(), [], [], []),
                )
                .await
            }
            Reply::Forward => {
                send(
                    &mut response,
                    builder().build_no_records(Metadata::response_from_request(&request.metadata)),
                )
                .await
            }
        }
    }
}

/// Encodes an answer for UDP into at most `max` bytes.
fn emit_udp<'a>(
    msg: hickory_server::zone_handler::MessageResponse<
        '_,
        'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
    >,
    max: u16,
) -> Option<Vec<u8>> {
    let mut buf = Vec::with_capacity(512);
    let mut enc = BinEncoder::new(&mut buf);
    enc.set_max_size(max);
    msg.destructive_emit(&mut enc).ok()?;
    Some(buf)
}

/// The UDP answer to a forwarded `request`: the upstream's, else SERVFAIL.
async fn forward_udp_reply(h: &TenantHandler, request: Request) -> Option<Vec<u8>> {
    let edns = response_edns(request.edns.as_ref());
    let max = edns.as_ref().map_or(512, |e| e.max_payload());
    let builder = || MessageResponseBuilder::new(&request.queries, edns.as_ref());
    match h.forwarded(&request).await {
        Some(Upstreamed(up)) => {
            let msg = builder().build(
                up.metadata,
                up.answers.iter(),
                up.authorities.iter(),
                [],
                up.additionals.iter(),
            );
            emit_udp(msg, max)
        }
        None => match servfail(&request) {
            Reply::Local(md, _) => emit_udp(builder().build_no_records(md), max),
            Reply::Forward => None,
        },
    }
}

/// Serves UDP queries on `sock` (until the task is aborted): each query is received, answered
/// from the table and sent back by this one task (no task or channel per query, unlike
/// hickory-server's UDP loop: ~1.5× the queries/s); only a forwarded query gets a task of its
/// own, so a slow upstream never holds the others up.
pub async fn serve_udp(sock: Arc<tokio::net::UdpSocket>, handler: Arc<TenantHandler>) {
    let mut buf = vec![0u8; 4096];
    loop {
        let (n, src) = match sock.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(e) => {
                tracing::debug!("dns udp receive: {e}");
                continue;
            }
        };
        let Ok(request) = Request::from_bytes(buf[..n].to_vec(), src, Protocol::Udp) else {
            continue;
        };
        if request.metadata.message_type == MessageType::Response {
            continue;
        }
        let edns = response_edns(request.edns.as_ref());
        let max = edns.as_ref().map_or(512, |e| e.max_payload());
        match handler.decide(&request, Some(max as usize)) {
            Reply::Local(md, records) => {
                let msg = MessageResponseBuilder::new(&request.queries, edns.as_ref()).build(
                    md,
                    records.iter(),
                    [],
                    [],
                    [],
                );
                if let Some(out) = emit_udp(msg, max) {
                    let _ = sock.send_to(&out, src).await;
                }
            }
            Reply::Forward => {
                let (sock, handler) = (sock.clone(), handler.clone());
                tokio::spawn(async move {
                    if let Some(out) = forward_udp_reply(&handler, request).await {
                        let _ = sock.send_to(&out, src).await;
                    }
                });
            }
        }
    }
}

async fn send<'a, R: ResponseHandler>(
    response: &mut R,
    msg: hickory_server::zone_handler::MessageResponse<
        '_,
        'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
    >,
) -> ResponseInfo {
    let md = *msg.metadata();
    match response.send_response(msg).await {
        Ok(info) => info,
        Err(e) => {
            tracing::debug!("dns: cannot send the answer: {e}");
            let mut md = md;
            md.response_code = ResponseCode::ServFail;
            info_of(md)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn udp_answers_are_cut_to_fit() {
        // 512 bytes, "web.t1.contiv." (16 bytes on the wire): 29 records.
        assert_eq!(udp_fit(512, 16), 29);
        assert_eq!(udp_fit(10, 16), 0);
    }
}
