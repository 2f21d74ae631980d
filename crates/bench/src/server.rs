//! Spawning our own netmaster for a run: fresh temporary data dir, free loopback port, stopped by
//! PID (SIGTERM, then SIGKILL) when the guard is dropped.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// A netmaster child process; killed (by its PID) and its data dir removed on drop.
pub struct Spawned {
    child: Child,
    pub url: String,
    pub pid: u32,
    _data: tempfile::TempDir,
}

/// The `netmaster` next to this binary (`target/release/netmaster` when run from there).
pub fn default_netmaster() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("netmaster")))
        .unwrap_or_else(|| PathBuf::from("netmaster"))
}

pub fn free_port() -> anyhow::Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("finding a free loopback port")?;
    Ok(l.local_addr()?.port())
}

impl Spawned {
    pub fn start(bin: &Path, extra_args: &[String]) -> anyhow::Result<Spawned> {
        Self::start_at(bin, free_port()?, extra_args)
    }

    /// As [`Spawned::start`], listening on `port` (e.g. a netmaster restarted where it ran).
    pub fn start_at(bin: &Path, port: u16, extra_args: &[String]) -> anyhow::Result<Spawned> {
        let data = tempfile::Builder::new()
            .prefix("contiv-bench-")
            .tempdir()
            .context("creating a temp data dir")?;
        let addr = format!("127.0.0.1:{port}");
        let mut cmd = Command::new(bin);
        cmd.arg("--external-address")
            .arg(&addr)
            .arg("--data-dir")
            .arg(data.path())
            .arg("--mode")
            .arg("test")
            .arg("--log-level")
            .arg("warn")
            .args(extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        // If the benchmark dies (Ctrl-C, panic abort), the server goes with it.
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let pid = child.id();
        let mut s = Spawned {
            child,
            url: format!("http://{addr}"),
            pid,
            _data: data,
        };
        s.wait_ready(Duration::from_secs(20))?;
        Ok(s)
    }

    fn wait_ready(&mut self, limit: Duration) -> anyhow::Result<()> {
        let start = Instant::now();
        let agent = crate::agent();
        let probe = format!("{}/api/v1/tenants/", self.url);
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("netmaster exited before becoming ready: {status}");
            }
            if agent.get(&probe).call().is_ok() {
                return Ok(());
            }
            if start.elapsed() > limit {
                bail!("netmaster not ready after {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Spawned {
    /// `kill -9` (by its PID) and reap; dropping the guard afterwards is a no-op on the process.
    pub fn kill9(&mut self) {
        // SAFETY: kill(2) on the PID of our own child, not yet reaped.
        unsafe {
            libc::kill(self.pid as libc::pid_t, libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

/// PIDs of this process's children whose command name is `name` (e.g. the etcd members the
/// store's test harness started), for their RSS.
pub fn children_named(name: &str) -> Vec<u32> {
    let me = std::process::id();
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // "pid (comm) state ppid ..."; comm may hold spaces, so split at the last ')'.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let comm = &stat[open + 1..close];
        let ppid = stat[close + 1..]
            .split_whitespace()
            .nth(1)
            .and_then(|x| x.parse::<u32>().ok());
        if comm == name && ppid == Some(me) {
            out.push(pid);
        }
    }
    out.sort_unstable();
    out
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return; // already reaped (kill9): its PID may belong to someone else now
        }
        // Only ever the PID we started.
        unsafe {
            libc::kill(self.pid as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break;
                }
            }
        }
    }
}
