//! Open vSwitch per simulated host, for a test bed on `--datapath ovs`
//! ([`super::TestDatapath::Ovs`]).
//!
//! Each host gets its own ovsdb-server and ovs-vswitchd (userspace datapath: this kernel has no
//! openvswitch module, and a second userspace vswitchd in one namespace fails), started inside
//! the host's netns with every file (database, sockets, pidfiles, logs) under the host's
//! directory of the cluster's run dir, detached with pidfiles. They are stopped by the PIDs in
//! those pidfiles when the [`OvsHost`] drops (also when the test panics); a killed test run's
//! daemons are found the same way through its dead run dir ([`reap`]).
//!
//! The underlay veth `ul0` becomes a port of the netdev bridge [`PHY_BRIDGE`], whose internal
//! port takes over the VTEP address: userspace VXLAN sends from an address OVS itself owns.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The netdev bridge holding the underlay veth and the VTEP address.
pub const PHY_BRIDGE: &str = "ctvphy";
/// The integration bridge the agent makes and programs.
pub const BRIDGE: &str = "contivbr";
/// The bridge's OpenFlow target on the host's own loopback (one per netns: no clash).
pub const OPENFLOW_PORT: u16 = 6653;

/// Each host's end of the VLAN trunk, the agents' `--vlan-uplink`.
pub const TRUNK_IF: &str = "tr0";
/// The Linux bridge in the hub joining the hosts' trunk ends: without VLAN filtering it passes
/// 802.1Q frames untouched, like a trunk switch (this kernel has no 8021q module, none needed).
pub const TRUNK_BRIDGE: &str = "tr";
/// A stuck daemon fails the test bed's OVS commands instead of hanging the test.
const TIMEOUT: &str = "--timeout=10";

const DAEMONS: [&str; 2] = ["ovs-vswitchd", "ovsdb-server"];

/// Host `i`'s trunk: a veth `t<i>` in the hub's bridge [`TRUNK_BRIDGE`] (made on first use)
/// whose peer [`TRUNK_IF`] is in `host_netns`. The namespaces' removal takes both away.
pub fn add_trunk(hub: &Path, host_netns: &Path, i: usize) -> Result<(), String> {
    let name = |p: &Path| {
        p.file_name()
            .and_then(|n| n.to_str())
            .map(str::to_string)
            .ok_or_else(|| format!("netns path {}", p.display()))
    };
    let (hub, host) = (name(hub)?, name(host_netns)?);
    let ip = |args: &[&str]| run(Command::new("ip").arg("-n").arg(&hub).args(args));
    if ip(&["link", "show", TRUNK_BRIDGE]).is_err() {
        ip(&["link", "add", TRUNK_BRIDGE, "type", "bridge"])?;
        ip(&["link", "set", TRUNK_BRIDGE, "up"])?;
    }
    let port = format!("t{i}");
    ip(&[
        "link", "add", &port, "type", "veth", "peer", "name", TRUNK_IF, "netns", &host,
    ])?;
    ip(&["link", "set", &port, "master", TRUNK_BRIDGE, "up"])?;
    Ok(())
}

/// One host's running OVS (see the module docs).
pub struct OvsHost {
    netns: PathBuf,
    dir: PathBuf,
}

impl OvsHost {
    /// Starts ovsdb-server and ovs-vswitchd in `netns` with their files in `dir`, then puts
    /// `ul0` in [`PHY_BRIDGE`] and moves `vtep`/24 onto the bridge. On failure whatever was
    /// started is stopped again (by the returned guard's drop).
    pub fn start(netns: &Path, dir: &Path, vtep: Ipv4Addr) -> Result<OvsHost, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let h = OvsHost {
            netns: netns.to_path_buf(),
            dir: dir.to_path_buf(),
        };
        let db = dir.join("conf.db");
        run(Command::new("ovsdb-tool")
            .arg("create")
            .arg(&db)
            .arg("/usr/share/openvswitch/vswitch.ovsschema"))?;
        let remote = format!("--remote=punix:{}", h.sock().display());
        let db_arg = db.display().to_string();
        h.exec(&[
            "ovsdb-server",
            &db_arg,
            &remote,
            "--pidfile",
            "--log-file",
            "--detach",
        ])?;
        h.exec(&["ovs-vsctl", TIMEOUT, "--no-wait", "init"])?;
        let db = h.db();
        h.exec(&["ovs-vswitchd", &db, "--pidfile", "--log-file", "--detach"])?;
        let cidr = format!("{vtep}/24");
        h.exec(&[
            "ovs-vsctl",
            TIMEOUT,
            "add-br",
            PHY_BRIDGE,
            "--",
            "set",
            "bridge",
            PHY_BRIDGE,
            "datapath_type=netdev",
            "--",
            "add-port",
            PHY_BRIDGE,
            "ul0",
        ])?;
        h.exec(&["ip", "addr", "del", &cidr, "dev", "ul0"])?;
        h.exec(&["ip", "addr", "add", &cidr, "dev", PHY_BRIDGE])?;
        h.exec(&["ip", "link", "set", PHY_BRIDGE, "up"])?;
        Ok(h)
    }

    /// ovsdb-server's socket path.
    pub fn sock(&self) -> PathBuf {
        self.dir.join("db.sock")
    }

    /// ovsdb-server's endpoint as the agent's `--ovsdb` takes it.
    pub fn db(&self) -> String {
        format!("unix:{}", self.sock().display())
    }

    /// `args` run inside the host's netns with this OVS's directories in the environment (so
    /// `ovs-vsctl`, `ovs-ofctl` and `ovs-appctl` find its sockets).
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net={}", self.netns.display()))
            .arg("--")
            .args(args);
        for v in ["OVS_RUNDIR", "OVS_LOGDIR", "OVS_DBDIR"] {
            c.env(v, &self.dir);
        }
        c
    }

    /// [`OvsHost::cmd`], its stdout if it succeeded.
    pub fn exec(&self, args: &[&str]) -> Result<String, String> {
        run(&mut self.cmd(args))
    }

    /// The flows of the integration bridge as `ovs-ofctl dump-flows` prints them (no stats).
    pub fn dump_flows(&self) -> Result<String, String> {
        self.exec(&[
            "ovs-ofctl",
            TIMEOUT,
            "-O",
            "OpenFlow13",
            "--no-stats",
            "--no-names",
            "dump-flows",
            BRIDGE,
        ])
    }

    /// The groups of the integration bridge as `ovs-ofctl dump-groups` prints them (the
    /// service balancing's select groups: one bucket per provider).
    pub fn dump_groups(&self) -> Result<String, String> {
        self.exec(&[
            "ovs-ofctl",
            TIMEOUT,
            "-O",
            "OpenFlow13",
            "dump-groups",
            BRIDGE,
        ])
    }

    /// Every interface this OVS has (of every bridge) with its name, MAC, external ids and
    /// options (`ovs-vsctl list interface`), as text.
    pub fn ports(&self) -> Result<String, String> {
        self.exec(&[
            "ovs-vsctl",
            TIMEOUT,
            "--columns=name,mac_in_use,external_ids,options",
            "list",
            "interface",
        ])
    }

    fn stop(&self) {
        stop_daemons(&self.dir);
    }
}

impl Drop for OvsHost {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run(cmd: &mut Command) -> Result<String, String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A process id from `dir`'s pidfile of `daemon`, only while that process is alive and is the
/// daemon of `dir` (its command line names a file there: a reused PID is left alone).
fn daemon_pid(dir: &Path, daemon: &str) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(dir.join(format!("{daemon}.pid")))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let cmdline = String::from_utf8_lossy(&cmdline);
    (cmdline.contains(&dir.display().to_string()) && alive(pid)).then_some(pid)
}

/// Running (not a zombie: PID 1 here may not reap orphaned daemons).
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z'))
    })
}

/// SIGTERM to the daemons of `dir` (their pidfiles), SIGKILL to any still alive after 3 s.
fn stop_daemons(dir: &Path) {
    for daemon in DAEMONS {
        let Some(pid) = daemon_pid(dir, daemon) else {
            continue;
        };
        // SAFETY: kill on a PID checked just now to be this directory's daemon.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(3);
        while alive(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if alive(pid) {
            // SAFETY: as above.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

/// Stops the OVS daemons a dead run left under its run dir `run_dir` (`<host>/ovs/*.pid`).
pub fn reap(run_dir: &Path) {
    let Ok(hosts) = std::fs::read_dir(run_dir) else {
        return;
    };
    for host in hosts.flatten() {
        let dir = host.path().join("ovs");
        if dir.is_dir() {
            stop_daemons(&dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A dead run's daemons (here: shells named after its directory) are stopped by their
    /// pidfiles; a pidfile naming a process of something else (a reused PID) is left alone.
    #[test]
    fn reap_stops_a_dead_runs_daemons_and_nothing_else() {
        let run = tempfile::tempdir().unwrap();
        let dir = run.path().join("h1").join("ovs");
        std::fs::create_dir_all(&dir).unwrap();
        let spawn = |arg0: &Path| {
            Command::new("sh")
                .args(["-c", "sleep 600"])
                .arg(arg0)
                .spawn()
                .unwrap()
        };
        let mut ours = spawn(&dir.join("conf.db"));
        let mut other = spawn(Path::new("/elsewhere"));
        std::fs::write(dir.join("ovsdb-server.pid"), format!("{}\n", ours.id())).unwrap();
        std::fs::write(dir.join("ovs-vswitchd.pid"), format!("{}\n", other.id())).unwrap();
        reap(run.path());
        let status = ours.wait().unwrap();
        assert!(!status.success(), "stopped by a signal");
        assert!(
            other.try_wait().unwrap().is_none(),
            "a foreign PID was killed"
        );
        other.kill().unwrap();
        let _ = other.wait();
    }
}
