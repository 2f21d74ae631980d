//! The journal's lines as data: the attachment record, one line's entry (`{"put":{..}}` or
//! `{"del":[container id, ifname]}`), replaying a journal's bytes (damage costs only the lines
//! it hit, see [`replay`]) and writing a snapshot. No I/O, so the fuzz target compiles this
//! file as it is (`fuzz/fuzz_targets/journal.rs`) without netplugin's dependency tree: keep it
//! free of `crate::` and `super::` paths.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

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
/// Which front end made an attachment, so the datapath is told who finishes its workload end.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Frontend {
    /// CNI ADD: the interface is made and configured inside the workload's namespace.
    #[default]
    Cni,
    /// Docker CNM: the interface is left in the agent's namespace for dockerd to move (`netns`
    /// names the agent's namespace, `ifname` the name dockerd moves, `container_id` is Docker's
    /// endpoint id).
    Docker,
}

fn is_cni(f: &Frontend) -> bool {
    *f == Frontend::Cni
}

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
    #[serde(skip_serializing_if = "is_cni")]
    pub frontend: Frontend,
    /// When the record was first made (unix seconds; 0: unknown, e.g. an older journal or a
    /// record rebuilt from netmaster). The Docker sweep releases only records older than its
    /// grace period, so an endpoint made but not yet joined is never taken for a leak.
    #[serde(skip_serializing_if = "is_zero")]
    pub created: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Now, in unix seconds.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
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

/// One journal line.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Entry {
    Put(Box<Attachment>),
    Del(AttachKey),
}

/// What [`replay`] could not read.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Damage {
    /// 1-based numbers of complete lines that were unreadable (skipped, or read from a later
    /// entry start inside them).
    pub unreadable: Vec<usize>,
    /// Whether the last line was torn (no newline).
    pub torn: bool,
}

impl Damage {
    pub fn is_clean(&self) -> bool {
        self.unreadable.is_empty() && !self.torn
    }
}

/// Applies the journal's complete lines in order. An unreadable line costs only its own entry:
/// it is skipped with a warning naming its line number (when an entry starts later inside it,
/// e.g. a line overwritten up to and including its newline, that entry is applied), and the
/// lines after it are applied as usual. A torn last line (`kill -9` in the middle of an
/// append: never acknowledged) is dropped. Blank lines are ignored.
pub fn replay(bytes: &[u8], cache: &mut BTreeMap<AttachKey, Attachment>, path: &Path) -> Damage {
    let mut damage = Damage::default();
    let mut rest = bytes;
    let mut n = 0;
    while let Some(end) = rest.iter().position(|&b| b == b'\n') {
        let (line, tail) = rest.split_at(end);
        rest = &tail[1..];
        n += 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let entry = match serde_json::from_slice::<Entry>(line) {
            Ok(e) => e,
            Err(e) => {
                damage.unreadable.push(n);
                match salvage(line) {
                    Some(e) => {
                        tracing::warn!(
                            "{}: line {n} is damaged; read the entry that starts inside it",
                            path.display()
                        );
                        e
                    }
                    None => {
                        tracing::warn!("{}: skipping unreadable line {n}: {e}", path.display());
                        continue;
                    }
                }
            }
        };
        match entry {
            Entry::Put(a) => {
                cache.insert(a.key(), *a);
            }
            Entry::Del(k) => {
                cache.remove(&k);
            }
        }
    }
    if !rest.iter().all(u8::is_ascii_whitespace) {
        damage.torn = true;
        tracing::warn!("{}: dropping a torn last line {}", path.display(), n + 1);
    }
    damage
}

/// The last complete entry that starts inside a damaged line (its own start overwritten).
pub fn salvage(line: &[u8]) -> Option<Entry> {
    (1..line.len())
        .rev()
        .filter(|&i| line[i..].starts_with(b"{\"put\"") || line[i..].starts_with(b"{\"del\""))
        .find_map(|i| serde_json::from_slice::<Entry>(&line[i..]).ok())
}

/// The journal holding exactly `cache`: one `put` line per record.
pub fn snapshot(cache: &BTreeMap<AttachKey, Attachment>) -> Result<Vec<u8>, serde_json::Error> {
    let mut body = Vec::new();
    for a in cache.values() {
        serde_json::to_writer(&mut body, &Entry::Put(Box::new(a.clone())))?;
        body.push(b'\n');
    }
    Ok(body)
}
