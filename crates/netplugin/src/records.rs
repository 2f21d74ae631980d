//! The agent's durable local state: one record per CNI attachment `(container id, ifname)`,
//! one JSON file each under `<state dir>/attachments/`, written atomically (temp file, fsync,
//! rename, directory fsync) so a `kill -9` leaves either the old or the new record. The state
//! directory is locked (`flock` on `<state dir>/LOCK`) so two agents never share it.
//!
//! Invariant: a record is written before the datapath is touched for an attachment and removed
//! only after both the datapath and netmaster forgot it, so after any crash every interface or
//! address the agent created is reachable from a record (reconcile cleans up from there).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

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

/// Life cycle of an attachment record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// netmaster gave an address; the datapath may be half done.
    #[default]
    Adding,
    /// Plugged in and answered to the runtime.
    Ready,
    /// Unplugged locally; netmaster's delete still to be done.
    Releasing,
}

/// One CNI attachment as the agent made it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Attachment {
    pub container_id: String,
    pub ifname: String,
    pub netns: String,
    pub cni_network: String,
    pub tenant: String,
    pub network: String,
    pub group: Option<String>,
    /// Contiv's `ConfigEP.Container` (the endpoint id is `<network>.<tenant>-<this>`).
    pub ep_container: String,
    /// netmaster's endpoint id.
    pub endpoint_id: String,
    /// Address in CIDR form.
    pub ip: String,
    pub gateway: String,
    pub mac: String,
    pub host_ifname: String,
    pub mtu: u32,
    pub phase: Phase,
}

/// Key of an attachment.
pub type AttachKey = (String, String);

impl Attachment {
    pub fn key(&self) -> AttachKey {
        (self.container_id.clone(), self.ifname.clone())
    }
    /// Network key `tenant:network`.
    pub fn network_key(&self) -> String {
        format!("{}:{}", self.tenant, self.network)
    }
}

/// Contiv's `Container` for an attachment: stable per `(container id, ifname)`.
pub fn ep_container(container_id: &str, ifname: &str) -> String {
    if ifname == "eth0" {
        container_id.to_string()
    } else {
        format!("{container_id}-{ifname}")
    }
}

fn file_name(key: &AttachKey) -> String {
    let hex: String = format!("{}\n{}", key.0, key.1)
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{hex}.json")
}

/// The attachment records, cached in memory, persisted per file.
pub struct RecordStore {
    dir: PathBuf,
    cache: Mutex<BTreeMap<AttachKey, Attachment>>,
    _lock: File,
}

impl RecordStore {
    /// Opens (creating) `<state_dir>/attachments`, locking the state dir.
    pub fn open(state_dir: &Path) -> Result<Self, RecordError> {
        let dir = state_dir.join("attachments");
        fs::create_dir_all(&dir).map_err(io(&dir))?;
        let lock_path = state_dir.join("LOCK");
        let lock = File::create(&lock_path).map_err(io(&lock_path))?;
        // SAFETY: flock on a descriptor we own.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            return Err(RecordError::Locked(state_dir.to_path_buf()));
        }
        let mut cache = BTreeMap::new();
        for entry in fs::read_dir(&dir).map_err(io(&dir))? {
            let path = entry.map_err(io(&dir))?.path();
            if path.extension().is_none_or(|e| e != "json") {
                let _ = fs::remove_file(&path); // temp files of an interrupted write
                continue;
            }
            match fs::read(&path).map(|b| serde_json::from_slice::<Attachment>(&b)) {
                Ok(Ok(a)) => {
                    cache.insert(a.key(), a);
                }
                _ => tracing::warn!("skipping unreadable record {}", path.display()),
            }
        }
        Ok(RecordStore {
            dir,
            cache: Mutex::new(cache),
            _lock: lock,
        })
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<AttachKey, Attachment>> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(&self, key: &AttachKey) -> Option<Attachment> {
        self.lock().get(key).cloned()
    }

    pub fn list(&self) -> Vec<Attachment> {
        self.lock().values().cloned().collect()
    }

    /// Writes (or replaces) a record durably.
    pub fn put(&self, a: &Attachment) -> Result<(), RecordError> {
        let name = file_name(&a.key());
        let path = self.dir.join(&name);
        let tmp = self.dir.join(format!("{name}.tmp"));
        let body = serde_json::to_vec_pretty(a).map_err(|e| io(&path)(e.into()))?;
        let mut f = File::create(&tmp).map_err(io(&tmp))?;
        f.write_all(&body)
            .and_then(|()| f.sync_all())
            .map_err(io(&tmp))?;
        fs::rename(&tmp, &path).map_err(io(&path))?;
        self.sync_dir()?;
        self.lock().insert(a.key(), a.clone());
        Ok(())
    }

    /// Removes a record (absent is success).
    pub fn remove(&self, key: &AttachKey) -> Result<(), RecordError> {
        let path = self.dir.join(file_name(key));
        match fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(&path)(e)),
            _ => {}
        }
        self.sync_dir()?;
        self.lock().remove(key);
        Ok(())
    }

    fn sync_dir(&self) -> Result<(), RecordError> {
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(io(&self.dir))
    }
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
        fs::write(dir.path().join("attachments/x.json.tmp"), "partial").expect("tmp");
        let s = RecordStore::open(dir.path()).expect("reopen");
        let all = s.list();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].container_id, "c/2");
        assert_eq!(all[0].network_key(), "t:n");
        assert_eq!(ep_container("abc", "eth0"), "abc");
        assert_eq!(ep_container("abc", "net1"), "abc-net1");
    }
}
