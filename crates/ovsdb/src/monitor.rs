//! Monitor requests and the table updates they produce (RFC 7047 §4.1.5, §4.1.6) as pure data.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::ops::Row;
use crate::Error;

/// A row's change: `old` absent for an insert, `new` absent for a delete; a modify carries the new
/// row and, in `old`, the previous values of the columns that changed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RowUpdate {
    pub old: Option<Row>,
    pub new: Option<Row>,
}

/// Table name → row uuid → change.
pub type TableUpdates = BTreeMap<String, BTreeMap<String, RowUpdate>>;

/// What to watch: per table, the columns (all when empty) and which changes to report.
#[derive(Debug, Clone, Default)]
pub struct MonitorRequests(BTreeMap<String, Vec<String>>);

impl MonitorRequests {
    pub fn new() -> MonitorRequests {
        MonitorRequests::default()
    }

    /// Watch `table` (initial contents, inserts, deletes and modifies) for `columns`.
    pub fn table(mut self, table: &str, columns: &[&str]) -> MonitorRequests {
        self.0.insert(
            table.to_string(),
            columns.iter().map(|c| c.to_string()).collect(),
        );
        self
    }

    pub fn to_value(&self) -> Value {
        let mut m = Map::new();
        for (table, columns) in &self.0 {
            let mut req = json!({"select": {"initial": true, "insert": true, "delete": true, "modify": true}});
            if !columns.is_empty() {
                req["columns"] = json!(columns);
            }
            m.insert(table.clone(), req);
        }
        Value::Object(m)
    }
}

/// Parses a `<table-updates>` object.
pub fn parse_updates(v: &Value) -> Result<TableUpdates, Error> {
    let bad = || Error::Protocol(format!("malformed table-updates: {v}"));
    let tables = v.as_object().ok_or_else(bad)?;
    let mut out = TableUpdates::new();
    for (table, rows) in tables {
        let rows = rows.as_object().ok_or_else(bad)?;
        let mut t = BTreeMap::new();
        for (uuid, change) in rows {
            let change = change.as_object().ok_or_else(bad)?;
            let row = |k: &str| change.get(k).and_then(Value::as_object).cloned();
            t.insert(
                uuid.clone(),
                RowUpdate {
                    old: row("old"),
                    new: row("new"),
                },
            );
        }
        out.insert(table.clone(), t);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_and_updates() {
        let r = MonitorRequests::new()
            .table("Bridge", &["name"])
            .table("Interface", &[]);
        assert_eq!(r.to_value()["Bridge"]["columns"], json!(["name"]));
        assert!(r.to_value()["Interface"].get("columns").is_none());
        let u = parse_updates(&json!({"Bridge": {
            "u1": {"new": {"name": "br0"}},
            "u2": {"old": {"name": "br1"}},
            "u3": {"old": {"fail_mode": ["set", []]}, "new": {"name": "br2", "fail_mode": "secure"}}
        }}))
        .unwrap();
        let b = &u["Bridge"];
        assert!(b["u1"].old.is_none() && b["u1"].new.is_some());
        assert!(b["u2"].new.is_none());
        assert_eq!(b["u3"].new.as_ref().unwrap()["fail_mode"], json!("secure"));
        assert!(parse_updates(&json!([1])).is_err());
        assert!(parse_updates(&json!({"Bridge": {"u": 3}})).is_err());
    }
}
