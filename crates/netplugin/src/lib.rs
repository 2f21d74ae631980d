//! netplugin, Contiv's host agent. It names no datapath driver: the binary's factory chooses
//! them ([`run::Drivers`]).
//!
//! It registers with netmaster and heartbeats, mirrors netmaster's state (snapshot + change
//! stream), serves the CNI plugin's socket (ADD/DEL/CHECK/STATUS/GC of `contiv_cni::agent_api`),
//! and keeps the datapath equal to what its attachments and the mirror ask for: every network of
//! each tenant with a local workload, with the endpoints other hosts have on them.
//!
//! Code map:
//! - [`config`]: flags; [`run`]: wiring, threads, start-up.
//! - [`netmaster`]: the [`netmaster::Netmaster`] trait and its HTTP client.
//! - [`mirror`]: netmaster state as the agent sees it; [`follow`]: follower and heartbeat loops.
//! - [`records`]: durable attachment records (the agent's own state).
//! - [`agent`]: shared state and locks; `attach` (ADD/DEL), `ops` (CHECK/STATUS/GC/spool).
//! - [`reconcile`]: desired vs observed, by diff, never flushing; [`rebuild`]: lost records
//!   rebuilt from the kernel and netmaster before any clean-up.
//! - [`policy`]: the policy loop (compile this host's policy, apply what changed) and reporter.
//! - [`qos`]: netprofiles (bandwidth both ways, DSCP) of local endpoints, run by the policy loop.
//! - [`dns`]: DNS service discovery per tenant (hickory-server in tenant namespaces).
//! - [`cni_server`]: the unix-socket HTTP server; [`metrics`]: Prometheus metrics on `--metrics-address`.
//! - `testbed` (feature `testbed`): the multi-host harness of the end-to-end tests.
//!
//! Invariant: the agent never flushes the datapath; a restart reconciles by diff, so traffic of
//! existing workloads flows on while the agent is down or restarting.

pub mod agent;
pub mod attach;
pub mod cni_server;
pub mod cnm;
pub mod config;
pub mod dns;
pub mod follow;
pub mod metrics;
pub mod mirror;
pub mod netmaster;
mod ops;
pub mod policy;
#[cfg(feature = "testbed")]
pub mod probe;
pub mod proc_sys;
pub mod qos;
pub mod rebuild;
pub mod reconcile;
pub mod records;
pub mod run;
pub mod services;
mod socket;
#[cfg(feature = "testbed")]
pub mod testbed;

#[cfg(test)]
mod tests;

use std::process::ExitCode;

use clap::Parser;

pub use agent::{Agent, Parts, Settings};
pub use config::Flags;

/// The `netplugin` binary: parse flags, set up logs, run with the drivers `factory` chooses
/// until a signal.
pub fn cli_main(factory: run::DriverFactory) -> ExitCode {
    let flags = Flags::parse();
    let mut filter = tracing_subscriber::EnvFilter::try_new(&flags.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // hickory-server logs every answer at info: only when asked for by name.
    if !flags.log_level.contains("hickory") {
        if let Ok(d) = "hickory_server=warn".parse() {
            filter = filter.add_directive(d);
        }
    }
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // colour codes only for a terminal (not in log files, nor in dockerd's log of the plugin)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match run::run(&flags, factory) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("netplugin: {e}");
            eprintln!("netplugin: {e}");
            ExitCode::FAILURE
        }
    }
}
