//! The connection to ovsdb-server: one reader task (splits the stream, matches responses to
//! requests by id, answers the server's `echo` keep-alive, routes monitor `update`s to their
//! channel) and one writer task. Methods are RFC 7047's: `list_dbs`, `get_schema`, `transact`,
//! `monitor`, `monitor_cancel`, `echo`.
//!
//! Concurrent calls on clones of one [`Client`] are fine: each waits for its own id. When the
//! connection ends, every waiting and later call fails with [`Error::Disconnected`] and monitor
//! channels close; reconnecting is the caller's business (it re-reads state anyway).

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::framing::Splitter;
use crate::monitor::{parse_updates, MonitorRequests, TableUpdates};
use crate::ops::{check_results, Op};
use crate::rpc::Message;
use crate::Error;

/// Where ovsdb-server listens, spelled as OVS spells it: `unix:PATH` or `tcp:IP:PORT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Unix(PathBuf),
    Tcp(SocketAddr),
}

impl FromStr for Endpoint {
    type Err = Error;
    fn from_str(s: &str) -> Result<Endpoint, Error> {
        if let Some(p) = s.strip_prefix("unix:").filter(|p| !p.is_empty()) {
            return Ok(Endpoint::Unix(p.into()));
        }
        if let Some(a) = s.strip_prefix("tcp:") {
            if let Ok(a) = a.parse() {
                return Ok(Endpoint::Tcp(a));
            }
        }
        Err(Error::Endpoint(s.to_string()))
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Unix(p) => write!(f, "unix:{}", p.display()),
            Endpoint::Tcp(a) => write!(f, "tcp:{a}"),
        }
    }
}

/// Connection settings.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// How long one call may wait for its response before it fails with [`Error::Timeout`].
    pub request_timeout: Duration,
}

impl Default for ClientOptions {
    fn default() -> ClientOptions {
        ClientOptions {
            request_timeout: Duration::from_secs(10),
        }
    }
}

type Pending = HashMap<u64, (String, oneshot::Sender<Result<Value, Error>>)>;

/// State the reader task shares with callers.
#[derive(Default)]
struct Shared {
    /// `None` once the connection is gone: a call then fails at once instead of waiting forever.
    pending: Mutex<Option<Pending>>,
    monitors: Mutex<HashMap<String, mpsc::UnboundedSender<TableUpdates>>>,
}

struct Inner {
    out: mpsc::UnboundedSender<Vec<u8>>,
    shared: Arc<Shared>,
    next_id: AtomicU64,
    reader: JoinHandle<()>,
    options: ClientOptions,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The reader holds a sender of `out`; stopping it lets the writer end and the socket close.
        self.reader.abort();
    }
}

/// A handle on one connection; cheap to clone.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl Client {
    /// Connects to `endpoint` (`unix:PATH` or `tcp:IP:PORT`).
    pub async fn connect(endpoint: &str, options: ClientOptions) -> Result<Client, Error> {
        let ep: Endpoint = endpoint.parse()?;
        let connect_err = |source| Error::Connect {
            endpoint: ep.to_string(),
            source,
        };
        Ok(match &ep {
            Endpoint::Unix(p) => {
                let s = tokio::net::UnixStream::connect(p)
                    .await
                    .map_err(connect_err)?;
                Client::from_stream(s, options)
            }
            Endpoint::Tcp(a) => {
                let s = tokio::net::TcpStream::connect(a)
                    .await
                    .map_err(connect_err)?;
                Client::from_stream(s, options)
            }
        })
    }

    /// Runs the protocol over any byte stream (tests use an in-memory duplex).
    pub fn from_stream<S>(stream: S, options: ClientOptions) -> Client
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (rd, wr) = tokio::io::split(stream);
        let (out, out_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            pending: Mutex::new(Some(HashMap::new())),
            monitors: Mutex::default(),
        });
        tokio::spawn(write_loop(wr, out_rx));
        let reader = tokio::spawn(read_loop(rd, out.clone(), shared.clone()));
        Client {
            inner: Arc::new(Inner {
                out,
                shared,
                next_id: AtomicU64::new(1),
                reader,
                options,
            }),
        }
    }

    /// One request and its result (`error` non-null becomes [`Error::Rpc`]).
    pub async fn call(&self, method: &str, params: Vec<Value>) -> Result<Value, Error> {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        match self.inner.shared.pending.lock().as_mut() {
            Some(p) => p.insert(id, (method.to_string(), tx)),
            None => return Err(Error::Disconnected),
        };
        let msg = Message::request(id, method, params).encode();
        if self.inner.out.send(msg).is_err() {
            return Err(Error::Disconnected);
        }
        let timeout = self.inner.options.request_timeout;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(Error::Disconnected),
            Err(_) => {
                if let Some(p) = self.inner.shared.pending.lock().as_mut() {
                    p.remove(&id);
                }
                Err(Error::Timeout(
                    timeout,
                    format!("ovsdb-server to answer {method}"),
                ))
            }
        }
    }

    pub async fn list_dbs(&self) -> Result<Vec<String>, Error> {
        let v = self.call("list_dbs", vec![]).await?;
        serde_json::from_value(v.clone())
            .map_err(|_| Error::Protocol(format!("list_dbs result is not a list of names: {v}")))
    }

    pub async fn get_schema(&self, db: &str) -> Result<Value, Error> {
        self.call("get_schema", vec![json!(db)]).await
    }

    /// Runs `ops` as one atomic transaction; the per-operation results on success (an `insert`
    /// gives `{"uuid": …}`, a `select` `{"rows": […]}`, an update/mutate/delete `{"count": n}`).
    pub async fn transact(&self, db: &str, ops: &[Op]) -> Result<Vec<Value>, Error> {
        let mut params = vec![json!(db)];
        params.extend(ops.iter().map(Op::to_value));
        let result = self.call("transact", params).await?;
        check_results(ops.len(), result)
    }

    /// Starts monitor `id`: the current contents of the watched tables, then every change on the
    /// returned channel (closed when the monitor is cancelled or the connection ends).
    pub async fn monitor(
        &self,
        db: &str,
        id: &str,
        requests: &MonitorRequests,
    ) -> Result<(TableUpdates, mpsc::UnboundedReceiver<TableUpdates>), Error> {
        let (tx, rx) = mpsc::unbounded_channel();
        // Registered before asking, so no update sent right after the reply can be missed; an id
        // in use is refused here (the server would refuse it too, and the cleanup below would
        // then unhook the monitor that owns it).
        match self.inner.shared.monitors.lock().entry(id.to_string()) {
            std::collections::hash_map::Entry::Occupied(_) => {
                return Err(Error::Invalid {
                    what: format!("monitor id {id:?}"),
                    why: "already in use on this connection".into(),
                })
            }
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(tx);
            }
        }
        let r = self
            .call("monitor", vec![json!(db), json!(id), requests.to_value()])
            .await
            .and_then(|v| parse_updates(&v));
        match r {
            Ok(initial) => Ok((initial, rx)),
            Err(e) => {
                self.inner.shared.monitors.lock().remove(id);
                Err(e)
            }
        }
    }

    pub async fn monitor_cancel(&self, id: &str) -> Result<(), Error> {
        let r = self.call("monitor_cancel", vec![json!(id)]).await;
        self.inner.shared.monitors.lock().remove(id);
        r.map(|_| ())
    }

    /// Our own keep-alive probe: ovsdb-server answers with the same params.
    pub async fn echo(&self) -> Result<(), Error> {
        let v = self.call("echo", vec![json!("contiv")]).await?;
        if v != json!(["contiv"]) {
            return Err(Error::Protocol(format!("echo answered {v}")));
        }
        Ok(())
    }
}

async fn write_loop<W: AsyncWrite>(wr: W, mut rx: mpsc::UnboundedReceiver<Vec<u8>>) {
    tokio::pin!(wr);
    while let Some(msg) = rx.recv().await {
        if let Err(e) = wr.write_all(&msg).await {
            tracing::debug!("ovsdb write failed: {e}");
            return;
        }
    }
}

async fn read_loop<R: AsyncRead>(rd: R, out: mpsc::UnboundedSender<Vec<u8>>, shared: Arc<Shared>) {
    tokio::pin!(rd);
    let mut split = Splitter::new();
    let mut buf = vec![0u8; 64 * 1024];
    let why = 'conn: loop {
        match rd.read(&mut buf).await {
            Ok(0) => break "closed by ovsdb-server".to_string(),
            Ok(n) => split.push(&buf[..n]),
            Err(e) => break e.to_string(),
        }
        loop {
            match split.next_message() {
                Ok(Some(text)) => {
                    if let Err(e) = dispatch(&text, &out, &shared) {
                        break 'conn e;
                    }
                }
                Ok(None) => break,
                Err(e) => break 'conn e.to_string(),
            }
        }
    };
    tracing::debug!("ovsdb connection ended: {why}");
    // Fail every waiting call; later calls see `None` and fail at once.
    let pending = shared.pending.lock().take().unwrap_or_default();
    for (_, (_, tx)) in pending {
        let _ = tx.send(Err(Error::Disconnected));
    }
    shared.monitors.lock().clear();
}

/// Handles one message from the server; an error ends the connection (the stream is not trusted).
fn dispatch(
    text: &[u8],
    out: &mpsc::UnboundedSender<Vec<u8>>,
    shared: &Shared,
) -> Result<(), String> {
    match Message::decode(text).map_err(|e| e.to_string())? {
        Message::Response { id, result, error } => {
            let Some(id) = id.as_u64() else {
                return Err(format!("response with an id we never sent: {id}"));
            };
            let waiter = shared.pending.lock().as_mut().and_then(|p| p.remove(&id));
            // A response to a call that timed out meanwhile is dropped.
            if let Some((method, tx)) = waiter {
                let r = if error.is_null() {
                    Ok(result)
                } else {
                    Err(Error::Rpc { method, error })
                };
                let _ = tx.send(r);
            }
        }
        Message::Request { id, method, params } if method == "echo" => {
            let _ = out.send(Message::echo_reply(id, params).encode());
        }
        Message::Request { id, method, .. } => {
            // RFC 7047 defines no other server-to-client request; say so rather than leave it waiting.
            let reply = Message::Response {
                id,
                result: Value::Null,
                error: json!(format!("unknown method {method}")),
            };
            let _ = out.send(reply.encode());
        }
        Message::Notification { method, params } if method == "update" => {
            let [id, updates] = params.as_slice() else {
                return Err(format!("update with {} params", params.len()));
            };
            let updates = parse_updates(updates).map_err(|e| e.to_string())?;
            let key = id
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| id.to_string());
            let mut monitors = shared.monitors.lock();
            if let Some(tx) = monitors.get(&key) {
                if tx.send(updates).is_err() {
                    // Nobody listens any more; stop routing (the server keeps sending until cancelled).
                    monitors.remove(&key);
                }
            }
        }
        Message::Notification { method, .. } => {
            tracing::debug!("ignoring ovsdb notification {method}");
        }
    }
    Ok(())
}
