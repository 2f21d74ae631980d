//! Golden tests of the compiler's IR, and the semantics checked through `verdict`.
//! `UPDATE_GOLDEN=1 cargo test -p contiv-policy` rewrites the golden files.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use contiv_policy::{
    compile, compile_tenant, Action, Flow, GroupRef, Member, NetworkRef, PolicyInput, Protocol,
    RuleSpec, Scope,
};

fn rule(
    t: &str,
    p: &str,
    id: &str,
    dir: &str,
    act: &str,
    prio: i64,
    f: impl FnOnce(&mut contiv_model::Rule),
) -> RuleSpec {
    let mut r = contiv_model::Rule {
        tenant_name: t.into(),
        policy_name: p.into(),
        rule_id: id.into(),
        direction: dir.into(),
        action: act.into(),
        priority: prio,
        ..Default::default()
    };
    f(&mut r);
    RuleSpec::from_model(&r).expect("valid rule")
}

fn member(t: &str, g: &str, ip: [u8; 4], host: &str) -> Member {
    let ip = Ipv4Addr::from(ip);
    Member {
        id: format!("{t}-{ip}"),
        tenant: t.into(),
        group: g.into(),
        ip,
        host: host.into(),
    }
}

fn group(t: &str, g: &str, policies: &[&str]) -> GroupRef {
    GroupRef {
        tenant: t.into(),
        name: g.into(),
        policies: policies.iter().map(|p| p.to_string()).collect(),
    }
}

/// Three groups on two hosts; `db` denies everything in but tcp 80 from `web` and 10.1.0.0/24
/// icmp; `web` may not talk udp out; `app` has no policy; tenant `u` reuses every name.
fn fixture() -> PolicyInput {
    let mut rules = Vec::new();
    for t in ["t", "u"] {
        rules.push(rule(t, "db-in", "1", "in", "deny", 1, |_| {}));
        rules.push(rule(t, "db-in", "2", "in", "allow", 10, |r| {
            r.from_endpoint_group = "web".into();
            r.protocol = "tcp".into();
            r.port = 80;
        }));
        rules.push(rule(t, "db-in", "3", "in", "allow", 5, |r| {
            r.from_network = "net".into();
            r.protocol = "icmp".into();
        }));
        rules.push(rule(t, "db-in", "4", "in", "allow", 5, |r| {
            r.from_network = "gone".into();
        }));
        rules.push(rule(t, "web-out", "1", "out", "deny", 50, |r| {
            r.protocol = "udp".into();
        }));
    }
    let mut endpoints = Vec::new();
    for t in ["t", "u"] {
        endpoints.push(member(t, "web", [10, 1, 0, 2], "h1"));
        endpoints.push(member(t, "web", [10, 1, 0, 3], "h2"));
        endpoints.push(member(t, "db", [10, 1, 0, 4], "h1"));
        endpoints.push(member(t, "db", [10, 1, 0, 5], "h2"));
        endpoints.push(member(t, "app", [10, 1, 0, 6], "h2"));
        endpoints.push(member(t, "", [10, 1, 0, 7], "h1"));
    }
    PolicyInput {
        networks: ["t", "u"]
            .iter()
            .map(|t| NetworkRef {
                tenant: t.to_string(),
                name: "net".into(),
                subnet: "10.1.0.0/24".parse().expect("subnet"),
            })
            .collect(),
        groups: ["t", "u"]
            .iter()
            .flat_map(|t| {
                [
                    group(t, "web", &["web-out"]),
                    group(t, "db", &["db-in", "db-in"]),
                    group(t, "app", &[]),
                ]
            })
            .collect(),
        rules,
        endpoints,
    }
}

fn golden(name: &str, text: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, text).expect("write golden");
        return;
    }
    let want = std::fs::read_to_string(&path).expect("golden file (UPDATE_GOLDEN=1 to create)");
    assert_eq!(text, want, "{name} differs from the golden file");
}

#[test]
fn per_host_ir_matches_golden() {
    let input = fixture();
    for host in ["h1", "h2"] {
        let p = compile(&input, Scope::Host(host), None);
        assert_eq!(p.len(), 2, "both tenants");
        golden(&format!("ir_{host}.txt"), &p["t"].to_string());
        // Tenants with the same names never see each other's rules or members.
        assert_eq!(
            p["u"]
                .to_string()
                .replace("tenant u", "tenant t")
                .replace("u:", "t:"),
            p["t"].to_string()
        );
    }
}

#[test]
fn input_order_does_not_change_the_output() {
    let a = fixture();
    let mut b = fixture();
    b.rules.reverse();
    b.endpoints.reverse();
    b.groups.reverse();
    assert_eq!(
        compile(&a, Scope::Cluster, None),
        compile(&b, Scope::Cluster, None)
    );
}

fn verdict(
    p: &contiv_policy::TenantPolicy,
    src: [u8; 4],
    dst: [u8; 4],
    protocol: Protocol,
    port: u16,
) -> (Action, Option<String>) {
    let v = p.verdict(&Flow {
        src: src.into(),
        dst: dst.into(),
        protocol,
        port,
    });
    (v.action, v.deciding_rule().map(ToString::to_string))
}

#[test]
fn verdicts_follow_priority_deny_wins_and_both_sides() {
    let p = compile_tenant(&fixture(), Scope::Cluster, "t");
    let (web, db, app, nogroup) = ([10, 1, 0, 2], [10, 1, 0, 5], [10, 1, 0, 6], [10, 1, 0, 7]);
    let allow = |r: &str| (Action::Allow, Some(r.to_string()));
    let deny = |r: &str| (Action::Deny, Some(r.to_string()));
    assert_eq!(verdict(&p, web, db, Protocol::Tcp, 80), allow("t:db-in:2"));
    assert_eq!(verdict(&p, web, db, Protocol::Tcp, 81), deny("t:db-in:1"));
    assert_eq!(verdict(&p, app, db, Protocol::Tcp, 80), deny("t:db-in:1"));
    assert_eq!(verdict(&p, app, db, Protocol::Icmp, 0), allow("t:db-in:3"));
    assert_eq!(
        verdict(&p, [10, 9, 0, 1], db, Protocol::Icmp, 0),
        deny("t:db-in:1")
    );
    assert_eq!(
        verdict(&p, web, app, Protocol::Udp, 53),
        deny("t:web-out:1")
    );
    assert_eq!(
        verdict(&p, web, app, Protocol::Tcp, 81),
        (Action::Allow, None)
    );
    assert_eq!(
        verdict(&p, nogroup, app, Protocol::Udp, 53),
        (Action::Allow, None)
    );
    assert_eq!(
        verdict(&p, app, nogroup, Protocol::Udp, 53),
        (Action::Allow, None)
    );
}

#[test]
fn equal_priority_deny_wins_and_higher_allow_overrides() {
    let mut input = fixture();
    input
        .rules
        .push(rule("t", "db-in", "5", "in", "allow", 1, |r| {
            r.from_endpoint_group = "app".into();
        }));
    let p = compile_tenant(&input, Scope::Cluster, "t");
    // Same priority as the deny-all: deny wins.
    assert_eq!(
        verdict(&p, [10, 1, 0, 6], [10, 1, 0, 5], Protocol::Tcp, 81),
        (Action::Deny, Some("t:db-in:1".into()))
    );
    input
        .rules
        .push(rule("t", "db-in", "6", "in", "allow", 2, |r| {
            r.from_endpoint_group = "app".into();
        }));
    let p = compile_tenant(&input, Scope::Cluster, "t");
    assert_eq!(
        verdict(&p, [10, 1, 0, 6], [10, 1, 0, 5], Protocol::Tcp, 81),
        (Action::Allow, Some("t:db-in:6".into()))
    );
}
