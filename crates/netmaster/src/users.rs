//! Local users, roles and tokens: who may call the REST API when netmaster runs with `--auth`.
//!
//! Users live in the store (`/contiv/auth/user/<name>`, an argon2id hash, a role and its tenants),
//! beside the objects but outside the object state: agents never see them. Tokens are compact JWTs
//! signed with Ed25519 (ring); the signing keys live in the store too (`/contiv/auth/key/<kid>`),
//! so every netmaster sharing the store verifies every token. Rotation adds a key and makes it
//! current; older keys keep verifying until the tokens they signed expired, then a later rotation
//! drops them. Which call a principal may make is decided in `http::auth::authorize_user`.
//!
//! With `--ldap-url`, a name that is not a local user is looked up in the directory
//! (`crate::ldap`) and gets the role its groups are authorised for (`crate::authz`). A local user
//! always wins over a directory account of the same name: its own password decides and the
//! directory is not asked.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use contiv_api::keys;
use contiv_store::{StateStore, StoreError, Txn};
use parking_lot::RwLock;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};
use serde::{Deserialize, Serialize};

/// What a user may do (see issue 13): `admin` everything, `tenant-admin` everything inside its
/// tenants, `ops` reads and endpoint groups' policy attachment, `read-only` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Admin,
    TenantAdmin,
    Ops,
    ReadOnly,
}

impl std::str::FromStr for Role {
    type Err = UserError;
    fn from_str(s: &str) -> Result<Role, UserError> {
        serde_json::from_value(serde_json::Value::String(s.into())).map_err(|_| {
            UserError::Invalid(format!(
                "unknown role {s:?} (admin, tenant-admin, ops, read-only)"
            ))
        })
    }
}

/// A user as stored. `tenants` empty: every tenant (not allowed for `tenant-admin`).
#[derive(Clone, Serialize, Deserialize)]
pub struct User {
    pub name: String,
    hash: String,
    pub role: Role,
    #[serde(default)]
    pub tenants: Vec<String>,
    /// Bumped by every role change; a token carries the one it was issued at, so the guard
    /// refuses tokens issued before a demotion.
    #[serde(default)]
    pub generation: u64,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("name", &self.name)
            .field("role", &self.role)
            .field("tenants", &self.tenants)
            .finish_non_exhaustive()
    }
}

/// What a token says about its bearer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub username: String,
    pub role: Role,
    #[serde(default)]
    pub tenants: Vec<String>,
    pub iat: u64,
    pub exp: u64,
    pub kid: String,
    /// The local user's generation at issuance (`None`: a directory user, whose role lives in
    /// the directory and is re-read at refresh).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<u64>,
}

impl Claims {
    /// Whether the bearer sees tenant `t` (admins and unscoped users see every tenant).
    pub fn sees(&self, t: &str) -> bool {
        self.role == Role::Admin || self.tenants.is_empty() || self.tenants.iter().any(|x| x == t)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// Unknown user or wrong password: one message for both.
    #[error("Invalid username/password")]
    BadCredentials,
    #[error("invalid token: {0}")]
    BadToken(String),
    #[error("{0}")]
    Invalid(String),
    #[error("user {0:?} not found")]
    NoUser(String),
    #[error("user {0:?} exists")]
    Exists(String),
    /// A directory login refused (unknown user, wrong password, disabled account, or an LDAP
    /// error): one message, the reason is in netmaster's log.
    #[error("Invalid username/password, or the account is disabled")]
    LdapRefused,
    /// Authenticated by the directory, but no authorization names any of its groups.
    #[error("user {0:?} has no role: none of its LDAP groups is authorised (an admin adds one with `netctl authorization create`)")]
    NoRole(String),
    /// The directory cannot be reached.
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("state store error: {0}")]
    Store(#[from] StoreError),
    /// A user or key write on a netmaster that does not lead (or no longer does).
    #[error("this netmaster is not the leader: nothing was written, retry")]
    NotLeader,
    #[error("{0}")]
    Internal(String),
}

#[derive(Serialize, Deserialize)]
struct StoredKey {
    kid: String,
    /// PKCS#8 document, base64url.
    pkcs8: String,
    created: u64,
    /// When a newer key replaced it (seconds since the epoch).
    #[serde(default)]
    retired: Option<u64>,
}

struct SigningKey {
    pair: Option<Ed25519KeyPair>,
    public: Vec<u8>,
    created: u64,
}

/// Users and tokens of one netmaster.
pub struct Users {
    store: Arc<dyn StateStore>,
    ttl: Duration,
    keys: RwLock<BTreeMap<String, SigningKey>>,
    current: RwLock<String>,
    /// Hash checked when the user does not exist, so both refusals take the same time.
    decoy: String,
    rng: SystemRandom,
    /// The LDAP/AD directory (`--ldap-url`), asked for names that are not local users.
    ldap: Option<crate::ldap::Directory>,
    /// Which role LDAP groups give.
    pub authz: crate::authz::Authorizations,
    /// Each local user's generation as last read from the store (`None`: no such user), and when:
    /// the guard compares every token with it without a store read per call.
    fence: FenceCell,
    generations: parking_lot::Mutex<std::collections::HashMap<String, (Option<Current>, Instant)>>,
}

/// The leader fence every API write of users and keys carries (the compare of
/// `engine::leader::Leadership::fence`), as object writes do: `Err` when not leading.
pub type Fence = Box<dyn Fn() -> Result<Option<contiv_store::Compare>, ()> + Send + Sync>;

/// The fence, set once serving, shared by the users and the authorizations.
pub(crate) type FenceCell = Arc<std::sync::OnceLock<Fence>>;

/// Commits `txn` behind the leader fence, if one is set; compare indexes in the outcome are
/// those of `txn`'s own compares.
pub(crate) async fn commit_fenced(
    store: &dyn StateStore,
    fence: &FenceCell,
    mut txn: Txn,
) -> Result<contiv_store::TxnOutcome, UserError> {
    use contiv_store::TxnOutcome;
    let fence = match fence.get() {
        Some(f) => f().map_err(|()| UserError::NotLeader)?,
        None => None,
    };
    let fenced = fence.is_some();
    if let Some(f) = fence {
        txn.compares.insert(0, f);
    }
    Ok(match store.commit(txn).await? {
        TxnOutcome::CompareFailed { index: 0 } if fenced => return Err(UserError::NotLeader),
        TxnOutcome::CompareFailed { index } => TxnOutcome::CompareFailed {
            index: index - usize::from(fenced),
        },
        out => out,
    })
}

/// What the guard compares a token with: a user removed and made again starts at generation 0
/// again, so its role and tenants are compared too.
type Current = (u64, Role, Vec<String>);

/// How long a cached generation is trusted: another netmaster's demotion takes effect here
/// within this time (this netmaster's own at once).
const GENERATION_TTL: Duration = Duration::from_secs(1);

/// How the first user comes to be.
#[derive(Debug, Clone)]
pub struct Bootstrap {
    /// `--admin-password-file`; otherwise a password is generated into `state_dir`.
    pub password_file: Option<PathBuf>,
    pub state_dir: PathBuf,
}

/// File the generated admin password is written to (0600) inside the state directory.
pub const GENERATED_PASSWORD: &str = "admin-password";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn hash_password(pw: &str) -> Result<String, UserError> {
    let mut salt = [0u8; 16];
    SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| UserError::Internal("no randomness".into()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| UserError::Internal(e.to_string()))?;
    Argon2::default()
        .hash_password(pw.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| UserError::Internal(format!("hashing: {e}")))
}

fn password_matches(pw: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|h| Argon2::default().verify_password(pw.as_bytes(), &h).is_ok())
        .unwrap_or(false)
}

fn check_password(pw: &str) -> Result<(), UserError> {
    if pw.len() < 8 {
        return Err(UserError::Invalid(
            "a password has at least 8 characters".into(),
        ));
    }
    Ok(())
}

fn check_name(name: &str) -> Result<(), UserError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c));
    if !ok {
        return Err(UserError::Invalid(format!(
            "user name {name:?}: 1-64 of letters, digits, - _ . @"
        )));
    }
    Ok(())
}

fn check_role(role: Role, tenants: &[String]) -> Result<(), UserError> {
    if role == Role::TenantAdmin && tenants.is_empty() {
        return Err(UserError::Invalid(
            "a tenant-admin needs at least one tenant".into(),
        ));
    }
    Ok(())
}

impl Users {
    /// Loads the signing keys (making the first one), and creates `admin` if no user exists.
    pub async fn start(
        store: Arc<dyn StateStore>,
        ttl: Duration,
        bootstrap: &Bootstrap,
        ldap: Option<crate::ldap::Directory>,
    ) -> Result<Arc<Users>, UserError> {
        let decoy = tokio::task::spawn_blocking(|| hash_password("decoy password, never valid"))
            .await
            .map_err(|e| UserError::Internal(e.to_string()))??;
        let fence = FenceCell::default();
        let users = Arc::new(Users {
            authz: crate::authz::Authorizations::new(store.clone(), fence.clone()),
            ldap,
            store,
            ttl,
            keys: RwLock::default(),
            current: RwLock::default(),
            decoy,
            rng: SystemRandom::new(),
            generations: Default::default(),
            fence,
        });
        users.load_keys().await?;
        if users.keys.read().is_empty() {
            users.rotate().await?;
        }
        users.bootstrap(bootstrap).await?;
        Ok(users)
    }

    /// From now on every write carries `fence` (writes at start are unfenced: each is guarded by
    /// "absent", so two netmasters starting at once cannot clash).
    pub fn set_fence(&self, fence: Fence) {
        let _ = self.fence.set(fence);
    }

    async fn commit(&self, txn: Txn) -> Result<contiv_store::TxnOutcome, UserError> {
        commit_fenced(&*self.store, &self.fence, txn).await
    }

    async fn bootstrap(&self, b: &Bootstrap) -> Result<(), UserError> {
        if !self.store.range(keys::USER_PREFIX).await?.kvs.is_empty() {
            return Ok(());
        }
        let password = match &b.password_file {
            Some(p) => std::fs::read_to_string(p)
                .map_err(|e| UserError::Invalid(format!("reading {}: {e}", p.display())))?
                .trim_end_matches(['\r', '\n'])
                .to_owned(),
            None => self.generated_password(&b.state_dir)?,
        };
        match self
            .create(User::new("admin", &password, Role::Admin, vec![])?)
            .await
        {
            Ok(()) | Err(UserError::Exists(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn generated_password(&self, dir: &Path) -> Result<String, UserError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut raw = [0u8; 18];
        self.rng
            .fill(&mut raw)
            .map_err(|_| UserError::Internal("no randomness".into()))?;
        let pw = B64.encode(raw);
        let path = dir.join(GENERATED_PASSWORD);
        let io = |e: std::io::Error| UserError::Internal(format!("{}: {e}", path.display()));
        std::fs::create_dir_all(dir).map_err(io)?;
        let _ = std::fs::remove_file(&path);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(io)?;
        writeln!(f, "{pw}").map_err(io)?;
        tracing::warn!(
            path = %path.display(),
            "created user admin with a generated password (read it from the file, then change it \
             with `netctl user passwd admin`)"
        );
        Ok(pw)
    }

    async fn load_keys(&self) -> Result<(), UserError> {
        let snap = self.store.range(keys::SIGNING_KEY_PREFIX).await?;
        let mut map = self.keys.write();
        let mut newest: Option<(u64, String)> = None;
        for kv in snap.kvs {
            let Ok(k) = serde_json::from_slice::<StoredKey>(&kv.value) else {
                tracing::warn!(key = %kv.key, "ignoring an undecodable signing key");
                continue;
            };
            let Some(pair) = B64
                .decode(&k.pkcs8)
                .ok()
                .and_then(|d| Ed25519KeyPair::from_pkcs8(&d).ok())
            else {
                continue;
            };
            if newest
                .as_ref()
                .is_none_or(|(c, id)| (k.created, &k.kid) > (*c, id))
            {
                newest = Some((k.created, k.kid.clone()));
            }
            map.insert(
                k.kid.clone(),
                SigningKey {
                    public: pair.public_key().as_ref().to_vec(),
                    pair: Some(pair),
                    created: k.created,
                },
            );
        }
        if let Some((_, kid)) = newest {
            *self.current.write() = kid;
        }
        Ok(())
    }

    /// Adds a new signing key and makes it current; keys retired longer than a token lives are
    /// removed. Returns the new key id.
    pub async fn rotate(&self) -> Result<String, UserError> {
        let doc = Ed25519KeyPair::generate_pkcs8(&self.rng)
            .map_err(|_| UserError::Internal("generating a signing key".into()))?;
        let mut raw = [0u8; 6];
        self.rng
            .fill(&mut raw)
            .map_err(|_| UserError::Internal("no randomness".into()))?;
        let kid = format!("{}-{}", now(), B64.encode(raw));
        let stored = StoredKey {
            kid: kid.clone(),
            pkcs8: B64.encode(doc.as_ref()),
            created: now(),
            retired: None,
        };
        let mut txn = Txn::new().when_absent(keys::signing_key(&kid)).put(
            keys::signing_key(&kid),
            serde_json::to_vec(&stored).map_err(|e| UserError::Internal(e.to_string()))?,
        );
        // A key that signed its last token before `now - ttl` verifies nothing any more.
        let old: Vec<String> = {
            let limit = now().saturating_sub(self.ttl.as_secs() + 60);
            let keys = self.keys.read();
            let current = self.current.read().clone();
            let mut by_age: Vec<_> = keys.iter().collect();
            by_age.sort_by_key(|(_, k)| k.created);
            // The key after each one is when it was retired.
            by_age
                .windows(2)
                .filter(|w| w[1].1.created < limit && *w[0].0 != current)
                .map(|w| w[0].0.clone())
                .collect()
        };
        for kid in &old {
            txn = txn.delete(keys::signing_key(kid));
        }
        if let contiv_store::TxnOutcome::CompareFailed { .. } = self.commit(txn).await? {
            return Err(UserError::Conflict(
                "a signing key of that id exists, retry".into(),
            ));
        }
        self.load_keys().await?;
        let mut keys = self.keys.write();
        for kid in &old {
            keys.remove(kid);
        }
        *self.current.write() = kid.clone();
        tracing::info!(%kid, dropped = old.len(), "token signing key rotated");
        Ok(kid)
    }

    /// Checks a user's password; the same error, after the same work, for an unknown user.
    pub async fn login(&self, name: &str, password: &str) -> Result<String, UserError> {
        let user = self.get(name).await?;
        if let (None, Some(dir)) = (&user, &self.ldap) {
            let account = dir.login(name, password).await?;
            return self.issue_directory(name, &account).await;
        }
        let hash = user.as_ref().map_or(self.decoy.clone(), |u| u.hash.clone());
        let pw = password.to_owned();
        let ok = tokio::task::spawn_blocking(move || password_matches(&pw, &hash))
            .await
            .map_err(|e| UserError::Internal(e.to_string()))?;
        match user {
            Some(u) if ok => self.issue(&u),
            _ => Err(UserError::BadCredentials),
        }
    }

    /// A fresh token for the holder of a valid one, with the user's current role and tenants.
    pub async fn refresh(&self, claims: &Claims) -> Result<String, UserError> {
        match (self.get(&claims.username).await?, &self.ldap) {
            (Some(u), _) => self.issue(&u),
            // A directory user: still there, not disabled, and its groups still give a role.
            (None, Some(dir)) => {
                let account = dir.lookup(&claims.username).await.map_err(|e| match e {
                    UserError::LdapRefused => {
                        UserError::BadToken("the directory no longer accepts this user".into())
                    }
                    e => e,
                })?;
                self.issue_directory(&claims.username, &account).await
            }
            (None, None) => Err(UserError::BadToken("the user no longer exists".into())),
        }
    }

    /// A token for a directory account, with the role its groups are authorised for.
    async fn issue_directory(
        &self,
        name: &str,
        account: &crate::ldap::Account,
    ) -> Result<String, UserError> {
        let authz = self.authz.list().await?;
        let Some((role, tenants)) = crate::authz::role_of(&authz, &account.groups) else {
            tracing::info!(user = %name, dn = %account.dn, groups = ?account.groups,
                "LDAP login refused: no authorization names any of the user's groups");
            return Err(UserError::NoRole(name.into()));
        };
        tracing::info!(user = %name, dn = %account.dn, ?role, ?tenants, "LDAP login");
        self.sign(name, role, tenants, None)
    }

    fn issue(&self, u: &User) -> Result<String, UserError> {
        self.sign(&u.name, u.role, u.tenants.clone(), Some(u.generation))
    }

    fn sign(
        &self,
        name: &str,
        role: Role,
        tenants: Vec<String>,
        generation: Option<u64>,
    ) -> Result<String, UserError> {
        let kid = self.current.read().clone();
        let iat = now();
        let claims = Claims {
            username: name.to_owned(),
            role,
            tenants,
            iat,
            exp: iat + self.ttl.as_secs().max(1),
            kid: kid.clone(),
            generation,
        };
        let header = serde_json::json!({"alg": "EdDSA", "typ": "JWT", "kid": kid});
        let body = serde_json::to_vec(&claims).map_err(|e| UserError::Internal(e.to_string()))?;
        let signing_input = format!("{}.{}", B64.encode(header.to_string()), B64.encode(body));
        let keys = self.keys.read();
        let pair = keys
            .get(&kid)
            .and_then(|k| k.pair.as_ref())
            .ok_or_else(|| UserError::Internal("no signing key".into()))?;
        let sig = pair.sign(signing_input.as_bytes());
        Ok(format!("{signing_input}.{}", B64.encode(sig.as_ref())))
    }

    /// The claims of a token this cluster signed and that has not expired.
    pub async fn verify(&self, token: &str) -> Result<Claims, UserError> {
        let bad = |m: &str| UserError::BadToken(m.into());
        let mut parts = token.split('.');
        let (Some(h), Some(c), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("not a signed token"));
        };
        let header: serde_json::Value = B64
            .decode(h)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| bad("undecodable header"))?;
        if header["alg"] != "EdDSA" {
            return Err(bad("unexpected algorithm"));
        }
        let kid = header["kid"].as_str().unwrap_or_default().to_owned();
        if !self.keys.read().contains_key(&kid) {
            // Another netmaster may have rotated: read the store once.
            self.load_keys().await?;
        }
        let public = self
            .keys
            .read()
            .get(&kid)
            .map(|k| k.public.clone())
            .ok_or_else(|| bad("unknown signing key"))?;
        let sig = B64.decode(s).map_err(|_| bad("undecodable signature"))?;
        UnparsedPublicKey::new(&ED25519, &public)
            .verify(format!("{h}.{c}").as_bytes(), &sig)
            .map_err(|_| bad("bad signature"))?;
        let claims: Claims = B64
            .decode(c)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| bad("undecodable claims"))?;
        if claims.kid != kid {
            return Err(bad("key id mismatch"));
        }
        if claims.exp <= now() {
            return Err(bad("expired"));
        }
        Ok(claims)
    }

    /// Refuses the token of a local user that was removed or whose role changed since the token
    /// was issued (its role and tenants are in the token, so they would otherwise last until it
    /// expires).
    pub async fn still_current(&self, claims: &Claims) -> Result<(), UserError> {
        let Some(issued) = claims.generation else {
            return Ok(());
        };
        let cached = self
            .generations
            .lock()
            .get(&claims.username)
            .filter(|(_, at)| at.elapsed() < GENERATION_TTL)
            .map(|(g, _)| g.clone());
        let now = match cached {
            Some(g) => g,
            None => {
                let g = self
                    .get(&claims.username)
                    .await?
                    .map(|u| (u.generation, u.role, u.tenants));
                self.generations
                    .lock()
                    .insert(claims.username.clone(), (g.clone(), Instant::now()));
                g
            }
        };
        match now {
            None => Err(UserError::BadToken("the user no longer exists".into())),
            Some((g, role, tenants))
                if g != issued || role != claims.role || tenants != claims.tenants =>
            {
                Err(UserError::BadToken(
                    "the user's role changed since this token was issued: log in again".into(),
                ))
            }
            Some(_) => Ok(()),
        }
    }

    fn forget_generation(&self, name: &str) {
        self.generations.lock().remove(name);
    }

    pub async fn get(&self, name: &str) -> Result<Option<User>, UserError> {
        Ok(match self.store.get(&keys::user(name)).await? {
            Some(kv) => serde_json::from_slice(&kv.value).ok(),
            None => None,
        })
    }

    pub async fn list(&self) -> Result<Vec<User>, UserError> {
        let snap = self.store.range(keys::USER_PREFIX).await?;
        Ok(snap
            .kvs
            .iter()
            .filter_map(|kv| serde_json::from_slice(&kv.value).ok())
            .collect())
    }

    /// Creates a user; refuses an existing name.
    pub async fn create(&self, user: User) -> Result<(), UserError> {
        let key = keys::user(&user.name);
        let value = serde_json::to_vec(&user).map_err(|e| UserError::Internal(e.to_string()))?;
        let out = self
            .commit(Txn::new().when_absent(&key).put(&key, value))
            .await?;
        if matches!(out, contiv_store::TxnOutcome::CompareFailed { .. }) {
            return Err(UserError::Exists(user.name));
        }
        self.forget_generation(&user.name);
        tracing::info!(user = %user.name, role = ?user.role, "user created");
        Ok(())
    }

    pub async fn delete(&self, name: &str) -> Result<(), UserError> {
        self.get(name)
            .await?
            .ok_or_else(|| UserError::NoUser(name.into()))?;
        self.commit(Txn::new().delete(keys::user(name))).await?;
        self.forget_generation(name);
        tracing::info!(user = %name, "user removed");
        Ok(())
    }

    /// Changes a user's password or role (the other part kept).
    pub async fn update(
        &self,
        name: &str,
        password: Option<&str>,
        role: Option<(Role, Vec<String>)>,
    ) -> Result<User, UserError> {
        let mut u = self
            .get(name)
            .await?
            .ok_or_else(|| UserError::NoUser(name.into()))?;
        if let Some(pw) = password {
            check_password(pw)?;
            let pw = pw.to_owned();
            u.hash = tokio::task::spawn_blocking(move || hash_password(&pw))
                .await
                .map_err(|e| UserError::Internal(e.to_string()))??;
        }
        if let Some((role, tenants)) = role {
            check_role(role, &tenants)?;
            u.role = role;
            u.tenants = tenants;
            u.generation += 1;
        }
        let value = serde_json::to_vec(&u).map_err(|e| UserError::Internal(e.to_string()))?;
        self.commit(Txn::new().put(keys::user(name), value)).await?;
        self.forget_generation(name);
        Ok(u)
    }
}

impl User {
    /// A new user with `password` hashed (argon2id).
    pub fn new(
        name: &str,
        password: &str,
        role: Role,
        tenants: Vec<String>,
    ) -> Result<User, UserError> {
        check_name(name)?;
        check_password(password)?;
        check_role(role, &tenants)?;
        Ok(User {
            name: name.into(),
            hash: hash_password(password)?,
            role,
            tenants,
            generation: 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_and_verify() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(password_matches("correct horse", &h));
        assert!(!password_matches("wrong horse", &h));
        assert!(!password_matches("x", "not a hash"));
    }

    /// A netmaster that lost (or never had) the lead writes no user, key or authorization.
    #[tokio::test]
    async fn writes_off_the_lead_commit_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let store: Arc<dyn StateStore> = Arc::new(contiv_store::MemoryStore::new());
        let boot = Bootstrap {
            password_file: None,
            state_dir: tmp.path().to_path_buf(),
        };
        let users = Users::start(store.clone(), Duration::from_secs(60), &boot, None)
            .await
            .unwrap();
        // Leading with a fence the leader key no longer has: deposed without knowing yet.
        users.set_fence(Box::new(|| {
            Ok(Some(contiv_store::Compare::ModRevision(
                "/contiv/leader-test".into(),
                7,
            )))
        }));
        let before = store.range("/contiv/auth/").await.unwrap().kvs.len();
        let bob = User::new("bob", "password-of-bob", Role::ReadOnly, vec![]).unwrap();
        assert!(matches!(users.create(bob).await, Err(UserError::NotLeader)));
        assert!(matches!(users.rotate().await, Err(UserError::NotLeader)));
        assert!(matches!(
            users.delete("admin").await,
            Err(UserError::NotLeader)
        ));
        let new = crate::authz::NewAuthorization {
            principal_name: "cn=g,dc=x".into(),
            local: false,
            role: Some(Role::ReadOnly),
            tenant_name: None,
        };
        assert!(matches!(
            users.authz.create(new).await,
            Err(UserError::NotLeader)
        ));
        assert_eq!(
            store.range("/contiv/auth/").await.unwrap().kvs.len(),
            before
        );
    }

    #[test]
    fn roles_parse_and_scope() {
        assert_eq!("tenant-admin".parse::<Role>().unwrap(), Role::TenantAdmin);
        assert!("root".parse::<Role>().is_err());
        assert!(check_role(Role::TenantAdmin, &[]).is_err());
        let c = Claims {
            username: "u".into(),
            role: Role::ReadOnly,
            tenants: vec!["t1".into()],
            iat: 0,
            exp: 0,
            kid: String::new(),
            generation: None,
        };
        assert!(c.sees("t1") && !c.sees("t2"));
    }
}
