//! A real ovsdb-server for tests: a fresh database (`ovsdb-tool create` with the installed
//! vswitch schema) in a temp dir, listening on a unix socket there and on a loopback TCP port,
//! run as our child and killed by its pid on drop. `vsctl` is the test oracle (never used by the
//! code under test).

#![allow(dead_code)] // each test file uses a different part

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const SCHEMA: &str = "/usr/share/openvswitch/vswitch.ovsschema";

pub struct OvsdbServer {
    pub dir: tempfile::TempDir,
    pub tcp_port: u16,
    child: Child,
}

pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl OvsdbServer {
    pub fn start() -> OvsdbServer {
        OvsdbServer::start_with(&[])
    }

    /// With extra command-line arguments (e.g. another `--remote`).
    pub fn start_with(extra: &[&str]) -> OvsdbServer {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        run(Command::new("ovsdb-tool")
            .arg("create")
            .arg(d.join("conf.db"))
            .arg(SCHEMA));
        // A free loopback port: bound and released; ovsdb-server takes it a moment later.
        let tcp_port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("ovsdb-server")
            .arg(d.join("conf.db"))
            .arg(format!("--remote=punix:{}", d.join("db.sock").display()))
            .arg(format!("--remote=ptcp:{tcp_port}:127.0.0.1"))
            .arg(format!(
                "--unixctl={}",
                d.join("ovsdb-server.ctl").display()
            ))
            .arg(format!(
                "--log-file={}",
                d.join("ovsdb-server.log").display()
            ))
            .arg("--no-chdir")
            .args(extra)
            .envs(["OVS_RUNDIR", "OVS_LOGDIR", "OVS_DBDIR"].map(|v| (v, d)))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ovsdb-server (apt: openvswitch-switch)");
        let s = OvsdbServer {
            dir,
            tcp_port,
            child,
        };
        let t = Instant::now();
        while !(s.sock().exists() && std::net::TcpStream::connect(("127.0.0.1", tcp_port)).is_ok())
        {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "ovsdb-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        s
    }

    pub fn sock(&self) -> PathBuf {
        self.dir.path().join("db.sock")
    }

    pub fn unix(&self) -> String {
        format!("unix:{}", self.sock().display())
    }

    pub fn tcp(&self) -> String {
        format!("tcp:127.0.0.1:{}", self.tcp_port)
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `ovs-vsctl --no-wait` against this database: the oracle for what a user would see.
    pub fn vsctl(&self, args: &[&str]) -> String {
        run(Command::new("ovs-vsctl")
            .arg(format!("--db={}", self.unix()))
            .arg("--no-wait")
            .arg("--timeout=5")
            .args(args))
    }

    /// The whole database as `ovs-vsctl show` prints it (for "nothing changed" checks).
    pub fn show(&self) -> String {
        self.vsctl(&["show"])
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for OvsdbServer {
    fn drop(&mut self) {
        self.kill();
    }
}
