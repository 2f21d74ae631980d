//! Churn converges exactly, against a real ovsdb-server and ovs-vswitchd in a simulated host's
//! netns: through the driver's public API (the agent's `Datapath` and `PolicyDriver` calls),
//! 100 workload adds and deletes and 50 policy changes in a seeded random order, then the
//! switch's flow dump equals the rendering of the final desired state line for line (no stale
//! flow, no duplicate). The same with the driver's process killed with SIGKILL in the middle of
//! the churn and a new driver given the final desired state (as the agent's reconcile gives it).
//! A service over every attached workload follows the churn (its select group, UDP and hairpin
//! flows change with each workload change), so services converge exactly too.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::process::Child;
use std::time::{Duration, Instant};

use common::{child_args, host_with_workloads, ovs_config, run, spawn_self, Host};
use contiv_datapath::{
    Datapath, Encap, FwdMode, LocalEndpoint, MacAddr, NetworkSpec, Plumbing, PolicyDriver,
    ServiceDriver, ServicePort, ServiceSpec, TenantServices,
};
use contiv_datapath_ovs::driver::plumb::host_ifname;
use contiv_datapath_ovs::{dump, render, Desired, GroupNumbers, OvsConfig, OvsDatapath, Ports};
use contiv_policy::{
    compile_tenant, GroupRef, HostPolicy, Member, NetworkRef, PolicyInput, RuleSpec, Scope,
    TenantPolicy,
};

const BRIDGE: &str = "ovcbr";
/// Workload slots: slot `n` is endpoint `ep<n>`, in namespace `<host>-w<n>`.
const SLOTS: std::ops::Range<u8> = 10..30;
const SEED: u64 = 0x5eed_c0de;
/// Set in the child's environment: `<host netns>|<ovsdb socket>|<progress file>`.
const CHILD_ENV: &str = "CONTIV_OVS_TEST_CHURN";

fn cfg(ns: &str, sock: &str) -> OvsConfig {
    ovs_config(ns, sock, BRIDGE, 16661, "eth0", Ipv4Addr::new(192, 0, 2, 1))
}

/// A host with every slot's namespace (the driver plumbs the veths).
fn host(tag: &str) -> Host {
    host_with_workloads(tag, SLOTS)
}

/// Two networks of tenant demo: `app` (10.10.0.0/24) and `db` (10.20.0.0/24).
fn networks() -> Vec<NetworkSpec> {
    [("app", 10u8, 5000u32), ("db", 20, 5001)]
        .into_iter()
        .map(|(name, b, vni)| NetworkSpec {
            id: format!("demo:{name}"),
            tenant: "demo".into(),
            vni,
            subnet: format!("10.{b}.0.0/24").parse().unwrap(),
            gateway: Ipv4Addr::new(10, b, 0, 1),
            fwd_mode: FwdMode::Bridge,
            encap: Encap::Vxlan,
            mtu: 0,
        })
        .collect()
}

/// Slot `n`: even slots on `app`, odd ones on `db`.
fn ep(n: u8, ns: &str) -> LocalEndpoint {
    let (net, b) = if n.is_multiple_of(2) {
        ("app", 10)
    } else {
        ("db", 20)
    };
    let a = Ipv4Addr::new(10, b, 0, n);
    LocalEndpoint {
        id: format!("ep{n}"),
        network_id: format!("demo:{net}"),
        netns_path: format!("/run/netns/{ns}-w{n}").into(),
        ifname: "eth0".into(),
        ip: format!("{a}/24").parse().unwrap(),
        mac: MacAddr::from_ipv4(a),
        gateway: Ipv4Addr::new(10, b, 0, 1),
        plumbing: Plumbing::InWorkload,
    }
}

const GROUPS: [&str; 3] = ["web", "db", "app"];

/// Service `demo:web` (VIP 10.10.0.250, tcp 80 → 8080, udp 53 → 5353) over every attached
/// workload: each workload change changes its providers (a group-mod, UDP flows, hairpin flows).
fn services(attached: &BTreeSet<u8>, ns: &str) -> TenantServices {
    let mut providers: Vec<Ipv4Addr> = attached.iter().map(|n| ep(*n, ns).ip.addr()).collect();
    providers.sort();
    TenantServices {
        tenant: "demo".into(),
        services: vec![ServiceSpec {
            name: "demo:web".into(),
            vip: Ipv4Addr::new(10, 10, 0, 250),
            ports: ["80:8080:TCP", "53:5353:UDP"]
                .iter()
                .filter_map(|p| ServicePort::parse(p))
                .collect(),
            providers,
        }],
    }
}

/// xorshift64*: the same sequence from the same seed in every run, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// One step of the churn.
#[derive(Debug, Clone)]
enum Step {
    /// Add the slot's workload if absent, else delete it.
    Toggle(u8),
    /// Apply a new set of rules (over the members attached at that moment).
    Policy(Vec<RuleSpec>),
}

fn rule(policy: &str, id: usize, dir: &str, deny: bool, prio: i64, proto: &str) -> RuleSpec {
    let r = contiv_model::Rule {
        tenant_name: "demo".into(),
        policy_name: policy.into(),
        rule_id: id.to_string(),
        direction: dir.into(),
        action: if deny { "deny" } else { "allow" }.into(),
        priority: prio,
        protocol: proto.into(),
        ..Default::default()
    };
    RuleSpec::from_model(&r).expect("valid rule")
}

/// A random rule set: each template in or out, random action and priority.
fn random_rules(rng: &mut Rng) -> Vec<RuleSpec> {
    let templates: [(&str, &str, &str, u16, &str); 7] = [
        ("db-in", "in", "tcp", 5432, "web"),
        ("db-in", "in", "icmp", 0, ""),
        ("db-in", "in", "udp", 53, "app"),
        ("web-out", "out", "tcp", 80, ""),
        ("web-out", "out", "icmp", 0, ""),
        ("app-in", "in", "tcp", 8080, "web"),
        ("app-in", "in", "icmp", 0, "db"),
    ];
    let mut out = vec![];
    for (i, (policy, dir, proto, port, from)) in templates.iter().enumerate() {
        if rng.below(3) == 0 {
            continue;
        }
        let mut r = contiv_model::Rule {
            tenant_name: "demo".into(),
            policy_name: policy.to_string(),
            rule_id: (i + 1).to_string(),
            direction: dir.to_string(),
            action: if rng.below(2) == 0 { "deny" } else { "allow" }.into(),
            priority: 1 + rng.below(100) as i64,
            protocol: proto.to_string(),
            port: i64::from(*port),
            ..Default::default()
        };
        if *dir == "in" {
            r.from_endpoint_group = from.to_string();
        }
        out.push(RuleSpec::from_model(&r).expect("valid rule"));
    }
    if out.is_empty() {
        out.push(rule("db-in", 1, "in", true, 1, "icmp"));
    }
    out
}

/// 100 toggles and 50 policy changes, shuffled; seeded.
fn steps() -> Vec<Step> {
    let mut rng = Rng(SEED);
    let mut steps: Vec<Step> = (0..100)
        .map(|_| Step::Toggle(SLOTS.start + rng.below(SLOTS.len() as u64) as u8))
        .collect();
    steps.extend((0..50).map(|_| Step::Policy(random_rules(&mut rng))));
    // Fisher-Yates.
    for i in (1..steps.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        steps.swap(i, j);
    }
    steps
}

/// The tenant's policy over the attached `members` with `rules`, as this host enforces it.
fn policy(members: &BTreeSet<u8>, rules: &[RuleSpec], ns: &str) -> TenantPolicy {
    let input = PolicyInput {
        networks: networks()
            .iter()
            .map(|n| NetworkRef {
                tenant: "demo".into(),
                name: n.id.trim_start_matches("demo:").into(),
                subnet: n.subnet,
            })
            .collect(),
        groups: GROUPS
            .iter()
            .map(|g| GroupRef {
                tenant: "demo".into(),
                name: g.to_string(),
                policies: match *g {
                    "web" => vec!["web-out".into()],
                    "db" => vec!["db-in".into()],
                    _ => vec!["app-in".into()],
                },
            })
            .collect(),
        rules: rules.to_vec(),
        endpoints: members
            .iter()
            .map(|n| Member {
                id: format!("ep{n}"),
                tenant: "demo".into(),
                group: GROUPS[usize::from(*n) % 3].into(),
                ip: ep(*n, ns).ip.addr(),
                host: "h".into(),
            })
            .collect(),
    };
    compile_tenant(&input, Scope::Host("h"), "demo")
}

/// The desired state after `steps`: attached slots and the policy over them (the agent's
/// policy loop applies once more after the last workload change).
fn final_state(steps: &[Step], ns: &str) -> (BTreeSet<u8>, TenantPolicy) {
    let mut attached = BTreeSet::new();
    let mut rules = vec![];
    for s in steps {
        match s {
            Step::Toggle(n) => {
                if !attached.remove(n) {
                    attached.insert(*n);
                }
            }
            Step::Policy(r) => rules = r.clone(),
        }
    }
    let p = policy(&attached, &rules, ns);
    (attached, p)
}

/// Runs `steps` through the driver's API; `progress` is told how many are done.
fn churn(dp: &OvsDatapath, ns: &str, steps: &[Step], mut progress: impl FnMut(usize)) {
    let pol = dp.policy_driver();
    let svc = dp.service_driver();
    for n in networks() {
        dp.ensure_network(&n).unwrap();
    }
    dp.resync_local_endpoints(&[]).unwrap();
    let mut attached = BTreeSet::new();
    let mut rules = vec![];
    for (i, s) in steps.iter().enumerate() {
        match s {
            Step::Toggle(n) => {
                if attached.remove(n) {
                    dp.remove_local_endpoint(&ep(*n, ns)).unwrap();
                } else {
                    dp.add_local_endpoint(&ep(*n, ns)).unwrap();
                    attached.insert(*n);
                }
                svc.apply(&services(&attached, ns)).unwrap();
            }
            Step::Policy(r) => {
                rules = r.clone();
                pol.apply(&policy(&attached, &rules, ns)).unwrap();
            }
        }
        progress(i + 1);
    }
    pol.apply(&policy(&attached, &rules, ns)).unwrap();
}

/// What the agent does on start with the final desired state: networks, its endpoints,
/// removal of endpoints the bridge holds that are not desired, resync, the policy.
fn declare_final(dp: &OvsDatapath, ns: &str, attached: &BTreeSet<u8>, p: &TenantPolicy) {
    for n in networks() {
        dp.ensure_network(&n).unwrap();
    }
    let eps: Vec<LocalEndpoint> = attached.iter().map(|n| ep(*n, ns)).collect();
    for e in &eps {
        dp.add_local_endpoint(e).unwrap();
    }
    for seen in dp.observe().unwrap().local_endpoints {
        if !eps.iter().any(|e| e.id == seen.id) {
            let n: u8 = seen.id.trim_start_matches("ep").parse().unwrap();
            dp.remove_local_endpoint(&ep(n, ns)).unwrap();
        }
    }
    dp.resync_local_endpoints(&eps).unwrap();
    dp.policy_driver().apply(p).unwrap();
    dp.service_driver().apply(&services(attached, ns)).unwrap();
}

/// The rendering of the final desired state with the switch's ofports and the numbers the
/// driver kept on the bridge.
/// The flow dump and the number of groups.
fn expected(host: &Host, attached: &BTreeSet<u8>, p: &TenantPolicy, round: u16) -> (String, usize) {
    let vsctl = |args: &[&str]| {
        let out = run(&mut host.cmd(&host.ns, &[&["ovs-vsctl", "--no-wait"], args].concat()));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let mut ports = Ports::default();
    for n in attached {
        let ofport = vsctl(&[
            "get",
            "Interface",
            &host_ifname(&format!("ep{n}")),
            "ofport",
        ]);
        ports
            .endpoints
            .insert(format!("ep{n}"), ofport.parse().unwrap());
    }
    // ovs-vsctl prints a string value quoted, with its quotes escaped.
    let id = |key: &str| {
        let v = vsctl(&["get", "Bridge", BRIDGE, &format!("external_ids:{key}")]);
        v.trim_matches('"').replace("\\\"", "\"")
    };
    let tenants: BTreeMap<String, u16> =
        serde_json::from_str(&id("contiv-tenant-numbers")).unwrap();
    let groups = GroupNumbers::from_json(&id("contiv-group-numbers")).unwrap();
    let mut policy = HostPolicy::new();
    if !p.is_empty() {
        policy.insert("demo".into(), p.clone());
    }
    let locals: Vec<LocalEndpoint> = attached.iter().map(|n| ep(*n, &host.ns)).collect();
    let r = render(&Desired {
        networks: &networks(),
        local_endpoints: &locals,
        remote_endpoints: &[],
        policy: &policy,
        ports: &ports,
        tenants: &tenants,
        groups: &groups,
        services: &[("demo".to_string(), services(attached, &host.ns))]
            .into_iter()
            .collect(),
        round,
    });
    assert!(r.pending.is_empty(), "{:?}", r.pending);
    (dump::dump(&r.flows), r.groups.len())
}

/// Flow lines, sorted, duplicates kept (a duplicate would show as a count difference).
fn lines(text: &str) -> Vec<String> {
    let mut v: Vec<String> = text
        .lines()
        .filter(|l| l.contains("cookie="))
        .map(|l| l.trim().to_string())
        .collect();
    v.sort();
    v
}

fn assert_converged(host: &Host, attached: &BTreeSet<u8>, p: &TenantPolicy, round: u16) {
    let (want, groups) = expected(host, attached, p, round);
    let want = lines(&want);
    let have = lines(&host.dump_flows(BRIDGE));
    let stale: Vec<&String> = have.iter().filter(|l| !want.contains(l)).collect();
    let missing: Vec<&String> = want.iter().filter(|l| !have.contains(l)).collect();
    assert!(
        stale.is_empty() && missing.is_empty(),
        "stale: {stale:#?}\nmissing: {missing:#?}"
    );
    assert_eq!(have.len(), want.len(), "no duplicate");
    // Groups too: the service's (none left by an earlier run or a removed service).
    let dump = run(&mut host.cmd(
        &host.ns,
        &["ovs-ofctl", "-O", "OpenFlow13", "dump-groups", BRIDGE],
    ));
    let dump = String::from_utf8_lossy(&dump.stdout).into_owned();
    assert_eq!(dump.matches("group_id=").count(), groups, "{dump}");
    // Ports follow too: exactly the final workloads' (plus the bridge's own).
    let out = run(&mut host.cmd(&host.ns, &["ovs-vsctl", "--no-wait", "list-ports", BRIDGE]));
    let listed: BTreeSet<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    let want_ports: BTreeSet<String> = attached
        .iter()
        .map(|n| host_ifname(&format!("ep{n}")))
        .collect();
    assert_eq!(listed, want_ports);
}

#[test]
#[ignore = "needs root"]
fn churn_converges_on_the_rendering_of_the_final_state() {
    let host = host("c");
    let steps = steps();
    let dp = OvsDatapath::start(cfg(&host.ns, &host.sock())).unwrap();
    let t = Instant::now();
    churn(&dp, &host.ns, &steps, |_| {});
    eprintln!("150 steps in {:?}", t.elapsed());
    let (attached, p) = final_state(&steps, &host.ns);
    assert!(!attached.is_empty() && !p.is_empty());
    assert_converged(&host, &attached, &p, dp.round());
}

/// Not a test of its own: the churn the kill test runs in a child process (this binary
/// re-executed with [`CHILD_ENV`] set), writing how many steps are done to the progress file.
/// Without [`CHILD_ENV`] it does nothing.
#[test]
fn churn_process() {
    let Some([ns, sock, progress]) = child_args(CHILD_ENV) else {
        return;
    };
    let dp = OvsDatapath::start(cfg(&ns, &sock)).unwrap();
    churn(&dp, &ns, &steps(), |done| {
        let _ = std::fs::write(&progress, done.to_string());
    });
    let _ = std::fs::write(&progress, "finished");
}

/// The churn process, SIGKILLed on drop (by its own pid) if still running.
struct Churner(Child);

impl Drop for Churner {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
#[ignore = "needs root"]
fn churn_converges_after_a_kill_9_in_the_middle_and_a_restart() {
    // Early (mostly adds), middle, late (mostly deletes and policy): each on a fresh host.
    for kill_at in [25, 70, 120] {
        kill_then_restart(kill_at);
    }
}

fn kill_then_restart(kill_at: usize) {
    let host = host(&format!("x{kill_at}"));
    let steps = steps();
    let progress = host.dir.path().join("progress");
    let child = spawn_self(
        "churn_process",
        CHILD_ENV,
        format!("{}|{}|{}", host.ns, host.sock(), progress.display()),
    );
    let mut churner = Churner(child);
    let t = Instant::now();
    loop {
        let done: usize = std::fs::read_to_string(&progress)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        if done >= kill_at {
            break;
        }
        if let Ok(Some(status)) = churner.0.try_wait() {
            panic!("the churn process ended early: {status}");
        }
        assert!(t.elapsed() < Duration::from_secs(120), "churn too slow");
        std::thread::sleep(Duration::from_millis(5));
    }
    // Mid-step: SIGKILL to the child's own pid.
    churner.0.kill().unwrap();
    churner.0.wait().unwrap();
    let done = std::fs::read_to_string(&progress).unwrap();
    eprintln!("killed after {} steps", done.trim());

    let (attached, p) = final_state(&steps, &host.ns);
    let dp = OvsDatapath::start(cfg(&host.ns, &host.sock())).unwrap();
    assert_eq!(dp.round(), 2);
    declare_final(&dp, &host.ns, &attached, &p);
    assert_converged(&host, &attached, &p, 2);
}
