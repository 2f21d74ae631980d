//! The agent's DNS service discovery: for each tenant with a workload on this host, a DNS
//! server (hickory-server) on the gateway address of each of the tenant's networks, port 53,
//! inside the tenant's router namespace, answering service, group and workload names of that
//! tenant and forwarding every other name to the host's resolvers.
//!
//! - [`names`]: the naming scheme and resolution as pure data ([`names::Table`], rebuilt from
//!   the mirror on every change and swapped in whole, so answers follow a change as soon as
//!   the mirror has it).
//! - [`server`]: the request handler (answers, truncation, forwarding).
//! - [`listen`]: sockets made inside tenant namespaces, listeners following tenants and
//!   networks, and the loop that drives both.
//!
//! The CNI result of an ADD names the network's gateway as nameserver, with search domain
//! `<tenant>.contiv` ([`cni_dns`]), so pods use it without configuration.

pub mod listen;
pub mod names;
pub mod server;

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;

use contiv_cni::agent_api::AgentDns;

pub use listen::{Binder, NetnsBinder, NsPath};
pub use names::{tenant_domain, SharedTable, Table, TTL, ZONE};
pub use server::Forwarder;

use crate::agent::Agent;
use crate::follow::Stop;

/// The DNS part of a CNI result: the network's gateway as nameserver, the tenant's domain as
/// domain and search domain.
pub fn cni_dns(tenant: &str, gateway: &str) -> AgentDns {
    let domain = tenant_domain(tenant);
    AgentDns {
        nameservers: vec![gateway.to_string()],
        domain: Some(domain.clone()),
        search: vec![domain],
        options: Vec::new(),
    }
}

/// Why an upstream resolver list cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("dns upstream {0:?}: expected an IP address with an optional :port")]
pub struct UpstreamError(pub String);

/// Parses `a.b.c.d`, `a.b.c.d:port`, `[v6]:port` or `v6` (port 53 by default).
pub fn parse_upstream(s: &str) -> Result<SocketAddr, UpstreamError> {
    let s = s.trim();
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    s.parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, listen::PORT))
        .map_err(|_| UpstreamError(s.to_string()))
}

/// The `nameserver` lines of a resolv.conf (unreadable or empty: none).
pub fn resolv_conf_upstreams(path: &Path) -> Vec<SocketAddr> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|rest| rest.split_whitespace().next())
        .filter_map(|a| parse_upstream(a).ok())
        .collect()
}

/// Starts the DNS loop thread and the DNS runtime: one thread running a current-thread tokio
/// runtime that serves every listener (a query is received, answered and sent on one thread,
/// with no cross-thread wake-up: ~25 % more queries/s than the agent's 2-worker runtime).
pub fn start(
    agent: &Arc<Agent>,
    stop: &Arc<Stop>,
    binder: Arc<dyn Binder>,
    upstreams: Vec<SocketAddr>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    if upstreams.is_empty() {
        tracing::warn!("dns: no upstream resolver: names the agent does not own fail (SERVFAIL)");
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let handle = rt.handle().clone();
    let (done, wait) = tokio::sync::oneshot::channel::<()>();
    std::thread::Builder::new()
        .name("dns".into())
        .spawn(move || {
            rt.block_on(async {
                let _ = wait.await;
            })
        })?;
    let parts = listen::DnsParts {
        binder,
        forwarder: Forwarder::new(upstreams),
        table: Arc::new(SharedTable::default()),
        rt: handle,
    };
    let (a, s) = (agent.clone(), stop.clone());
    std::thread::Builder::new()
        .name("dns-loop".into())
        .spawn(move || {
            listen::dns_loop(&a, &s, &parts);
            // The listeners are gone: the runtime's thread may end.
            let _ = done.send(());
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstreams_parse() {
        assert_eq!(
            parse_upstream("10.0.0.2").expect("v4"),
            "10.0.0.2:53".parse().expect("addr")
        );
        assert_eq!(
            parse_upstream("127.0.0.1:5353").expect("port"),
            "127.0.0.1:5353".parse().expect("addr")
        );
        assert_eq!(
            parse_upstream("::1").expect("v6"),
            "[::1]:53".parse().expect("addr")
        );
        assert!(parse_upstream("resolver.example").is_err());
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("resolv.conf");
        std::fs::write(
            &p,
            "# x\nsearch example\nnameserver 10.0.0.2\nnameserver  ::1 \noptions ndots:2\nnameserver bad\n",
        )
        .expect("write");
        assert_eq!(
            resolv_conf_upstreams(&p),
            vec![
                "10.0.0.2:53".parse::<SocketAddr>().expect("a"),
                "[::1]:53".parse().expect("b")
            ]
        );
        assert!(resolv_conf_upstreams(&dir.path().join("missing")).is_empty());
    }

    #[test]
    fn cni_result_names_the_gateway() {
        let d = cni_dns("Blue", "10.1.0.1");
        assert_eq!(d.nameservers, ["10.1.0.1"]);
        assert_eq!(d.search, ["blue.contiv"]);
        assert_eq!(d.domain.as_deref(), Some("blue.contiv"));
    }
}
