//! End-to-end DNS service discovery: netmaster + one netplugin per simulated host, workloads
//! attached through contivk8s, and `dig` (apt dnsutils) run inside workload namespaces against
//! the nameserver their CNI result names. Root only.
//!
//! Every test runs against both datapaths (`linux::…` and `ovs::…`, see [`on_both_datapaths`])
//! with the same assertions: on Linux the server listens in the tenant's router namespace, on
//! OVS in the tenant DNS namespace the driver makes, reached through the pipeline.

#[macro_use]
mod common;

use common::bins;

use std::collections::BTreeSet;
use std::io::Write;
use std::net::{Ipv4Addr, UdpSocket};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use contiv_netplugin::testbed::{eventually, ping, require_root, Cluster, TestDatapath, Workload};
use serde_json::{json, Value};

on_both_datapaths!(dns_answers_services_groups_and_pods_per_tenant);

/// What the test's own upstream resolver answers for every name.
const UPSTREAM_ANSWER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 7);

/// A tiny upstream resolver on 127.0.0.1 (the agents' `--dns-upstream`): every A question gets
/// [`UPSTREAM_ANSWER`]; it counts the questions it saw.
struct Upstream {
    port: u16,
    stop: Arc<AtomicBool>,
    seen: Arc<std::sync::Mutex<Vec<String>>>,
}

/// The question name of a raw query (labels joined by dots) and where the question ends.
fn question(q: &[u8]) -> Option<(String, usize)> {
    let mut i = 12;
    let mut labels = Vec::new();
    loop {
        let n = *q.get(i)? as usize;
        i += 1;
        if n == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(q.get(i..i + n)?).into_owned());
        i += n;
    }
    Some((labels.join("."), i + 4))
}

impl Upstream {
    fn start() -> Upstream {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("upstream socket");
        sock.set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        let port = sock.local_addr().expect("addr").port();
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (s, log) = (stop.clone(), seen.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            while !s.load(Ordering::Relaxed) {
                let Ok((n, from)) = sock.recv_from(&mut buf) else {
                    continue;
                };
                let Some((name, end)) = question(&buf[..n]).filter(|(_, e)| *e <= n) else {
                    continue;
                };
                log.lock().unwrap_or_else(|p| p.into_inner()).push(name);
                // The question only (no OPT), QR + RA, one answer pointing at the question.
                let mut r = buf[..end].to_vec();
                r[2] |= 0x80;
                r[3] = 0x80;
                r[6..12].copy_from_slice(&[0, 1, 0, 0, 0, 0]);
                r.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4]);
                r.extend_from_slice(&UPSTREAM_ANSWER.octets());
                let _ = sock.send_to(&r, from);
            }
        });
        Upstream { port, stop, seen }
    }

    fn saw(&self, name: &str) -> bool {
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .any(|n| n.eq_ignore_ascii_case(name))
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The one upstream of this test binary: the agents take it from the environment, which the
/// tests running in parallel (one per datapath) share, so it is set once, before any agent.
fn upstream() -> &'static Upstream {
    static UPSTREAM: OnceLock<Upstream> = OnceLock::new();
    UPSTREAM.get_or_init(|| {
        let u = Upstream::start();
        std::env::set_var(
            "CONTIV_NETPLUGIN_DNS_UPSTREAM",
            format!("127.0.0.1:{}", u.port),
        );
        u
    })
}

/// `dig +short` of `name` (A) at `server`, run in the workload namespace `ns`; the addresses.
fn dig(ns: &Path, server: &str, name: &str, tcp: bool) -> Result<BTreeSet<String>, String> {
    let mut cmd = Command::new("nsenter");
    cmd.arg(format!("--net={}", ns.display()))
        .args(["dig", "+short", "+tries=1", "+time=2"])
        .arg(format!("@{server}"))
        .arg(name)
        .arg("A");
    if tcp {
        cmd.arg("+tcp");
    }
    let out = cmd.output().map_err(|e| format!("dig: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() || text.contains(";;") {
        return Err(format!("dig {name}: {:?} {text}", out.status));
    }
    Ok(text.lines().map(|l| l.trim().to_string()).collect())
}

/// `dig` of `name` at `server` from `ns`: the status word (NOERROR, NXDOMAIN, ...).
fn dig_status(ns: &Path, server: &str, name: &str) -> String {
    let out = Command::new("nsenter")
        .arg(format!("--net={}", ns.display()))
        .args(["dig", "+tries=1", "+time=2"])
        .arg(format!("@{server}"))
        .arg(name)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    out.split("status: ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .unwrap_or("none")
        .to_string()
}

fn set(ips: &[Ipv4Addr]) -> BTreeSet<String> {
    ips.iter().map(|i| i.to_string()).collect()
}

fn post(c: &Cluster, path: &str, body: Value) {
    match c.api("POST", path, Some(&body)) {
        Ok((200 | 201, _)) => {}
        other => panic!("POST {path} {body}: {other:?}"),
    }
}

/// A pod: CNI ADD through contivk8s with `K8S_POD_NAMESPACE`/`K8S_POD_NAME` in CNI_ARGS.
fn add_pod(
    c: &Cluster,
    host: usize,
    (tenant, group): (&str, &str),
    (pod_ns, pod): (&str, &str),
) -> Workload {
    let netns = c.tb.workload(pod).unwrap_or_else(|e| panic!("netns: {e}"));
    let cid = format!("{}-{pod}", c.tb.prefix);
    let conf = json!({"cniVersion": "1.1.0", "name": "contiv", "type": "contivk8s",
        "agentSocket": c.socket(host), "pendingDeleteDir": c.pending_dir(host),
        "tenant": tenant, "network": "net", "group": group});
    let mut child = Command::new(&c.bins.contivk8s)
        .env("CNI_COMMAND", "ADD")
        .env("CNI_CONTAINERID", &cid)
        .env("CNI_NETNS", &netns)
        .env("CNI_IFNAME", "eth0")
        .env("CNI_PATH", "/usr/lib/cni")
        .env(
            "CNI_ARGS",
            format!("IgnoreUnknown=1;K8S_POD_NAMESPACE={pod_ns};K8S_POD_NAME={pod}"),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("contivk8s");
    if let Some(mut s) = child.stdin.take() {
        s.write_all(conf.to_string().as_bytes()).expect("netconf");
    }
    let out = child.wait_with_output().expect("contivk8s output");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "ADD {pod}: {text}\n{}",
        c.agent_log(host)
    );
    let result: Value = serde_json::from_str(&text).expect("CNI result");
    let ip = result["ips"][0]["address"]
        .as_str()
        .and_then(|a| a.split('/').next())
        .and_then(|a| a.parse().ok())
        .expect("ip");
    Workload {
        name: pod.into(),
        host,
        container_id: cid,
        netns,
        tenant: tenant.into(),
        network: "net".into(),
        group: Some(group.into()),
        ip,
        result,
    }
}

fn dns_answers_services_groups_and_pods_per_tenant(dp: TestDatapath) {
    require_root();
    // The agents inherit it: misses go to the resolver this test binary runs.
    let upstream = upstream();
    let mut c = Cluster::start_on(bins(), dp, 2, &[]).unwrap_or_else(|e| panic!("cluster: {e}"));
    let gw = "10.31.0.1";
    for t in ["t1", "t2"] {
        c.create_tenant(t).unwrap_or_else(|e| panic!("{e}"));
        c.create_network(t, "net", "10.31.0.0/24", gw)
            .unwrap_or_else(|e| panic!("{e}"));
        for g in ["web", "db"] {
            post(
                &c,
                &format!("/api/v1/endpointGroups/{t}:{g}/"),
                json!({"tenantName": t, "groupName": g, "networkName": "net"}),
            );
        }
    }
    let a1 = add_pod(&c, 0, ("t1", "web"), ("prod", "alpha"));
    let a2 = add_pod(&c, 1, ("t1", "web"), ("prod", "bravo"));
    let a3 = add_pod(&c, 0, ("t1", "db"), ("prod", "charlie"));
    let b1 = add_pod(&c, 0, ("t2", "web"), ("dev", "delta"));
    let b2 = add_pod(&c, 1, ("t2", "web"), ("dev", "echo"));
    post(
        &c,
        "/api/v1/serviceLBs/t1:api/",
        json!({"tenantName": "t1", "serviceName": "api", "networkName": "net",
            "selectors": ["app=api"], "ports": ["80:8080:TCP"]}),
    );
    let vip = c
        .get_json("/api/v1/inspect/serviceLBs/t1:api/")
        .map(|v| {
            v["Oper"]["serviceVip"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!vip.is_empty(), "the service has a VIP");

    // The CNI result names the nameserver and the search domain.
    assert_eq!(
        a1.result["dns"]["nameservers"],
        json!([gw]),
        "{}",
        a1.result
    );
    assert_eq!(a1.result["dns"]["search"], json!(["t1.contiv"]));
    assert_eq!(b1.result["dns"]["search"], json!(["t2.contiv"]));

    let one = |ip: Ipv4Addr| set(&[ip]);
    // A name no tenant owns, its own per datapath (both tests share the upstream).
    let miss = format!("unknown-{dp:?}.example.test").to_lowercase();
    let want_t1: Vec<(&str, BTreeSet<String>)> = vec![
        ("web", set(&[a1.ip, a2.ip])),
        ("web.t1.contiv", set(&[a1.ip, a2.ip])),
        ("db", one(a3.ip)),
        ("api", [vip.clone()].into()),
        ("api.t1.contiv", [vip.clone()].into()),
        ("alpha", one(a1.ip)),
        ("bravo.prod", one(a2.ip)),
        ("charlie.prod.t1.contiv", one(a3.ip)),
        (miss.as_str(), one(UPSTREAM_ANSWER)),
    ];
    // From a workload on each host (each host's agent answers its own workloads), UDP and TCP.
    for w in [&a1, &a2] {
        for (name, want) in &want_t1 {
            for tcp in [false, true] {
                let got = eventually_dig(&w.netns, gw, name, tcp, want);
                assert_eq!(&got, want, "{name} from {} (tcp {tcp})", w.name);
            }
        }
    }
    assert!(upstream.saw(&miss), "the miss reached the upstream");
    // Same group names in another tenant: its own members; t1's service and pods are unknown.
    for w in [&b1, &b2] {
        assert_eq!(
            eventually_dig(&w.netns, gw, "web", false, &set(&[b1.ip, b2.ip])),
            set(&[b1.ip, b2.ip])
        );
        assert_eq!(
            dig(&w.netns, gw, "db", false),
            Ok(BTreeSet::new()),
            "t2 db has no member"
        );
        assert_eq!(dig_status(&w.netns, gw, "alpha.t2.contiv"), "NXDOMAIN");
        assert_eq!(dig_status(&w.netns, gw, "api.t1.contiv"), "NXDOMAIN");
    }

    // A new member shows up within one second of its ADD.
    let started = Instant::now();
    let a4 = add_pod(&c, 1, ("t1", "web"), ("prod", "foxtrot"));
    let added = started.elapsed();
    let want = set(&[a1.ip, a2.ip, a4.ip]);
    let mut seen_after = None;
    while started.elapsed() < Duration::from_secs(3) {
        if dig(&a1.netns, gw, "web", false).is_ok_and(|g| g == want) {
            seen_after = Some(started.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let seen_after = seen_after.expect("the new member was answered");
    eprintln!(
        "new member: ADD took {added:?}, answered {:?} after the ADD returned",
        seen_after.saturating_sub(added)
    );
    assert!(
        seen_after.saturating_sub(added) < Duration::from_secs(1),
        "answered {seen_after:?} after the ADD started ({added:?} for the ADD)"
    );
    c.del_workload(&a4).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        eventually(Duration::from_secs(1), || dig(&a1.netns, gw, "web", false)
            .is_ok_and(|g| g == set(&[a1.ip, a2.ip]))),
        "a removed member leaves the answer"
    );

    // DNS to the gateway passes whatever the policy denies (on Linux the gateway is a local
    // address of the router namespace and policy hooks only forwarded traffic; the OVS pipeline
    // sends DNS to the gateway out before policy): db's out-rules deny everything, charlie
    // reaches no one and still resolves, over UDP and TCP.
    assert!(
        ping(&a3.netns, a1.ip, 3),
        "charlie reaches alpha before the policy"
    );
    post(
        &c,
        "/api/v1/policys/t1:db-out/",
        json!({"tenantName": "t1", "policyName": "db-out"}),
    );
    post(
        &c,
        "/api/v1/rules/t1:db-out:deny-all/",
        json!({"tenantName": "t1", "policyName": "db-out", "ruleId": "deny-all",
            "direction": "out", "action": "deny", "priority": 1}),
    );
    post(
        &c,
        "/api/v1/endpointGroups/t1:db/",
        json!({"tenantName": "t1", "groupName": "db", "networkName": "net",
            "policies": ["db-out"]}),
    );
    assert!(
        eventually(Duration::from_secs(8), || !ping(&a3.netns, a1.ip, 1)),
        "db's out-rules are in force"
    );
    let web = set(&[a1.ip, a2.ip]);
    for tcp in [false, true] {
        assert_eq!(
            eventually_dig(&a3.netns, gw, "web", tcp, &web),
            web,
            "from charlie (tcp {tcp}) under a deny-all out-rule"
        );
    }

    // An agent killed with SIGKILL and started again serves its workloads again (on OVS the
    // tenant DNS namespace and port of the previous run are taken back, not made twice).
    c.kill_agent(0);
    c.restart_agent(0).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        eventually(Duration::from_secs(15), || dig(&a1.netns, gw, "web", false)
            .is_ok_and(|g| g == web)),
        "alpha resolves after its agent restarted\n{}",
        c.agent_log(0)
    );
    assert_eq!(dig(&b1.netns, gw, "web", true), Ok(set(&[b1.ip, b2.ip])));
}

/// `dig` until it answers `want` (listeners start with the tenant's namespace), up to 3 s; the
/// last answer.
fn eventually_dig(
    ns: &Path,
    server: &str,
    name: &str,
    tcp: bool,
    want: &BTreeSet<String>,
) -> BTreeSet<String> {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let got = dig(ns, server, name, tcp);
        if got.as_ref().is_ok_and(|g| g == want) || Instant::now() > deadline {
            return got.unwrap_or_else(|e| panic!("{e}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
