//! LDAP / Active Directory accounts for `--auth` (`--ldap-url`): find the user with the service
//! account, refuse a disabled one, bind as the user with the given password, then list every group
//! the user belongs to, nested groups included. Which role those groups give is decided by the
//! authorizations in the store (`crate::authz`), not here.
//!
//! Nested groups: on Active Directory (its root DSE lists capability 1.2.840.113556.1.4.800) one
//! search with the matching rule in chain (`member:1.2.840.113556.1.4.1941:=<user DN>`) returns them
//! all; elsewhere (OpenLDAP) the groups naming the user in `member`/`uniqueMember` are expanded
//! level by level (groups naming those groups, ...) up to [`MAX_DEPTH`] levels, each group once, so
//! a cycle ends; `memberOf` values (AD, OpenLDAP's memberof overlay) are followed too.
//!
//! Disabled accounts: AD's `userAccountControl` bit 0x2 (ACCOUNTDISABLE), an OpenLDAP ppolicy
//! administrative lock (`pwdAccountLockedTime: 000001010000Z`), or an entry matching
//! `--ldap-disabled-filter`. Each is checked before the password is tried.
//!
//! Errors: what the user sees is one message for every refusal (so nothing tells an unknown user
//! from a wrong password or a disabled account); the real reason goes to the log. A server that
//! cannot be reached (connect, TLS, timeout) is [`UserError::Unavailable`] (503), never 500.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ldap3::{ldap_escape, Ldap, LdapConnAsync, LdapConnSettings, LdapError, Scope, SearchEntry};
use parking_lot::RwLock;

use crate::users::UserError;

/// Levels of group-in-group followed on servers without the AD in-chain rule.
pub const MAX_DEPTH: usize = 16;
/// DNs asked about in one group search.
const FILTER_DNS: usize = 50;
/// Default user filter: AD's `sAMAccountName` or OpenLDAP's `uid` (a server that does not know
/// one of the attributes evaluates that half as undefined, so the other decides).
pub const DEFAULT_USER_FILTER: &str = "(|(sAMAccountName={username})(uid={username}))";
/// ppolicy's value for "locked by an administrator until unlocked" (RFC draft behera).
const PERMANENT_LOCK: &str = "000001010000Z";
const AD_CAPABILITY: &str = "1.2.840.113556.1.4.800";
const IN_CHAIN: &str = "1.2.840.113556.1.4.1941";
/// Used when neither `--ldap-ca` is given: Debian's system bundle.
const SYSTEM_CAS: &str = "/etc/ssl/certs/ca-certificates.crt";

/// How to reach and read the directory (netmaster's `--ldap-*` flags).
#[derive(Debug, Clone)]
pub struct LdapConfig {
    /// `ldap://host:port` or `ldaps://host:port`.
    pub url: String,
    /// Upgrade an `ldap://` connection with StartTLS.
    pub starttls: bool,
    /// CA of the server's certificate (PEM); the system's CAs otherwise.
    pub ca: Option<PathBuf>,
    /// Service account used to search (anonymous search without one).
    pub bind_dn: Option<String>,
    pub bind_password_file: Option<PathBuf>,
    pub user_base: String,
    /// With `{username}` where the (escaped) login name goes.
    pub user_filter: String,
    /// Where groups are searched (the user base when absent).
    pub group_base: Option<String>,
    /// An entry matching this filter is a disabled account.
    pub disabled_filter: Option<String>,
    /// Connect and per-operation timeout.
    pub timeout: Duration,
}

/// A directory user who proved its password: its entry and every group it belongs to
/// (normalised DNs, see [`normalize_dn`]).
#[derive(Debug, Clone)]
pub struct Account {
    pub dn: String,
    pub groups: BTreeSet<String>,
}

/// The directory netmaster logs users in against.
pub struct Directory {
    cfg: LdapConfig,
    bind_password: String,
    tls: Option<Arc<rustls::ClientConfig>>,
    /// Whether the server is Active Directory (learnt from its root DSE on first use).
    is_ad: RwLock<Option<bool>>,
}

impl std::fmt::Debug for Directory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Directory")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

/// Why a login failed, before it becomes what the user sees.
enum Fail {
    /// Refused: logged with this reason, answered with one message.
    Refused(String),
    /// The server could not be reached or did not answer in time.
    Down(String),
}

impl From<LdapError> for Fail {
    fn from(e: LdapError) -> Fail {
        match e {
            LdapError::Io { .. }
            | LdapError::Timeout { .. }
            | LdapError::Rustls { .. }
            | LdapError::DNSName { .. }
            | LdapError::OpSend { .. }
            | LdapError::ResultRecv { .. }
            | LdapError::EndOfStream => Fail::Down(e.to_string()),
            e => Fail::Refused(e.to_string()),
        }
    }
}

impl Fail {
    fn into_user_error(self, who: &str) -> UserError {
        match self {
            Fail::Refused(why) => {
                tracing::info!(user = %who, reason = %why, "LDAP login refused");
                UserError::LdapRefused
            }
            Fail::Down(why) => {
                tracing::warn!(user = %who, reason = %why, "LDAP server unavailable");
                UserError::Unavailable("the LDAP server cannot be reached; try again later".into())
            }
        }
    }
}

/// A DN in one spelling for comparisons: attribute names and values lowercased, no blanks around
/// the separators (`CN=Ops, DC=Example` and `cn=ops,dc=example` are one group).
pub fn normalize_dn(dn: &str) -> String {
    let mut out = String::with_capacity(dn.len());
    let mut rdn = String::new();
    let mut escaped = false;
    let flush = |rdn: &mut String, out: &mut String| {
        let part = match rdn.split_once('=') {
            Some((a, v)) => format!("{}={}", a.trim(), v.trim()),
            None => rdn.trim().to_owned(),
        };
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(&part.to_lowercase());
        rdn.clear();
    };
    for c in dn.chars() {
        if escaped {
            rdn.push(c);
            escaped = false;
        } else if c == '\\' {
            rdn.push(c);
            escaped = true;
        } else if c == ',' {
            flush(&mut rdn, &mut out);
        } else {
            rdn.push(c);
        }
    }
    if !rdn.trim().is_empty() {
        flush(&mut rdn, &mut out);
    }
    out
}

/// Whether `s` reads as a DN (`attr=value[,attr=value...]`).
pub fn looks_like_dn(s: &str) -> bool {
    let n = normalize_dn(s);
    !n.is_empty()
        && n.split(',').all(|rdn| {
            rdn.split_once('=')
                .is_some_and(|(a, v)| !a.is_empty() && !v.is_empty())
        })
}

fn attr<'a>(e: &'a SearchEntry, name: &str) -> &'a [String] {
    e.attrs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map_or(&[], |(_, v)| v.as_slice())
}

impl Directory {
    /// Checks the configuration and reads the service account's password file; nothing is sent
    /// to the server yet (netmaster starts even while the directory is down).
    pub fn new(cfg: LdapConfig) -> Result<Directory, String> {
        let url = cfg.url.to_ascii_lowercase();
        let ldaps = url.starts_with("ldaps://");
        if !ldaps && !url.starts_with("ldap://") {
            return Err(format!(
                "--ldap-url {}: use ldap://host[:port] or ldaps://host[:port]",
                cfg.url
            ));
        }
        if ldaps && cfg.starttls {
            return Err("--ldap-starttls is for ldap:// URLs (ldaps:// is TLS already)".into());
        }
        if cfg.ca.is_some() && !ldaps && !cfg.starttls {
            return Err("--ldap-ca is for ldaps:// URLs or --ldap-starttls".into());
        }
        if !cfg.user_filter.contains("{username}") {
            return Err(format!(
                "--ldap-user-filter {:?} has no {{username}}",
                cfg.user_filter
            ));
        }
        for (flag, f) in [
            ("--ldap-user-filter", Some(&cfg.user_filter)),
            ("--ldap-disabled-filter", cfg.disabled_filter.as_ref()),
        ] {
            if let Some(f) = f {
                ldap3::parse_filter(f.replace("{username}", "x"))
                    .map_err(|_| format!("{flag} {f:?} is not an LDAP filter"))?;
            }
        }
        let bind_password = match (&cfg.bind_dn, &cfg.bind_password_file) {
            (Some(_), Some(p)) => std::fs::read_to_string(p)
                .map_err(|e| format!("--ldap-bind-password-file {}: {e}", p.display()))?
                .trim_end_matches(['\r', '\n'])
                .to_owned(),
            (Some(_), None) => {
                return Err("--ldap-bind-dn needs --ldap-bind-password-file".into());
            }
            (None, Some(_)) => {
                return Err("--ldap-bind-password-file needs --ldap-bind-dn".into());
            }
            (None, None) => String::new(),
        };
        if cfg.bind_dn.is_some() && bind_password.is_empty() {
            // An empty password would be an anonymous bind that "succeeds".
            return Err("--ldap-bind-password-file is empty".into());
        }
        let tls = if ldaps || cfg.starttls {
            let path = cfg.ca.clone().unwrap_or_else(|| PathBuf::from(SYSTEM_CAS));
            let mut roots = rustls::RootCertStore::empty();
            for c in contiv_tls::load_certs(&path).map_err(|e| format!("--ldap-ca: {e}"))? {
                roots
                    .add(c)
                    .map_err(|e| format!("--ldap-ca {}: {e}", path.display()))?;
            }
            let config = rustls::ClientConfig::builder_with_provider(contiv_tls::provider())
                .with_safe_default_protocol_versions()
                .map_err(|e| format!("LDAP TLS: {e}"))?
                .with_root_certificates(roots)
                .with_no_client_auth();
            Some(Arc::new(config))
        } else {
            None
        };
        Ok(Directory {
            cfg,
            bind_password,
            tls,
            is_ad: RwLock::new(None),
        })
    }

    /// Logs `name` in with `password`: its entry and groups, or why not.
    pub async fn login(&self, name: &str, password: &str) -> Result<Account, UserError> {
        if password.is_empty() {
            // An LDAP simple bind with a DN and no password is an anonymous bind that succeeds.
            return Err(Fail::Refused("empty password".into()).into_user_error(name));
        }
        self.run(name, Some(password))
            .await
            .map_err(|f| f.into_user_error(name))
    }

    /// The account of `name` as it is now, without its password (token refresh): it must still
    /// exist and not be disabled.
    pub async fn lookup(&self, name: &str) -> Result<Account, UserError> {
        self.run(name, None)
            .await
            .map_err(|f| f.into_user_error(name))
    }

    async fn connect(&self) -> Result<Ldap, Fail> {
        let mut settings = LdapConnSettings::new()
            .set_conn_timeout(self.cfg.timeout)
            .set_starttls(self.cfg.starttls);
        if let Some(tls) = &self.tls {
            settings = settings.set_config(tls.clone());
        }
        let (conn, ldap) = LdapConnAsync::with_settings(settings, &self.cfg.url)
            .await
            .map_err(|e| Fail::Down(format!("connecting to {}: {e}", self.cfg.url)))?;
        ldap3::drive!(conn);
        Ok(ldap)
    }

    async fn bind_service(&self, ldap: &mut Ldap) -> Result<(), Fail> {
        let dn = self.cfg.bind_dn.as_deref().unwrap_or("");
        ldap.with_timeout(self.cfg.timeout)
            .simple_bind(dn, &self.bind_password)
            .await?
            .success()
            .map_err(|e| Fail::Refused(format!("service account bind ({dn:?}): {e}")))?;
        Ok(())
    }

    async fn search(
        &self,
        ldap: &mut Ldap,
        base: &str,
        scope: Scope,
        filter: &str,
        attrs: &[&str],
    ) -> Result<Vec<SearchEntry>, Fail> {
        let (entries, _) = ldap
            .with_timeout(self.cfg.timeout)
            .search(base, scope, filter, attrs.to_vec())
            .await?
            .success()
            .map_err(|e| Fail::Refused(format!("search {filter:?} under {base:?}: {e}")))?;
        Ok(entries.into_iter().map(SearchEntry::construct).collect())
    }

    async fn run(&self, name: &str, password: Option<&str>) -> Result<Account, Fail> {
        let mut ldap = self.connect().await?;
        let out = self.steps(&mut ldap, name, password).await;
        let _ = ldap.unbind().await;
        out
    }

    async fn steps(
        &self,
        ldap: &mut Ldap,
        name: &str,
        password: Option<&str>,
    ) -> Result<Account, Fail> {
        self.bind_service(ldap).await?;
        let filter = self
            .cfg
            .user_filter
            .replace("{username}", &ldap_escape(name));
        let mut found = self
            .search(
                ldap,
                &self.cfg.user_base,
                Scope::Subtree,
                &filter,
                &["memberOf", "userAccountControl", "pwdAccountLockedTime"],
            )
            .await?;
        let user = match found.len() {
            0 => return Err(Fail::Refused("no such user in the directory".into())),
            1 => found.remove(0),
            n => return Err(Fail::Refused(format!("{n} entries match {filter:?}"))),
        };
        if let Some(why) = self.disabled(ldap, &user).await? {
            return Err(Fail::Refused(format!(
                "account {} is disabled ({why})",
                user.dn
            )));
        }
        if let Some(pw) = password {
            ldap.with_timeout(self.cfg.timeout)
                .simple_bind(&user.dn, pw)
                .await?
                .success()
                .map_err(|e| Fail::Refused(format!("bind as {}: {e}", user.dn)))?;
            // Groups are read with the service account's rights, not the user's.
            self.bind_service(ldap).await?;
        }
        let groups = self.groups(ldap, &user).await?;
        Ok(Account {
            dn: user.dn,
            groups,
        })
    }

    async fn disabled(&self, ldap: &mut Ldap, user: &SearchEntry) -> Result<Option<String>, Fail> {
        let uac = attr(user, "userAccountControl")
            .first()
            .and_then(|v| v.trim().parse::<u32>().ok());
        if uac.is_some_and(|v| v & 0x2 != 0) {
            return Ok(Some("userAccountControl ACCOUNTDISABLE".into()));
        }
        // A lock with a time is ppolicy's temporary lockout, which slapd lifts by itself and
        // enforces at the bind; only the administrative lock is "disabled".
        if attr(user, "pwdAccountLockedTime")
            .iter()
            .any(|v| v.trim() == PERMANENT_LOCK)
        {
            return Ok(Some("ppolicy pwdAccountLockedTime".into()));
        }
        if let Some(f) = &self.cfg.disabled_filter {
            if !self
                .search(ldap, &user.dn, Scope::Base, f, &["1.1"])
                .await?
                .is_empty()
            {
                return Ok(Some(format!("matches {f}")));
            }
        }
        Ok(None)
    }

    async fn server_is_ad(&self, ldap: &mut Ldap) -> Result<bool, Fail> {
        if let Some(known) = *self.is_ad.read() {
            return Ok(known);
        }
        let dse = self
            .search(
                ldap,
                "",
                Scope::Base,
                "(objectClass=*)",
                &["supportedCapabilities"],
            )
            .await
            .unwrap_or_default();
        let ad = dse.first().is_some_and(|e| {
            attr(e, "supportedCapabilities")
                .iter()
                .any(|c| c == AD_CAPABILITY)
        });
        *self.is_ad.write() = Some(ad);
        Ok(ad)
    }

    fn group_base(&self) -> &str {
        self.cfg
            .group_base
            .as_deref()
            .unwrap_or(&self.cfg.user_base)
    }

    async fn groups(&self, ldap: &mut Ldap, user: &SearchEntry) -> Result<BTreeSet<String>, Fail> {
        let mut all: BTreeSet<String> = attr(user, "memberOf")
            .iter()
            .map(|g| normalize_dn(g))
            .collect();
        if self.server_is_ad(ldap).await? {
            let filter = format!("(member:{IN_CHAIN}:={})", ldap_escape(user.dn.as_str()));
            for g in self
                .search(ldap, self.group_base(), Scope::Subtree, &filter, &["1.1"])
                .await?
            {
                all.insert(normalize_dn(&g.dn));
            }
            return Ok(all);
        }
        // Breadth first: each round finds the groups that name any DN of the previous round.
        let mut frontier: Vec<String> = std::iter::once(user.dn.clone())
            .chain(attr(user, "memberOf").iter().cloned())
            .collect();
        let mut depth = 0;
        while !frontier.is_empty() {
            if depth == MAX_DEPTH {
                tracing::warn!(
                    user = %user.dn,
                    "LDAP groups nested deeper than {MAX_DEPTH} levels: the deeper ones are ignored"
                );
                break;
            }
            depth += 1;
            let mut found = Vec::new();
            // Bounded filters: a user in hundreds of groups makes several searches, not one huge one.
            for chunk in frontier.chunks(FILTER_DNS) {
                let terms: String = chunk
                    .iter()
                    .map(|dn| {
                        let v = ldap_escape(dn.as_str());
                        format!("(member={v})(uniqueMember={v})")
                    })
                    .collect();
                found.extend(
                    self.search(
                        ldap,
                        self.group_base(),
                        Scope::Subtree,
                        &format!("(|{terms})"),
                        &["memberOf"],
                    )
                    .await?,
                );
            }
            let mut next = Vec::new();
            for g in found {
                let parents = attr(&g, "memberOf").to_vec();
                for dn in std::iter::once(g.dn).chain(parents) {
                    if all.insert(normalize_dn(&dn)) {
                        next.push(dn);
                    }
                }
            }
            frontier = next;
        }
        Ok(all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_compare_in_one_spelling() {
        assert_eq!(
            normalize_dn("CN=Ops Team , OU=Groups,DC=Example, DC=com"),
            "cn=ops team,ou=groups,dc=example,dc=com"
        );
        assert_eq!(normalize_dn("cn=a\\,b,dc=x"), "cn=a\\,b,dc=x");
        assert!(looks_like_dn("cn=ops,dc=example,dc=com"));
        assert!(!looks_like_dn("ops"));
        assert!(!looks_like_dn("cn=,dc=x"));
    }

    fn cfg(url: &str) -> LdapConfig {
        LdapConfig {
            url: url.into(),
            starttls: false,
            ca: None,
            bind_dn: None,
            bind_password_file: None,
            user_base: "dc=example,dc=com".into(),
            user_filter: DEFAULT_USER_FILTER.into(),
            group_base: None,
            disabled_filter: None,
            timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn bad_configuration_is_refused_at_start() {
        assert!(Directory::new(cfg("ldap://127.0.0.1:1")).is_ok());
        assert!(Directory::new(cfg("http://x")).is_err());
        let mut c = cfg("ldap://x");
        c.user_filter = "(uid=bob)".into();
        assert!(Directory::new(c).is_err());
        let mut c = cfg("ldap://x");
        c.disabled_filter = Some("not a filter".into());
        assert!(Directory::new(c).is_err());
        let mut c = cfg("ldap://x");
        c.bind_dn = Some("cn=svc,dc=example,dc=com".into());
        assert!(Directory::new(c).is_err());
        let mut c = cfg("ldaps://x");
        c.starttls = true;
        assert!(Directory::new(c).is_err());
        let mut c = cfg("ldap://x");
        c.ca = Some("/etc/ssl/certs/ca-certificates.crt".into());
        assert!(Directory::new(c).is_err());
    }

    #[tokio::test]
    async fn empty_password_never_reaches_the_server() {
        // Port 1 on loopback is closed: a refusal without a connection proves the early check.
        let d = Directory::new(cfg("ldap://127.0.0.1:1")).unwrap();
        assert!(matches!(
            d.login("alice", "").await,
            Err(UserError::LdapRefused)
        ));
        assert!(matches!(
            d.login("alice", "pw").await,
            Err(UserError::Unavailable(_))
        ));
    }
}
