//! netmaster's command line: Contiv's flags where they apply, plus `--data-dir` for the embedded
//! store.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FwdMode {
    Bridge,
    Routing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum NetMode {
    Vlan,
    Vxlan,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ClusterMode {
    Docker,
    Kubernetes,
    #[value(name = "swarm-mode")]
    SwarmMode,
    Test,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Infra {
    Default,
    Aci,
    #[value(name = "aci-opflex")]
    AciOpflex,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SyncFlag {
    /// Survives a process crash; a power loss may lose the last ~20 ms of writes.
    Normal,
    /// fsync on every write.
    Full,
}

/// netmaster: Contiv's control plane.
#[derive(Debug, Clone, Parser)]
#[command(name = "netmaster", version)]
pub struct Flags {
    /// Address the REST API listens on (Contiv's --external-address).
    #[arg(
        long,
        default_value = "0.0.0.0:9999",
        env = "CONTIV_NETMASTER_EXTERNAL_ADDRESS"
    )]
    pub external_address: String,
    /// Address agents use to reach this netmaster (Contiv's --internal-address); defaults to the
    /// external address.
    #[arg(long)]
    pub internal_address: Option<String>,
    /// Forwarding mode for new clusters.
    #[arg(
        long,
        value_enum,
        default_value = "bridge",
        env = "CONTIV_NETMASTER_FORWARD_MODE"
    )]
    pub fwdmode: FwdMode,
    /// Default network encapsulation.
    #[arg(
        long,
        value_enum,
        default_value = "vxlan",
        env = "CONTIV_NETMASTER_NET_MODE"
    )]
    pub netmode: NetMode,
    /// Network infrastructure.
    #[arg(
        long,
        value_enum,
        default_value = "default",
        env = "CONTIV_NETMASTER_INFRA"
    )]
    pub infra: Infra,
    /// Cluster mode (Contiv's --mode).
    #[arg(
        long,
        value_enum,
        default_value = "kubernetes",
        env = "CONTIV_NETMASTER_MODE"
    )]
    pub mode: ClusterMode,
    /// Log level: trace, debug, info, warn, error.
    #[arg(long, default_value = "info", env = "CONTIV_NETMASTER_LOG_LEVEL")]
    pub log_level: String,
    /// Directory of the embedded state store.
    #[arg(
        long,
        default_value = "/var/lib/contiv/netmaster",
        env = "CONTIV_NETMASTER_DATA_DIR"
    )]
    pub data_dir: PathBuf,
    /// Durability of the embedded store.
    #[arg(long, value_enum, default_value = "normal")]
    pub sync: SyncFlag,
    /// Worker threads of the async runtime (0: one per core).
    #[arg(long, default_value_t = 0, env = "CONTIV_NETMASTER_WORKERS")]
    pub workers: usize,
    /// etcd endpoints (comma separated URLs): use etcd instead of the embedded store; several
    /// netmasters on one etcd elect a leader.
    #[arg(
        long = "etcd",
        alias = "etcd-endpoints",
        value_delimiter = ',',
        env = "CONTIV_NETMASTER_ETCD_ENDPOINTS"
    )]
    pub etcd_endpoints: Vec<String>,
    /// CA that signed the etcd members' certificates (https etcd endpoints).
    #[arg(long, global = true, env = "CONTIV_NETMASTER_ETCD_CACERT")]
    pub etcd_cacert: Option<PathBuf>,
    /// Client certificate for etcd's `--client-cert-auth` (PEM).
    #[arg(
        long,
        global = true,
        requires = "etcd_key",
        env = "CONTIV_NETMASTER_ETCD_CERT"
    )]
    pub etcd_cert: Option<PathBuf>,
    /// Key of `--etcd-cert`.
    #[arg(
        long,
        global = true,
        requires = "etcd_cert",
        env = "CONTIV_NETMASTER_ETCD_KEY"
    )]
    pub etcd_key: Option<PathBuf>,
    /// Contiv 1.x's form of the same: `etcd://host:port[,host:port...]`.
    #[arg(long, conflicts_with = "etcd_endpoints")]
    pub cluster_store: Option<String>,
    /// Seconds a netmaster leads without renewing its lease (several netmasters on etcd).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(2..=300))]
    pub leader_ttl: u64,
    /// Seconds a host agent may stay silent before its node and endpoints are reclaimed.
    #[arg(long, default_value_t = contiv_api::agent::NODE_TTL_SECS, value_parser = clap::value_parser!(u64).range(5..))]
    pub node_grace: u64,
    /// Serve HTTPS with this certificate (PEM; `netmaster certs init` makes one).
    #[arg(long, requires = "tls_key", env = "CONTIV_NETMASTER_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// Key of `--tls-cert` (PEM).
    #[arg(long, requires = "tls_cert", env = "CONTIV_NETMASTER_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Verify client certificates against this CA: agents' `/plugin/*` calls then need a host
    /// certificate and may act only as the host it names.
    #[arg(long, requires = "tls_cert", env = "CONTIV_NETMASTER_TLS_CLIENT_CA")]
    pub tls_client_ca: Option<PathBuf>,
    /// Revoked client certificates: one serial (hex) or host name per line, `#` comments;
    /// re-read when it changes.
    #[arg(
        long,
        requires = "tls_client_ca",
        env = "CONTIV_NETMASTER_TLS_DENY_LIST"
    )]
    pub tls_deny_list: Option<PathBuf>,
    /// Users and roles: every /api/v1 call needs a token (`X-Auth-Token`, from
    /// `POST /api/v1/auth_proxy/login/`).
    #[arg(long, env = "CONTIV_NETMASTER_AUTH")]
    pub auth: bool,
    /// With --auth, the password of the `admin` user created when no user exists (otherwise one
    /// is generated into `<data-dir>/admin-password`, mode 0600).
    #[arg(long, requires = "auth", env = "CONTIV_NETMASTER_ADMIN_PASSWORD_FILE")]
    pub admin_password_file: Option<PathBuf>,
    /// With --auth, log in names that are not local users against this LDAP/AD server
    /// (`ldap://host:port` or `ldaps://host:port`); their role comes from the authorizations of
    /// their groups (`netctl authorization`).
    #[arg(
        long,
        requires = "auth",
        requires = "ldap_user_base",
        env = "CONTIV_NETMASTER_LDAP_URL"
    )]
    pub ldap_url: Option<String>,
    /// Upgrade the ldap:// connection with StartTLS.
    #[arg(long, requires = "ldap_url", env = "CONTIV_NETMASTER_LDAP_STARTTLS")]
    pub ldap_starttls: bool,
    /// CA of the LDAP server's certificate (PEM; ldaps:// or StartTLS); the system's CAs otherwise.
    #[arg(long, requires = "ldap_url", env = "CONTIV_NETMASTER_LDAP_CA")]
    pub ldap_ca: Option<PathBuf>,
    /// Service account that searches users and groups (anonymous search without one).
    #[arg(
        long,
        requires = "ldap_url",
        requires = "ldap_bind_password_file",
        env = "CONTIV_NETMASTER_LDAP_BIND_DN"
    )]
    pub ldap_bind_dn: Option<String>,
    /// File holding the service account's password.
    #[arg(
        long,
        requires = "ldap_bind_dn",
        env = "CONTIV_NETMASTER_LDAP_BIND_PASSWORD_FILE"
    )]
    pub ldap_bind_password_file: Option<PathBuf>,
    /// Where users are searched (subtree), e.g. `ou=people,dc=example,dc=com`.
    #[arg(long, requires = "ldap_url", env = "CONTIV_NETMASTER_LDAP_USER_BASE")]
    pub ldap_user_base: Option<String>,
    /// Filter finding a user; `{username}` is the login name (escaped). The default fits AD
    /// (sAMAccountName) and OpenLDAP (uid).
    #[arg(long, default_value = crate::ldap::DEFAULT_USER_FILTER, env = "CONTIV_NETMASTER_LDAP_USER_FILTER")]
    pub ldap_user_filter: String,
    /// Where groups are searched (subtree); defaults to the user base.
    #[arg(long, requires = "ldap_url", env = "CONTIV_NETMASTER_LDAP_GROUP_BASE")]
    pub ldap_group_base: Option<String>,
    /// A user entry matching this filter is a disabled account (besides AD's userAccountControl
    /// bit 0x2 and an OpenLDAP ppolicy lock), e.g. `(employeeType=disabled)`.
    #[arg(
        long,
        requires = "ldap_url",
        env = "CONTIV_NETMASTER_LDAP_DISABLED_FILTER"
    )]
    pub ldap_disabled_filter: Option<String>,
    /// Seconds to wait for the LDAP server (connect and each operation).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=120))]
    pub ldap_timeout: u64,
    /// Lifetime of a token, seconds.
    #[arg(long, default_value_t = 3600, env = "CONTIV_NETMASTER_TOKEN_TTL")]
    pub token_ttl: u64,
    /// CA that signed the other netmasters' certificates (forwarding to the leader over https);
    /// defaults to `--tls-client-ca`.
    #[arg(long, requires = "tls_cert", env = "CONTIV_NETMASTER_TLS_CA")]
    pub tls_ca: Option<PathBuf>,
    /// Bound of the audit log in bytes (every write and refused call, kept in the state store;
    /// the oldest entries are trimmed beyond it); 0 turns the audit log off.
    #[arg(long, default_value_t = crate::audit::DEFAULT_MAX_BYTES, env = "CONTIV_NETMASTER_AUDIT_MAX_SIZE")]
    pub audit_max_size: u64,
    /// Allow plain HTTP on a non-loopback address (anyone on the network can then change
    /// everything).
    #[arg(long)]
    pub insecure_http: bool,
    /// With TLS on: also serve plain HTTP on this loopback address (e.g. 127.0.0.1:9999) for
    /// clients on this host that do not use TLS. Same users and tokens as the TLS listener
    /// (the original Go netctl will not send a token over http: see
    /// --plain-loopback-root-admin); agent calls (`/plugin/*`) are refused there.
    #[arg(long, requires = "tls_cert", env = "CONTIV_NETMASTER_PLAIN_LOOPBACK")]
    pub plain_loopback: Option<String>,
    /// On the --plain-loopback listener, a client whose socket belongs to root (uid 0) on this
    /// host acts as admin without a token (root here can read the store anyway); other local
    /// users still need one. For the original Go netctl run as root with --auth on.
    #[arg(long, requires = "plain_loopback")]
    pub plain_loopback_root_admin: bool,
    #[command(flatten)]
    pub limits: LimitFlags,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// What one client may ask of netmaster: sizes, times, counts and rates (hostile input).
#[derive(Debug, Clone, clap::Args)]
pub struct LimitFlags {
    /// Largest request body, bytes (larger: 413).
    #[arg(long, default_value_t = 1 << 20, env = "CONTIV_NETMASTER_MAX_BODY_BYTES")]
    pub max_body_bytes: usize,
    /// Largest request head (request line and headers), bytes (larger: 431).
    #[arg(long, default_value_t = 16 << 10, value_parser = clap::value_parser!(u64).range(1024..=1 << 20))]
    pub max_head_bytes: u64,
    /// Longest request path and query, bytes (longer: 414).
    #[arg(long, default_value_t = 4096)]
    pub max_path_bytes: usize,
    /// Seconds a client has to send a request head, counted from the moment the connection
    /// waits for one; also how long an idle keep-alive connection stays open.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub head_timeout: u64,
    /// Most open client connections (more are closed at once); 0: the file limit less a
    /// reserve. The soft file limit is raised to the hard one at start.
    #[arg(long, default_value_t = 0, env = "CONTIV_NETMASTER_MAX_CONNECTIONS")]
    pub max_connections: usize,
    /// Requests per second per token (or per client address without one), bursts of as many;
    /// more answer 429 with Retry-After. 0: no limit.
    #[arg(long, default_value_t = 0, env = "CONTIV_NETMASTER_RATE_LIMIT")]
    pub rate_limit: u32,
    /// Most objects one tenant may hold (networks, groups, policies, rules, ...); creating
    /// more answers 409. 0: no limit.
    #[arg(
        long,
        default_value_t = 10_000,
        env = "CONTIV_NETMASTER_MAX_OBJECTS_PER_TENANT"
    )]
    pub max_objects_per_tenant: usize,
}

/// netmaster's subcommands (without one it serves).
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Copy Contiv's state from one store into an empty one (embedded ⇄ etcd); stop the
    /// netmasters using the source first.
    Migrate {
        /// Source: a directory of the embedded store, or etcd://host:port[,host:port...].
        #[arg(long)]
        from: String,
        /// Target (must hold no Contiv state), same forms.
        #[arg(long)]
        to: String,
    },
    /// Make or extend the cluster's certificates (a CA, netmaster's, one per host).
    Certs {
        #[command(subcommand)]
        action: CertsAction,
    },
}

/// `netmaster certs ...`
#[derive(Debug, Clone, Subcommand)]
pub enum CertsAction {
    /// Make a CA, netmaster's certificate and one client certificate per `--host` in DIR.
    Init {
        dir: PathBuf,
        /// A host agent's name (repeat for each host).
        #[arg(long = "host")]
        hosts: Vec<String>,
        /// A DNS name or IP address clients use to reach netmaster (repeatable; localhost and
        /// 127.0.0.1 are always included).
        #[arg(long = "netmaster-name")]
        netmaster_names: Vec<String>,
        /// Replace an existing CA.
        #[arg(long)]
        force: bool,
    },
    /// Issue one more host certificate from the CA in DIR.
    Host { dir: PathBuf, name: String },
}

impl Flags {
    /// TLS to etcd, when `--etcd-cacert` is given.
    pub fn etcd_tls(&self) -> Option<contiv_store::EtcdTls> {
        Some(contiv_store::EtcdTls {
            ca: self.etcd_cacert.clone()?,
            cert: self.etcd_cert.clone(),
            key: self.etcd_key.clone(),
        })
    }

    /// netmaster's TLS server files, when it serves HTTPS.
    pub fn tls_server(&self) -> Option<contiv_tls::ServerFiles> {
        Some(contiv_tls::ServerFiles {
            cert: self.tls_cert.clone()?,
            key: self.tls_key.clone()?,
            client_ca: self.tls_client_ca.clone(),
        })
    }

    /// What netmaster presents and trusts when it forwards to the leader: its own certificate as
    /// client certificate, the peers' CA.
    pub fn tls_forwarding(&self) -> contiv_tls::ClientFiles {
        contiv_tls::ClientFiles {
            ca: self.tls_ca.clone().or_else(|| self.tls_client_ca.clone()),
            cert: self.tls_cert.clone(),
            key: self.tls_key.clone(),
            insecure: false,
        }
    }

    /// The LDAP directory's settings, when `--ldap-url` is given.
    pub fn ldap(&self) -> Option<crate::ldap::LdapConfig> {
        Some(crate::ldap::LdapConfig {
            url: self.ldap_url.clone()?,
            starttls: self.ldap_starttls,
            ca: self.ldap_ca.clone(),
            bind_dn: self.ldap_bind_dn.clone(),
            bind_password_file: self.ldap_bind_password_file.clone(),
            user_base: self.ldap_user_base.clone()?,
            user_filter: self.ldap_user_filter.clone(),
            group_base: self.ldap_group_base.clone(),
            disabled_filter: self.ldap_disabled_filter.clone(),
            timeout: std::time::Duration::from_secs(self.ldap_timeout),
        })
    }

    /// The etcd endpoints from `--etcd` or `--cluster-store` (empty: embedded store).
    pub fn etcd(&self) -> Result<Vec<String>, String> {
        let Some(cs) = &self.cluster_store else {
            return Ok(self.etcd_endpoints.clone());
        };
        let rest = cs.strip_prefix("etcd://").ok_or_else(|| {
            format!("--cluster-store {cs}: only etcd://host:port[,host:port...] is supported")
        })?;
        let eps: Vec<String> = rest
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|hp| {
                if hp.contains("://") {
                    hp.to_string()
                } else {
                    format!("http://{hp}")
                }
            })
            .collect();
        if eps.is_empty() {
            return Err(format!("--cluster-store {cs}: no endpoint given"));
        }
        Ok(eps)
    }
}

impl FwdMode {
    pub fn as_str(self) -> &'static str {
        match self {
            FwdMode::Bridge => "bridge",
            FwdMode::Routing => "routing",
        }
    }
}

impl ClusterMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ClusterMode::Docker => "docker",
            ClusterMode::Kubernetes => "kubernetes",
            ClusterMode::SwarmMode => "swarm-mode",
            ClusterMode::Test => "test",
        }
    }
}

impl Infra {
    pub fn as_str(self) -> &'static str {
        match self {
            Infra::Default => "default",
            Infra::Aci => "aci",
            Infra::AciOpflex => "aci-opflex",
        }
    }
}
