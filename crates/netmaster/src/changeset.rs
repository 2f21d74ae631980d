//! A change set: what one API write does to the store, built by the engine's planning code while it
//! only reads state, then committed as ONE store transaction and applied to memory afterwards.

use contiv_store::{Compare, Op, Txn};
use serde::Serialize;

use crate::error::{ApiError, ApiResult};

/// Puts and deletes (with the guards that make them safe), in the order they were planned.
#[derive(Debug, Default)]
pub struct ChangeSet {
    compares: Vec<Compare>,
    /// (key, Some(value)) = put, (key, None) = delete.
    writes: Vec<(String, Option<Vec<u8>>)>,
}

impl ChangeSet {
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    /// Writes `value` as JSON under `key`.
    pub fn put_json<T: Serialize + ?Sized>(&mut self, key: String, value: &T) -> ApiResult<()> {
        let bytes = serde_json::to_vec(value)
            .map_err(|e| ApiError::internal(format!("cannot encode {key}: {e}")))?;
        self.writes.push((key, Some(bytes)));
        Ok(())
    }

    /// Writes raw bytes under `key`.
    pub fn put_raw(&mut self, key: String, value: Vec<u8>) {
        self.writes.push((key, Some(value)));
    }

    /// Claims a key that must not exist yet (a resource allocation): the transaction fails if
    /// another writer took it first.
    pub fn claim(&mut self, key: String, owner: &str) {
        self.compares.push(Compare::Absent(key.clone()));
        self.writes.push((key, Some(owner.as_bytes().to_vec())));
    }

    pub fn delete(&mut self, key: String) {
        self.writes.push((key, None));
    }

    /// The writes, for applying to memory after the commit succeeded.
    pub fn writes(&self) -> &[(String, Option<Vec<u8>>)] {
        &self.writes
    }

    /// The store transaction for this change set.
    pub fn to_txn(&self) -> Txn {
        let ops = self
            .writes
            .iter()
            .map(|(k, v)| match v {
                Some(v) => Op::Put {
                    key: k.clone(),
                    value: v.clone(),
                    lease: None,
                },
                None => Op::Delete { key: k.clone() },
            })
            .collect();
        Txn {
            compares: self.compares.clone(),
            ops,
        }
    }
}
