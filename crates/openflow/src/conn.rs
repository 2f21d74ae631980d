//! A connection to one switch over TCP or a unix socket (tokio): hello/features handshake, echo keep-alive and
//! answering the switch's echo requests, requests matched to replies by xid, batches confirmed by
//! a barrier, ONF bundles. The codec stays in `message`; this module only frames and routes.
//!
//! Semantics: [`Switch::send_batch`] and [`Switch::bundle`] return only after the switch has
//! processed every message (barrier or commit reply) and report the first error the switch sent
//! for any of them. Unsolicited messages (packet-in, errors for plain [`Switch::send`]) go to the
//! events channel. A dead connection (closed, or no echo reply in time) fails every waiter with
//! [`ConnError::Closed`]; reconnecting is [`connect_retry`] plus replay by the caller.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};
use tokio::sync::{mpsc, Mutex};

use crate::message::{
    BundleAdd, BundleControl, BundleCtrlType, Envelope, ErrorMsg, Features, Message,
    MultipartReply, MultipartRequest, OFP13_VERSION, OFPBF_ATOMIC, OFPBF_ORDERED,
};
use crate::DecodeError;

/// Why talking to the switch failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    #[error("openflow connection to {addr}: {source}")]
    Io {
        addr: String,
        source: std::io::Error,
    },
    #[error("bad message from switch: {0}")]
    Decode(#[from] DecodeError),
    #[error("switch does not speak openflow 1.3 (its hello offered {0:#x})")]
    Version(u32),
    #[error("switch rejected message xid {xid}: error type {} code {}", .error.typ, .error.code)]
    Rejected { xid: u32, error: ErrorMsg },
    #[error("unexpected reply to xid {xid}: {msg:?}")]
    Unexpected { xid: u32, msg: Box<Message> },
    #[error("connection closed")]
    Closed,
    #[error("no answer from switch within {0:?}")]
    Timeout(Duration),
}

/// Connection options.
#[derive(Debug, Clone)]
pub struct ConnOptions {
    /// How often to send an echo request when idle; `None` disables the keep-alive.
    pub echo_interval: Option<Duration>,
    /// How long a handshake step, request or echo may take.
    pub timeout: Duration,
}

impl Default for ConnOptions {
    fn default() -> Self {
        ConnOptions {
            echo_interval: Some(Duration::from_secs(5)),
            timeout: Duration::from_secs(10),
        }
    }
}

/// The read side of a connection (TCP or unix socket).
type OwnedReadHalf = Box<dyn AsyncRead + Send + Unpin>;
/// The write side of a connection (TCP or unix socket).
type OwnedWriteHalf = Box<dyn AsyncWrite + Send + Unpin>;

type Waiters = Arc<std::sync::Mutex<Option<HashMap<u32, mpsc::UnboundedSender<Envelope>>>>>;

/// One live OpenFlow 1.3 connection. Cheap to share behind an `Arc`; methods take `&self`.
pub struct Switch {
    writer: Arc<Mutex<OwnedWriteHalf>>,
    waiters: Waiters,
    next_xid: AtomicU32,
    features: Features,
    timeout: Duration,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Switch {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

async fn read_msg(r: &mut OwnedReadHalf) -> Result<Envelope, ConnError> {
    let mut buf = vec![0u8; 8];
    r.read_exact(&mut buf)
        .await
        .map_err(|_| ConnError::Closed)?;
    let len = Message::frame_len(&buf)?.unwrap_or(8);
    buf.resize(len, 0);
    r.read_exact(&mut buf[8..])
        .await
        .map_err(|_| ConnError::Closed)?;
    Ok(Message::decode(&buf)?)
}

async fn write_msg(w: &Mutex<OwnedWriteHalf>, xid: u32, msg: &Message) -> Result<(), ConnError> {
    w.lock()
        .await
        .write_all(&msg.encode(xid))
        .await
        .map_err(|_| ConnError::Closed)
}

/// Connects to a switch's `ptcp:` controller target (e.g. `127.0.0.1:6653`) and handshakes.
/// Returns the switch and the channel of unsolicited messages.
pub async fn connect(
    addr: &str,
    opts: &ConnOptions,
) -> Result<(Switch, mpsc::UnboundedReceiver<Envelope>), ConnError> {
    let io = |source| ConnError::Io {
        addr: addr.to_string(),
        source,
    };
    let stream = TcpStream::connect(addr).await.map_err(io)?;
    stream.set_nodelay(true).map_err(io)?;
    Switch::handshake(stream, opts).await
}

/// Connects to a switch's unix socket (ovs-vswitchd's `<rundir>/<bridge>.mgmt`) and
/// handshakes. Unlike a `ptcp:` controller target, the management socket is there while
/// `other_config:flow-restore-wait` holds vswitchd's controller connections back, so an agent
/// can program a restarted vswitchd before it forwards anything.
pub async fn connect_unix(
    path: &std::path::Path,
    opts: &ConnOptions,
) -> Result<(Switch, mpsc::UnboundedReceiver<Envelope>), ConnError> {
    let stream = UnixStream::connect(path)
        .await
        .map_err(|source| ConnError::Io {
            addr: format!("unix:{}", path.display()),
            source,
        })?;
    Switch::handshake(stream, opts).await
}

/// [`connect`], retried with a doubling delay (100 ms up to `max_delay`) until it succeeds.
pub async fn connect_retry(
    addr: &str,
    opts: &ConnOptions,
    max_delay: Duration,
) -> (Switch, mpsc::UnboundedReceiver<Envelope>) {
    let mut delay = Duration::from_millis(100);
    loop {
        match connect(addr, opts).await {
            Ok(s) => return s,
            Err(e) => {
                tracing::warn!(%addr, error = %e, ?delay, "openflow connect failed, retrying")
            }
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(max_delay);
    }
}

impl Switch {
    /// Hello (version bitmap: 1.3 only), then features; either side may also be the listener, so
    /// this works for an accepted stream too.
    pub async fn handshake<S>(
        stream: S,
        opts: &ConnOptions,
    ) -> Result<(Switch, mpsc::UnboundedReceiver<Envelope>), ConnError>
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (r, w) = tokio::io::split(stream);
        let mut r: OwnedReadHalf = Box::new(r);
        let writer: Arc<Mutex<OwnedWriteHalf>> = Arc::new(Mutex::new(Box::new(w)));
        let t = opts.timeout;
        write_msg(
            &writer,
            1,
            &Message::Hello {
                versions: Some(1 << OFP13_VERSION),
            },
        )
        .await?;
        let hello = timed(t, read_msg(&mut r)).await?;
        if let Message::Hello { versions: Some(v) } = hello.msg {
            if v & (1 << OFP13_VERSION) == 0 {
                return Err(ConnError::Version(v));
            }
        }
        write_msg(&writer, 2, &Message::FeaturesRequest).await?;
        let features = loop {
            let env = timed(t, read_msg(&mut r)).await?;
            match env.msg {
                Message::FeaturesReply(f) => break f,
                Message::EchoRequest(d) => {
                    write_msg(&writer, env.xid, &Message::EchoReply(d)).await?
                }
                Message::Error(error) => {
                    return Err(ConnError::Rejected {
                        xid: env.xid,
                        error,
                    })
                }
                _ => {}
            }
        };
        let waiters: Waiters = Arc::new(std::sync::Mutex::new(Some(HashMap::new())));
        let (events_tx, events) = mpsc::unbounded_channel();
        let mut sw = Switch {
            writer,
            waiters,
            next_xid: AtomicU32::new(16),
            features,
            timeout: t,
            tasks: vec![],
        };
        sw.tasks.push(tokio::spawn(reader(
            r,
            sw.writer.clone(),
            sw.waiters.clone(),
            events_tx,
        )));
        if let Some(every) = opts.echo_interval {
            sw.tasks.push(tokio::spawn(keepalive(
                every,
                t,
                sw.writer.clone(),
                sw.waiters.clone(),
            )));
        }
        Ok((sw, events))
    }

    /// What the switch said in its features reply.
    pub fn features(&self) -> &Features {
        &self.features
    }

    /// True once the connection is known dead.
    pub fn is_closed(&self) -> bool {
        lock(&self.waiters).is_none()
    }

    fn xid(&self) -> u32 {
        self.next_xid.fetch_add(1, Ordering::Relaxed)
    }

    fn register(&self, xid: u32) -> Result<mpsc::UnboundedReceiver<Envelope>, ConnError> {
        register(&self.waiters, xid)
    }

    fn unregister(&self, xids: impl IntoIterator<Item = u32>) {
        if let Some(m) = lock(&self.waiters).as_mut() {
            for x in xids {
                m.remove(&x);
            }
        }
    }

    /// Sends without waiting; an error reply goes to the events channel. Returns the xid.
    pub async fn send(&self, msg: &Message) -> Result<u32, ConnError> {
        let xid = self.xid();
        write_msg(&self.writer, xid, msg).await?;
        Ok(xid)
    }

    /// Sends `msg` and waits for the first message with the same xid (an error reply is
    /// [`ConnError::Rejected`]).
    pub async fn request(&self, msg: &Message) -> Result<Envelope, ConnError> {
        let xid = self.xid();
        let mut rx = self.register(xid)?;
        let res = async {
            write_msg(&self.writer, xid, msg).await?;
            self.wait(&mut rx).await
        }
        .await;
        self.unregister([xid]);
        match res? {
            Envelope {
                xid,
                msg: Message::Error(error),
            } => Err(ConnError::Rejected { xid, error }),
            env => Ok(env),
        }
    }

    async fn wait(
        &self,
        rx: &mut mpsc::UnboundedReceiver<Envelope>,
    ) -> Result<Envelope, ConnError> {
        let t = self.timeout;
        tokio::time::timeout(t, rx.recv())
            .await
            .map_err(|_| ConnError::Timeout(t))?
            .ok_or(ConnError::Closed)
    }

    /// Sends every message in one write, then a barrier; returns when the barrier reply is in,
    /// with the first error the switch reported for any of them.
    pub async fn send_batch(&self, msgs: &[Message]) -> Result<(), ConnError> {
        let batch: Vec<(u32, Message)> = msgs.iter().map(|m| (self.xid(), m.clone())).collect();
        self.send_batch_xids(&batch).await
    }

    async fn send_batch_xids(&self, batch: &[(u32, Message)]) -> Result<(), ConnError> {
        let mut buf = Vec::new();
        let mut rxs = Vec::with_capacity(batch.len());
        for (xid, m) in batch {
            rxs.push((*xid, self.register(*xid)?));
            m.encode_into(*xid, &mut buf);
        }
        let written = self
            .writer
            .lock()
            .await
            .write_all(&buf)
            .await
            .map_err(|_| ConnError::Closed);
        let res = match written {
            Ok(()) => self.request(&Message::BarrierRequest).await.map(|_| ()),
            Err(e) => Err(e),
        };
        self.unregister(rxs.iter().map(|(x, _)| *x));
        res?;
        for (xid, mut rx) in rxs {
            if let Ok(Envelope {
                msg: Message::Error(error),
                ..
            }) = rx.try_recv()
            {
                return Err(ConnError::Rejected { xid, error });
            }
        }
        Ok(())
    }

    /// Applies `msgs` atomically and in order as one ONF bundle (open, add each, commit). When
    /// any message is refused, the switch discards the whole bundle and this returns the error.
    pub async fn bundle(&self, bundle_id: u32, msgs: &[Message]) -> Result<(), ConnError> {
        let flags = OFPBF_ATOMIC | OFPBF_ORDERED;
        let ctl = |typ| {
            Message::BundleControl(BundleControl {
                bundle_id,
                typ,
                flags,
                properties: vec![],
            })
        };
        self.expect_ctl(ctl(BundleCtrlType::OpenRequest), BundleCtrlType::OpenReply)
            .await?;
        // Open vSwitch requires the bundled message's xid to equal the bundle-add's (else
        // ONFBFC_MSG_BAD_XID).
        let adds: Vec<(u32, Message)> = msgs
            .iter()
            .map(|m| {
                let xid = self.xid();
                let inner = Box::new(Envelope {
                    xid,
                    msg: m.clone(),
                });
                (
                    xid,
                    Message::BundleAdd(BundleAdd {
                        bundle_id,
                        flags,
                        inner,
                    }),
                )
            })
            .collect();
        if let Err(e) = self.send_batch_xids(&adds).await {
            let _ = self.request(&ctl(BundleCtrlType::DiscardRequest)).await;
            return Err(e);
        }
        self.expect_ctl(
            ctl(BundleCtrlType::CommitRequest),
            BundleCtrlType::CommitReply,
        )
        .await
    }

    async fn expect_ctl(&self, msg: Message, want: BundleCtrlType) -> Result<(), ConnError> {
        let env = self.request(&msg).await?;
        match env.msg {
            Message::BundleControl(b) if b.typ == want => Ok(()),
            msg => Err(ConnError::Unexpected {
                xid: env.xid,
                msg: Box::new(msg),
            }),
        }
    }

    /// Sends a multipart request and collects every part of the reply.
    pub async fn multipart(&self, req: MultipartRequest) -> Result<Vec<MultipartReply>, ConnError> {
        let xid = self.xid();
        let mut rx = self.register(xid)?;
        let res = async {
            write_msg(&self.writer, xid, &Message::MultipartRequest(req)).await?;
            let mut parts = Vec::new();
            loop {
                let env = self.wait(&mut rx).await?;
                let more = match &env.msg {
                    Message::MultipartReply(MultipartReply::Flow { more, .. })
                    | Message::MultipartReply(MultipartReply::Table { more, .. }) => *more,
                    Message::MultipartReply(MultipartReply::Other { flags, .. }) => flags & 1 != 0,
                    Message::Error(e) => {
                        return Err(ConnError::Rejected {
                            xid,
                            error: e.clone(),
                        })
                    }
                    _ => {
                        return Err(ConnError::Unexpected {
                            xid,
                            msg: Box::new(env.msg),
                        })
                    }
                };
                if let Message::MultipartReply(p) = env.msg {
                    parts.push(p);
                }
                if !more {
                    return Ok(parts);
                }
            }
        }
        .await;
        self.unregister([xid]);
        res
    }
}

async fn timed<T>(
    t: Duration,
    f: impl std::future::Future<Output = Result<T, ConnError>>,
) -> Result<T, ConnError> {
    tokio::time::timeout(t, f)
        .await
        .map_err(|_| ConnError::Timeout(t))?
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn register(waiters: &Waiters, xid: u32) -> Result<mpsc::UnboundedReceiver<Envelope>, ConnError> {
    let (tx, rx) = mpsc::unbounded_channel();
    lock(waiters)
        .as_mut()
        .ok_or(ConnError::Closed)?
        .insert(xid, tx);
    Ok(rx)
}

/// Routes every incoming message: echo requests answered, replies to their waiter, the rest to
/// `events`. On exit every waiter is dropped (they see `Closed`).
async fn reader(
    mut r: OwnedReadHalf,
    writer: Arc<Mutex<OwnedWriteHalf>>,
    waiters: Waiters,
    events: mpsc::UnboundedSender<Envelope>,
) {
    loop {
        let env = match read_msg(&mut r).await {
            Ok(env) => env,
            Err(e) => {
                tracing::debug!(error = %e, "openflow connection ends");
                break;
            }
        };
        if let Message::EchoRequest(d) = &env.msg {
            if write_msg(&writer, env.xid, &Message::EchoReply(d.clone()))
                .await
                .is_err()
            {
                break;
            }
            continue;
        }
        let waiter = lock(&waiters)
            .as_ref()
            .and_then(|m| m.get(&env.xid).cloned());
        match waiter {
            Some(tx) => {
                let _ = tx.send(env);
            }
            None => {
                let _ = events.send(env);
            }
        }
    }
    lock(&waiters).take();
}

/// Sends an echo request every `every`; no reply within `timeout` closes the connection.
async fn keepalive(
    every: Duration,
    timeout: Duration,
    writer: Arc<Mutex<OwnedWriteHalf>>,
    waiters: Waiters,
) {
    for xid in (1u32..).map(|n| 0x8000_0000 | n) {
        tokio::time::sleep(every).await;
        let Ok(mut rx) = register(&waiters, xid) else {
            return;
        };
        let ok = write_msg(&writer, xid, &Message::EchoRequest(Vec::new()))
            .await
            .is_ok()
            && matches!(tokio::time::timeout(timeout, rx.recv()).await, Ok(Some(_)));
        if let Some(m) = lock(&waiters).as_mut() {
            m.remove(&xid);
        }
        if !ok {
            tracing::warn!(?timeout, "openflow switch missed an echo reply; closing");
            lock(&waiters).take();
            let _ = writer.lock().await.shutdown().await;
            return;
        }
    }
}
