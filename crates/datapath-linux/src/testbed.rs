//! Multi-host test bed (feature `testbed`): "hosts" are network namespaces joined by an
//! underlay bridge in a hub namespace; workloads are namespaces too. Names are unique per run
//! (`ctvtb-<pid>-<n>-…`), a Drop guard deletes everything (also on panic), and leftovers of
//! killed earlier runs (their pid is gone) are deleted on the next start. Traffic helpers (ICMP
//! echo, TCP) run on threads `setns()`ed into a workload, so no external tool is needed.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use contiv_datapath::HostSpec;
use rtnetlink::{LinkBridge, LinkUnspec, LinkVeth};

use crate::error::LinuxError;
use crate::netns::{self, NETNS_DIR};
use crate::nl::Nl;
use crate::LinuxConfig;

const PREFIX: &str = "ctvtb-";
static COUNTER: AtomicU32 = AtomicU32::new(0);

/// True when running as root (effective user id 0).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// The first line of every test that needs root. Such tests are `#[ignore = "needs root"]`, so a
/// plain `cargo test` lists them as ignored; run with `--include-ignored` as non-root they fail
/// at once, at the calling test's line, with a clear message instead of on some netlink call.
#[track_caller]
pub fn require_root() {
    assert!(
        is_root(),
        "this test needs root (run as root with --include-ignored)"
    );
}

/// One simulated host.
#[derive(Debug, Clone)]
pub struct TestHost {
    pub netns: PathBuf,
    pub vtep: Ipv4Addr,
    /// Prefix for the driver's tenant namespaces (so the test bed's guard removes them too).
    pub ns_prefix: String,
}

impl TestHost {
    pub fn host_spec(&self) -> HostSpec {
        HostSpec {
            vtep_ip: self.vtep,
            underlay_ifname: "ul0".into(),
            underlay_mtu: 1500,
        }
    }

    /// A driver configuration targeting this host's namespace.
    pub fn config(&self) -> LinuxConfig {
        let mut c = LinuxConfig::new(self.host_spec());
        c.host_netns = Some(self.netns.clone());
        c.ns_prefix = self.ns_prefix.clone();
        c
    }
}

/// The guard owning every namespace of one test.
pub struct Testbed {
    pub prefix: String,
    pub hosts: Vec<TestHost>,
}

fn in_ns<F, Fut, R>(path: &Path, f: F) -> Result<R, LinuxError>
where
    F: FnOnce(Nl) -> Fut + Send,
    Fut: std::future::Future<Output = Result<R, LinuxError>>,
    R: Send,
{
    let ns = path.display().to_string();
    netns::run_in(path, move |h| f(Nl { h, ns }))
}

/// Deletes namespaces of earlier runs whose process is gone.
pub fn reap_stale() {
    let dir = Path::new(NETNS_DIR);
    for name in netns::list_named(dir, PREFIX).unwrap_or_default() {
        let pid = name[PREFIX.len()..].split('-').next().unwrap_or("");
        if !pid.is_empty() && !Path::new("/proc").join(pid).exists() {
            let _ = netns::delete_named(&dir.join(&name));
        }
    }
}

impl Testbed {
    /// A hub and `hosts` hosts with underlay addresses 10.255.0.<i>/24 on `ul0`.
    pub fn new(hosts: usize) -> Result<Testbed, LinuxError> {
        reap_stale();
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let prefix = format!("{PREFIX}{}-{n}", std::process::id());
        let mut tb = Testbed {
            prefix,
            hosts: Vec::new(),
        };
        let hub = tb.make_ns("hub")?;
        in_ns(&hub, |nl| async move {
            up(&nl, "lo").await?;
            nl.add_link("ul", LinkBridge::new("ul").build()).await?;
            up(&nl, "ul").await
        })?;
        for i in 1..=hosts {
            tb.add_host(&hub, i)?;
        }
        Ok(tb)
    }

    fn make_ns(&self, suffix: &str) -> Result<PathBuf, LinuxError> {
        netns::create_named(Path::new(NETNS_DIR), &format!("{}-{suffix}", self.prefix))
    }

    fn add_host(&mut self, hub: &Path, i: usize) -> Result<(), LinuxError> {
        let netns = self.make_ns(&format!("h{i}"))?;
        let file = std::fs::File::open(&netns).map_err(|source| LinuxError::Netns {
            ns: netns.display().to_string(),
            op: "open",
            source,
        })?;
        let fd = std::os::fd::AsRawFd::as_raw_fd(&file.as_fd());
        let port = format!("p{i}");
        in_ns(hub, |nl| async move {
            nl.add_link(&port, LinkVeth::new(&port, "ul0").build())
                .await?;
            let br = nl.need_link("ul").await?.index;
            let p = nl.need_link(&port).await?.index;
            nl.set_link(
                &port,
                LinkUnspec::new_with_index(p).controller(br).up().build(),
            )
            .await?;
            let u = nl.need_link("ul0").await?.index;
            nl.move_to_ns("ul0", u, fd).await
        })?;
        let vtep = Ipv4Addr::new(10, 255, 0, i as u8);
        in_ns(&netns, |nl| async move {
            up(&nl, "lo").await?;
            let u = nl.need_link("ul0").await?.index;
            nl.converge_addr("ul0", u, vtep, 24).await?;
            up(&nl, "ul0").await
        })?;
        let ns_prefix = format!("{}-h{i}", self.prefix);
        self.hosts.push(TestHost {
            netns,
            vtep,
            ns_prefix,
        });
        Ok(())
    }

    /// A fresh workload namespace (a "container") with its loopback up, as a container runtime
    /// leaves it (runtimes bring `lo` up themselves or through the CNI loopback plugin; our
    /// plugin configures only its own interface).
    pub fn workload(&self, name: &str) -> Result<PathBuf, LinuxError> {
        let ns = self.make_ns(&format!("w-{name}"))?;
        in_ns(&ns, |nl| async move { up(&nl, "lo").await })?;
        Ok(ns)
    }

    /// Every namespace of this test bed still mounted (hosts, hub, workloads, tenants).
    pub fn namespaces(&self) -> Vec<String> {
        netns::list_named(Path::new(NETNS_DIR), &format!("{}-", self.prefix)).unwrap_or_default()
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        for name in self.namespaces() {
            if let Err(e) = netns::delete_named(&Path::new(NETNS_DIR).join(&name)) {
                eprintln!("testbed cleanup: {e}");
            }
        }
    }
}

async fn up(nl: &Nl, name: &str) -> Result<(), LinuxError> {
    let l = nl.need_link(name).await?;
    nl.set_link(name, LinkUnspec::new_with_index(l.index).up().build())
        .await
}

/// Runs `f` on a thread that entered the namespace `ns`.
pub fn in_netns<R: Send>(ns: &Path, f: impl FnOnce() -> R + Send) -> Result<R, String> {
    let file = std::fs::File::open(ns).map_err(|e| format!("open {}: {e}", ns.display()))?;
    std::thread::scope(|s| {
        s.spawn(move || {
            nix::sched::setns(file.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(|e| format!("setns {}: {e}", ns.display()))?;
            Ok(f())
        })
        .join()
        .map_err(|_| "traffic thread panicked".to_string())?
    })
}

/// A one-shot TCP server in `server_ns` on `ip:port` that answers `token`; a client in
/// `client_ns` connects and returns what it read. Errors if the connection fails (2 s).
pub fn tcp_exchange(
    client_ns: &Path,
    server_ns: &Path,
    ip: Ipv4Addr,
    port: u16,
    token: &str,
) -> Result<String, String> {
    let addr = SocketAddr::from((ip, port));
    let listener = in_netns(server_ns, || TcpListener::bind(addr))?
        .map_err(|e| format!("bind {addr}: {e}"))?;
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    std::thread::scope(|s| {
        let server = s.spawn(|| {
            let deadline = Instant::now() + Duration::from_secs(3);
            while Instant::now() < deadline {
                if let Ok((mut c, _)) = listener.accept() {
                    let _ = c.set_nonblocking(false);
                    let _ = c.write_all(token.as_bytes());
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        let got = in_netns(client_ns, || -> Result<String, String> {
            let mut c = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
                .map_err(|e| format!("connect {addr}: {e}"))?;
            c.set_read_timeout(Some(Duration::from_secs(2)))
                .map_err(|e| e.to_string())?;
            let mut buf = String::new();
            c.read_to_string(&mut buf)
                .map_err(|e| format!("read {addr}: {e}"))?;
            Ok(buf)
        })?;
        let _ = server.join();
        got
    })
}

/// A test service of one workload: on TCP it greets every connection with its name, then echoes
/// what it reads (so an open connection can be probed); on UDP it answers every datagram with its
/// name. Runs until dropped (its threads are joined then).
pub struct NamedServer {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl NamedServer {
    /// The TCP server in `ns` on `ip:port`.
    pub fn tcp(ns: &Path, ip: Ipv4Addr, port: u16, name: &str) -> Result<NamedServer, String> {
        let addr = SocketAddr::from((ip, port));
        let listener =
            in_netns(ns, || TcpListener::bind(addr))?.map_err(|e| format!("bind {addr}: {e}"))?;
        listener.set_nonblocking(true).map_err(|e| e.to_string())?;
        let greeting = format!("{name}\n");
        Ok(NamedServer::run(move |stop| {
            while !stop.load(Ordering::Relaxed) {
                let Ok((mut c, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(2));
                    continue;
                };
                let _ = c.set_nonblocking(false);
                let _ = c.write_all(greeting.as_bytes());
                std::thread::spawn(move || {
                    let mut buf = [0u8; 64];
                    while let Ok(n) = c.read(&mut buf) {
                        if n == 0 || c.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                });
            }
        }))
    }

    /// The UDP server in `ns` on `ip:port`.
    pub fn udp(ns: &Path, ip: Ipv4Addr, port: u16, name: &str) -> Result<NamedServer, String> {
        let addr = SocketAddr::from((ip, port));
        let sock =
            in_netns(ns, || UdpSocket::bind(addr))?.map_err(|e| format!("bind udp {addr}: {e}"))?;
        // Wakes up to notice the stop flag.
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .map_err(|e| e.to_string())?;
        let name = name.to_string();
        Ok(NamedServer::run(move |stop| {
            let mut buf = [0u8; 64];
            while !stop.load(Ordering::Relaxed) {
                if let Ok((_, from)) = sock.recv_from(&mut buf) {
                    let _ = sock.send_to(name.as_bytes(), from);
                }
            }
        }))
    }

    fn run(serve: impl FnOnce(&AtomicBool) + Send + 'static) -> NamedServer {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        NamedServer {
            stop,
            thread: Some(std::thread::spawn(move || serve(&flag))),
        }
    }
}

impl Drop for NamedServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Connects from `ns` to `addr` (a [`NamedServer`], or a VIP in front of several): the open
/// stream and the name the server greeted with.
pub fn connect_named(ns: &Path, addr: SocketAddr) -> Result<(TcpStream, String), String> {
    in_netns(ns, || {
        let mut c = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
            .map_err(|e| format!("connect {addr}: {e}"))?;
        c.set_read_timeout(Some(Duration::from_secs(2)))
            .map_err(|e| e.to_string())?;
        let mut buf = [0u8; 32];
        let n = c.read(&mut buf).map_err(|e| format!("read: {e}"))?;
        Ok((c, String::from_utf8_lossy(&buf[..n]).trim().to_string()))
    })?
}

/// `n` new connections from `ns` to `addr`: how many each [`NamedServer`] answered. Errors at
/// the first connection that fails, saying which and what came before.
pub fn tally_named(
    ns: &Path,
    addr: SocketAddr,
    n: usize,
) -> Result<BTreeMap<String, usize>, String> {
    let mut got = BTreeMap::new();
    for i in 0..n {
        let (_, name) =
            connect_named(ns, addr).map_err(|e| format!("connection {i}: {e} (so far {got:?})"))?;
        *got.entry(name).or_insert(0) += 1;
    }
    Ok(got)
}

fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u32)
        .sum();
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// ICMP echo from inside `ns` to `dst` over a raw socket: true when a reply came back within
/// `tries` attempts of 500 ms.
pub fn ping(ns: &Path, dst: Ipv4Addr, tries: u32) -> bool {
    in_netns(ns, || (0..tries).any(|seq| ping_once(dst, seq as u16))).unwrap_or(false)
}

static NEXT_ICMP_ID: AtomicU16 = AtomicU16::new(0x5a5a);

fn ping_once(dst: Ipv4Addr, seq: u16) -> bool {
    // SAFETY: plain socket syscalls on a descriptor owned and closed here.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_ICMP);
        if fd < 0 {
            return false;
        }
        let tv = libc::timeval {
            tv_sec: 0,
            tv_usec: 100_000,
        };
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            &tv as *const _ as *const _,
            std::mem::size_of_val(&tv) as u32,
        );
        // A fresh id per echo: conntrack keys ICMP echoes by id, so a reused id would ride on an
        // earlier allowed exchange (and pass a policy that denies new ones).
        let id = (std::process::id() as u16) ^ NEXT_ICMP_ID.fetch_add(1, Ordering::Relaxed);
        let mut pkt = [0u8; 16];
        pkt[0] = 8;
        pkt[4..6].copy_from_slice(&id.to_be_bytes());
        pkt[6..8].copy_from_slice(&seq.to_be_bytes());
        let c = checksum(&pkt);
        pkt[2..4].copy_from_slice(&c.to_be_bytes());
        let sa = libc::sockaddr_in {
            sin_family: libc::AF_INET as u16,
            sin_port: 0,
            sin_addr: libc::in_addr {
                s_addr: u32::from_ne_bytes(dst.octets()),
            },
            sin_zero: [0; 8],
        };
        let sent = libc::sendto(
            fd,
            pkt.as_ptr() as *const _,
            pkt.len(),
            0,
            &sa as *const _ as *const _,
            std::mem::size_of_val(&sa) as u32,
        );
        let deadline = Instant::now() + Duration::from_millis(500);
        let mut ok = false;
        while sent > 0 && !ok && Instant::now() < deadline {
            let mut buf = [0u8; 1500];
            let n = libc::recv(fd, buf.as_mut_ptr() as *mut _, buf.len(), 0);
            if n < 28 {
                continue;
            }
            let ihl = ((buf[0] & 0x0f) as usize) * 4;
            let src = Ipv4Addr::new(buf[12], buf[13], buf[14], buf[15]);
            let icmp = &buf[ihl..n as usize];
            ok = src == dst
                && icmp.len() >= 8
                && icmp[0] == 0
                && icmp[4..6] == id.to_be_bytes()
                && icmp[6..8] == seq.to_be_bytes();
        }
        libc::close(fd);
        ok
    }
}
