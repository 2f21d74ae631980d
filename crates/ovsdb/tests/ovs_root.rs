//! Against a real ovs-vswitchd (userspace datapath, its own network namespace and run dir): the
//! bridges and ports our client writes become real OpenFlow ports, with the ofport numbers asked
//! for, read back through OVSDB; a port vswitchd cannot open reports vswitchd's reason.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use contiv_ovsdb::vswitch::{BridgeSpec, PortKind, PortSpec, TunnelKey, Vswitch};
use contiv_ovsdb::{Client, ClientOptions, Error};

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// ovsdb-server + ovs-vswitchd in a fresh netns "ov-<pid>"; stopped (appctl, else by their own
/// pid files) and the netns removed on drop, also when the test fails.
struct NsOvs {
    ns: String,
    dir: tempfile::TempDir,
}

impl NsOvs {
    fn start() -> NsOvs {
        let ns = format!("ov-{}", std::process::id());
        run(Command::new("ip").args(["netns", "add", &ns]));
        let o = NsOvs {
            ns,
            dir: tempfile::tempdir().unwrap(),
        };
        o.exec(&["ip", "link", "set", "lo", "up"]);
        let db = o.dir().join("conf.db");
        run(Command::new("ovsdb-tool")
            .arg("create")
            .arg(&db)
            .arg("/usr/share/openvswitch/vswitch.ovsschema"));
        let remote = format!("--remote=punix:{}", o.sock().display());
        o.exec(&[
            "ovsdb-server",
            db.to_str().unwrap(),
            &remote,
            "--pidfile",
            "--log-file",
            "--detach",
        ]);
        o
    }

    /// vswitchd is started after the test wrote the root row (what `ovs-vsctl init` would do).
    fn start_vswitchd(&self) {
        let db = format!("unix:{}", self.sock().display());
        self.exec(&["ovs-vswitchd", &db, "--pidfile", "--log-file", "--detach"]);
    }

    fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn sock(&self) -> PathBuf {
        self.dir().join("db.sock")
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

    /// `ovs-ofctl show` port lines: " 7(ovin1): addr:..." → (7, "ovin1").
    fn of_ports(&self, br: &str) -> Vec<(u32, String)> {
        let mgmt = format!("unix:{}", self.dir().join(format!("{br}.mgmt")).display());
        let out = self.exec(&["ovs-ofctl", "-O", "OpenFlow13", "show", &mgmt]);
        let mut ports: Vec<(u32, String)> = out
            .lines()
            .filter_map(|l| {
                let (num, rest) = l.trim().split_once('(')?;
                let name = rest.split_once(')')?.0;
                Some((num.parse().ok()?, name.to_string()))
            })
            .collect();
        ports.sort();
        ports
    }

    fn pid(&self, name: &str) -> Option<i32> {
        std::fs::read_to_string(self.dir().join(format!("{name}.pid")))
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}

impl Drop for NsOvs {
    fn drop(&mut self) {
        for name in ["ovs-vswitchd", "ovsdb-server"] {
            let ok = self
                .cmd(&["ovs-appctl", "-t", name, "exit"])
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

#[tokio::test]
#[ignore = "needs root"]
async fn ports_get_the_ofports_asked_for_and_read_back() {
    let ovs = NsOvs::start();
    let client = Client::connect(
        &format!("unix:{}", ovs.sock().display()),
        ClientOptions::default(),
    )
    .await
    .unwrap();
    let v = Vswitch::new(client, "netplugin");
    v.ensure_root().await.unwrap();
    ovs.start_vswitchd();
    // A workload's veth end inside the namespace, for a system port.
    ovs.exec(&[
        "ip", "link", "add", "ovv1", "type", "veth", "peer", "name", "ovv1p",
    ]);
    ovs.exec(&["ip", "link", "set", "ovv1", "up"]);

    assert!(v.ensure_bridge(&BridgeSpec::netdev("ovint")).await.unwrap());
    assert!(v.ensure_bridge(&BridgeSpec::netdev("ovphy")).await.unwrap());
    let t0 = Instant::now();
    let wanted = [
        (
            PortSpec {
                ofport_request: Some(7),
                ..PortSpec::new("ovint", "ovin1", PortKind::Internal)
            },
            Some(7),
        ),
        (
            PortSpec {
                ofport_request: Some(20),
                ..PortSpec::new("ovint", "ovv1", PortKind::System)
            },
            Some(20),
        ),
        (
            PortSpec::new(
                "ovint",
                "ovpa",
                PortKind::Patch {
                    peer: "ovpb".into(),
                },
            ),
            None,
        ),
        (
            PortSpec::new(
                "ovphy",
                "ovpb",
                PortKind::Patch {
                    peer: "ovpa".into(),
                },
            ),
            None,
        ),
        (
            PortSpec {
                ofport_request: Some(100),
                ..PortSpec::new(
                    "ovint",
                    "ovvx",
                    PortKind::Vxlan {
                        remote_ip: "192.0.2.2".parse().unwrap(),
                        local_ip: None,
                        key: TunnelKey::Flow,
                    },
                )
            },
            Some(100),
        ),
    ];
    for (p, _) in &wanted {
        v.ensure_port(p).await.unwrap();
    }
    for (p, want) in &wanted {
        let got = v
            .wait_ofport(&p.name, Duration::from_secs(10))
            .await
            .unwrap();
        if let Some(w) = want {
            assert_eq!(got, *w, "{}", p.name);
        }
    }
    eprintln!(
        "5 ports added and attached by vswitchd in {:?}",
        t0.elapsed()
    );

    // What OpenFlow sees equals what OVSDB reports.
    let listed = v.ports("ovint").await.unwrap();
    let from_db: Vec<(u32, String)> = listed
        .iter()
        .filter(|p| p.name != "ovint")
        .map(|p| (p.ofport.unwrap(), p.name.clone()))
        .collect();
    let mut from_db = from_db;
    from_db.sort();
    let from_of: Vec<(u32, String)> = ovs.of_ports("ovint").into_iter().collect();
    assert_eq!(from_db, from_of);
    assert_eq!(from_of.iter().find(|(_, n)| n == "ovin1").unwrap().0, 7);

    // A device that does not exist: vswitchd's reason comes back, not a silent "no ofport".
    v.ensure_port(&PortSpec::new("ovint", "ovnope", PortKind::System))
        .await
        .unwrap();
    let e = loop {
        match v.ofport("ovnope").await {
            Err(e) => break e,
            Ok(None) => tokio::time::sleep(Duration::from_millis(20)).await,
            Ok(Some(p)) => panic!("ovnope got ofport {p}"),
        }
    };
    assert!(matches!(e, Error::Interface { .. }), "{e}");
    assert!(
        e.to_string()
            .starts_with("interface ovnope failed in ovs-vswitchd: "),
        "{e}"
    );

    // wait_ofport waits inside ovsdb-server (an RFC 7047 wait on the ofport column) for
    // vswitchd's answer: a device that fails ends the wait with vswitchd's reason (asked right
    // after the port was added, before vswitchd has looked at it), and a name without an
    // interface row fails at once rather than waiting out the timeout.
    v.ensure_port(&PortSpec::new("ovint", "ovnope2", PortKind::System))
        .await
        .unwrap();
    let e = v
        .wait_ofport("ovnope2", Duration::from_secs(10))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Interface { .. }), "{e}");
    let e = v
        .wait_ofport("ovnone", Duration::from_secs(10))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Invalid { .. }), "{e}");
    assert!(v.remove_port("ovint", "ovnope2").await.unwrap());

    // Removed ports leave the OpenFlow bridge; a deleted bridge leaves vswitchd.
    assert!(v.remove_port("ovint", "ovnope").await.unwrap());
    assert!(v.remove_port("ovint", "ovv1").await.unwrap());
    let t = Instant::now();
    while ovs.of_ports("ovint").iter().any(|(_, n)| n == "ovv1") {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "ovv1 still on the bridge"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(v.delete_bridge("ovphy").await.unwrap());
    let t = Instant::now();
    while ovs.exec(&["ovs-appctl", "dpif/show"]).contains("ovphy") {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "ovphy still in vswitchd"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
