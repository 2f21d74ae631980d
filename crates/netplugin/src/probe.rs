//! Reachability probes for policy tests and benchmarks (feature `testbed`): a [`Responder`] in
//! each workload namespace (TCP 80 and 81 answer "ok", UDP 53 echoes) and probes that open a
//! new connection each time (a fresh source port or ICMP id, so conntrack never lets an earlier
//! allowed exchange carry a probe past a new deny), run in parallel.

use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use contiv_datapath_linux::testbed::{in_netns, ping};

/// TCP ports every responder listens on.
pub const TCP_PORTS: [u16; 2] = [80, 81];
/// UDP port every responder echoes on.
pub const UDP_PORT: u16 = 53;

/// One kind of probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Probe {
    Icmp,
    Tcp(u16),
    Udp(u16),
}

impl Probe {
    /// Every probe a responder answers.
    pub const ALL: [Probe; 4] = [
        Probe::Icmp,
        Probe::Tcp(80),
        Probe::Tcp(81),
        Probe::Udp(UDP_PORT),
    ];

    /// Protocol name and port as `explain` takes them.
    pub fn protocol(self) -> (&'static str, u16) {
        match self {
            Probe::Icmp => ("icmp", 0),
            Probe::Tcp(p) => ("tcp", p),
            Probe::Udp(p) => ("udp", p),
        }
    }
}

impl std::fmt::Display for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Probe::Icmp => write!(f, "icmp"),
            Probe::Tcp(p) => write!(f, "tcp/{p}"),
            Probe::Udp(p) => write!(f, "udp/{p}"),
        }
    }
}

/// Servers answering probes inside one namespace, until dropped.
pub struct Responder {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

const POLL: Duration = Duration::from_millis(5);

impl Responder {
    /// Binds TCP 80/81 and UDP 53 on every address of `ns` (so a re-attached workload with a
    /// new address is served too) and serves them from background threads.
    pub fn start(ns: &Path) -> Result<Responder, String> {
        let (tcp, udp) = in_netns(ns, || -> Result<_, String> {
            let tcp = TCP_PORTS
                .iter()
                .map(|p| {
                    TcpListener::bind(SocketAddr::from(([0, 0, 0, 0], *p)))
                        .map_err(|e| format!("bind tcp {p}: {e}"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let udp = UdpSocket::bind(SocketAddr::from(([0, 0, 0, 0], UDP_PORT)))
                .map_err(|e| format!("bind udp {UDP_PORT}: {e}"))?;
            Ok((tcp, udp))
        })??;
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        for l in tcp {
            l.set_nonblocking(true).map_err(|e| e.to_string())?;
            let stop = stop.clone();
            threads.push(std::thread::spawn(move || {
                use std::io::Write;
                while !stop.load(Ordering::Relaxed) {
                    match l.accept() {
                        Ok((mut c, _)) => {
                            let _ = c.set_nonblocking(false);
                            let _ = c.write_all(b"ok");
                        }
                        Err(_) => std::thread::sleep(POLL),
                    }
                }
            }));
        }
        udp.set_read_timeout(Some(Duration::from_millis(50)))
            .map_err(|e| e.to_string())?;
        let s = stop.clone();
        threads.push(std::thread::spawn(move || {
            let mut buf = [0u8; 64];
            while !s.load(Ordering::Relaxed) {
                if let Ok((n, from)) = udp.recv_from(&mut buf) {
                    let _ = udp.send_to(&buf[..n], from);
                }
            }
        }));
        Ok(Responder { stop, threads })
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Whether `probe` from namespace `ns` to `dst` gets its answer within `timeout`.
pub fn probe(ns: &Path, dst: Ipv4Addr, probe: Probe, timeout: Duration) -> bool {
    match probe {
        Probe::Icmp => ping(ns, dst, 1),
        Probe::Tcp(port) => in_netns(ns, || {
            let Ok(mut c) = TcpStream::connect_timeout(&SocketAddr::from((dst, port)), timeout)
            else {
                return false;
            };
            let _ = c.set_read_timeout(Some(timeout));
            let mut buf = [0u8; 2];
            c.read_exact(&mut buf).is_ok() && &buf == b"ok"
        })
        .unwrap_or(false),
        Probe::Udp(port) => in_netns(ns, || {
            let Ok(s) = UdpSocket::bind(SocketAddr::from(([0, 0, 0, 0], 0))) else {
                return false;
            };
            let _ = s.set_read_timeout(Some(timeout));
            if s.send_to(b"probe", SocketAddr::from((dst, port))).is_err() {
                return false;
            }
            let mut buf = [0u8; 16];
            matches!(s.recv_from(&mut buf), Ok((5, _)))
        })
        .unwrap_or(false),
    }
}

/// Runs every probe in parallel; results in input order.
pub fn probe_all(probes: &[(PathBuf, Ipv4Addr, Probe)], timeout: Duration) -> Vec<bool> {
    std::thread::scope(|s| {
        let handles: Vec<_> = probes
            .iter()
            .map(|(ns, dst, p)| s.spawn(move || probe(ns, *dst, *p, timeout)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or(false))
            .collect()
    })
}
