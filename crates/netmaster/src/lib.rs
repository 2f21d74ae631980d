//! netmaster: Contiv's control plane. Serves Contiv's REST object model, allocates resources
//! (VLANs, VXLAN ids, addresses, group ids) and owns all desired state, kept in a
//! [`contiv_store::StateStore`].
//!
//! Layers: [`http`] (routes, error rendering) → [`engine`] (one writer, change sets, reads from
//! memory) → [`rules`] (Contiv's per-object rules) over [`state`] (the in-memory view of the store).

pub mod changeset;
pub mod config;
pub mod endpoint;
pub mod engine;
pub mod error;
pub mod http;
pub use contiv_api::keys;
pub mod openapi;
pub mod plugin;
pub mod rules;
pub mod state;

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
    match runtime.block_on(run(flags)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e:#}");
            eprintln!("netmaster: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Opens the store, loads state, serves until SIGINT/SIGTERM.
pub async fn run(flags: Flags) -> anyhow::Result<()> {
    let store_cfg = if flags.etcd_endpoints.is_empty() {
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
            endpoints: flags.etcd_endpoints.clone(),
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
    };
    let engine = Engine::open(store, options)
        .await
        .map_err(|e| anyhow::anyhow!("loading state: {e}"))?;
    let listener = tokio::net::TcpListener::bind(&flags.external_address)
        .await
        .with_context(|| format!("listening on {}", flags.external_address))?;
    let local = listener
        .local_addr()
        .context("reading the listen address")?;
    let info = ServerInfo {
        listen: flags
            .internal_address
            .clone()
            .unwrap_or_else(|| local.to_string()),
        version: env!("CARGO_PKG_VERSION"),
        git_commit: option_env!("CONTIV_GIT_COMMIT").unwrap_or("unknown"),
        build_time: option_env!("CONTIV_BUILD_TIME").unwrap_or("unknown"),
    };
    tokio::spawn(expire_nodes_forever(engine.clone()));
    let app = http::router(AppState {
        engine,
        info: Arc::new(info),
    });
    info!(%local, store = ?store_cfg, "netmaster serving");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("serving HTTP")?;
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
