//! What role `ops` may write: an endpoint group's policy attachment (`policies`,
//! `extContractsGrps`), nothing else. The body of its write is compared with the group as it is
//! before any handler runs, so a write touching any other field, or creating a group, is refused
//! (403) and changes nothing.

use contiv_model::EndpointGroup;
use serde_json::{Map, Value};

use crate::engine::Engine;
use crate::error::{ApiError, ErrorKind};

/// Fields of an endpoint group that attach policy: the only ones `ops` may change.
const ATTACHMENT: &[&str] = &["policies", "extContractsGrps"];

/// Fields that are not the group's configuration (computed links and link-sets, the key the
/// path names).
const NOT_CONFIG: &[&str] = &["links", "link-sets", "key"];

/// Refuses an `ops` write of group `key` with `body` unless it only changes policy attachment.
pub fn check_group_write(engine: &Engine, key: &str, body: &[u8]) -> Result<(), ApiError> {
    let forbidden = |why: String| {
        ApiError::new(
            ErrorKind::Forbidden,
            format!("role ops may change only an endpoint group's policies ({why})"),
        )
    };
    let Ok(current) = engine.get::<EndpointGroup>(key) else {
        return Err(forbidden(format!(
            "endpoint group {key:?} does not exist and ops may not create it"
        )));
    };
    let Ok(Value::Object(wanted)) = serde_json::from_slice::<Value>(body) else {
        return Err(ApiError::bad_request(
            "request body: expected a JSON object (an endpoint group)",
        ));
    };
    let current = match serde_json::to_value(&current) {
        Ok(Value::Object(m)) => m,
        _ => return Err(ApiError::internal("encoding the current endpoint group")),
    };
    let (wanted, current) = (config_of(wanted), config_of(current));
    let mut changed: Vec<&str> = wanted
        .keys()
        .chain(current.keys())
        .filter(|f| wanted.get(*f) != current.get(*f))
        .map(String::as_str)
        .collect();
    changed.sort_unstable();
    changed.dedup();
    if changed.is_empty() {
        Ok(())
    } else {
        Err(forbidden(format!(
            "this write changes {}",
            changed.join(", ")
        )))
    }
}

/// The group's configuration fields other than policy attachment, without empty values (a
/// client may send `""` or `[]` for a field the stored group omits).
fn config_of(obj: Map<String, Value>) -> Map<String, Value> {
    obj.into_iter()
        .filter(|(k, v)| {
            !ATTACHMENT.contains(&k.as_str()) && !NOT_CONFIG.contains(&k.as_str()) && !empty(v)
        })
        .collect()
}

fn empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_attachment_and_empties_are_ignored() {
        let m = |v: Value| match v {
            Value::Object(m) => config_of(m),
            _ => unreachable!(),
        };
        let stored = m(json!({"key": "t:g", "groupName": "g", "networkName": "n",
            "tenantName": "t", "links": {"Network": {"key": "t:n"}}}));
        let attach = m(json!({"key": "t:g", "groupName": "g", "networkName": "n",
            "tenantName": "t", "policies": ["p"], "ipPool": "", "extContractsGrps": ["c"]}));
        assert_eq!(stored, attach);
        let moved = m(json!({"groupName": "g", "networkName": "other", "tenantName": "t"}));
        assert_ne!(stored, moved);
    }
}
