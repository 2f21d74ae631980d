//! Contiv's cross-object rules, one module per object family. Each object type says how its
//! create, update and delete are planned against the current state (checks + allocations as
//! change-set writes), how its links are derived, and what its inspect `Oper` shows.
//!
//! Links (`links` / `link-sets`) are not stored: they are derived from current state whenever an
//! object is served, so they can never go stale.

mod endpoint_group;
mod global;
mod infra;
pub(crate) mod network;
mod policy;
mod profiles;
pub(crate) mod service;
mod tenant;

use contiv_model::{Link, ObjectKind};

use crate::changeset::ChangeSet;
use crate::error::{ApiError, ApiResult};
use crate::state::{State, Tabled};

pub use network::{network_oper_of, NETWORK_SUBNET_CHANGE};

/// How one object type lives in netmaster.
pub trait Managed: Tabled {
    /// Checks on the request body as sent, before schema defaults fill it (default: none).
    fn check_sent(_obj: &Self, _body: &[u8]) -> ApiResult<()> {
        Ok(())
    }
    /// Checks and allocations for a new object (already schema-validated, links cleared).
    fn plan_create(st: &State, new: &Self, cs: &mut ChangeSet) -> ApiResult<()>;
    /// Checks for replacing `old` by `new` (they differ). Default: refused, like Contiv's
    /// immutable objects.
    fn plan_update(_st: &State, _old: &Self, _new: &Self, _cs: &mut ChangeSet) -> ApiResult<()> {
        Err(ApiError::conflict(format!(
            "Cant change {} parameters after its created",
            Self::KIND.type_name()
        )))
    }
    /// Fills what an update left out from the stored object (default: nothing; an update
    /// replaces the whole object, as in Contiv).
    fn merge_update(_old: &Self, _new: &mut Self) {}
    /// Checks (dependants) and releases for a delete.
    fn plan_delete(st: &State, old: &Self, cs: &mut ChangeSet) -> ApiResult<()>;
    /// Empties `links`/`link-sets` (clients may send them; they are derived, never stored).
    fn clear_links(obj: &mut Self);
    /// The object as served: with `links`/`link-sets` derived from current state.
    fn with_links(st: &State, obj: &Self) -> Self;
    /// Inspect's `Oper`.
    fn oper(st: &State, obj: &Self) -> Self::Oper;
}

/// A link to an object of `kind`.
pub(crate) fn link(kind: ObjectKind, key: &str) -> Link {
    Link::new(kind, key)
}

/// `tenant` must exist: Contiv's "Tenant not found" (or "Tenant <name> not found" where the
/// original says so: pass `named`).
pub(crate) fn require_tenant(st: &State, tenant: &str, named: bool) -> ApiResult<()> {
    if tenant.is_empty() {
        return Err(ApiError::bad_request("Invalid tenant name"));
    }
    if st.tenants.contains_key(tenant) {
        return Ok(());
    }
    Err(ApiError::not_found(if named {
        format!("Tenant {tenant} not found")
    } else {
        "Tenant not found".to_owned()
    }))
}

/// `tenant:name`
pub(crate) fn scoped(tenant: &str, name: &str) -> String {
    format!("{tenant}:{name}")
}

/// Map of links for a set of keys of one kind.
pub(crate) fn link_set<'a>(
    kind: ObjectKind,
    keys: impl IntoIterator<Item = &'a String>,
) -> std::collections::BTreeMap<String, Link> {
    keys.into_iter()
        .map(|k| (k.clone(), link(kind, k)))
        .collect()
}

pub(crate) fn count_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
