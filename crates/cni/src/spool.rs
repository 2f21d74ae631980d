//! Pending deletes: DELs the plugin could not deliver because the agent was unreachable.
//!
//! The spec makes DEL best-effort and asks plugins to succeed "to the fullest extent possible";
//! a runtime retries a failed DEL, but a node whose agent is gone for good would then never finish
//! tearing pods down. So on DEL with the agent unreachable the plugin records the request here (one
//! JSON [`AgentDelRequest`] per `(container id, ifname)`, written atomically) and succeeds; the
//! agent replays and removes these records when it starts ([`list`], [`remove`]), and GC covers
//! anything lost. A later DEL that reaches the agent removes the record itself.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::agent_api::AgentDelRequest;

/// File name of the record for an attachment (unsafe characters replaced by `_`).
pub fn record_name(container_id: &str, ifname: &str) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    format!("{}--{}.json", clean(container_id), clean(ifname))
}

/// Records a DEL to replay; returns the record's path.
pub fn record(dir: &Path, req: &AgentDelRequest) -> io::Result<PathBuf> {
    fs::create_dir_all(dir)?;
    let name = record_name(&req.container_id, &req.ifname);
    let path = dir.join(&name);
    let tmp = dir.join(format!(".{name}.tmp"));
    let body = serde_json::to_vec_pretty(req).map_err(io::Error::other)?;
    fs::write(&tmp, body)?;
    fs::rename(&tmp, &path)?;
    Ok(path)
}

/// Every recorded DEL (files that do not decode are skipped and left in place).
pub fn list(dir: &Path) -> io::Result<Vec<(PathBuf, AgentDelRequest)>> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for entry in entries {
        let path = entry?.path();
        let is_record = path.extension().is_some_and(|e| e == "json")
            && !path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.'));
        if !is_record {
            continue;
        }
        if let Ok(req) =
            fs::read(&path).and_then(|b| serde_json::from_slice(&b).map_err(io::Error::other))
        {
            out.push((path, req));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Removes a record; a missing record is not an error.
pub fn remove(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Removes the record of an attachment, if any.
pub fn forget(dir: &Path, container_id: &str, ifname: &str) -> io::Result<()> {
    remove(&dir.join(record_name(container_id, ifname)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_list_forget() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spool = dir.path().join("pending");
        assert!(list(&spool).expect("empty").is_empty());
        let req = AgentDelRequest {
            container_id: "c1".into(),
            ifname: "eth0".into(),
            ..Default::default()
        };
        let path = record(&spool, &req).expect("record");
        record(&spool, &req).expect("record twice overwrites");
        fs::write(spool.join("junk.json"), "nope").expect("junk");
        let listed = list(&spool).expect("list");
        assert_eq!(listed, vec![(path, req)]);
        forget(&spool, "c1", "eth0").expect("forget");
        forget(&spool, "c1", "eth0").expect("forget twice");
        assert!(list(&spool).expect("list").is_empty());
        assert_eq!(record_name("a/b", "e 0"), "a_b--e_0.json");
    }
}
