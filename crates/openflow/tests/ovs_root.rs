//! Against a real ovs-vswitchd (netdev bridge, own network namespace and run dir): our client
//! installs flows in one bundle, `ovs-ofctl dump-flows` shows them, a refused bundle changes
//! nothing, and a delete by cookie mask removes exactly the flows of that cookie range.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use contiv_openflow::*;

/// One ovsdb-server + ovs-vswitchd in a fresh netns; stopped (by appctl, then by pid) on drop.
struct Ovs {
    ns: String,
    dir: tempfile::TempDir,
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Ovs {
    /// `tag` tells apart the hosts of tests of one binary running in parallel.
    fn start(tag: &str) -> Ovs {
        let ns = format!("of-rt-{}{tag}", std::process::id());
        run(Command::new("ip").args(["netns", "add", &ns]));
        let ovs = Ovs {
            ns,
            dir: tempfile::tempdir().unwrap(),
        };
        ovs.exec(&["ip", "link", "set", "lo", "up"]);
        let d = ovs.dir();
        let db = d.join("conf.db");
        run(Command::new("ovsdb-tool")
            .arg("create")
            .arg(&db)
            .arg("/usr/share/openvswitch/vswitch.ovsschema"));
        let sock = format!("--remote=punix:{}", d.join("db.sock").display());
        ovs.exec(&[
            "ovsdb-server",
            db.to_str().unwrap(),
            &sock,
            "--pidfile",
            "--log-file",
            "--detach",
        ]);
        ovs.vsctl(&["--no-wait", "init"]);
        let dbs = format!("unix:{}", d.join("db.sock").display());
        ovs.exec(&["ovs-vswitchd", &dbs, "--pidfile", "--log-file", "--detach"]);
        ovs
    }

    fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns]).args(args);
        for v in ["OVS_RUNDIR", "OVS_LOGDIR", "OVS_DBDIR"] {
            c.env(v, self.dir());
        }
        c
    }

    fn exec(&self, args: &[&str]) -> String {
        run(&mut self.cmd(args))
    }

    fn vsctl(&self, args: &[&str]) -> String {
        let db = format!("--db=unix:{}", self.dir().join("db.sock").display());
        let mut a = vec!["ovs-vsctl", db.as_str()];
        a.extend_from_slice(args);
        self.exec(&a)
    }

    fn pid(&self, name: &str) -> Option<i32> {
        std::fs::read_to_string(self.dir().join(format!("{name}.pid")))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// A TCP connection opened inside the namespace (a thread enters it; the socket stays there).
    fn connect_in_ns(&self, port: u16) -> std::io::Result<std::net::TcpStream> {
        let path = PathBuf::from(format!("/run/netns/{}", self.ns));
        std::thread::spawn(move || {
            let f = std::fs::File::open(path)?;
            use std::os::fd::AsRawFd;
            // SAFETY: setns on a valid netns fd changes only this (short-lived) thread.
            if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
            std::net::TcpStream::connect(("127.0.0.1", port))
        })
        .join()
        .unwrap()
    }

    fn flows(&self, br: &str) -> Vec<String> {
        let mgmt = format!("unix:{}", self.dir().join(format!("{br}.mgmt")).display());
        let out = self.exec(&[
            "ovs-ofctl",
            "-O",
            "OpenFlow13",
            "--no-names",
            "dump-flows",
            &mgmt,
        ]);
        out.lines()
            .filter(|l| l.contains("cookie="))
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Ovs {
    fn drop(&mut self) {
        for (target, name) in [
            ("ovs-vswitchd", "ovs-vswitchd"),
            ("ovsdb-server", "ovsdb-server"),
        ] {
            let ok = self
                .cmd(&["ovs-appctl", "-t", target, "exit"])
                .output()
                .is_ok_and(|o| o.status.success());
            if let (false, Some(pid)) = (ok, self.pid(name)) {
                // SAFETY: kill on the pid our own daemon wrote.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
    }
}

fn flow(table: u8, prio: u16, cookie: u64, port: u32, next: Option<u8>) -> Message {
    let mut i = vec![Instruction::ApplyActions(vec![Action::Output {
        port,
        max_len: 0,
    }])];
    i.extend(next.map(Instruction::GotoTable));
    let mut f = FlowMod::add(table, prio, Match(vec![Field::InPort(port + 100)]), i);
    f.cookie = cookie;
    Message::FlowMod(f)
}

#[tokio::test]
#[ignore = "needs root"]
async fn bundle_install_dump_and_delete_by_cookie_mask() {
    let ovs = Ovs::start("b");
    let br = format!("ofbr{}", std::process::id() % 100_000);
    let port = 16653;
    let target = format!("ptcp:{port}:127.0.0.1");
    ovs.vsctl(&[
        "add-br",
        &br,
        "--",
        "set",
        "bridge",
        &br,
        "datapath_type=netdev",
        "protocols=OpenFlow13",
        "fail_mode=secure",
        "--",
        "set-controller",
        &br,
        &target,
    ]);
    let mut stream = None;
    for _ in 0..50 {
        if let Ok(s) = ovs.connect_in_ns(port) {
            stream = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stream = stream.expect("vswitchd's ptcp controller target");
    stream.set_nonblocking(true).unwrap();
    let stream = tokio::net::TcpStream::from_std(stream).unwrap();
    let (sw, _events) = Switch::handshake(stream, &ConnOptions::default())
        .await
        .unwrap();
    assert!(sw.features().n_tables > 10);

    let round1 = 0x1_0000_0000u64;
    let other = 0x2_0000_0000u64;
    let msgs = [
        flow(0, 100, round1 | 1, 1, Some(3)),
        flow(3, 100, round1 | 2, 2, None),
        flow(0, 90, other | 3, 3, None),
    ];
    sw.bundle(1, &msgs).await.unwrap();
    let flows = ovs.flows(&br);
    assert_eq!(flows.len(), 3, "{flows:#?}");
    assert!(
        flows
            .iter()
            .any(|f| f.contains("cookie=0x100000002") && f.contains("table=3")),
        "{flows:#?}"
    );

    // goto_table backwards is refused: the whole bundle is discarded, nothing changes.
    let bad = [
        flow(5, 1, other | 4, 4, None),
        flow(6, 1, other | 5, 5, Some(2)),
    ];
    let err = sw.bundle(2, &bad).await.unwrap_err();
    assert!(matches!(err, ConnError::Rejected { .. }), "{err}");
    assert_eq!(ovs.flows(&br).len(), 3);

    sw.send_batch(&[Message::FlowMod(FlowMod::delete_by_cookie(
        round1,
        0xffff_ffff_0000_0000,
    ))])
    .await
    .unwrap();
    let flows = ovs.flows(&br);
    assert_eq!(flows.len(), 1, "{flows:#?}");
    assert!(flows[0].contains("cookie=0x200000003"), "{flows:#?}");

    let stats = sw
        .multipart(MultipartRequest::Flow(FlowStatsRequest::all()))
        .await
        .unwrap();
    let n: usize = stats
        .iter()
        .map(|p| {
            if let MultipartReply::Flow { stats, .. } = p {
                stats.len()
            } else {
                0
            }
        })
        .sum();
    assert_eq!(n, 1);
}

/// The bridge's management socket (`<rundir>/<bridge>.mgmt`) speaks OpenFlow too, with no
/// controller configured: what an agent uses while `flow-restore-wait` holds controllers back.
#[tokio::test]
#[ignore = "needs root"]
async fn the_management_socket_takes_a_bundle_without_any_controller() {
    let ovs = Ovs::start("m");
    let br = format!("ofmg{}", std::process::id() % 100_000);
    ovs.vsctl(&[
        "add-br",
        &br,
        "--",
        "set",
        "bridge",
        &br,
        "datapath_type=netdev",
        "protocols=OpenFlow13",
        "fail_mode=secure",
    ]);
    let path = ovs.dir().join(format!("{br}.mgmt"));
    let mut sw = None;
    for _ in 0..50 {
        if let Ok((s, _events)) =
            contiv_openflow::connect_unix(&path, &ConnOptions::default()).await
        {
            sw = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let sw = sw.expect("vswitchd's management socket");
    sw.bundle(1, &[flow(0, 100, 0x1_0000_0000, 1, None)])
        .await
        .unwrap();
    assert_eq!(ovs.flows(&br).len(), 1);

    let missing = ovs.dir().join("nobr.mgmt");
    let e = contiv_openflow::connect_unix(&missing, &ConnOptions::default())
        .await
        .err()
        .expect("no socket there")
        .to_string();
    assert!(e.contains("nobr.mgmt"), "{e}");
}
