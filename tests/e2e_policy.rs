//! End-to-end policy: netmaster + one netplugin per simulated host, workloads attached through
//! contivk8s in endpoint groups, and real probes (ICMP, TCP 80/81, UDP 53) between every ordered
//! pair after each change. Every scenario asserts the whole matrix three ways: against cells
//! stated by hand, against the policy compiler's verdicts (computed here from the objects
//! netmaster serves), and against netmaster's `policyExplain` answer. Root only.
//!
//! Every test runs against both datapaths (`linux::…` and `ovs::…`, see [`on_both_datapaths`])
//! with the same assertions: nftables in the tenant namespaces, or the OpenFlow pipeline's
//! policy tables on each host's bridge (failure messages then show its flow dump).

#[macro_use]
mod common;

use common::bins;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use contiv_netplugin::probe::{probe_all, Probe, Responder};
use contiv_netplugin::testbed::{
    eventually, require_root, Cluster, TcpSession, TestDatapath, Workload,
};
use contiv_policy::{
    compile_tenant, Action, Flow, GroupRef, Member, NetworkRef, PolicyInput, Protocol, RuleSpec,
    Scope,
};
use serde_json::{json, Value};

/// How long a denied probe waits for its answer.
const PROBE_TIMEOUT: Duration = Duration::from_millis(400);
/// How long a change may take to show in the matrix (the goal is 100 ms; probes are slower).
const CONVERGE: Duration = Duration::from_secs(6);

/// A cluster with workloads (by name) and a responder in each.
struct Bed {
    c: Cluster,
    w: BTreeMap<String, Workload>,
    responders: BTreeMap<String, Responder>,
}

type Matrix = BTreeMap<(String, String, Probe), bool>;

fn probe_name(p: Probe) -> Protocol {
    match p {
        Probe::Icmp => Protocol::Icmp,
        Probe::Tcp(_) => Protocol::Tcp,
        Probe::Udp(_) => Protocol::Udp,
    }
}

impl Bed {
    fn new(dp: TestDatapath, hosts: usize) -> Bed {
        Bed::with_netmaster_args(dp, hosts, &[])
    }

    fn with_netmaster_args(dp: TestDatapath, hosts: usize, args: &[&str]) -> Bed {
        let c =
            Cluster::start_on(bins(), dp, hosts, args).unwrap_or_else(|e| panic!("cluster: {e}"));
        Bed {
            c,
            w: BTreeMap::new(),
            responders: BTreeMap::new(),
        }
    }

    fn post(&self, path: &str, body: Value) {
        match self.c.api("POST", path, Some(&body)) {
            Ok((200 | 201, _)) => {}
            other => panic!("POST {path} {body}: {other:?}"),
        }
    }

    fn delete(&self, path: &str) {
        match self.c.api("DELETE", path, None) {
            Ok((200, _)) => {}
            other => panic!("DELETE {path}: {other:?}"),
        }
    }

    fn network(&self, tenant: &str, name: &str, subnet: &str, gw: &str) {
        self.c
            .create_network(tenant, name, subnet, gw)
            .unwrap_or_else(|e| panic!("{e}"));
    }

    fn group(&self, tenant: &str, name: &str, network: &str, policies: &[&str]) {
        self.post(
            &format!("/api/v1/endpointGroups/{tenant}:{name}/"),
            json!({"tenantName": tenant, "groupName": name, "networkName": network, "policies": policies}),
        );
    }

    fn policy(&self, tenant: &str, name: &str) {
        self.post(
            &format!("/api/v1/policys/{tenant}:{name}/"),
            json!({"tenantName": tenant, "policyName": name}),
        );
    }

    /// A rule of `tenant:policy`; `fields` are the rule's other wire fields.
    fn rule(&self, tenant: &str, policy: &str, id: &str, fields: Value) {
        let mut body = json!({"tenantName": tenant, "policyName": policy, "ruleId": id});
        if let (Some(b), Some(f)) = (body.as_object_mut(), fields.as_object()) {
            b.extend(f.clone());
        }
        self.post(&format!("/api/v1/rules/{tenant}:{policy}:{id}/"), body);
    }

    /// Policy `db-in` on group `db` of `tenant`: deny everything in, allow tcp `port` from `web`
    /// (rule `allow_id`, priority 10).
    fn db_admits_web_only_on(&self, tenant: &str, allow_id: &str, port: u16) {
        self.policy(tenant, "db-in");
        self.rule(
            tenant,
            "db-in",
            "deny-all",
            json!({"direction": "in", "action": "deny", "priority": 1}),
        );
        self.rule(
            tenant,
            "db-in",
            allow_id,
            json!({"direction": "in", "action": "allow", "priority": 10,
            "fromEndpointGroup": "web", "protocol": "tcp", "port": port}),
        );
        self.group(tenant, "db", "net", &["db-in"]);
    }

    fn delete_rule(&self, tenant: &str, policy: &str, id: &str) {
        self.delete(&format!("/api/v1/rules/{tenant}:{policy}:{id}/"));
    }

    fn workload(&mut self, host: usize, name: &str, tenant: &str, net: &str, group: Option<&str>) {
        let w = self
            .c
            .add_workload_in_group(host, name, tenant, net, group)
            .unwrap_or_else(|e| panic!("{e}"));
        let r = Responder::start(&w.netns).unwrap_or_else(|e| panic!("responder {name}: {e}"));
        self.responders.insert(name.into(), r);
        self.w.insert(name.into(), w);
    }

    /// DEL and ADD again in `group` (same namespace; the responder keeps serving it).
    fn move_to(&mut self, name: &str, group: Option<&str>) {
        let old = self.w[name].clone();
        self.c.del_workload(&old).unwrap_or_else(|e| panic!("{e}"));
        let w = self
            .c
            .attach(
                old.host,
                name,
                &old.netns,
                (&old.tenant, &old.network, group),
            )
            .unwrap_or_else(|e| panic!("{e}"));
        self.w.insert(name.into(), w);
    }

    /// Every ordered pair of workloads of the same tenant, every probe.
    fn cells(&self) -> Vec<(String, String, Probe)> {
        let mut out = Vec::new();
        for (a, wa) in &self.w {
            for (b, wb) in &self.w {
                if a != b && wa.tenant == wb.tenant {
                    out.extend(Probe::ALL.iter().map(|p| (a.clone(), b.clone(), *p)));
                }
            }
        }
        out
    }

    fn probe_matrix(&self) -> Matrix {
        let cells = self.cells();
        let probes: Vec<_> = cells
            .iter()
            .map(|(a, b, p)| (self.w[a].netns.clone(), self.w[b].ip, *p))
            .collect();
        cells
            .into_iter()
            .zip(probe_all(&probes, PROBE_TIMEOUT))
            .collect()
    }

    fn get(&self, path: &str) -> Value {
        self.c.get_json(path).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The compiler's verdicts for every cell, from the objects netmaster serves now.
    fn compiled_matrix(&self) -> Matrix {
        let list = |p: &str| {
            self.get(&format!("/api/v1/{p}/"))
                .as_array()
                .cloned()
                .unwrap_or_default()
        };
        let mut input = PolicyInput::default();
        for n in list("networks") {
            let n: contiv_model::Network = serde_json::from_value(n).expect("network");
            if let Some(subnet) = contiv_policy::parse_subnet(&n.subnet) {
                input.networks.push(NetworkRef {
                    tenant: n.tenant_name,
                    name: n.network_name,
                    subnet,
                });
            }
        }
        for g in list("endpointGroups") {
            let g: contiv_model::EndpointGroup = serde_json::from_value(g).expect("group");
            input.groups.push(GroupRef {
                tenant: g.tenant_name,
                name: g.group_name,
                policies: g.policies,
            });
        }
        for r in list("rules") {
            let r: contiv_model::Rule = serde_json::from_value(r).expect("rule");
            input
                .rules
                .push(RuleSpec::from_model(&r).expect("netmaster holds only valid rules"));
        }
        for (name, w) in &self.w {
            input.endpoints.push(Member {
                id: name.clone(),
                tenant: w.tenant.clone(),
                group: w.group.clone().unwrap_or_default(),
                ip: w.ip,
                host: w.host.to_string(),
            });
        }
        let mut out = Matrix::new();
        let mut by_tenant = BTreeMap::new();
        for (a, b, p) in self.cells() {
            let tenant = self.w[&a].tenant.clone();
            let policy = by_tenant
                .entry(tenant.clone())
                .or_insert_with(|| compile_tenant(&input, Scope::Cluster, &tenant));
            let (protocol, port) = (probe_name(p), p.protocol().1);
            let v = policy.verdict(&Flow {
                src: self.w[&a].ip,
                dst: self.w[&b].ip,
                protocol,
                port,
            });
            out.insert((a, b, p), v.action == Action::Allow);
        }
        out
    }

    /// netmaster's `policyExplain` for every cell.
    fn explained_matrix(&self) -> Matrix {
        let mut out = Matrix::new();
        for (a, b, p) in self.cells() {
            let (wa, wb) = (&self.w[&a], &self.w[&b]);
            let (proto, port) = p.protocol();
            let v = self.get(&format!(
                "/api/v1/policyExplain/?tenant={}&from={}&to={}&protocol={proto}&port={port}",
                wa.tenant, wa.ip, wb.ip
            ));
            let verdict = v["verdict"].as_str().unwrap_or_default().to_string();
            assert!(
                verdict == "allow" || verdict == "deny",
                "explain answered {v}"
            );
            out.insert((a, b, p), verdict == "allow");
        }
        out
    }

    /// The policy table of every tenant on every host (for failure messages); on OVS the
    /// policy tables of each host's bridge.
    fn rulesets(&self) -> String {
        let mut out = String::new();
        if self.c.datapath() == TestDatapath::Ovs {
            for h in 0..2 {
                let flows = match self.c.ovs(h).map(|o| o.dump_flows()) {
                    Some(Ok(f)) => f,
                    Some(Err(e)) => e,
                    None => "no ovs".into(),
                };
                out.push_str(&format!("--- host {h} bridge flows\n{flows}\n"));
            }
        }
        let tenants: std::collections::BTreeSet<&str> =
            self.w.values().map(|w| w.tenant.as_str()).collect();
        for h in (0..2).filter(|_| self.c.datapath() == TestDatapath::Linux) {
            for t in &tenants {
                let ns = self.c.tenant_ns(h, t);
                let o = std::process::Command::new("ip")
                    .args(["netns", "exec"])
                    .arg(ns.file_name().unwrap_or_default())
                    .args(["nft", "list", "table", "inet", "contiv"])
                    .output()
                    .map(|o| {
                        String::from_utf8_lossy(&o.stdout).into_owned()
                            + &String::from_utf8_lossy(&o.stderr)
                    })
                    .unwrap_or_else(|e| e.to_string());
                out.push_str(&format!("--- host {h} tenant {t}\n{o}\n"));
            }
        }
        for (n, w) in &self.w {
            out.push_str(&format!(
                "{n}: {} host {} group {:?}\n",
                w.ip, w.host, w.group
            ));
        }
        out
    }

    /// Waits until the probed matrix equals the compiler's and netmaster's explain, and holds
    /// every hand-stated cell; panics with the differences otherwise.
    fn check(&self, scenario: &str, stated: &[(&str, &str, Probe, bool)]) {
        let expected = self.compiled_matrix();
        for (a, b, p, allow) in stated {
            let key = (a.to_string(), b.to_string(), *p);
            assert_eq!(
                expected.get(&key),
                Some(allow),
                "{scenario}: compiler verdict for {a} -> {b} {p}"
            );
        }
        assert_eq!(
            self.explained_matrix(),
            expected,
            "{scenario}: explain disagrees with the compiler"
        );
        let started = Instant::now();
        let mut got = Matrix::new();
        let ok = eventually(CONVERGE, || {
            got = self.probe_matrix();
            got == expected
        });
        if !ok {
            let diff: Vec<String> = expected
                .iter()
                .filter(|(k, v)| got.get(*k) != Some(*v))
                .map(|((a, b, p), v)| {
                    format!(
                        "{a} -> {b} {p}: expected {}, probed {}",
                        allow_word(*v),
                        allow_word(!*v)
                    )
                })
                .collect();
            panic!(
                "{scenario}: {} cells differ after {:?}:\n{}\nrulesets:\n{}\nagent logs:\n{}\n{}",
                diff.len(),
                started.elapsed(),
                diff.join("\n"),
                self.rulesets(),
                self.c.agent_log(0),
                self.c.agent_log(1)
            );
        }
        eprintln!(
            "{scenario}: {} cells ok after {:?}",
            expected.len(),
            started.elapsed()
        );
    }
}

fn allow_word(b: bool) -> &'static str {
    if b {
        "allow"
    } else {
        "deny"
    }
}

const ICMP: Probe = Probe::Icmp;
const T80: Probe = Probe::Tcp(80);
const T81: Probe = Probe::Tcp(81);
const U53: Probe = Probe::Udp(53);

on_both_datapaths!(
    policy_reachability_matrix_follows_every_change,
    established_connections_survive_changes_and_agent_restart,
    policy_attached_before_the_first_workload_is_enforced_in_routing_mode,
);

/// 3 groups over 2 hosts (web on both, db on both, app on its own network), a workload without
/// group, and a second tenant reusing the subnet and the group names: the scenarios of the
/// issue's acceptance list, each checked on the whole matrix.
fn policy_reachability_matrix_follows_every_change(dp: TestDatapath) {
    require_root();
    let mut bed = Bed::new(dp, 2);
    let t = "default";
    bed.network(t, "net", "10.1.0.0/24", "10.1.0.1");
    bed.network(t, "net2", "10.2.0.0/24", "10.2.0.1");
    bed.group(t, "web", "net", &[]);
    bed.group(t, "db", "net", &[]);
    bed.group(t, "app", "net2", &[]);
    bed.workload(0, "web1", t, "net", Some("web"));
    bed.workload(1, "web2", t, "net", Some("web"));
    bed.workload(0, "db1", t, "net", Some("db"));
    bed.workload(1, "db2", t, "net", Some("db"));
    bed.workload(1, "app1", t, "net2", Some("app"));
    bed.workload(0, "plain", t, "net", None);

    bed.check(
        "1 no policy: everything allowed",
        &[("web1", "db2", T81, true), ("app1", "db1", U53, true)],
    );

    // 2. deny all in to db, allow tcp 80 from web.
    bed.db_admits_web_only_on(t, "web-80", 80);
    bed.check(
        "2 deny-all-in plus an allowed port",
        &[
            ("web1", "db1", T80, true),
            ("web2", "db1", T80, true),
            ("web1", "db2", T80, true),
            ("web1", "db1", T81, false),
            ("web1", "db2", ICMP, false),
            ("app1", "db1", T80, false),
            ("plain", "db2", U53, false),
            ("db1", "web1", T81, true),
            ("db1", "db2", ICMP, false),
        ],
    );

    // What the hosts report: both enforce netmaster's revision; denied probes show as the
    // policy's violations and in the deny rule's counters (reports come after each change and
    // every 10 s).
    let reported = eventually(Duration::from_secs(15), || {
        let status = bed.get("/api/v1/policyStatus/");
        let hosts = status["hosts"].as_array().cloned().unwrap_or_default();
        let inspect = bed.get("/api/v1/inspect/policys/default:db-in/");
        let rule = bed.get("/api/v1/inspect/rules/default:db-in:deny-all/");
        hosts.len() == 2
            && hosts.iter().all(|h| h["current"] == json!(true))
            && inspect["Oper"]["policyViolations"].as_i64().unwrap_or(0) > 0
            && inspect["Oper"]["numEndpoints"].as_i64() == Some(2)
            && rule["Oper"]["packets"].as_u64().unwrap_or(0) > 0
    });
    assert!(
        reported,
        "status {}\npolicy {}\nrule {}",
        bed.get("/api/v1/policyStatus/"),
        bed.get("/api/v1/inspect/policys/default:db-in/"),
        bed.get("/api/v1/inspect/rules/default:db-in:deny-all/")
    );

    // 3. a higher-priority allow overrides the deny.
    bed.rule(
        t,
        "db-in",
        "app-all",
        json!({"direction": "in", "action": "allow", "priority": 20,
        "fromEndpointGroup": "app"}),
    );
    bed.check(
        "3 priority: higher allow overrides deny",
        &[("app1", "db1", T81, true), ("app1", "db2", U53, true)],
    );

    // 4. a higher-priority deny overrides an allow.
    bed.rule(
        t,
        "db-in",
        "no-web2",
        json!({"direction": "in", "action": "deny", "priority": 30,
        "fromIpAddress": bed.w["web2"].ip.to_string()}),
    );
    bed.check(
        "4 priority: higher deny overrides allow, fromIpAddress /32",
        &[("web2", "db1", T80, false), ("web1", "db1", T80, true)],
    );

    // 5. equal priority: deny wins.
    bed.rule(
        t,
        "db-in",
        "web-icmp",
        json!({"direction": "in", "action": "allow", "priority": 1,
        "fromEndpointGroup": "web", "protocol": "icmp"}),
    );
    bed.check(
        "5 equal priorities: deny wins",
        &[("web1", "db1", ICMP, false)],
    );

    // 6. fromNetwork.
    bed.delete_rule(t, "db-in", "app-all");
    bed.rule(
        t,
        "db-in",
        "net2-udp",
        json!({"direction": "in", "action": "allow", "priority": 5,
        "fromNetwork": "net2", "protocol": "udp"}),
    );
    bed.check(
        "6 fromNetwork",
        &[
            ("app1", "db1", U53, true),
            ("app1", "db1", T81, false),
            ("plain", "db1", U53, false),
        ],
    );

    // 7. fromIpAddress CIDR.
    bed.rule(
        t,
        "db-in",
        "net-81",
        json!({"direction": "in", "action": "allow", "priority": 5,
        "fromIpAddress": "10.1.0.0/24", "protocol": "tcp", "port": 81}),
    );
    bed.check(
        "7 fromIpAddress CIDR",
        &[
            ("plain", "db1", T81, true),
            ("web1", "db2", T81, true),
            ("app1", "db1", T81, false),
        ],
    );

    // 8. out-rules: web sends no udp anywhere; tcp 81 not to db.
    bed.policy(t, "web-out");
    bed.rule(
        t,
        "web-out",
        "no-udp",
        json!({"direction": "out", "action": "deny", "priority": 1, "protocol": "udp"}),
    );
    bed.rule(
        t,
        "web-out",
        "no-81-db",
        json!({"direction": "out", "action": "deny", "priority": 1,
        "toEndpointGroup": "db", "protocol": "tcp", "port": 81}),
    );
    bed.group(t, "web", "net", &["web-out"]);
    bed.check(
        "8 out-rules",
        &[
            ("web1", "plain", U53, false),
            ("web1", "app1", U53, false),
            ("web1", "db1", T81, false),
            ("web1", "plain", T81, true),
            ("plain", "web1", U53, true),
        ],
    );

    // 9. out-rule to a network and to an address.
    bed.rule(
        t,
        "web-out",
        "no-net2",
        json!({"direction": "out", "action": "deny", "priority": 2, "toNetwork": "net2"}),
    );
    bed.rule(
        t,
        "web-out",
        "no-plain-icmp",
        json!({"direction": "out", "action": "deny", "priority": 2,
        "toIpAddress": bed.w["plain"].ip.to_string(), "protocol": "icmp"}),
    );
    bed.check(
        "9 toNetwork and toIpAddress",
        &[
            ("web1", "app1", ICMP, false),
            ("web2", "app1", T80, false),
            ("web1", "plain", ICMP, false),
            ("web1", "plain", T80, true),
        ],
    );

    // 10. two policies on one group.
    bed.policy(t, "db-extra");
    bed.rule(
        t,
        "db-extra",
        "plain-80",
        json!({"direction": "in", "action": "allow", "priority": 10,
        "fromIpAddress": bed.w["plain"].ip.to_string(), "protocol": "tcp", "port": 80}),
    );
    bed.group(t, "db", "net", &["db-in", "db-extra"]);
    bed.check(
        "10 two policies on one group",
        &[
            ("plain", "db1", T80, true),
            ("plain", "db2", T80, true),
            ("web1", "db1", T80, true),
        ],
    );

    // 11. one policy on two groups.
    bed.group(t, "app", "net2", &["db-extra"]);
    bed.check(
        "11 one policy on two groups",
        &[
            ("plain", "app1", T80, true),
            ("web1", "app1", T80, false),
            ("db1", "app1", T81, true),
        ],
    );
    // (app has only an allow rule: nothing else changes for it; db1 -> app1 stays allowed.)

    // 12. detach.
    bed.group(t, "db", "net", &[]);
    bed.check(
        "12 detach",
        &[
            ("web1", "db1", T81, false),
            ("app1", "db1", T81, true),
            ("plain", "db1", ICMP, true),
        ],
    );
    // web1 -> db1 tcp/81 is still web's out-rule.

    // 13. attach again.
    bed.group(t, "db", "net", &["db-in"]);
    bed.check(
        "13 attach again",
        &[("plain", "db1", ICMP, false), ("web1", "db1", T80, true)],
    );

    // 14. rule delete and re-add.
    bed.delete_rule(t, "db-in", "web-80");
    bed.check("14 rule delete", &[("web1", "db1", T80, false)]);
    bed.rule(
        t,
        "db-in",
        "web-80",
        json!({"direction": "in", "action": "allow", "priority": 10,
        "fromEndpointGroup": "web", "protocol": "tcp", "port": 80}),
    );
    bed.check("15 rule re-add", &[("web1", "db1", T80, true)]);

    // 16. an endpoint moving to another group.
    bed.move_to("web2", Some("db"));
    bed.check(
        "16 endpoint moves from web to db",
        &[
            ("web1", "web2", T80, true),
            ("web1", "web2", T81, false),
            ("web2", "db1", T80, false),
        ],
    );

    // 17. a workload added after the policy exists.
    bed.workload(0, "db3", t, "net", Some("db"));
    bed.check(
        "17 workload added after the policy",
        &[
            ("web1", "db3", T80, true),
            ("plain", "db3", T80, false),
            ("db3", "plain", T80, true),
        ],
    );

    // 18. two tenants with the same subnet and group names.
    let u = "blue";
    bed.c.create_tenant(u).expect("tenant");
    bed.network(u, "net", "10.1.0.0/24", "10.1.0.1");
    bed.group(u, "web", "net", &[]);
    bed.group(u, "db", "net", &[]);
    bed.workload(0, "bweb", u, "net", Some("web"));
    bed.workload(1, "bdb", u, "net", Some("db"));
    bed.check(
        "18 second tenant with the same names: not affected",
        &[("bweb", "bdb", T81, true), ("bweb", "bdb", ICMP, true)],
    );
    bed.policy(u, "db-in");
    bed.rule(
        u,
        "db-in",
        "deny-all",
        json!({"direction": "in", "action": "deny", "priority": 1}),
    );
    bed.group(u, "db", "net", &["db-in"]);
    bed.check(
        "19 second tenant's policy stays in it",
        &[
            ("bweb", "bdb", T80, false),
            ("web1", "db1", T80, true),
            ("plain", "web1", T81, true),
        ],
    );

    // 20. policy delete refused while attached; detached then deleted.
    let (code, _) = bed
        .c
        .api("DELETE", "/api/v1/policys/blue:db-in/", None)
        .expect("delete");
    assert_eq!(code, 409, "a policy in use cannot be deleted");
    bed.group(u, "db", "net", &[]);
    bed.delete("/api/v1/policys/blue:db-in/");
    bed.check(
        "20 policy detached and deleted",
        &[("bweb", "bdb", T80, true)],
    );
    drop(bed);
}

/// Established connections survive unrelated changes and an agent kill -9 + restart; a new
/// deny blocks new connections while the established one keeps flowing (stateful).
fn established_connections_survive_changes_and_agent_restart(dp: TestDatapath) {
    require_root();
    let mut bed = Bed::new(dp, 2);
    let t = "default";
    bed.network(t, "net", "10.1.0.0/24", "10.1.0.1");
    bed.group(t, "web", "net", &[]);
    bed.group(t, "db", "net", &[]);
    bed.workload(0, "web1", t, "net", Some("web"));
    bed.workload(1, "db1", t, "net", Some("db"));
    bed.db_admits_web_only_on(t, "web-9000", 9000);
    bed.check(
        "deny-all with an allowed port",
        &[("web1", "db1", T80, false)],
    );

    let (web, db) = (bed.w["web1"].clone(), bed.w["db1"].clone());
    let mut session =
        TcpSession::open(&web.netns, &db.netns, db.ip, 9000).expect("allowed connection");
    assert_eq!(session.exchange("one").as_deref(), Ok("one"));

    // Unrelated changes: a rule of another policy, a new workload.
    bed.policy(t, "other");
    bed.rule(
        t,
        "other",
        "x",
        json!({"direction": "in", "action": "deny", "priority": 1, "protocol": "udp"}),
    );
    bed.group(t, "web", "net", &["other"]);
    bed.workload(1, "db2", t, "net", Some("db"));
    bed.check("unrelated changes", &[("web1", "db2", T80, false)]);
    assert_eq!(session.exchange("two").as_deref(), Ok("two"));

    // Agent kill -9 and restart on both hosts: neither ruleset nor conntrack is flushed.
    for h in 0..2 {
        bed.c.kill_agent(h);
    }
    assert_eq!(
        session.exchange("three").as_deref(),
        Ok("three"),
        "while agents are down"
    );
    for h in 0..2 {
        bed.c.restart_agent(h).expect("restart");
    }
    assert_eq!(
        session.exchange("four").as_deref(),
        Ok("four"),
        "after agents restarted"
    );
    bed.check(
        "after restart",
        &[("web1", "db1", T80, false), ("db1", "web1", T80, true)],
    );

    // A new deny on the allowed port: new connections are refused, the established one flows.
    bed.rule(
        t,
        "db-in",
        "no-9000",
        json!({"direction": "in", "action": "deny", "priority": 50,
        "protocol": "tcp", "port": 9000}),
    );
    let denied = eventually(CONVERGE, || {
        TcpSession::open(&web.netns, &db.netns, db.ip, 9001).is_err()
    });
    assert!(denied, "control: port 9001 was never allowed");
    let blocked = eventually(CONVERGE, || {
        !contiv_netplugin::probe::probe(&web.netns, db.ip, Probe::Tcp(9000), PROBE_TIMEOUT)
    });
    assert!(blocked, "a new connection to 9000 must be denied");
    assert_eq!(
        session.exchange("five").as_deref(),
        Ok("five"),
        "established connection keeps flowing"
    );
}

/// The policy exists before any workload: each host installs it when its first workload of the
/// tenant arrives (its tenant namespace is made then). Routing mode (every endpoint a /32 route):
/// the other suites run in bridge mode.
fn policy_attached_before_the_first_workload_is_enforced_in_routing_mode(dp: TestDatapath) {
    require_root();
    let mut bed = Bed::with_netmaster_args(dp, 2, &["--fwdmode", "routing"]);
    let t = "default";
    bed.network(t, "net", "10.1.0.0/24", "10.1.0.1");
    bed.group(t, "web", "net", &[]);
    bed.group(t, "db", "net", &[]);
    bed.db_admits_web_only_on(t, "web-80", 80);
    bed.workload(0, "db1", t, "net", Some("db"));
    bed.workload(1, "web1", t, "net", Some("web"));
    bed.workload(1, "plain", t, "net", None);
    bed.check(
        "policy before the workloads, routing mode",
        &[
            ("web1", "db1", T80, true),
            ("web1", "db1", T81, false),
            ("plain", "db1", ICMP, false),
            ("db1", "plain", T81, true),
        ],
    );
}
