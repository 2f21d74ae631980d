//! Listeners: one hickory-server per (tenant, network gateway) of every tenant with a workload
//! on this host, its UDP and TCP sockets bound to `<gateway>:53` inside the tenant's router
//! namespace by a [`Binder`], served by the agent's tokio runtime. [`dns_loop`] keeps the table
//! and the listeners equal to what the mirror and the local attachments ask for.
//!
//! Invariant: a tokio worker never changes namespace. A socket stays in the namespace it was
//! created in, so the [`NetnsBinder`] creates them on a throwaway thread that `setns()`ed into
//! the tenant's namespace and hands them to the runtime.
//!
//! A tenant namespace that is deleted and made again (its last workload left, a new one came)
//! is a new namespace: a listener remembers the identity (device, inode) of the namespace it
//! was bound in and is bound again when that changes.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_server::Server;

use super::names::{SharedTable, Table};
use super::server::{serve_udp, Forwarder, TenantHandler};
use crate::agent::Agent;
use crate::follow::Stop;

/// The DNS port.
pub const PORT: u16 = 53;
/// A TCP connection that sends nothing for this long is closed.
const TCP_IDLE: Duration = Duration::from_secs(5);
/// How often a listener that could not be bound (its namespace not made yet) is retried.
const RETRY: Duration = Duration::from_millis(100);
/// The longest the loop sleeps without a mirror change.
const IDLE: Duration = Duration::from_secs(1);

/// Identity of a namespace file (device, inode).
pub type NsId = (u64, u64);

/// Bound sockets of one listener and the namespace they live in.
pub struct Bound {
    pub udp: std::net::UdpSocket,
    pub tcp: std::net::TcpListener,
    pub ns: NsId,
}

/// Makes the sockets of a tenant's listener inside the tenant's namespace. Idempotent (each
/// call makes new sockets); concurrent calls are fine.
pub trait Binder: Send + Sync {
    /// UDP and TCP sockets bound to `addr` in `tenant`'s namespace (non-blocking).
    fn bind(&self, tenant: &str, addr: SocketAddr) -> std::io::Result<Bound>;
    /// The identity of `tenant`'s namespace now (`None`: it does not exist).
    fn ns_id(&self, tenant: &str) -> Option<NsId>;
}

/// Maps a tenant to the path of its router namespace (the datapath's naming).
pub type NsPath = Arc<dyn Fn(&str) -> PathBuf + Send + Sync>;

/// [`Binder`] for namespaces that are files (`/run/netns/<name>`).
pub struct NetnsBinder {
    pub path: NsPath,
}

fn ns_id_of(p: &std::path::Path) -> Option<NsId> {
    std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()))
}

impl Binder for NetnsBinder {
    fn bind(&self, tenant: &str, addr: SocketAddr) -> std::io::Result<Bound> {
        let path = (self.path)(tenant);
        let file = std::fs::File::open(&path)?;
        let ns = {
            let m = file.metadata()?;
            (m.dev(), m.ino())
        };
        std::thread::scope(|s| {
            s.spawn(|| {
                use std::os::fd::AsRawFd;
                // SAFETY: setns on this throwaway thread only, with a valid namespace fd.
                if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                let (udp, tcp) = sockets(addr)?;
                Ok(Bound { udp, tcp, ns })
            })
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("binder thread panicked")))
        })
    }

    fn ns_id(&self, tenant: &str) -> Option<NsId> {
        ns_id_of(&(self.path)(tenant))
    }
}

/// UDP and TCP sockets bound to `addr` in the calling thread's namespace. `IP_FREEBIND`: the
/// gateway address may not be on its interface yet (the datapath is making the network).
pub fn sockets(addr: SocketAddr) -> std::io::Result<(std::net::UdpSocket, std::net::TcpListener)> {
    use socket2::{Domain, Protocol, Socket, Type};
    let domain = Domain::for_address(addr);
    let udp = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
    udp.set_freebind_v4(true)?;
    udp.set_nonblocking(true)?;
    udp.bind(&addr.into())?;
    let tcp = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
    tcp.set_freebind_v4(true)?;
    tcp.set_reuse_address(true)?;
    tcp.set_nonblocking(true)?;
    tcp.bind(&addr.into())?;
    tcp.listen(128)?;
    Ok((udp.into(), tcp.into()))
}

/// A running listener: its TCP server and UDP task (dropping it stops both) and where it was
/// bound.
struct Listener {
    /// Held for its `Drop`.
    _serving: Serving,
    ns: NsId,
}

/// The tasks serving one listener: hickory-server for TCP, [`serve_udp`] for UDP.
pub struct Serving {
    tcp: Server<TenantHandler>,
    udp: tokio::task::JoinHandle<()>,
}

impl Drop for Serving {
    fn drop(&mut self) {
        self.tcp.shutdown_token().cancel();
        self.udp.abort();
    }
}

/// Serves `handler`'s tenant on bound sockets (inside the runtime `rt`): TCP through
/// hickory-server, UDP through [`serve_udp`] (the same answers, without a task per query).
pub fn serve(
    rt: &tokio::runtime::Handle,
    handler: TenantHandler,
    bound: Bound,
) -> std::io::Result<Serving> {
    let _g = rt.enter();
    let handler = Arc::new(handler);
    let udp = Arc::new(tokio::net::UdpSocket::from_std(bound.udp)?);
    let mut tcp = Server::new(TenantHandler::clone(&handler));
    tcp.register_listener(tokio::net::TcpListener::from_std(bound.tcp)?, TCP_IDLE, 32);
    let udp = rt.spawn(serve_udp(udp, handler));
    Ok(Serving { tcp, udp })
}

/// Where the agent's DNS listens and forwards.
pub struct DnsParts {
    pub binder: Arc<dyn Binder>,
    pub forwarder: Forwarder,
    pub table: Arc<SharedTable>,
    pub rt: tokio::runtime::Handle,
}

/// (tenant, gateway) of every network of every tenant with a local attachment.
fn desired(agent: &Agent, m: Option<&crate::mirror::Mirror>) -> BTreeSet<(String, Ipv4Addr)> {
    let Some(m) = m else {
        return BTreeSet::new();
    };
    let tenants: BTreeSet<String> = agent.records.list().into_iter().map(|a| a.tenant).collect();
    tenants
        .iter()
        .flat_map(|t| m.tenant_networks(t).into_iter().map(move |k| (t, k)))
        .filter_map(|(t, k)| {
            let gw = m.networks.get(&k)?.gateway.parse::<Ipv4Addr>().ok()?;
            Some((t.clone(), gw))
        })
        .collect()
}

/// The DNS loop: on every mirror change (and at least every second) rebuilds the name table
/// and makes the listeners equal to the desired set; retries unbound listeners every 100 ms.
pub fn dns_loop(agent: &Agent, stop: &Stop, parts: &DnsParts) {
    let mut running: BTreeMap<(String, Ipv4Addr), Listener> = BTreeMap::new();
    let mut seen_revision = None;
    let mut pending = false;
    while !stop.is_raised() {
        let wait = if pending { RETRY } else { IDLE };
        agent
            .mirror
            .wait_for(wait, |m| Some(m.revision) != seen_revision);
        if stop.is_raised() {
            break;
        }
        let started = Instant::now();
        let want = {
            let g = agent.mirror.read();
            if let Some(m) = g.as_ref() {
                if Some(m.revision) != seen_revision {
                    seen_revision = Some(m.revision);
                    if parts.table.set(Table::from_mirror(m)) {
                        tracing::debug!(revision = m.revision, took = ?started.elapsed(), "dns table updated");
                    }
                }
            }
            desired(agent, g.as_ref())
        };
        pending = converge(&mut running, &want, parts);
    }
}

/// Stops listeners no longer wanted (or whose namespace was replaced), starts missing ones;
/// returns whether some could not be started.
fn converge(
    running: &mut BTreeMap<(String, Ipv4Addr), Listener>,
    want: &BTreeSet<(String, Ipv4Addr)>,
    parts: &DnsParts,
) -> bool {
    running.retain(|k, l| {
        let keep = want.contains(k) && parts.binder.ns_id(&k.0) == Some(l.ns);
        if !keep {
            tracing::info!(tenant = %k.0, gateway = %k.1, "dns listener stopped");
        }
        keep
    });
    let mut pending = false;
    for (tenant, gw) in want {
        let key = (tenant.clone(), *gw);
        if running.contains_key(&key) {
            continue;
        }
        let addr = SocketAddr::V4(SocketAddrV4::new(*gw, PORT));
        let started = parts.binder.bind(tenant, addr).and_then(|bound| {
            let ns = bound.ns;
            let handler = TenantHandler {
                tenant: tenant.clone(),
                table: parts.table.clone(),
                forwarder: parts.forwarder.clone(),
            };
            serve(&parts.rt, handler, bound).map(|s| Listener { _serving: s, ns })
        });
        match started {
            Ok(l) => {
                tracing::info!(tenant = %tenant, address = %addr, "dns listener started");
                running.insert(key, l);
            }
            Err(e) => {
                // The namespace appears with the tenant's first network on this host.
                tracing::debug!(tenant = %tenant, address = %addr, "dns listener not started yet: {e}");
                pending = true;
            }
        }
    }
    pending
}
