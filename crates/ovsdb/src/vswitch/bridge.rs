//! Bridges: ensure one exists with the settings the datapath needs, delete one we own.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::{check_name, guarded, row_uuid, still_as_read, Vswitch, DB};
use crate::ops::{self, cond, mutation, Op, Row};
use crate::Error;

/// `fail_mode`: what vswitchd does without a controller. `Secure` keeps the flow table as is
/// (no NORMAL fallback), which is what an OpenFlow pipeline wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailMode {
    Secure,
    Standalone,
}

impl FailMode {
    fn as_str(self) -> &'static str {
        match self {
            FailMode::Secure => "secure",
            FailMode::Standalone => "standalone",
        }
    }
}

/// The bridge the agent wants.
#[derive(Debug, Clone, PartialEq)]
pub struct BridgeSpec {
    pub name: String,
    /// `netdev` here: this kernel has no openvswitch module, only the userspace datapath.
    pub datapath_type: String,
    pub fail_mode: FailMode,
    pub protocols: Vec<String>,
    /// An OpenFlow controller target (`tcp:127.0.0.1:6653`, `ptcp:6653:127.0.0.1`), if any.
    pub controller: Option<String>,
    pub external_ids: BTreeMap<String, String>,
}

impl BridgeSpec {
    /// A userspace bridge, fail mode secure, OpenFlow 1.3 only, no controller.
    pub fn netdev(name: &str) -> BridgeSpec {
        BridgeSpec {
            name: name.to_string(),
            datapath_type: "netdev".into(),
            fail_mode: FailMode::Secure,
            protocols: vec!["OpenFlow13".into()],
            controller: None,
            external_ids: BTreeMap::new(),
        }
    }

    pub fn controller(mut self, target: &str) -> BridgeSpec {
        self.controller = Some(target.to_string());
        self
    }
}

const BRIDGE_COLUMNS: &[&str] = &[
    "_uuid",
    "external_ids",
    "datapath_type",
    "fail_mode",
    "protocols",
    "controller",
    "ports",
];

impl Vswitch {
    /// Makes bridge `spec.name` exist with `spec`'s settings. A new bridge gets its local
    /// (internal) port like `ovs-vsctl add-br` makes; an existing one of ours gets only the columns
    /// that differ (`external_ids`: only the keys the spec names; others are kept) (changing `fail_mode` wipes the flow table, so an equal one is never rewritten).
    /// Returns whether the bridge was created. A bridge of that name that is not ours: [`Error::NotOurs`].
    pub async fn ensure_bridge(&self, spec: &BridgeSpec) -> Result<bool, Error> {
        check_name("bridge", &spec.name)?;
        if spec.protocols.is_empty() {
            return Err(Error::Invalid {
                what: format!("bridge {}", spec.name),
                why: "no OpenFlow protocol version".into(),
            });
        }
        match self.bridge_row(&spec.name).await? {
            None => self.create_bridge(spec).await.map(|()| true),
            Some(row) => self.update_bridge(spec, &row).await.map(|()| false),
        }
    }

    /// Deletes bridge `name` with its ports and interfaces. `Ok(false)` if there was none.
    pub async fn delete_bridge(&self, name: &str) -> Result<bool, Error> {
        check_name("bridge", name)?;
        let Some(row) = self.bridge_row(name).await? else {
            return Ok(false);
        };
        self.check_ours("bridge", name, &row)?;
        let uuid = row_uuid(&row)?;
        // Ports, interfaces and controllers are not root rows: OVSDB drops them with the bridge.
        let ops = [
            still_as_read("Bridge", &uuid, &row),
            Op::Mutate {
                table: DB.into(),
                conditions: vec![],
                mutations: vec![mutation(
                    "bridges",
                    "delete",
                    ops::set(vec![ops::uuid(&uuid)]),
                )],
            },
        ];
        guarded(self.client.transact(DB, &ops).await, "bridge", name)?;
        Ok(true)
    }

    /// The `external_ids` of our bridge `name` (the owner mark included). A bridge that is not
    /// ours: [`Error::NotOurs`]; no bridge of that name: [`Error::Invalid`].
    pub async fn bridge_external_ids(&self, name: &str) -> Result<BTreeMap<String, String>, Error> {
        let row = self.our_bridge(name).await?;
        Ok(row
            .get("external_ids")
            .map(ops::as_string_map)
            .unwrap_or_default())
    }

    /// Sets `ids` in our bridge's `external_ids` (other keys kept; the owner mark cannot be
    /// set), in one transaction guarded like every change: a bridge someone else marked since
    /// it was read is not touched ([`Error::Changed`]).
    pub async fn set_bridge_external_ids(
        &self,
        name: &str,
        ids: &BTreeMap<String, String>,
    ) -> Result<(), Error> {
        if ids.contains_key(super::OWNER_KEY) {
            return Err(Error::Invalid {
                what: format!("external_ids of bridge {name}"),
                why: format!("{} is the owner mark, not a value to set", super::OWNER_KEY),
            });
        }
        if ids.is_empty() {
            return Ok(());
        }
        let row = self.our_bridge(name).await?;
        let uuid = row_uuid(&row)?;
        let keys = ops::set(ids.keys().map(|k| json!(k)).collect());
        let pairs = ops::string_map(ids.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        // A map's `insert` keeps a key already present: its old value is deleted first.
        let ops = [
            still_as_read("Bridge", &uuid, &row),
            Op::Mutate {
                table: "Bridge".into(),
                conditions: vec![cond("_uuid", "==", ops::uuid(&uuid))],
                mutations: vec![
                    mutation("external_ids", "delete", keys),
                    mutation("external_ids", "insert", pairs),
                ],
            },
        ];
        guarded(self.client.transact(DB, &ops).await, "bridge", name)?;
        Ok(())
    }

    async fn our_bridge(&self, name: &str) -> Result<Row, Error> {
        check_name("bridge", name)?;
        let row = self.bridge_row(name).await?.ok_or_else(|| Error::Invalid {
            what: format!("bridge {name}"),
            why: "no such bridge".into(),
        })?;
        self.check_ours("bridge", name, &row)?;
        Ok(row)
    }

    /// Names of every bridge in the database (ours or not).
    pub async fn bridges(&self) -> Result<Vec<String>, Error> {
        let r = self
            .client
            .transact(DB, &[Op::select("Bridge", vec![], &["name"])])
            .await?;
        Ok(ops::rows(&r[0])
            .iter()
            .filter_map(|r| r.get("name").and_then(Value::as_str).map(str::to_string))
            .collect())
    }

    pub(super) async fn bridge_row(&self, name: &str) -> Result<Option<Row>, Error> {
        let sel = Op::select(
            "Bridge",
            vec![cond("name", "==", json!(name))],
            BRIDGE_COLUMNS,
        );
        let r = self.client.transact(DB, &[sel]).await?;
        Ok(ops::rows(&r[0]).into_iter().next())
    }

    async fn create_bridge(&self, spec: &BridgeSpec) -> Result<(), Error> {
        let root = self.root().await?;
        let ids = self.owned_ids(&BTreeMap::new());
        let mut ops = vec![
            insert(
                "Interface",
                "iface",
                [
                    ("name", json!(spec.name)),
                    ("type", json!("internal")),
                    ("external_ids", ids.clone()),
                ],
            ),
            insert(
                "Port",
                "port",
                [
                    ("name", json!(spec.name)),
                    ("interfaces", ops::named("iface")),
                    ("external_ids", ids),
                ],
            ),
        ];
        let mut bridge = row([
            ("name", json!(spec.name)),
            ("datapath_type", json!(spec.datapath_type)),
            ("fail_mode", json!(spec.fail_mode.as_str())),
            ("protocols", protocols(spec)),
            ("ports", ops::set(vec![ops::named("port")])),
            ("external_ids", self.owned_ids(&spec.external_ids)),
        ]);
        if let Some(target) = &spec.controller {
            ops.push(insert("Controller", "ctl", [("target", json!(target))]));
            bridge.insert("controller".into(), ops::set(vec![ops::named("ctl")]));
        }
        ops.push(Op::Insert {
            table: "Bridge".into(),
            row: bridge,
            uuid_name: Some("br".into()),
        });
        ops.push(Op::Mutate {
            table: DB.into(),
            conditions: vec![cond("_uuid", "==", ops::uuid(&root))],
            mutations: vec![mutation(
                "bridges",
                "insert",
                ops::set(vec![ops::named("br")]),
            )],
        });
        self.client.transact(DB, &ops).await?;
        Ok(())
    }

    async fn update_bridge(&self, spec: &BridgeSpec, row: &Row) -> Result<(), Error> {
        self.check_ours("bridge", &spec.name, row)?;
        let uuid = row_uuid(row)?;
        let mut changes = Row::new();
        let mut ops = vec![still_as_read("Bridge", &uuid, row)];
        let differs = |col: &str, want: &Value| {
            let have: Vec<&Value> = row.get(col).map(ops::as_set).unwrap_or_default();
            let mut want: Vec<&Value> = ops::as_set(want);
            let mut have = have;
            have.sort_by_key(|v| v.to_string());
            want.sort_by_key(|v| v.to_string());
            have != want
        };
        // external_ids: the spec's keys are set, keys it does not name are kept (the agent
        // keeps its tenant numbers there; a restart must not wipe them).
        let mut ids = row
            .get("external_ids")
            .map(ops::as_string_map)
            .unwrap_or_default();
        ids.extend(spec.external_ids.clone());
        for (col, want) in [
            ("datapath_type", json!(spec.datapath_type)),
            ("fail_mode", json!(spec.fail_mode.as_str())),
            ("protocols", protocols(spec)),
            ("external_ids", self.owned_ids(&ids)),
        ] {
            let same = if col == "external_ids" {
                row.get(col).map(ops::as_string_map) == Some(ops::as_string_map(&want))
            } else {
                !differs(col, &want)
            };
            if !same {
                changes.insert(col.into(), want);
            }
        }
        if self.controller_targets(row).await?
            != spec.controller.iter().cloned().collect::<Vec<_>>()
        {
            let ctl = match &spec.controller {
                Some(target) => {
                    ops.push(insert("Controller", "ctl", [("target", json!(target))]));
                    vec![ops::named("ctl")]
                }
                None => vec![],
            };
            changes.insert("controller".into(), ops::set(ctl));
        }
        if changes.is_empty() {
            return Ok(());
        }
        ops.push(Op::Update {
            table: "Bridge".into(),
            conditions: vec![cond("_uuid", "==", ops::uuid(&uuid))],
            row: changes,
        });
        guarded(self.client.transact(DB, &ops).await, "bridge", &spec.name)?;
        Ok(())
    }

    async fn controller_targets(&self, bridge: &Row) -> Result<Vec<String>, Error> {
        let uuids: Vec<&str> = bridge
            .get("controller")
            .map(ops::as_set)
            .unwrap_or_default()
            .into_iter()
            .filter_map(ops::as_uuid)
            .collect();
        let mut targets = vec![];
        for u in uuids {
            let sel = Op::select(
                "Controller",
                vec![cond("_uuid", "==", ops::uuid(u))],
                &["target"],
            );
            let r = self.client.transact(DB, &[sel]).await?;
            targets.extend(
                ops::rows(&r[0])
                    .iter()
                    .filter_map(|r| r.get("target").and_then(Value::as_str).map(str::to_string)),
            );
        }
        targets.sort();
        Ok(targets)
    }
}

fn protocols(spec: &BridgeSpec) -> Value {
    ops::set(spec.protocols.iter().map(|p| json!(p)).collect())
}

fn row<const N: usize>(cols: [(&str, Value); N]) -> Row {
    cols.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

pub(super) fn insert<const N: usize>(table: &str, name: &str, cols: [(&str, Value); N]) -> Op {
    Op::Insert {
        table: table.into(),
        row: row(cols),
        uuid_name: Some(name.into()),
    }
}
