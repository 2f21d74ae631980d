//! etcd v3 backend ([`EtcdStore`]): the [`StateStore`] contract mapped onto an etcd cluster through
//! `etcd-client` (gRPC). etcd already has the contract's shape (one revision per changing
//! transaction, compares, prefix watches from a revision, leases), so this module is a translation;
//! what needs care:
//!
//! - **Compares**: `Absent` is `create_revision == 0`, `Exists` is `create_revision > 0`,
//!   `ModRevision` is `mod_revision ==` (0 for an absent key), `Value` fails on an absent key.
//!   etcd does not say which compare failed, so the failure branch reads every compared key (at the
//!   same revision as the evaluation) and the client names the first failing one.
//! - **Ops on the same key** are collapsed before sending (etcd refuses duplicate keys); see `plan`.
//! - **Revisions**: etcd's empty store is at revision 1, not 0; a transaction that changes nothing
//!   spends no revision and answers the current one, as the contract wants.
//! - **Leases** are etcd leases. etcd raises a TTL below its minimum (1.5 × election timeout,
//!   rounded up to whole seconds: 2 s with default settings, 1 s with the test harness's) and counts
//!   TTLs in whole seconds, so a TTL is rounded up to the next second. Expired leases are revoked
//!   by the etcd leader's lessor, which checks every 500 ms.
//! - **Endpoints**: requests go to one endpoint at a time and fail over to the next when it does
//!   not answer (see `endpoints`: etcd-client's balancing kept sending to dead members).
//! - **Unavailability**: no endpoint answering, no quorum or no leader (`require_leader` is set, so
//!   a member cut off from the leader answers at once instead of waiting), and requests that get no
//!   answer within [`EtcdOptions::request_timeout`] are [`StoreError::Unavailable`]. A commit that
//!   timed out may or may not have been applied (when its member's leader dies with it in flight,
//!   etcd 3.4 lets it time out).
//! - **Watches** run as one task per stream (see `watch`), which re-creates the etcd watch from the
//!   last delivered revision when a member goes away.
//! - **Limits**: etcd refuses transactions with more ops than its `--max-txn-ops` (default 128; the
//!   failure branch holds one read per compared key) and requests over `--max-request-bytes`
//!   (1.5 MiB) with [`StoreError::Invalid`]; run etcd with a larger `--max-txn-ops` for big
//!   transactions. `range` reads in pages of [`RANGE_PAGE`] keys at one revision.

mod endpoints;
mod plan;
mod watch;

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use etcd_client::{Client, ConnectOptions, GetOptions, TxnOpResponse};
use tonic::Code;

use self::endpoints::{unanswered, Endpoints, Unanswered};
use self::plan::{build_txn, compare_keys, etcd_rev, plan_ops, KeyRange};
use crate::error::StoreError;
use crate::lease::check_ttl;
use crate::store::StateStore;
use crate::txn::{check_key, holds};
use crate::types::{KeyValue, LeaseId, Op, Revision, Snapshot, StoreInfo, Txn, TxnOutcome};
use crate::watch::WatchStream;

/// Keys read per request by `range` (all pages at the same revision).
pub const RANGE_PAGE: i64 = 2_000;
/// Largest gRPC message accepted from etcd (a page of `range`, or one revision of a watch: a
/// delete of many keys is one revision).
const MAX_MESSAGE: usize = 256 * 1024 * 1024;

/// Timeouts of an [`EtcdStore`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdOptions {
    /// Longest wait for one request (get, range, commit, lease call, watch creation); past it the
    /// call fails with [`StoreError::Unavailable`].
    pub request_timeout: Duration,
    /// How long [`EtcdStore::connect`] keeps trying to reach an endpoint.
    pub connect_timeout: Duration,
    /// How long a watch stream keeps re-creating its etcd watch after the connection broke before
    /// it yields [`StoreError::Unavailable`] and ends.
    pub watch_retry: Duration,
    /// TLS to the members (`https` endpoints).
    pub tls: Option<crate::EtcdTls>,
}

impl Default for EtcdOptions {
    fn default() -> Self {
        EtcdOptions {
            request_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            watch_retry: Duration::from_secs(30),
            tls: None,
        }
    }
}

struct Inner {
    eps: Arc<Endpoints>,
    endpoints: Vec<String>,
    options: EtcdOptions,
    /// Dropped with the store: watch tasks see it closed and end their streams.
    _closed: tokio::sync::watch::Sender<()>,
    closed_rx: tokio::sync::watch::Receiver<()>,
}

/// [`StateStore`] on an etcd v3 cluster (etcd 3.4 or later). Cloning shares the connection.
#[derive(Clone)]
pub struct EtcdStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdStore")
            .field("endpoints", &self.inner.endpoints)
            .finish()
    }
}

/// `etcd://host:port` (Contiv's spelling) is `http://host:port`.
fn normalize_endpoint(e: &str) -> String {
    match e.strip_prefix("etcd://") {
        Some(rest) => format!("http://{rest}"),
        None => e.to_string(),
    }
}

/// tonic's TLS settings from the PEM files of `tls` (rustls with ring, as everywhere else).
fn tls_options(tls: &crate::EtcdTls) -> Result<etcd_client::TlsOptions, StoreError> {
    let read = |p: &std::path::Path| {
        std::fs::read(p).map_err(|e| StoreError::Invalid(format!("etcd TLS: {}: {e}", p.display())))
    };
    let mut options = etcd_client::TlsOptions::new()
        .ca_certificate(etcd_client::Certificate::from_pem(read(&tls.ca)?));
    match (&tls.cert, &tls.key) {
        (Some(cert), Some(key)) => {
            options = options.identity(etcd_client::Identity::from_pem(read(cert)?, read(key)?));
        }
        (None, None) => {}
        _ => {
            return Err(StoreError::Invalid(
                "etcd TLS: a client certificate needs its key and a key its certificate".into(),
            ))
        }
    }
    Ok(options)
}

impl EtcdStore {
    /// Connects to the cluster with default [`EtcdOptions`]; see [`EtcdStore::connect_with`].
    pub async fn connect(endpoints: &[String]) -> Result<Self, StoreError> {
        Self::connect_with(endpoints, EtcdOptions::default()).await
    }

    /// Connects to the cluster at `endpoints` (`http://host:port`, `host:port` or `etcd://host:port`;
    /// requests are balanced over them) and checks that it answers a read within
    /// `options.connect_timeout`; otherwise [`StoreError::Unavailable`] naming the endpoints.
    pub async fn connect_with(
        endpoints: &[String],
        options: EtcdOptions,
    ) -> Result<Self, StoreError> {
        if endpoints.is_empty() {
            return Err(StoreError::Invalid("no etcd endpoint given".into()));
        }
        let urls: Vec<String> = endpoints.iter().map(|e| normalize_endpoint(e)).collect();
        let mut connect = ConnectOptions::new()
            .with_timeout(options.request_timeout)
            .with_connect_timeout(options.connect_timeout.min(Duration::from_secs(2)))
            // Detects a dead or frozen member under an open watch stream. etcd refuses pings more
            // often than every 5 s (--grpc-keepalive-min-time), hence 6 s.
            .with_keep_alive(Duration::from_secs(6), Duration::from_secs(4))
            // A member without a leader answers "no leader" at once instead of timing out.
            .with_require_leader(true);
        if let Some(tls) = &options.tls {
            connect = connect.with_tls(tls_options(tls)?);
        }
        let eps = Arc::new(Endpoints::new(&urls, &connect).await?);
        let (closed, closed_rx) = tokio::sync::watch::channel(());
        let store = EtcdStore {
            inner: Arc::new(Inner {
                eps,
                endpoints: endpoints.to_vec(),
                options,
                _closed: closed,
                closed_rx,
            }),
        };
        store.wait_ready().await?;
        Ok(store)
    }

    /// Retries a cheap linearizable read (each endpoint in turn) until one answers or the connect
    /// timeout passes.
    async fn wait_ready(&self) -> Result<(), StoreError> {
        let eps = &self.inner.eps;
        let deadline = Instant::now() + self.inner.options.connect_timeout;
        loop {
            let (i, client) = eps.current();
            let mut kv = client.kv_client();
            let probe = kv.get(
                KeyRange::prefix("").start,
                Some(GetOptions::new().with_count_only().with_range(vec![0u8])),
            );
            let left = deadline.saturating_duration_since(Instant::now());
            let err = match tokio::time::timeout(left, probe).await {
                Ok(Ok(_)) => return Ok(()),
                Ok(Err(e)) => map_err("connect", eps.url(i), e).to_string(),
                Err(_) => format!("no answer from {}", eps.url(i)),
            };
            eps.failed(i);
            if Instant::now() + Duration::from_millis(100) >= deadline {
                return Err(StoreError::Unavailable(format!(
                    "no etcd endpoint of {} answered within {:?}: {err}",
                    self.location(),
                    self.inner.options.connect_timeout
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn location(&self) -> String {
        self.inner.endpoints.join(",")
    }

    /// Runs one etcd request on the current endpoint with the request timeout (the client's own
    /// timeout does not cover everything). When the endpoint gives no answer, the store moves to
    /// the next endpoint and, if the request is `retriable` (a read) or provably not sent, runs it
    /// there, each endpoint once, within twice the request timeout. The inner error is etcd's
    /// answer, left unmapped so callers can recognise specific errors first.
    async fn raw<T, F, Fut>(
        &self,
        what: &str,
        retriable: bool,
        mut request: F,
    ) -> Result<Result<T, etcd_client::Error>, StoreError>
    where
        F: FnMut(Client) -> Fut,
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        let eps = &self.inner.eps;
        let limit = self.inner.options.request_timeout + Duration::from_millis(500);
        let deadline = Instant::now() + 2 * limit;
        let mut last = None;
        for _ in 0..eps.len() {
            let left = deadline
                .saturating_duration_since(Instant::now())
                .min(limit);
            if left.is_zero() {
                break;
            }
            let (i, client) = eps.current();
            let (err, how) = match tokio::time::timeout(left, request(client)).await {
                Ok(Ok(v)) => return Ok(Ok(v)),
                Ok(Err(e)) => match unanswered(&e) {
                    None => return Ok(Err(e)),
                    Some(how) => (map_err(what, eps.url(i), e), how),
                },
                Err(_) => (
                    StoreError::Unavailable(format!(
                        "etcd {what}: no answer from {} within {left:?}",
                        eps.url(i)
                    )),
                    Unanswered::Unknown,
                ),
            };
            eps.failed(i);
            if !retriable && how == Unanswered::Unknown {
                return Err(err);
            }
            last = Some(err);
        }
        Err(last.unwrap_or_else(|| {
            StoreError::Unavailable(format!("etcd {what}: no answer from {}", self.location()))
        }))
    }

    /// [`EtcdStore::raw`] with every etcd error mapped.
    async fn call<T, F, Fut>(
        &self,
        what: &str,
        retriable: bool,
        request: F,
    ) -> Result<T, StoreError>
    where
        F: FnMut(Client) -> Fut,
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        self.raw(what, retriable, request)
            .await?
            .map_err(|e| map_err(what, &self.location(), e))
    }

    fn header_revision(
        &self,
        what: &str,
        header: Option<&etcd_client::ResponseHeader>,
    ) -> Result<Revision, StoreError> {
        header
            .map(|h| rev(h.revision()))
            .ok_or_else(|| self.backend_err(what, "response without header"))
    }

    fn backend_err(&self, what: &str, message: impl Into<String>) -> StoreError {
        StoreError::Backend {
            path: PathBuf::from(self.location()),
            context: what.into(),
            message: message.into(),
        }
    }

    /// Discards the history before `revision` (etcd compaction): watches starting before it then
    /// fail with [`StoreError::Compacted`]. Operators usually let etcd auto-compact instead.
    pub async fn compact(&self, revision: Revision) -> Result<(), StoreError> {
        self.call("compact", true, |c| async move {
            c.kv_client().compact(etcd_rev(revision), None).await
        })
        .await
        .map(|_| ())
    }

    /// One page of `range`: keys of `[start, end)` as of `at` (0: now).
    async fn range_page(
        &self,
        start: Vec<u8>,
        end: &[u8],
        at: i64,
    ) -> Result<etcd_client::GetResponse, StoreError> {
        let mut opts = GetOptions::new()
            .with_range(end.to_vec())
            .with_limit(RANGE_PAGE);
        if at > 0 {
            opts = opts.with_revision(at);
        }
        self.call("range", true, |c| {
            let (start, opts) = (start.clone(), opts.clone());
            async move {
                let mut kv = c.kv_client().max_decoding_message_size(MAX_MESSAGE);
                kv.get(start, Some(opts)).await
            }
        })
        .await
    }

    /// Names the lease of `leases` (from a transaction etcd refused with "requested lease not
    /// found") that is gone.
    async fn dead_lease(&self, leases: &[LeaseId]) -> StoreError {
        if let [only] = leases {
            return StoreError::LeaseNotFound(*only);
        }
        for &id in leases {
            let ttl = self.raw("lease ttl", true, |c| async move {
                c.lease_client().time_to_live(id, None).await
            });
            match ttl.await {
                Ok(Ok(r)) if r.ttl() > 0 => {}
                Ok(Ok(_)) => return StoreError::LeaseNotFound(id),
                Ok(Err(e)) if is_lease_not_found(&e) => return StoreError::LeaseNotFound(id),
                Ok(Err(e)) => return map_err("lease ttl", &self.location(), e),
                Err(e) => return e,
            }
        }
        StoreError::LeaseNotFound(leases.first().copied().unwrap_or(0))
    }

    /// Index of the first compare of `compares` that fails against the failure-branch reads.
    fn first_failed(
        &self,
        compares: &[crate::types::Compare],
        resp: &etcd_client::TxnResponse,
    ) -> Result<usize, StoreError> {
        let keys = compare_keys(compares);
        let mut current: HashMap<&str, Option<KeyValue>> = HashMap::with_capacity(keys.len());
        for (key, op) in keys.iter().zip(resp.op_responses()) {
            let TxnOpResponse::Get(get) = op else {
                return Err(self.backend_err("commit", "unexpected response in failure branch"));
            };
            let kv = get.kvs().first().map(to_kv).transpose()?;
            current.insert(key, kv);
        }
        compares
            .iter()
            .position(|c| !holds(c, current.get(c.key()).and_then(|kv| kv.as_ref())))
            .ok_or_else(|| self.backend_err("commit", "etcd failed a compare that holds"))
    }
}

/// An etcd revision (never negative) as ours.
fn rev(r: i64) -> Revision {
    u64::try_from(r).unwrap_or(0)
}

/// An etcd key/value as ours; keys that are not UTF-8 (written by someone else) are refused.
fn to_kv(kv: &etcd_client::KeyValue) -> Result<KeyValue, StoreError> {
    let key = std::str::from_utf8(kv.key()).map_err(|_| StoreError::Backend {
        path: PathBuf::new(),
        context: "decode".into(),
        message: format!(
            "etcd key {:?} is not utf-8",
            String::from_utf8_lossy(kv.key())
        ),
    })?;
    Ok(KeyValue {
        key: key.to_string(),
        value: kv.value().to_vec(),
        create_revision: rev(kv.create_revision()),
        mod_revision: rev(kv.mod_revision()),
        lease: (kv.lease() != 0).then_some(kv.lease()),
    })
}

fn is_lease_not_found(e: &etcd_client::Error) -> bool {
    match e {
        etcd_client::Error::GRpcStatus(s) => {
            s.code() == Code::NotFound && s.message().contains("lease not found")
        }
        etcd_client::Error::LeaseKeepAliveError(m) => m.contains("lease not found"),
        _ => false,
    }
}

/// Maps an etcd client error: unreachable, no quorum/leader, timeouts → `Unavailable`; requests
/// etcd refuses as malformed or too large → `Invalid`; anything else → `Backend`.
pub(crate) fn map_err(what: &str, location: &str, e: etcd_client::Error) -> StoreError {
    use etcd_client::Error as E;
    match &e {
        E::GRpcStatus(s) if unanswered(&e).is_some() => {
            StoreError::Unavailable(format!("etcd {what} at {location}: {}", s.message()))
        }
        _ if unanswered(&e).is_some() => {
            StoreError::Unavailable(format!("etcd {what} at {location}: {e}"))
        }
        E::GRpcStatus(s) => {
            let msg = s.message();
            if s.code() == Code::InvalidArgument {
                StoreError::Invalid(format!("etcd refused {what}: {msg}"))
            } else {
                StoreError::Backend {
                    path: PathBuf::from(location),
                    context: what.into(),
                    message: format!("{:?}: {msg}", s.code()),
                }
            }
        }
        _ => StoreError::Backend {
            path: PathBuf::from(location),
            context: what.into(),
            message: e.to_string(),
        },
    }
}

fn check_keys(txn: &Txn) -> Result<(), StoreError> {
    for c in &txn.compares {
        check_key(c.key())?;
    }
    for op in &txn.ops {
        match op {
            Op::Put { key, .. } | Op::Delete { key } => check_key(key)?,
            Op::DeletePrefix { .. } => {}
        }
    }
    Ok(())
}

/// Seconds etcd should grant for `ttl`: rounded up (etcd counts whole seconds), at least 1.
fn ttl_secs(ttl: Duration) -> i64 {
    let secs = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
    i64::try_from(secs.max(1)).unwrap_or(i64::MAX)
}

#[async_trait]
impl StateStore for EtcdStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        if key.is_empty() {
            return Ok(None);
        }
        let resp = self
            .call("get", true, |c| async move {
                c.kv_client().get(key.as_bytes(), None).await
            })
            .await?;
        resp.kvs().first().map(to_kv).transpose()
    }

    async fn range(&self, prefix: &str) -> Result<Snapshot, StoreError> {
        let range = KeyRange::prefix(prefix);
        let mut kvs = Vec::new();
        let mut start = range.start.clone();
        let mut at = 0i64;
        loop {
            let resp = self.range_page(start, &range.end, at).await?;
            if at == 0 {
                at = etcd_rev(self.header_revision("range", resp.header())?);
            }
            for kv in resp.kvs() {
                kvs.push(to_kv(kv)?);
            }
            match resp.kvs().last() {
                Some(last) if resp.more() => {
                    // Next page: the smallest key after the last one, same revision.
                    start = last.key().to_vec();
                    start.push(0);
                }
                _ => break,
            }
        }
        Ok(Snapshot {
            kvs,
            revision: rev(at),
        })
    }

    async fn commit(&self, txn: Txn) -> Result<TxnOutcome, StoreError> {
        check_keys(&txn)?;
        let Txn { compares, ops } = txn;
        let mut leases: Vec<LeaseId> = Vec::new();
        for op in &ops {
            if let Op::Put { lease: Some(l), .. } = op {
                if !leases.contains(l) {
                    leases.push(*l);
                }
            }
        }
        let etxn = build_txn(&compares, plan_ops(ops));
        let send = |c: Client| {
            let etxn = etxn.clone();
            async move { c.kv_client().txn(etxn).await }
        };
        let resp = match self.raw("commit", false, send).await? {
            Ok(resp) => resp,
            Err(e) if is_lease_not_found(&e) => return Err(self.dead_lease(&leases).await),
            Err(e) => return Err(map_err("commit", &self.location(), e)),
        };
        if resp.succeeded() {
            // The new revision, or the current one if nothing changed (etcd spends none then).
            let revision = self.header_revision("commit", resp.header())?;
            return Ok(TxnOutcome::Committed { revision });
        }
        let index = self.first_failed(&compares, &resp)?;
        Ok(TxnOutcome::CompareFailed { index })
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, StoreError> {
        let ctx = watch::WatchCtx {
            eps: self.inner.eps.clone(),
            location: self.location(),
            options: self.inner.options.clone(),
            closed: self.inner.closed_rx.clone(),
        };
        watch::start(ctx, prefix, after).await
    }

    async fn grant_lease(&self, ttl: Duration) -> Result<LeaseId, StoreError> {
        check_ttl(ttl)?;
        let secs = ttl_secs(ttl);
        // Not retried when the answer is lost: a lease granted twice just expires unused.
        let resp = self
            .call("grant lease", false, |c| async move {
                c.lease_client().grant(secs, None).await
            })
            .await?;
        if !resp.error().is_empty() {
            return Err(self.backend_err("grant lease", resp.error()));
        }
        Ok(resp.id())
    }

    async fn keep_alive(&self, lease: LeaseId) -> Result<(), StoreError> {
        // One keep-alive round trip on a short-lived stream: the client answers an expired or
        // unknown lease (TTL <= 0 in the answer) with "lease not found".
        let renew = self.raw("keep lease alive", true, |c| async move {
            c.lease_client().keep_alive(lease).await
        });
        match renew.await? {
            Ok(_) => Ok(()),
            Err(e) if is_lease_not_found(&e) => Err(StoreError::LeaseNotFound(lease)),
            Err(e) => Err(map_err("keep lease alive", &self.location(), e)),
        }
    }

    async fn revoke_lease(&self, lease: LeaseId) -> Result<(), StoreError> {
        let revoke = self.raw("revoke lease", false, |c| async move {
            c.lease_client().revoke(lease).await
        });
        match revoke.await? {
            Ok(_) => Ok(()),
            Err(e) if is_lease_not_found(&e) => Err(StoreError::LeaseNotFound(lease)),
            Err(e) => Err(map_err("revoke lease", &self.location(), e)),
        }
    }

    fn info(&self) -> StoreInfo {
        StoreInfo {
            backend: "etcd".into(),
            location: self.location(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_rounds_up_to_seconds() {
        assert_eq!(ttl_secs(Duration::from_millis(300)), 1);
        assert_eq!(ttl_secs(Duration::from_secs(2)), 2);
        assert_eq!(ttl_secs(Duration::from_millis(2001)), 3);
    }

    #[test]
    fn endpoints_accept_contiv_spelling() {
        assert_eq!(normalize_endpoint("etcd://h:1"), "http://h:1");
        assert_eq!(normalize_endpoint("http://h:1"), "http://h:1");
    }

    #[test]
    fn unavailable_errors_are_recognised() {
        let e = etcd_client::Error::GRpcStatus(tonic::Status::unavailable("etcdserver: no leader"));
        assert!(map_err("commit", "x", e).is_unavailable());
        let e =
            etcd_client::Error::GRpcStatus(tonic::Status::unknown("etcdserver: request timed out"));
        assert!(map_err("commit", "x", e).is_unavailable());
        let e = etcd_client::Error::GRpcStatus(tonic::Status::invalid_argument(
            "etcdserver: too many operations in txn request",
        ));
        assert!(matches!(map_err("commit", "x", e), StoreError::Invalid(_)));
    }
}
