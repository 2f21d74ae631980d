//! Running `nft` inside a tenant namespace: one batch on stdin (`nft -f -`, one transaction) and
//! reading a table's named counters back (the policy table's, the source guard's).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use nix::sched::{setns, CloneFlags};

use super::render::TABLE;

/// Why an `nft` run failed.
#[derive(Debug, thiserror::Error)]
pub enum NftError {
    #[error("netns {ns}: {source}")]
    Netns {
        ns: String,
        #[source]
        source: std::io::Error,
    },
    #[error("running nft: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("nft refused the batch: {0}")]
    Refused(String),
    #[error("nft output: {0}")]
    Output(String),
}

/// `nft <args>` with the network namespace `ns` (stdin `input`, if any); returns stdout.
fn run(ns: &Path, args: &[&str], input: Option<&str>) -> Result<String, NftError> {
    let fd = File::open(ns).map_err(|source| NftError::Netns {
        ns: ns.display().to_string(),
        source,
    })?;
    let mut cmd = Command::new("nft");
    cmd.args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: between fork and exec the child only calls setns(2), which is async-signal-safe;
    // the fd stays open in the parent until the child has been spawned.
    unsafe {
        cmd.pre_exec(move || setns(&fd, CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from));
    }
    let mut child = cmd.spawn().map_err(NftError::Spawn)?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin.write_all(text.as_bytes()).map_err(NftError::Spawn)?;
    }
    let out = child.wait_with_output().map_err(NftError::Spawn)?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(NftError::Refused(first_lines(&err, 6)));
    }
    String::from_utf8(out.stdout).map_err(|e| NftError::Output(e.to_string()))
}

fn first_lines(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().filter(|l| !l.trim().is_empty()).take(n).collect();
    lines.join(" | ")
}

/// Applies `batch` in namespace `ns` as one transaction.
pub fn apply(ns: &Path, batch: &str) -> Result<(), NftError> {
    run(ns, &["-f", "-"], Some(batch)).map(|_| ())
}

/// The named counters of the policy table (name → packets, bytes); empty when it is absent.
pub fn counters(ns: &Path) -> Result<BTreeMap<String, (u64, u64)>, NftError> {
    counters_of(ns, TABLE)
}

/// The named counters of `table` (`"<family> <name>"`); empty when the table is absent.
pub fn counters_of(ns: &Path, table: &str) -> Result<BTreeMap<String, (u64, u64)>, NftError> {
    let mut args = vec!["-j", "list", "counters", "table"];
    args.extend(table.split(' '));
    let text = match run(ns, &args, None) {
        Ok(t) => t,
        Err(NftError::Refused(e)) if e.contains("No such file or directory") => {
            return Ok(BTreeMap::new())
        }
        Err(e) => return Err(e),
    };
    parse_counters(&text)
}

/// Parses `nft -j list counters` output.
pub fn parse_counters(text: &str) -> Result<BTreeMap<String, (u64, u64)>, NftError> {
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| NftError::Output(e.to_string()))?;
    let mut out = BTreeMap::new();
    let items = v
        .get("nftables")
        .and_then(|n| n.as_array())
        .ok_or_else(|| NftError::Output("no \"nftables\" array".into()))?;
    for item in items {
        let Some(c) = item.get("counter") else {
            continue;
        };
        let name = c.get("name").and_then(|n| n.as_str()).unwrap_or_default();
        let packets = c.get("packets").and_then(|n| n.as_u64()).unwrap_or(0);
        let bytes = c.get("bytes").and_then(|n| n.as_u64()).unwrap_or(0);
        if !name.is_empty() {
            out.insert(name.to_string(), (packets, bytes));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_parse_from_nft_json() {
        let text = r#"{"nftables": [{"metainfo": {"version": "1.0.6"}},
            {"counter": {"family": "inet", "name": "r_1", "table": "contiv", "handle": 3, "packets": 7, "bytes": 588}},
            {"counter": {"family": "inet", "name": "r_2", "table": "contiv", "handle": 4, "packets": 0, "bytes": 0}}]}"#;
        let c = parse_counters(text).expect("parse");
        assert_eq!(c["r_1"], (7, 588));
        assert_eq!(c["r_2"], (0, 0));
        assert!(parse_counters("not json").is_err());
        assert!(parse_counters("{}").is_err());
    }
}
