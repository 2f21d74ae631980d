//! Against a real ovsdb-server on a fresh vswitch database (no ovs-vswitchd, no root needed):
//! the RFC 7047 methods over unix and TCP, bridges and ports made and removed as `ovs-vsctl`
//! sees them, monitor updates, refusals that change nothing, and a server that is not there.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::OvsdbServer;
use contiv_ovsdb::ops::{self, cond, Op};
use contiv_ovsdb::vswitch::{BridgeSpec, FailMode, PortKind, PortSpec, TunnelKey, Vswitch, DB};
use contiv_ovsdb::{Client, ClientOptions, Error, MonitorRequests};
use serde_json::json;

async fn vswitch(s: &OvsdbServer) -> Vswitch {
    let c = Client::connect(&s.unix(), ClientOptions::default())
        .await
        .unwrap();
    let v = Vswitch::new(c, "netplugin");
    v.ensure_root().await.unwrap();
    v
}

/// `ovs-vsctl get` quotes a string only when it has to.
fn unquote(s: String) -> String {
    s.trim().trim_matches('"').to_string()
}

#[tokio::test]
async fn rpc_methods_over_unix_and_tcp() {
    let s = OvsdbServer::start();
    for ep in [s.unix(), s.tcp()] {
        let c = Client::connect(&ep, ClientOptions::default())
            .await
            .unwrap();
        let dbs = c.list_dbs().await.unwrap();
        assert!(dbs.contains(&DB.to_string()), "{ep}: {dbs:?}");
        let schema = c.get_schema(DB).await.unwrap();
        assert_eq!(schema["name"], json!(DB));
        assert!(schema["tables"]["Bridge"]["columns"]["datapath_type"].is_object());
        c.echo().await.unwrap();
        let e = c.get_schema("nope").await.unwrap_err().to_string();
        assert!(e.starts_with("ovsdb-server refused get_schema"), "{e}");
    }
}

#[tokio::test]
async fn transact_insert_select_mutate_wait_delete() {
    let s = OvsdbServer::start();
    let v = vswitch(&s).await;
    let c = v.client();
    let r = c
        .transact(
            DB,
            &[
                Op::Insert {
                    table: "Controller".into(),
                    row: [("target".to_string(), json!("tcp:127.0.0.1:6653"))]
                        .into_iter()
                        .collect(),
                    uuid_name: Some("c".into()),
                },
                Op::Insert {
                    table: "Bridge".into(),
                    row: [
                        ("name".to_string(), json!("raw0")),
                        ("controller".to_string(), ops::named("c")),
                    ]
                    .into_iter()
                    .collect(),
                    uuid_name: Some("b".into()),
                },
                Op::Mutate {
                    table: DB.into(),
                    conditions: vec![],
                    mutations: vec![ops::mutation(
                        "bridges",
                        "insert",
                        ops::set(vec![ops::named("b")]),
                    )],
                },
                Op::Comment("contiv-ovsdb test".into()),
            ],
        )
        .await
        .unwrap();
    assert!(ops::as_uuid(&r[1]["uuid"]).is_some());
    assert_eq!(
        s.vsctl(&["get-controller", "raw0"]).trim(),
        "tcp:127.0.0.1:6653"
    );

    // The name index refuses a second bridge raw0 (an unreferenced one would just be garbage
    // collected); the whole transaction is undone.
    let dup = c
        .transact(
            DB,
            &[
                Op::Insert {
                    table: "Bridge".into(),
                    row: [("name".to_string(), json!("raw0"))].into_iter().collect(),
                    uuid_name: Some("dup".into()),
                },
                Op::Mutate {
                    table: DB.into(),
                    conditions: vec![],
                    mutations: vec![ops::mutation(
                        "bridges",
                        "insert",
                        ops::set(vec![ops::named("dup")]),
                    )],
                },
            ],
        )
        .await
        .unwrap_err();
    assert!(matches!(dup, Error::Transact { .. }), "{dup}");
    assert!(dup.to_string().contains("constraint violation"), "{dup}");
    assert_eq!(s.vsctl(&["list-br"]).trim(), "raw0");

    // wait with timeout 0 fails at once when the rows differ, and nothing after it runs.
    let w = c
        .transact(
            DB,
            &[
                Op::Wait {
                    table: "Bridge".into(),
                    conditions: vec![cond("name", "==", json!("raw0"))],
                    columns: vec!["name".into()],
                    equal: true,
                    rows: vec![],
                    timeout_ms: Some(0),
                },
                Op::Update {
                    table: "Bridge".into(),
                    conditions: vec![cond("name", "==", json!("raw0"))],
                    row: [("fail_mode".to_string(), json!("secure"))]
                        .into_iter()
                        .collect(),
                },
            ],
        )
        .await
        .unwrap_err();
    assert!(w.to_string().contains("operation 1 of 2: timed out"), "{w}");
    assert_eq!(s.vsctl(&["get-fail-mode", "raw0"]).trim(), "");

    let r = c
        .transact(
            DB,
            &[Op::select(
                "Bridge",
                vec![cond("name", "==", json!("raw0"))],
                &["_uuid", "name", "controller"],
            )],
        )
        .await
        .unwrap();
    assert_eq!(ops::rows(&r[0]).len(), 1);
    let d = c
        .transact(
            DB,
            &[Op::Mutate {
                table: DB.into(),
                conditions: vec![],
                mutations: vec![ops::mutation(
                    "bridges",
                    "delete",
                    ops::set(vec![r[0]["rows"][0]["_uuid"].clone()]),
                )],
            }],
        )
        .await
        .unwrap();
    assert_eq!(d[0]["count"], json!(1));
    assert_eq!(s.vsctl(&["list-br"]), "");
    // A plain delete of a row nothing references (Controller is garbage collected already).
    let d = c
        .transact(
            DB,
            &[Op::Delete {
                table: "Controller".into(),
                conditions: vec![],
            }],
        )
        .await
        .unwrap();
    assert_eq!(d[0]["count"], json!(0));
}

#[tokio::test]
async fn bridge_and_ports_created_updated_and_deleted() {
    let s = OvsdbServer::start();
    let v = vswitch(&s).await;
    let spec = BridgeSpec::netdev("ovbr0").controller("tcp:127.0.0.1:6653");
    assert!(v.ensure_bridge(&spec).await.unwrap());
    assert_eq!(s.vsctl(&["list-br"]).trim(), "ovbr0");
    assert_eq!(
        s.vsctl(&["get", "bridge", "ovbr0", "datapath_type"]).trim(),
        "netdev"
    );
    assert_eq!(s.vsctl(&["get-fail-mode", "ovbr0"]).trim(), "secure");
    assert_eq!(
        s.vsctl(&["get", "bridge", "ovbr0", "protocols"]).trim(),
        "[OpenFlow13]"
    );
    assert_eq!(
        s.vsctl(&["get-controller", "ovbr0"]).trim(),
        "tcp:127.0.0.1:6653"
    );
    assert_eq!(
        s.vsctl(&["get", "interface", "ovbr0", "type"]).trim(),
        "internal"
    );
    assert_eq!(
        unquote(s.vsctl(&["get", "bridge", "ovbr0", "external_ids:contiv-owner"])),
        "netplugin"
    );

    // Ensuring it again changes nothing (no transaction at all: the db's cur txn stays put).
    let before = s.show();
    assert!(!v.ensure_bridge(&spec).await.unwrap());
    assert_eq!(s.show(), before);
    // A different controller and fail mode are applied in place.
    let mut spec2 = spec.clone().controller("tcp:127.0.0.1:6654");
    spec2.fail_mode = FailMode::Standalone;
    assert!(!v.ensure_bridge(&spec2).await.unwrap());
    assert_eq!(
        s.vsctl(&["get-controller", "ovbr0"]).trim(),
        "tcp:127.0.0.1:6654"
    );
    assert_eq!(s.vsctl(&["get-fail-mode", "ovbr0"]).trim(), "standalone");

    let mut ids = BTreeMap::new();
    ids.insert("contiv-endpoint".to_string(), "ep-1".to_string());
    let ports = [
        PortSpec {
            ofport_request: Some(10),
            external_ids: ids.clone(),
            ..PortSpec::new("ovbr0", "ovint0", PortKind::Internal)
        },
        PortSpec::new(
            "ovbr0",
            "ovvx0",
            PortKind::Vxlan {
                remote_ip: "192.0.2.2".parse().unwrap(),
                local_ip: Some("192.0.2.1".parse().unwrap()),
                key: TunnelKey::Flow,
            },
        ),
        PortSpec::new(
            "ovbr0",
            "ovpatch0",
            PortKind::Patch {
                peer: "ovpatch1".into(),
            },
        ),
        PortSpec {
            tag: Some(42),
            ..PortSpec::new("ovbr0", "ovveth0", PortKind::System)
        },
    ];
    for p in &ports {
        assert!(v.ensure_port(p).await.unwrap(), "{}", p.name);
    }
    assert_eq!(
        s.vsctl(&["list-ports", "ovbr0"])
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["ovint0", "ovpatch0", "ovveth0", "ovvx0"]
    );
    assert_eq!(
        s.vsctl(&["get", "interface", "ovint0", "ofport_request"])
            .trim(),
        "10"
    );
    assert_eq!(
        s.vsctl(&["get", "interface", "ovint0", "external_ids"])
            .trim(),
        r#"{contiv-endpoint=ep-1, contiv-owner=netplugin}"#
    );
    assert_eq!(
        unquote(s.vsctl(&["get", "port", "ovint0", "external_ids:contiv-endpoint"])),
        "ep-1"
    );
    assert_eq!(
        s.vsctl(&["get", "interface", "ovvx0", "type"]).trim(),
        "vxlan"
    );
    assert_eq!(
        s.vsctl(&["get", "interface", "ovvx0", "options"]).trim(),
        r#"{key=flow, local_ip="192.0.2.1", remote_ip="192.0.2.2"}"#
    );
    assert_eq!(
        s.vsctl(&["get", "interface", "ovpatch0", "options:peer"])
            .trim(),
        "ovpatch1"
    );
    assert_eq!(
        s.vsctl(&["get", "interface", "ovveth0", "type"]).trim(),
        r#""""#
    );
    // A workload port's access VLAN is visible to operators.
    assert_eq!(s.vsctl(&["get", "port", "ovveth0", "tag"]).trim(), "42");
    // Re-ensured, the tag converges too (another tag, then none).
    for (tag, shown) in [(Some(43), "43"), (None, "[]")] {
        let p = PortSpec {
            tag,
            ..PortSpec::new("ovbr0", "ovveth0", PortKind::System)
        };
        assert!(!v.ensure_port(&p).await.unwrap());
        assert_eq!(s.vsctl(&["get", "port", "ovveth0", "tag"]).trim(), shown);
    }

    // Re-ensuring a port updates it in place (a new remote, a fixed VNI).
    let moved = PortSpec::new(
        "ovbr0",
        "ovvx0",
        PortKind::Vxlan {
            remote_ip: "192.0.2.3".parse().unwrap(),
            local_ip: None,
            key: TunnelKey::Fixed(5000),
        },
    );
    assert!(!v.ensure_port(&moved).await.unwrap());
    assert_eq!(
        s.vsctl(&["get", "interface", "ovvx0", "options"]).trim(),
        r#"{key="5000", remote_ip="192.0.2.3"}"#
    );

    // No vswitchd: nothing has an ofport yet.
    assert_eq!(v.ofport("ovint0").await.unwrap(), None);
    let listed = v.ports("ovbr0").await.unwrap();
    assert_eq!(listed.len(), 5, "{listed:?}"); // the bridge's own port too
    assert!(listed.iter().all(|p| p.ours && p.ofport.is_none()));
    assert_eq!(listed[1].name, "ovint0");
    assert_eq!(listed[1].external_ids["contiv-endpoint"], "ep-1");

    assert!(v.remove_port("ovbr0", "ovveth0").await.unwrap());
    assert!(!v.remove_port("ovbr0", "ovveth0").await.unwrap());
    assert!(!s.vsctl(&["list-ports", "ovbr0"]).contains("ovveth0"));
    // Its interface went with it (not a root row).
    assert!(!s
        .vsctl(&["--columns=name", "list", "interface"])
        .contains("ovveth0"));

    assert!(v.delete_bridge("ovbr0").await.unwrap());
    assert!(!v.delete_bridge("ovbr0").await.unwrap());
    assert_eq!(s.vsctl(&["list-br"]), "");
    assert_eq!(s.vsctl(&["--columns=name", "list", "port"]), "");
    assert_eq!(s.vsctl(&["--columns=name", "list", "interface"]), "");
}

#[tokio::test]
async fn monitor_reports_inserts_modifies_and_deletes() {
    let s = OvsdbServer::start();
    let v = vswitch(&s).await;
    // A second connection watches what the first one does.
    let w = Client::connect(&s.tcp(), ClientOptions::default())
        .await
        .unwrap();
    let req = MonitorRequests::new()
        .table("Bridge", &["name", "fail_mode"])
        .table("Port", &["name"]);
    let (initial, mut rx) = w.monitor(DB, "contiv-test", &req).await.unwrap();
    assert!(initial.is_empty(), "{initial:?}");
    let dup = w.monitor(DB, "contiv-test", &req).await.unwrap_err();
    assert_eq!(
        dup.to_string(),
        r#"invalid monitor id "contiv-test": already in use on this connection"#
    );
    let t0 = std::time::Instant::now();
    v.ensure_bridge(&BridgeSpec::netdev("ovmon0"))
        .await
        .unwrap();
    let u = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .unwrap()
        .unwrap();
    let latency = t0.elapsed();
    let (_, b) = u["Bridge"].iter().next().unwrap();
    assert!(b.old.is_none());
    assert_eq!(b.new.as_ref().unwrap()["name"], json!("ovmon0"));
    assert_eq!(u["Port"].len(), 1);

    let mut spec = BridgeSpec::netdev("ovmon0");
    spec.fail_mode = FailMode::Standalone;
    v.ensure_bridge(&spec).await.unwrap();
    let u = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .unwrap()
        .unwrap();
    let (_, b) = u["Bridge"].iter().next().unwrap();
    assert_eq!(b.old.as_ref().unwrap()["fail_mode"], json!("secure"));
    assert_eq!(b.new.as_ref().unwrap()["fail_mode"], json!("standalone"));

    v.delete_bridge("ovmon0").await.unwrap();
    let u = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .unwrap()
        .unwrap();
    let (_, b) = u["Bridge"].iter().next().unwrap();
    assert!(b.new.is_none() && b.old.is_some());

    w.monitor_cancel("contiv-test").await.unwrap();
    assert!(rx.recv().await.is_none(), "channel closes on cancel");
    // A new monitor sees the current contents as its initial state.
    v.ensure_bridge(&BridgeSpec::netdev("ovmon1"))
        .await
        .unwrap();
    let (initial, _rx) = w.monitor(DB, "again", &req).await.unwrap();
    assert_eq!(initial["Bridge"].len(), 1);
    eprintln!("monitor update latency: {latency:?}");
}

#[tokio::test]
async fn what_is_not_ours_is_refused_and_unchanged() {
    let s = OvsdbServer::start();
    let v = vswitch(&s).await;
    s.vsctl(&[
        "add-br",
        "ovforeign",
        "--",
        "add-port",
        "ovforeign",
        "ovfport",
    ]);
    v.ensure_bridge(&BridgeSpec::netdev("ovours"))
        .await
        .unwrap();
    // Someone else's port on our bridge.
    s.vsctl(&["add-port", "ovours", "ovtheirs"]);
    let before = s.show();

    let e = v
        .ensure_bridge(&BridgeSpec::netdev("ovforeign"))
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "bridge ovforeign is not managed by contiv (external_ids:contiv-owner=<unset>): refusing to change it"
    );
    assert!(matches!(
        v.delete_bridge("ovforeign").await,
        Err(Error::NotOurs { .. })
    ));
    let e = v
        .ensure_port(&PortSpec::new("ovforeign", "ovp1", PortKind::Internal))
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("bridge ovforeign is not managed by contiv"),
        "{e}"
    );
    let e = v
        .ensure_port(&PortSpec::new("ovours", "ovtheirs", PortKind::Internal))
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("port ovtheirs is not managed by contiv"),
        "{e}"
    );
    assert!(matches!(
        v.remove_port("ovours", "ovtheirs").await,
        Err(Error::NotOurs { .. })
    ));

    // Another agent's mark is not ours either.
    let other = Vswitch::new(
        Client::connect(&s.unix(), ClientOptions::default())
            .await
            .unwrap(),
        "someone-else",
    );
    let e = other.delete_bridge("ovours").await.unwrap_err();
    assert!(
        e.to_string()
            .contains("(external_ids:contiv-owner=netplugin)"),
        "{e}"
    );

    // Bad input, refused before anything is sent.
    for bad in [
        PortSpec::new("ovours", "a-name-far-too-long", PortKind::Internal),
        PortSpec {
            ofport_request: Some(0),
            ..PortSpec::new("ovours", "ovp2", PortKind::Internal)
        },
        PortSpec {
            tag: Some(4095),
            ..PortSpec::new("ovours", "ovp4", PortKind::System)
        },
        PortSpec::new(
            "ovours",
            "ovp3",
            PortKind::Vxlan {
                remote_ip: "192.0.2.9".parse().unwrap(),
                local_ip: None,
                key: TunnelKey::Fixed(1 << 24),
            },
        ),
    ] {
        assert!(
            matches!(v.ensure_port(&bad).await, Err(Error::Invalid { .. })),
            "{bad:?}"
        );
    }
    assert!(matches!(
        v.ensure_port(&PortSpec::new("ovnone", "ovp4", PortKind::Internal))
            .await,
        Err(Error::NoSuchBridge(_))
    ));
    let e = v.remove_port("ovforeign", "ovours").await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "port ovours is on bridge ovours, not ovforeign"
    );
    assert_eq!(s.show(), before, "refusals changed nothing");
}

#[tokio::test]
async fn server_not_running_or_gone_is_a_clear_error() {
    let mut s = OvsdbServer::start();
    let missing = format!("unix:{}", s.path().join("nothing.sock").display());
    let e = Client::connect(&missing, ClientOptions::default())
        .await
        .err()
        .unwrap();
    assert!(
        e.to_string()
            .starts_with(&format!("cannot connect to ovsdb-server at {missing}: ")),
        "{e}"
    );
    assert!(e.to_string().ends_with("(is ovsdb-server running?)"), "{e}");
    assert!(matches!(
        Client::connect("127.0.0.1:6640", ClientOptions::default()).await,
        Err(Error::Endpoint(_))
    ));

    let c = Client::connect(&s.unix(), ClientOptions::default())
        .await
        .unwrap();
    let (_, mut rx) = c
        .monitor(DB, "m", &MonitorRequests::new().table("Bridge", &[]))
        .await
        .unwrap();
    s.kill();
    assert!(
        rx.recv().await.is_none(),
        "monitor channel closes with the connection"
    );
    assert!(matches!(c.list_dbs().await, Err(Error::Disconnected)));
    let tcp = s.tcp();
    let e = Client::connect(&tcp, ClientOptions::default())
        .await
        .err()
        .unwrap();
    assert!(e.to_string().contains("(is ovsdb-server running?)"), "{e}");
}

#[tokio::test]
async fn server_echo_probes_are_answered_so_an_idle_connection_stays_up() {
    // Remotes listed in the database take an inactivity probe (1 s, the least OVS allows); a
    // client that does not answer the server's echo is dropped after two intervals.
    let s = OvsdbServer::start_with(&["--remote=db:Open_vSwitch,Open_vSwitch,manager_options"]);
    let v = vswitch(&s).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let target = format!("ptcp:{port}:127.0.0.1");
    v.client()
        .transact(
            DB,
            &[
                Op::Insert {
                    table: "Manager".into(),
                    row: [
                        ("target".to_string(), json!(target)),
                        ("inactivity_probe".to_string(), json!(1000)),
                    ]
                    .into_iter()
                    .collect(),
                    uuid_name: Some("m".into()),
                },
                Op::Mutate {
                    table: DB.into(),
                    conditions: vec![],
                    mutations: vec![ops::mutation(
                        "manager_options",
                        "insert",
                        ops::set(vec![ops::named("m")]),
                    )],
                },
            ],
        )
        .await
        .unwrap();
    let ep = format!("tcp:127.0.0.1:{port}");
    let mut c = None;
    for _ in 0..100 {
        if let Ok(cl) = Client::connect(&ep, ClientOptions::default()).await {
            c = Some(cl);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let c = c.expect("the manager remote listens");
    let (_, mut rx) = c
        .monitor(
            DB,
            "idle",
            &MonitorRequests::new().table("Bridge", &["name"]),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(3500)).await;
    c.echo()
        .await
        .expect("still connected after 3.5 s idle with a 1 s probe");
    assert!(
        rx.try_recv().is_err(),
        "no update, and the channel is still open"
    );
    let log = std::fs::read_to_string(s.path().join("ovsdb-server.log")).unwrap_or_default();
    assert!(!log.contains("no response to inactivity probe"), "{log}");
}

#[tokio::test]
async fn bridge_external_ids_are_merged_into_ours_and_refused_on_others() {
    let s = OvsdbServer::start();
    let v = vswitch(&s).await;
    v.ensure_bridge(&BridgeSpec::netdev("ovids")).await.unwrap();
    s.vsctl(&["add-br", "ovidsforeign"]);
    let ids = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    v.set_bridge_external_ids("ovids", &ids(&[("a", "1"), ("b", "{\"x\":2}")]))
        .await
        .unwrap();
    // A second write replaces one key's value and keeps the rest (and the owner mark).
    v.set_bridge_external_ids("ovids", &ids(&[("a", "3")]))
        .await
        .unwrap();
    let got = v.bridge_external_ids("ovids").await.unwrap();
    assert_eq!(
        got,
        ids(&[
            ("a", "3"),
            ("b", "{\"x\":2}"),
            ("contiv-owner", "netplugin")
        ])
    );
    assert_eq!(
        unquote(s.vsctl(&["get", "Bridge", "ovids", "external_ids:a"])),
        "3"
    );

    // Ensuring the bridge again (every agent start does) keeps keys its spec does not name.
    v.ensure_bridge(&BridgeSpec::netdev("ovids").controller("ptcp:16999:127.0.0.1"))
        .await
        .unwrap();
    assert_eq!(v.bridge_external_ids("ovids").await.unwrap(), got);

    // Refusals change nothing.
    let before = s.show();
    for (bridge, set) in [
        ("ovidsforeign", ids(&[("a", "1")])),
        ("ovids", ids(&[("contiv-owner", "someone")])),
        ("ovnone", ids(&[("a", "1")])),
    ] {
        let e = v.set_bridge_external_ids(bridge, &set).await.unwrap_err();
        assert!(
            matches!(e, Error::NotOurs { .. } | Error::Invalid { .. }),
            "{bridge}: {e}"
        );
    }
    assert!(matches!(
        v.bridge_external_ids("ovidsforeign").await,
        Err(Error::NotOurs { .. })
    ));
    assert_eq!(s.show(), before);
    assert_eq!(v.bridge_external_ids("ovids").await.unwrap(), got);
}
