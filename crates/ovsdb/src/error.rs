//! The crate's error type: every way talking to ovsdb-server can fail, each naming what failed.

use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot connect to ovsdb-server at {endpoint}: {source} (is ovsdb-server running?)")]
    Connect {
        endpoint: String,
        source: std::io::Error,
    },
    #[error("bad ovsdb endpoint {0:?}: expected unix:PATH or tcp:IP:PORT")]
    Endpoint(String),
    #[error("ovsdb connection: {0}")]
    Io(#[from] std::io::Error),
    #[error("connection to ovsdb-server closed")]
    Disconnected,
    #[error("unexpected message from ovsdb-server: {0}")]
    Protocol(String),
    #[error("ovsdb-server refused {method}: {error}")]
    Rpc { method: String, error: Value },
    /// `index` counts from 1; an index past `of` is the commit itself.
    #[error("ovsdb transaction failed at operation {} of {of}: {error}{}", index + 1,
        if details.is_empty() { String::new() } else { format!(": {details}") })]
    Transact {
        index: usize,
        of: usize,
        error: String,
        details: String,
    },
    #[error("{kind} {name} is not managed by contiv (external_ids:{key}={}): refusing to change it",
        owner.as_deref().unwrap_or("<unset>"))]
    NotOurs {
        kind: &'static str,
        name: String,
        key: &'static str,
        owner: Option<String>,
    },
    #[error("bridge {0} does not exist")]
    NoSuchBridge(String),
    #[error("port {port} is on bridge {on}, not {bridge}")]
    WrongBridge {
        port: String,
        bridge: String,
        on: String,
    },
    #[error("invalid {what}: {why}")]
    Invalid { what: String, why: String },
    #[error("{kind} {name} changed while contiv was updating it: nothing was changed, try again")]
    Changed { kind: &'static str, name: String },
    #[error("the Open_vSwitch database has no Open_vSwitch row: start ovs-vswitchd once or call Vswitch::ensure_root")]
    NoRoot,
    #[error("interface {name} failed in ovs-vswitchd: {error}")]
    Interface { name: String, error: String },
    #[error("timed out after {0:?} waiting for {1}")]
    Timeout(std::time::Duration, String),
}
