//! Users, roles and tokens (`--auth`) against a real netmaster on loopback: login, expiry,
//! refresh, key rotation, forged tokens, what each role may do, and tenant scoping.

mod common;

use std::time::{Duration, Instant};

use common::Netmaster;
use serde_json::{json, Value};

const ADMIN_PW: &str = "admin-secret-1";

fn start(extra: &[&str]) -> (Netmaster, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let pw = tmp.path().join("pw");
    std::fs::write(&pw, format!("{ADMIN_PW}\n")).unwrap();
    let data = tmp.path().join("data");
    let mut args = vec!["--auth", "--admin-password-file", pw.to_str().unwrap()];
    args.extend_from_slice(extra);
    (Netmaster::start_in(&data, &args), tmp)
}

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
    let with = |r: ureq::RequestBuilder<ureq::typestate::WithoutBody>| match token {
        Some(t) => r.header("X-Auth-Token", t),
        None => r,
    };
    let withb = |r: ureq::RequestBuilder<ureq::typestate::WithBody>| match token {
        Some(t) => r.header("X-Auth-Token", t),
        None => r,
    };
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let resp = match method {
        "GET" => with(a.get(&url))
            .header("Accept", "application/problem+json")
            .call(),
        "DELETE" => with(a.delete(&url))
            .header("Accept", "application/problem+json")
            .call(),
        "POST" => withb(a.post(&url))
            .header("Accept", "application/problem+json")
            .send(body),
        "PUT" => withb(a.put(&url))
            .header("Accept", "application/problem+json")
            .send(body),
        "PATCH" => withb(a.patch(&url))
            .header("Accept", "application/problem+json")
            .send(body),
        m => panic!("method {m}"),
    };
    let mut resp = resp.unwrap();
    (
        resp.status().as_u16(),
        resp.body_mut().read_to_string().unwrap(),
    )
}

fn login(nm: &Netmaster, user: &str, pw: &str) -> Result<String, (u16, String)> {
    let (code, body) = call(
        nm,
        "POST",
        "/api/v1/auth_proxy/login/",
        None,
        Some(&json!({"username": user, "password": pw})),
    );
    if code != 200 {
        return Err((code, body));
    }
    let v: Value = serde_json::from_str(&body).unwrap();
    Ok(v["token"].as_str().unwrap().to_owned())
}

fn add_user(nm: &Netmaster, admin: &str, name: &str, role: &str, tenants: &[&str]) -> String {
    let (code, body) = call(
        nm,
        "POST",
        "/api/v1/auth_proxy/local_users/",
        Some(admin),
        Some(
            &json!({"username": name, "password": format!("password-of-{name}"),
            "role": role, "tenants": tenants}),
        ),
    );
    assert_eq!(code, 200, "create {name}: {body}");
    login(nm, name, &format!("password-of-{name}")).unwrap()
}

fn seed(nm: &Netmaster, admin: &str) {
    for t in ["t1", "t2"] {
        let (c, b) = call(
            nm,
            "POST",
            &format!("/api/v1/tenants/{t}/"),
            Some(admin),
            Some(&json!({"key": t, "tenantName": t})),
        );
        assert_eq!(c, 200, "{b}");
        let net = json!({"key": format!("{t}:n"), "tenantName": t, "networkName": "n",
            "encap": "vxlan", "subnet": if t == "t1" {"10.1.1.0/24"} else {"10.1.2.0/24"}});
        let (c, b) = call(
            nm,
            "POST",
            &format!("/api/v1/networks/{t}:n/"),
            Some(admin),
            Some(&net),
        );
        assert_eq!(c, 200, "{b}");
        let g =
            json!({"key": format!("{t}:g"), "tenantName": t, "groupName": "g", "networkName": "n"});
        let (c, b) = call(
            nm,
            "POST",
            &format!("/api/v1/endpointGroups/{t}:g/"),
            Some(admin),
            Some(&g),
        );
        assert_eq!(c, 200, "{b}");
    }
}

#[test]
fn login_refuses_alike_and_tokens_gate_the_api() {
    let (nm, _tmp) = start(&[]);
    // Without a token: 401 on the API, the open routes stay open.
    assert_eq!(call(&nm, "GET", "/api/v1/networks/", None, None).0, 401);
    assert_eq!(call(&nm, "GET", "/version", None, None).0, 200);
    // Missing fields 400, unknown user and wrong password the same 401 and message.
    assert_eq!(login(&nm, "admin", "").unwrap_err().0, 400);
    let t0 = Instant::now();
    let unknown = login(&nm, "nobody", "whatever-pw").unwrap_err();
    let t_unknown = t0.elapsed();
    let t0 = Instant::now();
    let wrong = login(&nm, "admin", "wrong-password").unwrap_err();
    let t_wrong = t0.elapsed();
    assert_eq!(unknown, wrong);
    assert_eq!(wrong.0, 401);
    let (slow, fast) = (t_unknown.max(t_wrong), t_unknown.min(t_wrong));
    assert!(
        slow < fast * 4 + Duration::from_millis(50),
        "{t_unknown:?} vs {t_wrong:?}"
    );

    let admin = login(&nm, "admin", ADMIN_PW).unwrap();
    assert_eq!(
        call(&nm, "GET", "/api/v1/networks/", Some(&admin), None).0,
        200
    );
    // A tampered token (claims changed, signature kept) and garbage: 401.
    let parts: Vec<&str> = admin.split('.').collect();
    let forged = format!("{}.{}x.{}", parts[0], parts[1], parts[2]);
    assert_eq!(
        call(&nm, "GET", "/api/v1/networks/", Some(&forged), None).0,
        401
    );
    assert_eq!(
        call(&nm, "GET", "/api/v1/networks/", Some("abc"), None).0,
        401
    );

    // Refresh gives a new working token; rotation keeps both old and new tokens valid.
    let (c, b) = call(
        &nm,
        "POST",
        "/api/v1/auth_proxy/refresh/",
        Some(&admin),
        None,
    );
    assert_eq!(c, 200, "{b}");
    let refreshed = serde_json::from_str::<Value>(&b).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (c, b) = call(
        &nm,
        "POST",
        "/api/v1/auth_proxy/keys/rotate/",
        Some(&admin),
        None,
    );
    assert_eq!(c, 200, "{b}");
    let after = login(&nm, "admin", ADMIN_PW).unwrap();
    assert_ne!(
        after.split('.').next(),
        admin.split('.').next(),
        "new key id"
    );
    for t in [&admin, &refreshed, &after] {
        assert_eq!(call(&nm, "GET", "/api/v1/tenants/", Some(t), None).0, 200);
    }
    // A refresh of a token signed by the retired key is signed by the new one.
    assert_eq!(
        call(
            &nm,
            "POST",
            "/api/v1/auth_proxy/refresh/",
            Some(&admin),
            None
        )
        .0,
        200
    );
}

#[test]
fn tokens_expire() {
    let (nm, _tmp) = start(&["--token-ttl", "1"]);
    let t = login(&nm, "admin", ADMIN_PW).unwrap();
    assert_eq!(call(&nm, "GET", "/api/v1/tenants/", Some(&t), None).0, 200);
    std::thread::sleep(Duration::from_millis(2100));
    assert_eq!(call(&nm, "GET", "/api/v1/tenants/", Some(&t), None).0, 401);
    assert_eq!(
        call(&nm, "POST", "/api/v1/auth_proxy/refresh/", Some(&t), None).0,
        401
    );
}

#[test]
fn roles_and_tenant_scoping() {
    let (nm, _tmp) = start(&[]);
    let admin = login(&nm, "admin", ADMIN_PW).unwrap();
    seed(&nm, &admin);
    let ta = add_user(&nm, &admin, "ta", "tenant-admin", &["t1"]);
    let ops = add_user(&nm, &admin, "ops", "ops", &[]);
    let ro = add_user(&nm, &admin, "ro", "read-only", &[]);

    // Only an admin manages users.
    assert_eq!(
        call(
            &nm,
            "GET",
            "/api/v1/auth_proxy/local_users/",
            Some(&ta),
            None
        )
        .0,
        403
    );
    let (c, b) = call(
        &nm,
        "GET",
        "/api/v1/auth_proxy/local_users/",
        Some(&admin),
        None,
    );
    assert_eq!(c, 200);
    assert!(!b.contains("argon2"), "hashes never leave: {b}");

    // tenant-admin of t1: lists without t2, 404 on t2's objects (as for a missing one).
    let nets: Value =
        serde_json::from_str(&call(&nm, "GET", "/api/v1/networks/", Some(&ta), None).1).unwrap();
    let keys: Vec<&str> = nets
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["t1:n"]);
    let tenants = call(&nm, "GET", "/api/v1/tenants/", Some(&ta), None).1;
    assert!(
        tenants.contains("t1") && !tenants.contains("t2"),
        "{tenants}"
    );
    let foreign = call(&nm, "GET", "/api/v1/networks/t2:n/", Some(&ta), None);
    let missing = call(&nm, "GET", "/api/v1/networks/t1:zz/", Some(&ta), None);
    assert_eq!(foreign, missing);
    assert_eq!(foreign.0, 404);
    assert_eq!(
        call(
            &nm,
            "GET",
            "/api/v1/inspect/networks/t2:n/",
            Some(&ta),
            None
        )
        .0,
        404
    );
    assert_eq!(
        call(&nm, "DELETE", "/api/v1/networks/t2:n/", Some(&ta), None).0,
        404
    );
    // No object in (or referring into) another tenant.
    let cross = json!({"key": "t2:g2", "tenantName": "t2", "groupName": "g2", "networkName": "n"});
    assert_eq!(
        call(
            &nm,
            "POST",
            "/api/v1/endpointGroups/t2:g2/",
            Some(&ta),
            Some(&cross)
        )
        .0,
        404
    );
    // A key in t1 with a body naming t2 does not reach t2.
    let mixed = json!({"key": "t1:gx", "tenantName": "t2", "groupName": "gx", "networkName": "n"});
    let _ = call(
        &nm,
        "POST",
        "/api/v1/endpointGroups/t1:gx/",
        Some(&ta),
        Some(&mixed),
    );
    let t2_groups = call(&nm, "GET", "/api/v1/endpointGroups/", Some(&admin), None).1;
    assert!(!t2_groups.contains("t2:gx"), "{t2_groups}");
    // Inside t1: everything but the tenant itself and cluster-wide objects.
    let g = json!({"key": "t1:g2", "tenantName": "t1", "groupName": "g2", "networkName": "n"});
    let (c, b) = call(
        &nm,
        "POST",
        "/api/v1/endpointGroups/t1:g2/",
        Some(&ta),
        Some(&g),
    );
    assert_eq!(c, 200, "{b}");
    assert_eq!(
        call(&nm, "DELETE", "/api/v1/tenants/t1/", Some(&ta), None).0,
        403
    );
    assert_eq!(
        call(&nm, "GET", "/api/v1/networks/t2:n/", Some(&admin), None).0,
        200,
        "t2 untouched"
    );

    // ops: reads everything, changes groups only.
    assert_eq!(
        call(&nm, "GET", "/api/v1/networks/t2:n/", Some(&ops), None).0,
        200
    );
    let g = json!({"key": "t2:g", "tenantName": "t2", "groupName": "g", "networkName": "n", "policies": []});
    let (c, b) = call(
        &nm,
        "PUT",
        "/api/v1/endpointGroups/t2:g/",
        Some(&ops),
        Some(&g),
    );
    assert_eq!(c, 200, "{b}");
    assert_eq!(
        call(
            &nm,
            "DELETE",
            "/api/v1/endpointGroups/t2:g/",
            Some(&ops),
            None
        )
        .0,
        403
    );
    assert_eq!(
        call(&nm, "DELETE", "/api/v1/networks/t2:n/", Some(&ops), None).0,
        403
    );

    // read-only: reads, no write.
    assert_eq!(
        call(&nm, "GET", "/api/v1/endpointGroups/", Some(&ro), None).0,
        200
    );
    assert_eq!(
        call(
            &nm,
            "PUT",
            "/api/v1/endpointGroups/t2:g/",
            Some(&ro),
            Some(&g)
        )
        .0,
        403
    );
    assert_eq!(
        call(
            &nm,
            "GET",
            "/api/v1/endpointGroups/t2:g/",
            Some(&admin),
            None
        )
        .0,
        200
    );

    // A role change takes effect at the next refresh.
    let (c, b) = call(
        &nm,
        "PATCH",
        "/api/v1/auth_proxy/local_users/ro/",
        Some(&admin),
        Some(&json!({"role": "tenant-admin", "tenants": ["t2"]})),
    );
    assert_eq!(c, 200, "{b}");
    let (_, b) = call(&nm, "POST", "/api/v1/auth_proxy/refresh/", Some(&ro), None);
    let ro2 = serde_json::from_str::<Value>(&b).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        call(
            &nm,
            "DELETE",
            "/api/v1/endpointGroups/t2:g/",
            Some(&ro2),
            None
        )
        .0,
        200
    );
    // A removed user can no longer log in.
    assert_eq!(
        call(
            &nm,
            "DELETE",
            "/api/v1/auth_proxy/local_users/ro/",
            Some(&admin),
            None
        )
        .0,
        200
    );
    assert_eq!(login(&nm, "ro", "password-of-ro").unwrap_err().0, 401);
}

#[test]
fn a_generated_admin_password_is_written_0600() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let nm = Netmaster::start_in(tmp.path(), &["--auth"]);
    let path = tmp.path().join("admin-password");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let pw = std::fs::read_to_string(&path).unwrap();
    assert!(login(&nm, "admin", pw.trim()).is_ok());
}

#[test]
fn netctl_logs_in_and_sends_its_token() {
    use std::os::unix::fs::PermissionsExt;
    let (nm, tmp) = start(&[]);
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let netctl = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_netctl"))
            .env("HOME", &home)
            .arg("--netmaster")
            .arg(&nm.url)
            .args(args)
            .output()
            .unwrap()
    };
    let before = netctl(&["tenant", "ls"]);
    assert!(!before.status.success(), "no token yet");
    let out = netctl(&["login", "-u", "admin", "-p", ADMIN_PW]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let file = home.join(".netctl/token");
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let out = netctl(&["tenant", "create", "t9"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = netctl(&["tenant", "ls"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("t9"));
    // Users and roles from netctl.
    let ok = |args: &[&str]| {
        let out = netctl(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    ok(&["user", "create", "bob", "-p", "bob-password"]);
    ok(&["role", "bob", "tenant-admin", "-t", "t9"]);
    ok(&["user", "passwd", "bob", "-p", "bob-password-2"]);
    let ls = ok(&["user", "ls"]);
    assert!(ls.contains("bob\ttenant-admin\tt9"), "{ls}");
    assert!(login(&nm, "bob", "bob-password-2").is_ok());
    ok(&["user", "rm", "bob"]);
    assert!(!ok(&["user", "ls"]).contains("bob"));
}

/// `ops` changes groups' policy attachment and nothing else: any other field, a new group, or
/// another kind is 403 and leaves the object as it was.
#[test]
fn ops_changes_only_policy_attachment() {
    let (nm, _tmp) = start(&[]);
    let admin = login(&nm, "admin", ADMIN_PW).unwrap();
    seed(&nm, &admin);
    let p = json!({"key": "t1:p", "tenantName": "t1", "policyName": "p"});
    let (c, b) = call(&nm, "POST", "/api/v1/policys/t1:p/", Some(&admin), Some(&p));
    assert_eq!(c, 200, "{b}");
    let ops = add_user(&nm, &admin, "op", "ops", &[]);
    let group = |extra: Value| {
        let mut g =
            json!({"key": "t1:g", "tenantName": "t1", "groupName": "g", "networkName": "n"});
        for (k, v) in extra.as_object().unwrap() {
            g[k] = v.clone();
        }
        g
    };
    let stored = || {
        let (c, b) = call(
            &nm,
            "GET",
            "/api/v1/endpointGroups/t1:g/",
            Some(&admin),
            None,
        );
        assert_eq!(c, 200, "{b}");
        serde_json::from_str::<Value>(&b).unwrap()
    };

    let (c, b) = call(
        &nm,
        "PUT",
        "/api/v1/endpointGroups/t1:g/",
        Some(&ops),
        Some(&group(json!({"policies": ["p"]}))),
    );
    assert_eq!(c, 200, "attaching a policy: {b}");
    assert_eq!(stored()["policies"], json!(["p"]));

    let before = stored();
    for (what, extra) in [
        (
            "networkName",
            json!({"networkName": "other", "policies": []}),
        ),
        ("ipPool", json!({"ipPool": "10.1.1.10-10.1.1.20"})),
        ("cfgdTag", json!({"cfgdTag": "x", "policies": ["p"]})),
    ] {
        let (c, b) = call(
            &nm,
            "PUT",
            "/api/v1/endpointGroups/t1:g/",
            Some(&ops),
            Some(&group(extra)),
        );
        assert_eq!(c, 403, "ops changing {what}: {b}");
        assert!(
            b.contains("may change only an endpoint group's policies") && b.contains(what),
            "{b}"
        );
        assert_eq!(stored(), before, "a refused write changed nothing");
    }
    let g2 = json!({"key": "t1:g2", "tenantName": "t1", "groupName": "g2", "networkName": "n"});
    let (c, b) = call(
        &nm,
        "POST",
        "/api/v1/endpointGroups/t1:g2/",
        Some(&ops),
        Some(&g2),
    );
    assert_eq!(c, 403, "ops creating a group: {b}");
    assert_eq!(
        call(
            &nm,
            "GET",
            "/api/v1/endpointGroups/t1:g2/",
            Some(&admin),
            None
        )
        .0,
        404
    );
    let (c, _) = call(
        &nm,
        "POST",
        "/api/v1/policys/t1:p2/",
        Some(&ops),
        Some(&json!({"key": "t1:p2", "tenantName": "t1", "policyName": "p2"})),
    );
    assert_eq!(c, 403, "ops creating a policy");
    // Detaching is attachment too.
    let (c, b) = call(
        &nm,
        "PUT",
        "/api/v1/endpointGroups/t1:g/",
        Some(&ops),
        Some(&group(json!({}))),
    );
    assert_eq!(c, 200, "detaching: {b}");
    assert_eq!(stored().get("policies"), None);
}

/// A token stops working once its user is demoted or removed, without waiting for expiry; a
/// refresh hands out the new role.
#[test]
fn demoted_and_removed_users_lose_their_tokens() {
    let (nm, _tmp) = start(&[]);
    let admin = login(&nm, "admin", ADMIN_PW).unwrap();
    seed(&nm, &admin);
    let ta = add_user(&nm, &admin, "ta", "tenant-admin", &["t1"]);
    let other = add_user(&nm, &admin, "bystander", "tenant-admin", &["t1"]);
    assert_eq!(
        call(&nm, "GET", "/api/v1/networks/t1:n/", Some(&ta), None).0,
        200
    );

    let (c, b) = call(
        &nm,
        "PATCH",
        "/api/v1/auth_proxy/local_users/ta/",
        Some(&admin),
        Some(&json!({"role": "read-only", "tenants": ["t1"]})),
    );
    assert_eq!(c, 200, "{b}");
    let (c, b) = call(
        &nm,
        "DELETE",
        "/api/v1/endpointGroups/t1:g/",
        Some(&ta),
        None,
    );
    assert_eq!(c, 401, "the old token of a demoted user: {b}");
    assert!(b.contains("role changed"), "{b}");
    assert_eq!(
        call(
            &nm,
            "GET",
            "/api/v1/endpointGroups/t1:g/",
            Some(&admin),
            None
        )
        .0,
        200
    );
    // A password change alone keeps tokens; another user's change touches nobody else.
    assert_eq!(
        call(&nm, "GET", "/api/v1/networks/t1:n/", Some(&other), None).0,
        200
    );
    let (c, b) = call(&nm, "POST", "/api/v1/auth_proxy/refresh/", Some(&ta), None);
    assert_eq!(c, 200, "refresh re-reads the user: {b}");
    let ta2 = serde_json::from_str::<Value>(&b).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        call(&nm, "GET", "/api/v1/networks/t1:n/", Some(&ta2), None).0,
        200
    );
    assert_eq!(
        call(
            &nm,
            "DELETE",
            "/api/v1/endpointGroups/t1:g/",
            Some(&ta2),
            None
        )
        .0,
        403
    );

    // Removed, then made again with the same name: the old token stays dead.
    let (c, _) = call(
        &nm,
        "DELETE",
        "/api/v1/auth_proxy/local_users/ta/",
        Some(&admin),
        None,
    );
    assert_eq!(c, 200);
    let (c, b) = call(&nm, "GET", "/api/v1/networks/t1:n/", Some(&ta2), None);
    assert_eq!(c, 401, "a removed user's token: {b}");
    assert!(b.contains("no longer exists"), "{b}");
    let (c, b) = call(&nm, "POST", "/api/v1/auth_proxy/refresh/", Some(&ta2), None);
    assert_eq!(c, 401, "a removed user cannot refresh: {b}");
    add_user(&nm, &admin, "ta", "read-only", &["t2"]);
    assert_eq!(
        call(&nm, "GET", "/api/v1/networks/t1:n/", Some(&ta2), None).0,
        401
    );
}

/// A tenant-scoped user asks `policyStatus` and `policyExplain` about its own tenants only:
/// hosts of other tenants' endpoints are absent, another tenant is "not found".
#[test]
fn policy_status_and_explain_are_tenant_scoped() {
    let (nm, _tmp) = start(&[]);
    let admin = login(&nm, "admin", ADMIN_PW).unwrap();
    seed(&nm, &admin);
    for (h, t) in [("ag-h1", "t1"), ("ag-h2", "t2")] {
        let (c, b) = call(
            &nm,
            "POST",
            "/plugin/registerNode",
            None,
            Some(&json!({"hostname": h, "vtepIP": "", "datapath": "linux"})),
        );
        assert_eq!(c, 200, "{b}");
        let ep = json!({"TenantName": t, "NetworkName": "n", "ServiceName": "g",
            "EndpointID": format!("c-{t}"), "EPCommonName": format!("name-{t}"),
            "ConfigEP": {"Container": format!("c-{t}"), "ContainerID": format!("cid-{t}"),
                "Host": h, "ServiceName": "g"}});
        let (c, b) = call(&nm, "POST", "/plugin/createEndpoint", None, Some(&ep));
        assert_eq!(c, 200, "{b}");
    }
    let ta = add_user(&nm, &admin, "ta", "tenant-admin", &["t1"]);
    let hosts = |tok: &str| {
        let (c, b) = call(&nm, "GET", "/api/v1/policyStatus/", Some(tok), None);
        assert_eq!(c, 200, "{b}");
        let v: Value = serde_json::from_str(&b).unwrap();
        v["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["hostname"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(hosts(&admin), ["ag-h1", "ag-h2"]);
    assert_eq!(hosts(&ta), ["ag-h1"], "only the host of t1's endpoint");

    let explain = |tok: &str, t: &str| {
        call(
            &nm,
            "GET",
            &format!("/api/v1/policyExplain/?tenant={t}&from=c-{t}&to=c-{t}&protocol=icmp"),
            Some(tok),
            None,
        )
    };
    let (c, b) = explain(&ta, "t1");
    assert_eq!(c, 200, "{b}");
    let (c, b) = explain(&ta, "t2");
    assert_eq!(c, 404, "another tenant: {b}");
    assert!(b.contains("Tenant t2 not found"), "{b}");
    assert_eq!(
        explain(&ta, "nosuch").1.replace("nosuch", "t2"),
        b,
        "the same as a missing tenant"
    );
    assert_eq!(explain(&admin, "t2").0, 200);
}

/// Two netmasters on etcd: user and key writes sent to the follower are forwarded to the leader
/// with the caller's token (they go through the same leader-only path as object writes).
#[test]
fn user_and_key_writes_on_a_follower_reach_the_leader() {
    let etcd = contiv_store::testing::EtcdCluster::start(1).expect("etcd");
    let endpoints = etcd.endpoints().join(",");
    let args = ["--etcd", endpoints.as_str(), "--leader-ttl", "2"];
    let (a, _ta) = start(&args);
    let (b, _tb) = start(&args);
    let state = |nm: &Netmaster| -> Value {
        serde_json::from_str(&call(nm, "GET", "/info", None, None).1).unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let (leader, follower) = loop {
        let (sa, sb) = (state(&a), state(&b));
        match (sa["current-state"].as_str(), sb["current-state"].as_str()) {
            (Some("leader"), Some("follower")) if sb["leader-ip"] != "" => break (&a, &b),
            (Some("follower"), Some("leader")) if sa["leader-ip"] != "" => break (&b, &a),
            _ => {}
        }
        assert!(
            Instant::now() < deadline,
            "no leader and follower: {sa} {sb}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let admin = login(follower, "admin", ADMIN_PW).unwrap();
    let (c, b) = call(
        follower,
        "POST",
        "/api/v1/auth_proxy/local_users/",
        Some(&admin),
        Some(&json!({"username": "carol", "password": "password-of-carol", "role": "read-only"})),
    );
    assert_eq!(c, 200, "user created through the follower: {b}");
    let (c, b) = call(
        leader,
        "GET",
        "/api/v1/auth_proxy/local_users/carol/",
        Some(&admin),
        None,
    );
    assert_eq!(c, 200, "{b}");
    let (c, b) = call(
        follower,
        "POST",
        "/api/v1/auth_proxy/keys/rotate/",
        Some(&admin),
        None,
    );
    assert_eq!(c, 200, "key rotated through the follower: {b}");
    let carol = login(follower, "carol", "password-of-carol").unwrap();
    for nm in [leader, follower] {
        assert_eq!(
            call(nm, "GET", "/api/v1/networks/", Some(&carol), None).0,
            200
        );
        assert_eq!(
            call(nm, "GET", "/api/v1/networks/", Some(&admin), None).0,
            200,
            "older key"
        );
    }
    // A follower's own writes without a token are still refused before forwarding.
    let (c, _) = call(
        follower,
        "DELETE",
        "/api/v1/auth_proxy/local_users/carol/",
        None,
        None,
    );
    assert_eq!(c, 401);
}

/// `netctl login` on a terminal (a pty made by util-linux `script`) reads the password without
/// echoing it; `--password-stdin` reads it from a pipe; `netctl auth rotate-key` rotates, and the
/// token from before keeps working.
#[test]
fn netctl_reads_the_password_without_echo_and_rotates_the_key() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let (nm, tmp) = start(&[]);
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let netctl = env!("CARGO_BIN_EXE_netctl");
    let run = |args: &[&str], input: &str| {
        let mut child = Command::new(args[0])
            .args(&args[1..])
            .env("HOME", &home)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let typed = format!("{ADMIN_PW}\n");
    let cmd = format!("{netctl} --netmaster {} login -u admin", nm.url);
    // Type the password once the prompt is shown, as a person would (typed earlier, the
    // terminal would echo it before netctl turned echo off).
    let mut child = Command::new("script")
        .args(["-q", "-e", "-c", &cmd, "/dev/null"])
        .env("HOME", &home)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut shown = Vec::new();
    let mut buf = [0u8; 256];
    while !String::from_utf8_lossy(&shown).contains("password: ") {
        let n = std::io::Read::read(&mut stdout, &mut buf).unwrap();
        assert!(n > 0, "no prompt: {}", String::from_utf8_lossy(&shown));
        shown.extend_from_slice(&buf[..n]);
    }
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(typed.as_bytes()).unwrap();
    std::io::Read::read_to_end(&mut stdout, &mut shown).unwrap();
    drop(stdin);
    let status = child.wait().unwrap();
    let shown = String::from_utf8_lossy(&shown);
    assert!(status.success(), "{shown}");
    assert!(shown.contains("password: "), "a prompt: {shown}");
    assert!(shown.contains("logged in as admin"), "{shown}");
    assert!(
        !shown.contains(ADMIN_PW),
        "the password was echoed: {shown}"
    );
    let first = std::fs::read_to_string(home.join(".netctl/token")).unwrap();

    let stdin_login = |pw: &str| {
        run(
            &[
                netctl,
                "--netmaster",
                &nm.url,
                "login",
                "-u",
                "admin",
                "--password-stdin",
            ],
            pw,
        )
    };
    let out = stdin_login(&typed);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("password:"),
        "no prompt"
    );
    let out = stdin_login("wrong-password\n");
    assert!(!out.status.success(), "a wrong password is refused");

    let out = run(&[netctl, "--netmaster", &nm.url, "auth", "rotate-key"], "");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.starts_with("signing key ") && said.contains(" is current"),
        "{said}"
    );
    assert_eq!(
        call(&nm, "GET", "/api/v1/tenants/", Some(first.trim()), None).0,
        200
    );
    let fresh = login(&nm, "admin", ADMIN_PW).unwrap();
    assert_ne!(
        fresh.split('.').next(),
        first.trim().split('.').next(),
        "a new key id"
    );
}
