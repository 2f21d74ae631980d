//! netmaster: Contiv's control plane. Serves Contiv's REST object model, allocates resources
//! (VLANs, VXLAN ids, addresses, group ids) and owns all desired state, kept in a
//! [`contiv_store::StateStore`].
//!
//! Layers: [`http`] (routes, error rendering) → [`engine`] (one writer, change sets, reads from
//! memory) → [`rules`] (Contiv's per-object rules) over [`state`] (the in-memory view of the store).

pub mod audit;
pub mod authz;
pub mod certs;
pub mod changeset;
pub mod config;
pub mod endpoint;
pub mod engine;
pub mod error;
pub mod http;
pub mod ldap;
pub mod migrate;
pub use contiv_api::keys;
pub mod openapi;
pub mod plugin;
pub mod rules;
pub mod state;
pub mod users;

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use contiv_store::{open_store, StoreConfig, SyncMode};
use tracing::{error, info};

use config::{Flags, SyncFlag};
use engine::{Engine, EngineOptions};
use http::{AppState, ServerInfo};

/// Entry point of the thin `netmaster` binary.
pub fn cli_main() -> ExitCode {
    let flags = Flags::parse();
    init_logging(&flags.log_level);
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if flags.workers > 0 {
        builder.worker_threads(flags.workers);
    }
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("netmaster: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match flags.command.clone() {
        Some(config::Command::Migrate { from, to }) => {
            runtime.block_on(migrate::run(&from, &to, flags.etcd_tls()))
        }
        Some(config::Command::Certs { action }) => certs_command(action),
        None => runtime.block_on(run(flags)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e:#}");
            eprintln!("netmaster: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `netmaster certs init|host`: writes the files and lists them with their serials.
fn certs_command(action: config::CertsAction) -> anyhow::Result<()> {
    let issued = match action {
        config::CertsAction::Init {
            dir,
            hosts,
            netmaster_names,
            force,
        } => {
            let issued = certs::init(&certs::InitOptions {
                dir: dir.clone(),
                hosts,
                netmaster_names,
                force,
            })?;
            println!("CA: {}", dir.join("ca.pem").display());
            issued
        }
        config::CertsAction::Host { dir, name } => vec![certs::add_host(&dir, &name)?],
    };
    for i in issued {
        println!(
            "{} (key {}), serial {}",
            i.cert.display(),
            i.key.display(),
            i.serial
        );
    }
    Ok(())
}

fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // colour codes only for a terminal (not in log files, nor in dockerd's log of the plugin)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// Opens the store, loads state, serves until SIGINT/SIGTERM.
pub async fn run(flags: Flags) -> anyhow::Result<()> {
    let etcd = flags.etcd().map_err(|e| anyhow::anyhow!(e))?;
    let store_cfg = if etcd.is_empty() {
        let sync = match flags.sync {
            SyncFlag::Normal => SyncMode::Normal,
            SyncFlag::Full => SyncMode::Full,
        };
        StoreConfig::Embedded {
            dir: flags.data_dir.clone(),
            sync,
        }
    } else {
        StoreConfig::Etcd {
            endpoints: etcd,
            tls: flags.etcd_tls(),
        }
    };
    let store = open_store(&store_cfg)
        .await
        .context("opening the state store")?;
    let options = EngineOptions {
        fwd_mode: flags.fwdmode.as_str().into(),
        infra: flags.infra.as_str().into(),
        cluster_mode: flags.mode.as_str().into(),
        net_mode: format!("{:?}", flags.netmode).to_lowercase(),
        node_grace: std::time::Duration::from_secs(flags.node_grace),
    };
    let tls = match flags.tls_server() {
        Some(files) => Some(contiv_tls::server_config(&files).context("TLS configuration")?),
        None => None,
    };
    http::forward::configure(&flags.tls_forwarding()).context("TLS of forwarding")?;
    let agent_auth = match &flags.tls_client_ca {
        Some(_) => Some(
            http::auth::AgentAuth::start(flags.tls_deny_list.clone())
                .map_err(anyhow::Error::msg)?,
        ),
        None => None,
    };
    // Each connection holds a file descriptor: take all the process may have (see serve.rs).
    let file_limit = http::serve::raise_file_limit();
    let listener = tokio::net::TcpListener::bind(&flags.external_address)
        .await
        .with_context(|| format!("listening on {}", flags.external_address))?;
    let local = listener
        .local_addr()
        .context("reading the listen address")?;
    if tls.is_none() {
        let plain = http::listen::plain_http_allowed(local, flags.insecure_http)
            .map_err(anyhow::Error::msg)?;
        if plain == http::listen::PlainHttp::Insecure {
            tracing::warn!(
                "!!! INSECURE: serving plain HTTP without authentication on {local} \
                 (--insecure-http): anyone who reaches this address can read and change all \
                 state and act as any host agent; use --tls-cert/--tls-key/--tls-client-ca !!!"
            );
        }
    }
    let plain_loopback = match &flags.plain_loopback {
        Some(addr) => {
            let at = http::listen::plain_loopback_addr(addr).map_err(anyhow::Error::msg)?;
            let tcp = tokio::net::TcpListener::bind(at)
                .await
                .with_context(|| format!("listening on {at} (--plain-loopback)"))?;
            Some(tcp)
        }
        None => None,
    };
    let shared = matches!(store_cfg, StoreConfig::Etcd { .. });
    let engine = if shared {
        // Several netmasters may share etcd: this one leads only when elected. Others reach it
        // at the internal address (or the local one; 0.0.0.0 means this host's loopback).
        let reach = flags.internal_address.clone().unwrap_or_else(|| {
            if local.ip().is_unspecified() {
                format!("127.0.0.1:{}", local.port())
            } else {
                local.to_string()
            }
        });
        let scheme = if tls.is_some() { "https" } else { "http" };
        let me =
            engine::leader::Member::new(&format!("{scheme}://{reach}"), env!("CARGO_PKG_VERSION"));
        let engine = Engine::open_with(store, options, engine::leader::Leadership::elected(me))
            .await
            .map_err(|e| anyhow::anyhow!("loading state: {e}"))?;
        engine.start_election(std::time::Duration::from_secs(flags.leader_ttl));
        // Serve once the first election round settled (this one leads, or knows who does), so a
        // client's first request right after start-up is not refused for want of a leader; a
        // cluster without quorum still starts serving reads after a few seconds.
        let mut role = engine.leadership().subscribe();
        let settled =
            |l: &engine::leader::Leadership| l.is_leader() || l.leader_elsewhere().is_some();
        let _ = tokio::time::timeout(std::time::Duration::from_secs(3), async {
            while !settled(engine.leadership()) {
                if role.changed().await.is_err() {
                    break;
                }
            }
        })
        .await;
        engine
    } else {
        Engine::open(store, options)
            .await
            .map_err(|e| anyhow::anyhow!("loading state: {e}"))?
    };
    let info = ServerInfo {
        listen: flags
            .internal_address
            .clone()
            .unwrap_or_else(|| local.to_string()),
        version: env!("CARGO_PKG_VERSION"),
        git_commit: option_env!("CONTIV_GIT_COMMIT").unwrap_or("unknown"),
        build_time: option_env!("CONTIV_BUILD_TIME").unwrap_or("unknown"),
    };
    let users = if flags.auth {
        let bootstrap = users::Bootstrap {
            password_file: flags.admin_password_file.clone(),
            state_dir: flags.data_dir.clone(),
        };
        let ttl = std::time::Duration::from_secs(flags.token_ttl);
        let directory = match flags.ldap() {
            Some(cfg) => {
                info!(url = %cfg.url, base = %cfg.user_base, "LDAP/AD login on");
                Some(ldap::Directory::new(cfg).map_err(anyhow::Error::msg)?)
            }
            None => None,
        };
        let users = users::Users::start(engine.store(), ttl, &bootstrap, directory)
            .await
            .context("users and token keys")?;
        let e = engine.clone();
        users.set_fence(Box::new(move || e.leadership().fence().map_err(|_| ())));
        Some(users)
    } else {
        None
    };
    let audit = match flags.audit_max_size {
        0 => None,
        max => Some(
            audit::AuditLog::start(engine.store(), max)
                .await
                .context("opening the audit log")?,
        ),
    };
    tokio::spawn(expire_nodes_forever(engine.clone()));
    let state = AppState {
        engine,
        info: Arc::new(info),
        agent_auth,
        users,
        audit,
    };
    let limits = http::limits::RequestLimits {
        max_body_bytes: flags.limits.max_body_bytes,
        max_path_bytes: flags.limits.max_path_bytes,
        rate_per_sec: flags.limits.rate_limit,
        max_objects_per_tenant: flags.limits.max_objects_per_tenant,
    };
    let mut app = http::limits::apply(http::router(state.clone()), state, limits);
    let max_connections = http::serve::connection_cap(flags.limits.max_connections, file_limit);
    let mut endpoints = vec![http::serve::Endpoint {
        tcp: listener,
        tls: tls.clone(),
        via: http::listen::Via::Main,
        owner_lookup: false,
    }];
    if let Some(tcp) = plain_loopback {
        let at = tcp.local_addr().context("reading the listen address")?;
        tracing::warn!(
            "also serving plain HTTP on {at} (--plain-loopback): any process on this host may \
             call the API there (with --auth, still only with a token); agent calls are refused"
        );
        app = app.layer(axum::middleware::from_fn(http::listen::agents_need_tls));
        if flags.plain_loopback_root_admin {
            tracing::warn!(
                "!!! ROOT IS ADMIN on {at} (--plain-loopback-root-admin): any process of uid 0 \
                 on this host calls the API there as admin without a token (audit user \
                 {}) !!!",
                http::listen::LOCAL_ROOT
            );
        }
        endpoints.push(http::serve::Endpoint {
            tcp,
            tls: None,
            via: http::listen::Via::PlainLoopback,
            // Without --auth every caller may do everything: no need to know who.
            owner_lookup: flags.plain_loopback_root_admin && flags.auth,
        });
    }
    info!(
        %local,
        store = ?store_cfg,
        tls = tls.is_some(),
        client_certs = flags.tls_client_ca.is_some(),
        auth = flags.auth,
        max_connections,
        file_limit,
        "netmaster serving"
    );
    let conn_limits = http::serve::ConnLimits {
        head_timeout: std::time::Duration::from_secs(flags.limits.head_timeout),
        max_head_bytes: usize::try_from(flags.limits.max_head_bytes).unwrap_or(usize::MAX),
    };
    let slots = Arc::new(tokio::sync::Semaphore::new(max_connections));
    http::serve::serve(endpoints, app, conn_limits, slots, shutdown_signal()).await;
    info!("netmaster stopped");
    Ok(())
}

/// Drops nodes whose agents stopped sending heartbeats.
async fn expire_nodes_forever(engine: Arc<Engine>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
    loop {
        tick.tick().await;
        match engine.expire_nodes().await {
            Ok(gone) if !gone.is_empty() => info!(?gone, "nodes expired (no heartbeat)"),
            Ok(_) => {}
            Err(e) => tracing::warn!("expiring nodes: {e}"),
        }
    }
}

async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term => {},
    }
}
