//! netmaster's command line: Contiv's flags where they apply, plus `--data-dir` for the embedded
//! store.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

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
    /// etcd endpoints (comma separated): use etcd instead of the embedded store.
    #[arg(long, value_delimiter = ',', env = "CONTIV_NETMASTER_ETCD_ENDPOINTS")]
    pub etcd_endpoints: Vec<String>,
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
