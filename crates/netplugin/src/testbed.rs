//! Multi-host harness for end-to-end tests (feature `testbed`).
//!
//! A [`Cluster`] is N simulated hosts (network namespaces on one underlay, from
//! `contiv_datapath_linux::testbed`), one netmaster process on loopback, and one netplugin
//! process per host running in the root namespace with `--host-netns` pointing at its host (so
//! it reaches netmaster on 127.0.0.1) and its own CNI socket, state dir and spool. Workloads
//! are namespaces attached through the real `contivk8s` binary.
//!
//! Everything is named per run (`ctvtb-<pid>-<n>-…` namespaces, a `ctvnp-<pid>-…` temp dir);
//! dropping the cluster kills its processes by PID and deletes its namespaces and files, also
//! on panic. Child processes get `PR_SET_PDEATHSIG` so a killed test run takes them along;
//! namespaces and temp dirs of dead runs are reaped when the next cluster starts.
//!
//! Netmaster runs with TLS, client certificates and `--auth` unless a test asks for
//! [`Security::Plain`] (see [`security`]): the harness' own calls carry an admin token.

mod ovs;
mod security;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use contiv_datapath_linux::testbed::Testbed;
use contiv_datapath_linux::LinuxDatapath;
use serde_json::{json, Value};

pub use contiv_datapath_linux::testbed::{
    connect_named, in_netns, is_root, ping, require_root, tally_named, tcp_exchange, NamedServer,
};
pub use contiv_datapath_linux::{names, traffic};
pub use ovs::OvsHost;
pub use security::{login, Credentials, Security};

use security::host_name;

/// Paths of the binaries under test (`env!("CARGO_BIN_EXE_…")` in the root package's tests).
#[derive(Debug, Clone)]
pub struct Binaries {
    pub netmaster: PathBuf,
    pub netplugin: PathBuf,
    pub contivk8s: PathBuf,
}

/// A child process killed (SIGKILL) and reaped when dropped.
pub struct Proc(Option<Child>);

impl Proc {
    pub fn pid(&self) -> Option<u32> {
        self.0.as_ref().map(Child::id)
    }
    /// SIGKILL by PID and wait.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
    pub fn is_running(&mut self) -> bool {
        self.0
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Spawns `cmd` so that it dies with the spawning thread, output appended to `log`.
fn spawn(mut cmd: Command, log: &Path) -> Result<Proc, String> {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| format!("{}: {e}", log.display()))?;
    let err = out.try_clone().map_err(|e| e.to_string())?;
    cmd.stdin(Stdio::null()).stdout(out).stderr(err);
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    cmd.spawn()
        .map(|c| Proc(Some(c)))
        .map_err(|e| format!("spawn: {e}"))
}

/// A loopback port free now and never handed out before by this process: it is released
/// before netmaster binds it, and parallel tests must not be offered the same one (one
/// netmaster would fail to bind and its test would talk to the other's).
fn free_port() -> Result<u16, String> {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .map_err(|e| e.to_string())?;
        let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
        if !given.contains(&port) {
            given.push(port);
            return Ok(port);
        }
    }
}

const TMP_PREFIX: &str = "ctvnp-";

/// Temp dirs named `<prefix><pid>-…` whose process is gone: leftovers of killed test runs.
pub fn dead_run_dirs(prefix: &str) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(std::env::temp_dir()) else {
        return Vec::new();
    };
    rd.flatten()
        .filter(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            let pid = name
                .strip_prefix(prefix)
                .and_then(|r| r.split('-').next())
                .unwrap_or("");
            !pid.is_empty() && !Path::new("/proc").join(pid).exists()
        })
        .map(|e| e.path())
        .collect()
}

/// Removes temp dirs of earlier runs whose process is gone, stopping the OVS daemons such a
/// run left (their pidfiles are there).
fn reap_tmp() {
    for dir in dead_run_dirs(TMP_PREFIX) {
        ovs::reap(&dir);
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Netmaster `index` (0: the primary; others only in a [`Cluster::start_ha`] cluster), with its
/// own data dir and log.
fn spawn_netmaster(
    bins: &Binaries,
    tmp: &Path,
    index: usize,
    port: u16,
    args: &[String],
) -> Result<Proc, String> {
    let name = if index == 0 {
        "netmaster".to_string()
    } else {
        format!("netmaster{index}")
    };
    let mut cmd = Command::new(&bins.netmaster);
    cmd.arg("--external-address")
        .arg(format!("127.0.0.1:{port}"));
    cmd.arg("--data-dir").arg(tmp.join(&name));
    cmd.args(args);
    spawn(cmd, &tmp.join(format!("{name}.log")))
}

/// One workload attached through contivk8s.
#[derive(Debug, Clone)]
pub struct Workload {
    pub name: String,
    pub host: usize,
    pub container_id: String,
    pub netns: PathBuf,
    pub tenant: String,
    pub network: String,
    /// Endpoint group, if attached in one.
    pub group: Option<String>,
    pub ip: Ipv4Addr,
    /// The CNI result as printed by contivk8s.
    pub result: Value,
}

/// The running cluster (see the module docs).
pub struct Cluster {
    agents: Vec<Proc>,
    netmaster: Proc,
    port: u16,
    /// Further netmasters on the same store ([`Cluster::start_ha`]), with their ports.
    standbys: Vec<(Proc, u16)>,
    nm_args: Vec<String>,
    pub url: String,
    pub bins: Binaries,
    /// Each host's OVS ([`TestDatapath::Ovs`]), stopped after the agents, before the
    /// namespaces go.
    ovs: Vec<OvsHost>,
    datapath: TestDatapath,
    /// Declared after the processes so it is dropped after them.
    pub tb: Testbed,
    tmp: tempfile::TempDir,
    http: ureq::Agent,
    agent_settings: AgentSettings,
    /// Agents run in docker mode against [`Cluster::docker_socket`] ([`Cluster::set_docker_mode`]).
    docker_mode: bool,
    /// With [`Security::TlsAuth`]: certificates, deny list, admin password.
    creds: Option<Credentials>,
    /// The admin's token for the harness' own calls (renewed by logging in again on a 401).
    token: Mutex<Option<String>>,
}

/// How a test bed is started: [`Cluster::start_opts`].
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub hosts: usize,
    pub agents: AgentSettings,
    /// False: no agents at all ([`Cluster::start_without_agents`]).
    pub start_agents: bool,
    /// Netmasters sharing one store (more than one: the netmaster arguments must name it).
    pub netmasters: usize,
    pub security: Security,
    /// The datapath the agents drive.
    pub datapath: TestDatapath,
}

impl Options {
    /// `hosts` hosts, test agents, one netmaster, TLS and tokens on, the Linux datapath.
    pub fn hosts(hosts: usize) -> Options {
        Options {
            hosts,
            agents: AgentSettings::Test,
            start_agents: true,
            netmasters: 1,
            security: Security::TlsAuth,
            datapath: TestDatapath::Linux,
        }
    }

    /// The same options on datapath `datapath`.
    pub fn on(self, datapath: TestDatapath) -> Options {
        Options { datapath, ..self }
    }
}

/// Which datapath driver the test bed's agents run (`netplugin --datapath`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TestDatapath {
    /// The Linux kernel driver (tenant router namespaces, bridges, kernel VXLAN).
    #[default]
    Linux,
    /// Open vSwitch: an ovsdb-server + ovs-vswitchd per host (userspace datapath), the
    /// underlay on a netdev bridge, the agent programming its own integration bridge.
    Ovs,
}

/// How the test bed runs its agents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AgentSettings {
    /// For tests: a full reconcile pass every 3 s (clean-ups show quickly), our crates' debug
    /// logs.
    #[default]
    Test,
    /// The agent's own defaults (reconcile interval, log level): what a deployment runs and
    /// what the CNI benchmark measures.
    Defaults,
}

impl Cluster {
    /// `hosts` hosts, netmaster started with `netmaster_args`, one agent per host; TLS, client
    /// certificates and tokens on ([`Security::TlsAuth`]).
    pub fn start(bins: Binaries, hosts: usize, netmaster_args: &[&str]) -> Result<Cluster, String> {
        Self::start_opts(bins, netmaster_args, Options::hosts(hosts))
    }

    /// Like [`Cluster::start`], in plain HTTP without users ([`Security::Plain`]).
    pub fn start_plain(
        bins: Binaries,
        hosts: usize,
        netmaster_args: &[&str],
    ) -> Result<Cluster, String> {
        let opts = Options {
            security: Security::Plain,
            ..Options::hosts(hosts)
        };
        Self::start_opts(bins, netmaster_args, opts)
    }

    /// The hosts and netmaster of [`Cluster::start`] in plain HTTP without users, but no agent:
    /// for agents a test runs itself (the Docker swarm e2e runs them as dockerd's managed plugin,
    /// in the hosts' namespaces). Agent methods (`agent_log`, `restart_agent`, ...) are not for
    /// such a cluster.
    pub fn start_without_agents(bins: Binaries, hosts: usize) -> Result<Cluster, String> {
        let opts = Options {
            security: Security::Plain,
            start_agents: false,
            ..Options::hosts(hosts)
        };
        Self::start_opts(bins, &[], opts)
    }

    /// [`Cluster::start`] with the agents on `datapath`.
    pub fn start_on(
        bins: Binaries,
        datapath: TestDatapath,
        hosts: usize,
        netmaster_args: &[&str],
    ) -> Result<Cluster, String> {
        Self::start_opts(bins, netmaster_args, Options::hosts(hosts).on(datapath))
    }

    /// `netmasters` netmasters sharing one store (`netmaster_args` must name it: `--etcd ...`),
    /// every agent given all their URLs (`--netmaster A,B,...`). REST calls of the test bed go to
    /// netmaster 0 until [`Cluster::use_netmaster`] says otherwise.
    pub fn start_ha(
        bins: Binaries,
        hosts: usize,
        netmaster_args: &[&str],
        netmasters: usize,
    ) -> Result<Cluster, String> {
        let opts = Options {
            netmasters,
            ..Options::hosts(hosts)
        };
        Self::start_opts(bins, netmaster_args, opts)
    }

    /// The test bed `opts` describes, netmaster started with `netmaster_args`.
    pub fn start_opts(
        bins: Binaries,
        netmaster_args: &[&str],
        opts: Options,
    ) -> Result<Cluster, String> {
        let Options {
            hosts,
            agents,
            start_agents,
            netmasters,
            security,
            datapath,
        } = opts;
        reap_tmp();
        let tb = Testbed::new(hosts).map_err(|e| format!("testbed: {e}"))?;
        let tmp = tempfile::Builder::new()
            .prefix(&format!("{TMP_PREFIX}{}-", std::process::id()))
            .tempdir()
            .map_err(|e| e.to_string())?;
        let mut ovs = Vec::new();
        if datapath == TestDatapath::Ovs {
            let hub = tb
                .hosts
                .first()
                .and_then(|h| h.netns.parent())
                .map(|d| d.join(format!("{}-hub", tb.prefix)));
            for (i, h) in tb.hosts.iter().enumerate() {
                let dir = tmp.path().join(host_name(i)).join("ovs");
                ovs.push(OvsHost::start(&h.netns, &dir, h.vtep)?);
                // Every OVS host also gets a VLAN trunk to the others (`--vlan-uplink`).
                if let Some(hub) = &hub {
                    ovs::add_trunk(hub, &h.netns, i)?;
                }
            }
        }
        let port = free_port()?;
        let mut nm_args: Vec<String> = netmaster_args.iter().map(|a| a.to_string()).collect();
        let mut http = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(20)));
        let creds = match security {
            Security::Plain => None,
            Security::TlsAuth => {
                let creds = Credentials::make(&bins.netmaster, tmp.path(), hosts)?;
                nm_args.extend(creds.netmaster_args());
                let files = contiv_tls::ClientFiles {
                    ca: Some(creds.ca()),
                    ..Default::default()
                };
                http =
                    http.tls_config(contiv_tls::client_config(&files).map_err(|e| e.to_string())?);
                Some(creds)
            }
        };
        let scheme = if creds.is_some() { "https" } else { "http" };
        let http = http.build().into();
        let netmaster = spawn_netmaster(&bins, tmp.path(), 0, port, &nm_args)?;
        let mut c = Cluster {
            agents: Vec::new(),
            netmaster,
            port,
            standbys: Vec::new(),
            nm_args,
            url: format!("{scheme}://127.0.0.1:{port}"),
            bins,
            ovs,
            datapath,
            tb,
            tmp,
            http,
            agent_settings: agents,
            docker_mode: false,
            creds,
            token: Mutex::new(None),
        };
        c.wait_netmaster()?;
        c.relogin()?;
        for i in 1..netmasters.max(1) {
            let port = free_port()?;
            let p = spawn_netmaster(&c.bins, c.tmp.path(), i, port, &c.nm_args)?;
            c.standbys.push((p, port));
        }
        let agents = if start_agents { hosts } else { 0 };
        for i in 0..agents {
            let p = c.spawn_agent(i)?;
            c.agents.push(p);
        }
        for i in 0..agents {
            c.wait_agent(i)?;
        }
        Ok(c)
    }

    fn wait_netmaster(&self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if matches!(self.api("GET", "/version", None), Ok((200, _))) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(30));
        }
        Err("netmaster did not become ready".into())
    }

    /// The hostname agent `i` registers as.
    pub fn host_name(&self, i: usize) -> String {
        host_name(i)
    }

    fn host_dir(&self, i: usize) -> PathBuf {
        self.tmp.path().join(self.host_name(i))
    }

    /// The CNI socket of host `i`'s agent.
    pub fn socket(&self, i: usize) -> PathBuf {
        self.host_dir(i).join("cni.sock")
    }

    /// The directory holding host `i`'s Docker plugin socket (`netplugin.sock`): what a
    /// dockerd of that host must see as its `/run/docker/plugins`.
    pub fn docker_plugin_dir(&self, i: usize) -> PathBuf {
        self.host_dir(i).join("plugins")
    }

    /// Where host `i`'s dockerd (if a test starts one) serves the Engine API.
    pub fn docker_socket(&self, i: usize) -> PathBuf {
        self.host_dir(i).join("docker.sock")
    }

    /// Restarts every agent with (or without) `--docker-mode` against its host's
    /// [`Cluster::docker_socket`].
    pub fn set_docker_mode(&mut self, on: bool) -> Result<(), String> {
        self.docker_mode = on;
        for i in 0..self.agents.len() {
            self.restart_agent(i)?;
        }
        Ok(())
    }

    /// The pending-delete spool of host `i`.
    pub fn pending_dir(&self, i: usize) -> PathBuf {
        self.host_dir(i).join("pending")
    }

    /// The state dir of host `i`'s agent (its attachment journal: `attachments.log`).
    pub fn state_dir(&self, i: usize) -> PathBuf {
        self.host_dir(i).join("state")
    }

    /// The agent log of host `i`.
    pub fn agent_log(&self, i: usize) -> String {
        std::fs::read_to_string(self.host_dir(i).join("agent.log")).unwrap_or_default()
    }

    fn spawn_agent(&self, i: usize) -> Result<Proc, String> {
        let h = &self.tb.hosts[i];
        let dir = self.host_dir(i);
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let mut cmd = Command::new(&self.bins.netplugin);
        cmd.arg("--host").arg(self.host_name(i));
        cmd.arg("--vtep-ip").arg(h.vtep.to_string());
        cmd.arg("--netmaster").arg(self.netmaster_urls().join(","));
        cmd.arg("--host-netns").arg(&h.netns);
        match self.ovs.get(i) {
            Some(host_ovs) => {
                cmd.arg("--underlay-if").arg(ovs::PHY_BRIDGE);
                cmd.args(["--datapath", "ovs", "--ovsdb", &host_ovs.db()]);
                cmd.args(["--ovs-bridge", ovs::BRIDGE]);
                cmd.arg("--ovs-openflow-port")
                    .arg(ovs::OPENFLOW_PORT.to_string());
                cmd.arg("--vlan-uplink").arg(ovs::TRUNK_IF);
                // Policy and service balancing are the pipeline's own (`auto` = openflow).
            }
            None => {
                cmd.arg("--underlay-if").arg("ul0");
            }
        }
        cmd.arg("--state-dir").arg(self.state_dir(i));
        cmd.arg("--cni-socket").arg(self.socket(i));
        cmd.arg("--cni-pending-dir").arg(self.pending_dir(i));
        cmd.arg("--docker-plugin-socket")
            .arg(self.docker_plugin_dir(i).join("netplugin.sock"));
        cmd.arg("--ns-prefix").arg(&h.ns_prefix);
        // Always: the Docker endpoint sweep reads the host's dockerd when it runs.
        cmd.arg("--docker-host").arg(self.docker_socket(i));
        if self.docker_mode {
            cmd.arg("--docker-mode");
        }
        if let Some(creds) = &self.creds {
            let (cert, key) = creds.host_cert(i);
            cmd.arg("--tls-ca").arg(creds.ca());
            cmd.arg("--tls-cert").arg(cert);
            cmd.arg("--tls-key").arg(key);
        }
        if self.agent_settings == AgentSettings::Test {
            cmd.arg("--reconcile-interval").arg("3");
            cmd.arg("--heartbeat-interval").arg("1");
            // Our crates at debug for test diagnostics; third-party crates (ureq, hyper,
            // netlink) at info: their debug output was ~25 lines per CNI ADD.
            cmd.arg("--log-level").arg(
                "info,contiv_netplugin=debug,contiv_datapath_linux=debug,contiv_datapath=debug,contiv_datapath_ovs=debug",
            );
        }
        spawn(cmd, &dir.join("agent.log"))
    }

    /// Waits until agent `i` accepts connections on its CNI socket (it binds after start-up).
    pub fn wait_agent(&mut self, i: usize) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if !self.agents[i].is_running() {
                return Err(format!("agent {i} exited:\n{}", self.agent_log(i)));
            }
            if std::os::unix::net::UnixStream::connect(self.socket(i)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(30));
        }
        Err(format!("agent {i} not ready:\n{}", self.agent_log(i)))
    }

    /// SIGKILL of agent `i` (no clean-up chance).
    pub fn kill_agent(&mut self, i: usize) {
        self.agents[i].kill();
    }

    /// Starts agent `i` again and waits until it serves.
    pub fn restart_agent(&mut self, i: usize) -> Result<(), String> {
        self.agents[i].kill();
        self.agents[i] = self.spawn_agent(i)?;
        self.wait_agent(i)
    }

    /// URL of every netmaster (the primary first).
    pub fn netmaster_urls(&self) -> Vec<String> {
        std::iter::once(self.port)
            .chain(self.standbys.iter().map(|(_, p)| *p))
            .map(|p| format!("{}://127.0.0.1:{p}", self.scheme()))
            .collect()
    }

    fn scheme(&self) -> &'static str {
        if self.creds.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// SIGKILL of netmaster `i` (0: the primary).
    pub fn kill_netmaster_at(&mut self, i: usize) {
        match i {
            0 => self.netmaster.kill(),
            i => {
                if let Some((p, _)) = self.standbys.get_mut(i - 1) {
                    p.kill();
                }
            }
        }
    }

    /// Sends the test bed's REST calls to netmaster `i` from now on.
    pub fn use_netmaster(&mut self, i: usize) {
        if let Some(url) = self.netmaster_urls().get(i) {
            self.url.clone_from(url);
        }
    }

    /// SIGKILL of netmaster.
    pub fn kill_netmaster(&mut self) {
        self.netmaster.kill();
    }

    /// Starts netmaster again (same port, same data) and waits until it answers.
    pub fn start_netmaster(&mut self) -> Result<(), String> {
        self.netmaster.kill();
        self.netmaster = spawn_netmaster(&self.bins, self.tmp.path(), 0, self.port, &self.nm_args)?;
        self.wait_netmaster()
    }

    /// The loopback port netmaster 0 listens on.
    pub fn netmaster_port(&self) -> u16 {
        self.port
    }

    /// PID of the netmaster process.
    pub fn netmaster_pid(&self) -> Option<u32> {
        self.netmaster.pid()
    }

    /// PID of agent `i`, if running.
    pub fn agent_pid(&self, i: usize) -> Option<u32> {
        self.agents[i].pid()
    }

    /// One netmaster REST call with `Accept: application/problem+json`, as the admin (with
    /// [`Security::TlsAuth`]; a token that stopped working is renewed once).
    pub fn api(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, String), String> {
        let token = self.token();
        let first = self.api_as(token.as_deref(), method, path, body)?;
        if first.0 != 401 || token.is_none() {
            return Ok(first);
        }
        // Expired (a test's short --token-ttl) or its user changed: log in again, once.
        self.relogin()?;
        self.api_as(self.token().as_deref(), method, path, body)
    }

    /// One REST call with `token` in `X-Auth-Token` (none: no credentials at all).
    pub fn api_as(
        &self,
        token: Option<&str>,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, String), String> {
        self.call(&self.http, &self.url, token, method, path, body)
    }

    /// `GET` returning JSON from netmaster `i` (0: the primary), as the admin.
    pub fn get_json_at(&self, i: usize, path: &str) -> Result<Value, String> {
        let base = self
            .netmaster_urls()
            .get(i)
            .cloned()
            .ok_or_else(|| format!("no netmaster {i}"))?;
        match self.call(
            &self.http,
            &base,
            self.token().as_deref(),
            "GET",
            path,
            None,
        )? {
            (200, text) => serde_json::from_str(&text).map_err(|e| e.to_string()),
            (code, text) => Err(format!("GET {path}: {code} {text}")),
        }
    }

    fn call(
        &self,
        http: &ureq::Agent,
        base: &str,
        token: Option<&str>,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, String), String> {
        let url = format!("{base}{path}");
        let mut req = ureq::http::Request::builder()
            .method(method)
            .uri(&url)
            .header("Accept", "application/problem+json");
        if let Some(t) = token {
            req = req.header("X-Auth-Token", t);
        }
        let resp = match body {
            Some(b) => {
                req = req.header("Content-Type", "application/json");
                http.run(req.body(b.to_string()).map_err(|e| e.to_string())?)
            }
            // POST without a body (refresh, key rotation) included.
            None => http.run(req.body(()).map_err(|e| e.to_string())?),
        };
        let mut resp = resp.map_err(|e| e.to_string())?;
        let code = resp.status().as_u16();
        let text = resp
            .body_mut()
            .read_to_string()
            .map_err(|e| e.to_string())?;
        Ok((code, text))
    }

    fn post_ok(&self, path: &str, body: Value) -> Result<(), String> {
        match self.api("POST", path, Some(&body))? {
            (200 | 201, _) => Ok(()),
            (code, text) => Err(format!("POST {path}: {code} {text}")),
        }
    }

    /// Creates a tenant (the `default` tenant always exists).
    pub fn create_tenant(&self, tenant: &str) -> Result<(), String> {
        self.post_ok(
            &format!("/api/v1/tenants/{tenant}/"),
            json!({"tenantName": tenant}),
        )
    }

    /// Creates a VXLAN network `tenant:name` with `subnet` and gateway `gw`.
    pub fn create_network(
        &self,
        tenant: &str,
        name: &str,
        subnet: &str,
        gw: &str,
    ) -> Result<(), String> {
        let body = json!({"tenantName": tenant, "networkName": name, "encap": "vxlan",
            "subnet": subnet, "gateway": gw});
        self.post_ok(&format!("/api/v1/networks/{tenant}:{name}/"), body)
    }

    /// Deletes network `tenant:name`.
    pub fn delete_network(&self, tenant: &str, name: &str) -> Result<(), String> {
        match self.api(
            "DELETE",
            &format!("/api/v1/networks/{tenant}:{name}/"),
            None,
        )? {
            (200, _) => Ok(()),
            (code, text) => Err(format!("DELETE network: {code} {text}")),
        }
    }

    /// `GET` returning JSON.
    pub fn get_json(&self, path: &str) -> Result<Value, String> {
        match self.api("GET", path, None)? {
            (200, text) => serde_json::from_str(&text).map_err(|e| e.to_string()),
            (code, text) => Err(format!("GET {path}: {code} {text}")),
        }
    }

    fn netconf(&self, host: usize, tenant: &str, network: &str, group: Option<&str>) -> Value {
        let mut conf = json!({"cniVersion": "1.1.0", "name": "contiv", "type": "contivk8s",
            "agentSocket": self.socket(host), "pendingDeleteDir": self.pending_dir(host),
            "tenant": tenant, "network": network});
        if let Some(g) = group {
            conf["group"] = json!(g);
        }
        conf
    }

    /// Runs contivk8s with `command` for a container; returns (exit code, stdout).
    pub fn cni(
        &self,
        host: usize,
        command: &str,
        cid: &str,
        netns: &Path,
        tenant: &str,
        network: &str,
    ) -> Result<(i32, String), String> {
        self.cni_in_group(host, command, cid, netns, (tenant, network, None))
    }

    /// [`Cluster::cni`] with an endpoint group (`(tenant, network, group)`).
    pub fn cni_in_group(
        &self,
        host: usize,
        command: &str,
        cid: &str,
        netns: &Path,
        (tenant, network, group): (&str, &str, Option<&str>),
    ) -> Result<(i32, String), String> {
        self.cni_with_args(host, command, cid, netns, (tenant, network, group), "")
    }

    /// [`Cluster::cni_in_group`] with `CNI_ARGS` (`K=V;K=V`: labels of the endpoint).
    pub fn cni_with_args(
        &self,
        host: usize,
        command: &str,
        cid: &str,
        netns: &Path,
        (tenant, network, group): (&str, &str, Option<&str>),
        cni_args: &str,
    ) -> Result<(i32, String), String> {
        let mut child = Command::new(&self.bins.contivk8s)
            .env("CNI_COMMAND", command)
            .env("CNI_ARGS", cni_args)
            .env("CNI_CONTAINERID", cid)
            .env("CNI_NETNS", netns)
            .env("CNI_IFNAME", "eth0")
            .env("CNI_PATH", "/usr/lib/cni")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("spawn contivk8s: {e}"))?;
        let conf = self.netconf(host, tenant, network, group).to_string();
        child.stdin.take().map(|mut s| s.write_all(conf.as_bytes()));
        let out = child.wait_with_output().map_err(|e| e.to_string())?;
        Ok((
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into(),
        ))
    }

    /// A new workload namespace on host `host` attached to `tenant:network` (CNI ADD).
    pub fn add_workload(
        &self,
        host: usize,
        name: &str,
        tenant: &str,
        network: &str,
    ) -> Result<Workload, String> {
        self.add_workload_in_group(host, name, tenant, network, None)
    }

    /// A new workload namespace on host `host` attached to `tenant:network` in endpoint group
    /// `group` (CNI ADD with the group in the network config).
    pub fn add_workload_in_group(
        &self,
        host: usize,
        name: &str,
        tenant: &str,
        network: &str,
        group: Option<&str>,
    ) -> Result<Workload, String> {
        let netns = self
            .tb
            .workload(name)
            .map_err(|e| format!("workload netns: {e}"))?;
        self.attach(host, name, &netns, (tenant, network, group))
    }

    /// CNI ADD of the workload namespace `netns` (named `name`) to `(tenant, network, group)`.
    pub fn attach(
        &self,
        host: usize,
        name: &str,
        netns: &Path,
        ident: (&str, &str, Option<&str>),
    ) -> Result<Workload, String> {
        self.attach_labelled(host, name, netns, ident, &[])
    }

    /// A new workload namespace on host `host` attached to `tenant:network` with `labels`
    /// (passed as `CNI_ARGS`, as a runtime does).
    pub fn add_labelled(
        &self,
        host: usize,
        name: &str,
        (tenant, network): (&str, &str),
        labels: &[(&str, &str)],
    ) -> Result<Workload, String> {
        let netns = self
            .tb
            .workload(name)
            .map_err(|e| format!("workload netns: {e}"))?;
        self.attach_labelled(host, name, &netns, (tenant, network, None), labels)
    }

    /// [`Cluster::attach`] with `labels` in `CNI_ARGS`.
    pub fn attach_labelled(
        &self,
        host: usize,
        name: &str,
        netns: &Path,
        (tenant, network, group): (&str, &str, Option<&str>),
        labels: &[(&str, &str)],
    ) -> Result<Workload, String> {
        let cid = format!("{}-{name}", self.tb.prefix);
        let args: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let (code, out) = self.cni_with_args(
            host,
            "ADD",
            &cid,
            netns,
            (tenant, network, group),
            &args.join(";"),
        )?;
        if code != 0 {
            return Err(format!(
                "ADD {name}: exit {code}: {out}\n{}",
                self.agent_log(host)
            ));
        }
        let result: Value =
            serde_json::from_str(&out).map_err(|e| format!("ADD result {out:?}: {e}"))?;
        let cidr = result["ips"][0]["address"].as_str().unwrap_or_default();
        let ip = cidr
            .split('/')
            .next()
            .unwrap_or_default()
            .parse()
            .map_err(|_| format!("ADD result without ip: {out}"))?;
        Ok(Workload {
            name: name.into(),
            host,
            container_id: cid,
            netns: netns.to_path_buf(),
            tenant: tenant.into(),
            network: network.into(),
            group: group.map(str::to_string),
            ip,
            result,
        })
    }

    /// CNI DEL of a workload (its namespace stays).
    pub fn del_workload(&self, w: &Workload) -> Result<(), String> {
        let (code, out) = self.cni_in_group(
            w.host,
            "DEL",
            &w.container_id,
            &w.netns,
            (&w.tenant, &w.network, w.group.as_deref()),
        )?;
        if code != 0 {
            return Err(format!("DEL {}: exit {code}: {out}", w.name));
        }
        Ok(())
    }

    /// Deletes a workload's namespace (the container died without a CNI DEL).
    pub fn remove_workload_netns(&self, w: &Workload) -> Result<(), String> {
        contiv_datapath_linux::netns::delete_named(&w.netns).map_err(|e| e.to_string())
    }

    /// The datapath the agents run.
    pub fn datapath(&self) -> TestDatapath {
        self.datapath
    }

    /// Host `host`'s OVS, in a cluster on [`TestDatapath::Ovs`].
    pub fn ovs(&self, host: usize) -> Option<&OvsHost> {
        self.ovs.get(host)
    }

    /// Path of `tenant`'s router namespace on host `host`.
    pub fn tenant_ns(&self, host: usize, tenant: &str) -> PathBuf {
        LinuxDatapath::new(self.tb.hosts[host].config()).tenant_netns_path(tenant)
    }

    /// netmaster's endpoint id of a workload.
    pub fn endpoint_id(&self, w: &Workload) -> String {
        format!("{}.{}-{}", w.network, w.tenant, w.container_id)
    }
}

/// Polls `f` every 100 ms until it is true or `timeout` passes.
pub fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A TCP connection kept open between two workloads (client side in `client`'s namespace).
pub struct TcpSession {
    client: TcpStream,
    server: TcpStream,
}

impl TcpSession {
    /// Listens in `server_ns` on `ip:port`, connects from `client_ns`, accepts.
    pub fn open(
        client_ns: &Path,
        server_ns: &Path,
        ip: Ipv4Addr,
        port: u16,
    ) -> Result<TcpSession, String> {
        let addr = SocketAddr::from((ip, port));
        let listener = in_netns(server_ns, || TcpListener::bind(addr))?
            .map_err(|e| format!("bind {addr}: {e}"))?;
        let client = in_netns(client_ns, || {
            TcpStream::connect_timeout(&addr, Duration::from_secs(3))
        })?
        .map_err(|e| format!("connect {addr}: {e}"))?;
        let (server, _) = listener.accept().map_err(|e| format!("accept: {e}"))?;
        for s in [&client, &server] {
            s.set_read_timeout(Some(Duration::from_secs(3)))
                .map_err(|e| e.to_string())?;
        }
        Ok(TcpSession { client, server })
    }

    /// Client sends `token`, the server echoes it back; returns what the client got.
    pub fn exchange(&mut self, token: &str) -> Result<String, String> {
        let n = token.len();
        self.client
            .write_all(token.as_bytes())
            .map_err(|e| format!("client write: {e}"))?;
        let mut buf = vec![0; n];
        self.server
            .read_exact(&mut buf)
            .map_err(|e| format!("server read: {e}"))?;
        self.server
            .write_all(&buf)
            .map_err(|e| format!("server write: {e}"))?;
        let mut back = vec![0; n];
        self.client
            .read_exact(&mut back)
            .map_err(|e| format!("client read: {e}"))?;
        Ok(String::from_utf8_lossy(&back).into())
    }
}
