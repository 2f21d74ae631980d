//! Backend-independent transaction semantics: compare evaluation, op application and lease revocation
//! over an abstract [`Table`]. Both backends call these functions inside their own write critical
//! section, so the two stores cannot drift apart.

use crate::error::StoreError;
use crate::types::{Compare, EventKind, KeyValue, LeaseId, Op, Revision, Txn, WatchEvent};

/// The key/value table of a backend, seen from inside one write transaction. Writes must only become
/// visible to others when the backend commits (SQLite transaction) or be infallible (memory).
pub(crate) trait Table {
    fn get(&mut self, key: &str) -> Result<Option<KeyValue>, StoreError>;
    /// Stores `kv`, keeping the existing `create_revision` if the key exists; returns the effective
    /// create revision.
    fn put(&mut self, kv: &KeyValue) -> Result<Revision, StoreError>;
    /// Removes the key; returns what it held.
    fn delete(&mut self, key: &str) -> Result<Option<KeyValue>, StoreError>;
    /// Removes every key under `prefix`; returns what they held (any order).
    fn delete_prefix(&mut self, prefix: &str) -> Result<Vec<KeyValue>, StoreError>;
    /// Keys attached to `lease`.
    fn keys_with_lease(&mut self, lease: LeaseId) -> Result<Vec<String>, StoreError>;
}

/// What [`apply_txn`] did.
#[derive(Debug)]
pub(crate) enum Applied {
    /// Compare `index` failed; nothing was written.
    CompareFailed(usize),
    /// Ops applied; the events carry revision `rev + 1`. Empty: nothing changed, spend no revision.
    Done(Vec<WatchEvent>),
}

pub(crate) fn check_key(key: &str) -> Result<(), StoreError> {
    if key.is_empty() {
        return Err(StoreError::Invalid("empty key".into()));
    }
    Ok(())
}

fn validate(txn: &Txn, lease_live: &dyn Fn(LeaseId) -> bool) -> Result<(), StoreError> {
    for c in &txn.compares {
        check_key(c.key())?;
    }
    for op in &txn.ops {
        match op {
            Op::Put { key, lease, .. } => {
                check_key(key)?;
                if let Some(l) = lease {
                    if !lease_live(*l) {
                        return Err(StoreError::LeaseNotFound(*l));
                    }
                }
            }
            Op::Delete { key } => check_key(key)?,
            Op::DeletePrefix { .. } => {}
        }
    }
    Ok(())
}

fn compare_holds(table: &mut dyn Table, c: &Compare) -> Result<bool, StoreError> {
    let cur = table.get(c.key())?;
    Ok(holds(c, cur.as_ref()))
}

/// Whether compare `c` holds when its key currently holds `cur` (`None`: absent). Every backend
/// evaluates compares (or, for etcd, names the failing one) with this function.
pub(crate) fn holds(c: &Compare, cur: Option<&KeyValue>) -> bool {
    match c {
        Compare::Absent(_) => cur.is_none(),
        Compare::Exists(_) => cur.is_some(),
        Compare::ModRevision(_, r) => cur.map_or(0, |kv| kv.mod_revision) == *r,
        Compare::Value(_, v) => cur.is_some_and(|kv| kv.value == *v),
    }
}

fn delete_event(prev: KeyValue, rev: Revision) -> WatchEvent {
    WatchEvent {
        kind: EventKind::Delete,
        kv: KeyValue {
            key: prev.key,
            value: Vec::new(),
            create_revision: prev.create_revision,
            mod_revision: rev,
            lease: None,
        },
        revision: rev,
    }
}

/// Evaluates the compares of `txn` against `table` (current revision `rev`) and, if all hold, applies
/// its ops in order. Errors (invalid key, unknown lease) are raised before anything is written; a
/// backend error mid-way must make the caller roll back.
pub(crate) fn apply_txn(
    table: &mut dyn Table,
    txn: Txn,
    rev: Revision,
    lease_live: &dyn Fn(LeaseId) -> bool,
) -> Result<Applied, StoreError> {
    validate(&txn, lease_live)?;
    for (index, c) in txn.compares.iter().enumerate() {
        if !compare_holds(table, c)? {
            return Ok(Applied::CompareFailed(index));
        }
    }
    let new_rev = rev + 1;
    let mut events = Vec::with_capacity(txn.ops.len());
    for op in txn.ops {
        match op {
            Op::Put { key, value, lease } => {
                let mut kv = KeyValue {
                    key,
                    value,
                    create_revision: new_rev,
                    mod_revision: new_rev,
                    lease,
                };
                kv.create_revision = table.put(&kv)?;
                events.push(WatchEvent {
                    kind: EventKind::Put,
                    kv,
                    revision: new_rev,
                });
            }
            Op::Delete { key } => {
                if let Some(prev) = table.delete(&key)? {
                    events.push(delete_event(prev, new_rev));
                }
            }
            Op::DeletePrefix { prefix } => {
                let mut gone = table.delete_prefix(&prefix)?;
                gone.sort_by(|a, b| a.key.cmp(&b.key));
                events.extend(gone.into_iter().map(|prev| delete_event(prev, new_rev)));
            }
        }
    }
    Ok(Applied::Done(events))
}

/// Deletes every key attached to `lease` as revision `rev + 1`; returns the delete events (sorted by key,
/// empty if the lease had no keys).
pub(crate) fn revoke_keys(
    table: &mut dyn Table,
    lease: LeaseId,
    rev: Revision,
) -> Result<Vec<WatchEvent>, StoreError> {
    let mut keys = table.keys_with_lease(lease)?;
    keys.sort();
    let mut events = Vec::with_capacity(keys.len());
    for key in keys {
        if let Some(prev) = table.delete(&key)? {
            events.push(delete_event(prev, rev + 1));
        }
    }
    Ok(events)
}

/// Smallest string greater than every string starting with `prefix` (exclusive upper bound of a prefix
/// scan), or `None` when there is none (empty prefix, or only `char::MAX`s).
pub(crate) fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(c) = chars.pop() {
        let next = match c as u32 + 1 {
            0xD800 => Some('\u{E000}'),
            n => char::from_u32(n),
        };
        if let Some(n) = next {
            chars.push(n);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::prefix_end;

    #[test]
    fn prefix_end_bounds() {
        assert_eq!(prefix_end("/a/"), Some("/a0".to_string()));
        assert_eq!(prefix_end(""), None);
        assert_eq!(prefix_end("a\u{10FFFF}"), Some("b".to_string()));
        assert_eq!(prefix_end("\u{D7FF}"), Some("\u{E000}".to_string()));
        let end = prefix_end("/x/é").unwrap_or_default();
        assert!("/x/éz" < end.as_str() && "/x/ê" >= end.as_str());
    }
}
