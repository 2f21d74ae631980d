//! The rendered pipeline in a real ovs-vswitchd (userspace datapath, its own netns): ports made
//! through our OVSDB client, flows installed in one OpenFlow bundle. OVS accepts every flow and
//! `ovs-ofctl dump-flows` shows exactly what we rendered; workloads in their own namespaces then
//! reach each other through it, policy denies what the rules deny, and the source guard drops a
//! forged source address.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::time::Duration;

use contiv_datapath::{LocalEndpoint, MacAddr, RemoteEndpoint};
use contiv_datapath_ovs::{diff, dump, render, Desired, Ports};
use contiv_openflow::{
    ConnOptions, FlowStatsRequest, Message, MultipartReply, MultipartRequest, Switch,
};
use contiv_ovsdb::vswitch::{BridgeSpec, PortKind, PortSpec, TunnelKey, Vswitch};
use contiv_ovsdb::{Client, ClientOptions};
use contiv_policy::{
    compile_tenant, GroupRef, HostPolicy, Member, NetworkRef, PolicyInput, RuleSpec, Scope,
};

mod common;
use common::{demo_ep, demo_net, run, Host};

/// The flow lines of a dump, as a set (OVS orders flows of equal priority its own way).
fn lines(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| l.contains("cookie="))
        .map(|l| l.trim().to_string())
        .collect()
}

fn host_policy(with_deny: bool) -> HostPolicy {
    let rule = |id: &str, act: &str, prio: i64, from: &str| {
        let r = contiv_model::Rule {
            tenant_name: "demo".into(),
            policy_name: "db-in".into(),
            rule_id: id.into(),
            direction: "in".into(),
            action: act.into(),
            priority: prio,
            protocol: "icmp".into(),
            from_endpoint_group: from.into(),
            ..Default::default()
        };
        RuleSpec::from_model(&r).unwrap()
    };
    let member = |g: &str, last: u8| Member {
        id: format!("ep{last}"),
        tenant: "demo".into(),
        group: g.into(),
        ip: Ipv4Addr::new(10, 10, 0, last),
        host: "h1".into(),
    };
    let input = PolicyInput {
        networks: vec![NetworkRef {
            tenant: "demo".into(),
            name: "app".into(),
            subnet: "10.10.0.0/24".parse().unwrap(),
        }],
        groups: vec![
            GroupRef {
                tenant: "demo".into(),
                name: "db".into(),
                policies: vec!["db-in".into()],
            },
            GroupRef {
                tenant: "demo".into(),
                name: "web".into(),
                policies: vec![],
            },
        ],
        rules: [rule("1", "deny", 1, ""), rule("2", "allow", 10, "web")]
            .into_iter()
            .filter(|r| with_deny || r.action == contiv_policy::Action::Allow)
            .collect(),
        endpoints: vec![member("web", 2), member("db", 3), member("", 5)],
    };
    [(
        "demo".to_string(),
        compile_tenant(&input, Scope::Host("h1"), "demo"),
    )]
    .into_iter()
    .collect()
}

#[tokio::test]
#[ignore = "needs root"]
async fn rendered_pipeline_runs_in_a_real_vswitchd() {
    let mut host = Host::start();
    let client = Client::connect(&format!("unix:{}", host.sock()), ClientOptions::default())
        .await
        .unwrap();
    let vsw = Vswitch::new(client, "netplugin-test");
    vsw.ensure_root().await.unwrap();
    let vswitchd_db = format!("unix:{}", host.sock());
    host.exec(&[
        "ovs-vswitchd",
        &vswitchd_db,
        "--pidfile",
        "--log-file",
        "--detach",
    ]);
    let of_port = 16653;
    let br = "ovpbr";
    vsw.ensure_bridge(&BridgeSpec::netdev(br).controller(&format!("ptcp:{of_port}:127.0.0.1")))
        .await
        .unwrap();

    let net = demo_net();
    let addrs: Vec<Ipv4Addr> = [2, 3, 5].map(|l| Ipv4Addr::new(10, 10, 0, l)).to_vec();
    let pid = std::process::id() % 100_000;
    let mut locals = vec![];
    let mut wns = vec![];
    let mut ports = Ports::default();
    for (i, a) in addrs.iter().enumerate() {
        let n = i as u32 + 1;
        let host_if = format!("ovp{pid}w{n}");
        wns.push(host.workload(n, &host_if, *a));
        let id = format!("ep{}", a.octets()[3]);
        let spec = PortSpec {
            ofport_request: Some(n as u16 + 2),
            external_ids: [("contiv-endpoint".to_string(), id.clone())]
                .into_iter()
                .collect(),
            ..PortSpec::new(br, &host_if, PortKind::System)
        };
        vsw.ensure_port(&spec).await.unwrap();
        let ofport = vsw
            .wait_ofport(&host_if, Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(ofport, n + 2);
        ports.endpoints.insert(id.clone(), ofport);
        locals.push(demo_ep(a.octets()[3], &wns[i]));
    }

    // A tunnel to another host (VXLAN, key=flow) and one endpoint behind it: its flows must be
    // accepted and dumped as rendered too (traffic across hosts is for the driver's tests).
    let vtep2 = Ipv4Addr::new(192, 0, 2, 2);
    let tunnel = PortSpec {
        ofport_request: Some(1),
        ..PortSpec::new(
            br,
            &format!("ovp{pid}vx"),
            PortKind::Vxlan {
                remote_ip: vtep2.into(),
                local_ip: None,
                key: TunnelKey::Flow,
            },
        )
    };
    vsw.ensure_port(&tunnel).await.unwrap();
    let tun_port = vsw
        .wait_ofport(&tunnel.name, Duration::from_secs(10))
        .await
        .unwrap();
    ports.tunnels.insert(vtep2, tun_port);
    let remotes = [RemoteEndpoint {
        id: "ep4".into(),
        network_id: net.id.clone(),
        ip: Ipv4Addr::new(10, 10, 0, 4),
        mac: MacAddr::from_ipv4(Ipv4Addr::new(10, 10, 0, 4)),
        vtep: vtep2,
    }];

    let policy = host_policy(true);
    let mut groups = contiv_datapath_ovs::GroupNumbers::default();
    groups.assign(&policy);
    let tenants: BTreeMap<String, u16> = [("demo".to_string(), 1)].into_iter().collect();
    let networks = [net];
    let rendered = render(&Desired {
        networks: &networks,
        local_endpoints: &locals,
        remote_endpoints: &remotes,
        policy: &policy,
        ports: &ports,
        tenants: &tenants,
        groups: &groups,
        services: &Default::default(),
        round: 1,
    });
    assert!(rendered.pending.is_empty(), "{:?}", rendered.pending);

    let mut stream = None;
    for _ in 0..100 {
        if let Ok(s) = host.connect_in_ns(of_port) {
            stream = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stream = stream.expect("vswitchd's ptcp controller target");
    stream.set_nonblocking(true).unwrap();
    let (sw, _events) = Switch::handshake(
        tokio::net::TcpStream::from_std(stream).unwrap(),
        &ConnOptions::default(),
    )
    .await
    .unwrap();
    let msgs: Vec<Message> = rendered
        .flows
        .iter()
        .cloned()
        .map(Message::FlowMod)
        .collect();
    let t = std::time::Instant::now();
    sw.bundle(1, &msgs).await.unwrap();
    eprintln!(
        "{} flows installed in one bundle in {:?}",
        msgs.len(),
        t.elapsed()
    );

    // What OVS holds is exactly what we rendered, line for line as ovs-ofctl prints it.
    let ours = lines(&dump::dump(&rendered.flows));
    let theirs = lines(&host.dump_flows(br));
    let missing: Vec<_> = ours.difference(&theirs).collect();
    let extra: Vec<_> = theirs.difference(&ours).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "rendered but not in OVS: {missing:#?}\nin OVS but not rendered: {extra:#?}"
    );

    // w1 (web) → w2 (db): icmp allowed from web; w3 (no group) → w2 denied; into w1 and w3
    // (no in-rules) anyone may; replies pass (conntrack).
    let (w1, w2, w3) = (&wns[0], &wns[1], &wns[2]);
    assert!(host.ping(w1, addrs[1], None), "web → db allowed");
    assert!(!host.ping(w3, addrs[1], None), "ungrouped → db denied");
    assert!(host.ping(w2, addrs[0], None), "db → web");
    assert!(host.ping(w3, addrs[0], None), "ungrouped → web");
    // ARP was answered by the pipeline (no static neighbours, no flooding): w1 learnt w2's MAC
    // and the gateway's (the router MAC); an endpoint on the other host is answered here too;
    // an address nobody has gets no answer.
    assert_eq!(
        host.neigh(w1, addrs[1]),
        Some(MacAddr::from_ipv4(addrs[1]).to_string())
    );
    host.ping(w1, Ipv4Addr::new(10, 10, 0, 1), None);
    assert_eq!(
        host.neigh(w1, Ipv4Addr::new(10, 10, 0, 1)),
        Some("00:00:11:11:11:11".to_string())
    );
    host.ping(w1, Ipv4Addr::new(10, 10, 0, 4), None);
    assert_eq!(
        host.neigh(w1, Ipv4Addr::new(10, 10, 0, 4)),
        Some(MacAddr::from_ipv4(Ipv4Addr::new(10, 10, 0, 4)).to_string())
    );
    assert!(!host.ping(w1, Ipv4Addr::new(10, 10, 0, 77), None));
    assert_eq!(host.neigh(w1, Ipv4Addr::new(10, 10, 0, 77)), None);
    // The source guard: w3 sending from an address that is not its own is dropped at its port.
    run(&mut host.cmd(w3, &["ip", "addr", "add", "10.10.0.9/24", "dev", "eth0"]));
    assert!(
        !host.ping(w3, addrs[0], Some(Ipv4Addr::new(10, 10, 0, 9))),
        "forged source dropped"
    );

    // The deny rule's cookie counts the denied ping: per-rule counters come from flow stats.
    let (&deny, _) = rendered
        .rules
        .iter()
        .find(|(_, r)| r.to_string() == "demo:db-in:1")
        .unwrap();
    let cookie = contiv_datapath_ovs::pipeline::cookie(
        1,
        contiv_datapath_ovs::pipeline::Category::Policy,
        deny,
    );
    let mgmt = format!(
        "unix:{}",
        host.dir.path().join(format!("{br}.mgmt")).display()
    );
    let filter = format!("cookie={cookie:#x}/-1");
    let out = run(&mut host.cmd(
        &host.ns,
        &[
            "ovs-ofctl",
            "-O",
            "OpenFlow13",
            "dump-flows",
            &mgmt,
            &filter,
        ],
    ));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("n_packets=1,"), "{text}");

    // Churn: w1 leaves and db's deny rule goes. What the switch holds (read back as flow
    // stats) is diffed against the new rendering and the difference sent as one bundle; the
    // switch then holds exactly the new rendering, and a second diff is empty.
    let locals2: Vec<LocalEndpoint> = locals.iter().filter(|l| l.id != "ep2").cloned().collect();
    let policy2 = host_policy(false);
    groups.assign(&policy2);
    let rendered2 = render(&Desired {
        networks: &networks,
        local_endpoints: &locals2,
        remote_endpoints: &remotes,
        policy: &policy2,
        ports: &ports,
        tenants: &tenants,
        groups: &groups,
        services: &Default::default(),
        round: 1,
    });
    let held = installed(&sw).await;
    let mods = diff::diff(&held, &rendered2.flows);
    eprintln!("churn: {}", dump::mods(&mods));
    assert_eq!(
        mods.len(),
        6 + 1,
        "w1's six flows and the deny rule go, nothing else changes"
    );
    let msgs: Vec<Message> = mods.into_iter().map(Message::FlowMod).collect();
    sw.bundle(2, &msgs).await.unwrap();
    assert_eq!(
        lines(&host.dump_flows(br)),
        lines(&dump::dump(&rendered2.flows))
    );
    assert!(
        diff::diff(&installed(&sw).await, &rendered2.flows).is_empty(),
        "read back equals rendered"
    );
    assert!(
        host.ping(w3, addrs[1], None),
        "ungrouped → db allowed once the deny is gone"
    );
    assert!(
        !host.ping(w1, addrs[1], None),
        "w1's port is no longer in the pipeline"
    );
}

/// Every flow the switch holds, from a flow-stats request.
async fn installed(sw: &Switch) -> Vec<contiv_openflow::FlowMod> {
    let replies = sw
        .multipart(MultipartRequest::Flow(FlowStatsRequest::all()))
        .await
        .unwrap();
    let stats: Vec<_> = replies
        .into_iter()
        .flat_map(|r| match r {
            MultipartReply::Flow { stats, .. } => stats,
            _ => vec![],
        })
        .collect();
    diff::installed_from_stats(&stats)
}
