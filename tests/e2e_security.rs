//! Issue 13's acceptance on the multi-host test bed as it runs by default (netmaster over HTTPS
//! with client certificates, `--auth`, real agents proving their host, workloads attached through
//! contivk8s): calls without credentials, roles and tenants, expired, forged and refreshed tokens
//! across a key rotation, agents acting for another host, a revoked agent, TLS 1.1.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::bins;
use contiv_netplugin::testbed::{eventually, ping, require_root, Cluster, Workload};
use serde_json::{json, Value};

fn cluster(args: &[&str]) -> Cluster {
    require_root();
    Cluster::start(bins(), 2, args).unwrap_or_else(|e| panic!("cluster: {e}"))
}

/// Tenants `t1` and `t2`, each with network `n` and group `g`; one workload of `default:net1` on
/// each host (a on h1, b on h2).
fn seed(c: &Cluster) -> (Workload, Workload) {
    for (t, subnet) in [("t1", "10.71.1.0/24"), ("t2", "10.71.2.0/24")] {
        c.create_tenant(t).expect("tenant");
        let gw = subnet.replace(".0/24", ".1");
        c.create_network(t, "n", subnet, &gw).expect("network");
        let g = json!({"tenantName": t, "groupName": "g", "networkName": "n"});
        admin_ok(
            c,
            "POST",
            &format!("/api/v1/endpointGroups/{t}:g/"),
            Some(&g),
        );
    }
    c.create_network("default", "net1", "10.71.0.0/24", "10.71.0.1")
        .expect("network");
    let a = c.add_workload(0, "a", "default", "net1").expect("a on h1");
    let b = c.add_workload(1, "b", "default", "net1").expect("b on h2");
    (a, b)
}

fn admin_ok(c: &Cluster, method: &str, path: &str, body: Option<&Value>) -> String {
    let (code, text) = c
        .api(method, path, body)
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    assert!(code == 200 || code == 201, "{method} {path}: {code} {text}");
    text
}

fn call(c: &Cluster, token: Option<&str>, method: &str, path: &str, body: Option<&Value>) -> u16 {
    c.api_as(token, method, path, body)
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
        .0
}

/// Creates user `name` with `role` over `tenants` (as the admin) and logs it in.
fn user(c: &Cluster, name: &str, role: &str, tenants: &[&str]) -> String {
    let pw = format!("password-of-{name}");
    let u = json!({"username": name, "password": pw, "role": role, "tenants": tenants});
    admin_ok(c, "POST", "/api/v1/auth_proxy/local_users/", Some(&u));
    token_from(&c.api_as(
        None,
        "POST",
        "/api/v1/auth_proxy/login/",
        Some(&json!({"username": name, "password": pw})),
    ))
}

fn token_from(r: &Result<(u16, String), String>) -> String {
    let (code, text) = r.as_ref().expect("call");
    assert_eq!(*code, 200, "{text}");
    serde_json::from_str::<Value>(text).expect("json")["token"]
        .as_str()
        .expect("token")
        .to_owned()
}

/// Everything an admin sees: what a refused call must leave as it was.
fn snapshot(c: &Cluster) -> Vec<String> {
    ["tenants", "networks", "endpointGroups", "policys", "rules"]
        .iter()
        .map(|p| admin_ok(c, "GET", &format!("/api/v1/{p}/"), None))
        .chain(std::iter::once(admin_ok(
            c,
            "GET",
            "/api/v1/auth_proxy/local_users/",
            None,
        )))
        .collect()
}

/// Every operation of netmaster's OpenAPI document: (method, path with its parameters filled).
fn every_operation(c: &Cluster) -> Vec<(String, String)> {
    let doc: Value = c.get_json("/api/v1/openapi.json").expect("openapi");
    let paths = doc["paths"].as_object().expect("paths");
    let mut ops = Vec::new();
    for (path, item) in paths {
        let filled = path
            .replace("/tenants/{key}", "/tenants/t2")
            .replace("/networks/{key}", "/networks/t2:n")
            .replace("{key}", "t2:g")
            .replace("{name}", "admin")
            .replace("{id}", "no-such-authorization");
        assert!(!filled.contains('{'), "unfilled parameter in {path}");
        let methods = item.as_object().expect("path item").keys();
        // Other members of a path item ("parameters", "summary") are not operations.
        for method in
            methods.filter(|m| ["get", "post", "put", "patch", "delete"].contains(&m.as_str()))
        {
            ops.push((method.to_uppercase(), filled.clone()));
        }
    }
    ops
}

#[test]
#[ignore = "needs root"]
fn every_api_call_without_credentials_answers_401() {
    let c = cluster(&[]);
    let (a, b) = seed(&c);
    let before = snapshot(&c);
    let ops = every_operation(&c);
    let body = json!({"tenantName": "t2", "networkName": "n", "groupName": "g",
        "username": "admin", "password": "not-the-password", "role": "admin"});
    let mut judged = 0;
    for (method, path) in &ops {
        // Open by design: the login itself, and the version and liveness probes.
        if path.starts_with("/api/v1/auth_proxy/login") || path == "/version" || path == "/info" {
            continue;
        }
        let b = (method != "GET" && method != "DELETE").then_some(&body);
        // /api/v1 wants a token, /plugin a host certificate: this client has neither.
        assert_eq!(call(&c, None, method, path, b), 401, "{method} {path}");
        judged += 1;
    }
    assert!(
        judged >= 50,
        "only {judged} operations in the OpenAPI document"
    );
    // A token that is not one is no better than none.
    assert_eq!(
        call(&c, Some("not-a-token"), "GET", "/api/v1/networks/", None),
        401
    );
    assert_eq!(snapshot(&c), before, "a refused call changed something");
    assert!(
        ping(&a.netns, b.ip, 2),
        "the workloads still reach each other"
    );
    // netctl without a token is refused the same way; with the harness' login it works.
    let out = Command::new(env!("CARGO_BIN_EXE_netctl"))
        .env("HOME", "/nonexistent")
        .env("CONTIV_CACERT", c.credentials().expect("tls").ca())
        .args(["--netmaster", &c.url, "network", "ls"])
        .output()
        .expect("netctl");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("401") || err.contains("token"), "{err}");
    let out = c.netctl(&["network", "ls", "-t", "t2"]).expect("netctl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("10.71.2.0/24"));
}

#[test]
#[ignore = "needs root"]
fn read_only_writes_403_and_a_tenant_admin_never_sees_another_tenant() {
    let c = cluster(&[]);
    let (_a, b) = seed(&c);
    let ro = user(&c, "ro", "read-only", &[]);
    let ta = user(&c, "ta", "tenant-admin", &["t1"]);
    let before = snapshot(&c);

    // read-only: reads everything, every write 403.
    assert_eq!(
        call(&c, Some(&ro), "GET", "/api/v1/networks/t2:n/", None),
        200
    );
    let g = json!({"tenantName": "t2", "groupName": "g", "networkName": "n", "policies": []});
    for (method, path, body) in [
        (
            "POST",
            "/api/v1/tenants/t3/",
            Some(json!({"tenantName": "t3"})),
        ),
        ("PUT", "/api/v1/endpointGroups/t2:g/", Some(g.clone())),
        ("DELETE", "/api/v1/networks/t2:n/", None),
        ("DELETE", "/api/v1/endpointGroups/t1:g/", None),
        ("POST", "/api/v1/auth_proxy/keys/rotate/", None),
    ] {
        assert_eq!(
            call(&c, Some(&ro), method, path, body.as_ref()),
            403,
            "{method} {path}"
        );
    }

    // tenant-admin of t1: t2's objects answer 404 exactly like missing ones, lists leave t2 out.
    let missing = c
        .api_as(Some(&ta), "GET", "/api/v1/networks/t1:nope/", None)
        .expect("get");
    let foreign = c
        .api_as(Some(&ta), "GET", "/api/v1/networks/t2:n/", None)
        .expect("get");
    assert_eq!(foreign.0, 404);
    assert_eq!(foreign.1, missing.1.replace("t1:nope", "t2:n"));
    for (method, path, body) in [
        ("GET", "/api/v1/inspect/networks/t2:n/", None),
        ("GET", "/api/v1/endpointGroups/t2:g/", None),
        ("PUT", "/api/v1/endpointGroups/t2:g/", Some(g.clone())),
        ("DELETE", "/api/v1/endpointGroups/t2:g/", None),
        ("DELETE", "/api/v1/networks/t2:n/", None),
        ("GET", "/api/v1/tenants/t2/", None),
    ] {
        assert_eq!(
            call(&c, Some(&ta), method, path, body.as_ref()),
            404,
            "{method} {path}"
        );
    }
    for plural in ["tenants", "networks", "endpointGroups"] {
        let (code, list) = c
            .api_as(Some(&ta), "GET", &format!("/api/v1/{plural}/"), None)
            .expect("list");
        assert_eq!(code, 200, "{list}");
        assert!(
            list.contains("t1") && !list.contains("t2"),
            "{plural}: {list}"
        );
        assert!(!list.contains("\"default"), "{plural}: {list}");
    }
    assert_eq!(snapshot(&c), before, "a refused call changed something");
    // Inside its own tenant the tenant-admin works as usual.
    let g1 = json!({"tenantName": "t1", "groupName": "g2", "networkName": "n"});
    assert_eq!(
        call(
            &c,
            Some(&ta),
            "POST",
            "/api/v1/endpointGroups/t1:g2/",
            Some(&g1)
        ),
        200
    );
    // A workload attached by its tenant's agent is unaffected by users.
    let w = c
        .add_workload_in_group(1, "t1w", "t1", "n", Some("g2"))
        .expect("a workload in t1:g2 on h2");
    assert!(w.ip.to_string().starts_with("10.71.1."), "{w:?}");
    assert!(!b.ip.is_unspecified());
}

#[test]
#[ignore = "needs root"]
fn expired_and_forged_tokens_401_and_a_refreshed_token_survives_a_key_rotation() {
    // Tokens live 4 s here (the harness logs in again when its own expires).
    let c = cluster(&["--token-ttl", "4"]);
    seed(&c);
    let ops = user(&c, "ops", "ops", &[]);
    let path = "/api/v1/networks/";
    assert_eq!(call(&c, Some(&ops), "GET", path, None), 200);

    // Forged: claims changed under the same signature, a signature from elsewhere, no signature.
    let parts: Vec<&str> = ops.split('.').collect();
    assert_eq!(parts.len(), 3, "{ops}");
    let admin = c.token().expect("admin token");
    let admin_parts: Vec<&str> = admin.split('.').collect();
    for forged in [
        format!("{}.{}.{}", parts[0], admin_parts[1], parts[2]),
        format!("{}.{}.{}", parts[0], parts[1], admin_parts[2]),
        format!("{}.{}.", parts[0], parts[1]),
        format!("{}.{}", parts[0], parts[1]),
    ] {
        assert_eq!(call(&c, Some(&forged), "GET", path, None), 401, "{forged}");
        let g = json!({"tenantName": "t2", "groupName": "g", "networkName": "n", "policies": []});
        assert_eq!(
            call(
                &c,
                Some(&forged),
                "PUT",
                "/api/v1/endpointGroups/t2:g/",
                Some(&g)
            ),
            401
        );
    }

    // Refresh, rotate the signing key: the refreshed token keeps working, and refreshing it
    // again after the rotation gives a token of the new key.
    let refreshed = token_from(&c.api_as(Some(&ops), "POST", "/api/v1/auth_proxy/refresh/", None));
    admin_ok(&c, "POST", "/api/v1/auth_proxy/keys/rotate/", None);
    assert_eq!(call(&c, Some(&refreshed), "GET", path, None), 200);
    let renewed = token_from(&c.api_as(
        Some(&refreshed),
        "POST",
        "/api/v1/auth_proxy/refresh/",
        None,
    ));
    assert_ne!(
        renewed.split('.').next(),
        refreshed.split('.').next(),
        "signed by the new key"
    );
    assert_eq!(call(&c, Some(&renewed), "GET", path, None), 200);
    // A netmaster restart keeps both keys: both tokens still work.
    let mut c = c;
    c.start_netmaster().expect("netmaster back");
    assert_eq!(call(&c, Some(&refreshed), "GET", path, None), 200);
    assert_eq!(call(&c, Some(&renewed), "GET", path, None), 200);

    // Expired: 401, refresh refused too; the holder must log in again.
    let issued = Instant::now();
    while issued.elapsed() < Duration::from_millis(5100) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(call(&c, Some(&renewed), "GET", path, None), 401);
    assert_eq!(
        call(
            &c,
            Some(&renewed),
            "POST",
            "/api/v1/auth_proxy/refresh/",
            None
        ),
        401
    );
    // The harness (admin) logs in again by itself: the test bed keeps working.
    c.get_json(path).expect("the harness renews its token");
}

/// An HTTPS client of netmaster presenting host `i`'s certificate.
fn host_client(c: &Cluster, i: usize) -> ureq::Agent {
    let creds = c.credentials().expect("tls test bed");
    let (cert, key) = creds.host_cert(i);
    let files = contiv_tls::ClientFiles {
        ca: Some(creds.ca()),
        cert: Some(cert),
        key: Some(key),
        insecure: false,
    };
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .tls_config(contiv_tls::client_config(&files).expect("client tls"))
        .build()
        .into()
}

fn post(agent: &ureq::Agent, c: &Cluster, path: &str, body: &Value) -> (u16, String) {
    let mut r = agent
        .post(format!("{}{path}", c.url))
        .header("Content-Type", "application/json")
        .send(body.to_string())
        .unwrap_or_else(|e| panic!("POST {path}: {e}"));
    let code = r.status().as_u16();
    (code, r.body_mut().read_to_string().unwrap_or_default())
}

fn register(host: &str) -> Value {
    json!({"hostname": host, "vtepIP": "", "datapath": "linux", "agentVersion": "test"})
}

#[test]
#[ignore = "needs root"]
fn an_agent_acts_only_for_the_host_its_certificate_names() {
    let c = cluster(&[]);
    let (a, b) = seed(&c);
    // b's address reaches h1's agent a moment after b's ADD (more on a loaded machine): wait for
    // it, so "still reaches" below compares with a path that worked.
    assert!(
        eventually(Duration::from_secs(8), || ping(&a.netns, b.ip, 1)),
        "a reaches b before the forbidden calls"
    );
    let h1 = host_client(&c, 0);
    let before = snapshot(&c);
    let nodes_before = c.get_json("/info").expect("info")["netplugin-nodes"].clone();
    let ep = format!("/api/v1/inspect/endpoints/{}/", c.endpoint_id(&b));
    let b_before = c.get_json(&ep).expect("b's endpoint");
    let forbidden = |path: &str, body: Value| {
        let (code, text) = post(&h1, &c, path, &body);
        assert_eq!(code, 403, "h1 {path}: {text}");
    };
    forbidden("/plugin/registerNode", register("h2"));
    forbidden(
        "/plugin/createEndpoint",
        json!({"TenantName": "default", "NetworkName": "net1", "EndpointID": "evil",
            "EPCommonName": "evil", "ConfigEP": {"Container": "evil", "Host": "h2"}}),
    );
    forbidden(
        "/plugin/deleteEndpoint",
        json!({"TenantName": "default", "NetworkName": "net1", "EndpointID": b.container_id,
            "IPv4Address": b.ip.to_string()}),
    );
    forbidden(
        "/plugin/updateEndpoint",
        json!({"EndpointID": b.container_id, "ContainerID": b.container_id,
            "Labels": {"app": "evil"}, "Event": "start"}),
    );
    forbidden(
        "/plugin/policyReport",
        json!({"hostname": "h2", "revision": 1}),
    );
    // Nothing changed: h2's endpoint as it was, nothing created, both hosts registered once.
    assert_eq!(c.get_json(&ep).expect("b's endpoint"), b_before);
    assert_eq!(snapshot(&c), before);
    let nodes = c.get_json("/info").expect("info")["netplugin-nodes"].clone();
    assert_eq!(nodes, nodes_before);
    assert_eq!(nodes.as_array().map(Vec::len), Some(2), "{nodes}");
    assert!(
        eventually(Duration::from_secs(3), || ping(&a.netns, b.ip, 1)),
        "a still reaches b"
    );
    // h1 acting for itself is fine.
    assert_eq!(
        post(&h1, &c, "/plugin/registerNode", &register("h1")).0,
        200
    );

    // No certificate where one is required: the agent API refuses the harness' own client.
    let (code, _) = c
        .api_as(None, "POST", "/plugin/registerNode", Some(&register("h1")))
        .expect("call");
    assert_eq!(code, 401);
    // TLS 1.1 is refused at the handshake; 1.2 (the probe works) is accepted.
    let port: u16 = c
        .url
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");
    let ca = c.credentials().expect("tls").ca();
    if Command::new("openssl").arg("version").output().is_ok() {
        assert_eq!(handshake(port, &ca, "-tls1_2"), Some(true), "TLS 1.2");
        assert_eq!(handshake(port, &ca, "-tls1_1"), Some(false), "TLS 1.1");
    } else {
        eprintln!("no openssl binary: the TLS 1.1 offer was not tried");
    }
}

/// `openssl s_client` offering only `version`: whether the handshake completed.
fn handshake(port: u16, ca: &Path, version: &str) -> Option<bool> {
    let mut child = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{port}"),
            version,
        ])
        // OpenSSL 3 refuses to offer TLS 1.1 at its default security level: lowered so the
        // refusal is netmaster's.
        .args(["-cipher", "DEFAULT@SECLEVEL=0", "-CAfile"])
        .arg(ca)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    drop(child.stdin.take());
    let out = child.wait_with_output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    Some(text.contains("Cipher is") && !text.contains("Cipher is (NONE)"))
}

#[test]
#[ignore = "needs root"]
fn a_revoked_agent_is_refused_within_5_seconds() {
    let c = cluster(&[]);
    let (a, b) = seed(&c);
    let h2 = host_client(&c, 1);
    assert_eq!(
        post(&h2, &c, "/plugin/registerNode", &register("h2")).0,
        200
    );
    c.revoke_host(1).expect("deny list");
    let revoked = Instant::now();
    while post(&h2, &c, "/plugin/registerNode", &register("h2")).0 != 403 {
        assert!(
            revoked.elapsed() < Duration::from_secs(5),
            "h2 still accepted 5 s after its revocation"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    println!(
        "h2 refused {:?} after the deny-list change",
        revoked.elapsed()
    );
    // The real agent of h2 can no longer attach anything; h1's still can.
    assert!(
        c.add_workload(1, "late2", "default", "net1").is_err(),
        "the revoked agent attached a workload"
    );
    let late1 = c
        .add_workload(0, "late1", "default", "net1")
        .expect("h1 still attaches");
    // What is already running keeps running (the datapath does not need netmaster).
    assert!(ping(&a.netns, b.ip, 2), "a -> b after the revocation");
    assert!(
        eventually(Duration::from_secs(8), || ping(&late1.netns, a.ip, 1)),
        "h1's new workload reaches a"
    );
}

/// Two netmasters on etcd: a write sent to the follower is judged there and again by the leader
/// with the caller's own token (forwarded with it): the admin's lands, a read-only user's is 403.
#[test]
#[ignore = "needs root"]
fn a_write_to_a_follower_carries_the_callers_token_to_the_leader() {
    require_root();
    let etcd = contiv_store::testing::EtcdCluster::start(1).expect("etcd");
    let endpoints = etcd.endpoints().join(",");
    let mut c = Cluster::start_ha(bins(), 1, &["--etcd", &endpoints, "--leader-ttl", "2"], 2)
        .unwrap_or_else(|e| panic!("cluster: {e}"));
    let state = |c: &Cluster, i: usize| c.get_json_at(i, "/info").unwrap_or_default();
    let mut follower = None;
    assert!(
        eventually(Duration::from_secs(20), || {
            follower = (0..2).find(|&i| {
                let s = state(&c, i);
                s["current-state"] == "follower" && s["leader-ip"] != ""
            });
            follower.is_some()
        }),
        "no follower that knows its leader"
    );
    let follower = follower.unwrap_or_default();
    let ro = user(&c, "ro", "read-only", &[]);
    c.use_netmaster(follower);
    c.create_network("default", "via-follower", "10.72.0.0/24", "10.72.0.1")
        .expect("the admin's write through the follower");
    let n = json!({"tenantName": "default", "networkName": "ro-net", "encap": "vxlan",
        "subnet": "10.73.0.0/24"});
    assert_eq!(
        call(
            &c,
            Some(&ro),
            "POST",
            "/api/v1/networks/default:ro-net/",
            Some(&n)
        ),
        403
    );
    assert_eq!(
        call(
            &c,
            None,
            "POST",
            "/api/v1/networks/default:ro-net/",
            Some(&n)
        ),
        401
    );
    c.use_netmaster(1 - follower);
    let nets = admin_ok(&c, "GET", "/api/v1/networks/", None);
    assert!(
        nets.contains("via-follower") && !nets.contains("ro-net"),
        "{nets}"
    );
}
