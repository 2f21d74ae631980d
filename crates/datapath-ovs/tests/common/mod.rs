//! A simulated host for the root tests: ovsdb-server + ovs-vswitchd (userspace datapath) in
//! its own network namespace, workloads in theirs; everything stopped and removed on drop.
#![allow(dead_code)] // each test file uses its own part

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use contiv_datapath::MacAddr;

pub fn run(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn ip(args: &[&str]) {
    run(Command::new("ip").args(args));
}

/// A simulated host: ovsdb-server + ovs-vswitchd in netns `ovp-<pid>`, workloads in
/// `ovp-<pid>-wN`; everything stopped and removed on drop, also when the test fails.
pub struct Host {
    pub ns: String,
    pub dir: tempfile::TempDir,
    pub workloads: Vec<String>,
}

impl Host {
    pub fn start() -> Host {
        Host::start_named("")
    }

    /// A host whose namespace names carry `tag` too (tests of one binary run in parallel).
    pub fn start_named(tag: &str) -> Host {
        let ns = format!("ovp-{}{tag}", std::process::id());
        ip(&["netns", "add", &ns]);
        let h = Host {
            ns,
            dir: tempfile::tempdir().unwrap(),
            workloads: vec![],
        };
        h.exec(&["ip", "link", "set", "lo", "up"]);
        let db = h.dir.path().join("conf.db");
        run(Command::new("ovsdb-tool")
            .arg("create")
            .arg(&db)
            .arg("/usr/share/openvswitch/vswitch.ovsschema"));
        let remote = format!("--remote=punix:{}", h.sock());
        h.exec(&[
            "ovsdb-server",
            db.to_str().unwrap(),
            &remote,
            "--pidfile",
            "--log-file",
            "--detach",
        ]);
        h
    }

    pub fn sock(&self) -> String {
        self.dir.path().join("db.sock").display().to_string()
    }

    pub fn cmd(&self, ns: &str, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns]).args(args);
        for v in ["OVS_RUNDIR", "OVS_LOGDIR", "OVS_DBDIR"] {
            c.env(v, self.dir.path());
        }
        c
    }

    pub fn exec(&self, args: &[&str]) {
        run(&mut self.cmd(&self.ns, args));
    }

    /// Workload `n`: a veth whose host end `host_if` is left in the OVS namespace.
    pub fn workload(&mut self, n: u32, host_if: &str, addr: Ipv4Addr) -> String {
        let wns = format!("{}-w{n}", self.ns);
        ip(&["netns", "add", &wns]);
        self.workloads.push(wns.clone());
        self.exec(&[
            "ip", "link", "add", host_if, "type", "veth", "peer", "name", "eth0", "netns", &wns,
        ]);
        self.exec(&["ip", "link", "set", host_if, "up"]);
        let mac = MacAddr::from_ipv4(addr).to_string();
        let cidr = format!("{addr}/24");
        for a in [
            vec!["ip", "link", "set", "lo", "up"],
            vec!["ip", "link", "set", "eth0", "address", &mac],
            vec!["ip", "addr", "add", &cidr, "dev", "eth0"],
            vec!["ip", "link", "set", "eth0", "up"],
        ] {
            run(&mut self.cmd(&wns, &a));
        }
        wns
    }

    pub fn ping(&self, wns: &str, to: Ipv4Addr, from: Option<Ipv4Addr>) -> bool {
        let to = to.to_string();
        let mut args = vec!["ping", "-c", "1", "-W", "1", "-q"];
        let from = from.map(|f| f.to_string());
        if let Some(f) = &from {
            args.extend(["-I", f]);
        }
        args.push(&to);
        self.cmd(wns, &args)
            .output()
            .is_ok_and(|o| o.status.success())
    }

    /// The MAC workload `wns` has resolved `to` to, if it has (`ip neigh`, any live state).
    pub fn neigh(&self, wns: &str, to: Ipv4Addr) -> Option<String> {
        let out = self
            .cmd(
                wns,
                &["ip", "neigh", "show", &to.to_string(), "dev", "eth0"],
            )
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let mut words = text.split_whitespace();
        words.find(|w| *w == "lladdr")?;
        words.next().map(str::to_string)
    }

    pub fn dump_flows(&self, br: &str) -> String {
        let mgmt = format!(
            "unix:{}",
            self.dir.path().join(format!("{br}.mgmt")).display()
        );
        let out = run(&mut self.cmd(
            &self.ns,
            &[
                "ovs-ofctl",
                "-O",
                "OpenFlow13",
                "--no-stats",
                "--no-names",
                "dump-flows",
                &mgmt,
            ],
        ));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The bridge's groups as `ovs-ofctl dump-groups` prints them.
    pub fn dump_groups(&self, br: &str) -> String {
        let mgmt = format!(
            "unix:{}",
            self.dir.path().join(format!("{br}.mgmt")).display()
        );
        let out = run(&mut self.cmd(
            &self.ns,
            &["ovs-ofctl", "-O", "OpenFlow13", "dump-groups", &mgmt],
        ));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A TCP connection opened inside the OVS namespace (a short-lived thread enters it).
    pub fn connect_in_ns(&self, port: u16) -> std::io::Result<std::net::TcpStream> {
        let path = PathBuf::from(format!("/run/netns/{}", self.ns));
        std::thread::spawn(move || {
            let f = std::fs::File::open(path)?;
            use std::os::fd::AsRawFd;
            // SAFETY: setns on a valid netns fd changes only this thread, which ends here.
            if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
            std::net::TcpStream::connect(("127.0.0.1", port))
        })
        .join()
        .unwrap()
    }

    /// ovsdb-server's root row, then ovs-vswitchd (on our database, in the host's netns).
    pub fn start_vswitchd(&self) {
        self.exec(&["ovs-vsctl", "--no-wait", "init"]);
        let db = format!("unix:{}", self.sock());
        self.exec(&["ovs-vswitchd", &db, "--pidfile", "--log-file", "--detach"]);
    }

    /// Runs `f` on a runtime of its own, on a thread inside the host's netns: sockets it opens
    /// (the OpenFlow target on the host's loopback) are the host's.
    pub fn in_ns<F, Fut, R>(&self, f: F) -> R
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: std::future::Future<Output = R>,
        R: Send + 'static,
    {
        let path = PathBuf::from(format!("/run/netns/{}", self.ns));
        std::thread::spawn(move || {
            let file = std::fs::File::open(path).expect("host netns");
            use std::os::fd::AsRawFd;
            // SAFETY: setns on a valid netns fd changes only this thread, which ends here.
            assert_eq!(
                unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) },
                0
            );
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(f())
        })
        .join()
        .expect("thread in the host netns")
    }

    /// Whether a TCP connection from `client` to `server_ip` (a listener in `server`) carries data:
    /// checksums must be right on the userspace datapath, where nothing fills in offloaded ones.
    pub fn tcp(&self, server: &str, client: &str, server_ip: Ipv4Addr) -> bool {
        let listener = self
            .cmd(server, &["timeout", "5", "nc", "-l", "-N", "8080"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("nc -l");
        std::thread::sleep(std::time::Duration::from_millis(200));
        let mut send = self.cmd(
            client,
            &[
                "sh",
                "-c",
                &format!("echo over-tcp | timeout 4 nc -N -w 3 {server_ip} 8080"),
            ],
        );
        let sent = send.status().is_ok_and(|s| s.success());
        let out = listener.wait_with_output().expect("nc -l output");
        sent && String::from_utf8_lossy(&out.stdout).contains("over-tcp")
    }

    /// Stops the host's ovs-vswitchd (ours, by `ovs-appctl exit`, then waits for its pid to go)
    /// and starts a new one on the same database.
    pub fn restart_vswitchd(&self) {
        let old = self.pid("ovs-vswitchd").unwrap();
        self.exec(&["ovs-appctl", "-t", "ovs-vswitchd", "exit"]);
        let t = Instant::now();
        // SAFETY: kill with signal 0 only asks whether our own daemon's pid is still there.
        while unsafe { libc::kill(old, 0) } == 0 {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "vswitchd did not exit"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        self.start_vswitchd();
    }

    pub fn pid(&self, name: &str) -> Option<i32> {
        std::fs::read_to_string(self.dir.path().join(format!("{name}.pid")))
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        for name in ["ovs-vswitchd", "ovsdb-server"] {
            let ok = self
                .cmd(&self.ns, &["ovs-appctl", "-t", name, "exit"])
                .output()
                .is_ok_and(|o| o.status.success());
            if let (false, Some(pid)) = (ok, self.pid(name)) {
                // SAFETY: kill on the pid our own daemon wrote.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        for ns in self.workloads.iter().chain([&self.ns]) {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// Waits until a `tcpdump` spawned with `stderr(Stdio::piped())` says it is capturing
/// ("listening on"), at most 10 s: a packet sent after this is in the capture (a fixed sleep
/// is not enough on a loaded machine). Its stderr is drained until it exits.
pub fn wait_capturing(child: &mut std::process::Child) {
    use std::io::BufRead;
    let err = child
        .stderr
        .take()
        .expect("tcpdump spawned with stderr piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut r = std::io::BufReader::new(err);
        let mut line = String::new();
        while r.read_line(&mut line).is_ok_and(|n| n > 0) {
            if line.contains("listening on") {
                let _ = tx.send(());
            }
            line.clear();
        }
    });
    assert!(
        rx.recv_timeout(std::time::Duration::from_secs(10)).is_ok(),
        "tcpdump did not start capturing within 10 s"
    );
}
