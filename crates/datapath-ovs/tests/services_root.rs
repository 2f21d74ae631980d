//! The OVS service driver with real packets: two simulated hosts (each its own ovsdb-server,
//! ovs-vswitchd and driver, joined by an underlay veth), a VIP with three providers (one on the
//! client's host, two across), applied through `OvsDatapath::service_driver()`. Checks what a
//! user sees: new TCP connections spread over every provider, UDP too, a provider reaching its
//! own VIP (hairpin), removing a provider moves only new connections (an open one to it and one
//! to a remaining provider keep echoing), and a forgotten tenant leaves no group or flow.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::time::Duration;

use common::{
    demo_endpoint, demo_net, host_with_veth, in_netns, linked_hosts, ovs_config, remote,
    underlay_driver, Host,
};
use contiv_datapath::{Datapath, ServiceDriver, ServicePort, ServiceSpec, TenantServices};
use contiv_datapath_ovs::OvsDatapath;

const VIP: Ipv4Addr = Ipv4Addr::new(10, 10, 0, 200);

/// Host `n` of this test: underlay 192.0.2.n on `osphy` holding `underlay_if`, driver on `osbr`.
fn driver(h: &Host, n: u8, underlay_if: &str) -> (OvsDatapath, Ipv4Addr) {
    underlay_driver(h, n, underlay_if, "osphy", "osbr", 16671)
}

/// The driver of host `h` (its underlay set up by [`driver`]), started again.
fn start(h: &Host, vtep: Ipv4Addr) -> OvsDatapath {
    OvsDatapath::start(ovs_config(&h.ns, &h.sock(), "osbr", 16671, "osphy", vtep)).unwrap()
}

/// Provider `name` in `wns`: TCP 8080 greets with its name then echoes; UDP 5353 answers its
/// name. Threads in the namespace, for the test's lifetime.
fn provider(wns: &str, addr: Ipv4Addr, name: &'static str) {
    let tcp = in_netns(wns, move || TcpListener::bind((addr, 8080))).expect("tcp listener");
    std::thread::spawn(move || {
        for mut s in tcp.incoming().flatten() {
            std::thread::spawn(move || {
                let _ = s.write_all(format!("{name}\n").as_bytes());
                let mut buf = [0u8; 256];
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 || s.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    let udp = in_netns(wns, move || UdpSocket::bind((addr, 5353))).expect("udp socket");
    std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        while let Ok((_, from)) = udp.recv_from(&mut buf) {
            let _ = udp.send_to(name.as_bytes(), from);
        }
    });
}

/// A new TCP connection from `wns` to the VIP's port 80: the stream and who answered.
fn connect(wns: &str) -> Result<(TcpStream, String), String> {
    let s = in_netns(wns, || {
        TcpStream::connect_timeout(&SocketAddr::from((VIP, 80)), Duration::from_secs(2))
    })
    .map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(|e| e.to_string())?;
    let mut line = String::new();
    BufReader::new(s.try_clone().map_err(|e| e.to_string())?)
        .read_line(&mut line)
        .map_err(|e| format!("greeting: {e}"))?;
    Ok((s, line.trim().to_string()))
}

/// `n` new connections from `wns`: how many each provider got.
fn tally(wns: &str, n: usize) -> std::collections::BTreeMap<String, usize> {
    let mut out = std::collections::BTreeMap::new();
    for i in 0..n {
        let (_, name) = connect(wns).unwrap_or_else(|e| panic!("connection {i}: {e} ({out:?})"));
        *out.entry(name).or_insert(0) += 1;
    }
    out
}

fn echoes(s: &mut TcpStream, what: &str) -> bool {
    let mut back = vec![0u8; what.len()];
    s.write_all(what.as_bytes()).is_ok()
        && s.read_exact(&mut back).is_ok()
        && back == what.as_bytes()
}

fn udp_ask(wns: &str) -> (SocketAddr, String) {
    in_netns(wns, || {
        let s = UdpSocket::bind("0.0.0.0:0").expect("udp");
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        s.send_to(b"who", SocketAddr::from((VIP, 53))).unwrap();
        let mut buf = [0u8; 64];
        let (n, from) = s.recv_from(&mut buf).expect("udp answer");
        (from, String::from_utf8_lossy(&buf[..n]).into_owned())
    })
}

fn web(providers: &[Ipv4Addr]) -> TenantServices {
    let mut providers = providers.to_vec();
    providers.sort();
    TenantServices {
        tenant: "demo".into(),
        services: vec![ServiceSpec {
            name: "demo:web".into(),
            vip: VIP,
            ports: ["80:8080:TCP", "53:5353:UDP"]
                .iter()
                .map(|p| ServicePort::parse(p).unwrap())
                .collect(),
            providers,
        }],
    }
}

#[test]
#[ignore = "needs root"]
fn a_vip_balances_over_providers_on_two_hosts_and_keeps_open_connections() {
    let pid = std::process::id() % 100_000;
    let (ua, ub) = (format!("osu{pid}a"), format!("osu{pid}b"));
    let (mut a, mut b) = linked_hosts("sa", "sb", &ua, &ub);
    let (dpa, vtep_a) = driver(&a, 1, &ua);
    let (dpb, vtep_b) = driver(&b, 2, &ub);
    let (sa, sb) = (dpa.service_driver(), dpb.service_driver());
    // Client w2 and provider w3 on A; providers w4 and w5 on B.
    let (e2, e3, e4, e5) = (
        demo_endpoint(&mut a, 2),
        demo_endpoint(&mut a, 3),
        demo_endpoint(&mut b, 4),
        demo_endpoint(&mut b, 5),
    );
    dpa.ensure_network(&demo_net()).unwrap();
    dpb.ensure_network(&demo_net()).unwrap();
    for e in [&e2, &e3] {
        dpa.add_local_endpoint(e).unwrap();
    }
    for e in [&e4, &e5] {
        dpb.add_local_endpoint(e).unwrap();
    }
    dpa.set_remote_endpoints("demo:app", &[remote(&e4, vtep_b), remote(&e5, vtep_b)])
        .unwrap();
    dpb.set_remote_endpoints("demo:app", &[remote(&e2, vtep_a), remote(&e3, vtep_a)])
        .unwrap();
    let (w2, w3) = (a.workloads[0].clone(), a.workloads[1].clone());
    let (w4, w5) = (b.workloads[0].clone(), b.workloads[1].clone());
    provider(&w3, e3.ip.addr(), "p3");
    provider(&w4, e4.ip.addr(), "p4");
    provider(&w5, e5.ip.addr(), "p5");
    let all = [e3.ip.addr(), e4.ip.addr(), e5.ip.addr()];
    assert!(sa.apply(&web(&all)).unwrap(), "installed");
    assert!(
        !sa.apply(&web(&all)).unwrap(),
        "the same services again: nothing"
    );
    // Services of a tenant with no network here render nothing (no tenant number, no zone):
    // nothing is sent, the other tenant's groups and flows stay as they are.
    let mut ghost = web(&all);
    ghost.tenant = "ghost".into();
    assert!(
        !sa.apply(&ghost).unwrap(),
        "a tenant without a network here changed the switch"
    );
    assert!(sb.apply(&web(&all)).unwrap());

    // New TCP connections spread over every provider (one here, two across).
    let got = tally(&w2, 90);
    eprintln!("90 connections from w2: {got:?}");
    for p in ["p3", "p4", "p5"] {
        let n = got.get(p).copied().unwrap_or(0);
        assert!((15..=60).contains(&n), "{p} got {n} of 90: {got:?}");
    }
    // UDP: each new socket may reach another provider, answered from the VIP.
    let mut udp = std::collections::BTreeSet::new();
    for _ in 0..20 {
        let (from, name) = udp_ask(&w2);
        assert_eq!(from, SocketAddr::from((VIP, 53)));
        udp.insert(name);
    }
    assert!(udp.len() >= 2, "UDP spread: {udp:?}");
    // Hairpin: a provider reaches its own VIP, itself included (from B too).
    let mine = tally(&w3, 30);
    assert!(mine.contains_key("p3"), "p3 picked itself: {mine:?}");
    let mine = tally(&w4, 30);
    assert!(mine.contains_key("p4"), "p4 picked itself: {mine:?}");

    // Open connections to p5 (to be removed) and p4 (staying).
    let mut open = std::collections::BTreeMap::new();
    while open.len() < 2 {
        let (s, name) = connect(&w2).expect("connect");
        if name != "p3" {
            open.entry(name).or_insert(s);
        }
    }
    // p5 stops answering (its link down), so connections that pick it hang in SYN_SENT; then
    // it leaves the service (it keeps running): those unanswered connections are dropped from
    // conntrack and their retransmission (~1 s) picks another provider; new connections never
    // reach p5; both open connections keep echoing (conntrack holds their provider).
    b.exec(&[
        "ip", "netns", "exec", &w5, "ip", "link", "set", "eth0", "down",
    ]);
    let pending: Vec<_> = (0..12)
        .map(|_| {
            let w2 = w2.clone();
            std::thread::spawn(move || connect(&w2).map(|c| c.1))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    assert!(sa.apply(&web(&[e3.ip.addr(), e4.ip.addr()])).unwrap());
    settle(&a);
    let answered: Vec<Result<String, String>> =
        pending.into_iter().map(|t| t.join().unwrap()).collect();
    b.exec(&[
        "ip", "netns", "exec", &w5, "ip", "link", "set", "eth0", "up",
    ]);
    assert!(
        answered.iter().all(|r| r.as_ref().is_ok_and(|n| n != "p5")),
        "connections in flight when p5 left: {answered:?}"
    );
    let got = tally(&w2, 40);
    assert!(!got.contains_key("p5"), "{got:?}");
    assert_eq!(got.len(), 2, "{got:?}");
    for (name, s) in open.iter_mut() {
        assert!(echoes(s, "after removal\n"), "open connection to {name}");
    }
    let groups = a.dump_groups("osbr");
    assert!(!groups.contains("10.10.0.5"), "{groups}");

    // The tenant's services forgotten: no group, no SRV_PROXY flow left; the VIP is gone.
    sa.forget("demo").unwrap();
    let groups = a.dump_groups("osbr");
    assert!(!groups.contains("group_id"), "{groups}");
    let flows = a.dump_flows("osbr");
    assert!(!flows.contains("10.10.0.200"), "{flows}");
    assert!(connect(&w2).is_err(), "no VIP after forget");
    drop((dpa, dpb));
}

/// Waits until ovs-vswitchd has revalidated its datapath flow caches against the tables (a
/// committed bundle is in the tables at once; cached megaflows follow a moment later).
fn settle(h: &Host) {
    h.exec(&["ovs-appctl", "-t", "ovs-vswitchd", "revalidator/wait"]);
}

#[test]
#[ignore = "needs root"]
fn a_restarted_driver_converges_the_groups_an_earlier_run_left() {
    let pid = std::process::id() % 100_000;
    let (ua, ub) = (format!("osr{pid}a"), format!("osr{pid}b"));
    // The underlay's far end is not used: one host is enough here.
    let mut a = host_with_veth("ra", &ua, &ub);
    let (dp, _) = driver(&a, 1, &ua);
    let (e2, e3) = (demo_endpoint(&mut a, 2), demo_endpoint(&mut a, 3));
    dp.ensure_network(&demo_net()).unwrap();
    dp.add_local_endpoint(&e2).unwrap();
    dp.add_local_endpoint(&e3).unwrap();
    dp.resync_local_endpoints(&[e2.clone(), e3.clone()])
        .unwrap();
    let w2 = a.workloads[0].clone();
    provider(&a.workloads[1].clone(), e3.ip.addr(), "p3");
    // Two services: web (tcp 80) and api (tcp 81 → the same provider).
    let mut two = web(&[e3.ip.addr()]);
    let mut api = two.services[0].clone();
    api.name = "demo:api".into();
    api.vip = Ipv4Addr::new(10, 10, 0, 201);
    api.ports = vec![ServicePort::parse("81:8080:TCP").unwrap()];
    two.services.insert(0, api);
    dp.service_driver().apply(&two).unwrap();
    let before = a.dump_groups("osbr");
    assert_eq!(before.matches("group_id=").count(), 2, "{before}");
    assert_eq!(connect(&w2).map(|c| c.1), Ok("p3".to_string()));
    drop(dp);

    // The next run declares only web, after its reconcile (as the agent does): until its
    // first service pass the previous run's service flows and groups stay whole, so both VIPs
    // keep balancing; then web's group (the same id) is taken over in place and api's goes.
    let dp = start(&a, Ipv4Addr::new(192, 0, 2, 1));
    let services = dp.service_driver();
    dp.ensure_network(&demo_net()).unwrap();
    dp.resync_local_endpoints(&[e2.clone(), e3.clone()])
        .unwrap();
    assert_eq!(
        a.dump_groups("osbr").matches("group_id=").count(),
        2,
        "nothing deleted before the first service pass"
    );
    assert_eq!(connect(&w2).map(|c| c.1), Ok("p3".to_string()));
    let api_vip = SocketAddr::from((Ipv4Addr::new(10, 10, 0, 201), 81));
    assert!(
        in_netns(&w2, move || TcpStream::connect_timeout(
            &api_vip,
            Duration::from_secs(2)
        ))
        .is_ok(),
        "api (not declared yet) still balanced during the hold"
    );
    services.apply(&web(&[e3.ip.addr()])).unwrap();
    let after = a.dump_groups("osbr");
    assert_eq!(after.matches("group_id=").count(), 1, "{after}");
    let web_line = |t: &str| {
        t.lines()
            .find(|l| l.contains("group_id=") && l.contains("nat(dst=10.10.0.3:8080)"))
            .map(|l| l.split(',').next().unwrap_or_default().to_string())
    };
    assert!(
        web_line(&after).is_some_and(|id| before.contains(&id)),
        "{before}\n{after}"
    );
    assert_eq!(connect(&w2).map(|c| c.1), Ok("p3".to_string()));
    let flows = a.dump_flows("osbr");
    assert!(!flows.contains("10.10.0.201"), "{flows}");

    // ovs-vswitchd restarted under the running driver: it holds no group, the driver sends
    // the group again with the flows, and the VIP answers again.
    let old = a.pid("ovs-vswitchd").unwrap();
    a.exec(&["ovs-appctl", "-t", "ovs-vswitchd", "exit"]);
    let t = std::time::Instant::now();
    // SAFETY: kill with signal 0 only asks whether our own daemon's pid is still there.
    while unsafe { libc::kill(old, 0) } == 0 {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "vswitchd did not exit"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    a.start_vswitchd();
    let t = std::time::Instant::now();
    while connect(&w2).map(|c| c.1) != Ok("p3".to_string()) {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "VIP not back after a vswitchd restart: {}",
            a.dump_groups("osbr")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("VIP answered {:?} after vswitchd started", t.elapsed());
    assert_eq!(a.dump_groups("osbr").matches("group_id=").count(), 1);
}
