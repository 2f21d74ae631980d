//! Conformance suite: the same semantic tests run against every backend (memory, SQLite, and etcd:
//! a fresh 1-member cluster per test, started by `contiv_store::testing::EtcdCluster`).
//!
//! Revisions are checked relative to the store's revision at the start of each test (`base`):
//! etcd's empty store is at revision 1, the embedded ones at 0.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use contiv_store::testing::EtcdCluster;
use contiv_store::{
    Compare, EtcdStore, EventKind, MemoryStore, SqliteStore, StateStore, StoreError, SyncMode, Txn,
    TxnOutcome, WatchEvent, WatchStream,
};
use parking_lot::Mutex;

/// Watch history (events) of the stores of most tests.
const DEFAULT_HISTORY: usize = 50_000;

/// Creates stores of one backend; SQLite ones live in a temporary directory, etcd ones in a
/// 1-member cluster of the backend's own.
struct Backend {
    dir: Option<tempfile::TempDir>,
    sync: SyncMode,
    count: AtomicUsize,
    etcd: Option<EtcdCluster>,
    /// The last etcd store handed out, with the history it should keep (`trim_history`).
    etcd_store: Mutex<Option<(EtcdStore, usize)>>,
}

impl Backend {
    fn memory() -> Self {
        Backend {
            dir: None,
            sync: SyncMode::Normal,
            count: AtomicUsize::new(0),
            etcd: None,
            etcd_store: Mutex::new(None),
        }
    }
    fn sqlite(sync: SyncMode) -> Self {
        Backend {
            dir: Some(tempfile::tempdir().expect("tempdir")),
            ..Backend::memory()
        }
        .with_sync(sync)
    }
    fn with_sync(mut self, sync: SyncMode) -> Self {
        self.sync = sync;
        self
    }
    fn etcd() -> Self {
        Backend {
            etcd: Some(EtcdCluster::start(1).expect("start etcd")),
            ..Backend::memory()
        }
    }
    fn is_etcd(&self) -> bool {
        self.etcd.is_some()
    }
    /// Shortest lease TTL the backend grants (etcd raises shorter ones); zero: any.
    fn min_ttl(&self) -> Duration {
        self.etcd
            .as_ref()
            .map_or(Duration::ZERO, |c| c.min_lease_ttl())
    }
    async fn store(&self) -> Arc<dyn StateStore> {
        self.store_with_history(DEFAULT_HISTORY).await
    }
    /// A store keeping about `events` events of watch history. etcd keeps history until it is
    /// compacted: `trim_history` compacts it to that size.
    async fn store_with_history(&self, events: usize) -> Arc<dyn StateStore> {
        if let Some(cluster) = &self.etcd {
            let s = cluster.store().await.expect("connect etcd");
            if events < DEFAULT_HISTORY {
                // Kept only when trimming is wanted: a kept clone keeps the store alive.
                *self.etcd_store.lock() = Some((s.clone(), events));
            }
            return Arc::new(s);
        }
        match &self.dir {
            None => Arc::new(MemoryStore::with_history(events)),
            Some(dir) => {
                let n = self.count.fetch_add(1, Ordering::Relaxed);
                let path = dir.path().join(format!("store{n}"));
                Arc::new(
                    SqliteStore::open_with_history(&path, self.sync, events).expect("open sqlite"),
                )
            }
        }
    }
    /// etcd: compacts the last store's history to the size it was opened with (one event per
    /// revision assumed); the embedded stores trim their ring themselves.
    async fn trim_history(&self) {
        let Some((s, events)) = self.etcd_store.lock().clone() else {
            return;
        };
        let current = s.range("").await.unwrap().revision;
        s.compact(current + 1 - events as u64).await.unwrap();
    }
}

/// The store's current revision (the base of a test's expected revisions).
async fn base(s: &dyn StateStore) -> u64 {
    s.range("").await.unwrap().revision
}

async fn next(w: &mut WatchStream) -> Vec<WatchEvent> {
    match tokio::time::timeout(Duration::from_secs(5), w.next()).await {
        Ok(Some(Ok(events))) => events,
        other => panic!("expected a batch, got {other:?}"),
    }
}

/// The keys under `prefix`, in order.
async fn keys_under(s: &dyn StateStore, prefix: &str) -> Vec<String> {
    s.range(prefix)
        .await
        .unwrap()
        .kvs
        .into_iter()
        .map(|kv| kv.key)
        .collect()
}

fn committed(o: TxnOutcome) -> u64 {
    match o {
        TxnOutcome::Committed { revision } => revision,
        other => panic!("expected commit, got {other:?}"),
    }
}

async fn txn_atomicity(b: &Backend) {
    let s = b.store().await;
    let r1 = committed(s.commit(Txn::new().put("/a", "1")).await.unwrap());
    let out = s
        .commit(Txn::new().when_absent("/a").put("/b", "2").put("/c", "3"))
        .await
        .unwrap();
    assert_eq!(out, TxnOutcome::CompareFailed { index: 0 });
    let out = s
        .commit(
            Txn::new()
                .when(Compare::Exists("/a".into()))
                .when(Compare::Value("/a".into(), b"x".to_vec()))
                .put("/b", "2"),
        )
        .await
        .unwrap();
    assert_eq!(out, TxnOutcome::CompareFailed { index: 1 });
    // An error (unknown lease) in the last op leaves the earlier ops unapplied.
    let err = s
        .commit(Txn::new().put("/b", "2").put_with_lease("/c", "3", 4242))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::LeaseNotFound(4242)), "{err}");
    let err = s.commit(Txn::new().put("", "x")).await.unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err}");
    let snap = s.range("").await.unwrap();
    assert_eq!(snap.revision, r1);
    assert_eq!(snap.kvs.len(), 1);
    let out = s
        .commit(
            Txn::new()
                .when(Compare::Value("/a".into(), b"1".to_vec()))
                .put("/b", "2")
                .put("/c", "3"),
        )
        .await;
    assert_eq!(committed(out.unwrap()), r1 + 1);
    assert_eq!(s.range("").await.unwrap().kvs.len(), 3);
}

async fn revisions(b: &Backend) {
    let s = b.store().await;
    let b0 = base(s.as_ref()).await;
    assert_eq!(
        committed(
            s.commit(Txn::new().put("/k", "v1").put("/j", "x"))
                .await
                .unwrap()
        ),
        b0 + 1
    );
    assert_eq!(
        committed(s.commit(Txn::new().put("/k", "v2")).await.unwrap()),
        b0 + 2
    );
    let kv = s.get("/k").await.unwrap().unwrap();
    assert_eq!(
        (
            kv.value.as_slice(),
            kv.create_revision,
            kv.mod_revision,
            kv.lease
        ),
        (&b"v2"[..], b0 + 1, b0 + 2, None)
    );
    // Nothing changed: no revision spent.
    assert_eq!(
        committed(s.commit(Txn::new().delete("/absent")).await.unwrap()),
        b0 + 2
    );
    assert_eq!(
        committed(
            s.commit(Txn::new().when(Compare::Exists("/k".into())))
                .await
                .unwrap()
        ),
        b0 + 2
    );
    // mod_revision compares (0 = absent).
    let out = s
        .commit(Txn::new().when_mod_revision("/k", b0 + 1).put("/k", "v3"))
        .await
        .unwrap();
    assert_eq!(out, TxnOutcome::CompareFailed { index: 0 });
    assert_eq!(
        committed(
            s.commit(Txn::new().when_mod_revision("/k", b0 + 2).put("/k", "v3"))
                .await
                .unwrap()
        ),
        b0 + 3
    );
    assert_eq!(
        committed(
            s.commit(Txn::new().when_mod_revision("/new", 0).put("/new", "n"))
                .await
                .unwrap()
        ),
        b0 + 4
    );
    assert_eq!(
        committed(s.commit(Txn::new().delete("/k")).await.unwrap()),
        b0 + 5
    );
    assert!(s.get("/k").await.unwrap().is_none());
    assert_eq!(
        committed(s.commit(Txn::new().put("/k", "again")).await.unwrap()),
        b0 + 6
    );
    let kv = s.get("/k").await.unwrap().unwrap();
    assert_eq!((kv.create_revision, kv.mod_revision), (b0 + 6, b0 + 6));
    assert_eq!(s.range("").await.unwrap().revision, b0 + 6);
}

async fn range_prefix(b: &Backend) {
    let s = b.store().await;
    let keys = ["/a/2", "/a/1", "/ab", "/b", "/a/10", "/a", "/a/\u{10FFFF}"];
    let mut txn = Txn::new();
    for k in keys {
        txn = txn.put(k, k.as_bytes().to_vec());
    }
    let rev = committed(s.commit(txn).await.unwrap());
    let snap = s.range("/a/").await.unwrap();
    let got: Vec<&str> = snap.kvs.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(got, ["/a/1", "/a/10", "/a/2", "/a/\u{10FFFF}"]);
    assert_eq!(snap.revision, rev);
    assert_eq!(snap.kvs[0].value, b"/a/1");
    assert_eq!(s.range("").await.unwrap().kvs.len(), keys.len());
    assert!(s.range("/zzz").await.unwrap().kvs.is_empty());
    assert_eq!(s.range("/a").await.unwrap().kvs.len(), 6);
}

async fn delete_prefix(b: &Backend) {
    let s = b.store().await;
    let b0 = base(s.as_ref()).await;
    committed(
        s.commit(
            Txn::new()
                .put("/p/1", "a")
                .put("/p/2", "b")
                .put("/p2", "c")
                .put("/q", "d"),
        )
        .await
        .unwrap(),
    );
    let mut w = s.watch("", b0 + 1).await.unwrap();
    let rev = committed(s.commit(Txn::new().delete_prefix("/p/")).await.unwrap());
    assert_eq!(rev, b0 + 2);
    let events = next(&mut w).await;
    let keys: Vec<(&str, EventKind, u64, usize)> = events
        .iter()
        .map(|e| (e.kv.key.as_str(), e.kind, e.revision, e.kv.value.len()))
        .collect();
    assert_eq!(
        keys,
        [
            ("/p/1", EventKind::Delete, b0 + 2, 0),
            ("/p/2", EventKind::Delete, b0 + 2, 0)
        ]
    );
    let left = keys_under(s.as_ref(), "").await;
    assert_eq!(left, ["/p2", "/q"]);
    assert_eq!(
        committed(s.commit(Txn::new().delete_prefix("/p/")).await.unwrap()),
        b0 + 2
    );
    assert_eq!(
        committed(s.commit(Txn::new().delete_prefix("")).await.unwrap()),
        b0 + 3
    );
    assert!(s.range("").await.unwrap().kvs.is_empty());
}

async fn watch_from_past(b: &Backend) {
    let s = b.store().await;
    let b0 = base(s.as_ref()).await;
    for i in 1..=6u32 {
        let prefix = if i % 2 == 0 { "/w/" } else { "/other/" };
        committed(
            s.commit(Txn::new().put(format!("{prefix}{i}"), i.to_string()))
                .await
                .unwrap(),
        );
    }
    let mut w = s.watch("/w/", b0 + 2).await.unwrap();
    let revs: Vec<u64> = [next(&mut w).await, next(&mut w).await]
        .iter()
        .map(|e| e[0].revision)
        .collect();
    assert_eq!(revs, [b0 + 4, b0 + 6]);
    let mut w0 = s.watch("/w/", 0).await.unwrap();
    let first = next(&mut w0).await;
    assert_eq!(
        (
            first[0].kv.key.as_str(),
            first[0].kind,
            first[0].kv.value.as_slice()
        ),
        ("/w/2", EventKind::Put, &b"2"[..])
    );
    // Continuing from a range snapshot sees exactly the later changes.
    let snap = s.range("/w/").await.unwrap();
    let mut w2 = s.watch("/w/", snap.revision).await.unwrap();
    committed(s.commit(Txn::new().put("/w/7", "7")).await.unwrap());
    assert_eq!(next(&mut w2).await[0].revision, snap.revision + 1);
}

async fn watch_live(b: &Backend) {
    let s = b.store().await;
    let mut w = s.watch("/live/", 0).await.unwrap();
    let writer = s.clone();
    let task = tokio::spawn(async move {
        for i in 0..20u32 {
            let txn = Txn::new()
                .put(format!("/live/{i}"), "x")
                .put(format!("/live/{i}b"), "y")
                .put("/skip", "z");
            committed(writer.commit(txn).await.unwrap());
        }
        committed(writer.commit(Txn::new().delete("/live/3")).await.unwrap());
    });
    let mut last = 0;
    for i in 0..20u32 {
        let events = next(&mut w).await;
        assert_eq!(events.len(), 2, "one batch per txn, filtered by prefix");
        assert_eq!(events[0].kv.key, format!("/live/{i}"));
        assert!(
            events[0].revision > last && events.iter().all(|e| e.revision == events[0].revision)
        );
        last = events[0].revision;
    }
    let del = next(&mut w).await;
    assert_eq!(
        (del[0].kind, del[0].kv.value.len(), del[0].kv.mod_revision),
        (EventKind::Delete, 0, last + 1)
    );
    task.await.unwrap();
}

async fn compacted(b: &Backend) {
    let s = b.store_with_history(10).await;
    let b0 = base(s.as_ref()).await;
    let mut lagging = s.watch("/c/", 0).await.unwrap();
    for i in 0..100u32 {
        committed(
            s.commit(Txn::new().put(format!("/c/{i}"), "x"))
                .await
                .unwrap(),
        );
    }
    b.trim_history().await;
    match s.watch("/c/", 0).await {
        Err(StoreError::Compacted {
            requested: 0,
            oldest,
        }) => assert!((b0 + 90..b0 + 100).contains(&oldest), "{oldest}"),
        other => panic!("expected Compacted, got {other:?}"),
    }
    assert!(s.watch("/c/", b0 + 95).await.is_ok());
    if b.is_etcd() {
        // etcd keeps every event of a watcher it has caught up (compaction does not cut it), so
        // this "lagging" watcher, whose 100 revisions fit the stream's buffer, usually receives all
        // of them. But etcd catches a watcher that starts at the current revision up in a
        // background loop (every 100 ms): if the compaction came first, it is cancelled with the
        // compact revision. Either way: the revisions it gets are the next ones in order, and a
        // Compacted error is the last item.
        let mut i = 0u32;
        while i < 100 {
            match tokio::time::timeout(Duration::from_secs(5), lagging.next()).await {
                Ok(Some(Ok(events))) => assert_eq!(events[0].kv.key, format!("/c/{i}")),
                Ok(Some(Err(e))) => {
                    assert!(e.is_compacted(), "{e}");
                    assert!(
                        lagging.next().await.is_none(),
                        "stream ends after Compacted"
                    );
                    return;
                }
                other => panic!("expected /c/{i} or Compacted, got {other:?}"),
            }
            i += 1;
        }
        return;
    }
    let mut got_err = false;
    for _ in 0..200 {
        match tokio::time::timeout(Duration::from_secs(5), lagging.next())
            .await
            .unwrap()
        {
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                assert!(e.is_compacted(), "{e}");
                got_err = true;
                break;
            }
            None => panic!("stream ended without Compacted"),
        }
    }
    assert!(got_err, "a lagging watcher must get Compacted");
    assert!(
        lagging.next().await.is_none(),
        "stream ends after Compacted"
    );
}

async fn lease_expiry(b: &Backend) {
    let s = b.store().await;
    // etcd grants at least its minimum TTL (1 s for the test cluster).
    let ttl = Duration::from_millis(300).max(b.min_ttl());
    let lease = s.grant_lease(ttl).await.unwrap();
    let rev = committed(
        s.commit(
            Txn::new()
                .put_with_lease("/l/1", "a", lease)
                .put_with_lease("/l/2", "b", lease)
                .put("/l/3", "c"),
        )
        .await
        .unwrap(),
    );
    assert_eq!(s.get("/l/1").await.unwrap().unwrap().lease, Some(lease));
    let mut w = s.watch("/l/", rev).await.unwrap();
    let events = next(&mut w).await;
    let got: Vec<(&str, EventKind, u64)> = events
        .iter()
        .map(|e| (e.kv.key.as_str(), e.kind, e.revision))
        .collect();
    assert_eq!(
        got,
        [
            ("/l/1", EventKind::Delete, rev + 1),
            ("/l/2", EventKind::Delete, rev + 1)
        ]
    );
    let left = keys_under(s.as_ref(), "/l/").await;
    assert_eq!(left, ["/l/3"]);
    assert!(matches!(s.keep_alive(lease).await, Err(StoreError::LeaseNotFound(l)) if l == lease));
    assert!(matches!(
        s.commit(Txn::new().put_with_lease("/l/4", "d", lease))
            .await,
        Err(StoreError::LeaseNotFound(_))
    ));
}

async fn keep_alive(b: &Backend) {
    let s = b.store().await;
    let ttl = Duration::from_millis(600).max(b.min_ttl());
    let lease = s.grant_lease(ttl).await.unwrap();
    committed(
        s.commit(Txn::new().put_with_lease("/ka", "a", lease))
            .await
            .unwrap(),
    );
    // Kept alive every 100 ms for twice the TTL.
    let rounds = 2 * ttl.as_millis() / 100;
    for _ in 0..rounds {
        tokio::time::sleep(Duration::from_millis(100)).await;
        s.keep_alive(lease).await.unwrap();
    }
    assert!(
        s.get("/ka").await.unwrap().is_some(),
        "kept alive for {:?} with a {ttl:?} ttl",
        ttl * 2
    );
    // Re-putting without a lease detaches the key.
    committed(s.commit(Txn::new().put("/ka", "b")).await.unwrap());
    // Not renewed any more: it expires (polling must not renew it, so just wait well past the ttl).
    tokio::time::sleep(ttl + Duration::from_millis(900)).await;
    assert!(s.keep_alive(lease).await.is_err());
    assert!(
        s.get("/ka").await.unwrap().is_some(),
        "detached key survives its old lease"
    );
}

async fn revoke(b: &Backend) {
    let s = b.store().await;
    let lease = s.grant_lease(Duration::from_secs(60)).await.unwrap();
    let other = s.grant_lease(Duration::from_secs(60)).await.unwrap();
    assert_ne!(lease, other);
    let rev = committed(
        s.commit(
            Txn::new()
                .put_with_lease("/r/1", "a", lease)
                .put_with_lease("/r/2", "b", other),
        )
        .await
        .unwrap(),
    );
    let mut w = s.watch("/r/", rev).await.unwrap();
    s.revoke_lease(lease).await.unwrap();
    let events = next(&mut w).await;
    assert_eq!(
        (events.len(), events[0].kv.key.as_str(), events[0].revision),
        (1, "/r/1", rev + 1)
    );
    assert!(matches!(
        s.revoke_lease(lease).await,
        Err(StoreError::LeaseNotFound(_))
    ));
    assert!(s.get("/r/2").await.unwrap().is_some());
    // A lease without keys: revoking spends no revision.
    s.revoke_lease(other).await.unwrap();
    assert_eq!(s.range("").await.unwrap().revision, rev + 2);
    let empty = s.grant_lease(Duration::from_secs(60)).await.unwrap();
    s.revoke_lease(empty).await.unwrap();
    assert_eq!(s.range("").await.unwrap().revision, rev + 2);
}

async fn concurrent_cas(b: &Backend) {
    let s = b.store().await;
    let b0 = base(s.as_ref()).await;
    let mut tasks = Vec::new();
    for t in 0..4u32 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..25u32 {
                loop {
                    let cur = s.get("/counter").await.unwrap();
                    let (n, rev) = cur.map_or((0u64, 0), |kv| {
                        (
                            String::from_utf8_lossy(&kv.value).parse().unwrap_or(0),
                            kv.mod_revision,
                        )
                    });
                    let txn = Txn::new()
                        .when_mod_revision("/counter", rev)
                        .put("/counter", (n + 1).to_string())
                        .put(format!("/by/{t}/{i}"), "");
                    if s.commit(txn).await.unwrap().is_committed() {
                        break;
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let kv = s.get("/counter").await.unwrap().unwrap();
    assert_eq!(kv.value, b"100");
    assert_eq!(kv.mod_revision, b0 + 100);
}

async fn watch_ends_when_store_dropped(b: &Backend) {
    let s = b.store().await;
    committed(s.commit(Txn::new().put("/d/1", "x")).await.unwrap());
    let mut w = s.watch("/d/", 0).await.unwrap();
    drop(s);
    assert_eq!(
        next(&mut w).await[0].kv.key,
        "/d/1",
        "history already taken is still delivered"
    );
    let end = tokio::time::timeout(Duration::from_secs(5), w.next())
        .await
        .unwrap();
    assert!(end.is_none(), "stream ends when the store is gone: {end:?}");
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(&super::Backend::memory()).await })*
        }
        mod sqlite {
            use contiv_store::SyncMode;
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(&super::Backend::sqlite(SyncMode::Normal)).await })*
        }
        mod sqlite_full {
            use contiv_store::SyncMode;
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(&super::Backend::sqlite(SyncMode::Full)).await })*
        }
        mod etcd {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(&super::Backend::etcd()).await })*
        }
    };
}

conformance!(
    txn_atomicity,
    revisions,
    range_prefix,
    delete_prefix,
    watch_from_past,
    watch_live,
    compacted,
    lease_expiry,
    keep_alive,
    revoke,
    concurrent_cas,
    watch_ends_when_store_dropped,
);
