//! A simulated Open vSwitch host for the OVS benchmarks: a network namespace with its own
//! ovsdb-server and ovs-vswitchd (userspace datapath), both started here and stopped by the PIDs
//! they wrote (`ovs-appctl exit`, then SIGKILL), the namespace and the workloads' namespaces
//! removed on drop, also when the benchmark fails. Other engineers run ovs-vswitchd on the same
//! machine: nothing here ever looks a process up by name.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};

/// Runs `cmd`, failing with its stderr when it fails.
pub fn run(cmd: &mut Command) -> anyhow::Result<Output> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?}: {}{}",
            String::from_utf8_lossy(&out.stderr).trim(),
            String::from_utf8_lossy(&out.stdout).trim()
        );
    }
    Ok(out)
}

/// Removes a namespace left by an earlier, killed run with the same name (absent is fine).
fn drop_ns(ns: &str) {
    let _ = Command::new("ip").args(["netns", "del", ns]).output();
}

pub struct OvsHost {
    pub ns: String,
    pub dir: tempfile::TempDir,
    /// Workload namespaces made by [`OvsHost::workload`] (removed on drop).
    pub workloads: Vec<String>,
    /// The daemons started here, by the PIDs they wrote.
    pids: Vec<(String, i32)>,
}

impl OvsHost {
    /// Namespace `ovb-<pid>-<tag>` with ovsdb-server and ovs-vswitchd running in it.
    pub fn start(tag: &str) -> anyhow::Result<OvsHost> {
        let ns = format!("ovb-{}-{tag}", std::process::id());
        drop_ns(&ns);
        run(Command::new("ip").args(["netns", "add", &ns]))?;
        let mut h = OvsHost {
            ns,
            dir: tempfile::Builder::new().prefix("ovb").tempdir()?,
            workloads: vec![],
            pids: vec![],
        };
        h.exec(&["ip", "link", "set", "lo", "up"])?;
        let db = h.path("conf.db");
        run(Command::new("ovsdb-tool")
            .arg("create")
            .arg(&db)
            .arg("/usr/share/openvswitch/vswitch.ovsschema"))?;
        let remote = format!("--remote=punix:{}", h.sock());
        let db = db.display().to_string();
        h.exec(&[
            "ovsdb-server",
            &db,
            &remote,
            "--pidfile",
            "--log-file",
            "--detach",
        ])?;
        h.remember("ovsdb-server")?;
        h.exec(&["ovs-vsctl", "--no-wait", "init"])?;
        let dbsock = format!("unix:{}", h.sock());
        h.exec(&[
            "ovs-vswitchd",
            &dbsock,
            "--pidfile",
            "--log-file",
            "--detach",
        ])?;
        h.remember("ovs-vswitchd")?;
        Ok(h)
    }

    fn remember(&mut self, daemon: &str) -> anyhow::Result<()> {
        let file = self.path(&format!("{daemon}.pid"));
        let pid = std::fs::read_to_string(&file)
            .with_context(|| format!("{daemon} wrote no pid file {}", file.display()))?
            .trim()
            .parse()
            .with_context(|| format!("{daemon}'s pid file {}", file.display()))?;
        self.pids.push((daemon.to_string(), pid));
        Ok(())
    }

    /// The PID `daemon` (`ovs-vswitchd`, `ovsdb-server`) wrote at start.
    pub fn pid(&self, daemon: &str) -> Option<i32> {
        self.pids.iter().find(|(d, _)| d == daemon).map(|(_, p)| *p)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// ovsdb-server's socket.
    pub fn sock(&self) -> String {
        self.path("db.sock").display().to_string()
    }

    /// A bridge's OpenFlow management socket (what `ovs-ofctl` talks to).
    pub fn mgmt(&self, bridge: &str) -> String {
        format!("unix:{}", self.path(&format!("{bridge}.mgmt")).display())
    }

    pub fn netns_path(&self) -> PathBuf {
        Path::new("/run/netns").join(&self.ns)
    }

    /// A command inside namespace `ns` with this host's OVS directories.
    pub fn cmd(&self, ns: &str, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns]).args(args);
        for v in ["OVS_RUNDIR", "OVS_LOGDIR", "OVS_DBDIR"] {
            c.env(v, self.dir.path());
        }
        c
    }

    pub fn exec(&self, args: &[&str]) -> anyhow::Result<Output> {
        run(&mut self.cmd(&self.ns, args))
    }

    /// `ovs-ofctl -O OpenFlow13 <opts…> <command> <bridge's socket> <rest…>`; its stdout.
    pub fn ofctl(
        &self,
        opts: &[&str],
        command: &str,
        bridge: &str,
        rest: &[&str],
    ) -> anyhow::Result<String> {
        let out = run(Command::new("ovs-ofctl")
            .args(["-O", "OpenFlow13"])
            .args(opts)
            .arg(command)
            .arg(self.mgmt(bridge))
            .args(rest))?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The flows `bridge` holds, one `dump-flows` line each (no statistics, sorted).
    pub fn flow_lines(&self, bridge: &str) -> anyhow::Result<Vec<String>> {
        let text = self.ofctl(&["--no-stats", "--no-names"], "dump-flows", bridge, &[])?;
        let mut v: Vec<String> = text
            .lines()
            .filter(|l| l.contains("cookie="))
            .map(|l| l.trim().to_string())
            .collect();
        v.sort();
        Ok(v)
    }

    /// Workload `name`: a namespace `<ns>-<name>` with `eth0` (address `cidr`, MAC `mac`,
    /// checksum offload off: nothing fills in checksums on the userspace datapath) whose peer
    /// `host_if` is left up in the host namespace.
    pub fn workload(
        &mut self,
        name: &str,
        host_if: &str,
        cidr: &str,
        mac: &str,
    ) -> anyhow::Result<String> {
        let wns = format!("{}-{name}", self.ns);
        drop_ns(&wns);
        run(Command::new("ip").args(["netns", "add", &wns]))?;
        self.workloads.push(wns.clone());
        self.exec(&[
            "ip", "link", "add", host_if, "type", "veth", "peer", "name", "eth0", "netns", &wns,
        ])?;
        self.exec(&["ip", "link", "set", host_if, "up"])?;
        for a in [
            vec!["ip", "link", "set", "lo", "up"],
            vec!["ip", "link", "set", "eth0", "address", mac],
            vec!["ip", "addr", "add", cidr, "dev", "eth0"],
            vec!["ip", "link", "set", "eth0", "up"],
            vec!["ethtool", "-K", "eth0", "tx", "off"],
        ] {
            run(&mut self.cmd(&wns, &a))?;
        }
        Ok(wns)
    }

    /// Stops both daemons (each by the PID it wrote) and waits until they are gone.
    fn stop(&mut self) {
        for (daemon, pid) in std::mem::take(&mut self.pids).into_iter().rev() {
            let asked = self
                .cmd(&self.ns, &["ovs-appctl", "-t", &daemon, "exit"])
                .output()
                .is_ok_and(|o| o.status.success());
            let deadline = Instant::now() + Duration::from_secs(if asked { 5 } else { 0 });
            while alive(pid) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if alive(pid) {
                // SAFETY: kill(2) on the PID our own daemon wrote at start.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
}

fn alive(pid: i32) -> bool {
    // Not a zombie of ours: the daemons detach, so their parent is init.
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

impl Drop for OvsHost {
    fn drop(&mut self) {
        self.stop();
        for ns in self.workloads.iter().chain([&self.ns]) {
            drop_ns(ns);
        }
    }
}

/// Runs `f` on a current-thread tokio runtime in a thread inside `ns` (sockets it opens, e.g.
/// the OpenFlow target on the host's loopback, are the host's).
pub fn in_ns<R, F, Fut>(ns: &Path, f: F) -> anyhow::Result<R>
where
    R: Send,
    F: FnOnce() -> Fut + Send,
    Fut: std::future::Future<Output = R>,
{
    contiv_netplugin::testbed::in_netns(ns, || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map(|rt| rt.block_on(f()))
    })
    .map_err(|e| anyhow!(e))?
    .context("tokio runtime")
}

/// CPU seconds (user + system) process `pid` has used so far, from `/proc/PID/stat`.
pub fn cpu_secs(pid: i32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces) start at field 3; utime and stime
    // are fields 14 and 15.
    let rest = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| -> anyhow::Result<f64> {
        f.get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .ok_or_else(|| anyhow!("/proc/{pid}/stat: no field {}", i + 3))
    };
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Ok((tick(11)? + tick(12)?) / hz)
}
