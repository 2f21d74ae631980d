//! Which Contiv network (and group) each Docker network of this host is: dockerd sends
//! `CreateNetwork` once, never again after an agent restart, and later calls name only its id.
//! Kept as one small JSON file (`<state-dir>/docker-networks.json`), replaced atomically (write
//! a temporary file, fsync, rename) on every change.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

/// The file name inside the agent's state directory.
pub const FILE: &str = "docker-networks.json";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("docker network state {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("docker network state {path} is damaged: {reason}")]
    Corrupt { path: PathBuf, reason: String },
}

/// A Docker network as Contiv knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DockerNetwork {
    pub tenant: String,
    pub network: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

impl DockerNetwork {
    /// The Contiv network key `tenant:network`.
    pub fn network_key(&self) -> String {
        format!("{}:{}", self.tenant, self.network)
    }
}

/// Docker network id -> Contiv network, durable.
pub struct DockerNetworks {
    path: PathBuf,
    map: Mutex<BTreeMap<String, DockerNetwork>>,
}

impl DockerNetworks {
    /// Loads `<dir>/docker-networks.json` (absent: none yet). A damaged file is an error: the
    /// agent must not forget networks dockerd still uses.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let path = dir.join(FILE);
        let map = match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| StoreError::Corrupt {
                path: path.clone(),
                reason: e.to_string(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(source) => return Err(StoreError::Io { path, source }),
        };
        Ok(DockerNetworks {
            path,
            map: Mutex::new(map),
        })
    }

    pub fn get(&self, id: &str) -> Option<DockerNetwork> {
        self.map.lock().get(id).cloned()
    }

    /// Records `id` (idempotent); durable when it returns.
    pub fn insert(&self, id: &str, net: DockerNetwork) -> Result<(), StoreError> {
        let mut m = self.map.lock();
        if m.get(id) == Some(&net) {
            return Ok(());
        }
        let mut next = m.clone();
        next.insert(id.to_string(), net);
        self.write(&next)?;
        *m = next;
        Ok(())
    }

    /// Forgets `id` (absent is success); durable when it returns.
    pub fn remove(&self, id: &str) -> Result<(), StoreError> {
        let mut m = self.map.lock();
        if !m.contains_key(id) {
            return Ok(());
        }
        let mut next = m.clone();
        next.remove(id);
        self.write(&next)?;
        *m = next;
        Ok(())
    }

    fn write(&self, map: &BTreeMap<String, DockerNetwork>) -> Result<(), StoreError> {
        let io = |source| StoreError::Io {
            path: self.path.clone(),
            source,
        };
        let tmp = self.path.with_extension("json.tmp");
        let body = serde_json::to_vec_pretty(map).map_err(|e| io(std::io::Error::other(e)))?;
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        f.write_all(&body).map_err(io)?;
        f.sync_all().map_err(io)?;
        std::fs::rename(&tmp, &self.path).map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn survives_reopen_and_refuses_damage() {
        let dir = tempfile::tempdir().unwrap();
        let s = DockerNetworks::open(dir.path()).unwrap();
        let n = DockerNetwork {
            tenant: "t".into(),
            network: "n".into(),
            group: Some("g".into()),
        };
        s.insert("abc", n.clone()).unwrap();
        s.insert("def", n.clone()).unwrap();
        s.remove("def").unwrap();
        s.remove("nope").unwrap();
        let again = DockerNetworks::open(dir.path()).unwrap();
        assert_eq!(again.get("abc"), Some(n));
        assert_eq!(again.get("def"), None);
        std::fs::write(dir.path().join(FILE), b"{").unwrap();
        assert!(matches!(
            DockerNetworks::open(dir.path()),
            Err(StoreError::Corrupt { .. })
        ));
    }
}
