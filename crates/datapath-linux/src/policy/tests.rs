//! Golden tests of the rendered nftables batches (full and delta) for a small policy.
//! `UPDATE_GOLDEN=1 cargo test -p contiv-datapath-linux --lib` rewrites the golden files.

use std::net::Ipv4Addr;

use contiv_policy::{compile_tenant, GroupRef, Member, NetworkRef, PolicyInput, RuleSpec, Scope};

use super::render::{delta_batch, full_batch, render, Seed};

fn rule(
    id: &str,
    dir: &str,
    act: &str,
    prio: i64,
    f: impl FnOnce(&mut contiv_model::Rule),
) -> RuleSpec {
    let mut r = contiv_model::Rule {
        tenant_name: "t".into(),
        policy_name: "p".into(),
        rule_id: id.into(),
        direction: dir.into(),
        action: act.into(),
        priority: prio,
        ..Default::default()
    };
    f(&mut r);
    RuleSpec::from_model(&r).expect("valid rule")
}

fn member(g: &str, last: u8, host: &str) -> Member {
    Member {
        id: format!("ep{last}"),
        tenant: "t".into(),
        group: g.into(),
        ip: Ipv4Addr::new(10, 1, 0, last),
        host: host.into(),
    }
}

fn input() -> PolicyInput {
    PolicyInput {
        networks: vec![NetworkRef {
            tenant: "t".into(),
            name: "net".into(),
            subnet: "10.1.0.0/24".parse().expect("subnet"),
        }],
        groups: vec![
            GroupRef {
                tenant: "t".into(),
                name: "web".into(),
                policies: vec!["p".into()],
            },
            GroupRef {
                tenant: "t".into(),
                name: "db".into(),
                policies: vec!["q".into()],
            },
        ],
        rules: vec![
            rule("1", "out", "deny", 1, |r| r.protocol = "udp".into()),
            rule("2", "out", "allow", 5, |r| {
                r.to_ip_address = "10.9.0.1-20".into();
                r.protocol = "udp".into();
                r.port = 53;
            }),
            {
                let mut q = rule("1", "in", "deny", 1, |_| {});
                q.id.policy = "q".into();
                q
            },
            {
                let mut q = rule("2", "in", "allow", 10, |r| {
                    r.from_endpoint_group = "web".into();
                    r.protocol = "tcp".into();
                    r.port = 80;
                });
                q.id.policy = "q".into();
                q
            },
            {
                let mut q = rule("3", "in", "allow", 10, |r| r.from_network = "net".into());
                q.id.policy = "q".into();
                q
            },
        ],
        endpoints: vec![
            member("web", 2, "h1"),
            member("web", 3, "h2"),
            member("db", 4, "h1"),
            member("", 5, "h1"),
        ],
    }
}

use crate::golden::check as golden;

#[test]
fn full_ruleset_matches_golden() {
    let p = compile_tenant(&input(), Scope::Host("h1"), "t");
    let mut seed = Seed::new();
    seed.insert(super::render::counter_name("t:q:1"), (5, 300));
    golden("nft_full.txt", &full_batch(&render(&p), &seed));
}

#[test]
fn endpoint_churn_moves_elements_only_and_rule_changes_rewrite_one_chain() {
    let before = render(&compile_tenant(&input(), Scope::Host("h1"), "t"));
    let mut more = input();
    more.endpoints.push(member("web", 6, "h1"));
    more.endpoints
        .retain(|m| m.ip != Ipv4Addr::new(10, 1, 0, 3));
    let after = render(&compile_tenant(&more, Scope::Host("h1"), "t"));
    let churn = delta_batch(&before, &after);
    assert!(
        !churn.contains("add rule") && !churn.contains("flush chain"),
        "{churn}"
    );
    golden("nft_delta_endpoints.txt", &churn);
    let before_ir = compile_tenant(&input(), Scope::Host("h1"), "t");
    let after_ir = compile_tenant(&more, Scope::Host("h1"), "t");
    assert_eq!(before_ir.groups, after_ir.groups);
    assert_eq!(
        super::render::render_members_onto(&after_ir, &before),
        after,
        "members rendered onto the old rules equal a full render"
    );
    let elems = super::render::element_delta(&before, &after).expect("elements only");
    let summary: Vec<String> = elems
        .iter()
        .map(|c| format!("{:?} {} {:?}", c.op, c.set, c.elems))
        .collect();
    assert_eq!(
        summary,
        [
            "Delete g_web_48721ef1 [(10.1.0.3, None)]",
            "Add g_web_48721ef1 [(10.1.0.6, None)]",
            "Add src_groups [(10.1.0.6, Some(\"out_web_48721ef1\"))]",
        ]
    );

    let mut fewer = input();
    fewer
        .rules
        .retain(|r| !(r.id.policy == "p" && r.id.rule == "2"));
    let after = render(&compile_tenant(&fewer, Scope::Host("h1"), "t"));
    let rules = delta_batch(&before, &after);
    assert_eq!(rules.matches("flush chain").count(), 1, "{rules}");
    assert_eq!(
        super::render::element_delta(&before, &after),
        None,
        "a rule change is no element delta"
    );
    golden("nft_delta_rules.txt", &rules);

    assert_eq!(delta_batch(&before, &before), "");
    let none = compile_tenant(&PolicyInput::default(), Scope::Host("h1"), "t");
    assert_eq!(
        delta_batch(&before, &render(&none)),
        "add table inet contiv\ndelete table inet contiv\n"
    );
}
