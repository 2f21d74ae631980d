//! Typed `Open_vSwitch` helpers for the agent: bridges ([`bridge`]), ports and interfaces
//! ([`port`]), ofport numbers. Everything Contiv creates carries `external_ids:contiv-owner=<owner>`;
//! a bridge or port without that mark is never changed (a clear [`Error::NotOurs`]), and the mark
//! is re-checked by a `wait` inside the very transaction that changes the row, so a row someone
//! else took over meanwhile is not touched either ([`Error::Changed`]).

mod bridge;
mod port;

use serde_json::{json, Value};

pub use bridge::{BridgeSpec, FailMode};
pub use port::{PortInfo, PortKind, PortSpec, TunnelKey};

use crate::ops::{self, cond, Op, Row};
use crate::{Client, Error};

/// The database every helper works on.
pub const DB: &str = "Open_vSwitch";
/// The `external_ids` key that marks a row as Contiv's.
pub const OWNER_KEY: &str = "contiv-owner";

/// The agent's view of one ovsdb-server: a client plus the owner mark it writes and honours.
#[derive(Clone)]
pub struct Vswitch {
    client: Client,
    owner: String,
}

impl Vswitch {
    /// `owner` is the value of `external_ids:contiv-owner` on every row we make (e.g. `netplugin`).
    pub fn new(client: Client, owner: impl Into<String>) -> Vswitch {
        Vswitch {
            client,
            owner: owner.into(),
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Creates the single `Open_vSwitch` row if the database has none (what `ovs-vsctl init`
    /// does); a no-op otherwise. Needed only on a database ovs-vswitchd never started on.
    pub async fn ensure_root(&self) -> Result<(), Error> {
        if self.root().await.is_ok() {
            return Ok(());
        }
        let ops = [
            // Only if the table is still empty: two agents racing here insert one row, not two.
            Op::Wait {
                table: DB.into(),
                conditions: vec![],
                columns: vec!["_uuid".into()],
                equal: true,
                rows: vec![],
                timeout_ms: Some(0),
            },
            Op::Insert {
                table: DB.into(),
                row: Row::new(),
                uuid_name: None,
            },
        ];
        match self.client.transact(DB, &ops).await {
            Err(Error::Transact { index: 0, .. }) => Ok(()),
            r => r.map(|_| ()),
        }
    }

    /// Removes `other_config:flow-restore-wait` from the `Open_vSwitch` row (what a start
    /// script sets so a restarting ovs-vswitchd forwards nothing until its flows are back);
    /// returns whether it was set. Not an owned row: only this one key is touched.
    pub async fn clear_flow_restore_wait(&self) -> Result<bool, Error> {
        const KEY: &str = "flow-restore-wait";
        let r = self
            .client
            .transact(DB, &[Op::select(DB, vec![], &["_uuid", "other_config"])])
            .await?;
        let rows = ops::rows(&r[0]);
        let Some(row) = rows.first() else {
            return Err(Error::NoRoot);
        };
        let set = row
            .get("other_config")
            .map(ops::as_string_map)
            .unwrap_or_default()
            .contains_key(KEY);
        if !set {
            return Ok(false);
        }
        let uuid = row_uuid(row)?;
        let op = Op::Mutate {
            table: DB.into(),
            conditions: vec![cond("_uuid", "==", ops::uuid(&uuid))],
            mutations: vec![ops::mutation(
                "other_config",
                "delete",
                ops::set(vec![json!(KEY)]),
            )],
        };
        self.client.transact(DB, &[op]).await?;
        Ok(true)
    }

    /// The uuid of the `Open_vSwitch` row.
    async fn root(&self) -> Result<String, Error> {
        let r = self
            .client
            .transact(DB, &[Op::select(DB, vec![], &["_uuid"])])
            .await?;
        let rows = ops::rows(&r[0]);
        rows.first()
            .and_then(|r| r.get("_uuid"))
            .and_then(ops::as_uuid)
            .map(str::to_string)
            .ok_or(Error::NoRoot)
    }

    /// The owner mark merged into caller-given `external_ids`.
    fn owned_ids(&self, extra: &std::collections::BTreeMap<String, String>) -> Value {
        let mut ids = extra.clone();
        ids.insert(OWNER_KEY.to_string(), self.owner.clone());
        ops::string_map(ids.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }

    /// Refuses a row whose `external_ids` lack our owner mark.
    fn check_ours(&self, kind: &'static str, name: &str, row: &Row) -> Result<(), Error> {
        let ids = row
            .get("external_ids")
            .map(ops::as_string_map)
            .unwrap_or_default();
        match ids.get(OWNER_KEY) {
            Some(o) if *o == self.owner => Ok(()),
            other => Err(Error::NotOurs {
                kind,
                name: name.to_string(),
                key: OWNER_KEY,
                owner: other.cloned(),
            }),
        }
    }
}

/// A `wait` that aborts the transaction unless row `uuid` of `table` still has the `external_ids`
/// we read (so still ours, and nobody re-marked it since).
fn still_as_read(table: &str, uuid: &str, row: &Row) -> Op {
    let mut expect = Row::new();
    expect.insert(
        "external_ids".into(),
        row.get("external_ids")
            .cloned()
            .unwrap_or(json!(["map", []])),
    );
    Op::Wait {
        table: table.into(),
        conditions: vec![cond("_uuid", "==", ops::uuid(uuid))],
        columns: vec!["external_ids".into()],
        equal: true,
        rows: vec![expect],
        timeout_ms: Some(0),
    }
}

/// Turns the failure of the guarding `wait` (operation 0) into [`Error::Changed`].
fn guarded(
    r: Result<Vec<Value>, Error>,
    kind: &'static str,
    name: &str,
) -> Result<Vec<Value>, Error> {
    match r {
        Err(Error::Transact {
            index: 0, error, ..
        }) if error == "timed out" => Err(Error::Changed {
            kind,
            name: name.to_string(),
        }),
        r => r,
    }
}

fn row_uuid(row: &Row) -> Result<String, Error> {
    row.get("_uuid")
        .and_then(ops::as_uuid)
        .map(str::to_string)
        .ok_or_else(|| Error::Protocol(format!("row without _uuid: {row:?}")))
}

/// Bridge, port and interface names become Linux netdev names (at most 15 bytes) for internal
/// ports; a name OVS or the kernel would refuse later is refused here, before anything changes.
pub fn check_name(what: &str, name: &str) -> Result<(), Error> {
    let why = if name.is_empty() {
        "empty"
    } else if name.len() > 15 {
        "longer than 15 bytes (a Linux interface name)"
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        "only letters, digits, '-', '_' and '.' are allowed"
    } else {
        return Ok(());
    };
    Err(Error::Invalid {
        what: format!("{what} name {name:?}"),
        why: why.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_before_anything_is_sent() {
        assert!(check_name("bridge", "contivbr0").is_ok());
        for bad in ["", "a-name-much-too-long", "br 0", "br/0", "bré"] {
            let e = check_name("bridge", bad).unwrap_err().to_string();
            assert!(e.starts_with("invalid bridge name"), "{e}");
        }
    }
}
