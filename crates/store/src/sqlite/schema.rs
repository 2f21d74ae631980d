//! Opening the embedded store: data-directory lock, connection pragmas (WAL, exclusive locking,
//! synchronous level), schema creation, recognition of foreign or damaged files, and loading the
//! persisted revision and leases.

use std::fs::File;
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension};

use crate::error::StoreError;
use crate::types::{LeaseId, Revision, SyncMode};

/// `PRAGMA application_id` of a contiv store ("Cntv").
const APPLICATION_ID: i64 = 0x436e_7476;
/// `PRAGMA user_version` of the current schema.
const SCHEMA_VERSION: i64 = 1;
/// Safety net: the writer checkpoints itself if the background checkpoints fall this far behind.
const WAL_AUTOCHECKPOINT_PAGES: i64 = 4000;

const SCHEMA: &str = "
CREATE TABLE meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE kv (
    key TEXT PRIMARY KEY,
    value BLOB NOT NULL,
    create_rev INTEGER NOT NULL,
    mod_rev INTEGER NOT NULL,
    lease INTEGER
) WITHOUT ROWID;
CREATE INDEX kv_lease ON kv(lease) WHERE lease IS NOT NULL;
CREATE TABLE leases (id INTEGER PRIMARY KEY, ttl_ms INTEGER NOT NULL);
INSERT INTO meta(name, value) VALUES ('revision', 0), ('next_lease', 1);
";

/// Maps a SQLite error to a `StoreError` naming the file and what was being done.
pub(super) fn sql_err(path: &Path, context: &str, e: rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) | Some(ErrorCode::DatabaseCorrupt) => StoreError::Corrupt {
            path: path.to_path_buf(),
            reason: format!("{context}: {e}"),
        },
        _ => StoreError::Backend {
            path: path.to_path_buf(),
            context: context.to_string(),
            message: e.to_string(),
        },
    }
}

fn corrupt(path: &Path, reason: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Takes the exclusive lock of the data directory (`dir/LOCK`), held as long as the file is open.
pub(super) fn lock_dir(dir: &Path) -> Result<File, StoreError> {
    let path = dir.join("LOCK");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| StoreError::Io {
            path: path.clone(),
            source,
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Locked {
            path: dir.to_path_buf(),
        }),
        Err(std::fs::TryLockError::Error(source)) => Err(StoreError::Io { path, source }),
    }
}

/// What the store file holds besides keys.
pub(super) struct Loaded {
    pub revision: Revision,
    pub next_lease: LeaseId,
    pub leases: Vec<(LeaseId, Duration)>,
}

/// Opens the store's single connection. `locking_mode=EXCLUSIVE` is set before the first access, so
/// SQLite keeps the WAL index in heap memory (no `-shm` file, no file lock per transaction): the
/// process owns the file (the directory lock already guarantees it).
fn connect(path: &Path, sync: SyncMode) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| sql_err(path, "open", e))?;
    set_pragma_checked(
        &conn,
        path,
        "locking_mode",
        "EXCLUSIVE",
        "cannot lock the database exclusively",
    )?;
    let level = match sync {
        SyncMode::Normal => "NORMAL",
        SyncMode::Full => "FULL",
    };
    conn.pragma_update(None, "synchronous", level)
        .map_err(|e| sql_err(path, "set synchronous", e))?;
    conn.set_prepared_statement_cache_capacity(32);
    Ok(conn)
}

/// Sets a pragma that SQLite may silently refuse, and checks it took: `what` names the failure.
fn set_pragma_checked(
    conn: &Connection,
    path: &Path,
    name: &str,
    value: &str,
    what: &str,
) -> Result<(), StoreError> {
    let got: String = conn
        .pragma_update_and_check(None, name, value, |r| r.get(0))
        .map_err(|e| sql_err(path, &format!("set {name}"), e))?;
    if !got.eq_ignore_ascii_case(value) {
        return Err(corrupt(
            path,
            format!("{what} ({} {got})", name.replace('_', " ")),
        ));
    }
    Ok(())
}

fn pragma_i64(conn: &Connection, path: &Path, name: &str) -> Result<i64, StoreError> {
    conn.pragma_query_value(None, name, |r| r.get::<_, i64>(0))
        .map_err(|e| sql_err(path, &format!("read {name}"), e))
}

/// Write-ahead logging, checked (SQLite keeps the old journal mode when it cannot switch).
fn enable_wal(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    set_pragma_checked(
        conn,
        path,
        "journal_mode",
        "WAL",
        "cannot enable write-ahead logging",
    )
}

/// Creates the schema in an empty file, or checks that the file is a contiv store of a known version.
fn init_or_check(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let app_id = pragma_i64(conn, path, "application_id")?;
    let version = pragma_i64(conn, path, "user_version")?;
    let objects: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
        .map_err(|e| sql_err(path, "read schema", e))?;
    if app_id == 0 && objects == 0 {
        enable_wal(conn, path)?;
        let tx = conn
            .transaction()
            .map_err(|e| sql_err(path, "begin schema", e))?;
        tx.execute_batch(SCHEMA)
            .map_err(|e| sql_err(path, "create schema", e))?;
        tx.pragma_update(None, "application_id", APPLICATION_ID)
            .map_err(|e| sql_err(path, "set application_id", e))?;
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)
            .map_err(|e| sql_err(path, "set user_version", e))?;
        tx.commit().map_err(|e| sql_err(path, "commit schema", e))?;
        return Ok(());
    }
    if app_id != APPLICATION_ID {
        return Err(corrupt(
            path,
            format!("foreign sqlite database (application_id {app_id:#x})"),
        ));
    }
    if version != SCHEMA_VERSION {
        return Err(corrupt(
            path,
            format!("unsupported schema version {version} (this build reads {SCHEMA_VERSION})"),
        ));
    }
    enable_wal(conn, path)?;
    let check: String = conn
        .query_row("PRAGMA quick_check(1)", [], |r| r.get(0))
        .map_err(|e| sql_err(path, "integrity check", e))?;
    if check != "ok" {
        return Err(corrupt(path, format!("integrity check failed: {check}")));
    }
    Ok(())
}

fn meta(conn: &Connection, path: &Path, name: &str) -> Result<i64, StoreError> {
    conn.query_row("SELECT value FROM meta WHERE name = ?1", [name], |r| {
        r.get::<_, i64>(0)
    })
    .optional()
    .map_err(|e| sql_err(path, &format!("read meta {name}"), e))?
    .ok_or_else(|| corrupt(path, format!("meta row {name} missing")))
}

/// The store revision: `meta.revision` is only written by transactions that delete keys, because a
/// put-only transaction leaves its revision in the `mod_rev` of the rows it wrote (saves one page
/// write per commit). So the revision is the larger of the two (see `Inner::commit`).
fn load_revision(conn: &Connection, path: &Path) -> Result<i64, StoreError> {
    let stored = meta(conn, path, "revision")?;
    let max_mod: Option<i64> = conn
        .query_row("SELECT max(mod_rev) FROM kv", [], |r| r.get(0))
        .map_err(|e| sql_err(path, "read max mod_rev", e))?;
    Ok(stored.max(max_mod.unwrap_or(0)))
}

fn load(conn: &Connection, path: &Path) -> Result<Loaded, StoreError> {
    let revision = load_revision(conn, path)?;
    let next_lease = meta(conn, path, "next_lease")?;
    if revision < 0 || next_lease < 1 {
        return Err(corrupt(
            path,
            format!("invalid meta values (revision {revision}, next_lease {next_lease})"),
        ));
    }
    let mut stmt = conn
        .prepare("SELECT id, ttl_ms FROM leases")
        .map_err(|e| sql_err(path, "read leases", e))?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))
        .map_err(|e| sql_err(path, "read leases", e))?;
    let mut leases = Vec::new();
    for row in rows {
        let (id, ttl_ms) = row.map_err(|e| sql_err(path, "read leases", e))?;
        leases.push((id, Duration::from_millis(ttl_ms.max(1) as u64)));
    }
    Ok(Loaded {
        revision: revision as Revision,
        next_lease,
        leases,
    })
}

/// Opens the connection: creates or checks the schema, tunes it, and loads the metadata.
pub(super) fn open_writer(path: &Path, sync: SyncMode) -> Result<(Connection, Loaded), StoreError> {
    let mut conn = connect(path, sync)?;
    init_or_check(&mut conn, path)?;
    conn.pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES)
        .map_err(|e| sql_err(path, "set wal_autocheckpoint", e))?;
    conn.pragma_update(None, "cache_size", -32_000)
        .map_err(|e| sql_err(path, "set cache_size", e))?;
    conn.pragma_update(None, "temp_store", "MEMORY")
        .map_err(|e| sql_err(path, "set temp_store", e))?;
    let loaded = load(&conn, path)?;
    Ok((conn, loaded))
}
