//! [`SqlTable`]: the `kv` table of the embedded store seen through the backend-independent
//! [`Table`] trait (used inside one SQLite write transaction), plus the read queries.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, Row};

use super::schema::sql_err;
use crate::error::StoreError;
use crate::txn::{prefix_end, Table};
use crate::types::{KeyValue, LeaseId, Revision};

macro_rules! cols {
    () => {
        "key, value, create_rev, mod_rev, lease"
    };
}
const GET_SQL: &str = concat!("SELECT ", cols!(), " FROM kv WHERE key = ?1");
const PUT_SQL: &str = "INSERT INTO kv(key, value, create_rev, mod_rev, lease) VALUES (?1, ?2, ?3, ?4, ?5)
     ON CONFLICT(key) DO UPDATE SET value = excluded.value, mod_rev = excluded.mod_rev, lease = excluded.lease
     RETURNING create_rev";
const DELETE_SQL: &str = concat!("DELETE FROM kv WHERE key = ?1 RETURNING ", cols!());
const DELETE_RANGE_SQL: &str = concat!(
    "DELETE FROM kv WHERE key >= ?1 AND key < ?2 RETURNING ",
    cols!()
);
const DELETE_FROM_SQL: &str = concat!("DELETE FROM kv WHERE key >= ?1 RETURNING ", cols!());
const RANGE_SQL: &str = concat!(
    "SELECT ",
    cols!(),
    " FROM kv WHERE key >= ?1 AND key < ?2 ORDER BY key"
);
const RANGE_FROM_SQL: &str = concat!("SELECT ", cols!(), " FROM kv WHERE key >= ?1 ORDER BY key");

/// Decodes a row of `cols!()`.
pub(super) fn row_kv(r: &Row<'_>) -> rusqlite::Result<KeyValue> {
    Ok(KeyValue {
        key: r.get(0)?,
        value: r.get(1)?,
        create_revision: r.get::<_, i64>(2)? as Revision,
        mod_revision: r.get::<_, i64>(3)? as Revision,
        lease: r.get(4)?,
    })
}

/// The kv table through one connection (the writer, inside its transaction).
pub(super) struct SqlTable<'a> {
    pub conn: &'a Connection,
    pub path: &'a Path,
}

impl SqlTable<'_> {
    /// Error mapper naming the operation and key (formatted only on error).
    fn err<'s>(
        &'s self,
        context: &'s str,
        key: &'s str,
    ) -> impl Fn(rusqlite::Error) -> StoreError + 's {
        move |e| sql_err(self.path, &format!("{context} {key}"), e)
    }

    /// Persists the store revision (same transaction as the ops).
    pub(super) fn set_revision(&self, rev: Revision) -> Result<(), StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("UPDATE meta SET value = ?1 WHERE name = 'revision'")
            .map_err(self.err("prepare", "revision"))?;
        stmt.execute([rev as i64])
            .map_err(self.err("write", "revision"))?;
        Ok(())
    }
}

impl Table for SqlTable<'_> {
    fn get(&mut self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        get(self.conn, self.path, key)
    }

    fn put(&mut self, kv: &KeyValue) -> Result<Revision, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(PUT_SQL)
            .map_err(self.err("prepare put", &kv.key))?;
        let create: i64 = stmt
            .query_row(
                rusqlite::params![
                    kv.key,
                    kv.value,
                    kv.create_revision as i64,
                    kv.mod_revision as i64,
                    kv.lease
                ],
                |r| r.get(0),
            )
            .map_err(self.err("put", &kv.key))?;
        Ok(create as Revision)
    }

    fn delete(&mut self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(DELETE_SQL)
            .map_err(self.err("prepare delete", key))?;
        stmt.query_row([key], row_kv)
            .optional()
            .map_err(self.err("delete", key))
    }

    fn delete_prefix(&mut self, prefix: &str) -> Result<Vec<KeyValue>, StoreError> {
        let end = prefix_end(prefix);
        let sql = if end.is_some() {
            DELETE_RANGE_SQL
        } else {
            DELETE_FROM_SQL
        };
        let mut stmt = self
            .conn
            .prepare_cached(sql)
            .map_err(self.err("prepare delete prefix", prefix))?;
        let rows = match &end {
            Some(end) => stmt.query_map([prefix, end.as_str()], row_kv),
            None => stmt.query_map([prefix], row_kv),
        }
        .map_err(self.err("delete prefix", prefix))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(self.err("delete prefix", prefix))
    }

    fn keys_with_lease(&mut self, lease: LeaseId) -> Result<Vec<String>, StoreError> {
        let ctx = format!("keys of lease {lease}");
        let mut stmt = self
            .conn
            .prepare_cached("SELECT key FROM kv WHERE lease = ?1")
            .map_err(self.err(&ctx, ""))?;
        let rows = stmt
            .query_map([lease], |r| r.get::<_, String>(0))
            .map_err(self.err(&ctx, ""))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(self.err(&ctx, ""))
    }
}

/// One key, through any connection.
pub(super) fn get(
    conn: &Connection,
    path: &Path,
    key: &str,
) -> Result<Option<KeyValue>, StoreError> {
    let mut stmt = conn
        .prepare_cached(GET_SQL)
        .map_err(|e| sql_err(path, &format!("prepare get {key}"), e))?;
    stmt.query_row([key], row_kv)
        .optional()
        .map_err(|e| sql_err(path, &format!("get {key}"), e))
}

/// Keys under `prefix`, sorted (one statement: a consistent read; the caller holds the writer lock,
/// so the writer's revision is the snapshot's).
pub(super) fn range(
    conn: &Connection,
    path: &Path,
    prefix: &str,
) -> Result<Vec<KeyValue>, StoreError> {
    let ctx = format!("range {prefix}");
    let err = |e| sql_err(path, &ctx, e);
    let end = prefix_end(prefix);
    let sql = if end.is_some() {
        RANGE_SQL
    } else {
        RANGE_FROM_SQL
    };
    let mut stmt = conn.prepare_cached(sql).map_err(err)?;
    let rows = match &end {
        Some(end) => stmt.query_map([prefix, end.as_str()], row_kv),
        None => stmt.query_map([prefix], row_kv),
    }
    .map_err(err)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(err)
}
