//! Hostile input against a real netmaster process on loopback: thousands of idle and trickling
//! connections, half-sent requests, oversized bodies, heads and paths, values outside the
//! schema, control characters and duplicate JSON members, a request rate per client, object
//! counts per tenant, and the plain loopback listener beside TLS.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, Netmaster};
use serde_json::{json, Value};

const NETMASTER: &str = env!("CARGO_BIN_EXE_netmaster");
const NETCTL: &str = env!("CARGO_BIN_EXE_netctl");

/// Raises this test process's soft open-file limit to the hard one (thousands of sockets).
fn raise_own_file_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        lim.rlim_cur = lim.rlim_max;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
    }
    lim.rlim_cur
}

/// Sends `request` on a fresh connection and reads until the server closes it or `wait` passes;
/// returns what came back.
fn raw(port: u16, request: &[u8], wait: Duration) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(wait)).expect("timeout");
    // The server may answer and close before all of a too-large request is written.
    let _ = s.write_all(request);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn status_of(response: &str) -> u16 {
    response
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// Time for one normal request on a new connection.
fn timed_request(nm: &Netmaster) -> Duration {
    let t = Instant::now();
    let agent = common::agent();
    let mut resp = agent
        .get(format!("{}/api/v1/tenants/", nm.url))
        .call()
        .expect("normal request");
    assert_eq!(resp.status().as_u16(), 200);
    let _ = resp.body_mut().read_to_string();
    t.elapsed()
}

#[test]
fn idle_and_trickling_connections_do_not_stall_a_request() {
    let limit = raise_own_file_limit();
    assert!(
        limit > 2_400,
        "this test needs 2,400 file descriptors, the limit is {limit}"
    );
    let nm = Netmaster::start();
    let mut idle = Vec::with_capacity(2_000);
    for i in 0..2_000 {
        idle.push(
            TcpStream::connect(("127.0.0.1", nm.port))
                .unwrap_or_else(|e| panic!("idle connection {i}: {e}")),
        );
    }
    let mut trickling = Vec::with_capacity(200);
    for _ in 0..200 {
        let s = TcpStream::connect(("127.0.0.1", nm.port)).expect("trickling connection");
        s.set_nonblocking(true).expect("nonblocking");
        trickling.push(s);
    }
    let head = b"GET /api/v1/tenants/ HTTP/1.1\r\nHost: x\r\n";
    let mut worst = Duration::ZERO;
    for (sec, byte) in head.iter().take(4).enumerate() {
        for s in &mut trickling {
            let _ = s.write(&[*byte]);
        }
        std::thread::sleep(Duration::from_millis(500));
        let took = timed_request(&nm);
        std::thread::sleep(Duration::from_millis(500));
        eprintln!("second {sec}: a normal request took {took:?}");
        worst = worst.max(took);
    }
    assert!(
        worst < Duration::from_secs(1),
        "a request under 2,000 idle and 200 trickling connections took {worst:?}"
    );
    // The trickled heads are cut off at the head timeout (10 s), and the idle ones with them.
    std::thread::sleep(Duration::from_secs(8));
    let mut s = &trickling[0];
    s.set_nonblocking(false).expect("blocking");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut buf = [0u8; 256];
    let n = s.read(&mut buf).unwrap_or(0);
    assert!(
        n == 0 || String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 408"),
        "a trickling connection was not closed after the head timeout: {:?}",
        String::from_utf8_lossy(&buf[..n])
    );
    assert!(timed_request(&nm) < Duration::from_secs(1));
}

#[test]
fn half_sent_and_idle_connections_are_closed_after_the_head_timeout() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let nm = Netmaster::start_in(tmp.path(), &["--head-timeout", "2"]);
    let t = Instant::now();
    let out = raw(
        nm.port,
        b"PUT /api/v1/tenants/t1/ HTTP/1.1\r\nHost: x\r\nContent-Len",
        Duration::from_secs(10),
    );
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(1_500) && took < Duration::from_secs(5),
        "half-sent request closed after {took:?}: {out:?}"
    );
    assert!(out.is_empty() || status_of(&out) == 408, "{out:?}");
    // Idle keep-alive: a connection that sends nothing is closed as well.
    let t = Instant::now();
    let out = raw(nm.port, b"", Duration::from_secs(10));
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "idle connection kept open"
    );
    assert!(out.is_empty() || status_of(&out) == 408, "{out:?}");
    assert_eq!(
        nm.problem("GET", "/api/v1/tenants/t1/", None).0,
        404,
        "nothing was created"
    );
}

#[test]
fn oversized_bodies_heads_and_paths_are_refused() {
    let nm = Netmaster::start();
    let name = "x".repeat(1 << 20);
    let body = json!({"key": "t1", "tenantName": "t1", "defaultNetwork": name});
    let (code, msg) = nm.put("/api/v1/tenants/t1/", &body);
    assert_eq!(code, 413, "{msg}");
    assert!(msg.contains("--max-body-bytes"), "{msg}");
    // Without a length up front (chunked), the body is cut off at the limit too.
    let mut req = b"PUT /api/v1/tenants/t1/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
    let chunk = "y".repeat(64 << 10);
    for _ in 0..20 {
        req.extend_from_slice(format!("{:x}\r\n{chunk}\r\n", chunk.len()).as_bytes());
    }
    req.extend_from_slice(b"0\r\n\r\n");
    let out = raw(nm.port, &req, Duration::from_secs(10));
    assert_eq!(status_of(&out), 413, "{}", &out[..out.len().min(300)]);
    // A 64 KB header.
    let req = format!(
        "GET /api/v1/tenants/ HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "h".repeat(64 << 10)
    );
    let out = raw(nm.port, req.as_bytes(), Duration::from_secs(10));
    assert_eq!(status_of(&out), 431, "{out:?}");
    // A 5,000-byte path.
    let req = format!(
        "GET /api/v1/tenants/{}/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "p".repeat(5_000)
    );
    let out = raw(nm.port, req.as_bytes(), Duration::from_secs(10));
    assert_eq!(status_of(&out), 414, "{out:?}");
    assert!(out.contains("--max-path-bytes"), "{out:?}");
    // Nothing stored, and a normal request still works.
    assert_eq!(nm.problem("GET", "/api/v1/tenants/t1/", None).0, 404);
    let (code, msg) = nm.put(
        "/api/v1/tenants/t1/",
        &json!({"key": "t1", "tenantName": "t1"}),
    );
    assert_eq!(code, 200, "{msg}");
}

/// One refused write: what is sent, the field its message must name, and the path whose GET
/// must be unchanged.
struct Case {
    what: &'static str,
    path: String,
    body: String,
    names: &'static str,
}

fn case(what: &'static str, path: &str, body: Value, names: &'static str) -> Case {
    Case {
        what,
        path: path.to_owned(),
        body: body.to_string(),
        names,
    }
}

#[test]
fn values_outside_the_schema_are_refused_and_change_nothing() {
    let nm = Netmaster::start();
    let ok = |path: &str, body: Value| {
        let (code, msg) = nm.post(path, &body);
        assert_eq!(code, 200, "{path}: {msg}");
    };
    ok(
        "/api/v1/tenants/t1/",
        json!({"key": "t1", "tenantName": "t1"}),
    );
    ok(
        "/api/v1/netprofiles/t1:qos/",
        json!({"key": "t1:qos", "tenantName": "t1", "profileName": "qos", "DSCP": 10}),
    );
    ok(
        "/api/v1/policys/t1:p/",
        json!({"key": "t1:p", "tenantName": "t1", "policyName": "p"}),
    );
    let net = |tag: i64, encap: &str, name: &str| {
        json!({"key": format!("t1:{name}"), "tenantName": "t1", "networkName": name,
               "encap": encap, "subnet": "10.9.0.0/24", "pktTag": tag})
    };
    let rule = |port: i64, priority: i64| {
        json!({"key": "t1:p:r1", "tenantName": "t1", "policyName": "p", "ruleId": "r1",
               "direction": "in", "action": "allow", "protocol": "tcp", "port": port,
               "priority": priority})
    };
    let bgp = |asn: &str, neighbor_as: &str| {
        json!({"key": "h1", "hostname": "h1", "routerip": "10.1.1.1/24", "as": asn,
               "neighbor-as": neighbor_as, "neighbor": "10.1.1.2"})
    };
    let profile = |dscp: i64, burst: i64| {
        json!({"key": "t1:qos", "tenantName": "t1", "profileName": "qos", "DSCP": dscp,
               "burst": burst})
    };
    let cases = [
        case(
            "negative DSCP",
            "/api/v1/netprofiles/t1:qos/",
            profile(-1, 0),
            "DSCP",
        ),
        case(
            "DSCP over 63",
            "/api/v1/netprofiles/t1:qos/",
            profile(64, 0),
            "DSCP",
        ),
        case(
            "negative burst",
            "/api/v1/netprofiles/t1:qos/",
            profile(10, -1),
            "burst",
        ),
        case(
            "rule port -1",
            "/api/v1/rules/t1:p:r1/",
            rule(-1, 1),
            "port",
        ),
        case(
            "rule port 65536",
            "/api/v1/rules/t1:p:r1/",
            rule(65536, 1),
            "port",
        ),
        case(
            "rule priority 101",
            "/api/v1/rules/t1:p:r1/",
            rule(80, 101),
            "priority",
        ),
        case(
            "negative pktTag",
            "/api/v1/networks/t1:n1/",
            net(-5, "vxlan", "n1"),
            "pktTag",
        ),
        case(
            "VXLAN id too big",
            "/api/v1/networks/t1:n1/",
            net(16_777_217, "vxlan", "n1"),
            "pktTag",
        ),
        case(
            "AS with NUL",
            "/api/v1/Bgps/h1/",
            bgp("65000\u{0}", "65001"),
            "as",
        ),
        case(
            "AS with newline",
            "/api/v1/Bgps/h1/",
            bgp("65000", "65001\nx"),
            "neighbor-as",
        ),
        case(
            "AS too long",
            "/api/v1/Bgps/h1/",
            bgp(&"6".repeat(65), "65001"),
            "as",
        ),
        case(
            "name with newline",
            "/api/v1/policys/t1:p%0Ax/",
            json!({"key": "t1:p\nx", "tenantName": "t1", "policyName": "p\nx"}),
            "policyName",
        ),
        case(
            "name with NUL",
            "/api/v1/tenants/t%00x/",
            json!({"key": "t\u{0}x", "tenantName": "t\u{0}x"}),
            "tenantName",
        ),
        case(
            "name too long",
            &format!("/api/v1/networks/t1:{}/", "n".repeat(65)),
            net(0, "vxlan", &"n".repeat(65)),
            "networkName",
        ),
    ];
    let mut cases: Vec<Case> = cases.into_iter().collect();
    cases.push(Case {
        what: "duplicate member",
        path: "/api/v1/netprofiles/t1:qos/".into(),
        body: r#"{"key":"t1:qos","tenantName":"t1","profileName":"qos","DSCP":10,"DSCP":-1}"#
            .into(),
        names: "DSCP",
    });
    cases.push(Case {
        what: "duplicate member by folded name",
        path: "/api/v1/tenants/t2/".into(),
        body: r#"{"key":"t2","tenantName":"t2","TenantName":"t3"}"#.into(),
        names: "TenantName",
    });
    for c in &cases {
        let before = nm.get(&c.path);
        let body: Value = serde_json::from_str(&c.body).unwrap_or(Value::Null);
        for method in ["POST", "PUT"] {
            let (code, msg) = if body.is_null() || c.what.starts_with("duplicate") {
                raw_json(&nm, method, &c.path, &c.body)
            } else {
                nm.problem(method, &c.path, Some(&body))
            };
            assert_eq!(code, 400, "{}: {method} answered {code}: {msg}", c.what);
            assert!(
                msg.contains(c.names),
                "{}: message names no field: {msg}",
                c.what
            );
            assert_eq!(
                nm.get(&c.path),
                before,
                "{}: {method} changed the object",
                c.what
            );
        }
    }
    // The profile kept its value throughout.
    assert_eq!(nm.get_json("/api/v1/netprofiles/t1:qos/")["DSCP"], 10);
}

/// A request whose body is sent byte for byte (duplicate members survive no `Value`).
fn raw_json(nm: &Netmaster, method: &str, path: &str, body: &str) -> (u16, String) {
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nAccept: application/problem+json\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let out = raw(nm.port, req.as_bytes(), Duration::from_secs(10));
    (status_of(&out), out)
}

#[test]
fn agents_with_a_bad_host_name_are_refused_and_info_hides_the_store_path() {
    let nm = Netmaster::start();
    for name in ["", "h 1", "h\n1", "-h", "h_1", &"h".repeat(254)] {
        let node =
            json!({"hostname": name, "vtepIP": "", "datapath": "linux", "agentVersion": "x"});
        let (code, msg) = nm.problem("POST", "/plugin/registerNode", Some(&node));
        assert_eq!(code, 400, "{name:?}: {msg}");
        assert!(msg.contains("hostname"), "{msg}");
    }
    // The other agent calls: a member given twice or a control character is refused too.
    for body in [
        r#"{"addressPool":"10.1.0.0/24","addressPool":"10.2.0.0/24","networkID":"n.t"}"#,
        r#"{"addressPool":"","networkID":"n\u0000.t"}"#,
    ] {
        let (code, msg) = raw_json(&nm, "POST", "/plugin/allocAddress", body);
        assert_eq!(code, 400, "{body}: {msg}");
        assert!(
            (msg.contains("duplicate member") && msg.contains("addressPool"))
                || (msg.contains("networkID") && msg.contains("control character")),
            "{msg}"
        );
    }
    let node = json!({"hostname": "lm-h1.example", "vtepIP": "", "datapath": "linux", "agentVersion": "x"});
    assert_eq!(nm.post("/plugin/registerNode", &node).0, 200);
    let info = nm.get_json("/info");
    assert_eq!(info["netplugin-nodes"], json!(["lm-h1.example"]), "{info}");
    let text = info.to_string();
    let dir = nm.data_dir.to_string_lossy();
    assert!(
        !text.contains(dir.as_ref()),
        "/info shows the store's path: {text}"
    );
    assert!(info["state-store"].get("location").is_none(), "{info}");
}

#[test]
fn requests_over_the_rate_answer_429_with_retry_after() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let nm = Netmaster::start_in(tmp.path(), &["--rate-limit", "5"]);
    std::thread::sleep(Duration::from_millis(1_200)); // the readiness polls spent tokens
    let agent = common::agent();
    let mut codes = Vec::new();
    let mut retry_after = None;
    for _ in 0..20 {
        let resp = agent
            .get(format!("{}/api/v1/tenants/", nm.url))
            .call()
            .expect("request");
        codes.push(resp.status().as_u16());
        if resp.status().as_u16() == 429 {
            retry_after = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
        }
    }
    let ok = codes.iter().filter(|c| **c == 200).count();
    assert!((5..=7).contains(&ok), "{codes:?}");
    assert!(codes.contains(&429), "{codes:?}");
    let wait = retry_after.expect("Retry-After on a 429");
    assert!((1..=2).contains(&wait), "Retry-After {wait}");
    std::thread::sleep(Duration::from_secs(wait));
    assert_eq!(nm.get("/api/v1/tenants/").0, 200);
}

#[test]
fn objects_per_tenant_are_capped() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let nm = Netmaster::start_in(tmp.path(), &["--max-objects-per-tenant", "3"]);
    let policy =
        |name: &str| json!({"key": format!("t1:{name}"), "tenantName": "t1", "policyName": name});
    assert_eq!(
        nm.post(
            "/api/v1/tenants/t1/",
            &json!({"key": "t1", "tenantName": "t1"})
        )
        .0,
        200
    );
    for p in ["p1", "p2", "p3"] {
        let (code, msg) = nm.post(&format!("/api/v1/policys/t1:{p}/"), &policy(p));
        assert_eq!(code, 200, "{msg}");
    }
    let (code, msg) = nm.post("/api/v1/policys/t1:p4/", &policy("p4"));
    assert_eq!(code, 409, "{msg}");
    assert!(msg.contains("--max-objects-per-tenant"), "{msg}");
    assert_eq!(nm.problem("GET", "/api/v1/policys/t1:p4/", None).0, 404);
    // Updating an existing object still works.
    assert_eq!(nm.put("/api/v1/policys/t1:p1/", &policy("p1")).0, 200);
}

/// A netmaster serving TLS with a plain loopback listener beside it; killed on drop.
struct TlsServer {
    child: Child,
    plain: u16,
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn certs_in(dir: &Path) {
    let out = Command::new(NETMASTER)
        .args(["certs", "init"])
        .arg(dir)
        .args(["--host", "h1"])
        .output()
        .expect("netmaster certs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn netmaster_tls(dir: &Path, plain_loopback: &str, extra: &[&str]) -> Command {
    let mut cmd = Command::new(NETMASTER);
    cmd.arg("--external-address")
        .arg(format!("127.0.0.1:{}", free_port()))
        .arg("--data-dir")
        .arg(dir.join("data"))
        .arg("--tls-cert")
        .arg(dir.join("netmaster.pem"))
        .arg("--tls-key")
        .arg(dir.join("netmaster-key.pem"))
        .arg("--tls-client-ca")
        .arg(dir.join("ca.pem"))
        .args(["--plain-loopback", plain_loopback])
        .args(extra);
    cmd
}

fn netctl(home: &Path, port: u16, args: &[&str]) -> (bool, String) {
    let out = Command::new(NETCTL)
        .env("HOME", home)
        .arg("--netmaster")
        .arg(format!("http://127.0.0.1:{port}"))
        .args(args)
        .output()
        .expect("netctl");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn plain_loopback_listener_beside_tls_keeps_auth_and_refuses_agents() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    certs_in(dir);
    let pw = dir.join("pw");
    std::fs::write(&pw, "lm-secret-pw\n").expect("password file");
    let plain = free_port();
    let child = netmaster_tls(
        dir,
        &format!("127.0.0.1:{plain}"),
        &[
            "--auth",
            "--admin-password-file",
            pw.to_str().expect("utf-8"),
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .expect("spawn netmaster");
    let nm = TlsServer { child, plain };
    let base = format!("http://127.0.0.1:{}", nm.plain);
    let deadline = Instant::now() + Duration::from_secs(20);
    while common::try_request(&base, "GET", "/version", None, false).is_err() {
        assert!(
            Instant::now() < deadline,
            "plain loopback listener never answered"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Same auth rules as on TLS: no token, no API (even for root, when run as root: without
    // --plain-loopback-root-admin the socket's owner is not looked at).
    assert_eq!(
        common::request(&base, "GET", "/api/v1/tenants/", None, false).0,
        401
    );
    // Agents never, whatever they claim.
    let node = json!({"hostname": "h1", "vtepIP": "", "datapath": "linux", "agentVersion": "x"});
    let (code, msg) = common::request(&base, "POST", "/plugin/registerNode", Some(&node), false);
    assert_eq!(code, 403, "{msg}");
    assert!(msg.contains("TLS"), "{msg}");
    assert_eq!(
        common::request(&base, "GET", "/plugin/agentState", None, false).0,
        403
    );
    // A netctl session over plain HTTP: log in, create, list.
    let home = dir.join("home");
    std::fs::create_dir_all(&home).expect("home");
    let (ok, out) = netctl(
        &home,
        plain,
        &["login", "-u", "admin", "-p", "lm-secret-pw"],
    );
    assert!(ok, "{out}");
    let (ok, out) = netctl(&home, plain, &["tenant", "create", "lm-plain"]);
    assert!(ok, "{out}");
    let (ok, out) = netctl(&home, plain, &["tenant", "ls"]);
    assert!(ok && out.contains("lm-plain"), "{out}");
}

/// `curl` on the plain listener as `uid` (the test's own when `None`), with a JSON body (none
/// when empty) and an optional token; answers the HTTP status.
fn curl_as(uid: Option<u32>, method: &str, url: &str, body: &str, token: Option<&str>) -> u16 {
    // setpriv (util-linux) drops to another user with no supplementary groups.
    let mut cmd = match uid {
        Some(id) => {
            let mut c = Command::new("setpriv");
            c.arg(format!("--reuid={id}"))
                .arg(format!("--regid={id}"))
                .args(["--clear-groups", "curl"]);
            c
        }
        None => Command::new("curl"),
    };
    cmd.args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", method])
        .args(["-H", "Content-Type: application/json"]);
    if !body.is_empty() {
        cmd.args(["-d", body]);
    }
    if let Some(t) = token {
        cmd.args(["-H", &format!("X-Auth-Token: {t}")]);
    }
    let out = cmd.arg(url).output().expect("run curl");
    let code = String::from_utf8_lossy(&out.stdout);
    code.trim()
        .parse()
        .unwrap_or_else(|_| panic!("curl {method} {url}: {code:?}"))
}

#[test]
#[ignore = "needs root"]
fn plain_loopback_root_admin_trusts_root_only_and_a_token_still_wins() {
    const NOBODY: u32 = 65534;
    const NOBODY_TENANT: &str = r#"{"tenantName": "rl-nobody"}"#;
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    certs_in(dir);
    let pw = dir.join("pw");
    std::fs::write(&pw, "rl-secret-pw\n").expect("password file");
    let plain = free_port();
    let child = netmaster_tls(
        dir,
        &format!("127.0.0.1:{plain}"),
        &[
            "--auth",
            "--admin-password-file",
            pw.to_str().expect("utf-8"),
            "--plain-loopback-root-admin",
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .expect("spawn netmaster");
    let nm = TlsServer { child, plain };
    let base = format!("http://127.0.0.1:{}", nm.plain);
    let deadline = Instant::now() + Duration::from_secs(20);
    while common::try_request(&base, "GET", "/version", None, false).is_err() {
        assert!(
            Instant::now() < deadline,
            "plain loopback listener never answered"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Root without a token: admin, a write included.
    let tenant = json!({"tenantName": "rl-root"});
    let (code, msg) = common::request(
        &base,
        "POST",
        "/api/v1/tenants/rl-root/",
        Some(&tenant),
        false,
    );
    assert_eq!(code, 200, "{msg}");
    // Another local user without a token: refused, and nothing written.
    let url = format!("{base}/api/v1/tenants/rl-nobody/");
    assert_eq!(
        curl_as(Some(NOBODY), "POST", &url, NOBODY_TENANT, None),
        401
    );
    assert_eq!(
        curl_as(
            Some(NOBODY),
            "GET",
            &format!("{base}/api/v1/tenants/"),
            "",
            None
        ),
        401
    );
    let (code, list) = common::request(&base, "GET", "/api/v1/tenants/", None, false);
    assert!(code == 200 && !list.contains("rl-nobody"), "{code} {list}");
    // A token, when sent, decides: a bad one is refused even from root; a good one is its user.
    assert_eq!(
        curl_as(None, "POST", &url, NOBODY_TENANT, Some("forged")),
        401
    );
    let login = json!({"username": "admin", "password": "rl-secret-pw"});
    let (code, msg) = common::request(
        &base,
        "POST",
        "/api/v1/auth_proxy/login/",
        Some(&login),
        false,
    );
    assert_eq!(code, 200, "{msg}");
    let token: Value = serde_json::from_str(&msg).expect("login answer");
    let token = token["token"].as_str().expect("token");
    assert_eq!(
        curl_as(Some(NOBODY), "POST", &url, NOBODY_TENANT, Some(token)),
        200
    );
    // Agents still never, root or not.
    let node = json!({"hostname": "h1", "vtepIP": "", "datapath": "linux", "agentVersion": "x"});
    assert_eq!(
        common::request(&base, "POST", "/plugin/registerNode", Some(&node), false).0,
        403
    );
    // The audit log names root's writes local-root with its address, the token's as admin.
    let (code, log) = common::request(&base, "GET", "/api/v1/audit/", None, false);
    assert_eq!(code, 200, "{log}");
    let log: Vec<Value> = serde_json::from_str(&log).expect("audit list");
    let find = |key: &str, result_ok: bool| {
        log.iter()
            .find(|e| e["key"] == key && e["method"] == "POST" && (e["status"] == 200) == result_ok)
            .unwrap_or_else(|| panic!("no audit entry for {key}: {log:?}"))
    };
    let root = find("rl-root", true);
    assert_eq!(root["user"], "local-root", "{root}");
    assert!(
        root["source"]
            .as_str()
            .is_some_and(|s| s.starts_with("127.0.0.1:")),
        "{root}"
    );
    assert_eq!(find("rl-nobody", false)["user"], "anonymous");
    assert_eq!(find("rl-nobody", true)["user"], "admin");
}

#[test]
fn plain_loopback_listener_refuses_a_non_loopback_address() {
    let tmp = tempfile::tempdir().expect("tempdir");
    certs_in(tmp.path());
    let out = netmaster_tls(tmp.path(), &format!("0.0.0.0:{}", free_port()), &[])
        .output()
        .expect("run netmaster");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not loopback"), "{err}");
}
