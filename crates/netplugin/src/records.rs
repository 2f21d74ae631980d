//! The agent's durable local state: one record per CNI attachment `(container id, ifname)`,
//! kept in memory and persisted as an append-only journal, `<state dir>/attachments.log`: one
//! JSON line per change (`{"put":{..record..}}` or `{"del":[container id, ifname]}`), each
//! appended with one `write`, so a `kill -9` leaves at worst a torn last line, which the next
//! open drops (that change was never acknowledged). The journal is compacted (a snapshot
//! written to a temp file and renamed over it) at open and when it grows past twice the live
//! records. The state directory is locked (`flock` on `<state dir>/LOCK`) so two agents never
//! share it. Records of earlier versions (one file each under `<state dir>/attachments/`) are
//! read at open and folded into the journal.
//!
//! Damage (a line overwritten, a journal cut short or deleted) costs only the entries it hit:
//! replay skips an unreadable line with a warning naming its line number and applies the lines
//! after it; a damaged journal is copied to `attachments.log.corrupt-<unix time>` before the
//! compaction at open rewrites it. The records lost that way are not lost for long: the next
//! full reconcile pass rebuilds them from the kernel (the host veth's alias names the network
//! and endpoint) and netmaster (the endpoint's container, interface, address) before it cleans
//! anything up (see `reconcile` and `rebuild`).
//!
//! Why a journal and not a file per record: replacing a file atomically (temp file + rename)
//! allocates an inode per write; on ext4 with many recently freed inodes that alone measured
//! 0.4-0.7 ms per write (two writes per ADD).
//!
//! Durability is process-crash safety, not power-loss safety, on purpose: there is no fsync.
//! A written line is in the page cache, which survives the agent's crash or `kill -9`; what a
//! power loss (or kernel crash) can take, it takes together with everything the records
//! describe: workload namespaces, veths, tenant namespaces are all gone after a reboot. What
//! could be left over across a reboot is covered by the reconciler either way: a record lost
//! for an interface that still exists is rebuilt (or, if its workload is provably gone, the
//! interface is removed), and endpoints netmaster holds for this host with neither a record
//! nor an interface are released at netmaster. fsyncs (four per ADD) cost ~1.3 ms per ADD and
//! bought nothing beyond that.
//!
//! Invariant: a record is written before the datapath is touched for an attachment and removed
//! only after both the datapath and netmaster forgot it, so after any crash every interface or
//! address the agent created is reachable from a record, or (records damaged or deleted) from
//! the kernel and netmaster, which the reconciler rebuilds records from before cleaning up.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

pub mod journal;

/// Errors of the local store.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("state dir {0} is used by another netplugin")]
    Locked(PathBuf),
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> RecordError + '_ {
    move |source| RecordError::Io {
        path: path.to_path_buf(),
        source,
    }
}

pub use journal::{ep_container, unix_now, AttachKey, Attachment, Frontend, Phase};
use journal::{replay, Entry};

/// The records and the open journal.
struct Inner {
    cache: BTreeMap<AttachKey, Attachment>,
    log: File,
    /// Lines in the journal.
    lines: usize,
}

/// The attachment records, cached in memory, persisted in an append-only journal.
pub struct RecordStore {
    path: PathBuf,
    inner: Mutex<Inner>,
    _lock: File,
}

/// Journal lines beyond which a compaction is due, for `live` records.
fn compaction_due(lines: usize, live: usize) -> bool {
    lines > 2 * live + 256
}

impl RecordStore {
    /// Opens (creating) the journal in `state_dir`, locking the state dir.
    pub fn open(state_dir: &Path) -> Result<Self, RecordError> {
        fs::create_dir_all(state_dir).map_err(io(state_dir))?;
        let lock_path = state_dir.join("LOCK");
        let lock = File::create(&lock_path).map_err(io(&lock_path))?;
        // SAFETY: flock on a descriptor we own.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            return Err(RecordError::Locked(state_dir.to_path_buf()));
        }
        let legacy_dir = state_dir.join("attachments");
        let (mut cache, legacy) = read_legacy(&legacy_dir)?;
        let path = state_dir.join("attachments.log");
        match fs::read(&path) {
            Ok(bytes) => {
                let damage = replay(&bytes, &mut cache, &path);
                if !damage.is_clean() {
                    keep_damaged(&path, &bytes)?;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(&path)(e)),
        }
        let log = write_snapshot(&path, &cache)?;
        for f in legacy {
            let _ = fs::remove_file(f);
        }
        let lines = cache.len();
        Ok(RecordStore {
            path,
            inner: Mutex::new(Inner { cache, log, lines }),
            _lock: lock,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(&self, key: &AttachKey) -> Option<Attachment> {
        self.lock().cache.get(key).cloned()
    }

    pub fn list(&self) -> Vec<Attachment> {
        self.lock().cache.values().cloned().collect()
    }

    /// Writes (or replaces) a record: one journal line (crash-safe for the process; see the
    /// module docs for why there is no fsync).
    pub fn put(&self, a: &Attachment) -> Result<(), RecordError> {
        let mut g = self.lock();
        self.append(&mut g, &Entry::Put(Box::new(a.clone())))?;
        g.cache.insert(a.key(), a.clone());
        self.maybe_compact(&mut g)
    }

    /// Removes a record (absent is success).
    pub fn remove(&self, key: &AttachKey) -> Result<(), RecordError> {
        let mut g = self.lock();
        if !g.cache.contains_key(key) {
            return Ok(());
        }
        self.append(&mut g, &Entry::Del(key.clone()))?;
        g.cache.remove(key);
        self.maybe_compact(&mut g)
    }

    fn append(&self, g: &mut Inner, e: &Entry) -> Result<(), RecordError> {
        let mut line = serde_json::to_vec(e).map_err(|e| io(&self.path)(e.into()))?;
        line.push(b'\n');
        g.log.write_all(&line).map_err(io(&self.path))?;
        g.lines += 1;
        Ok(())
    }

    fn maybe_compact(&self, g: &mut Inner) -> Result<(), RecordError> {
        if compaction_due(g.lines, g.cache.len()) {
            g.log = write_snapshot(&self.path, &g.cache)?;
            g.lines = g.cache.len();
        }
        Ok(())
    }
}

/// Records of earlier versions (one JSON file each); also returns the files to delete once
/// the journal holds them. Temp files of interrupted writes are deleted.
fn read_legacy(dir: &Path) -> Result<(BTreeMap<AttachKey, Attachment>, Vec<PathBuf>), RecordError> {
    let mut cache = BTreeMap::new();
    let mut files = Vec::new();
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((cache, files)),
        Err(e) => return Err(io(dir)(e)),
    };
    for entry in rd {
        let path = entry.map_err(io(dir))?.path();
        if path.extension().is_none_or(|e| e != "json") {
            let _ = fs::remove_file(&path);
            continue;
        }
        match fs::read(&path).map(|b| serde_json::from_slice::<Attachment>(&b)) {
            Ok(Ok(a)) => {
                cache.insert(a.key(), a);
                files.push(path);
            }
            _ => tracing::warn!("skipping unreadable record {}", path.display()),
        }
    }
    Ok((cache, files))
}

/// Keeps a damaged journal for forensics (`attachments.log.corrupt-<unix time>[-n]`) before
/// the compaction at open rewrites it.
fn keep_damaged(path: &Path, bytes: &[u8]) -> Result<(), RecordError> {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let name = |n: u32| {
        let mut s = path.as_os_str().to_owned();
        s.push(format!(".corrupt-{secs}"));
        if n > 0 {
            s.push(format!("-{n}"));
        }
        PathBuf::from(s)
    };
    let copy = (0..1000)
        .map(name)
        .find(|p| !p.exists())
        .unwrap_or_else(|| name(1000));
    fs::write(&copy, bytes).map_err(io(&copy))?;
    tracing::warn!(
        "{}: damaged journal kept as {}; lost attachments are rebuilt from the kernel and \
         netmaster by the next reconcile pass",
        path.display(),
        copy.display()
    );
    Ok(())
}

/// Replaces the journal with one `put` line per record (temp file + rename); returns it open
/// for appending.
fn write_snapshot(
    path: &Path,
    cache: &BTreeMap<AttachKey, Attachment>,
) -> Result<File, RecordError> {
    let tmp = path.with_extension("log.tmp");
    let body = journal::snapshot(cache).map_err(|e| io(&tmp)(e.into()))?;
    fs::write(&tmp, &body).map_err(io(&tmp))?;
    fs::rename(&tmp, path).map_err(io(path))?;
    fs::OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(io(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn att(c: &str) -> Attachment {
        Attachment {
            container_id: c.into(),
            ifname: "eth0".into(),
            tenant: "t".into(),
            network: "n".into(),
            ..Default::default()
        }
    }

    #[test]
    fn legacy_records_are_folded_into_the_journal() {
        let dir = tempfile::tempdir().expect("tempdir");
        let legacy = dir.path().join("attachments");
        fs::create_dir_all(&legacy).expect("dir");
        let a = att("old");
        fs::write(legacy.join("x.json"), serde_json::to_vec(&a).expect("json")).expect("write");
        fs::write(legacy.join("y.json.tmp"), "partial").expect("tmp");
        let s = RecordStore::open(dir.path()).expect("open");
        assert_eq!(s.list(), vec![a.clone()]);
        drop(s);
        assert_eq!(fs::read_dir(&legacy).expect("dir").count(), 0);
        let s = RecordStore::open(dir.path()).expect("reopen");
        assert_eq!(s.list(), vec![a]);
    }

    #[test]
    fn journal_is_compacted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = RecordStore::open(dir.path()).expect("open");
        for i in 0..1000 {
            s.put(&att(&format!("c{}", i % 3))).expect("put");
        }
        let lines = fs::read_to_string(dir.path().join("attachments.log"))
            .expect("journal")
            .lines()
            .count();
        assert!(lines <= 2 * 3 + 257, "{lines} lines");
        assert_eq!(s.list().len(), 3);
    }

    #[test]
    fn put_reopen_remove_and_lock() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let s = RecordStore::open(dir.path()).expect("open");
            assert!(matches!(
                RecordStore::open(dir.path()),
                Err(RecordError::Locked(_))
            ));
            s.put(&att("c1")).expect("put");
            s.put(&att("c/2")).expect("put");
            s.remove(&att("c1").key()).expect("remove");
            s.remove(&att("c1").key()).expect("remove twice");
        }
        // A torn last line (kill -9 in the middle of an append) is dropped.
        let mut f = fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join("attachments.log"))
            .expect("journal");
        f.write_all(b"{\"put\":{\"container_id\":\"c3\"")
            .expect("torn");
        drop(f);
        let s = RecordStore::open(dir.path()).expect("reopen");
        let all = s.list();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].container_id, "c/2");
        assert_eq!(all[0].network_key(), "t:n");
        s.put(&att("c4")).expect("put after a torn line");
        drop(s);
        let s = RecordStore::open(dir.path()).expect("reopen");
        assert_eq!(s.list().len(), 2);
        assert_eq!(ep_container("abc", "eth0"), "abc");
        assert_eq!(ep_container("abc", "net1"), "abc-net1");
    }

    /// A journal of puts `c0`..`c{n-1}`, closed; returns the state dir and the journal's bytes.
    fn journal_of(n: usize) -> (tempfile::TempDir, Vec<u8>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = RecordStore::open(dir.path()).expect("open");
        for i in 0..n {
            s.put(&att(&format!("c{i}"))).expect("put");
        }
        drop(s);
        let bytes = fs::read(dir.path().join("attachments.log")).expect("journal");
        (dir, bytes)
    }

    fn corrupt_copies(dir: &Path) -> Vec<Vec<u8>> {
        let mut v: Vec<_> = fs::read_dir(dir)
            .expect("dir")
            .flatten()
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with("attachments.log.corrupt-")
            })
            .map(|e| fs::read(e.path()).expect("copy"))
            .collect();
        v.sort();
        v
    }

    fn ids(s: &RecordStore) -> Vec<String> {
        s.list().into_iter().map(|a| a.container_id).collect()
    }

    /// Byte range of line `i` (0-based), without its newline.
    fn line_range(bytes: &[u8], i: usize) -> std::ops::Range<usize> {
        let starts: Vec<usize> = std::iter::once(0)
            .chain(
                bytes
                    .iter()
                    .enumerate()
                    .filter(|(_, b)| **b == b'\n')
                    .map(|(p, _)| p + 1),
            )
            .collect();
        starts[i]..starts[i + 1] - 1
    }

    #[test]
    fn an_unreadable_line_costs_only_its_entry_and_is_kept_for_forensics() {
        let (dir, mut bytes) = journal_of(4);
        let damaged = {
            let r = line_range(&bytes, 1);
            bytes[r].fill(0);
            bytes.clone()
        };
        fs::write(dir.path().join("attachments.log"), &damaged).expect("damage");
        let s = RecordStore::open(dir.path()).expect("open");
        assert_eq!(ids(&s), ["c0", "c2", "c3"], "only the zeroed entry is lost");
        assert_eq!(corrupt_copies(dir.path()), [damaged], "original kept");
        // The compaction rewrote the journal readable: a reopen finds no damage.
        s.put(&att("c4")).expect("put");
        drop(s);
        let s = RecordStore::open(dir.path()).expect("reopen");
        assert_eq!(ids(&s), ["c0", "c2", "c3", "c4"]);
        assert_eq!(corrupt_copies(dir.path()).len(), 1, "no second copy");
    }

    #[test]
    fn an_entry_starting_inside_a_damaged_line_is_read() {
        // The second line zeroed with its newline: it runs into the third.
        let (dir, mut bytes) = journal_of(3);
        let r = line_range(&bytes, 1);
        bytes[r.start..=r.end].fill(0);
        fs::write(dir.path().join("attachments.log"), &bytes).expect("damage");
        let s = RecordStore::open(dir.path()).expect("open");
        assert_eq!(ids(&s), ["c0", "c2"]);
        assert_eq!(corrupt_copies(dir.path()), [bytes]);
    }

    #[test]
    fn a_journal_cut_in_the_middle_of_a_line_keeps_what_precedes() {
        let (dir, bytes) = journal_of(3);
        let r = line_range(&bytes, 1);
        let cut = &bytes[..r.start + (r.end - r.start) / 2];
        fs::write(dir.path().join("attachments.log"), cut).expect("cut");
        let s = RecordStore::open(dir.path()).expect("open");
        assert_eq!(ids(&s), ["c0"]);
        assert_eq!(corrupt_copies(dir.path()), [cut.to_vec()]);
        // Deleted outright: an empty store, nothing to keep.
        drop(s);
        fs::remove_file(dir.path().join("attachments.log")).expect("rm");
        let s = RecordStore::open(dir.path()).expect("open");
        assert!(s.list().is_empty());
        assert_eq!(corrupt_copies(dir.path()).len(), 1);
    }
}
