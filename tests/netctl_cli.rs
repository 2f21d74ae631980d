//! End to end: the real `netctl` binary driving a real `netmaster` child process over HTTP.
//!
//! Each test starts its own netmaster (free loopback port, temporary data directory) behind a guard
//! that kills it by PID when the test ends, passed or failed. netctl runs as a process too, so
//! exit codes, stdout and stderr are checked exactly as a user's script would see them.

use std::fs::File;
use std::process::{Child, Command, Output, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;

// One port never handed out twice per test process (parallel tests, see its docs).
use common::free_port;

const NETCTL: &str = env!("CARGO_BIN_EXE_netctl");
const NETMASTER: &str = env!("CARGO_BIN_EXE_netmaster");
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A running netmaster; dropped = terminated (SIGTERM, then SIGKILL) and reaped.
struct Netmaster {
    child: Child,
    url: String,
    dir: tempfile::TempDir,
}

impl Netmaster {
    fn start() -> Netmaster {
        let dir = tempfile::tempdir().expect("temporary data directory");
        let port = free_port();
        let log = File::create(dir.path().join("netmaster.log")).expect("netmaster log file");
        let log_err = log.try_clone().expect("netmaster log file");
        let child = Command::new(NETMASTER)
            .arg("--external-address")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .expect("spawn netmaster");
        let mut nm = Netmaster {
            child,
            url: format!("http://127.0.0.1:{port}"),
            dir,
        };
        nm.wait_ready();
        nm
    }

    /// Polls `GET /version` until netmaster answers; fails early if the process exits.
    fn wait_ready(&mut self) {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(2)))
            .build()
            .into();
        let deadline = Instant::now() + READY_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "netmaster exited before serving ({status}); log:\n{}",
                    self.log()
                );
            }
            if agent.get(format!("{}/version", self.url)).call().is_ok() {
                return;
            }
            sleep(Duration::from_millis(100));
        }
        panic!(
            "netmaster did not answer /version within {READY_TIMEOUT:?}; log:\n{}",
            self.log()
        );
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("netmaster.log")).unwrap_or_default()
    }

    /// Runs `netctl --netmaster <this netmaster> <args>` (`args` split on whitespace).
    fn netctl(&self, args: &str) -> Run {
        netctl_at(&self.url, args)
    }

    /// Runs netctl and requires success; returns stdout.
    fn ok(&self, args: &str) -> String {
        let run = self.netctl(args);
        assert_eq!(
            run.code,
            0,
            "netctl {args} failed: {run:?}\nnetmaster log:\n{}",
            self.log()
        );
        run.stdout
    }

    /// Runs netctl and requires exit code 1 with a message on stderr; returns stderr.
    fn fails(&self, args: &str) -> String {
        let run = self.netctl(args);
        assert_eq!(
            run.code, 1,
            "netctl {args} should fail with exit code 1: {run:?}"
        );
        assert!(
            !run.stderr.trim().is_empty(),
            "netctl {args} failed silently: {run:?}"
        );
        run.stderr
    }

    /// Runs netctl with `-j`-style arguments and parses stdout as JSON.
    fn json(&self, args: &str) -> Value {
        let out = self.ok(args);
        serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("netctl {args}: not JSON ({e}): {out}"))
    }
}

impl Drop for Netmaster {
    fn drop(&mut self) {
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: kill(2) on the PID of our own, not yet reaped, child process.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What one netctl invocation did.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `netctl --netmaster <url> <args>` (`args` split on whitespace).
fn netctl_at(url: &str, args: &str) -> Run {
    let output: Output = Command::new(NETCTL)
        .arg("--netmaster")
        .arg(url)
        .args(args.split_whitespace())
        .env_remove("NETMASTER")
        .stdin(Stdio::null())
        .output()
        .expect("run netctl");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Lines of `-q` output, sorted.
fn names(out: &str) -> Vec<String> {
    let mut names: Vec<String> = out.lines().map(str::to_string).collect();
    names.sort();
    names
}

/// The rows of a Contiv table (after the header and the dashes), split on whitespace.
fn rows(table: &str) -> Vec<Vec<String>> {
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines.len() >= 2, "not a table: {table}");
    assert!(
        lines[1].starts_with('-'),
        "no dashes under the header: {table}"
    );
    lines[2..]
        .iter()
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

fn field<'a>(value: &'a Value, path: &[&str]) -> &'a Value {
    path.iter().fold(value, |v, key| &v[*key])
}

#[test]
fn tenant_create_ls_inspect_rm() {
    let nm = Netmaster::start();
    assert_eq!(nm.ok("tenant create blue"), "Creating tenant: blue\n");
    let table = nm.ok("tenant ls");
    assert!(table.starts_with("Name\n----\n"), "{table}");
    assert!(rows(&table).contains(&vec!["blue".to_string()]), "{table}");
    assert!(names(&nm.ok("tenant ls -q")).contains(&"blue".to_string()));
    let list = nm.json("tenant ls -j");
    let listed = list.as_array().expect("tenant ls -j is an array");
    assert!(listed.iter().any(|t| t["tenantName"] == "blue"), "{list}");
    let inspect = nm.json("tenant inspect blue");
    assert_eq!(
        field(&inspect, &["Config", "tenantName"]),
        "blue",
        "{inspect}"
    );
    assert!(inspect.get("Oper").is_some(), "{inspect}");
    assert_eq!(nm.ok("tenant rm blue"), "Deleting tenant blue\n");
    assert!(!names(&nm.ok("tenant ls -q")).contains(&"blue".to_string()));
    nm.fails("tenant inspect blue");
}

#[test]
fn network_create_ls_inspect_rm() {
    let nm = Netmaster::start();
    nm.ok("tenant create t1");
    let created = nm.ok("net create -t t1 -s 10.1.1.0/24 -g 10.1.1.1 -e vxlan -p 5001 n1");
    assert_eq!(created, "Creating network t1:n1\n");
    nm.ok("network create --tenant t1 --subnet 10.1.2.0/24 -e vlan -p 100 n2");

    let table = nm.ok("net ls -t t1");
    assert!(
        table.starts_with("Tenant  Network  Nw Type  Encap type  Packet tag  Subnet"),
        "{table}"
    );
    let n1 = rows(&table)
        .into_iter()
        .find(|r| r[1] == "n1")
        .expect("n1 listed");
    assert_eq!(
        n1[..7],
        [
            "t1",
            "n1",
            "data",
            "vxlan",
            "5001",
            "10.1.1.0/24",
            "10.1.1.1"
        ],
        "{table}"
    );
    assert_eq!(names(&nm.ok("net ls -t t1 -q")), ["n1", "n2"]);
    let list = nm.json("net ls -t t1 -j");
    assert_eq!(list.as_array().map(Vec::len), Some(2), "{list}");
    assert!(
        names(&nm.ok("net ls -q")).iter().all(|n| n != "n1"),
        "default tenant shows t1's networks"
    );
    assert!(names(&nm.ok("net ls -a -q")).contains(&"n1".to_string()));

    let inspect = nm.json("net inspect -t t1 n1");
    assert_eq!(
        field(&inspect, &["Config", "networkName"]),
        "n1",
        "{inspect}"
    );
    assert_eq!(field(&inspect, &["Config", "pktTag"]), 5001, "{inspect}");
    assert_eq!(field(&inspect, &["Config", "encap"]), "vxlan", "{inspect}");

    assert_eq!(nm.ok("net rm -t t1 n1"), "Deleting network t1:n1\n");
    assert_eq!(names(&nm.ok("net ls -t t1 -q")), ["n2"]);

    let err = nm.fails("net create -t t1 n3");
    assert!(err.contains("Subnet is required"), "{err}");
    let err = nm.fails("net create -t t1 -s 10.1.3.0/24 -g 10.1.3 n3");
    assert!(err.contains("Invalid gateway"), "{err}");
}

#[test]
fn group_with_policy_and_rules() {
    let nm = Netmaster::start();
    nm.ok("tenant create t1");
    nm.ok("net create -t t1 -s 10.1.1.0/24 n1");
    assert_eq!(nm.ok("policy create -t t1 p1"), "Creating policy t1:p1\n");
    nm.ok("policy rule-add -t t1 -d in -l tcp -P 80 -j allow -p 5 p1 1");
    nm.ok("policy rule-add -t t1 -d out -s 10.0.0.0/8 -l udp -P 53 p1 2");
    nm.ok("policy rule-add -t t1 -l icmp -j deny p1 3");

    let rules = nm.ok("policy rule-ls -t t1 p1");
    let lines: Vec<&str> = rules.lines().collect();
    assert_eq!(lines[0], "Incoming Rules:", "{rules}");
    assert!(
        lines[3].starts_with("3 ") && lines[4].starts_with("1 "),
        "priority order: {rules}"
    );
    let outgoing = lines
        .iter()
        .position(|l| *l == "Outgoing Rules:")
        .expect("outgoing section");
    assert!(lines[outgoing + 3].starts_with("2 "), "{rules}");
    assert!(lines[outgoing + 3].contains("10.0.0.0/8"), "{rules}");
    let quiet = nm.ok("policy rule-ls -t t1 -q p1");
    let ids: Vec<&str> = quiet.lines().collect();
    assert_eq!(ids.len(), 3, "{quiet}");
    assert_eq!(ids[2], "1", "priority 5 comes last: {quiet}");
    let listed = nm.json("policy rule-ls -t t1 -j p1");
    assert_eq!(listed.as_array().map(Vec::len), Some(3), "{listed}");

    let created = nm.ok("group create -t t1 -p p1 n1 web");
    assert_eq!(created, "Creating EndpointGroup t1:web\n");
    let table = nm.ok("group ls -t t1");
    let web = rows(&table)
        .into_iter()
        .find(|r| r[1] == "web")
        .expect("group listed");
    assert_eq!(web[..3], ["t1", "web", "n1"], "{table}");
    assert!(web.contains(&"p1".to_string()), "{table}");
    let inspect = nm.json("group inspect -t t1 web");
    assert_eq!(
        field(&inspect, &["Config", "policies"]),
        &serde_json::json!(["p1"]),
        "{inspect}"
    );
    assert_eq!(names(&nm.ok("policy ls -t t1 -q")), ["p1"]);

    nm.ok("policy rule-rm -t t1 p1 2");
    assert_eq!(nm.ok("policy rule-ls -t t1 -q p1"), "3\n1\n");
    nm.fails("policy rm -t t1 p1");
    nm.ok("group rm -t t1 web");
    assert_eq!(nm.ok("policy rm -t t1 p1"), "Deleting policy t1:p1\n");
    assert_eq!(nm.ok("policy ls -t t1 -q"), "");

    let err = nm.fails("policy rule-add -t t1 -d in -e web p1 9");
    assert!(
        err.contains("Cant specify to-group for incoming rule"),
        "{err}"
    );
}

#[test]
fn netprofile_and_service() {
    let nm = Netmaster::start();
    nm.ok("tenant create t1");
    nm.ok("net create -t t1 -s 10.1.1.0/24 n1");
    let created = nm.ok("netprofile create -t t1 -b 10mbps -d 5 -s 100 gold");
    assert_eq!(created, "Creating netprofile t1:gold\n");
    let table = nm.ok("netprofile ls -t t1");
    assert_eq!(
        rows(&table),
        [["gold", "t1", "10Mbps", "5", "100"]],
        "{table}"
    );
    let inspect = nm.json("netprofile inspect -t t1 gold");
    assert_eq!(field(&inspect, &["Config", "DSCP"]), 5, "{inspect}");
    nm.ok("group create -t t1 -n gold n1 db");
    nm.ok("group rm -t t1 db");
    nm.ok("netprofile rm -t t1 gold");
    assert_eq!(nm.ok("netprofile ls -t t1 -q"), "");

    let created = nm.ok("service create -t t1 -s n1 -l app=web -p 80:8080:TCP web");
    assert_eq!(created, "Creating ServiceLB t1:web\n");
    let table = nm.ok("service ls -t t1");
    assert_eq!(rows(&table), [["web", "t1", "n1", "[app=web]"]], "{table}");
    let inspect = nm.json("service inspect -t t1 web");
    assert_eq!(
        field(&inspect, &["Config", "serviceName"]),
        "web",
        "{inspect}"
    );
    assert_eq!(nm.ok("service rm -t t1 web"), "Deleting Service  web,t1\n");
    assert_eq!(nm.ok("service ls -t t1 -q"), "");
}

#[test]
fn global_set_info_inspect() {
    let nm = Netmaster::start();
    let before = nm.json("global info -j");
    assert_eq!(before.as_array().map(Vec::len), Some(1), "{before}");
    assert_eq!(nm.ok("global set -v 100-200 --vxlan-range 1000-2000"), "");
    let info = nm.ok("global info");
    assert!(info.contains("Vlan Range: 100-200\n"), "{info}");
    assert!(info.contains("Vxlan range: 1000-2000\n"), "{info}");
    assert!(info.contains("Private subnet: 172.19.0.0/16\n"), "{info}");
    let inspect = nm.json("global inspect");
    assert_eq!(
        field(&inspect, &["Config", "vlans"]),
        "100-200",
        "{inspect}"
    );
    assert!(inspect.get("Oper").is_some(), "{inspect}");
    nm.fails("global set --fwd-mode sideways");
}

#[test]
fn bgp_create_ls_inspect_rm() {
    let nm = Netmaster::start();
    nm.ok(
        "bgp create --router-ip 50.1.1.1/24 --as 65002 --neighbor-as 500 --neighbor 50.1.1.2 host1",
    );
    let table = nm.ok("bgp ls");
    assert_eq!(
        rows(&table),
        [["host1", "50.1.1.1/24", "65002", "50.1.1.2", "500"]],
        "{table}"
    );
    assert_eq!(nm.ok("bgp ls -q"), "host1\n");
    let inspect = nm.json("bgp inspect host1");
    assert_eq!(
        field(&inspect, &["Config", "routerip"]),
        "50.1.1.1/24",
        "{inspect}"
    );
    assert_eq!(nm.ok("bgp rm host1"), "Deleting Bgp router config: host1\n");
    assert_eq!(nm.ok("bgp ls -q"), "");
    let err =
        nm.fails("bgp create --router-ip 50.1.1.1 --as 1 --neighbor-as 2 --neighbor 50.1.1.2 h");
    assert!(err.contains("Wrong CIDR format"), "{err}");
}

#[test]
fn errors_exit_1_with_message() {
    let nm = Netmaster::start();
    let err = nm.fails("endpoint inspect no-such-endpoint");
    assert!(!err.contains("unable to connect"), "{err}");
    let err = nm.fails("net ls -t no-such-tenant");
    assert!(!err.contains("unable to connect"), "{err}");
    nm.fails("net create -t no-such-tenant -s 10.9.0.0/16 n");
    nm.fails("group ls -t no-such-tenant");
    nm.fails("policy create -t no-such-tenant p");
    // A malformed command line is clap's usage error, exit code 2.
    assert_eq!(nm.netctl("tenant create").code, 2);
    assert_eq!(
        nm.netctl("net create -p notanumber -s 10.9.0.0/16 n").code,
        2
    );
}

#[test]
fn version_shows_client_and_server() {
    let nm = Netmaster::start();
    let out = nm.ok("version");
    assert!(out.starts_with("Client Version:\nVersion: "), "{out}");
    assert!(out.contains("\nServer Version:\nVersion: "), "{out}");
}

#[test]
fn netmaster_down_is_a_clear_error() {
    let url = format!("http://127.0.0.1:{}", free_port());
    let run = netctl_at(&url, "tenant ls");
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr
            .contains(&format!("unable to connect to netmaster at {url}")),
        "{run:?}"
    );
    assert_eq!(run.stdout, "");
}

#[test]
fn completion_scripts() {
    for shell in ["bash", "zsh", "fish"] {
        let run = netctl_at("http://127.0.0.1:1", &format!("completion {shell}"));
        assert_eq!(run.code, 0, "{run:?}");
        assert!(
            run.stdout.contains("netctl") && run.stdout.contains("rule-add"),
            "{shell}"
        );
    }
}

/// POSTs a JSON body to netmaster as a host agent would; returns the answer.
fn agent_post(url: &str, path: &str, body: &Value) -> Value {
    let mut resp = ureq::post(format!("{url}{path}"))
        .send_json(body)
        .unwrap_or_else(|e| panic!("POST {path}: {e}"));
    resp.body_mut()
        .read_json()
        .unwrap_or_else(|e| panic!("POST {path}: {e}"))
}

#[test]
fn policy_explain_and_status() {
    let nm = Netmaster::start();
    nm.ok("net create -s 10.1.1.0/24 n1");
    nm.ok("policy create db-in");
    nm.ok("group create n1 web");
    nm.ok("policy rule-add -d in -g web -l tcp -P 80 -p 10 db-in 1");
    nm.ok("group create -p db-in n1 db");
    nm.ok("policy rule-add -d in -j deny db-in 2");
    for (c, group, host) in [("c1", "web", "host1"), ("c2", "db", "host2")] {
        let ep = serde_json::json!({"TenantName": "default", "NetworkName": "n1", "ServiceName": group,
            "EndpointID": c, "EPCommonName": format!("name-{c}"),
            "ConfigEP": {"Container": c, "Host": host, "ServiceName": group}});
        agent_post(&nm.url, "/plugin/createEndpoint", &ep);
        let node = serde_json::json!({"hostname": host, "datapath": "linux"});
        agent_post(&nm.url, "/plugin/registerNode", &node);
    }
    let status = nm.json("policy status -j");
    let rev = status["revision"].as_u64().expect("revision");
    let report =
        serde_json::json!({"hostname": "host1", "revision": rev, "rules": 2, "elements": 3});
    agent_post(&nm.url, "/plugin/policyReport", &report);

    let out = nm.ok("policy explain --from name-c1 --to name-c2 --port 80");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0], "allow  tcp/80  by default:db-in:1 (in-rule of group db)",
        "{out}"
    );
    assert!(
        lines[3].starts_with("from  10.1.1.") && lines[3].contains("web"),
        "{out}"
    );
    assert!(
        lines[4].starts_with("to ") && lines[4].ends_with("db     host2"),
        "{out}"
    );
    let hosts = rows(&lines[5..].join("\n"));
    assert_eq!(hosts[0], ["host1", &rev.to_string(), "yes"], "{out}");
    assert_eq!(
        hosts[1],
        ["host2", "0", "no", "(never", "reported)"],
        "{out}"
    );
    let out = nm.ok("policy explain -from name-c1 -to n1.default-c2 -port 22");
    assert!(
        out.starts_with("deny  tcp/22  by default:db-in:2 (in-rule of group db)\n"),
        "{out}"
    );
    let out = nm.ok("policy explain --from name-c2 --to name-c1 --protocol udp --port 53");
    assert!(out.starts_with("allow  udp/53  no rule matched\n"), "{out}");
    let json = nm.json("policy explain --from name-c1 --to name-c2 --port 80 -j");
    assert_eq!(json["rule"], "default:db-in:1", "{json}");
    assert_eq!(json["ingress"]["group"], "db", "{json}");
    let err = nm.fails("policy explain --from nope --to name-c2");
    assert!(
        err.contains("endpoint nope not found in tenant default"),
        "{err}"
    );

    let out = nm.ok("policy status");
    assert_eq!(
        out.lines().next(),
        Some(format!("netmaster revision {rev}").as_str())
    );
    let table: Vec<&str> = out.lines().skip(1).collect();
    let hosts = rows(&table.join("\n"));
    assert_eq!(
        hosts[0],
        ["host1", &rev.to_string(), "yes", "2", "3"],
        "{out}"
    );
    assert_eq!(hosts[1][..3], ["host2", "0", "no"], "{out}");
}
