//! Wiring of a running agent: builds the parts from the flags, starts the threads (heartbeat,
//! follower, reconciler), does the start-up reconcile and spool replay, then serves the CNI
//! socket until SIGTERM/SIGINT.
//!
//! Threads: heartbeat (registerNode every 10 s), follower (snapshot + watch → mirror, kicks the
//! reconciler), reconciler (a pass per kick, debounced, and every `--reconcile-interval`, with
//! the spool replay), policy loop and reporter, and the tokio runtime serving the CNI socket
//! (requests on its blocking pool) and, with `--metrics-address`, `GET /metrics`. State: netmaster's in the mirror (memory), attachments in the record store (disk),
//! the datapath's in the kernel (read back with `observe`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use contiv_api::agent::NodeInfo;
use contiv_datapath::{Datapath, PolicyDriver, QosDriver, ServiceDriver};

use crate::agent::{Agent, NetnsProbe, Parts, Settings};
use crate::config::{ConfigError, Flags};
use crate::follow::{follow, heartbeat, Stop};
use crate::metrics::Metrics;
use crate::netmaster::FailoverNetmaster;
use crate::records::{RecordError, RecordStore};

/// Why the agent could not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Records(#[from] RecordError),
    #[error("cni socket {path}: {source}")]
    Socket {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("remounting /proc/sys read-write: {0}")]
    ProcSys(#[source] std::io::Error),
    #[error("datapath: {0}")]
    Datapath(String),
    #[error("docker plugin socket {path}: {source}")]
    DockerSocket {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    DockerNetworks(#[from] crate::cnm::store::StoreError),
    #[error("metrics address {addr}: {source}")]
    Metrics {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// How long start-up waits for netmaster's first snapshot before reconciling without it.
const FIRST_SNAPSHOT_WAIT: Duration = Duration::from_secs(5);
/// Changes arriving within this window are handled by one pass.
const DEBOUNCE: Duration = Duration::from_millis(50);

/// The backends the agent drives, chosen from the flags by the binary's factory (the agent
/// library names no driver).
pub struct Drivers {
    /// Short name reported to netmaster ("linux", "ovs").
    pub name: &'static str,
    pub dp: Arc<dyn Datapath>,
    pub pol: Arc<dyn PolicyDriver>,
    /// Enforces netprofiles (`contiv_datapath::NoQos`: none).
    pub qos: Arc<dyn QosDriver>,
    /// Balances serviceLB VIPs over their providers (`contiv_datapath::NoServices`: none).
    pub svc: Arc<dyn ServiceDriver>,
    /// Tells whether a workload network namespace still exists.
    pub netns_alive: NetnsProbe,
    /// Binds DNS listeners in tenant namespaces (`None`: this datapath serves no DNS).
    pub dns: Option<Arc<dyn crate::dns::Binder>>,
}

/// The factory the binary passes in.
/// An error means the chosen datapath cannot run here (said why); nothing was started.
pub type DriverFactory = fn(&Flags) -> Result<Drivers, RunError>;

/// Builds the agent from the flags and its drivers (no thread started yet).
pub fn build(flags: &Flags, drivers: Drivers) -> Result<Arc<Agent>, RunError> {
    flags.check()?;
    let settings = Settings {
        host: flags.hostname(),
        vtep_ip: flags.vtep_ip,
        fwd_mode: flags.fwd_mode(),
        pending_dir: flags.cni_pending_dir.clone(),
        mirror_wait: Duration::from_secs(3),
        policy_wait: crate::policy::ADD_POLICY_WAIT,
        datapath: drivers.name,
        dns: flags.dns == crate::config::DnsMode::On && drivers.dns.is_some(),
    };
    Ok(Agent::new(Parts {
        settings,
        dp: drivers.dp,
        pol: drivers.pol,
        qos: drivers.qos,
        nm: Arc::new(FailoverNetmaster::with_tls(
            &FailoverNetmaster::parse_urls(&flags.netmaster),
            flags.tls_config()?,
        )),
        records: RecordStore::open(&flags.state_dir)?,
        netns_alive: drivers.netns_alive,
    }))
}

/// Starts the heartbeat and follower threads.
pub fn start_netmaster_threads(agent: &Arc<Agent>, stop: &Arc<Stop>, heartbeat_every: Duration) {
    let node = NodeInfo {
        hostname: agent.settings.host.clone(),
        vtep_ip: agent.settings.vtep_ip.to_string(),
        datapath: agent.settings.datapath.into(),
        agent_version: env!("CARGO_PKG_VERSION").into(),
    };
    let (a, s) = (agent.clone(), stop.clone());
    std::thread::spawn(move || heartbeat(a.nm.as_ref(), &node, &a.link, &s, heartbeat_every));
    let (a, s) = (agent.clone(), stop.clone());
    std::thread::spawn(move || {
        let kick = || {
            a.policy.kick.kick();
            a.kick.kick();
        };
        follow(a.nm.as_ref(), &a.mirror, &a.link, &s, &kick)
    });
}

/// The reconciler loop: a pass per (debounced) kick that programs only what changed
/// (`Agent::reconcile_changes`), a full pass (the datapath read back) every `interval`, and the
/// spool replay with each full pass.
/// `sweep`: the Docker endpoint sweep, run after every full pass.
pub fn reconcile_loop(
    agent: &Agent,
    stop: &Stop,
    interval: Duration,
    sweep: Option<&crate::cnm::sweep::Sweep>,
) {
    let mut last_full = Instant::now();
    while !stop.is_raised() {
        let wait = interval.saturating_sub(last_full.elapsed());
        if agent.kick.wait(wait) {
            std::thread::sleep(DEBOUNCE);
            agent.kick.wait(Duration::ZERO);
        }
        if stop.is_raised() {
            return;
        }
        if last_full.elapsed() >= interval {
            agent.reconcile();
            agent.replay_spool();
            if let Some(s) = sweep {
                s.run(agent);
            }
            last_full = Instant::now();
        } else {
            agent.reconcile_changes();
        }
    }
}

/// Start-up: first snapshot (bounded wait), one reconcile pass, the spool replay.
pub fn start_up(agent: &Agent) {
    if !agent.mirror.wait_for(FIRST_SNAPSHOT_WAIT, |_| true) {
        tracing::warn!("netmaster not reached yet: reconciling local state only");
    }
    let report = agent.reconcile();
    let replayed = agent.replay_spool();
    tracing::info!(
        stale = report.stale_released,
        replayed,
        errors = report.errors.len(),
        "start-up reconcile done"
    );
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {},
        _ = int.recv() => {},
    }
}

/// Safety-net period of the policy loop (changes trigger a pass at once).
const POLICY_INTERVAL: Duration = Duration::from_secs(30);

/// Starts the policy loop (its passes observed by `metrics`, if any) and its reporter.
pub fn start_policy_threads(
    agent: &Arc<Agent>,
    stop: &Arc<Stop>,
    metrics: Option<Arc<Metrics>>,
) -> std::thread::JoinHandle<()> {
    let (a, s) = (agent.clone(), stop.clone());
    std::thread::spawn(move || crate::policy::report_loop(&a, &s));
    let (a, s) = (agent.clone(), stop.clone());
    std::thread::spawn(move || {
        crate::policy::policy_loop_observed(&a, &s, POLICY_INTERVAL, |p| {
            if let Some(m) = &metrics {
                m.observe_pass(p);
            }
        })
    })
}

/// Runs the agent until SIGTERM/SIGINT, with the drivers `factory` chooses.
pub fn run(flags: &Flags, factory: DriverFactory) -> Result<(), RunError> {
    if flags.remount_proc_sys && crate::proc_sys::make_writable().map_err(RunError::ProcSys)? {
        tracing::info!("/proc/sys remounted read-write (managed plugin)");
    }
    let drivers = factory(flags)?;
    let dns_binder = drivers.dns.clone();
    let svc = drivers.svc.clone();
    let agent = build(flags, drivers)?;
    // Bound before anything starts, so a taken address fails the start.
    let metrics = match flags.metrics_address {
        Some(addr) => {
            let listener =
                crate::metrics::bind(addr).map_err(|source| RunError::Metrics { addr, source })?;
            tracing::info!(address = %addr, "serving metrics on /metrics");
            Some((listener, Arc::new(Metrics::new(agent.clone()))))
        }
        None => None,
    };
    let stop = Stop::new();
    tracing::info!(host = %agent.settings.host, vtep = %agent.settings.vtep_ip, netmaster = %flags.netmaster, "netplugin starting");
    start_netmaster_threads(&agent, &stop, flags.heartbeat());
    start_up(&agent);
    // Docker endpoints dockerd gave up on (agent down past its retries) are released on start
    // and on every full reconcile; only with the Docker plugin on (see cnm::sweep).
    let sweep = flags
        .docker_plugin_socket
        .as_ref()
        .map(|_| crate::cnm::sweep::Sweep::new(flags.docker_host.clone()));
    if let Some(s) = &sweep {
        s.run(&agent);
    }
    let policy = start_policy_threads(&agent, &stop, metrics.as_ref().map(|(_, m)| m.clone()));
    let (a, s, every) = (agent.clone(), stop.clone(), flags.interval());
    let reconciler = std::thread::spawn(move || reconcile_loop(&a, &s, every, sweep.as_ref()));
    let (a, s) = (agent.clone(), stop.clone());
    let services = std::thread::spawn(move || crate::services::service_loop(&a, svc.as_ref(), &s));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(RunError::Runtime)?;
    if let Some((listener, m)) = metrics {
        rt.spawn(async move {
            let never = std::future::pending();
            if let Err(e) = crate::metrics::serve(listener, m, never).await {
                tracing::error!("metrics server stopped: {e}");
            }
        });
    }
    let dns = match dns_binder {
        Some(binder) if agent.settings.dns => Some(
            crate::dns::start(&agent, &stop, binder, flags.dns_upstreams())
                .map_err(RunError::Runtime)?,
        ),
        _ => None,
    };
    let mut docker_mode = None;
    if let Some(path) = &flags.docker_plugin_socket {
        start_docker_plugin(&rt, &agent, flags, path)?;
        if flags.docker_mode {
            let engine = crate::cnm::docker_mode::EngineSocket {
                path: flags.docker_host.clone(),
                driver: plugin_name(path),
            };
            tracing::info!(dockerd = %engine.path.display(), "docker mode: managing docker networks");
            let (a, s) = (agent.clone(), stop.clone());
            docker_mode = Some(std::thread::spawn(move || {
                crate::cnm::docker_mode::docker_mode_loop(&a, &engine, &s)
            }));
        }
    }
    let socket = flags.cni_socket.clone();
    let served = rt.block_on(async {
        let listener = crate::cni_server::bind(&socket).map_err(|source| RunError::Socket {
            path: socket.display().to_string(),
            source,
        })?;
        tracing::info!(socket = %socket.display(), "serving CNI requests");
        crate::cni_server::serve(listener, agent.clone(), shutdown_signal())
            .await
            .map_err(RunError::Runtime)
    });
    stop.raise();
    agent.kick.kick();
    agent.policy.kick.kick();
    agent.policy.report_kick.kick();
    let _ = reconciler.join();
    let _ = policy.join();
    let _ = services.join();
    if let Some(d) = docker_mode {
        let _ = d.join();
    }
    if let Some(d) = dns {
        let _ = d.join();
    }
    let _ = std::fs::remove_file(&flags.cni_socket);
    if let Some(path) = &flags.docker_plugin_socket {
        let _ = std::fs::remove_file(path);
    }
    tracing::info!("netplugin stopped");
    served
}

/// The plugin name dockerd knows a socket plugin by: the socket's file name without `.sock`.
fn plugin_name(path: &std::path::Path) -> String {
    path.file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("netplugin")
        .to_string()
}

/// Serves Docker's network and IPAM driver on `path` (see `cnm`), on `rt`.
fn start_docker_plugin(
    rt: &tokio::runtime::Runtime,
    agent: &Arc<Agent>,
    flags: &Flags,
    path: &std::path::Path,
) -> Result<(), RunError> {
    let networks = crate::cnm::store::DockerNetworks::open(&flags.state_dir)?;
    let mut cnm = crate::cnm::Cnm::new(agent.clone(), networks);
    cnm.swarm = flags.docker_swarm;
    if let Some(ns) = &flags.host_netns {
        cnm = cnm.with_host_netns(ns);
    }
    let cnm = Arc::new(cnm);
    let listener = {
        let _guard = rt.enter();
        crate::cnm::server::bind(path).map_err(|source| RunError::DockerSocket {
            path: path.display().to_string(),
            source,
        })?
    };
    tracing::info!(socket = %path.display(), "serving docker network and ipam driver");
    rt.spawn(async move {
        if let Err(e) = crate::cnm::server::serve(listener, cnm, shutdown_signal()).await {
            tracing::error!("docker plugin server stopped: {e}");
        }
    });
    Ok(())
}
