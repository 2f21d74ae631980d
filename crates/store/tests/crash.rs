//! Crash durability: a child process (this test binary re-executed) commits numbered keys and prints
//! each acknowledged number; the parent SIGKILLs it mid-stream, reopens the store and checks that
//! every acknowledged commit is present and the store opens cleanly. Repeated 3 times on one store.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use contiv_store::{SqliteStore, SyncMode, Txn};

const DIR_ENV: &str = "CONTIV_STORE_CRASH_DIR";

/// Child side: runs only when re-executed by `kill9_loses_no_acknowledged_commit`.
#[test]
fn crash_child_writer() {
    let Some(dir) = std::env::var_os(DIR_ENV) else {
        return;
    };
    let s = SqliteStore::open(std::path::Path::new(&dir), SyncMode::Normal).unwrap();
    let start = s.range_sync_count();
    // Bounded so that an orphaned child can never run forever.
    let until = std::time::Instant::now() + Duration::from_secs(60);
    for n in start..start + 2_000_000 {
        if std::time::Instant::now() > until {
            break;
        }
        let key = format!("/crash/{n:08}");
        let txn = Txn::new()
            .when_absent(key.clone())
            .put(key, vec![7u8; 300])
            .put("/crash/last", n.to_string());
        assert!(s.commit_sync(txn).unwrap().is_committed());
        println!("ACK {n}");
    }
}

trait CountKeys {
    fn range_sync_count(&self) -> u64;
}

impl CountKeys for SqliteStore {
    /// Number of `/crash/<n>` keys (the child continues numbering after them).
    fn range_sync_count(&self) -> u64 {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let snap = rt
            .block_on(contiv_store::StateStore::range(self, "/crash/0"))
            .unwrap();
        snap.kvs.len() as u64
    }
}

/// Kills the child if the parent test fails before doing it.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Spawns the child, waits for `acks` acknowledgements plus a random-ish extra delay, SIGKILLs it;
/// returns the highest acknowledged number.
fn run_child_and_kill(dir: &std::path::Path, acks: u64, extra: Duration) -> u64 {
    let exe = std::env::current_exe().unwrap();
    let child = Command::new(exe)
        .args([
            "--exact",
            "crash_child_writer",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(DIR_ENV, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);
    let stdout = child.0.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut last = None;
    let mut seen = 0;
    let mut kill_at = None;
    let deadline = Instant::now() + Duration::from_secs(60);
    while let Some(Ok(line)) = lines.next() {
        if let Some(n) = line.strip_prefix("ACK ") {
            last = Some(n.trim().parse::<u64>().unwrap());
            seen += 1;
        }
        if seen == acks && kill_at.is_none() {
            kill_at = Some(Instant::now() + extra);
        }
        if kill_at.is_some_and(|t| Instant::now() >= t) || Instant::now() > deadline {
            child.0.kill().unwrap(); // SIGKILL
            break;
        }
    }
    // Read what the child acknowledged before dying (still buffered in the pipe).
    for line in lines.map_while(Result::ok) {
        if let Some(n) = line.strip_prefix("ACK ") {
            last = Some(n.trim().parse::<u64>().unwrap());
        }
    }
    let status = child.0.wait().unwrap();
    assert!(!status.success(), "child must have been killed");
    last.expect("child acknowledged nothing")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_loses_no_acknowledged_commit() {
    let dir = tempfile::tempdir().unwrap();
    let mut expected_total = 0;
    for (round, extra_ms) in [(0u64, 0u64), (1, 7), (2, 23)] {
        let last = run_child_and_kill(
            dir.path(),
            300 + round * 100,
            Duration::from_millis(extra_ms),
        );
        let s = SqliteStore::open(dir.path(), SyncMode::Normal)
            .expect("store must reopen cleanly after SIGKILL");
        let snap = contiv_store::StateStore::range(&s, "/crash/0")
            .await
            .unwrap();
        let present: Vec<u64> = snap
            .kvs
            .iter()
            .map(|kv| kv.key.trim_start_matches("/crash/").parse::<u64>().unwrap())
            .collect();
        assert!(
            present.len() as u64 > last,
            "round {round}: acknowledged {last} but only {} keys",
            present.len()
        );
        assert!(
            present.iter().enumerate().all(|(i, n)| i as u64 == *n),
            "round {round}: keys are a gap-free prefix"
        );
        assert!(
            present.len() as u64 <= last + 2,
            "at most the commit in flight beyond the last ack"
        );
        assert_eq!(
            snap.revision,
            present.len() as u64,
            "one revision per commit"
        );
        eprintln!(
            "round {round}: last ack {last}, {} keys after reopen",
            present.len()
        );
        expected_total = present.len();
        drop(s);
    }
    assert!(expected_total >= 900);
}
