//! Command-line flags of `netplugin` (Contiv's names where they apply) and their checks.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use contiv_cni::agent_api::{DEFAULT_AGENT_SOCKET, DEFAULT_PENDING_DELETE_DIR};
use contiv_datapath::{FwdMode, HostSpec};

/// Contiv's `--mode`: which container runtime integration the agent serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    Kubernetes,
    Docker,
    #[value(name = "swarm-mode")]
    SwarmMode,
    Test,
}

/// Contiv's `--fwdmode` (netmaster's global `fwdMode` wins when set).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FwdFlag {
    Bridge,
    Routing,
}

/// Which datapath driver programs forwarding (chosen by the binary's factory).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DatapathKind {
    /// The Linux kernel: bridges, VXLAN, routes in per-tenant namespaces.
    Linux,
    /// Open vSwitch (userspace datapath): Contiv's OpenFlow pipeline on one bridge per host.
    Ovs,
}

/// Which driver enforces policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PolicyKind {
    /// The datapath's own: nftables on linux, openflow on ovs.
    Auto,
    /// nftables in each tenant namespace (the Linux datapath's).
    Nftables,
    /// Flows in the OVS pipeline, stateful through conntrack (the OVS datapath's).
    Openflow,
    /// Enforce nothing (every connection allowed, as with Contiv's policy off).
    None,
}

/// Which driver balances serviceLB VIPs over their providers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ServicesKind {
    /// The datapath's own: nftables on linux, openflow on ovs.
    Auto,
    /// nftables DNAT in each tenant namespace (the Linux datapath's).
    Nftables,
    /// Select groups and conntrack DNAT in the OVS pipeline's SRV_PROXY table (the OVS
    /// datapath's).
    Openflow,
    /// No balancing: VIPs are not reachable.
    None,
}

/// Whether the agent serves DNS in tenant namespaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DnsMode {
    /// Serve each tenant's names on its gateways and put them in CNI results.
    On,
    /// No DNS: CNI results name no nameserver.
    Off,
}

/// Contiv's `--netmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum NetMode {
    Vxlan,
    Vlan,
}

/// netplugin: Contiv's host agent.
#[derive(Debug, Clone, Parser)]
#[command(name = "netplugin", version)]
pub struct Flags {
    /// This host's name, as endpoints' homing host (default: the system hostname).
    #[arg(long, env = "CONTIV_NETPLUGIN_HOST")]
    pub host: Option<String>,
    /// This host's VXLAN tunnel endpoint address (an address of the underlay interface).
    #[arg(long, env = "CONTIV_NETPLUGIN_VTEP_IP")]
    pub vtep_ip: Ipv4Addr,
    /// netmaster's URL (Contiv's --netmaster-address); several netmasters: comma separated, the
    /// agent fails over between them and resumes its stream where it stopped.
    #[arg(
        long,
        alias = "netmaster-address",
        default_value = "http://127.0.0.1:9999",
        env = "CONTIV_NETPLUGIN_NETMASTER"
    )]
    pub netmaster: String,
    /// Runtime integration (only the CNI socket is served today).
    #[arg(
        long,
        value_enum,
        default_value = "kubernetes",
        env = "CONTIV_NETPLUGIN_MODE"
    )]
    pub mode: Mode,
    /// Forwarding mode when netmaster's global object does not set one.
    #[arg(
        long,
        value_enum,
        default_value = "bridge",
        env = "CONTIV_NETPLUGIN_FORWARD_MODE"
    )]
    pub fwdmode: FwdFlag,
    /// Encapsulation (the linux datapath supports vxlan only).
    #[arg(
        long,
        value_enum,
        default_value = "vxlan",
        env = "CONTIV_NETPLUGIN_NET_MODE"
    )]
    pub netmode: NetMode,
    /// Datapath driver.
    #[arg(
        long,
        value_enum,
        default_value = "linux",
        env = "CONTIV_NETPLUGIN_DATAPATH"
    )]
    pub datapath: DatapathKind,
    /// Policy driver (a driver of another datapath is refused).
    #[arg(
        long,
        value_enum,
        default_value = "auto",
        env = "CONTIV_NETPLUGIN_POLICY"
    )]
    pub policy: PolicyKind,
    /// Service load balancing driver (serviceLB VIPs balanced per connection on the client's
    /// host; none on ovs yet).
    #[arg(
        long,
        value_enum,
        default_value = "auto",
        env = "CONTIV_NETPLUGIN_SERVICES"
    )]
    pub services: ServicesKind,
    /// DNS service discovery: each tenant's service, group and workload names served on its
    /// gateways (port 53 in the tenant namespace) and named in CNI results.
    #[arg(long, value_enum, default_value = "on", env = "CONTIV_NETPLUGIN_DNS")]
    pub dns: DnsMode,
    /// Resolvers that names the agent does not own are forwarded to (`ip[:port]`, comma
    /// separated; default: the nameservers of /etc/resolv.conf).
    #[arg(long, value_delimiter = ',', env = "CONTIV_NETPLUGIN_DNS_UPSTREAM")]
    pub dns_upstream: Vec<String>,
    /// Serve Prometheus metrics on this address (`127.0.0.1:9090`); off when unset.
    #[arg(long, env = "CONTIV_NETPLUGIN_METRICS_ADDRESS")]
    pub metrics_address: Option<std::net::SocketAddr>,
    /// Log level: trace, debug, info, warn, error.
    #[arg(long, default_value = "info", env = "CONTIV_NETPLUGIN_LOG_LEVEL")]
    pub log_level: String,
    /// The network namespace whose network the agent programs (default: its own).
    #[arg(long)]
    pub host_netns: Option<PathBuf>,
    /// The underlay interface (holding the VTEP address) in the host namespace.
    #[arg(long, default_value = "eth0")]
    pub underlay_if: String,
    /// MTU of the underlay interface (workloads get this minus the VXLAN overhead).
    #[arg(long, default_value_t = 1500)]
    pub underlay_mtu: u32,
    /// Durable local state (attachment records).
    #[arg(
        long,
        default_value = "/var/lib/contiv/netplugin",
        env = "CONTIV_NETPLUGIN_STATE_DIR"
    )]
    pub state_dir: PathBuf,
    /// Unix socket the CNI plugin talks to.
    #[arg(long, default_value = DEFAULT_AGENT_SOCKET)]
    pub cni_socket: PathBuf,
    /// Where the CNI plugin spools DELs it could not deliver.
    #[arg(long, default_value = DEFAULT_PENDING_DELETE_DIR)]
    pub cni_pending_dir: PathBuf,
    /// Serve Docker's remote network and IPAM driver `netplugin` on this unix socket (off unless
    /// given; the flag alone means /run/docker/plugins/netplugin.sock, where dockerd looks).
    #[arg(long, num_args = 0..=1, default_missing_value = crate::cnm::server::DEFAULT_SOCKET)]
    pub docker_plugin_socket: Option<PathBuf>,
    /// Docker mode (Contiv's `--mode docker`): keep this host's dockerd networks in step with
    /// Contiv's groups and networks (`<group>[/<tenant>]`, `<network>[/<tenant>]`), so no
    /// `docker network create` is needed. Needs `--docker-plugin-socket`.
    #[arg(long, requires = "docker_plugin_socket")]
    pub docker_mode: bool,
    /// Swarm mode (Contiv's `--mode swarm-mode`): the Docker driver answers Scope `global`, and
    /// networks name their Contiv group or network with `-o contiv-tag=<cfgdTag>`. Needs the
    /// managed plugin (scripts/docker-plugin.sh): dockerd refuses socket plugins in swarm.
    #[arg(
        long,
        requires = "docker_plugin_socket",
        conflicts_with = "docker_mode"
    )]
    pub docker_swarm: bool,
    /// Remount `/proc/sys` read-write (in the agent's own mount namespace) if it is read-only:
    /// dockerd mounts it read-only in every managed plugin, and the datapath sets sysctls of
    /// the namespaces it makes. The managed plugin's entrypoint passes it; not for an agent
    /// sharing the host's mount namespace.
    #[arg(long)]
    pub remount_proc_sys: bool,
    /// dockerd's Engine API socket, for `--docker-mode` and (with the Docker plugin on) the
    /// sweep releasing Docker endpoints dockerd no longer has (skipped if the socket is absent).
    #[arg(long, default_value = "/run/docker.sock")]
    pub docker_host: PathBuf,
    /// Directory of named network namespaces (tenant routers are created there).
    #[arg(long, default_value = "/run/netns")]
    pub netns_dir: PathBuf,
    /// Name prefix of the tenant router namespaces.
    #[arg(long, default_value = "ctv")]
    pub ns_prefix: String,
    /// `--datapath ovs`: ovsdb-server's endpoint (`unix:PATH` or `tcp:IP:PORT`).
    #[arg(long, default_value = "unix:/var/run/openvswitch/db.sock")]
    pub ovsdb: String,
    /// `--datapath ovs`: the integration bridge (made and marked ours; one not ours is refused).
    #[arg(long, default_value = "contivbr")]
    pub ovs_bridge: String,
    /// `--datapath ovs`: the bridge's OpenFlow target on the host's loopback
    /// (`ptcp:PORT:127.0.0.1`), which the agent connects to.
    #[arg(long, default_value_t = 6653)]
    pub ovs_openflow_port: u16,
    /// `--datapath ovs`: the trunk interface VLAN networks' traffic leaves and arrives by,
    /// 802.1Q-tagged with each network's VLAN id (Contiv's `-vlan-if`). It becomes a port of
    /// the bridge; without it VLAN networks are refused.
    #[arg(long)]
    pub vlan_uplink: Option<String>,
    /// Seconds between full reconcile passes (changes trigger one at once anyway).
    #[arg(long, default_value_t = 30)]
    pub reconcile_interval: u64,
    /// Seconds between heartbeats (node registrations); must stay well below netmaster's
    /// `--node-grace`, after which a silent node's endpoints are reclaimed.
    #[arg(long, default_value_t = crate::follow::HEARTBEAT.as_secs(), value_parser = clap::value_parser!(u64).range(1..))]
    pub heartbeat_interval: u64,
    /// CA that signed netmaster's certificate (https netmaster URLs).
    #[arg(long, env = "CONTIV_NETPLUGIN_TLS_CA")]
    pub tls_ca: Option<PathBuf>,
    /// This host's client certificate (`netmaster certs init --host NAME`): netmaster takes the
    /// host's identity from it.
    #[arg(long, requires = "tls_key", env = "CONTIV_NETPLUGIN_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// Key of `--tls-cert`.
    #[arg(long, requires = "tls_cert", env = "CONTIV_NETPLUGIN_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
}

/// A flag combination the agent cannot run with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl Flags {
    /// This host as the datapath needs it.
    pub fn host_spec(&self) -> HostSpec {
        HostSpec {
            vtep_ip: self.vtep_ip,
            underlay_ifname: self.underlay_if.clone(),
            underlay_mtu: self.underlay_mtu,
        }
    }

    /// The policy driver in force: `auto` resolved to the datapath's own; a driver that does
    /// not fit the datapath is refused (it would enforce nothing where the traffic flows).
    pub fn policy_kind(&self) -> Result<PolicyKind, ConfigError> {
        match (self.datapath, self.policy) {
            (DatapathKind::Linux, PolicyKind::Auto) => Ok(PolicyKind::Nftables),
            (DatapathKind::Ovs, PolicyKind::Auto) => Ok(PolicyKind::Openflow),
            (DatapathKind::Linux, PolicyKind::Openflow) => Err(ConfigError(
                "--policy openflow needs --datapath ovs; the linux datapath enforces policy with nftables (--policy nftables or auto)".into(),
            )),
            (DatapathKind::Ovs, PolicyKind::Nftables) => Err(ConfigError(
                "--policy nftables needs --datapath linux; the ovs datapath enforces policy in its OpenFlow pipeline (--policy openflow or auto)".into(),
            )),
            (_, p) => Ok(p),
        }
    }

    /// The service driver in force: `auto` resolved to the datapath's own (none on ovs).
    pub fn services_kind(&self) -> Result<ServicesKind, ConfigError> {
        match (self.datapath, self.services) {
            (DatapathKind::Linux, ServicesKind::Auto) => Ok(ServicesKind::Nftables),
            (DatapathKind::Ovs, ServicesKind::Auto) => Ok(ServicesKind::Openflow),
            (DatapathKind::Ovs, ServicesKind::Nftables) => Err(ConfigError(
                "--services nftables needs --datapath linux; the ovs datapath balances services in its OpenFlow pipeline (--services openflow or auto)".into(),
            )),
            (DatapathKind::Linux, ServicesKind::Openflow) => Err(ConfigError(
                "--services openflow needs --datapath ovs; the linux datapath balances services with nftables (--services nftables or auto)".into(),
            )),
            (_, s) => Ok(s),
        }
    }

    /// Cross-flag checks.
    pub fn check(&self) -> Result<(), ConfigError> {
        self.policy_kind()?;
        self.services_kind()?;
        match (self.datapath, self.netmode, &self.vlan_uplink) {
            (DatapathKind::Linux, NetMode::Vlan, _) => {
                return Err(ConfigError(
                    "--netmode vlan needs 802.1q support the linux datapath does not have here; use vxlan (or --datapath ovs with --vlan-uplink)".into(),
                ));
            }
            (DatapathKind::Linux, _, Some(_)) => {
                return Err(ConfigError(
                    "--vlan-uplink is for --datapath ovs: the linux datapath has no VLAN mode here"
                        .into(),
                ));
            }
            (DatapathKind::Ovs, NetMode::Vlan, None) => {
                return Err(ConfigError(
                    "--netmode vlan on --datapath ovs needs --vlan-uplink IF, the trunk VLAN networks leave by".into(),
                ));
            }
            (DatapathKind::Ovs, _, Some(up)) if *up == self.underlay_if => {
                return Err(ConfigError(format!(
                    "--vlan-uplink {up} is also --underlay-if: the trunk must be an interface of its own (as a port of the pipeline the underlay's VXLAN and host traffic would drop)"
                )));
            }
            _ => {}
        }
        for url in self
            .netmaster
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
        {
            if url.starts_with("https://") && self.tls_ca.is_none() {
                return Err(ConfigError(format!(
                    "--netmaster {url}: https needs --tls-ca (the CA that signed netmaster's certificate)"
                )));
            }
            if !url.starts_with("http://") && !url.starts_with("https://") {
                return Err(ConfigError(format!(
                    "--netmaster {url}: expected http://host:port or https://host:port"
                )));
            }
        }
        if let Some(bad) = self
            .dns_upstream
            .iter()
            .find(|u| crate::dns::parse_upstream(u).is_err())
        {
            return Err(ConfigError(format!(
                "--dns-upstream {bad}: expected an IP address with an optional :port"
            )));
        }
        if self
            .host
            .as_deref()
            .is_some_and(|h| h.is_empty() || h.contains('/'))
        {
            return Err(ConfigError("--host must be a plain name".into()));
        }
        Ok(())
    }

    /// The hostname in force.
    /// The TLS side of netmaster calls: the CA to trust and this host's certificate.
    pub fn tls_files(&self) -> contiv_tls::ClientFiles {
        contiv_tls::ClientFiles {
            ca: self.tls_ca.clone(),
            cert: self.tls_cert.clone(),
            key: self.tls_key.clone(),
            insecure: false,
        }
    }

    /// The TLS config of netmaster calls (`None`: plain HTTP only). A host certificate must name
    /// this host: netmaster refuses calls made for another host.
    pub fn tls_config(&self) -> Result<Option<ureq::tls::TlsConfig>, ConfigError> {
        let files = self.tls_files();
        if files.is_empty() {
            return Ok(None);
        }
        if let Some(cert) = &files.cert {
            let der = contiv_tls::load_certs(cert).map_err(|e| ConfigError(e.to_string()))?;
            let id = contiv_tls::identity_of(der[0].as_ref())
                .map_err(|e| ConfigError(format!("--tls-cert {}: {e}", cert.display())))?;
            if id.name != self.hostname() {
                return Err(ConfigError(format!(
                    "--tls-cert {} names host {:?} but this agent is {:?} (--host)",
                    cert.display(),
                    id.name,
                    self.hostname()
                )));
            }
        }
        contiv_tls::client_config(&files)
            .map(Some)
            .map_err(|e| ConfigError(e.to_string()))
    }

    pub fn hostname(&self) -> String {
        self.host.clone().unwrap_or_else(system_hostname)
    }

    pub fn fwd_mode(&self) -> FwdMode {
        match self.fwdmode {
            FwdFlag::Bridge => FwdMode::Bridge,
            FwdFlag::Routing => FwdMode::Routing,
        }
    }

    pub fn interval(&self) -> Duration {
        Duration::from_secs(self.reconcile_interval.max(1))
    }

    /// Where misses are forwarded: `--dns-upstream`, else /etc/resolv.conf's nameservers.
    pub fn dns_upstreams(&self) -> Vec<std::net::SocketAddr> {
        if self.dns_upstream.is_empty() {
            return crate::dns::resolv_conf_upstreams(std::path::Path::new("/etc/resolv.conf"));
        }
        self.dns_upstream
            .iter()
            .filter_map(|u| crate::dns::parse_upstream(u).ok())
            .collect()
    }

    pub fn heartbeat(&self) -> Duration {
        Duration::from_secs(self.heartbeat_interval.max(1))
    }
}

fn system_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse_and_check() {
        let f = Flags::try_parse_from([
            "netplugin",
            "--vtep-ip",
            "10.0.0.1",
            "--netmaster-address",
            "http://127.0.0.1:1",
            "--fwdmode",
            "routing",
            "--host",
            "h1",
        ])
        .expect("parse");
        assert_eq!(f.fwd_mode(), FwdMode::Routing);
        assert_eq!(f.hostname(), "h1");
        assert!(f.check().is_ok());
        assert_eq!(f.policy_kind().unwrap(), PolicyKind::Nftables);
        assert_eq!(f.services_kind().unwrap(), ServicesKind::Nftables);
        let mut o = f.clone();
        o.datapath = DatapathKind::Ovs;
        assert_eq!(o.policy_kind().unwrap(), PolicyKind::Openflow);
        assert_eq!(o.services_kind().unwrap(), ServicesKind::Openflow);
        o.policy = PolicyKind::Nftables;
        assert!(o
            .check()
            .unwrap_err()
            .0
            .contains("--policy openflow or auto"));
        o.policy = PolicyKind::None;
        o.services = ServicesKind::Nftables;
        assert!(o
            .check()
            .unwrap_err()
            .0
            .contains("--services openflow or auto"));
        let mut l = f.clone();
        l.services = ServicesKind::Openflow;
        assert!(l.check().unwrap_err().0.contains("needs --datapath ovs"));
        l.services = ServicesKind::Auto;
        l.policy = PolicyKind::Openflow;
        assert!(l.check().unwrap_err().0.contains("needs --datapath ovs"));
        let mut v = f.clone();
        v.netmode = NetMode::Vlan;
        assert!(v.check().unwrap_err().0.contains("vlan"));
        // VLAN on OVS: with a trunk uplink only; an uplink on the linux datapath is refused.
        v.datapath = DatapathKind::Ovs;
        assert!(v.check().unwrap_err().0.contains("--vlan-uplink IF"));
        v.vlan_uplink = Some("eth1".into());
        assert!(v.check().is_ok());
        // The underlay as the trunk would cut the host's VXLAN and own traffic.
        let mut u = v.clone();
        u.vlan_uplink = Some(u.underlay_if.clone());
        assert!(u.check().unwrap_err().0.contains("interface of its own"));
        v.datapath = DatapathKind::Linux;
        v.netmode = NetMode::Vxlan;
        assert!(v
            .check()
            .unwrap_err()
            .0
            .contains("--vlan-uplink is for --datapath ovs"));
        assert!(
            Flags::try_parse_from(["netplugin"]).is_err(),
            "vtep ip is required"
        );
    }
}
