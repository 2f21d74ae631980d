//! A simulated host for the root tests: ovsdb-server + ovs-vswitchd (userspace datapath) in
//! its own network namespace, workloads in theirs; everything stopped and removed on drop.
#![allow(dead_code)] // each test file uses its own part

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use contiv_datapath::{
    Encap, FwdMode, HostSpec, LocalEndpoint, MacAddr, NetworkSpec, Plumbing, RemoteEndpoint,
};
use contiv_datapath_ovs::switch::SwitchConfig;
use contiv_datapath_ovs::{OvsConfig, OvsDatapath};

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

    /// A veth pair `a`–`b` in the host's namespace.
    pub fn add_veth(&self, a: &str, b: &str) {
        self.exec(&["ip", "link", "add", a, "type", "veth", "peer", "name", b]);
    }

    /// Workload namespace `<ns>-w<n>` (a killed run's leftover removed first), removed with the
    /// host; no interface in it (the driver plumbs the veth).
    pub fn workload_netns(&mut self, n: u8) -> String {
        let wns = format!("{}-w{n}", self.ns);
        let _ = Command::new("ip")
            .args(["netns", "del", &wns])
            .stderr(std::process::Stdio::null())
            .status();
        ip(&["netns", "add", &wns]);
        self.workloads.push(wns.clone());
        wns
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

/// A host (ovs-vswitchd started) named with `tag`, with a veth pair `a`–`b` in its namespace
/// (`a` for its underlay, `b` left unused).
pub fn host_with_veth(tag: &str, a: &str, b: &str) -> Host {
    let host = Host::start_named(tag);
    host.start_vswitchd();
    host.add_veth(a, b);
    host
}

/// Hosts `tag_a` and `tag_b` (ovs-vswitchd started on each) joined by [`link_hosts`] `ua`–`ub`.
pub fn linked_hosts(tag_a: &str, tag_b: &str, ua: &str, ub: &str) -> (Host, Host) {
    let a = Host::start_named(tag_a);
    let b = Host::start_named(tag_b);
    a.start_vswitchd();
    b.start_vswitchd();
    link_hosts(&a, &b, ua, ub);
    (a, b)
}

/// A host (ovs-vswitchd started) with workload namespaces `slots` ([`Host::workload_netns`]),
/// named with `tag`: the driver plumbs the veths.
pub fn host_with_workloads(tag: &str, slots: impl IntoIterator<Item = u8>) -> Host {
    let mut host = Host::start_named(tag);
    host.start_vswitchd();
    for n in slots {
        host.workload_netns(n);
    }
    host
}

/// This test binary re-executed to run only test `test` (one thread, stdout dropped) with
/// `env`=`value` in its environment: a child process the calling test can kill.
pub fn spawn_self(test: &str, env: &str, value: String) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(env, value)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// In a child started by [`spawn_self`]: the `|`-separated fields of `env`; `None` in a
/// normal run (the child's test then does nothing).
pub fn child_args<const N: usize>(env: &str) -> Option<[String; N]> {
    let spec = std::env::var(env).ok()?;
    let fields: Vec<String> = spec.split('|').map(str::to_string).collect();
    Some(fields.try_into().expect("child environment fields"))
}

/// The switch part of a driver's config: ovsdb at `sock`, `bridge` listening for OpenFlow on
/// `openflow_port`, owned by `netplugin-test`.
pub fn switch_config(sock: &str, bridge: &str, openflow_port: u16) -> SwitchConfig {
    SwitchConfig {
        ovsdb: format!("unix:{sock}"),
        bridge: bridge.into(),
        openflow_port,
        owner: "netplugin-test".into(),
    }
}

/// A driver config for the host in netns `ns` with ovsdb at `sock`: [`switch_config`], VTEP
/// `vtep` on `underlay_ifname` (MTU 1500), no VLAN uplink, no DNS.
pub fn ovs_config(
    ns: &str,
    sock: &str,
    bridge: &str,
    openflow_port: u16,
    underlay_ifname: &str,
    vtep: Ipv4Addr,
) -> OvsConfig {
    OvsConfig {
        switch: switch_config(sock, bridge, openflow_port),
        host: HostSpec {
            vtep_ip: vtep,
            underlay_ifname: underlay_ifname.into(),
            underlay_mtu: 1500,
        },
        host_netns: Some(format!("/run/netns/{ns}").into()),
        vlan_uplink: None,
        dns: None,
    }
}

/// The underlay of host `h`: a netdev bridge `phy` holding `underlay_if` (its end of the
/// underlay veth) with address `vtep`/24 (userspace VXLAN sends from an address OVS owns).
pub fn netdev_underlay(h: &Host, phy: &str, underlay_if: &str, vtep: Ipv4Addr) {
    let cidr = format!("{vtep}/24");
    for args in [
        vec![
            "ovs-vsctl",
            "add-br",
            phy,
            "--",
            "set",
            "bridge",
            phy,
            "datapath_type=netdev",
        ],
        vec!["ovs-vsctl", "add-port", phy, underlay_if],
        vec!["ip", "link", "set", underlay_if, "up"],
        vec!["ip", "addr", "add", &cidr, "dev", phy],
        vec!["ip", "link", "set", phy, "up"],
    ] {
        h.exec(&args);
    }
}

/// Host `h` as underlay host `n`: [`netdev_underlay`] `phy` with VTEP 192.0.2.n, and the driver
/// on `bridge` (OpenFlow `openflow_port`) over it.
pub fn underlay_driver(
    h: &Host,
    n: u8,
    underlay_if: &str,
    phy: &str,
    bridge: &str,
    openflow_port: u16,
) -> (OvsDatapath, Ipv4Addr) {
    let vtep = Ipv4Addr::new(192, 0, 2, n);
    netdev_underlay(h, phy, underlay_if, vtep);
    let cfg = ovs_config(&h.ns, &h.sock(), bridge, openflow_port, phy, vtep);
    (OvsDatapath::start(cfg).unwrap(), vtep)
}

/// The underlay between hosts `a` and `b`: a veth `ua` made in `a`'s namespace, its peer `ub`
/// moved to `b`'s.
pub fn link_hosts(a: &Host, b: &Host, ua: &str, ub: &str) {
    a.add_veth(ua, ub);
    a.exec(&["ip", "link", "set", ub, "netns", &b.ns]);
}

/// Network `<tenant>:app` (10.10.0.0/24, gateway 10.10.0.1) with `vni`, `fwd_mode`, `encap`.
pub fn app_net(tenant: &str, vni: u32, fwd_mode: FwdMode, encap: Encap) -> NetworkSpec {
    NetworkSpec {
        id: format!("{tenant}:app"),
        tenant: tenant.into(),
        vni,
        subnet: "10.10.0.0/24".parse().unwrap(),
        gateway: Ipv4Addr::new(10, 10, 0, 1),
        fwd_mode,
        encap,
        mtu: 0,
    }
}

/// Network `demo:app`: VNI 5000, bridged, VXLAN.
pub fn demo_net() -> NetworkSpec {
    app_net("demo", 5000, FwdMode::Bridge, Encap::Vxlan)
}

/// Endpoint `id` of `network_id` at 10.10.0.n/24 (gateway 10.10.0.1) in namespace `wns`.
pub fn app_endpoint(id: String, network_id: &str, n: u8, wns: &str) -> LocalEndpoint {
    let a = Ipv4Addr::new(10, 10, 0, n);
    LocalEndpoint {
        id,
        network_id: network_id.into(),
        netns_path: format!("/run/netns/{wns}").into(),
        ifname: "eth0".into(),
        ip: format!("{a}/24").parse().unwrap(),
        mac: MacAddr::from_ipv4(a),
        gateway: Ipv4Addr::new(10, 10, 0, 1),
        plumbing: Plumbing::InWorkload,
    }
}

/// Endpoint `ep<n>` of `demo:app` (10.10.0.n) in namespace `wns`.
pub fn demo_ep(n: u8, wns: &str) -> LocalEndpoint {
    app_endpoint(format!("ep{n}"), "demo:app", n, wns)
}

/// [`demo_ep`] `n` in a new workload namespace of `h` ([`Host::workload_netns`]).
pub fn demo_endpoint(h: &mut Host, n: u8) -> LocalEndpoint {
    let wns = h.workload_netns(n);
    demo_ep(n, &wns)
}

/// How host with VTEP `vtep` announces local endpoint `ep` to the others.
pub fn remote(ep: &LocalEndpoint, vtep: Ipv4Addr) -> RemoteEndpoint {
    RemoteEndpoint {
        id: ep.id.clone(),
        network_id: ep.network_id.clone(),
        ip: ep.ip.addr(),
        mac: ep.mac,
        vtep,
    }
}

/// Runs `f` on a thread inside namespace `wns`: sockets it opens stay there.
pub fn in_netns<T: Send + 'static>(wns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/run/netns/{wns}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(path).expect("workload netns");
        use std::os::fd::AsRawFd;
        // SAFETY: setns on a valid netns fd changes only this thread, which ends here.
        assert_eq!(
            unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) },
            0
        );
        f()
    })
    .join()
    .expect("thread in the workload netns")
}

/// A TCP connection from namespace `wns` to `to`:`port` (2 s timeout).
pub fn tcp_connect(wns: &str, to: Ipv4Addr, port: u16) -> std::io::Result<std::net::TcpStream> {
    let addr = std::net::SocketAddr::from((to, port));
    in_netns(wns, move || {
        std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))
    })
}

/// Whether `what` goes from `c` to the accepted `s` and back (2 s read timeouts).
pub fn echo(c: &mut std::net::TcpStream, s: &mut std::net::TcpStream, what: &[u8]) -> bool {
    use std::io::{Read, Write};
    let timeout = Some(Duration::from_secs(2));
    let _ = c.set_read_timeout(timeout);
    let _ = s.set_read_timeout(timeout);
    let (mut there, mut back) = (vec![0; what.len()], vec![0; what.len()]);
    let sent = c.write_all(what).is_ok() && s.read_exact(&mut there).is_ok();
    let answered = sent && s.write_all(&there).is_ok() && c.read_exact(&mut back).is_ok();
    answered && back == what
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
