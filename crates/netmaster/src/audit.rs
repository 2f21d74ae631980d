//! The audit log: one entry per write and per refused request, kept in the state store under
//! [`keys::AUDIT_PREFIX`] (so etcd shares it between netmasters and it survives a leader change),
//! appended durably before the answer is sent, bounded in size (oldest entries trimmed).
//!
//! Appends go through one writer task that commits every entry waiting at that moment in one
//! store transaction (group commit): concurrent writes share a commit instead of queueing one
//! commit each, which matters on etcd (one quorum round trip per transaction).
//!
//! What is recorded, and by which netmaster, is decided in `http::audit`; this module only stores,
//! trims and reads entries.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use contiv_api::keys;
use contiv_store::{StateStore, StoreError, Txn};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

/// Default of `--audit-max-size`.
pub const DEFAULT_MAX_BYTES: u64 = 64 << 20;
/// Most entries one group commit carries (etcd refuses transactions above `--max-txn-ops`, 128
/// by default).
const MAX_BATCH: usize = 100;
/// A trim brings the log down to this share of the limit, so trims (which read the whole log)
/// happen once per tenth of the limit written, not on every append past it.
const TRIM_TO_PERCENT: u64 = 90;
/// Entries returned by a query without `limit`.
pub const DEFAULT_LIMIT: usize = 1000;

/// One audit entry, as stored and as `GET /api/v1/audit/` answers it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    /// RFC 3339, UTC, nanoseconds.
    pub time: String,
    /// The user of the token, `host:<name>` for an agent's certificate, or `anonymous`.
    pub user: String,
    /// The client's address (the original client's when a follower forwarded the request).
    pub source: String,
    pub method: String,
    pub path: String,
    /// Object type (`network`, `endpointGroup`, `user`, `endpoint`...), when the call names one.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub key: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tenant: String,
    /// The object before and after the call (objects of `/api/v1`); `null` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Value>,
    /// The request body, secrets removed (calls without a stored object, and refused writes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<Value>,
    /// The HTTP status answered.
    pub status: u16,
    /// Why the call was refused (the error message answered), for statuses of 400 and above.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error: String,
}

/// What a query selects.
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// Entries written at or after this time (unix nanoseconds).
    pub since_nanos: Option<u128>,
    pub user: Option<String>,
    pub tenant: Option<String>,
    /// Only entries of these tenants (a tenant-admin's view); `None`: every entry.
    pub visible_tenants: Option<Vec<String>>,
    /// The newest `limit` matching entries (in time order).
    pub limit: usize,
}

impl From<StoreError> for AuditError {
    fn from(e: StoreError) -> AuditError {
        AuditError::Store(e.to_string())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("the audit log's store: {0}")]
    Store(String),
    #[error("the audit log is stopped")]
    Stopped,
}

struct Pending {
    key: String,
    value: Vec<u8>,
    done: oneshot::Sender<Result<(), AuditError>>,
}

/// The audit log of one netmaster (the entries themselves are shared through the store).
pub struct AuditLog {
    store: Arc<dyn StateStore>,
    tx: mpsc::Sender<Pending>,
    /// Distinguishes this netmaster's keys from the others' on a shared store.
    id: String,
    seq: AtomicU64,
    /// Last timestamp handed out, so keys of this process never go backwards with the clock.
    last_nanos: Mutex<u128>,
}

impl AuditLog {
    /// Reads the size of the existing log and starts the writer; `max_bytes` bounds the log
    /// (keys + values).
    pub async fn start(
        store: Arc<dyn StateStore>,
        max_bytes: u64,
    ) -> Result<Arc<AuditLog>, AuditError> {
        let index = Index::load(&*store).await?;
        let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
        let log = Arc::new(AuditLog {
            store: store.clone(),
            tx,
            id: random_id(),
            seq: AtomicU64::new(0),
            last_nanos: Mutex::new(0),
        });
        tokio::spawn(writer(store, rx, index, max_bytes));
        Ok(log)
    }

    /// The time of a new entry (unix nanoseconds, never behind the previous one).
    pub fn now_nanos(&self) -> u128 {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_nanos();
        let mut last = self.last_nanos.lock();
        *last = now.max(*last + 1);
        *last
    }

    /// Appends `entry` (its `time` set from `nanos`); returns once the store committed it.
    pub async fn append(&self, nanos: u128, mut entry: Entry) -> Result<(), AuditError> {
        entry.time = format_time(nanos);
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let key = keys::audit(nanos, seq, &self.id);
        let value = serde_json::to_vec(&entry).unwrap_or_default();
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Pending { key, value, done })
            .await
            .map_err(|_| AuditError::Stopped)?;
        wait.await.map_err(|_| AuditError::Stopped)?
    }

    /// The entries `q` selects, oldest first.
    pub async fn query(&self, q: &Query) -> Result<Vec<Entry>, AuditError> {
        let snap = self.store.range(keys::AUDIT_PREFIX).await?;
        let from = q.since_nanos.map(|n| keys::audit(n, 0, ""));
        let mut out: VecDeque<Entry> = VecDeque::new();
        for kv in &snap.kvs {
            if from.as_ref().is_some_and(|f| kv.key.as_str() < f.as_str()) {
                continue;
            }
            let Ok(e) = serde_json::from_slice::<Entry>(&kv.value) else {
                continue;
            };
            if !selects(q, &e) {
                continue;
            }
            if out.len() == q.limit {
                out.pop_front();
            }
            out.push_back(e);
        }
        Ok(out.into())
    }
}

fn selects(q: &Query, e: &Entry) -> bool {
    if q.user.as_ref().is_some_and(|u| *u != e.user) {
        return false;
    }
    if q.tenant.as_ref().is_some_and(|t| *t != e.tenant) {
        return false;
    }
    q.visible_tenants
        .as_ref()
        .is_none_or(|ts| ts.contains(&e.tenant))
}

/// RFC 3339 in UTC with nanoseconds.
pub fn format_time(nanos: u128) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(nanos as i128)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// A `since` of a query: an RFC 3339 time, or a duration back from `now` (`90s`, `10m`, `2h`,
/// `7d`).
pub fn parse_since(s: &str, now_nanos: u128) -> Result<u128, String> {
    if let Ok(t) = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339) {
        return u128::try_from(t.unix_timestamp_nanos())
            .map_err(|_| format!("since {s:?}: before 1970"));
    }
    let bad = || {
        format!(
            "since {s:?}: expected an RFC 3339 time (2026-12-05T06:00:00Z) or a duration such \
             as 30s, 10m, 2h, 7d"
        )
    };
    let split = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (num, unit) = s.split_at(split);
    let n: u128 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    Ok(now_nanos.saturating_sub(n.saturating_mul(secs * 1_000_000_000)))
}

fn random_id() -> String {
    let mut b = [0u8; 4];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The keys and sizes of the log as this netmaster knows them: exact after a load, then grown
/// by its own appends (another netmaster's appends show up at the next load, which every trim
/// starts with).
struct Index {
    entries: VecDeque<(String, u64)>,
    bytes: u64,
}

impl Index {
    async fn load(store: &dyn StateStore) -> Result<Index, StoreError> {
        let snap = store.range(keys::AUDIT_PREFIX).await?;
        let mut ix = Index {
            entries: VecDeque::with_capacity(snap.kvs.len()),
            bytes: 0,
        };
        for kv in snap.kvs {
            ix.push(kv.key.clone(), (kv.key.len() + kv.value.len()) as u64);
        }
        Ok(ix)
    }

    fn push(&mut self, key: String, size: u64) {
        self.bytes += size;
        self.entries.push_back((key, size));
    }
}

/// The one writer: group commits, then trims when the log outgrew `max_bytes`.
async fn writer(
    store: Arc<dyn StateStore>,
    mut rx: mpsc::Receiver<Pending>,
    mut index: Index,
    max_bytes: u64,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let mut txn = Txn::new();
        for p in &batch {
            txn = txn.put(p.key.clone(), p.value.clone());
        }
        let result = store.commit(txn).await;
        let ok = result.is_ok();
        for p in batch.drain(..) {
            if ok {
                let size = (p.key.len() + p.value.len()) as u64;
                index.push(p.key, size);
            }
            let _ = p.done.send(match &result {
                Ok(_) => Ok(()),
                Err(e) => Err(AuditError::Store(e.to_string())),
            });
        }
        if let Err(e) = &result {
            tracing::error!("audit log append failed: {e}");
        }
        if index.bytes > max_bytes {
            match trim(&*store, max_bytes).await {
                Ok(fresh) => index = fresh,
                Err(e) => tracing::warn!("trimming the audit log: {e}"),
            }
        }
    }
}

/// Deletes the oldest entries until the log is at [`TRIM_TO_PERCENT`] of `max_bytes`; returns
/// the index of what is left.
async fn trim(store: &dyn StateStore, max_bytes: u64) -> Result<Index, StoreError> {
    let mut index = Index::load(store).await?;
    let target = max_bytes / 100 * TRIM_TO_PERCENT;
    let mut doomed = Vec::new();
    while index.bytes > target {
        let Some((key, size)) = index.entries.pop_front() else {
            break;
        };
        index.bytes -= size;
        doomed.push(key);
    }
    for chunk in doomed.chunks(MAX_BATCH) {
        let txn = chunk.iter().fold(Txn::new(), |t, k| t.delete(k.clone()));
        store.commit(txn).await?;
    }
    if !doomed.is_empty() {
        tracing::info!(
            removed = doomed.len(),
            kept = index.entries.len(),
            bytes = index.bytes,
            "audit log trimmed (oldest entries)"
        );
    }
    Ok(index)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_a_time_or_a_duration() {
        let now = 1_800_000_000u128 * 1_000_000_000;
        assert_eq!(parse_since("10m", now), Ok(now - 600 * 1_000_000_000));
        assert_eq!(
            parse_since("2026-12-05T06:00:00Z", now),
            Ok(1_796_450_400u128 * 1_000_000_000)
        );
        assert!(parse_since("10 minutes", now).is_err());
        assert!(parse_since("", now).is_err());
        assert_eq!(format_time(1_000_000_001), "1970-01-01T00:00:01.000000001Z");
    }

    #[tokio::test]
    async fn appends_in_order_and_trims_the_oldest() {
        let store: Arc<dyn StateStore> = Arc::new(contiv_store::MemoryStore::new());
        let log = AuditLog::start(store.clone(), 4000).await.unwrap();
        for i in 0..40 {
            let e = Entry {
                user: format!("u{}", i % 2),
                tenant: "t".into(),
                path: format!("/api/v1/networks/t:n{i}/"),
                status: 200,
                ..Entry::default()
            };
            log.append(log.now_nanos(), e).await.unwrap();
        }
        let all = log
            .query(&Query {
                limit: 1000,
                ..Query::default()
            })
            .await
            .unwrap();
        let size: usize = store
            .range(keys::AUDIT_PREFIX)
            .await
            .unwrap()
            .kvs
            .iter()
            .map(|kv| kv.key.len() + kv.value.len())
            .sum();
        assert!(size <= 4000, "log of {size} bytes over its bound");
        assert!(
            all.len() < 40 && all.len() > 10,
            "{} entries kept",
            all.len()
        );
        assert_eq!(all.last().unwrap().path, "/api/v1/networks/t:n39/");
        let paths: Vec<_> = all.iter().map(|e| e.path.clone()).collect();
        let mut sorted = paths.clone();
        sorted.sort_by_key(|p| {
            let n = p.trim_start_matches("/api/v1/networks/t:n");
            n.trim_end_matches('/').parse::<u32>().unwrap()
        });
        assert_eq!(paths, sorted, "entries out of order");
        let u1 = log
            .query(&Query {
                user: Some("u1".into()),
                limit: 3,
                ..Query::default()
            })
            .await
            .unwrap();
        assert_eq!(u1.len(), 3);
        assert!(u1.iter().all(|e| e.user == "u1"));
    }
}
