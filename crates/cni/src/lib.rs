//! `contivk8s`, Contiv's CNI plugin, and the protocol it speaks with the host agent (netplugin).
//!
//! The plugin is a thin client: it validates the CNI invocation (environment + network config on
//! stdin, spec versions 0.3.0/0.3.1/0.4.0/1.0.0/1.1.0), resolves tenant/network/group from the pod
//! labels, asks the agent over a unix socket ([`agent_api`], [`client`]), and prints the result in
//! the format of the version the runtime asked for ([`result`]) or a CNI error ([`error`]).
//!
//! - [`run_plugin`]: one invocation, environment and stdin passed in, agent from `agentSocket`.
//! - [`run_plugin_with_client`]: the same against any [`AgentClient`] (tests use a fake).
//! - [`cli_main`]: the binary's `main`, reading the real environment and stdin.

pub mod agent_api;
pub mod client;
pub mod env;
pub mod error;
mod http;
pub mod netconf;
mod plugin;
pub mod result;
pub mod spool;
#[cfg(any(test, feature = "test-agent"))]
pub mod test_agent;
pub mod version;

#[cfg(test)]
mod plugin_tests;

use std::io::{IsTerminal, Read, Write};
use std::process::ExitCode;

pub use client::{AgentCallError, AgentClient, UnixAgentClient};
pub use env::{CniEnv, Command};
pub use error::{codes, CniError, ErrorResult};
pub use netconf::NetConf;
pub use result::CniResult;
pub use version::{CniVersion, SUPPORTED_VERSIONS};

/// Runs one CNI invocation against the agent named by the netconf (`agentSocket`, default
/// [`agent_api::DEFAULT_AGENT_SOCKET`]). Returns the exit status (0 or 1) and the stdout bytes
/// (result, VERSION answer, nothing, or the CNI error JSON).
pub fn run_plugin(env: &CniEnv, stdin: &[u8]) -> (u8, Vec<u8>) {
    plugin::execute(env, stdin, &|conf: &NetConf| -> Box<dyn AgentClient> {
        Box::new(UnixAgentClient::new(
            conf.agent_socket(),
            conf.agent_timeout(),
        ))
    })
}

/// Like [`run_plugin`], but every agent call goes to `client` (the netconf's `agentSocket` is
/// ignored; `pendingDeleteDir` still applies).
pub fn run_plugin_with_client(
    env: &CniEnv,
    stdin: &[u8],
    client: &dyn AgentClient,
) -> (u8, Vec<u8>) {
    plugin::execute(env, stdin, &|_: &NetConf| -> Box<dyn AgentClient + '_> {
        Box::new(Borrowed(client))
    })
}

struct Borrowed<'a>(&'a dyn AgentClient);

impl AgentClient for Borrowed<'_> {
    fn add(
        &self,
        req: &agent_api::AgentAddRequest,
    ) -> Result<agent_api::AgentAddResponse, AgentCallError> {
        self.0.add(req)
    }
    fn del(&self, req: &agent_api::AgentDelRequest) -> Result<(), AgentCallError> {
        self.0.del(req)
    }
    fn check(
        &self,
        req: &agent_api::AgentCheckRequest,
    ) -> Result<agent_api::AgentAddResponse, AgentCallError> {
        self.0.check(req)
    }
    fn status(&self, req: &agent_api::AgentStatusRequest) -> Result<(), AgentCallError> {
        self.0.status(req)
    }
    fn gc(&self, req: &agent_api::AgentGcRequest) -> Result<(), AgentCallError> {
        self.0.gc(req)
    }
}

/// The `contivk8s` binary: reads the process environment and stdin, prints to stdout, and exits
/// with the plugin's status.
pub fn cli_main() -> ExitCode {
    let env = CniEnv::from_process();
    if env.command.as_deref().unwrap_or_default().is_empty() {
        eprintln!(
            "contivk8s {}: Contiv CNI plugin; CNI protocol versions supported: {}",
            env!("CARGO_PKG_VERSION"),
            version::supported_list().join(", ")
        );
    }
    // A runtime always pipes the netconf; a terminal (someone trying the binary) is not waited on.
    let mut stdin = Vec::new();
    let read = match std::io::stdin().is_terminal() {
        true => Ok(0),
        false => std::io::stdin().read_to_end(&mut stdin),
    };
    let (code, out) = match read {
        Ok(_) => run_plugin(&env, &stdin),
        Err(e) => {
            let err = CniError::new(codes::IO_FAILURE, "error reading from stdin")
                .with_details(e.to_string());
            let body = serde_json::to_vec(&err.to_result(CniVersion::LATEST.as_str()));
            (1, body.unwrap_or_default())
        }
    };
    let mut stdout = std::io::stdout().lock();
    if stdout
        .write_all(&out)
        .and_then(|()| stdout.flush())
        .is_err()
    {
        return ExitCode::from(1);
    }
    ExitCode::from(code)
}
