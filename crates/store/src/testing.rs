//! Test harness (cargo feature `testing`): real etcd members as child processes on loopback, for
//! the etcd backend's tests and for other crates' tests (`contiv-store = { features = ["testing"] }`
//! as a dev-dependency). Production builds do not carry it.
//!
//! [`EtcdCluster::start`] picks free loopback ports (bound to port 0 by the OS, so never a default
//! etcd port), puts every member's data in one temporary directory (etcd preallocates ~64 MB of WAL
//! per member) and waits until every member answers `/health`. Members run with a fast Raft
//! configuration, `--heartbeat-interval 50 --election-timeout 500` (a leader is elected in about a
//! second and re-elected ~0.5 s after a kill; the minimum lease TTL becomes 1 s, see
//! [`EtcdCluster::min_lease_ttl`]) and `--max-txn-ops 10000`. Each member logs to `<name>.log` in
//! the cluster directory.
//!
//! The binary is `etcd` from `PATH` (Debian package `etcd-server`), or `$CONTIV_ETCD_BIN`.
//! Dropping the cluster (also while a test panics) SIGKILLs the members it started, by PID, and
//! deletes the directory.

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::StoreError;
use crate::etcd::EtcdStore;

/// Raft heartbeat of the test members, in ms.
pub const HEARTBEAT_MS: u64 = 50;
/// Raft election timeout of the test members, in ms.
pub const ELECTION_MS: u64 = 500;
/// How long [`EtcdCluster::start`] and [`EtcdCluster::restart`] wait for health.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(20);

struct Member {
    name: String,
    client: SocketAddr,
    peer: SocketAddr,
    child: Option<Child>,
}

/// A local etcd cluster of child processes; see the module docs.
pub struct EtcdCluster {
    binary: PathBuf,
    dir: tempfile::TempDir,
    members: Vec<Member>,
    initial_cluster: String,
}

impl std::fmt::Debug for EtcdCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdCluster")
            .field("endpoints", &self.endpoints())
            .finish()
    }
}

/// `n` distinct free loopback ports: all are bound at once (so they differ), then released.
fn free_ports(n: usize) -> io::Result<Vec<SocketAddr>> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<io::Result<Vec<_>>>()?;
    listeners.iter().map(|l| l.local_addr()).collect()
}

fn etcd_binary() -> io::Result<PathBuf> {
    let bin =
        std::env::var_os("CONTIV_ETCD_BIN").map_or_else(|| PathBuf::from("etcd"), PathBuf::from);
    match Command::new(&bin)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(s) if s.success() => Ok(bin),
        Ok(s) => Err(io::Error::other(format!(
            "{} --version failed ({s}): is it etcd?",
            bin.display()
        ))),
        Err(e) => Err(io::Error::new(
            e.kind(),
            format!(
                "etcd binary {} not found ({e}): install the Debian package etcd-server \
                 (scripts/install-deps.sh) or set CONTIV_ETCD_BIN",
                bin.display()
            ),
        )),
    }
}

/// True if `GET /health` on `addr` answers `"health":"true"` within a short timeout.
fn healthy(addr: SocketAddr) -> bool {
    let probe = || -> io::Result<bool> {
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(200))?;
        s.set_read_timeout(Some(Duration::from_secs(1)))?;
        s.set_write_timeout(Some(Duration::from_secs(1)))?;
        write!(
            s,
            "GET /health HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )?;
        let mut body = String::new();
        s.read_to_string(&mut body)?;
        Ok(body.contains("\"health\":\"true\""))
    };
    probe().unwrap_or(false)
}

impl EtcdCluster {
    /// Starts `members` etcd members (1 or more) as one new cluster and waits until all are
    /// healthy (a 3-member cluster takes about a second). Blocking: from async tests, call it on
    /// a multi-threaded runtime (or in `spawn_blocking`).
    pub fn start(members: usize) -> io::Result<EtcdCluster> {
        if members == 0 {
            return Err(io::Error::other(
                "an etcd cluster needs at least one member",
            ));
        }
        let binary = etcd_binary()?;
        let dir = tempfile::Builder::new().prefix("contiv-etcd-").tempdir()?;
        let ports = free_ports(2 * members)?;
        let members: Vec<Member> = (0..members)
            .map(|i| Member {
                name: format!("m{i}"),
                client: ports[2 * i],
                peer: ports[2 * i + 1],
                child: None,
            })
            .collect();
        let initial_cluster = members
            .iter()
            .map(|m| format!("{}=http://{}", m.name, m.peer))
            .collect::<Vec<_>>()
            .join(",");
        let mut cluster = EtcdCluster {
            binary,
            dir,
            members,
            initial_cluster,
        };
        for i in 0..cluster.members.len() {
            cluster.spawn(i)?;
        }
        let all: Vec<usize> = (0..cluster.members.len()).collect();
        cluster.wait_healthy(all, HEALTH_TIMEOUT)?;
        Ok(cluster)
    }

    fn spawn(&mut self, i: usize) -> io::Result<()> {
        let dir = self.dir.path().to_path_buf();
        let m = &self.members[i];
        let log = File::create(dir.join(format!("{}.log", m.name)))?;
        let client_url = format!("http://{}", m.client);
        let peer_url = format!("http://{}", m.peer);
        let token = format!("contiv-test-{}", dir.display());
        let child = Command::new(&self.binary)
            .args(["--name", &m.name])
            .arg("--data-dir")
            .arg(dir.join(&m.name))
            .args(["--listen-client-urls", &client_url])
            .args(["--advertise-client-urls", &client_url])
            .args(["--listen-peer-urls", &peer_url])
            .args(["--initial-advertise-peer-urls", &peer_url])
            .args(["--initial-cluster", &self.initial_cluster])
            .args(["--initial-cluster-state", "new"])
            .args(["--initial-cluster-token", &token])
            .args(["--heartbeat-interval", &HEARTBEAT_MS.to_string()])
            .args(["--election-timeout", &ELECTION_MS.to_string()])
            .args(["--max-txn-ops", "10000"])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("starting etcd member {i}: {e}")))?;
        self.members[i].child = Some(child);
        Ok(())
    }

    /// Waits until members `which` (a slice or a `Vec` of indexes) answer `/health` (needs a
    /// leader, so a quorum); fails early if one of them exited.
    pub fn wait_healthy(
        &mut self,
        which: impl AsRef<[usize]>,
        timeout: Duration,
    ) -> io::Result<()> {
        let deadline = Instant::now() + timeout;
        for &i in which.as_ref() {
            while !healthy(self.members[i].client) {
                if let Some(child) = self.members[i].child.as_mut() {
                    if let Some(status) = child.try_wait()? {
                        self.members[i].child = None;
                        return Err(io::Error::other(format!(
                            "etcd member {i} exited ({status}); see {}",
                            self.log_path(i).display()
                        )));
                    }
                }
                if Instant::now() >= deadline {
                    return Err(io::Error::other(format!(
                        "etcd member {i} not healthy within {timeout:?}; see {}",
                        self.log_path(i).display()
                    )));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Ok(())
    }

    /// Client URLs of every member (`http://127.0.0.1:port`), in member order.
    pub fn endpoints(&self) -> Vec<String> {
        self.members
            .iter()
            .map(|m| format!("http://{}", m.client))
            .collect()
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Always false: a cluster has at least one member.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The cluster's directory (member data dirs and logs).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Log file of member `i`.
    pub fn log_path(&self, i: usize) -> PathBuf {
        self.dir
            .path()
            .join(format!("{}.log", self.members[i].name))
    }

    /// Smallest lease TTL these members grant: etcd raises shorter TTLs to 1.5 × election timeout
    /// (750 ms here), and TTLs are whole seconds.
    pub fn min_lease_ttl(&self) -> Duration {
        Duration::from_millis((3 * ELECTION_MS / 2).div_ceil(1000) * 1000)
    }

    /// Connects an [`EtcdStore`] to every member.
    pub async fn store(&self) -> Result<EtcdStore, StoreError> {
        EtcdStore::connect(&self.endpoints()).await
    }

    fn child(&mut self, i: usize) -> io::Result<&mut Child> {
        self.members
            .get_mut(i)
            .and_then(|m| m.child.as_mut())
            .ok_or_else(|| io::Error::other(format!("etcd member {i} is not running")))
    }

    /// SIGKILLs member `i` and reaps it.
    pub fn kill(&mut self, i: usize) -> io::Result<()> {
        let child = self.child(i)?;
        child.kill()?;
        child.wait()?;
        self.members[i].child = None;
        Ok(())
    }

    /// Starts member `i` again (after [`EtcdCluster::kill`]) with its data dir and ports; with
    /// `wait`, waits until it answers `/health` (it needs a quorum: when restarting several members,
    /// restart them without waiting, then [`EtcdCluster::wait_healthy`]).
    pub fn restart(&mut self, i: usize, wait: bool) -> io::Result<()> {
        if self.members[i].child.is_some() {
            return Err(io::Error::other(format!("etcd member {i} is running")));
        }
        self.spawn(i)?;
        if wait {
            self.wait_healthy([i], HEALTH_TIMEOUT)?;
        }
        Ok(())
    }

    fn signal(&mut self, i: usize, sig: libc::c_int) -> io::Result<()> {
        let pid = self.child(i)?.id();
        let pid = libc::pid_t::try_from(pid).map_err(io::Error::other)?;
        // SAFETY: kill(2) with a PID of a child this cluster spawned and has not reaped.
        if unsafe { libc::kill(pid, sig) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// SIGSTOPs member `i` (frozen: connections stay open, nothing answers).
    pub fn stop(&mut self, i: usize) -> io::Result<()> {
        self.signal(i, libc::SIGSTOP)
    }

    /// SIGCONTs member `i` after [`EtcdCluster::stop`].
    pub fn cont(&mut self, i: usize) -> io::Result<()> {
        self.signal(i, libc::SIGCONT)
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for m in &mut self.members {
            if let Some(mut child) = m.child.take() {
                // SIGKILL also ends a SIGSTOPped member, and one without quorum ignoring SIGTERM.
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        // The TempDir field removes the directory after this.
    }
}
