//! Transaction operations and OVSDB's data notation (RFC 7047 §5.1, §5.2) as pure data: build
//! [`Op`]s and atoms here, send them with `Client::transact`, read results back with the `as_*`
//! helpers. No I/O.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::Error;

/// A row: column name to OVSDB datum.
pub type Row = Map<String, Value>;

/// A row's uuid as a reference: `["uuid", "…"]`.
pub fn uuid(u: &str) -> Value {
    json!(["uuid", u])
}

/// A row inserted earlier in the same transaction, by its `uuid-name`.
pub fn named(name: &str) -> Value {
    json!(["named-uuid", name])
}

pub fn set(items: Vec<Value>) -> Value {
    json!(["set", items])
}

pub fn string_map<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Value {
    let pairs: Vec<Value> = pairs.into_iter().map(|(k, v)| json!([k, v])).collect();
    json!(["map", pairs])
}

/// A `where` clause element: `[column, function, value]` (`==`, `!=`, `includes`, ...).
pub fn cond(column: &str, function: &str, value: Value) -> Value {
    json!([column, function, value])
}

/// A mutation: `[column, mutator, value]` (`insert`, `delete`, `+=`, ...).
pub fn mutation(column: &str, mutator: &str, value: Value) -> Value {
    json!([column, mutator, value])
}

/// The members of a set datum (a lone atom is a set of one, RFC 7047 §5.1).
pub fn as_set(v: &Value) -> Vec<&Value> {
    match v.as_array().map(Vec::as_slice) {
        Some([Value::String(tag), Value::Array(items)]) if tag == "set" => items.iter().collect(),
        _ => vec![v],
    }
}

/// A string-to-string map datum (`external_ids`, `options`); other pairs are skipped.
pub fn as_string_map(v: &Value) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Some([Value::String(tag), Value::Array(pairs)]) = v.as_array().map(Vec::as_slice) {
        if tag == "map" {
            for p in pairs {
                if let Some([Value::String(k), Value::String(v)]) = p.as_array().map(Vec::as_slice)
                {
                    out.insert(k.clone(), v.clone());
                }
            }
        }
    }
    out
}

/// The uuid in a `["uuid", "…"]` atom.
pub fn as_uuid(v: &Value) -> Option<&str> {
    match v.as_array().map(Vec::as_slice) {
        Some([Value::String(tag), Value::String(u)]) if tag == "uuid" => Some(u),
        _ => None,
    }
}

/// An optional integer column (`ofport`: an empty set until vswitchd fills it in).
pub fn as_opt_i64(v: &Value) -> Option<i64> {
    as_set(v).first().and_then(|a| a.as_i64())
}

/// One operation of a `transact` (RFC 7047 §5.2).
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    Insert {
        table: String,
        row: Row,
        /// Lets later operations of the same transaction refer to the new row.
        uuid_name: Option<String>,
    },
    Select {
        table: String,
        conditions: Vec<Value>,
        columns: Option<Vec<String>>,
    },
    Update {
        table: String,
        conditions: Vec<Value>,
        row: Row,
    },
    Mutate {
        table: String,
        conditions: Vec<Value>,
        mutations: Vec<Value>,
    },
    Delete {
        table: String,
        conditions: Vec<Value>,
    },
    /// Aborts the transaction unless the selected rows' `columns` equal (`until: "=="`) or differ
    /// from (`"!="`) `rows`; with `timeout_ms: Some(0)` it fails at once instead of waiting.
    Wait {
        table: String,
        conditions: Vec<Value>,
        columns: Vec<String>,
        equal: bool,
        rows: Vec<Row>,
        timeout_ms: Option<u64>,
    },
    Comment(String),
}

impl Op {
    pub fn select(table: &str, conditions: Vec<Value>, columns: &[&str]) -> Op {
        Op::Select {
            table: table.into(),
            conditions,
            columns: Some(columns.iter().map(|c| c.to_string()).collect()),
        }
    }

    pub fn to_value(&self) -> Value {
        match self {
            Op::Insert {
                table,
                row,
                uuid_name,
            } => {
                let mut v = json!({"op": "insert", "table": table, "row": row});
                if let Some(n) = uuid_name {
                    v["uuid-name"] = json!(n);
                }
                v
            }
            Op::Select {
                table,
                conditions,
                columns,
            } => {
                let mut v = json!({"op": "select", "table": table, "where": conditions});
                if let Some(c) = columns {
                    v["columns"] = json!(c);
                }
                v
            }
            Op::Update {
                table,
                conditions,
                row,
            } => json!({"op": "update", "table": table, "where": conditions, "row": row}),
            Op::Mutate {
                table,
                conditions,
                mutations,
            } => {
                json!({"op": "mutate", "table": table, "where": conditions, "mutations": mutations})
            }
            Op::Delete { table, conditions } => {
                json!({"op": "delete", "table": table, "where": conditions})
            }
            Op::Wait {
                table,
                conditions,
                columns,
                equal,
                rows,
                timeout_ms,
            } => {
                let until = if *equal { "==" } else { "!=" };
                let mut v = json!({"op": "wait", "table": table, "where": conditions,
                    "columns": columns, "until": until, "rows": rows});
                if let Some(t) = timeout_ms {
                    v["timeout"] = json!(t);
                }
                v
            }
            Op::Comment(c) => json!({"op": "comment", "comment": c}),
        }
    }
}

/// Checks a `transact` result: one entry per operation, an `{"error": …}` entry for the one that
/// failed (the rest `null`), and one more error entry if the commit itself failed (§4.1.3).
pub fn check_results(ops: usize, result: Value) -> Result<Vec<Value>, Error> {
    let Value::Array(results) = result else {
        return Err(Error::Protocol(format!(
            "transact result is not an array: {result}"
        )));
    };
    for (index, r) in results.iter().enumerate() {
        if let Some(error) = r.get("error") {
            return Err(Error::Transact {
                index,
                of: ops,
                error: error.as_str().unwrap_or("unknown").to_string(),
                details: r
                    .get("details")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
            });
        }
    }
    if results.len() < ops {
        return Err(Error::Protocol(format!(
            "transact answered {} results for {ops} operations",
            results.len()
        )));
    }
    Ok(results)
}

/// The rows of a `select` result.
pub fn rows(result: &Value) -> Vec<Row> {
    result
        .get("rows")
        .and_then(Value::as_array)
        .map(|rs| rs.iter().filter_map(|r| r.as_object().cloned()).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_encode_as_rfc7047_objects() {
        let mut row = Row::new();
        row.insert("name".into(), json!("br0"));
        let ins = Op::Insert {
            table: "Bridge".into(),
            row,
            uuid_name: Some("br".into()),
        };
        assert_eq!(
            ins.to_value().to_string(),
            r#"{"op":"insert","row":{"name":"br0"},"table":"Bridge","uuid-name":"br"}"#
        );
        let m = Op::Mutate {
            table: "Open_vSwitch".into(),
            conditions: vec![],
            mutations: vec![mutation("bridges", "insert", set(vec![named("br")]))],
        };
        assert_eq!(
            m.to_value().to_string(),
            r#"{"mutations":[["bridges","insert",["set",[["named-uuid","br"]]]]],"op":"mutate","table":"Open_vSwitch","where":[]}"#
        );
        let w = Op::Wait {
            table: "Bridge".into(),
            conditions: vec![cond("name", "==", json!("br0"))],
            columns: vec!["name".into()],
            equal: true,
            rows: vec![],
            timeout_ms: Some(0),
        };
        assert_eq!(
            w.to_value().to_string(),
            r#"{"columns":["name"],"op":"wait","rows":[],"table":"Bridge","timeout":0,"until":"==","where":[["name","==","br0"]]}"#
        );
    }

    #[test]
    fn data_notation_reads_back() {
        assert_eq!(as_opt_i64(&json!(["set", []])), None);
        assert_eq!(as_opt_i64(&json!(5)), Some(5));
        let m = as_string_map(&json!(["map", [["a", "1"], ["b", "2"], ["c", 3]]]));
        assert_eq!(m.len(), 2);
        assert_eq!(as_uuid(&uuid("1-2")), Some("1-2"));
        assert_eq!(as_set(&json!(["set", [1, 2]])).len(), 2);
        assert_eq!(as_set(&json!("secure")), [&json!("secure")]);
    }

    #[test]
    fn failed_operation_and_failed_commit_are_errors() {
        let r = json!([{"uuid": ["uuid", "x"]}, {"error": "constraint violation", "details": "dup"}, null]);
        let e = check_results(3, r).unwrap_err();
        assert_eq!(
            e.to_string(),
            "ovsdb transaction failed at operation 2 of 3: constraint violation: dup"
        );
        let r = json!([{}, {"error": "referential integrity violation"}]);
        assert!(check_results(1, r).is_err());
        assert!(check_results(2, json!([{}])).is_err());
        assert_eq!(check_results(1, json!([{"count": 1}])).unwrap().len(), 1);
    }
}
