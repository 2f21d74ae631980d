//! End-to-end of Docker swarm mode with a real dockerd (apt docker.io) per simulated host:
//! netplugin runs as each node's managed (v2) plugin (scripts/docker-plugin.sh, offline) in the
//! host's namespace, reaching the test bed's netmaster through a relay ([`swarm::relay`]); the
//! two dockerds form a swarm between the hosts' underlay addresses; a swarm network carries a
//! Contiv group by its `cfgdTag`. Root only.

mod common;
// Shared with e2e_docker, whose helpers (network create, start_with) this test does not use.
#[allow(dead_code)]
mod dockerd;
mod swarm;

use common::bins;
use dockerd::{links, Dockerd, IMAGE};
use swarm::plugin::{self, PLUGIN};
use swarm::relay::Relay;

use std::time::{Duration, Instant};

use contiv_netplugin::testbed::{eventually, require_root, Cluster};

const TAG: &str = "swblue";
const SERVICE: &str = "swsvc";

/// The managed plugin's flags on node `i`: its host, VTEP and underlay, netmaster through the
/// node's relay, swarm mode, tenant namespaces named per run.
fn agent_args(c: &Cluster, i: usize) -> Vec<String> {
    let h = &c.tb.hosts[i];
    [
        "--host",
        &c.host_name(i),
        "--vtep-ip",
        &h.vtep.to_string(),
        "--underlay-if",
        "ul0",
        "--netmaster",
        &format!("http://127.0.0.1:{}", c.netmaster_port()),
        "--docker-swarm",
        "--ns-prefix",
        &h.ns_prefix,
        "--reconcile-interval",
        "3",
        "--heartbeat-interval",
        "1",
        "--log-level",
        "info,contiv_netplugin=debug,contiv_datapath_linux=debug",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// The running task container of the service on `d`, if any.
fn task(d: &Dockerd) -> Option<String> {
    let label = format!("label=com.docker.swarm.service.name={SERVICE}");
    let ids = d.run(&["ps", "-q", "--filter", &label]).ok()?;
    ids.split_whitespace().next().map(str::to_string)
}

/// Every task container of the service on `d`, running or not.
fn all_tasks(d: &Dockerd) -> String {
    let label = format!("label=com.docker.swarm.service.name={SERVICE}");
    d.run(&["ps", "-aq", "--filter", &label])
        .unwrap_or_else(|e| e)
}

/// The address of container `t` on `d` (its one network).
fn ip_of(d: &Dockerd, t: &str) -> String {
    d.ok(&[
        "inspect",
        "-f",
        "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
        t,
    ])
}

/// The task on each node pings the other's address (`ips`), across the hosts.
fn reach_both_ways(nodes: &[Dockerd], tasks: &[String], ips: &[String]) {
    for (from, to) in [(0, 1), (1, 0)] {
        let ok = eventually(Duration::from_secs(10), || {
            nodes[from]
                .run(&["exec", &tasks[from], "ping", "-c", "1", "-W", "1", &ips[to]])
                .is_ok()
        });
        assert!(
            ok,
            "the task on h{} cannot reach {} on h{}\n{}",
            from + 1,
            ips[to],
            to + 1,
            both_logs(nodes)
        );
    }
}

fn both_logs(nodes: &[Dockerd]) -> String {
    nodes
        .iter()
        .enumerate()
        .map(|(i, d)| format!("--- dockerd of h{} ---\n{}", i + 1, d.logs()))
        .collect()
}

#[test]
#[ignore = "needs root"]
fn a_swarm_service_spans_two_nodes_survives_a_dockerd_restart_and_leaves_nothing() {
    require_root();
    let t0 = Instant::now();
    let c = Cluster::start_without_agents(bins(), 2).unwrap_or_else(|e| panic!("cluster: {e}"));
    c.create_network("default", "swnet", "10.93.0.0/24", "10.93.0.1")
        .expect("network");
    let group = serde_json::json!({"tenantName": "default", "networkName": "swnet",
        "groupName": "swweb", "cfgdTag": TAG});
    let (code, text) = c
        .api(
            "POST",
            "/api/v1/endpointGroups/default:swweb/",
            Some(&group),
        )
        .expect("api");
    assert!(code < 300, "group: {code} {text}");
    let inspect = |what: &str| {
        c.get_json(&format!("/api/v1/inspect/{what}/"))
            .expect("inspect")["Oper"]
            .clone()
    };
    let free_before = inspect("networks/default:swnet")["availableIPAddresses"].clone();

    let tmp = tempfile::Builder::new()
        .prefix("cnm-swarm-")
        .tempdir()
        .expect("tmp");
    let plugin_dir = tmp.path().join("plugin");
    plugin::build(&plugin_dir, &c.bins.netplugin);
    let mut relays = Vec::new();
    let mut nodes = Vec::new();
    for i in 0..2 {
        relays.push(
            Relay::start(&c.tb.hosts[i].netns, c.netmaster_port())
                .unwrap_or_else(|e| panic!("relay: {e}")),
        );
        let dir = tmp.path().join(format!("h{i}"));
        let d = Dockerd::start(&c, i, &dir);
        d.import_image(&dir);
        plugin::install(&d, &plugin_dir, &dir.join("contiv"), &agent_args(&c, i));
        nodes.push(d);
    }
    eprintln!("two nodes with the managed plugin: {:?}", t0.elapsed());

    // The swarm, between the hosts' underlay addresses.
    let (h1, h2) = (c.tb.hosts[0].vtep, c.tb.hosts[1].vtep);
    nodes[0].ok(&[
        "swarm",
        "init",
        "--advertise-addr",
        &h1.to_string(),
        "--listen-addr",
        &format!("{h1}:2377"),
    ]);
    let token = nodes[0].ok(&["swarm", "join-token", "-q", "worker"]);
    nodes[1].ok(&[
        "swarm",
        "join",
        "--token",
        &token,
        "--advertise-addr",
        &h2.to_string(),
        &format!("{h1}:2377"),
    ]);

    // A swarm network naming the group by its tag, and two replicas, one per node.
    let opt = format!("contiv-tag={TAG}");
    nodes[0].ok(&[
        "network",
        "create",
        "-d",
        PLUGIN,
        "--ipam-driver",
        PLUGIN,
        "--scope",
        "swarm",
        "-o",
        &opt,
        "--ipam-opt",
        &opt,
        TAG,
    ]);
    nodes[0].ok(&[
        "service",
        "create",
        "--detach",
        "--name",
        SERVICE,
        "--replicas",
        "2",
        "--replicas-max-per-node",
        "1",
        // `sleep` as PID 1 ignores SIGTERM: do not wait 10 s for it at `service rm`.
        "--stop-grace-period",
        "1s",
        "--network",
        TAG,
        // The image was imported on each node, not pushed anywhere: no registry to ask.
        "--no-resolve-image",
        IMAGE,
        "sleep",
        "600",
    ]);
    let started = eventually(Duration::from_secs(60), || {
        nodes.iter().all(|d| task(d).is_some())
    });
    assert!(
        started,
        "a task did not start on each node:\n{}\n{}",
        nodes[0]
            .run(&["service", "ps", "--no-trunc", SERVICE])
            .unwrap_or_else(|e| e),
        both_logs(&nodes)
    );
    eprintln!("a task running on each node: {:?}", t0.elapsed());
    let tasks: Vec<String> = nodes.iter().map(|d| task(d).expect("task")).collect();
    let ips: Vec<String> = nodes.iter().zip(&tasks).map(|(d, t)| ip_of(d, t)).collect();
    for ip in &ips {
        assert!(ip.starts_with("10.93.0."), "a Contiv address: {ips:?}");
    }
    assert_ne!(ips[0], ips[1]);
    let oper = inspect("endpointGroups/default:swweb");
    assert_eq!(oper["numEndpoints"], 2, "both tasks in group swweb: {oper}");
    reach_both_ways(&nodes, &tasks, &ips);
    eprintln!("tasks reach each other across hosts: {:?}", t0.elapsed());

    // h2's dockerd restarts (Contiv's plugin came back disabled, #974/#975): the managed plugin
    // is enabled again (the agent in it restarted on its state), swarm replaces h2's task, and
    // the new one gets an address and reaches h1's.
    nodes[1].restart();
    let enabled = nodes[1].ok(&["plugin", "inspect", "-f", "{{.Enabled}}", PLUGIN]);
    assert_eq!(enabled, "true", "{}", nodes[1].logs());
    let replaced = eventually(Duration::from_secs(60), || {
        task(&nodes[1]).is_some_and(|t| t != tasks[1])
    });
    assert!(
        replaced,
        "no new task on h2 after its dockerd restart:\n{}\n{}",
        nodes[0]
            .run(&["service", "ps", "--no-trunc", SERVICE])
            .unwrap_or_else(|e| e),
        both_logs(&nodes)
    );
    let tasks = [tasks[0].clone(), task(&nodes[1]).expect("task")];
    let ips = [ips[0].clone(), ip_of(&nodes[1], &tasks[1])];
    assert!(ips[1].starts_with("10.93.0."), "a Contiv address: {ips:?}");
    reach_both_ways(&nodes, &tasks, &ips);
    eprintln!(
        "h2's dockerd restarted, its new task connected: {:?}",
        t0.elapsed()
    );

    // Removing the service leaves no task, endpoint, address or handed-over interface.
    nodes[0].ok(&["service", "rm", SERVICE]);
    let gone = eventually(Duration::from_secs(40), || {
        nodes.iter().all(|d| all_tasks(d).is_empty())
            && inspect("networks/default:swnet")["availableIPAddresses"] == free_before
            && c.tb
                .hosts
                .iter()
                .all(|h| !links(&h.netns).iter().any(|l| l.starts_with("ctvd")))
    });
    assert!(
        gone,
        "left after service rm: tasks {:?}, network {}, links {:?} {:?}\n{}",
        nodes.iter().map(all_tasks).collect::<Vec<_>>(),
        inspect("networks/default:swnet"),
        links(&c.tb.hosts[0].netns),
        links(&c.tb.hosts[1].netns),
        both_logs(&nodes)
    );
    let oper = inspect("networks/default:swnet");
    assert_eq!(oper["numEndpoints"].as_u64().unwrap_or(0), 0, "{oper}");
    eprintln!("service removed, nothing left: {:?}", t0.elapsed());

    nodes[0].ok(&["network", "rm", TAG]);
    // Workers leave first, so the manager stops without waiting for them.
    nodes[1].ok(&["swarm", "leave", "--force"]);
    nodes[0].ok(&["swarm", "leave", "--force"]);
    drop(nodes);
    drop(relays);
    eprintln!("total: {:?}", t0.elapsed());
}
