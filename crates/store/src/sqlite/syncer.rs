//! Background durability thread of the embedded store. With `synchronous=NORMAL` a commit reaches the
//! kernel (safe against a process crash) but is not fsynced; this thread bounds the power-loss window
//! by `fdatasync`ing the WAL every [`SYNC_INTERVAL`] when commits happened (through its own file
//! descriptor, without blocking commits), and keeps the WAL short by running the checkpoint callback
//! (which takes the writer lock) every [`CHECKPOINT_INTERVAL`] when there were commits.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Longest time an acknowledged commit stays only in the page cache (SyncMode::Normal).
pub const SYNC_INTERVAL: Duration = Duration::from_millis(20);
/// How often the WAL is copied back into the database file when there were commits.
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(250);

/// Handle of the running thread; dropping it stops the thread after a final sync.
pub(super) struct Syncer {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// Copies the WAL back into the database file (runs under the writer lock).
pub(super) type Checkpoint = Box<dyn FnMut() + Send>;

struct Worker {
    checkpoint: Checkpoint,
    wal: PathBuf,
    commits: Arc<AtomicU64>,
    synced: u64,
    checkpointed: u64,
    last_checkpoint: Instant,
}

impl Worker {
    fn sync_wal(&mut self) {
        let result = std::fs::File::open(&self.wal).and_then(|f| f.sync_data());
        match result {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(path = %self.wal.display(), error = %e, "store: fdatasync of the wal failed")
            }
        }
    }

    /// One tick: sync if there were commits since the last sync, checkpoint now and then.
    fn tick(&mut self) {
        let now = self.commits.load(Ordering::Acquire);
        if now != self.synced {
            self.sync_wal();
            self.synced = now;
        }
        if now != self.checkpointed && self.last_checkpoint.elapsed() >= CHECKPOINT_INTERVAL {
            (self.checkpoint)();
            self.checkpointed = now;
            self.last_checkpoint = Instant::now();
        }
    }

    fn run(mut self, stop: Receiver<()>) {
        loop {
            match stop.recv_timeout(SYNC_INTERVAL) {
                Err(RecvTimeoutError::Timeout) => self.tick(),
                Ok(()) | Err(RecvTimeoutError::Disconnected) => {
                    self.synced = u64::MAX;
                    self.tick();
                    return;
                }
            }
        }
    }
}

impl Syncer {
    /// Starts the thread. `commits` is bumped by the writer after each commit.
    pub(super) fn start(
        checkpoint: Checkpoint,
        wal: PathBuf,
        commits: Arc<AtomicU64>,
    ) -> std::io::Result<Syncer> {
        let (tx, rx) = std::sync::mpsc::channel();
        let start = commits.load(Ordering::Acquire);
        let worker = Worker {
            checkpoint,
            wal,
            commits,
            synced: start,
            checkpointed: start,
            last_checkpoint: Instant::now(),
        };
        let thread = std::thread::Builder::new()
            .name("store-wal-sync".into())
            .spawn(move || worker.run(rx))?;
        Ok(Syncer {
            stop: Some(tx),
            thread: Some(thread),
        })
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                tracing::error!("store: wal sync thread panicked");
            }
        }
    }
}
