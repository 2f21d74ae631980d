//! Translation of a [`Txn`] into one etcd transaction, as pure data (no I/O): compares, the
//! success ops collapsed so that no key is written twice (etcd refuses that), and the failure-branch
//! reads that let the client name the first failing compare.
//!
//! # Ops on the same key
//!
//! etcd rejects a transaction that puts a key twice, or puts a key that a delete of the same
//! transaction covers ("duplicate key given in txn request"). The store contract runs ops in order,
//! a later op seeing an earlier one, so the client collapses them before sending, keeping the final
//! state of every key:
//! - a put replaces an earlier put of the same key;
//! - a put of a key an earlier delete covers removes the key from that delete (a single-key delete
//!   is dropped, a range is split around the key);
//! - a delete (key or prefix) drops the earlier puts it covers.
//!
//! The final keys and values are those of the in-order application. What differs from the embedded
//! backend in these (unusual) transactions: a delete-then-put of an existing key keeps its
//! `create_revision` and emits only the put event; a put-then-delete of a key that did not exist
//! emits no event (and spends no revision if nothing else changed).

use etcd_client::{
    Compare as EtcdCompare, CompareOp, DeleteOptions, GetOptions, PutOptions, Txn as EtcdTxn, TxnOp,
};

use crate::types::{Compare, LeaseId, Op, Revision};

/// A key range as etcd spells it: `end` empty is the single key `start`; `end == [0]` is every key
/// `>= start`; otherwise `[start, end)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct KeyRange {
    pub start: Vec<u8>,
    pub end: Vec<u8>,
}

/// etcd's "to the end of the keyspace" range end.
const TO_END: &[u8] = &[0];

impl KeyRange {
    /// Exactly `key`.
    pub fn key(key: Vec<u8>) -> Self {
        KeyRange {
            start: key,
            end: Vec::new(),
        }
    }

    /// Every key starting with `prefix`; the empty prefix is every key (etcd: `"\0"` to `"\0"`).
    pub fn prefix(prefix: &str) -> Self {
        if prefix.is_empty() {
            return KeyRange {
                start: TO_END.to_vec(),
                end: TO_END.to_vec(),
            };
        }
        let start = prefix.as_bytes().to_vec();
        // Byte-wise prefix end: drop trailing 0xff bytes and increment the last one (UTF-8 never
        // has 0xff, so for our string keys this is "increment the last byte").
        let mut end = start.clone();
        while end.last() == Some(&0xff) {
            end.pop();
        }
        match end.last_mut() {
            Some(b) => *b += 1,
            None => end = TO_END.to_vec(),
        }
        KeyRange { start, end }
    }

    fn contains(&self, k: &[u8]) -> bool {
        if self.end.is_empty() {
            return self.start == k;
        }
        k >= self.start.as_slice() && (self.end == TO_END || k < self.end.as_slice())
    }

    /// The parts of this range other than `k` (which it contains).
    fn without(self, k: &[u8]) -> Vec<KeyRange> {
        if self.end.is_empty() {
            return Vec::new();
        }
        let mut parts = Vec::with_capacity(2);
        if self.start.as_slice() < k {
            parts.push(KeyRange {
                start: self.start,
                end: k.to_vec(),
            });
        }
        // The smallest key after `k`.
        let mut after = k.to_vec();
        after.push(0);
        if self.end == TO_END || after < self.end {
            parts.push(KeyRange {
                start: after,
                end: self.end,
            });
        }
        parts
    }
}

/// One op of the collapsed plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum PlanOp {
    Put {
        key: Vec<u8>,
        value: Vec<u8>,
        lease: Option<LeaseId>,
    },
    Delete(KeyRange),
}

impl PlanOp {
    fn put_key(&self) -> Option<&[u8]> {
        match self {
            PlanOp::Put { key, .. } => Some(key),
            PlanOp::Delete(_) => None,
        }
    }
}

/// Collapses `ops` so that no key is put twice or put and deleted (see the module docs).
pub(super) fn plan_ops(ops: Vec<Op>) -> Vec<PlanOp> {
    let mut plan: Vec<PlanOp> = Vec::with_capacity(ops.len());
    for op in ops {
        match op {
            Op::Put { key, value, lease } => {
                let key = key.into_bytes();
                let mut next = Vec::with_capacity(plan.len() + 1);
                for p in plan {
                    match p {
                        PlanOp::Put { key: ref k, .. } if *k == key => {}
                        PlanOp::Delete(r) if r.contains(&key) => {
                            next.extend(r.without(&key).into_iter().map(PlanOp::Delete));
                        }
                        other => next.push(other),
                    }
                }
                next.push(PlanOp::Put { key, value, lease });
                plan = next;
            }
            Op::Delete { key } => delete(&mut plan, KeyRange::key(key.into_bytes())),
            Op::DeletePrefix { prefix } => delete(&mut plan, KeyRange::prefix(&prefix)),
        }
    }
    plan
}

fn delete(plan: &mut Vec<PlanOp>, range: KeyRange) {
    plan.retain(|p| p.put_key().is_none_or(|k| !range.contains(k)));
    plan.push(PlanOp::Delete(range));
}

/// A revision as etcd's `i64`; a revision beyond `i64::MAX` cannot exist, so it never matches.
pub(super) fn etcd_rev(r: Revision) -> i64 {
    i64::try_from(r).unwrap_or(i64::MAX)
}

fn etcd_compare(c: &Compare) -> EtcdCompare {
    match c {
        Compare::Absent(k) => EtcdCompare::create_revision(k.as_bytes(), CompareOp::Equal, 0),
        Compare::Exists(k) => EtcdCompare::create_revision(k.as_bytes(), CompareOp::Greater, 0),
        // An absent key has mod_revision 0 in etcd's compare too.
        Compare::ModRevision(k, r) => {
            EtcdCompare::mod_revision(k.as_bytes(), CompareOp::Equal, etcd_rev(*r))
        }
        // etcd fails a value compare on an absent key, as the contract wants.
        Compare::Value(k, v) => EtcdCompare::value(k.as_bytes(), CompareOp::Equal, v.clone()),
    }
}

fn etcd_op(op: PlanOp) -> TxnOp {
    match op {
        PlanOp::Put { key, value, lease } => {
            let opts = lease.map(|l| PutOptions::new().with_lease(l));
            TxnOp::put(key, value, opts)
        }
        PlanOp::Delete(r) if r.end.is_empty() => TxnOp::delete(r.start, None),
        PlanOp::Delete(r) => TxnOp::delete(r.start, Some(DeleteOptions::new().with_range(r.end))),
    }
}

/// Distinct keys read by `compares`, in first-use order: the failure branch reads each once.
pub(super) fn compare_keys(compares: &[Compare]) -> Vec<&str> {
    let mut keys: Vec<&str> = Vec::with_capacity(compares.len());
    for c in compares {
        if !keys.contains(&c.key()) {
            keys.push(c.key());
        }
    }
    keys
}

/// The etcd transaction: `compares`, then the collapsed `plan`, else a read of every compared key
/// (same revision as the failed evaluation, so the client can tell which compare failed).
pub(super) fn build_txn(compares: &[Compare], plan: Vec<PlanOp>) -> EtcdTxn {
    let cmps: Vec<EtcdCompare> = compares.iter().map(etcd_compare).collect();
    let ops: Vec<TxnOp> = plan.into_iter().map(etcd_op).collect();
    let reads: Vec<TxnOp> = compare_keys(compares)
        .into_iter()
        .map(|k| TxnOp::get(k.as_bytes(), Some(GetOptions::new())))
        .collect();
    EtcdTxn::new().when(cmps).and_then(ops).or_else(reads)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(k: &str) -> Op {
        Op::Put {
            key: k.into(),
            value: k.as_bytes().to_vec(),
            lease: None,
        }
    }
    fn pput(k: &str) -> PlanOp {
        PlanOp::Put {
            key: k.as_bytes().to_vec(),
            value: k.as_bytes().to_vec(),
            lease: None,
        }
    }
    fn range(a: &[u8], b: &[u8]) -> PlanOp {
        PlanOp::Delete(KeyRange {
            start: a.to_vec(),
            end: b.to_vec(),
        })
    }

    #[test]
    fn prefix_ranges() {
        assert_eq!(KeyRange::prefix("/a/").end, b"/a0");
        assert_eq!(KeyRange::prefix("").start, b"\0");
        assert_eq!(KeyRange::prefix("").end, b"\0");
        let r = KeyRange::prefix("/x/é");
        assert!(r.contains("/x/éz".as_bytes()) && !r.contains("/x/ê".as_bytes()));
        assert!(KeyRange::prefix("").contains(b"anything"));
    }

    #[test]
    fn distinct_ops_pass_unchanged() {
        let plan = plan_ops(vec![put("/a"), Op::Delete { key: "/b".into() }, put("/c")]);
        assert_eq!(plan.len(), 3);
    }

    #[test]
    fn later_put_wins_and_delete_drops_puts() {
        let plan = plan_ops(vec![put("/a"), put("/b"), put("/a")]);
        assert_eq!(plan, [pput("/b"), pput("/a")]);
        let plan = plan_ops(vec![put("/a"), Op::Delete { key: "/a".into() }]);
        assert_eq!(plan, [PlanOp::Delete(KeyRange::key(b"/a".to_vec()))]);
        let plan = plan_ops(vec![
            put("/p/1"),
            put("/q"),
            Op::DeletePrefix {
                prefix: "/p/".into(),
            },
        ]);
        assert_eq!(plan, [pput("/q"), range(b"/p/", b"/p0")]);
    }

    #[test]
    fn put_after_delete_splits_the_range() {
        let plan = plan_ops(vec![Op::Delete { key: "/a".into() }, put("/a")]);
        assert_eq!(plan, [pput("/a")]);
        let plan = plan_ops(vec![
            Op::DeletePrefix {
                prefix: "/p/".into(),
            },
            put("/p/m"),
        ]);
        assert_eq!(
            plan,
            [
                range(b"/p/", b"/p/m"),
                range(b"/p/m\0", b"/p0"),
                pput("/p/m")
            ]
        );
        let plan = plan_ops(vec![Op::DeletePrefix { prefix: "".into() }, put("/z")]);
        assert_eq!(
            plan,
            [range(b"\0", b"/z"), range(b"/z\0", b"\0"), pput("/z")]
        );
    }
}
