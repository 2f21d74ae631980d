//! LDAP login (`--auth --ldap-url`) against a real OpenLDAP slapd the test starts on a free
//! loopback port with its own slapd.conf and database (apt `slapd`, loaded with `slapadd`): a user
//! in a nested group gets that group's tenant role, a disabled user is refused (ppolicy's
//! administrative lock, and `--ldap-disabled-filter`), wrong passwords and unknown users are 401,
//! a user whose groups have no authorization is 403, a local user of the same name wins, and the
//! directory being down answers 503. Authorizations are managed with the real `netctl`.

mod common;

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::Netmaster;
use serde_json::{json, Value};

const ADMIN_PW: &str = "admin-secret-1";
const BASE: &str = "dc=example,dc=com";
const SVC_DN: &str = "cn=netmaster,ou=svc,dc=example,dc=com";
const SVC_PW: &str = "service-pw-1";
const T1_ADMINS: &str = "cn=t1-admins,ou=groups,dc=example,dc=com";

/// People and groups: alice is in `devs`, `devs` is in `t1-admins` (the authorised group), and
/// `t1-admins` is in `devs` again (a cycle the expansion must end). bob and dave are in `devs`
/// too but disabled (ppolicy lock; `employeeType: disabled`); carol is only in `others`.
const DIRECTORY: &str = r#"dn: dc=example,dc=com
objectClass: dcObject
objectClass: organization
o: Example
dc: example

dn: ou=people,dc=example,dc=com
objectClass: organizationalUnit
ou: people

dn: ou=groups,dc=example,dc=com
objectClass: organizationalUnit
ou: groups

dn: ou=svc,dc=example,dc=com
objectClass: organizationalUnit
ou: svc

dn: cn=netmaster,ou=svc,dc=example,dc=com
objectClass: person
cn: netmaster
sn: service
userPassword: service-pw-1

dn: uid=alice,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: alice
cn: Alice
sn: A
userPassword: alice-pw-1

dn: uid=bob,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: bob
cn: Bob
sn: B
userPassword: bob-pw-1
pwdAccountLockedTime: 000001010000Z

dn: uid=carol,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: carol
cn: Carol
sn: C
userPassword: carol-ldap-pw

dn: uid=dave,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: dave
cn: Dave
sn: D
employeeType: disabled
userPassword: dave-pw-1

dn: cn=devs,ou=groups,dc=example,dc=com
objectClass: groupOfNames
cn: devs
member: uid=alice,ou=people,dc=example,dc=com
member: uid=bob,ou=people,dc=example,dc=com
member: uid=dave,ou=people,dc=example,dc=com
member: cn=t1-admins,ou=groups,dc=example,dc=com

dn: cn=t1-admins,ou=groups,dc=example,dc=com
objectClass: groupOfNames
cn: t1-admins
member: cn=devs,ou=groups,dc=example,dc=com

dn: cn=others,ou=groups,dc=example,dc=com
objectClass: groupOfNames
cn: others
member: uid=carol,ou=people,dc=example,dc=com
"#;

/// A slapd child on a free loopback port, killed by PID when dropped.
struct Slapd {
    child: Option<Child>,
    url: String,
    /// With TLS: the ldaps:// listener (the ldap:// one then offers StartTLS).
    ldaps_url: Option<String>,
    _dir: tempfile::TempDir,
}

impl Slapd {
    /// `pki`: a directory made by `netmaster certs init` whose netmaster certificate (valid for
    /// 127.0.0.1) slapd serves.
    fn start(pki: Option<&Path>) -> Slapd {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        std::fs::create_dir(d.join("db")).unwrap();
        // ppolicy is loaded for its schema (pwdAccountLockedTime); without a default policy
        // slapd itself lets a locked account bind, so refusing it is netmaster's own check.
        let tls = pki.map_or(String::new(), |p| {
            format!(
                "TLSCACertificateFile {p}/ca.pem\n\
                 TLSCertificateFile {p}/netmaster.pem\n\
                 TLSCertificateKeyFile {p}/netmaster-key.pem\n",
                p = p.display()
            )
        });
        let conf = format!(
            "{tls}include /etc/ldap/schema/core.schema\n\
             include /etc/ldap/schema/cosine.schema\n\
             include /etc/ldap/schema/inetorgperson.schema\n\
             modulepath /usr/lib/ldap\n\
             moduleload back_mdb\n\
             moduleload ppolicy\n\
             pidfile {d}/slapd.pid\n\
             database mdb\n\
             suffix \"{BASE}\"\n\
             rootdn \"cn=admin,{BASE}\"\n\
             directory {d}/db\n\
             overlay ppolicy\n\
             access to attrs=userPassword by self write by anonymous auth by * none\n\
             access to * by users read by * none\n",
            d = d.display()
        );
        std::fs::write(d.join("slapd.conf"), conf).unwrap();
        std::fs::write(d.join("data.ldif"), DIRECTORY).unwrap();
        let out = Command::new("slapadd")
            .arg("-f")
            .arg(d.join("slapd.conf"))
            .arg("-l")
            .arg(d.join("data.ldif"))
            .output()
            .expect("slapadd (apt slapd; scripts/install-deps.sh installs it)");
        assert!(out.status.success(), "slapadd: {out:?}");
        let port = common::free_port();
        let url = format!("ldap://127.0.0.1:{port}");
        let tls_port = pki.map(|_| common::free_port());
        let ldaps_url = tls_port.map(|p| format!("ldaps://127.0.0.1:{p}"));
        let listen = match &ldaps_url {
            Some(s) => format!("{url}/ {s}/"),
            None => format!("{url}/"),
        };
        let child = Command::new("slapd")
            .arg("-f")
            .arg(d.join("slapd.conf"))
            .arg("-h")
            .arg(listen)
            // -d keeps slapd in the foreground, so the PID is this child's.
            .args(["-d", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("slapd");
        let deadline = Instant::now() + Duration::from_secs(10);
        for p in std::iter::once(port).chain(tls_port) {
            while TcpStream::connect(("127.0.0.1", p)).is_err() {
                assert!(
                    Instant::now() < deadline,
                    "slapd did not listen on port {p}"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Slapd {
            child: Some(child),
            url,
            ldaps_url,
            _dir: dir,
        }
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One call: (status, body). `problem`: ask for problem+json (real statuses) instead of Contiv's
/// plain text.
fn call(
    nm: &Netmaster,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
    problem: bool,
) -> (u16, String) {
    let a = common::agent();
    let url = format!("{}{path}", nm.url);
    let accept = if problem {
        "application/problem+json"
    } else {
        "application/json"
    };
    let mut resp = match (method, body) {
        ("GET", _) => {
            let r = a.get(&url).header("Accept", accept);
            match token {
                Some(t) => r.header("X-Auth-Token", t).call(),
                None => r.call(),
            }
        }
        (m, b) => {
            let r = match m {
                "PUT" => a.put(&url),
                _ => a.post(&url),
            }
            .header("Accept", accept);
            let r = match token {
                Some(t) => r.header("X-Auth-Token", t),
                None => r,
            };
            r.send(b.map(Value::to_string).unwrap_or_default())
        }
    }
    .expect("http");
    (
        resp.status().as_u16(),
        resp.body_mut().read_to_string().unwrap_or_default(),
    )
}

fn login(nm: &Netmaster, user: &str, pw: &str) -> Result<String, (u16, String)> {
    let (code, body) = call(
        nm,
        "POST",
        "/api/v1/auth_proxy/login/",
        None,
        Some(&json!({"username": user, "password": pw})),
        true,
    );
    if code != 200 {
        return Err((code, body));
    }
    let v: Value = serde_json::from_str(&body).unwrap();
    Ok(v["token"].as_str().unwrap().to_owned())
}

fn netctl(nm: &Netmaster, home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_netctl"))
        .env("HOME", home)
        .env_remove("NETMASTER")
        .stdin(Stdio::null())
        .arg("--netmaster")
        .arg(&nm.url)
        .args(args)
        .output()
        .expect("netctl")
}

fn seed(nm: &Netmaster, admin: &str) {
    for (t, subnet) in [("t1", "10.1.1.0/24"), ("t2", "10.1.2.0/24")] {
        let (c, b) = call(
            nm,
            "POST",
            &format!("/api/v1/tenants/{t}/"),
            Some(admin),
            Some(&json!({"key": t, "tenantName": t})),
            true,
        );
        assert_eq!(c, 200, "{b}");
        let net = json!({"key": format!("{t}:n"), "tenantName": t, "networkName": "n",
            "encap": "vxlan", "subnet": subnet});
        let (c, b) = call(
            nm,
            "POST",
            &format!("/api/v1/networks/{t}:n/"),
            Some(admin),
            Some(&net),
            true,
        );
        assert_eq!(c, 200, "{b}");
    }
}

#[test]
fn ldap_groups_give_tenant_roles_and_disabled_users_are_refused() {
    let t0 = Instant::now();
    let mut slapd = Slapd::start(None);
    let tmp = tempfile::tempdir().unwrap();
    let pw = tmp.path().join("admin-pw");
    std::fs::write(&pw, format!("{ADMIN_PW}\n")).unwrap();
    let svc_pw = tmp.path().join("svc-pw");
    std::fs::write(&svc_pw, format!("{SVC_PW}\n")).unwrap();
    let nm = Netmaster::start_in(
        &tmp.path().join("data"),
        &[
            "--auth",
            "--admin-password-file",
            pw.to_str().unwrap(),
            "--ldap-url",
            &slapd.url,
            "--ldap-bind-dn",
            SVC_DN,
            "--ldap-bind-password-file",
            svc_pw.to_str().unwrap(),
            "--ldap-user-base",
            "ou=people,dc=example,dc=com",
            "--ldap-group-base",
            "ou=groups,dc=example,dc=com",
            "--ldap-disabled-filter",
            "(employeeType=disabled)",
        ],
    );
    let admin = login(&nm, "admin", ADMIN_PW).expect("admin login");
    seed(&nm, &admin);

    // Right password, but no group of alice's is authorised yet: 403 with what to do.
    let (code, body) = login(&nm, "alice", "alice-pw-1").unwrap_err();
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("netctl authorization create"), "{body}");

    // The admin authorises the outer group through netctl; a group that is not a DN is refused
    // and changes nothing.
    let home = tmp.path();
    let out = netctl(&nm, home, &["login", "-u", "admin", "-p", ADMIN_PW]);
    assert!(out.status.success(), "{out:?}");
    let bad = netctl(
        &nm,
        home,
        &[
            "authorization",
            "create",
            "-r",
            "tenant-admin",
            "-t",
            "t1",
            "t1-admins",
        ],
    );
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("the DN of an LDAP group"),
        "{bad:?}"
    );
    let out = netctl(
        &nm,
        home,
        &[
            "authorization",
            "create",
            "-r",
            "tenant-admin",
            "-t",
            "t1",
            T1_ADMINS,
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let ls = netctl(&nm, home, &["authorization", "ls"]);
    let listed = String::from_utf8_lossy(&ls.stdout);
    assert_eq!(listed.lines().count(), 2, "{listed}");
    assert!(
        listed.contains(&format!("tenant-admin\tt1\t{T1_ADMINS}")),
        "{listed}"
    );
    // A tenant-admin authorization without a tenant: 400.
    let (code, _) = call(
        &nm,
        "POST",
        "/api/v1/auth_proxy/authorizations/",
        Some(&admin),
        Some(&json!({"principalName": T1_ADMINS, "role": "tenant-admin"})),
        true,
    );
    assert_eq!(code, 400);

    // alice is in devs, devs in t1-admins: tenant-admin of t1, and t2 does not exist for her.
    let alice = login(&nm, "alice", "alice-pw-1").expect("alice login");
    let net = json!({"key": "t1:web", "tenantName": "t1", "networkName": "web",
        "encap": "vxlan", "subnet": "10.1.3.0/24"});
    let (code, body) = call(
        &nm,
        "POST",
        "/api/v1/networks/t1:web/",
        Some(&alice),
        Some(&net),
        true,
    );
    assert_eq!(code, 200, "{body}");
    let (code, _) = call(
        &nm,
        "GET",
        "/api/v1/networks/t2:n/",
        Some(&alice),
        None,
        true,
    );
    assert_eq!(code, 404);
    let (code, body) = call(&nm, "GET", "/api/v1/networks/", Some(&alice), None, true);
    assert_eq!(code, 200);
    assert!(body.contains("t1:web") && !body.contains("t2:"), "{body}");
    // Her token refreshes (the directory is asked again, without her password).
    let (code, body) = call(
        &nm,
        "POST",
        "/api/v1/auth_proxy/refresh/",
        Some(&alice),
        None,
        true,
    );
    assert_eq!(code, 200, "{body}");

    // Refusals: one 401 message for a wrong password, an unknown user and disabled accounts.
    let wrong = login(&nm, "alice", "not-her-pw").unwrap_err();
    assert_eq!(wrong.0, 401, "{}", wrong.1);
    for (user, pw) in [
        ("nobody", "whatever-1"),
        ("bob", "bob-pw-1"),
        ("dave", "dave-pw-1"),
    ] {
        let (code, body) = login(&nm, user, pw).unwrap_err();
        assert_eq!(code, 401, "{user}: {body}");
        assert!(body.contains("Invalid username/password"), "{body}");
    }
    // An empty password never becomes an anonymous bind.
    assert_eq!(login(&nm, "alice", "").unwrap_err().0, 400);
    // carol's only group has no authorization.
    assert_eq!(login(&nm, "carol", "carol-ldap-pw").unwrap_err().0, 403);

    // A local user of the same name wins: its own password, its own role.
    let (code, body) = call(
        &nm,
        "POST",
        "/api/v1/auth_proxy/local_users/",
        Some(&admin),
        Some(&json!({"username": "carol", "password": "carol-local-pw", "role": "read-only"})),
        true,
    );
    assert_eq!(code, 200, "{body}");
    assert!(login(&nm, "carol", "carol-local-pw").is_ok());
    assert_eq!(login(&nm, "carol", "carol-ldap-pw").unwrap_err().0, 401);

    // The directory goes away: 503 in both error styles, never 500; local users still log in.
    slapd.stop();
    let (code, body) = login(&nm, "alice", "alice-pw-1").unwrap_err();
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("LDAP server cannot be reached"), "{body}");
    let (code, _) = call(
        &nm,
        "POST",
        "/api/v1/auth_proxy/login/",
        None,
        Some(&json!({"username": "alice", "password": "alice-pw-1"})),
        false,
    );
    assert_eq!(code, 503);
    assert!(login(&nm, "admin", ADMIN_PW).is_ok());
    eprintln!("ldap e2e took {:?}", t0.elapsed());
}

/// A netmaster logging in against `url` with the given extra TLS flags; its admin token.
fn netmaster_on(tmp: &Path, name: &str, url: &str, tls: &[&str]) -> (Netmaster, String) {
    let pw = tmp.join("admin-pw");
    std::fs::write(&pw, format!("{ADMIN_PW}\n")).unwrap();
    let svc_pw = tmp.join("svc-pw");
    std::fs::write(&svc_pw, format!("{SVC_PW}\n")).unwrap();
    let mut args = vec![
        "--auth",
        "--admin-password-file",
        pw.to_str().unwrap(),
        "--ldap-url",
        url,
        "--ldap-bind-dn",
        SVC_DN,
        "--ldap-bind-password-file",
        svc_pw.to_str().unwrap(),
        "--ldap-user-base",
        BASE,
    ];
    args.extend_from_slice(tls);
    let nm = Netmaster::start_in(&tmp.join(name), &args);
    let admin = login(&nm, "admin", ADMIN_PW).expect("admin login");
    let (code, body) = call(
        &nm,
        "POST",
        "/api/v1/auth_proxy/authorizations/",
        Some(&admin),
        Some(&json!({"principalName": T1_ADMINS, "role": "read-only"})),
        true,
    );
    assert_eq!(code, 200, "{body}");
    (nm, admin)
}

#[test]
fn ldaps_and_starttls_verify_the_directory_certificate() {
    let tmp = tempfile::tempdir().unwrap();
    let certs = |dir: &Path| {
        let out = Command::new(env!("CARGO_BIN_EXE_netmaster"))
            .args(["certs", "init"])
            .arg(dir)
            .output()
            .expect("netmaster certs init");
        assert!(out.status.success(), "{out:?}");
    };
    let pki = tmp.path().join("pki");
    let other = tmp.path().join("other-pki");
    certs(&pki);
    certs(&other);
    let slapd = Slapd::start(Some(&pki));
    let ca = pki.join("ca.pem");
    let ca = ca.to_str().unwrap();
    let ldaps = slapd.ldaps_url.clone().unwrap();

    // ldaps:// and StartTLS on ldap://, both verified against --ldap-ca.
    let (nm, _) = netmaster_on(tmp.path(), "ldaps", &ldaps, &["--ldap-ca", ca]);
    login(&nm, "alice", "alice-pw-1").expect("alice over ldaps");
    assert_eq!(login(&nm, "alice", "wrong-pw-1").unwrap_err().0, 401);
    drop(nm);
    let (nm, _) = netmaster_on(
        tmp.path(),
        "starttls",
        &slapd.url,
        &["--ldap-starttls", "--ldap-ca", ca],
    );
    login(&nm, "alice", "alice-pw-1").expect("alice over StartTLS");
    drop(nm);

    // A server whose certificate the CA did not sign is never sent a password: 503.
    let wrong_ca = other.join("ca.pem");
    let (nm, _) = netmaster_on(
        tmp.path(),
        "wrong-ca",
        &ldaps,
        &["--ldap-ca", wrong_ca.to_str().unwrap()],
    );
    let (code, body) = login(&nm, "alice", "alice-pw-1").unwrap_err();
    assert_eq!(code, 503, "{body}");
}
