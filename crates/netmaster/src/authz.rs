//! Authorizations: which role an LDAP group gives its members, as in Contiv's auth_proxy (an
//! authorization binds a principal, an LDAP group DN, to a role and a tenant). They live in the
//! store (`/contiv/auth/authz/<id>`), so every netmaster sharing it decides alike, and admins
//! manage them through `/api/v1/auth_proxy/authorizations/` and `netctl authorization`.
//!
//! A directory user gets one role: the highest its groups are authorised for (admin >
//! tenant-admin > ops > read-only), scoped to the union of the tenants of the authorizations
//! granting that role (one without a tenant: every tenant). Local users carry their own role and
//! need no authorization.

use std::collections::BTreeSet;
use std::sync::Arc;

use contiv_api::keys;
use contiv_store::{StateStore, Txn};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

use crate::ldap::{looks_like_dn, normalize_dn};
use crate::users::{Role, UserError};

/// One authorization, in Contiv's field names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Authorization {
    #[serde(rename = "authzUUID")]
    pub id: String,
    /// The LDAP group's DN as the admin wrote it.
    pub principal_name: String,
    /// Always false: local users carry their role themselves.
    #[serde(default)]
    pub local: bool,
    pub role: Role,
    /// The tenant the role applies to; absent: every tenant (not for tenant-admin).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_name: Option<String>,
}

/// What an admin asks for.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewAuthorization {
    #[serde(default)]
    pub principal_name: String,
    #[serde(default)]
    pub local: bool,
    pub role: Option<Role>,
    #[serde(default)]
    pub tenant_name: Option<String>,
}

fn rank(r: Role) -> u8 {
    match r {
        Role::Admin => 3,
        Role::TenantAdmin => 2,
        Role::Ops => 1,
        Role::ReadOnly => 0,
    }
}

/// The role and tenants `groups` (normalised DNs) give, if any authorization names one of them.
pub fn role_of(authz: &[Authorization], groups: &BTreeSet<String>) -> Option<(Role, Vec<String>)> {
    let mine: Vec<&Authorization> = authz
        .iter()
        .filter(|a| groups.contains(&normalize_dn(&a.principal_name)))
        .collect();
    let role = mine.iter().map(|a| a.role).max_by_key(|r| rank(*r))?;
    if role == Role::Admin {
        return Some((role, vec![]));
    }
    let granting: Vec<&&Authorization> = mine.iter().filter(|a| a.role == role).collect();
    if granting.iter().any(|a| a.tenant_name.is_none()) {
        return Some((role, vec![]));
    }
    let tenants: BTreeSet<String> = granting
        .iter()
        .filter_map(|a| a.tenant_name.clone())
        .collect();
    Some((role, tenants.into_iter().collect()))
}

/// The authorizations of one store.
pub struct Authorizations {
    store: Arc<dyn StateStore>,
    /// The leader fence its writes carry, as user and object writes do.
    fence: crate::users::FenceCell,
}

impl Authorizations {
    pub fn new(store: Arc<dyn StateStore>, fence: crate::users::FenceCell) -> Authorizations {
        Authorizations { store, fence }
    }

    pub async fn list(&self) -> Result<Vec<Authorization>, UserError> {
        let snap = self.store.range(keys::AUTHZ_PREFIX).await?;
        Ok(snap
            .kvs
            .iter()
            .filter_map(|kv| serde_json::from_slice(&kv.value).ok())
            .collect())
    }

    pub async fn get(&self, id: &str) -> Result<Authorization, UserError> {
        self.store
            .get(&keys::authz(id))
            .await?
            .and_then(|kv| serde_json::from_slice(&kv.value).ok())
            .ok_or_else(|| UserError::NotFound(format!("authorization {id:?} not found")))
    }

    /// Checks and stores a new authorization; an identical one (same group, role and tenant) is
    /// a conflict.
    pub async fn create(&self, req: NewAuthorization) -> Result<Authorization, UserError> {
        let invalid = |m: String| Err(UserError::Invalid(m));
        if req.local {
            return invalid(
                "local users carry their own role: use `netctl role USER ROLE` \
                 (PATCH /api/v1/auth_proxy/local_users/USER/)"
                    .into(),
            );
        }
        let principal = req.principal_name.trim().to_owned();
        if !looks_like_dn(&principal) || principal.len() > 1024 {
            return invalid(format!(
                "principalName {principal:?}: the DN of an LDAP group, e.g. cn=ops,ou=groups,dc=example,dc=com"
            ));
        }
        let Some(role) = req.role else {
            return invalid("role: admin, tenant-admin, ops or read-only".into());
        };
        let tenant = req.tenant_name.filter(|t| !t.is_empty());
        match (role, &tenant) {
            (Role::TenantAdmin, None) => {
                return invalid("a tenant-admin authorization needs tenantName".into())
            }
            (Role::Admin, Some(_)) => {
                return invalid("admin is cluster-wide: give no tenantName".into())
            }
            _ => {}
        }
        if let Some(t) = &tenant {
            let ok = t.len() <= 64
                && t.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
            if !ok {
                return invalid(format!("tenantName {t:?}: letters, digits, - _ ."));
            }
        }
        let wanted = normalize_dn(&principal);
        if self.list().await?.iter().any(|a| {
            normalize_dn(&a.principal_name) == wanted && a.role == role && a.tenant_name == tenant
        }) {
            return Err(UserError::Conflict(format!(
                "{principal} already has this role for {}",
                tenant.as_deref().unwrap_or("every tenant")
            )));
        }
        let mut raw = [0u8; 16];
        SystemRandom::new()
            .fill(&mut raw)
            .map_err(|_| UserError::Internal("no randomness".into()))?;
        let id: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        let a = Authorization {
            id: id.clone(),
            principal_name: principal,
            local: false,
            role,
            tenant_name: tenant,
        };
        let value = serde_json::to_vec(&a).map_err(|e| UserError::Internal(e.to_string()))?;
        let txn = Txn::new()
            .when_absent(keys::authz(&id))
            .put(keys::authz(&id), value);
        if !crate::users::commit_fenced(&*self.store, &self.fence, txn)
            .await?
            .is_committed()
        {
            return Err(UserError::Conflict("authorization id taken, retry".into()));
        }
        tracing::info!(authz = %id, group = %a.principal_name, role = ?a.role,
            tenant = ?a.tenant_name, "authorization created");
        Ok(a)
    }

    pub async fn delete(&self, id: &str) -> Result<(), UserError> {
        self.get(id).await?;
        crate::users::commit_fenced(
            &*self.store,
            &self.fence,
            Txn::new().delete(keys::authz(id)),
        )
        .await?;
        tracing::info!(authz = %id, "authorization removed");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(group: &str, role: Role, tenant: Option<&str>) -> Authorization {
        Authorization {
            id: String::new(),
            principal_name: group.into(),
            local: false,
            role,
            tenant_name: tenant.map(Into::into),
        }
    }

    #[test]
    fn the_highest_role_wins_with_the_union_of_its_tenants() {
        let all = vec![
            a("CN=Devs,DC=x", Role::TenantAdmin, Some("t1")),
            a("cn=leads,dc=x", Role::TenantAdmin, Some("t2")),
            a("cn=everyone,dc=x", Role::ReadOnly, None),
            a("cn=root,dc=x", Role::Admin, None),
        ];
        let groups = |g: &[&str]| g.iter().map(|s| normalize_dn(s)).collect::<BTreeSet<_>>();
        assert_eq!(
            role_of(
                &all,
                &groups(&["cn=devs,dc=x", "cn=leads,dc=x", "cn=everyone,dc=x"])
            ),
            Some((Role::TenantAdmin, vec!["t1".into(), "t2".into()]))
        );
        assert_eq!(
            role_of(&all, &groups(&["cn=everyone,dc=x"])),
            Some((Role::ReadOnly, vec![]))
        );
        assert_eq!(
            role_of(&all, &groups(&["cn=root,dc=x", "cn=devs,dc=x"])),
            Some((Role::Admin, vec![]))
        );
        assert_eq!(role_of(&all, &groups(&["cn=other,dc=x"])), None);
    }
}
