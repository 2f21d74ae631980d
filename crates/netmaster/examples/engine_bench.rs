//! In-process cost of netmaster's write path without HTTP: allocAddress and network create
//! against the embedded SQLite store and the in-memory store.
//! `cargo run --release -p contiv-netmaster --example engine_bench`

use std::sync::Arc;
use std::time::Instant;

use contiv_model::Network;
use contiv_netmaster::engine::{Engine, EngineOptions};
use contiv_netmaster::plugin::AllocAddressRequest;
use contiv_store::{MemoryStore, SqliteStore, StateStore, SyncMode};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

async fn run(name: &str, store: Arc<dyn StateStore>) {
    let e = Engine::open(store, EngineOptions::default())
        .await
        .expect("open");
    let big: Network = serde_json::from_value(serde_json::json!({"tenantName": "default", "networkName": "big", "encap": "vxlan", "subnet": "10.64.0.0/16"})).expect("net");
    e.upsert("default:big", big).await.expect("create");
    let mut alloc = Vec::new();
    for _ in 0..3000 {
        let t = Instant::now();
        e.alloc_address(AllocAddressRequest {
            network_id: "big.default".into(),
            ..Default::default()
        })
        .await
        .expect("alloc");
        alloc.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let mut create = Vec::new();
    for i in 0..1000u32 {
        let n: Network = serde_json::from_value(serde_json::json!({"tenantName": "default", "networkName": format!("n{i}"), "encap": "vxlan", "subnet": format!("10.{}.{}.0/24", i / 256, i % 256)})).expect("net");
        let t = Instant::now();
        e.upsert(&format!("default:n{i}"), n).await.expect("create");
        create.push(t.elapsed().as_secs_f64() * 1e6);
    }
    println!(
        "{name:8} allocAddress median {:6.1} µs   network create median {:6.1} µs",
        median(alloc),
        median(create)
    );
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    run(
        "sqlite",
        Arc::new(SqliteStore::open(dir.path(), SyncMode::Normal).expect("open")),
    )
    .await;
    run("memory", Arc::new(MemoryStore::new())).await;
}
