//! Restarts that drop nothing, against a real ovsdb-server and ovs-vswitchd in a simulated
//! host's netns, with real packets: the agent's driver runs in a child process (this test
//! binary re-executed, see [`agent_process`]) that is killed with SIGKILL while a TCP
//! connection streams and a ping runs; a new one takes over under a new cookie round. Tenant
//! numbers (conntrack zones) come back from the bridge, so the established connection keeps
//! its conntrack entry even when the new agent declares the tenants in another order.

mod common;

use std::net::Ipv4Addr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{
    app_net, child_args, demo_ep, host_with_workloads, ovs_config, run, spawn_self, Host,
};
use contiv_datapath::{Datapath, Encap, FwdMode, LocalEndpoint};
use contiv_datapath_ovs::{OvsConfig, OvsDatapath};

const BRIDGE: &str = "ovkbr";
/// Set in the child's environment: `<host netns>|<ovsdb socket>|<tenant order>|<ready file>`.
const CHILD_ENV: &str = "CONTIV_OVS_TEST_AGENT";

fn cfg(ns: &str, sock: &str) -> OvsConfig {
    ovs_config(ns, sock, BRIDGE, 16659, "eth0", Ipv4Addr::new(192, 0, 2, 1))
}

fn ep(n: u8, ns: &str) -> LocalEndpoint {
    demo_ep(n, &format!("{ns}-w{n}"))
}

/// A host with demo's workloads w2 and w3 (namespaces only: the driver plumbs them).
fn host(tag: &str) -> Host {
    host_with_workloads(tag, [2, 3])
}

/// What an agent declares on start: the networks of `tenants` in that order (tenant numbers
/// are given on first sight), demo's two workloads, then its full reconcile's resync.
fn declare(dp: &OvsDatapath, ns: &str, tenants: &[&str]) {
    for t in tenants {
        let vni = if *t == "demo" { 5000 } else { 5001 };
        // Network `app` of every tenant uses the same subnet (tenants may overlap).
        dp.ensure_network(&app_net(t, vni, FwdMode::Bridge, Encap::Vxlan))
            .unwrap();
    }
    for n in [2, 3] {
        dp.add_local_endpoint(&ep(n, ns)).unwrap();
    }
    dp.resync_local_endpoints(&[ep(2, ns), ep(3, ns)]).unwrap();
}

/// Not a test of its own: the agent the kill tests run as a child process (this binary
/// re-executed with [`CHILD_ENV`] set). It starts the driver, declares everything, says
/// its round in the ready file and waits to be killed. Without [`CHILD_ENV`] it does nothing.
#[test]
fn agent_process() {
    let Some([ns, sock, order, ready]) = child_args(CHILD_ENV) else {
        return;
    };
    let dp = OvsDatapath::start(cfg(&ns, &sock)).unwrap();
    let tenants: Vec<&str> = order.split(',').collect();
    declare(&dp, &ns, &tenants);
    // A file, not stdout: the test harness of the child may hold its output back.
    std::fs::write(&ready, dp.round().to_string()).unwrap();
    loop {
        std::thread::sleep(Duration::from_secs(60));
    }
}

/// A child agent process, SIGKILLed on drop (by its own pid) if still running.
struct Agent(Child);

impl Agent {
    /// Starts the agent and waits until it has declared everything; returns its round.
    fn start(host: &Host, order: &str) -> (Agent, u16) {
        let ready = host.dir.path().join("agent-ready");
        let _ = std::fs::remove_file(&ready);
        let child = spawn_self(
            "agent_process",
            CHILD_ENV,
            format!("{}|{}|{order}|{}", host.ns, host.sock(), ready.display()),
        );
        let mut agent = Agent(child);
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(60) {
            if let Ok(round) = std::fs::read_to_string(&ready) {
                if let Ok(round) = round.trim().parse() {
                    return (agent, round);
                }
            }
            if let Ok(Some(status)) = agent.0.try_wait() {
                panic!("the agent process ended before it was ready: {status}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the agent process was not ready within 60 s");
    }

    fn kill9(&mut self) {
        // Child::kill is SIGKILL, to this child's pid only.
        self.0.kill().unwrap();
        self.0.wait().unwrap();
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The flows without their cookies and counters: what forwarding does, whatever the round.
fn forwarding(host: &Host) -> Vec<String> {
    let mut v: Vec<String> = host
        .dump_flows(BRIDGE)
        .lines()
        .filter(|l| l.contains("cookie="))
        .map(|l| {
            l.split(", ")
                .filter(|p| !p.trim_start().starts_with("cookie="))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .collect();
    v.sort();
    v
}

fn rounds(host: &Host) -> Vec<String> {
    let mut v: Vec<String> = host
        .dump_flows(BRIDGE)
        .lines()
        .filter_map(|l| {
            let c = l.trim().strip_prefix("cookie=0x")?;
            let c = c.split(',').next()?;
            let n = u64::from_str_radix(c, 16).ok()?;
            Some(format!("{}", n >> 48))
        })
        .collect();
    v.sort();
    v.dedup();
    v
}

/// TCP segments retransmitted so far in workload namespace `wns` (`/proc/net/snmp` is per netns).
fn retransmits(host: &Host, wns: &str) -> u64 {
    let out = run(&mut host.cmd(wns, &["cat", "/proc/net/snmp"]));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let tcp: Vec<&str> = text.lines().filter(|l| l.starts_with("Tcp:")).collect();
    let names: Vec<&str> = tcp[0].split_whitespace().collect();
    let values: Vec<&str> = tcp[1].split_whitespace().collect();
    let i = names.iter().position(|n| *n == "RetransSegs").unwrap();
    values[i].parse().unwrap()
}

/// Traffic w2 → w3 that must not notice a restart: a TCP connection carrying a numbered line
/// every 50 ms for `secs` seconds, and a ping every 100 ms.
struct Traffic {
    server: Child,
    client: Child,
    ping: Child,
    lines: u32,
}

impl Traffic {
    fn start(host: &Host, secs: u32) -> Traffic {
        let (w2, w3) = (&host.workloads[0], &host.workloads[1]);
        let lines = secs * 20;
        let server = host
            .cmd(
                w3,
                &[
                    "timeout",
                    &format!("{}", secs + 10),
                    "nc",
                    "-l",
                    "-N",
                    "8080",
                ],
            )
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(300));
        let script = format!(
            "for i in $(seq 1 {lines}); do echo line-$i; sleep 0.05; done | timeout {} nc -N 10.10.0.3 8080",
            secs + 10
        );
        let client = host.cmd(w2, &["sh", "-c", &script]).spawn().unwrap();
        let count = format!("{}", secs * 10);
        let ping = host
            .cmd(
                w2,
                &[
                    "ping",
                    "-i",
                    "0.1",
                    "-c",
                    &count,
                    "-W",
                    "1",
                    "-q",
                    "10.10.0.3",
                ],
            )
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        Traffic {
            server,
            client,
            ping,
            lines,
        }
    }

    /// Waits for both to end: (every line arrived in order, ping's summary line).
    fn finish(mut self) -> (bool, String) {
        let sent = self.client.wait().unwrap().success();
        let out = std::mem::replace(&mut self.server, Command::new("true").spawn().unwrap())
            .wait_with_output()
            .unwrap();
        let got = String::from_utf8_lossy(&out.stdout).into_owned();
        let want: String = (1..=self.lines).map(|i| format!("line-{i}\n")).collect();
        let ping = std::mem::replace(&mut self.ping, Command::new("true").spawn().unwrap())
            .wait_with_output()
            .unwrap();
        let summary = String::from_utf8_lossy(&ping.stdout)
            .lines()
            .find(|l| l.contains("packet loss"))
            .unwrap_or("no ping summary")
            .to_string();
        (sent && got == want, summary)
    }
}

impl Drop for Traffic {
    fn drop(&mut self) {
        for c in [&mut self.server, &mut self.client, &mut self.ping] {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
#[ignore = "needs root"]
fn tenant_numbers_come_back_from_the_bridge_after_a_restart() {
    let host = host("n");
    let dp = OvsDatapath::start(cfg(&host.ns, &host.sock())).unwrap();
    declare(&dp, &host.ns, &["demo", "other"]);
    let before = forwarding(&host);
    let out = run(&mut host.cmd(
        &host.ns,
        &[
            "ovs-vsctl",
            "get",
            "Bridge",
            BRIDGE,
            "external_ids:contiv-tenant-numbers",
        ],
    ));
    let kept = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        kept.contains(r#"\"demo\":1"#) && kept.contains(r#"\"other\":2"#),
        "{kept}"
    );
    drop(dp);

    // The next run meets the tenants in the other order: without the numbers kept on the
    // bridge, other would take zone 1 and demo zone 2, and every flow would change.
    let dp = OvsDatapath::start(cfg(&host.ns, &host.sock())).unwrap();
    assert_eq!(dp.round(), 2);
    declare(&dp, &host.ns, &["other", "demo"]);
    assert_eq!(rounds(&host), ["2"]);
    assert_eq!(forwarding(&host), before);
}

#[test]
#[ignore = "needs root"]
fn an_agent_killed_mid_stream_drops_no_packet_of_an_established_connection() {
    let host = host("k");
    let (mut first, round) = Agent::start(&host, "demo,other");
    assert_eq!(round, 1);
    let before = forwarding(&host);
    let (w2, w3) = (host.workloads[0].clone(), host.workloads[1].clone());
    assert!(host.ping(&w2, Ipv4Addr::new(10, 10, 0, 3), None));
    let retrans = (retransmits(&host, &w2), retransmits(&host, &w3));

    let traffic = Traffic::start(&host, 6);
    std::thread::sleep(Duration::from_millis(1500));
    first.kill9();
    std::thread::sleep(Duration::from_millis(500));
    // The new agent meets the tenants in the other order (see the test above), re-declares
    // everything under round 2 and deletes round 1 only once round 2 is in.
    let t = Instant::now();
    let (_second, round) = Agent::start(&host, "other,demo");
    eprintln!("the new agent was ready {:?} after it started", t.elapsed());
    assert_eq!(round, 2);
    let (stream_ok, ping) = traffic.finish();

    assert!(
        stream_ok,
        "the TCP stream lost or reordered data across the restart"
    );
    // The pings take the same path every 20 ms: not one lost is the proof. TCP retransmits are
    // only shown: on a starved 2-core machine a 200 ms stall of the userspace datapath can make
    // TCP retransmit spuriously with nothing dropped.
    assert!(ping.contains(" 0% packet loss"), "{ping}");
    eprintln!(
        "TCP retransmits during the restart: {:?} (before {retrans:?})",
        (retransmits(&host, &w2), retransmits(&host, &w3))
    );
    assert_eq!(rounds(&host), ["2"]);
    assert_eq!(forwarding(&host), before);
}

/// `ovs-vsctl get Open_vSwitch . other_config` in the host.
fn other_config(host: &Host) -> String {
    let out = run(&mut host.cmd(
        &host.ns,
        &[
            "ovs-vsctl",
            "--no-wait",
            "get",
            "Open_vSwitch",
            ".",
            "other_config",
        ],
    ));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
#[ignore = "needs root"]
fn a_restarted_vswitchd_is_reprogrammed_by_the_running_driver() {
    let host = host("v");
    let dp = OvsDatapath::start(cfg(&host.ns, &host.sock())).unwrap();
    declare(&dp, &host.ns, &["demo", "other"]);
    let before = host.dump_flows(BRIDGE);
    let (w2, w3) = (host.workloads[0].clone(), host.workloads[1].clone());
    let w3_ip = Ipv4Addr::new(10, 10, 0, 3);
    assert!(host.ping(&w2, w3_ip, None));

    // What a start script does around an upgrade: flow-restore-wait first, so the new
    // vswitchd forwards nothing until the agent's flows are back.
    host.exec(&[
        "ovs-vsctl",
        "--no-wait",
        "set",
        "Open_vSwitch",
        ".",
        "other_config:flow-restore-wait=true",
    ]);
    host.restart_vswitchd();
    let t = Instant::now();

    // The driver notices, reconnects through the management socket (the only one open while
    // flow-restore-wait holds), sends every flow again, then clears the flag.
    while other_config(&host).contains("flow-restore-wait") {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "the driver never cleared flow-restore-wait: {}",
            host.dump_flows(BRIDGE)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("reprogrammed {:?} after vswitchd started", t.elapsed());
    let lines = |text: &str| -> Vec<String> {
        let mut v: Vec<String> = text
            .lines()
            .filter(|l| l.contains("cookie="))
            .map(str::to_string)
            .collect();
        v.sort();
        v
    };
    assert_eq!(lines(&host.dump_flows(BRIDGE)), lines(&before));
    assert!(host.ping(&w2, w3_ip, None), "traffic resumes");
    assert!(host.tcp(&w3, &w2, w3_ip), "a new TCP connection works");

    // Without flow-restore-wait the new vswitchd opens the bridge's ptcp: target and drops
    // everything (fail mode secure, empty table) until the driver is back in.
    host.restart_vswitchd();
    let t = Instant::now();
    while !host.ping(&w2, w3_ip, None) {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "traffic never resumed"
        );
    }
    eprintln!(
        "traffic back {:?} after a plain vswitchd restart",
        t.elapsed()
    );
    assert_eq!(lines(&host.dump_flows(BRIDGE)), lines(&before));

    // The driver goes on over the new connection.
    dp.remove_local_endpoint(&ep(3, &host.ns)).unwrap();
    assert!(!host.dump_flows(BRIDGE).contains("10.10.0.3"));
    assert!(!host.ping(&w2, w3_ip, None));
}

#[test]
#[ignore = "needs root"]
fn numbers_on_the_bridge_that_cannot_be_used_stop_the_start_and_change_nothing() {
    let host = host("b");
    let dp = OvsDatapath::start(cfg(&host.ns, &host.sock())).unwrap();
    declare(&dp, &host.ns, &["demo"]);
    drop(dp);
    host.exec(&[
        "ovs-vsctl",
        "--no-wait",
        "set",
        "Bridge",
        BRIDGE,
        r#"external_ids:contiv-tenant-numbers={"demo":1,"other":1}"#,
    ]);
    let before = host.dump_flows(BRIDGE);
    let e = OvsDatapath::start(cfg(&host.ns, &host.sock()))
        .err()
        .expect("refused")
        .to_string();
    assert!(
        e.contains("external_ids:contiv-tenant-numbers") && e.contains("number 1 given to two"),
        "{e}"
    );
    assert_eq!(host.dump_flows(BRIDGE), before);
}
