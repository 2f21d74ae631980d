//! etcd-backend specifics on real etcd members (`contiv_store::testing::EtcdCluster`): opening from
//! a config, ops on the same key in one transaction, naming the failing compare or dead lease,
//! paged ranges, and faults: a lost member, lost quorum (`Unavailable` in bounded time, recovery
//! with the same store object), and watches that survive the loss of their member.

use std::time::{Duration, Instant};

use contiv_store::testing::EtcdCluster;
use contiv_store::{
    open_store, Compare, EventKind, StateStore, StoreConfig, StoreError, Txn, TxnOutcome,
    WatchStream, RANGE_PAGE,
};

fn committed(o: TxnOutcome) -> u64 {
    match o {
        TxnOutcome::Committed { revision } => revision,
        other => panic!("expected commit, got {other:?}"),
    }
}

async fn next(w: &mut WatchStream) -> Vec<contiv_store::WatchEvent> {
    match tokio::time::timeout(Duration::from_secs(10), w.next()).await {
        Ok(Some(Ok(events))) => events,
        other => panic!("expected a batch, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_store_from_config() {
    let cluster = EtcdCluster::start(1).unwrap();
    let s = open_store(&StoreConfig::Etcd {
        endpoints: cluster.endpoints(),
        tls: None,
    })
    .await
    .unwrap();
    let info = s.info();
    assert_eq!(info.backend, "etcd");
    assert_eq!(info.location, cluster.endpoints().join(","));
    // Contiv's etcd://host:port spelling works too.
    let contiv = cluster.endpoints()[0].replace("http://", "etcd://");
    let s2 = open_store(&StoreConfig::Etcd {
        endpoints: vec![contiv],
        tls: None,
    })
    .await
    .unwrap();
    committed(s2.commit(Txn::new().put("/x", "1")).await.unwrap());
    assert_eq!(s.get("/x").await.unwrap().unwrap().value, b"1");
}

/// Ops on the same key run in order (collapsed client-side: etcd refuses duplicate keys).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_key_ops_in_one_txn() {
    let cluster = EtcdCluster::start(1).unwrap();
    let s = cluster.store().await.unwrap();
    committed(
        s.commit(Txn::new().put("/p/1", "a").put("/p/2", "b").put("/q", "c"))
            .await
            .unwrap(),
    );
    let txn = Txn::new()
        .put("/k", "1")
        .put("/k", "2")
        .delete_prefix("/p/")
        .put("/p/2", "again")
        .put("/gone", "x")
        .delete("/gone")
        .delete("/q")
        .put("/q", "back");
    let rev = committed(s.commit(txn).await.unwrap());
    let snap = s.range("").await.unwrap();
    let got: Vec<(&str, &[u8])> = snap
        .kvs
        .iter()
        .map(|kv| (kv.key.as_str(), kv.value.as_slice()))
        .collect();
    assert_eq!(
        got,
        [
            ("/k", &b"2"[..]),
            ("/p/2", &b"again"[..]),
            ("/q", &b"back"[..])
        ]
    );
    assert_eq!(snap.revision, rev);
    // Deleting everything and putting one key back in the same transaction.
    let rev = committed(
        s.commit(Txn::new().delete_prefix("").put("/only", "1"))
            .await
            .unwrap(),
    );
    let snap = s.range("").await.unwrap();
    assert_eq!(snap.kvs.len(), 1);
    assert_eq!((snap.kvs[0].key.as_str(), snap.revision), ("/only", rev));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_compare_and_dead_lease_are_named() {
    let cluster = EtcdCluster::start(1).unwrap();
    let s = cluster.store().await.unwrap();
    let r = committed(s.commit(Txn::new().put("/a", "1")).await.unwrap());
    let out = s
        .commit(
            Txn::new()
                .when(Compare::Exists("/a".into()))
                .when_mod_revision("/a", r)
                .when(Compare::Value("/a".into(), b"1".to_vec()))
                .when(Compare::Value("/absent".into(), Vec::new()))
                .when_absent("/a")
                .put("/b", "x"),
        )
        .await
        .unwrap();
    assert_eq!(out, TxnOutcome::CompareFailed { index: 3 });
    let live = s.grant_lease(Duration::from_secs(30)).await.unwrap();
    let dead = s.grant_lease(Duration::from_secs(30)).await.unwrap();
    s.revoke_lease(dead).await.unwrap();
    let err = s
        .commit(
            Txn::new()
                .put_with_lease("/l1", "x", live)
                .put_with_lease("/l2", "y", dead),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::LeaseNotFound(l) if l == dead),
        "{err}"
    );
    assert!(s.get("/l1").await.unwrap().is_none(), "nothing written");
    // A TTL below etcd's minimum is raised, not refused.
    let short = s.grant_lease(Duration::from_millis(10)).await.unwrap();
    s.keep_alive(short).await.unwrap();
}

/// A range larger than one page is read page by page at one revision.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn range_pages_at_one_revision() {
    let cluster = EtcdCluster::start(1).unwrap();
    let s = cluster.store().await.unwrap();
    let total = 2 * RANGE_PAGE as usize + 345;
    let mut i = 0;
    while i < total {
        let mut txn = Txn::new();
        for j in i..(i + 1000).min(total) {
            txn = txn.put(format!("/big/{j:06}"), vec![b'v'; 100]);
        }
        committed(s.commit(txn).await.unwrap());
        i += 1000;
    }
    committed(s.commit(Txn::new().put("/bigger", "x")).await.unwrap());
    let snap = s.range("/big/").await.unwrap();
    assert_eq!(snap.kvs.len(), total);
    assert!(snap.kvs.windows(2).all(|w| w[0].key < w[1].key));
    assert!(snap.kvs.iter().all(|kv| kv.mod_revision <= snap.revision));
    assert_eq!(s.range("").await.unwrap().kvs.len(), total + 1);
}

/// Commits a put of `key`, retrying `Unavailable` for up to `within` (a member may have just died
/// under the client's connection, or with the commit in flight).
async fn commit_retrying(s: &dyn StateStore, key: &str, within: Duration) -> u64 {
    let deadline = Instant::now() + within;
    loop {
        match s.commit(Txn::new().put(key, "v")).await {
            Ok(out) => return committed(out),
            Err(e) if e.is_unavailable() && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("commit of {key} failed: {e}"),
        }
    }
}

/// One of three members dies: commits go on. Two die: commits fail with `Unavailable` in bounded
/// time. They come back: the same store object commits again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quorum_loss_and_recovery() {
    let mut cluster = EtcdCluster::start(3).unwrap();
    let s = cluster.store().await.unwrap();
    commit_retrying(&s, "/before", Duration::ZERO).await;

    cluster.kill(0).unwrap();
    for i in 0..10 {
        // If member 0 led, a commit in flight is lost with it and waits out the request timeout
        // (5 s; etcd 3.4 does not fail pending proposals on a leader change): retry past that.
        commit_retrying(&s, &format!("/one-down/{i}"), Duration::from_secs(15)).await;
    }

    cluster.kill(1).unwrap();
    let started = Instant::now();
    let err = loop {
        // A commit may still land in the instant before the survivor notices; the next one fails.
        match s.commit(Txn::new().put("/no-quorum", "v")).await {
            Err(e) => break e,
            Ok(_) => assert!(started.elapsed() < Duration::from_secs(10)),
        }
    };
    assert!(err.is_unavailable(), "{err}");
    assert!(
        started.elapsed() <= Duration::from_secs(10),
        "failed after {:?}",
        started.elapsed()
    );
    // Reads need quorum too (linearizable).
    let err = s.range("/").await.unwrap_err();
    assert!(err.is_unavailable(), "{err}");

    cluster.restart(0, false).unwrap();
    cluster.restart(1, false).unwrap();
    cluster
        .wait_healthy([0, 1, 2], Duration::from_secs(20))
        .unwrap();
    commit_retrying(&s, "/after", Duration::from_secs(10)).await;
    let keys = s.range("/one-down/").await.unwrap().kvs.len();
    assert_eq!(keys, 10, "every acknowledged commit survived");
}

/// A watch follows the store while each member in turn is killed and restarted: whichever member
/// its stream was on, it re-creates the watch from the last delivered revision and misses nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_survives_member_loss() {
    let mut cluster = EtcdCluster::start(3).unwrap();
    let s = cluster.store().await.unwrap();
    let mut w = s.watch("/w/", 0).await.unwrap();
    let mut expected = 0u32;
    for member in 0..3 {
        cluster.kill(member).unwrap();
        for _ in 0..3 {
            commit_retrying(&s, &format!("/w/{expected:03}"), Duration::from_secs(15)).await;
            expected += 1;
        }
        cluster.restart(member, false).unwrap();
        cluster
            .wait_healthy([0, 1, 2], Duration::from_secs(20))
            .unwrap();
    }
    let mut seen = Vec::new();
    while seen.len() < expected as usize {
        for e in next(&mut w).await {
            assert_eq!(e.kind, EventKind::Put);
            seen.push(e.kv.key);
        }
    }
    let want: Vec<String> = (0..expected).map(|i| format!("/w/{i:03}")).collect();
    assert_eq!(seen, want, "every revision once, in order");
}

/// The store sends requests to one member and fails over when it does not answer: with the first
/// member killed, no request fails (a refused connection is retried on the next member); with it
/// frozen (SIGSTOP), one read waits out the request timeout and is answered by the next member,
/// and every later request goes there at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_over_to_the_next_member() {
    let mut cluster = EtcdCluster::start(3).unwrap();
    let s = cluster.store().await.unwrap();
    committed(s.commit(Txn::new().put("/x", "0")).await.unwrap());

    cluster.kill(0).unwrap();
    // If member 0 led, let the others elect a leader first (commits in flight would time out).
    cluster
        .wait_healthy([1, 2], Duration::from_secs(10))
        .unwrap();
    for i in 0..20 {
        committed(
            s.commit(Txn::new().put(format!("/killed/{i}"), "v"))
                .await
                .unwrap(),
        );
    }

    cluster.restart(0, false).unwrap();
    cluster
        .wait_healthy([0, 1, 2], Duration::from_secs(20))
        .unwrap();
    // Requests now go to member 1: freeze it. If it led, 0 and 2 must elect a leader before
    // any commit can succeed (etcd's business, not the store's failover, which is what is timed
    // here): wait for that, or a loaded machine's slow election fails the commits below.
    cluster.stop(1).unwrap();
    cluster
        .wait_healthy([0, 2], Duration::from_secs(20))
        .unwrap();
    let started = Instant::now();
    assert!(s.get("/x").await.unwrap().is_some());
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    let started = Instant::now();
    for i in 0..20 {
        committed(
            s.commit(Txn::new().put(format!("/frozen/{i}"), "v"))
                .await
                .unwrap(),
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    cluster.cont(1).unwrap();
    cluster
        .wait_healthy([0, 1, 2], Duration::from_secs(10))
        .unwrap();
    assert_eq!(s.range("/killed/").await.unwrap().kvs.len(), 20);
}
