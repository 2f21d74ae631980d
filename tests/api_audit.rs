//! The audit log against real netmaster processes on loopback: a scripted session of two users
//! (with and without `--auth`), refused calls, `kill -9` during a stream of writes, retention,
//! and `netctl audit`'s filters.

mod common;

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::Netmaster;
use serde_json::{json, Value};

const ADMIN_PW: &str = "admin-secret-1";

/// One call with an optional token: (status, body).
fn call(
    nm: &Netmaster,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> (u16, String) {
    let a = common::agent();
    let url = format!("{}{path}", nm.url);
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut req = ureq::http::Request::builder()
        .method(method)
        .uri(&url)
        .header("Accept", "application/problem+json")
        .header("Content-Type", "application/json");
    if let Some(t) = token {
        req = req.header("X-Auth-Token", t);
    }
    let resp = if matches!(method, "GET" | "DELETE") {
        a.run(req.body(()).unwrap())
    } else {
        a.run(req.body(body).unwrap())
    };
    let mut resp = resp.unwrap();
    (
        resp.status().as_u16(),
        resp.body_mut().read_to_string().unwrap(),
    )
}

fn ok(r: (u16, String), what: &str) -> String {
    assert_eq!(r.0, 200, "{what}: {}", r.1);
    r.1
}

fn login(nm: &Netmaster, user: &str, pw: &str) -> String {
    let body = ok(
        call(
            nm,
            "POST",
            "/api/v1/auth_proxy/login/",
            None,
            Some(&json!({"username": user, "password": pw})),
        ),
        "login",
    );
    serde_json::from_str::<Value>(&body).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn audit(nm: &Netmaster, token: Option<&str>, query: &str) -> Vec<Value> {
    let body = ok(
        call(nm, "GET", &format!("/api/v1/audit/{query}"), token, None),
        "audit",
    );
    serde_json::from_str(&body).unwrap()
}

fn network(t: &str, n: &str, subnet: &str) -> Value {
    json!({"key": format!("{t}:{n}"), "tenantName": t, "networkName": n,
           "encap": "vxlan", "subnet": subnet})
}

fn group(t: &str, g: &str) -> Value {
    json!({"key": format!("{t}:{g}"), "tenantName": t, "groupName": g, "networkName": "n"})
}

/// (method, path, user, status) of each entry.
fn summary(entries: &[Value]) -> Vec<(String, String, String, u64)> {
    entries
        .iter()
        .map(|e| {
            (
                e["method"].as_str().unwrap_or("").to_owned(),
                e["path"].as_str().unwrap_or("").to_owned(),
                e["user"].as_str().unwrap_or("").to_owned(),
                e["status"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

#[test]
fn a_session_of_two_users_is_recorded_in_order_with_diffs_and_refusals() {
    let tmp = tempfile::tempdir().unwrap();
    let pw = tmp.path().join("pw");
    std::fs::write(&pw, format!("{ADMIN_PW}\n")).unwrap();
    let nm = Netmaster::start_in(
        &tmp.path().join("data"),
        &["--auth", "--admin-password-file", pw.to_str().unwrap()],
    );
    let admin = login(&nm, "admin", ADMIN_PW);
    let a = Some(admin.as_str());
    for (name, role, tenants) in [
        ("alice", "tenant-admin", vec!["t1"]),
        ("bob", "read-only", vec![]),
    ] {
        let u = json!({"username": name, "password": format!("pw-of-{name}"), "role": role, "tenants": tenants});
        ok(
            call(&nm, "POST", "/api/v1/auth_proxy/local_users/", a, Some(&u)),
            "create user",
        );
    }
    for t in ["t1", "t2"] {
        ok(
            call(
                &nm,
                "POST",
                &format!("/api/v1/tenants/{t}/"),
                a,
                Some(&json!({"key": t, "tenantName": t})),
            ),
            "tenant",
        );
    }
    let net = network("t1", "n", "10.1.1.0/24");
    ok(
        call(&nm, "POST", "/api/v1/networks/t1:n/", a, Some(&net)),
        "network",
    );
    let alice = login(&nm, "alice", "pw-of-alice");
    let bob = login(&nm, "bob", "pw-of-bob");
    let (al, bo) = (Some(alice.as_str()), Some(bob.as_str()));
    ok(
        call(
            &nm,
            "POST",
            "/api/v1/endpointGroups/t1:web/",
            al,
            Some(&group("t1", "web")),
        ),
        "alice creates",
    );
    ok(
        call(&nm, "DELETE", "/api/v1/endpointGroups/t1:web/", al, None),
        "alice deletes",
    );
    // Refused: a read-only write (403), another tenant's object (404), no token (401), a bad
    // subnet (validation), a wrong password.
    assert_eq!(
        call(
            &nm,
            "POST",
            "/api/v1/endpointGroups/t1:x/",
            bo,
            Some(&group("t1", "x"))
        )
        .0,
        403
    );
    assert_eq!(call(&nm, "GET", "/api/v1/networks/t2:n/", al, None).0, 404);
    assert_eq!(
        call(&nm, "DELETE", "/api/v1/networks/t1:n/", None, None).0,
        401
    );
    let bad = network("t1", "m", "10.1.300.0/24");
    assert_eq!(
        call(&nm, "POST", "/api/v1/networks/t1:m/", al, Some(&bad)).0,
        400
    );
    assert_eq!(
        call(
            &nm,
            "POST",
            "/api/v1/auth_proxy/login/",
            None,
            Some(&json!({"username": "bob", "password": "nope"}))
        )
        .0,
        401
    );

    let log = audit(&nm, a, "");
    let text = serde_json::to_string(&log).unwrap();
    assert!(
        !text.contains("pw-of-") && !text.contains(ADMIN_PW),
        "a password reached the log: {text}"
    );
    let s = summary(&log);
    let want: Vec<(&str, &str, &str, u64)> = vec![
        ("POST", "/api/v1/auth_proxy/login/", "admin", 200),
        ("POST", "/api/v1/auth_proxy/local_users/", "admin", 200),
        ("POST", "/api/v1/auth_proxy/local_users/", "admin", 200),
        ("POST", "/api/v1/tenants/t1/", "admin", 200),
        ("POST", "/api/v1/tenants/t2/", "admin", 200),
        ("POST", "/api/v1/networks/t1:n/", "admin", 200),
        ("POST", "/api/v1/auth_proxy/login/", "alice", 200),
        ("POST", "/api/v1/auth_proxy/login/", "bob", 200),
        ("POST", "/api/v1/endpointGroups/t1:web/", "alice", 200),
        ("DELETE", "/api/v1/endpointGroups/t1:web/", "alice", 200),
        ("POST", "/api/v1/endpointGroups/t1:x/", "bob", 403),
        ("GET", "/api/v1/networks/t2:n/", "alice", 404),
        ("DELETE", "/api/v1/networks/t1:n/", "anonymous", 401),
        ("POST", "/api/v1/networks/t1:m/", "alice", 400),
        ("POST", "/api/v1/auth_proxy/login/", "anonymous", 401),
    ];
    let want: Vec<_> = want
        .into_iter()
        .map(|(m, p, u, c)| (m.to_owned(), p.to_owned(), u.to_owned(), c))
        .collect();
    assert_eq!(s, want, "the log: {text}");
    // Diffs: the group created (before null), then deleted (after null); the refused write
    // carries its request and the reason.
    let created = &log[8];
    assert_eq!(created["before"], Value::Null);
    assert_eq!(created["after"]["groupName"], "web", "{created}");
    assert_eq!(created["tenant"], "t1");
    assert_eq!(log[9]["before"]["groupName"], "web");
    assert_eq!(log[9]["after"], Value::Null);
    assert!(
        !log[13]["error"].as_str().unwrap().is_empty(),
        "{}",
        log[13]
    );
    assert_eq!(log[13]["request"]["subnet"], "10.1.300.0/24");
    assert_eq!(log[1]["request"]["password"], "(redacted)");
    assert!(log[0]["source"].as_str().unwrap().starts_with("127.0.0.1:"));

    // alice sees only t1's entries, bob none; filters select.
    let mine = audit(&nm, al, "");
    assert!(
        !mine.is_empty() && mine.iter().all(|e| e["tenant"] == "t1"),
        "{mine:?}"
    );
    assert_eq!(call(&nm, "GET", "/api/v1/audit/", bo, None).0, 403);
    let by_alice = audit(&nm, a, "?user=alice&tenant=t1");
    assert_eq!(by_alice.len(), 3, "{by_alice:?}");
    assert_eq!(audit(&nm, a, "?user=alice&limit=1").len(), 1);
    assert!(audit(&nm, a, "?since=2099-01-01T00:00:00Z").is_empty());
    // Since then only bob's refused read of the log was recorded (reads that succeed are not).
    assert_eq!(audit(&nm, a, "?since=1h").len(), log.len() + 1);
    assert_eq!(
        call(&nm, "GET", "/api/v1/audit/?since=yesterday", a, None).0,
        400
    );
}

#[test]
fn without_auth_calls_are_anonymous_retention_trims_and_netctl_filters() {
    let tmp = tempfile::tempdir().unwrap();
    let nm = Netmaster::start_in(tmp.path(), &["--audit-max-size", "20000"]);
    for i in 0..80 {
        let t = format!("t{i}");
        ok(
            call(
                &nm,
                "POST",
                &format!("/api/v1/tenants/{t}/"),
                None,
                Some(&json!({"key": t, "tenantName": t})),
            ),
            "tenant",
        );
    }
    let log = audit(&nm, None, "");
    assert!(log.iter().all(|e| e["user"] == "anonymous"), "{log:?}");
    assert!(
        log.len() < 80 && log.len() > 20,
        "{} entries kept of 80",
        log.len()
    );
    assert_eq!(
        log.last().unwrap()["key"],
        "t79",
        "the newest entry is kept"
    );
    let first: u32 = log[0]["key"].as_str().unwrap()[1..].parse().unwrap();
    let keys: Vec<String> = log
        .iter()
        .map(|e| e["key"].as_str().unwrap().to_owned())
        .collect();
    let want: Vec<String> = (first..80).map(|i| format!("t{i}")).collect();
    assert_eq!(keys, want, "the oldest entries go first, none in between");
    let bytes: usize = log.iter().map(|e| e.to_string().len()).sum();
    assert!(bytes < 20000, "{bytes} bytes of entries kept");

    let netctl = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_netctl"))
            .args(["--netmaster", &nm.url])
            .args(args)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    };
    let table = netctl(&[
        "audit",
        "--tenant",
        "t79",
        "--since",
        "10m",
        "--user",
        "anonymous",
    ]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    assert!(
        lines[2].contains("anonymous") && lines[2].contains("POST /api/v1/tenants/t79/"),
        "{table}"
    );
    assert!(
        lines[2].contains("tenant t79") && lines[2].ends_with("created"),
        "{table}"
    );
    assert_eq!(
        netctl(&["audit", "--user", "alice"]).lines().count(),
        2,
        "header only"
    );
    let json: Vec<Value> = serde_json::from_str(&netctl(&["audit", "-t", "t78", "-j"])).unwrap();
    assert_eq!(json.len(), 1);
    assert_eq!(json[0]["after"]["tenantName"], "t78");
}

#[test]
fn kill_9_during_writes_loses_no_acknowledged_entry() {
    let tmp = tempfile::tempdir().unwrap();
    let mut nm = Netmaster::start_in(tmp.path(), &[]);
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let url = nm.url.clone();
    // Three writers at once, so entries share group commits when netmaster dies.
    let writers: Vec<_> = (0..3)
        .map(|w| {
            let (acked, stop, url) = (acked.clone(), stop.clone(), url.clone());
            std::thread::spawn(move || {
                for i in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let t = format!("w{w}-{i}");
                    let body = json!({"key": t, "tenantName": t});
                    match common::try_request(
                        &url,
                        "POST",
                        &format!("/api/v1/tenants/{t}/"),
                        Some(&body),
                        false,
                    ) {
                        Ok((200, _)) => acked.lock().unwrap().push(t),
                        _ => return,
                    }
                }
            })
        })
        .collect();
    while acked.lock().unwrap().len() < 150 {
        std::thread::sleep(Duration::from_millis(5));
    }
    unsafe { libc::kill(nm.pid() as i32, libc::SIGKILL) };
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    nm.kill9();
    let nm = Netmaster::start_in(tmp.path(), &[]);
    let log = audit(&nm, None, "?limit=100000");
    let recorded: std::collections::HashSet<&str> = log
        .iter()
        .filter(|e| e["status"] == 200)
        .filter_map(|e| e["key"].as_str())
        .collect();
    let acked = acked.lock().unwrap();
    let lost: Vec<&String> = acked
        .iter()
        .filter(|t| !recorded.contains(t.as_str()))
        .collect();
    assert!(acked.len() >= 150);
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged writes have no entry: {lost:?}",
        lost.len(),
        acked.len()
    );
    // Every acknowledged write is in the state too (the entry never outlives nothing).
    for t in acked.iter().step_by(25) {
        assert_eq!(nm.get(&format!("/api/v1/tenants/{t}/")).0, 200, "{t}");
    }
}
