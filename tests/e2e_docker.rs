//! End-to-end with a real dockerd (apt docker.io): netmaster + one netplugin per simulated host
//! serving Docker's network and IPAM driver; per host a dockerd (`dockerd/`: its own mount
//! namespace, the agent's plugin socket in its private /run/docker/plugins), an image imported
//! offline from busybox-static. Root only.

mod common;
mod dockerd;

use common::bins;
use dockerd::{links, Dockerd, IMAGE};

use std::path::Path;
use std::time::{Duration, Instant};

use contiv_netplugin::testbed::{eventually, require_root, Cluster};

/// Host 0's dockerd with containers `cnma` and `cnmb` on Docker network `web` (Contiv's
/// `default:web`, 10.77.0.0/24) that reach each other, after a `network connect` / `disconnect`
/// of `cnmb` to a second network; also the free addresses of `web` before any container.
fn two_containers(c: &Cluster, dir: &Path) -> (Dockerd, serde_json::Value) {
    c.create_network("default", "web", "10.77.0.0/24", "10.77.0.1")
        .expect("network");
    let free_before = c
        .get_json("/api/v1/inspect/networks/default:web/")
        .expect("inspect")["Oper"]["availableIPAddresses"]
        .clone();
    let d = Dockerd::start(c, 0, dir);
    d.import_image(dir);
    d.create_netplugin_network("web", &["network=web"], &["network=web"]);
    let t0 = Instant::now();
    d.ok(&[
        "run", "-d", "--name", "cnma", "--net", "web", IMAGE, "sleep", "600",
    ]);
    eprintln!("docker run -d on our network: {:?}", t0.elapsed());
    d.ok(&[
        "run", "-d", "--name", "cnmb", "--net", "web", IMAGE, "sleep", "600",
    ]);
    let ip = |name: &str| {
        d.ok(&[
            "inspect",
            "-f",
            "{{.NetworkSettings.Networks.web.IPAddress}}",
            name,
        ])
    };
    let (a, b) = (ip("cnma"), ip("cnmb"));
    assert!(
        a.starts_with("10.77.0.") && b.starts_with("10.77.0."),
        "{a} {b}"
    );
    let route = d.ok(&["exec", "cnma", "ip", "route"]);
    assert!(route.contains("default via 10.77.0.1"), "{route}");
    let reach = |from: &str, to: &str| {
        eventually(Duration::from_secs(8), || {
            d.run(&["exec", from, "ping", "-c", "1", "-W", "1", to])
                .is_ok()
        })
    };
    assert!(
        reach("cnma", &b),
        "cnma cannot reach {b}\n{}",
        c.agent_log(0)
    );
    assert!(
        reach("cnmb", &a),
        "cnmb cannot reach {a}\n{}",
        c.agent_log(0)
    );
    assert!(reach("cnma", "10.77.0.1"), "gateway unreachable");
    let host_ns = c.tb.hosts[0].netns.clone();
    assert!(
        !links(&host_ns).iter().any(|l| l.starts_with("ctvd")),
        "joined interfaces were moved into the containers"
    );

    // docker network connect / disconnect: a second Contiv network, found by its subnet.
    c.create_network("default", "db", "10.79.0.0/24", "10.79.0.1")
        .expect("network");
    d.ok(&[
        "network",
        "create",
        "-d",
        "netplugin",
        "--ipam-driver",
        "netplugin",
        "--subnet",
        "10.79.0.0/24",
        "db",
    ]);
    d.ok(&["network", "connect", "db", "cnmb"]);
    let b_db = d.ok(&[
        "inspect",
        "-f",
        "{{.NetworkSettings.Networks.db.IPAddress}}",
        "cnmb",
    ]);
    assert!(b_db.starts_with("10.79.0."), "{b_db}");
    // b's second interface carries traffic: b reaches the db network's gateway from it. (Not
    // a -> b_db across the router: b answers from b_db through its default route, i.e. out of
    // its first interface, and the source guard drops a port's frames from any address but its
    // own, as Contiv's OVS pipeline did.)
    assert!(
        reach("cnmb", "10.79.0.1"),
        "cnmb cannot reach the db gateway from {b_db}"
    );
    d.ok(&["network", "disconnect", "db", "cnmb"]);
    assert!(!d
        .ok(&["exec", "cnmb", "ip", "-o", "addr"])
        .contains("10.79.0."));
    d.ok(&["network", "rm", "db"]);
    assert!(reach("cnma", &b), "still reachable after the disconnect");
    (d, free_before)
}

/// After the containers of network `web` are gone: every address of it is free again
/// (`free_before`, as inspect showed it before they came) and no handed-over interface is left
/// in host 0's namespace.
fn assert_nothing_left(c: &Cluster, free_before: &serde_json::Value) {
    let oper = c
        .get_json("/api/v1/inspect/networks/default:web/")
        .expect("inspect")["Oper"]
        .clone();
    assert_eq!(
        &oper["availableIPAddresses"], free_before,
        "every address back: {oper}"
    );
    let left = links(&c.tb.hosts[0].netns);
    assert!(
        !left.iter().any(|l| l.starts_with("ctvd")),
        "no handed-over interface left: {left:?}"
    );
}

#[test]
#[ignore = "needs root"]
fn docker_containers_on_a_contiv_network_reach_each_other_and_leave_nothing() {
    require_root();
    let c = Cluster::start(bins(), 1, &[]).unwrap_or_else(|e| panic!("cluster: {e}"));
    let tmp = tempfile::Builder::new()
        .prefix("cnm-docker-")
        .tempdir()
        .expect("tmp");
    let (d, free_before) = two_containers(&c, tmp.path());
    let host_ns = c.tb.hosts[0].netns.clone();
    d.ok(&["rm", "-f", "cnma", "cnmb"]);
    assert!(
        !links(&host_ns).iter().any(|l| l.starts_with("ctvd")),
        "no handed-over interface left: {:?}",
        links(&host_ns)
    );
    let oper = c
        .get_json("/api/v1/inspect/networks/default:web/")
        .expect("inspect")["Oper"]
        .clone();
    assert_eq!(
        oper["availableIPAddresses"], free_before,
        "every address back: {oper}"
    );
    assert!(
        oper["numEndpoints"].as_u64().unwrap_or(0) == 0,
        "no endpoint left: {oper}"
    );
    let journal = std::fs::read_to_string(c.state_dir(0).join("docker-networks.json"))
        .expect("docker networks");
    assert!(journal.contains("web"), "{journal}");
    d.ok(&["network", "rm", "web"]);
    let journal = std::fs::read_to_string(c.state_dir(0).join("docker-networks.json"))
        .expect("docker networks");
    assert!(!journal.contains("web"), "{journal}");
}

#[test]
#[ignore = "needs root"]
fn a_contiv_group_across_two_hosts_survives_an_agent_restart() {
    require_root();
    let mut c = Cluster::start(bins(), 2, &[]).unwrap_or_else(|e| panic!("cluster: {e}"));
    c.create_tenant("demo").expect("tenant");
    c.create_network("demo", "app", "10.78.0.0/24", "10.78.0.1")
        .expect("network");
    let (code, text) = c
        .api(
            "POST",
            "/api/v1/endpointGroups/demo:web/",
            Some(&serde_json::json!({"tenantName": "demo", "networkName": "app", "groupName": "web"})),
        )
        .expect("api");
    assert!(code < 300, "group: {code} {text}");
    let tmp = tempfile::Builder::new()
        .prefix("cnm-docker-")
        .tempdir()
        .expect("tmp");
    let hosts: Vec<Dockerd> = (0..2)
        .map(|i| {
            let dir = tmp.path().join(format!("h{i}"));
            let d = Dockerd::start(&c, i, &dir);
            d.import_image(&dir);
            // Contiv's name of group web in tenant demo.
            d.create_netplugin_network(
                "web/demo",
                &["tenant=demo", "group=web", "encap=vxlan"],
                &["tenant=demo", "group=web"],
            );
            d
        })
        .collect();
    let run = |h: usize, name: &str| {
        hosts[h].ok(&[
            "run", "-d", "--name", name, "--net", "web/demo", IMAGE, "sleep", "600",
        ]);
        hosts[h].ok(&[
            "inspect",
            "-f",
            "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
            name,
        ])
    };
    let reach = |h: usize, from: &str, to: &str| {
        eventually(Duration::from_secs(8), || {
            hosts[h]
                .run(&["exec", from, "ping", "-c", "1", "-W", "1", to])
                .is_ok()
        })
    };
    let a = run(0, "cnma");
    let b = run(1, "cnmb");
    assert!(reach(0, "cnma", &b), "h1 -> h2: {}", c.agent_log(0));
    assert!(reach(1, "cnmb", &a), "h2 -> h1: {}", c.agent_log(1));
    let ep = c
        .get_json("/api/v1/inspect/networks/demo:app/")
        .expect("inspect")["Oper"]
        .clone();
    assert_eq!(ep["numEndpoints"], 2, "{ep}");
    for e in ep["endpoints"].as_array().expect("endpoints") {
        assert_eq!(e["endpointGroupKey"], "web:demo", "{e}");
        let id = e["containerID"].as_str().unwrap_or_default();
        assert_eq!(e["endpointID"], id, "Contiv's endpoint is Docker's: {e}");
    }

    // The agent restarts: dockerd sends no CreateNetwork or RequestPool again, yet new
    // containers start and old ones still talk.
    c.restart_agent(0).expect("restart");
    let a2 = run(0, "cnma2");
    assert!(reach(0, "cnma2", &b), "after restart: {}", c.agent_log(0));
    assert!(reach(1, "cnmb", &a2));
    assert!(reach(0, "cnma", &b), "old container after restart");

    for (h, names) in [(0, vec!["cnma", "cnma2"]), (1, vec!["cnmb"])] {
        let mut args = vec!["rm", "-f"];
        args.extend(names);
        hosts[h].ok(&args);
        hosts[h].ok(&["network", "rm", "web/demo"]);
        assert!(
            !links(&c.tb.hosts[h].netns)
                .iter()
                .any(|l| l.starts_with("ctvd")),
            "host {h}: handed-over interface left"
        );
    }
    let oper = c
        .get_json("/api/v1/inspect/networks/demo:app/")
        .expect("inspect")["Oper"]
        .clone();
    assert!(
        oper["numEndpoints"].as_u64().unwrap_or(0) == 0,
        "no endpoint left: {oper}"
    );
}

#[test]
#[ignore = "needs root"]
fn after_a_dockerd_restart_containers_start_again_and_nothing_leaks() {
    require_root();
    let c = Cluster::start(bins(), 1, &[]).unwrap_or_else(|e| panic!("cluster: {e}"));
    let tmp = tempfile::Builder::new()
        .prefix("cnm-docker-")
        .tempdir()
        .expect("tmp");
    let (mut d, free_before) = two_containers(&c, tmp.path());
    // Its containers stop with it (no --live-restore); the plugin must serve the new dockerd
    // (Contiv's plugin was disabled after a dockerd restart, #974/#975).
    d.restart();
    d.ok(&["start", "cnma", "cnmb"]);
    let ip = |name: &str| {
        d.ok(&[
            "inspect",
            "-f",
            "{{.NetworkSettings.Networks.web.IPAddress}}",
            name,
        ])
    };
    let reach = |from: &str, to: &str| {
        eventually(Duration::from_secs(8), || {
            d.run(&["exec", from, "ping", "-c", "1", "-W", "1", to])
                .is_ok()
        })
    };
    let b = ip("cnmb");
    assert!(
        reach("cnma", &b),
        "after dockerd restart: {}",
        c.agent_log(0)
    );
    d.ok(&[
        "run", "-d", "--name", "cnmc", "--net", "web", IMAGE, "sleep", "600",
    ]);
    assert!(
        reach("cnmc", &ip("cnma")),
        "a new container after the restart"
    );
    d.ok(&["rm", "-f", "cnma", "cnmb", "cnmc"]);
    assert_nothing_left(&c, &free_before);
}

#[test]
#[ignore = "needs root"]
fn with_live_restore_a_dockerd_restart_keeps_containers_running_and_connected() {
    require_root();
    let c = Cluster::start(bins(), 1, &[]).unwrap_or_else(|e| panic!("cluster: {e}"));
    c.create_network("default", "web", "10.77.0.0/24", "10.77.0.1")
        .expect("network");
    let free_before = c
        .get_json("/api/v1/inspect/networks/default:web/")
        .expect("inspect")["Oper"]["availableIPAddresses"]
        .clone();
    let tmp = tempfile::Builder::new()
        .prefix("cnm-docker-")
        .tempdir()
        .expect("tmp");
    let mut d = Dockerd::start_with(&c, 0, tmp.path(), &["--live-restore"]);
    d.import_image(tmp.path());
    d.create_netplugin_network("web", &["network=web"], &["network=web"]);
    for name in ["cnma", "cnmb"] {
        d.ok(&[
            "run", "-d", "--name", name, "--net", "web", IMAGE, "sleep", "600",
        ]);
    }
    let state = |d: &Dockerd, name: &str| {
        d.ok(&[
            "inspect",
            "-f",
            "{{.State.Pid}} {{.NetworkSettings.Networks.web.IPAddress}}",
            name,
        ])
    };
    let before = [state(&d, "cnma"), state(&d, "cnmb")];
    let reach = |d: &Dockerd, from: &str, to: &str| {
        eventually(Duration::from_secs(8), || {
            d.run(&["exec", from, "ping", "-c", "1", "-W", "1", to])
                .is_ok()
        })
    };
    let ip = |s: &str| s.split(' ').nth(1).unwrap_or_default().to_string();
    assert!(reach(&d, "cnma", &ip(&before[1])), "before the restart");

    d.restart();
    // The same processes (pids) with the same addresses: not restarted, not re-plugged.
    let after = [state(&d, "cnma"), state(&d, "cnmb")];
    assert_eq!(before, after, "containers kept across the restart");
    assert!(
        reach(&d, "cnma", &ip(&after[1])) && reach(&d, "cnmb", &ip(&after[0])),
        "still connected after the restart\n{}\ndockerd log:\n{}",
        c.agent_log(0),
        d.logs()
    );
    // The plugin serves the new dockerd: a new container joins and reaches the old ones.
    d.ok(&[
        "run", "-d", "--name", "cnmc", "--net", "web", IMAGE, "sleep", "600",
    ]);
    assert!(
        reach(&d, "cnmc", &ip(&after[0])),
        "a new container after the restart\n{}",
        d.logs()
    );
    d.ok(&["rm", "-f", "cnma", "cnmb", "cnmc"]);
    assert_nothing_left(&c, &free_before);
}

#[test]
#[ignore = "needs root"]
fn an_agent_that_lost_its_journal_keeps_docker_containers_and_releases_them_later() {
    require_root();
    let mut c = Cluster::start(bins(), 1, &[]).unwrap_or_else(|e| panic!("cluster: {e}"));
    let tmp = tempfile::Builder::new()
        .prefix("cnm-docker-")
        .tempdir()
        .expect("tmp");
    let (d, free_before) = two_containers(&c, tmp.path());
    c.kill_agent(0);
    std::fs::remove_file(c.state_dir(0).join("attachments.log")).expect("journal");
    c.restart_agent(0).expect("restart");
    // Several full passes (every 3 s here): the live containers are adopted, not unplugged.
    std::thread::sleep(Duration::from_secs(7));
    let journal =
        std::fs::read_to_string(c.state_dir(0).join("attachments.log")).unwrap_or_default();
    assert_eq!(
        journal.matches("\"frontend\":\"docker\"").count(),
        2,
        "both rebuilt as Docker's: {journal}\n{}",
        c.agent_log(0)
    );
    let b = d.ok(&[
        "inspect",
        "-f",
        "{{.NetworkSettings.Networks.web.IPAddress}}",
        "cnmb",
    ]);
    assert!(
        d.run(&["exec", "cnma", "ping", "-c", "1", "-W", "2", &b])
            .is_ok(),
        "containers cut off after the journal was lost:\n{}",
        c.agent_log(0)
    );
    d.ok(&["rm", "-f", "cnma", "cnmb"]);
    assert_nothing_left(&c, &free_before);
}

#[test]
#[ignore = "needs root"]
fn a_groups_policy_applies_to_docker_containers() {
    require_root();
    let c = Cluster::start(bins(), 1, &[]).unwrap_or_else(|e| panic!("cluster: {e}"));
    c.create_network("default", "pnet", "10.80.0.0/24", "10.80.0.1")
        .expect("network");
    let post = |path: &str, body: serde_json::Value| {
        let (code, text) = c.api("POST", path, Some(&body)).expect("api");
        assert!(code < 300, "{path}: {code} {text}");
    };
    post(
        "/api/v1/endpointGroups/default:web/",
        serde_json::json!({"tenantName": "default", "groupName": "web", "networkName": "pnet"}),
    );
    // db admits icmp from web only.
    post(
        "/api/v1/policys/default:db-in/",
        serde_json::json!({"tenantName": "default", "policyName": "db-in"}),
    );
    post(
        "/api/v1/rules/default:db-in:deny-all/",
        serde_json::json!({"tenantName": "default", "policyName": "db-in", "ruleId": "deny-all",
            "direction": "in", "action": "deny", "priority": 1}),
    );
    post(
        "/api/v1/rules/default:db-in:web-icmp/",
        serde_json::json!({"tenantName": "default", "policyName": "db-in", "ruleId": "web-icmp",
            "direction": "in", "action": "allow", "priority": 10, "protocol": "icmp",
            "fromEndpointGroup": "web"}),
    );
    post(
        "/api/v1/endpointGroups/default:db/",
        serde_json::json!({"tenantName": "default", "groupName": "db", "networkName": "pnet",
            "policies": ["db-in"]}),
    );
    let tmp = tempfile::Builder::new()
        .prefix("cnm-docker-")
        .tempdir()
        .expect("tmp");
    let d = Dockerd::start(&c, 0, tmp.path());
    d.import_image(tmp.path());
    for g in ["web", "db"] {
        // Contiv's name of a group in the default tenant: the group's name.
        let (o, i) = (format!("group={g}"), format!("group={g}"));
        d.create_netplugin_network(g, &[&o], &[&i]);
    }
    let run = |name: &str, net: &str| {
        d.ok(&[
            "run", "-d", "--name", name, "--net", net, IMAGE, "sleep", "600",
        ]);
        d.ok(&[
            "inspect",
            "-f",
            "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
            name,
        ])
    };
    let _w1 = run("cnmw1", "web");
    let d1 = run("cnmd1", "db");
    let _d2 = run("cnmd2", "db");
    let ping = |from: &str, to: &str| {
        d.run(&["exec", from, "ping", "-c", "1", "-W", "1", to])
            .is_ok()
    };
    assert!(
        eventually(Duration::from_secs(8), || ping("cnmw1", &d1)),
        "web reaches db:\n{}",
        c.agent_log(0)
    );
    assert!(!ping("cnmd2", &d1), "db does not reach db (deny-all in)");
    assert!(!ping("cnmd2", &d1), "still denied");
    d.ok(&["rm", "-f", "cnmw1", "cnmd1", "cnmd2"]);
    d.ok(&["network", "rm", "web", "db"]);
}

/// `docker run --rm IMAGE true` on our network vs Docker's own bridge network on the same
/// dockerd, interleaved: the p50 and p90 of each (issue 15's benchmark). Runs
/// `CONTIV_BENCH_DOCKER_RUNS` times each (default 5, a smoke test; 50 for docs/BENCHMARKS.md).
#[test]
#[ignore = "needs root"]
fn docker_run_on_our_network_vs_dockers_bridge() {
    require_root();
    let runs: usize = std::env::var("CONTIV_BENCH_DOCKER_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let c = Cluster::start(bins(), 1, &[]).unwrap_or_else(|e| panic!("cluster: {e}"));
    c.create_network("default", "bench", "10.81.0.0/24", "10.81.0.1")
        .expect("network");
    let tmp = tempfile::Builder::new()
        .prefix("cnm-docker-")
        .tempdir()
        .expect("tmp");
    let d = Dockerd::start(&c, 0, tmp.path());
    d.import_image(tmp.path());
    d.create_netplugin_network("ours", &["network=bench"], &["network=bench"]);
    // Docker's bridge driver in the simulated host's namespace (no iptables: --iptables=false).
    d.ok(&[
        "network",
        "create",
        "-d",
        "bridge",
        "--subnet",
        "10.82.0.0/24",
        "dbr",
    ]);
    let mut times: [Vec<Duration>; 2] = [Vec::new(), Vec::new()];
    for i in 0..runs + 1 {
        for (k, net) in ["ours", "dbr"].into_iter().enumerate() {
            let t = Instant::now();
            d.ok(&["run", "--rm", "--net", net, IMAGE, "true"]);
            if i > 0 {
                times[k].push(t.elapsed()); // the first of each warms up
            }
        }
    }
    let pct = |v: &mut Vec<Duration>, p: usize| {
        v.sort();
        v[(v.len() * p / 100).min(v.len() - 1)]
    };
    let [mut ours, mut bridge] = times;
    let (o50, b50) = (pct(&mut ours, 50), pct(&mut bridge, 50));
    eprintln!(
        "docker run --rm true, {runs} runs each: ours p50 {o50:?} p90 {:?}; docker bridge p50 {b50:?} p90 {:?}; ratio {:.2}",
        pct(&mut ours, 90),
        pct(&mut bridge, 90),
        o50.as_secs_f64() / b50.as_secs_f64()
    );
    let oper = c
        .get_json("/api/v1/inspect/networks/default:bench/")
        .expect("inspect")["Oper"]
        .clone();
    assert!(
        oper["numEndpoints"].as_u64().unwrap_or(0) == 0,
        "--rm left an endpoint: {oper}"
    );
    d.ok(&["network", "rm", "ours", "dbr"]);
}

#[test]
#[ignore = "needs root"]
fn docker_rm_while_the_agent_is_down_completes_when_it_is_back() {
    require_root();
    let mut c = Cluster::start(bins(), 1, &[]).unwrap_or_else(|e| panic!("cluster: {e}"));
    let tmp = tempfile::Builder::new()
        .prefix("cnm-docker-")
        .tempdir()
        .expect("tmp");
    let (d, free_before) = two_containers(&c, tmp.path());
    c.kill_agent(0);
    // dockerd retries each plugin call for about 30 s: the agent is back well within that.
    // (The agent is restarted from this thread: the test bed's processes die with the thread
    // that spawned them.)
    let removed = std::thread::scope(|s| {
        let rm = s.spawn(|| {
            let t = Instant::now();
            (d.run(&["rm", "-f", "cnma"]), t.elapsed())
        });
        std::thread::sleep(Duration::from_secs(4));
        c.restart_agent(0).expect("restart");
        rm.join().expect("docker rm thread")
    });
    eprintln!(
        "docker rm -f with the agent down for 4 s took {:?}",
        removed.1
    );
    assert!(
        removed.0.is_ok(),
        "docker rm -f: {:?}\n{}",
        removed.0,
        d.logs()
    );
    let b = d.ok(&[
        "inspect",
        "-f",
        "{{.NetworkSettings.Networks.web.IPAddress}}",
        "cnmb",
    ]);
    d.ok(&[
        "run", "-d", "--name", "cnmc", "--net", "web", IMAGE, "sleep", "600",
    ]);
    assert!(
        eventually(Duration::from_secs(8), || d
            .run(&["exec", "cnmc", "ping", "-c", "1", "-W", "1", &b])
            .is_ok()),
        "a new container reaches the old one"
    );
    d.ok(&["rm", "-f", "cnmb", "cnmc"]);
    assert_nothing_left(&c, &free_before);
}

/// Names of host `d`'s Docker networks with driver netplugin, each with its contiv label.
fn contiv_networks(d: &Dockerd) -> Vec<(String, String)> {
    d.ok(&[
        "network",
        "ls",
        "--filter",
        "driver=netplugin",
        "--format",
        "{{.Name}} {{.Label \"io.contiv.netplugin\"}}",
    ])
    .lines()
    .map(|l| {
        let (n, lab) = l.split_once(' ').unwrap_or((l, ""));
        (n.to_string(), lab.trim().to_string())
    })
    .collect()
}

#[test]
#[ignore = "needs root"]
fn docker_mode_follows_contiv_groups_and_networks_and_leaves_others_alone() {
    require_root();
    let mut c = Cluster::start(bins(), 1, &[]).unwrap_or_else(|e| panic!("cluster: {e}"));
    c.set_docker_mode(true).expect("docker mode");
    c.create_tenant("demo").expect("tenant");
    c.create_network("demo", "app", "10.93.0.0/24", "10.93.0.1")
        .expect("network");
    c.create_network("default", "plain", "10.94.0.0/24", "10.94.0.1")
        .expect("network");
    let group = |name: &str, method: &str| {
        let body =
            serde_json::json!({"tenantName": "demo", "networkName": "app", "groupName": name});
        let (code, text) = c
            .api(
                method,
                &format!("/api/v1/endpointGroups/demo:{name}/"),
                (method == "POST").then_some(&body),
            )
            .expect("api");
        assert!(code < 300, "group {name}: {code} {text}");
    };
    group("web", "POST");
    let tmp = tempfile::Builder::new()
        .prefix("sw-docker-mode-")
        .tempdir()
        .expect("tmp");
    let d = Dockerd::start(&c, 0, tmp.path());
    d.import_image(tmp.path());
    let has = |want: &[&str], gone: &[&str]| {
        eventually(Duration::from_secs(15), || {
            let nets = contiv_networks(&d);
            want.iter().all(|w| nets.iter().any(|(n, _)| n == w))
                && gone.iter().all(|g| !nets.iter().any(|(n, _)| n == g))
        })
    };
    assert!(
        has(&["web/demo", "plain"], &["app/demo"]),
        "{:?}\n{}",
        contiv_networks(&d),
        c.agent_log(0)
    );
    // Someone else's network under the name a group will have: never ours to touch.
    d.create_netplugin_network(
        "db/demo",
        &["tenant=demo", "network=app"],
        &["tenant=demo", "network=app"],
    );
    group("db", "POST");
    let t0 = Instant::now();
    d.ok(&[
        "run", "-d", "--name", "swa", "--net", "web/demo", IMAGE, "sleep", "600",
    ]);
    eprintln!("docker run with no network create: {:?}", t0.elapsed());
    d.ok(&[
        "run", "-d", "--name", "swb", "--net", "web/demo", IMAGE, "sleep", "600",
    ]);
    let b = d.ok(&[
        "inspect",
        "-f",
        "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
        "swb",
    ]);
    assert!(b.starts_with("10.93.0."), "{b}");
    let reached = eventually(Duration::from_secs(8), || {
        d.run(&["exec", "swa", "ping", "-c", "1", "-W", "1", &b])
            .is_ok()
    });
    assert!(reached, "swa cannot reach {b}\n{}", c.agent_log(0));
    d.ok(&["rm", "-f", "swa", "swb"]);
    // The group goes: its Docker network goes, and the network, now without groups but db
    // (whose name someone else holds), is not given one.
    group("web", "DELETE");
    assert!(
        has(&["db/demo", "plain"], &["web/demo", "app/demo"]),
        "{:?}\n{}",
        contiv_networks(&d),
        c.agent_log(0)
    );
    group("db", "DELETE");
    assert!(
        has(&["app/demo", "db/demo", "plain"], &["web/demo"]),
        "{:?}",
        contiv_networks(&d)
    );
    let nets = contiv_networks(&d);
    assert!(
        nets.iter().any(|(n, l)| n == "db/demo" && l.is_empty()),
        "the foreign network is still there, unlabelled: {nets:?}"
    );
    assert!(
        nets.iter()
            .any(|(n, l)| n == "app/demo" && l == "docker-mode"),
        "{nets:?}"
    );
    c.delete_network("default", "plain")
        .expect("delete network");
    assert!(has(&["app/demo"], &["plain"]), "{:?}", contiv_networks(&d));
}

#[test]
#[ignore = "needs root"]
fn an_agent_down_past_dockerds_retries_releases_what_dockerd_gave_up_on() {
    require_root();
    let mut c = Cluster::start(bins(), 1, &[]).unwrap_or_else(|e| panic!("cluster: {e}"));
    c.create_network("default", "swlong", "10.95.0.0/24", "10.95.0.1")
        .expect("network");
    let free_before = c
        .get_json("/api/v1/inspect/networks/default:swlong/")
        .expect("inspect")["Oper"]["availableIPAddresses"]
        .clone();
    let tmp = tempfile::Builder::new()
        .prefix("sw-docker-long-")
        .tempdir()
        .expect("tmp");
    let d = Dockerd::start(&c, 0, tmp.path());
    d.import_image(tmp.path());
    d.create_netplugin_network("swlong", &["network=swlong"], &["network=swlong"]);
    d.ok(&[
        "run", "-d", "--name", "swl", "--net", "swlong", IMAGE, "sleep", "600",
    ]);
    c.kill_agent(0);
    // dockerd gives up on the plugin after ~30 s of retries; the agent stays away longer.
    let t = Instant::now();
    let rm = d.run(&["rm", "-f", "swl"]);
    eprintln!(
        "docker rm -f with the agent gone: {:?} after {:?}",
        rm,
        t.elapsed()
    );
    let gone = eventually(Duration::from_secs(40), || {
        d.run(&["ps", "-aq", "--filter", "name=swl"])
            .is_ok_and(|o| o.is_empty())
    });
    assert!(gone, "dockerd still has the container\n{}", d.logs());
    std::thread::sleep(Duration::from_secs(
        35u64.saturating_sub(t.elapsed().as_secs()),
    ));
    c.restart_agent(0).expect("restart");
    let released = eventually(Duration::from_secs(20), || {
        c.get_json("/api/v1/inspect/networks/default:swlong/")
            .is_ok_and(|v| v["Oper"]["availableIPAddresses"] == free_before)
    });
    assert!(
        released,
        "address not released: {:?}\n{}",
        c.get_json("/api/v1/inspect/networks/default:swlong/"),
        c.agent_log(0)
    );
    assert!(
        !links(&c.tb.hosts[0].netns)
            .iter()
            .any(|l| l.starts_with("ctvd")),
        "no handed-over interface left"
    );
}
