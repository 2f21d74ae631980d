//! `netmaster migrate --from STORE --to STORE`: copies Contiv's state (every key under `/contiv/`)
//! from one store into another, e.g. when a cluster outgrows the embedded store and moves to etcd, or
//! back. The target must hold no Contiv state (a copy never merges into or overwrites a live
//! cluster); the source is read as one consistent snapshot. Cluster membership keys
//! (`/contiv-cluster/`) belong to running netmasters and are not copied.
//!
//! A store is named `etcd://host:port[,host:port...]` (or `http(s)://...` endpoints, comma
//! separated) or a directory of the embedded store (optionally written `embedded:DIR`). An embedded
//! store in use by a running netmaster is locked: stop that netmaster first.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use contiv_api::keys;
use contiv_store::{open_store, EtcdTls, StateStore, StoreConfig, SyncMode, Txn, TxnOutcome};

/// Keys per transaction: each key is a put and an absent guard (whose failure branch reads it
/// back), and etcd refuses more than 128 operations per transaction branch by default.
const BATCH: usize = 50;

/// What a store argument names.
pub fn parse_store(arg: &str) -> Result<StoreConfig, String> {
    let arg = arg.trim();
    if arg.is_empty() {
        return Err("empty store name".into());
    }
    if let Some(rest) = arg.strip_prefix("etcd://") {
        let endpoints: Vec<String> = rest
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|hp| format!("http://{hp}"))
            .collect();
        if endpoints.is_empty() {
            return Err(format!("{arg}: no etcd endpoint given"));
        }
        return Ok(StoreConfig::Etcd {
            endpoints,
            tls: None,
        });
    }
    if arg.starts_with("http://") || arg.starts_with("https://") {
        let endpoints = arg.split(',').map(|s| s.trim().to_string()).collect();
        return Ok(StoreConfig::Etcd {
            endpoints,
            tls: None,
        });
    }
    let dir = arg.strip_prefix("embedded:").unwrap_or(arg);
    Ok(StoreConfig::Embedded {
        dir: PathBuf::from(dir),
        sync: SyncMode::Full,
    })
}

/// What a migration copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copied {
    pub keys: usize,
    /// Source revision the copy reflects.
    pub source_revision: u64,
}

/// Copies every key under `/contiv/` from `from` into `to` (which must hold none), then checks the
/// target holds exactly the source's keys and values. On a failure midway the keys already copied
/// are removed again, so the target is left as it was.
pub async fn copy(from: &dyn StateStore, to: &dyn StateStore) -> Result<Copied, String> {
    let existing = to
        .range(keys::ROOT)
        .await
        .map_err(|e| format!("reading the target: {e}"))?;
    if !existing.kvs.is_empty() {
        return Err(format!(
            "the target already holds Contiv state ({} keys under {}): refusing to overwrite it",
            existing.kvs.len(),
            keys::ROOT
        ));
    }
    let snap = from
        .range(keys::ROOT)
        .await
        .map_err(|e| format!("reading the source: {e}"))?;
    for chunk in snap.kvs.chunks(BATCH) {
        let mut txn = Txn::new();
        for kv in chunk {
            txn = txn
                .when_absent(kv.key.clone())
                .put(kv.key.clone(), kv.value.clone());
        }
        let outcome = to.commit(txn).await;
        let failure = match outcome {
            Ok(TxnOutcome::Committed { .. }) => None,
            Ok(TxnOutcome::CompareFailed { index }) => Some(format!(
                "key {} appeared in the target during the copy",
                chunk.get(index).map_or("?", |kv| kv.key.as_str())
            )),
            Err(e) => Some(format!("writing the target: {e}")),
        };
        if let Some(why) = failure {
            let undo = to.commit(Txn::new().delete_prefix(keys::ROOT)).await;
            return Err(match undo {
                Ok(_) => format!("{why}: the partial copy was removed, the target is empty again"),
                Err(e) => format!(
                    "{why}; removing the partial copy failed too ({e}): delete every key under {} \
                     on the target before retrying",
                    keys::ROOT
                ),
            });
        }
    }
    let copied = to
        .range(keys::ROOT)
        .await
        .map_err(|e| format!("reading the target back: {e}"))?;
    let want: BTreeMap<&str, &[u8]> = snap
        .kvs
        .iter()
        .map(|kv| (kv.key.as_str(), kv.value.as_slice()))
        .collect();
    let got: BTreeMap<&str, &[u8]> = copied
        .kvs
        .iter()
        .map(|kv| (kv.key.as_str(), kv.value.as_slice()))
        .collect();
    if want != got {
        return Err(format!(
            "the target differs from the source after the copy ({} keys expected, {} found): \
             something else writes to it",
            want.len(),
            got.len()
        ));
    }
    Ok(Copied {
        keys: snap.kvs.len(),
        source_revision: snap.revision,
    })
}

/// `netmaster migrate`: opens both stores and copies.
/// Copies `from` into `to`; `etcd_tls` (netmaster's `--etcd-cacert` ...) applies to an etcd side.
pub async fn run(from: &str, to: &str, etcd_tls: Option<EtcdTls>) -> anyhow::Result<()> {
    let with_tls = |mut cfg: StoreConfig| {
        if let StoreConfig::Etcd { tls, .. } = &mut cfg {
            tls.clone_from(&etcd_tls);
        }
        cfg
    };
    let from_cfg = with_tls(parse_store(from).map_err(|e| anyhow::anyhow!("--from {e}"))?);
    let to_cfg = with_tls(parse_store(to).map_err(|e| anyhow::anyhow!("--to {e}"))?);
    if from_cfg == to_cfg {
        anyhow::bail!("--from and --to name the same store");
    }
    let source: Arc<dyn StateStore> = open_store(&from_cfg)
        .await
        .map_err(|e| anyhow::anyhow!("opening the source {from}: {e}"))?;
    let target: Arc<dyn StateStore> = open_store(&to_cfg)
        .await
        .map_err(|e| anyhow::anyhow!("opening the target {to}: {e}"))?;
    let done = copy(&*source, &*target)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!(
        "copied {} keys (source revision {}) from {from} to {to}",
        done.keys, done.source_revision
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use contiv_store::MemoryStore;

    use super::*;

    #[test]
    fn store_names() {
        assert_eq!(
            parse_store("etcd://127.0.0.1:2379,10.0.0.2:2379"),
            Ok(StoreConfig::Etcd {
                endpoints: vec![
                    "http://127.0.0.1:2379".into(),
                    "http://10.0.0.2:2379".into()
                ],
                tls: None,
            })
        );
        assert!(matches!(
            parse_store("embedded:/var/lib/x"),
            Ok(StoreConfig::Embedded { dir, .. }) if dir == std::path::Path::new("/var/lib/x")
        ));
        assert!(parse_store("etcd://").is_err());
        assert!(parse_store(" ").is_err());
    }

    #[tokio::test]
    async fn copies_everything_and_refuses_a_non_empty_target() {
        let from = MemoryStore::new();
        let mut txn = Txn::new();
        for i in 0..250 {
            txn = txn.put(format!("/contiv/obj/x/{i:03}"), format!("v{i}"));
        }
        txn = txn.put("/contiv-cluster/leader", "someone");
        from.commit(txn).await.expect("seed");
        let to = MemoryStore::new();
        let done = copy(&from, &to).await.expect("copy");
        assert_eq!(done.keys, 250);
        let got = to.range("").await.expect("range");
        assert_eq!(got.kvs.len(), 250, "only /contiv/ is copied");
        assert_eq!(got.kvs[7].value, b"v7");
        let again = copy(&from, &to).await.expect_err("non-empty target");
        assert!(again.contains("refusing"), "{again}");
        assert_eq!(to.range("").await.expect("range").kvs.len(), 250);
    }
}
