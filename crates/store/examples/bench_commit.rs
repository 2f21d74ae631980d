//! Commit latency of the embedded store, as netmaster uses it: each txn is one `Absent` compare and
//! three puts of ~300 bytes (allocation key, endpoint, network oper state).
//!
//! `cargo run --release -p contiv-store --example bench_commit -- [N] [DIR] [MODES]`
//! N commits per mode (default 5000); DIR is where the temporary store lives (default: the system
//! temp dir; pass a path on the disk you want to measure); MODES is a comma list of
//! `normal,full,memory` (default: all).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use contiv_store::{MemoryStore, SqliteStore, StateStore, SyncMode, Txn};

fn txn(i: usize) -> Txn {
    let alloc = format!(
        "/contiv/alloc/ip/default:net1/10.{}.{}.{}",
        i >> 16,
        (i >> 8) & 255,
        i & 255
    );
    Txn::new()
        .when_absent(alloc.clone())
        .put(alloc, vec![b'a'; 300])
        .put(format!("/contiv/ep/{i:012}"), vec![b'e'; 300])
        .put("/contiv/oper/net/default:net1", vec![b'o'; 300])
}

fn report(label: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let pct = |p: f64| samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)];
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "{label:<44} n={:<6} median {:>8.1} µs  p99 {:>8.1} µs  p99.9 {:>8.1} µs  max {:>9.1} µs",
        samples.len(),
        us(pct(0.5)),
        us(pct(0.99)),
        us(pct(0.999)),
        us(samples[samples.len() - 1])
    );
}

async fn bench_async(store: Arc<dyn StateStore>, n: usize, offset: usize) -> Vec<Duration> {
    let mut samples = Vec::with_capacity(n);
    for i in offset..offset + n {
        let t = Instant::now();
        let out = store.commit(txn(i)).await;
        samples.push(t.elapsed());
        if !matches!(out, Ok(o) if o.is_committed()) {
            eprintln!("commit {i} failed");
            std::process::exit(1);
        }
    }
    samples
}

fn bench_sync(store: &SqliteStore, n: usize, offset: usize) -> Vec<Duration> {
    let mut samples = Vec::with_capacity(n);
    for i in offset..offset + n {
        let t = Instant::now();
        let out = store.commit_sync(txn(i));
        samples.push(t.elapsed());
        if !matches!(out, Ok(o) if o.is_committed()) {
            eprintln!("commit {i} failed");
            std::process::exit(1);
        }
    }
    samples
}

async fn bench_mode(
    base: &std::path::Path,
    mode: SyncMode,
    n: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir_in(base)?;
    let store = SqliteStore::open(dir.path(), mode)?;
    bench_sync(&store, 500, 1_000_000); // warm-up
    report(
        &format!("sqlite {mode:?}: commit_sync (caller thread)"),
        bench_sync(&store, n, 0),
    );
    let dynstore: Arc<dyn StateStore> = Arc::new(store.clone());
    report(
        &format!("sqlite {mode:?}: StateStore::commit (async)"),
        bench_async(dynstore.clone(), n, n).await,
    );
    let mut ranges = Vec::new();
    let mut keys = 0;
    for _ in 0..5 {
        let t = Instant::now();
        keys = dynstore.range("/contiv/ep/").await?.kvs.len();
        ranges.push(t.elapsed().as_secs_f64() * 1e3);
    }
    ranges.sort_by(f64::total_cmp);
    println!(
        "sqlite {mode:?}: range of {keys} keys: best {:.2} ms, median {:.2} ms (5 runs)",
        ranges[0], ranges[2]
    );
    let mut gets = Vec::with_capacity(1000);
    for i in 0..1000 {
        let t = Instant::now();
        dynstore.get(&format!("/contiv/ep/{i:012}")).await?;
        gets.push(t.elapsed());
    }
    report(&format!("sqlite {mode:?}: get (async)"), gets);
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(5000);
    let base: PathBuf = args
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let modes = args.next().unwrap_or_else(|| "normal,full,memory".into());
    println!("{n} commits per mode, store under {}", base.display());
    for mode in modes.split(',') {
        match mode {
            "normal" => bench_mode(&base, SyncMode::Normal, n).await?,
            "full" => bench_mode(&base, SyncMode::Full, n.min(2000)).await?,
            "memory" => {
                let mem: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
                report("memory: StateStore::commit", bench_async(mem, n, 0).await);
            }
            other => return Err(format!("unknown mode {other}").into()),
        }
    }
    Ok(())
}
