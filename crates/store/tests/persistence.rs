//! Embedded-store specifics: reopening restores keys, revisions and leases; the data directory is
//! locked; damaged or foreign files are refused with a clear error; `open_store` dispatch.

use std::time::Duration;

use contiv_store::{
    open_store, SqliteStore, StateStore, StoreConfig, StoreError, SyncMode, Txn, TxnOutcome,
    DB_FILE,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopen_restores_keys_revision_and_leases() {
    let dir = tempfile::tempdir().unwrap();
    let (before, rev, lease) = {
        let s = SqliteStore::open(dir.path(), SyncMode::Normal).unwrap();
        for i in 0..500u32 {
            let txn = Txn::new()
                .when_absent(format!("/k/{i}"))
                .put(format!("/k/{i}"), vec![i as u8; 300]);
            assert!(s.commit(txn).await.unwrap().is_committed());
        }
        s.commit(Txn::new().put("/k/7", "updated").delete("/k/8"))
            .await
            .unwrap();
        let lease = s.grant_lease(Duration::from_millis(400)).await.unwrap();
        let out = s
            .commit(Txn::new().put_with_lease("/leased", "x", lease))
            .await
            .unwrap();
        let TxnOutcome::Committed { revision } = out else {
            panic!("{out:?}")
        };
        (s.range("").await.unwrap(), revision, lease)
    };
    assert_eq!(before.revision, 502);
    let s = SqliteStore::open(dir.path(), SyncMode::Full).unwrap();
    let after = s.range("").await.unwrap();
    assert_eq!(after, before, "every key, value and revision restored");
    assert_eq!(s.revision(), rev);
    assert_eq!(
        after
            .kvs
            .iter()
            .find(|kv| kv.key == "/leased")
            .unwrap()
            .lease,
        Some(lease)
    );
    // History is not persisted: watching from before the reopen is Compacted, from now is fine.
    assert!(
        matches!(s.watch("", rev - 1).await, Err(StoreError::Compacted { oldest, .. }) if oldest == rev)
    );
    let mut w = s.watch("", rev).await.unwrap();
    // The lease survived with its TTL restarted, and still expires.
    s.keep_alive(lease).await.unwrap();
    let events = tokio::time::timeout(Duration::from_secs(5), w.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        (events[0].kv.key.as_str(), events[0].revision),
        ("/leased", rev + 1)
    );
    // Lease ids are not reused after a restart.
    let next = s.grant_lease(Duration::from_secs(5)).await.unwrap();
    assert!(next > lease);
    // New commits continue the revision sequence.
    assert_eq!(
        s.commit(Txn::new().put("/n", "1")).await.unwrap(),
        TxnOutcome::Committed { revision: rev + 2 }
    );
}

#[test]
fn directory_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let first = SqliteStore::open(dir.path(), SyncMode::Normal).unwrap();
    let err = SqliteStore::open(dir.path(), SyncMode::Normal)
        .err()
        .expect("second open must fail");
    assert!(matches!(err, StoreError::Locked { .. }), "{err}");
    assert!(err.to_string().contains(&dir.path().display().to_string()));
    drop(first);
    SqliteStore::open(dir.path(), SyncMode::Normal).unwrap();
}

#[test]
fn garbage_file_is_corrupt_not_panic() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(DB_FILE), vec![0x5a; 8192]).unwrap();
    let err = SqliteStore::open(dir.path(), SyncMode::Normal)
        .err()
        .expect("must fail");
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains(DB_FILE), "{err}");
}

#[test]
fn foreign_sqlite_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    rusqlite_free_foreign_db(&dir.path().join(DB_FILE));
    let err = SqliteStore::open(dir.path(), SyncMode::Normal)
        .err()
        .expect("must fail");
    assert!(
        matches!(err, StoreError::Corrupt { ref reason, .. } if reason.contains("foreign")),
        "{err}"
    );
}

/// A valid SQLite database of another application, written without depending on rusqlite here: a
/// contiv store whose application id is patched in the header (offset 68).
fn rusqlite_free_foreign_db(path: &std::path::Path) {
    let tmp = tempfile::tempdir().unwrap();
    drop(SqliteStore::open(tmp.path(), SyncMode::Normal).unwrap());
    let mut bytes = std::fs::read(tmp.path().join(DB_FILE)).unwrap();
    bytes[68..72].copy_from_slice(&0x1234_5678u32.to_be_bytes());
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn truncated_database_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = SqliteStore::open(dir.path(), SyncMode::Normal).unwrap();
        for i in 0..2000u32 {
            s.commit_sync(Txn::new().put(format!("/k/{i:05}"), vec![1u8; 300]))
                .unwrap();
        }
    }
    let path = dir.path().join(DB_FILE);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let err = SqliteStore::open(dir.path(), SyncMode::Normal)
        .err()
        .expect("must fail");
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
}

#[tokio::test]
async fn open_store_dispatch() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = StoreConfig::Embedded {
        dir: dir.path().join("data"),
        sync: SyncMode::Normal,
    };
    let s = open_store(&cfg).await.unwrap();
    assert_eq!(s.info().backend, "sqlite");
    assert!(s.info().location.ends_with(DB_FILE));
    assert_eq!(
        open_store(&StoreConfig::Memory)
            .await
            .unwrap()
            .info()
            .backend,
        "memory"
    );
    // etcd: a cluster that does not answer is refused within the connect timeout, clearly.
    let unused = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", unused.local_addr().unwrap());
    drop(unused);
    let started = std::time::Instant::now();
    let err = open_store(&StoreConfig::Etcd {
        endpoints: vec![endpoint.clone()],
        tls: None,
    })
    .await
    .err()
    .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    assert!(
        err.is_unavailable() && err.to_string().contains(&endpoint),
        "{err}"
    );
}

/// The revision is recovered whether the last transaction put or deleted keys (it is stored
/// explicitly only by deleting transactions; put-only ones leave it in the rows' `mod_rev`).
#[test]
fn revision_recovered_after_puts_and_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let reopen = || SqliteStore::open(dir.path(), SyncMode::Normal).unwrap();
    let s = reopen();
    s.commit_sync(Txn::new().put("/a", "1")).unwrap();
    s.commit_sync(Txn::new().put("/b", "2")).unwrap();
    s.commit_sync(Txn::new().delete("/b")).unwrap();
    drop(s);
    let s = reopen();
    assert_eq!(s.revision(), 3, "last txn deleted the newest key");
    s.commit_sync(Txn::new().put("/c", "3").put("/a", "1b"))
        .unwrap();
    drop(s);
    let s = reopen();
    assert_eq!(s.revision(), 4, "last txn only put");
    s.commit_sync(Txn::new().delete_prefix("")).unwrap();
    drop(s);
    let s = reopen();
    assert_eq!(s.revision(), 5, "empty store keeps its revision");
    let out = s.commit_sync(Txn::new().put("/d", "4")).unwrap();
    assert_eq!(out, TxnOutcome::Committed { revision: 6 });
}
