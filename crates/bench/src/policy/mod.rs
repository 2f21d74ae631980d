//! `contiv-bench policy ...`: the policy benchmarks of docs/BENCHMARKS.md ("Policy"), root only.
//!
//! - `install`: compile + render + `nft -f` install of N rules for one host, each step timed
//!   separately, against N flat rules (one rule per match, no sets) loaded with `nft -f` in the
//!   same run ([`install`]);
//! - `converge`: 10 simulated hosts, a rule toggled through netmaster's REST API, probes on every
//!   host until each shows the new verdict ([`converge`]);
//! - `cni`: CNI ADD p50 with 1,000 rules in the tenant (pods in the group the rules apply to, and
//!   in a group without rules) vs the same before any policy exists ([`dataplane::cni_add`]);
//! - `iperf`: iperf3 single stream with 1,000 rules on the server's group vs the same workloads
//!   with the policy detached ([`dataplane::iperf`]);
//! - `rss`: the agent's VmRSS with 10,000 rules and 1,000 endpoints vs idle ([`dataplane::rss`]);
//! - `all`: every one of them, one Markdown table.
//!
//! Every namespace is made under the test bed's per-run prefix (`ctvtb-<pid>-…`) and removed when
//! its guard drops, also on error; every process is the test bed's, killed by PID.

pub(crate) mod converge;
pub(crate) mod dataplane;
mod install;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use clap::{Parser, Subcommand};
use contiv_netplugin::testbed::{is_root, Cluster};
use serde_json::{json, Value};

#[derive(Debug, Parser)]
#[command(name = "contiv-bench policy", about = "Policy benchmarks (root only)")]
struct PolicyArgs {
    #[command(subcommand)]
    cmd: Cmd,
    /// Directory holding netmaster, netplugin and contivk8s (default: next to this binary).
    #[arg(long, global = true)]
    bin_dir: Option<PathBuf>,
    /// Write the result table (Markdown) to this file.
    #[arg(long, global = true)]
    markdown: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Compile + render + nft install of N rules on one host vs N flat rules.
    Install(install::Args),
    /// Rule change to enforced-on-every-host latency, by probes.
    Converge(converge::Args),
    /// CNI ADD p50 with a policy of N rules in the tenant vs without.
    Cni(dataplane::CniArgs),
    /// iperf3 single stream with N rules vs the same path without policy.
    Iperf(dataplane::IperfArgs),
    /// Agent RSS with N rules and M endpoints vs idle.
    Rss(dataplane::RssArgs),
    /// All of the above with their defaults.
    All,
}

/// One result line.
pub struct Row {
    pub bench: &'static str,
    pub metric: String,
    pub unit: &'static str,
    pub value: f64,
    /// What the value is compared with, and its value (measured in the same run, or cited).
    pub reference: Option<(String, f64)>,
    pub target: String,
    pub met: Option<bool>,
}

impl Row {
    pub fn new(bench: &'static str, metric: impl Into<String>, unit: &'static str, v: f64) -> Row {
        Row {
            bench,
            metric: metric.into(),
            unit,
            value: v,
            reference: None,
            target: String::new(),
            met: None,
        }
    }
    pub fn vs(mut self, label: impl Into<String>, v: f64) -> Row {
        self.reference = Some((label.into(), v));
        self
    }
    pub fn target(mut self, t: impl Into<String>, met: bool) -> Row {
        self.target = t.into();
        self.met = Some(met);
        self
    }
}

pub fn fmt(v: f64) -> String {
    if v.is_nan() {
        "n/a".into()
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else if v >= 0.1 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

pub fn render(rows: &[Row]) -> String {
    let mut s = String::from(
        "| bench | metric | unit | value | reference (same run) | value/reference | target | met |\n|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let (reference, ratio) = match &r.reference {
            Some((label, v)) => (
                format!("{} ({label})", fmt(*v)),
                format!("{:.2}", r.value / v),
            ),
            None => (String::new(), String::new()),
        };
        s.push_str(&format!(
            "| {} | {} | {} | {} | {reference} | {ratio} | {} | {} |\n",
            r.bench,
            r.metric,
            r.unit,
            fmt(r.value),
            r.target,
            match r.met {
                Some(true) => "**yes**",
                Some(false) => "**no**",
                None => "",
            }
        ));
    }
    s
}

/// Milliseconds of a duration.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Nearest-rank percentile of `v` (any order).
pub fn pct(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let rank = ((p / 100.0) * v.len() as f64).ceil().max(1.0) as usize;
    v[rank.min(v.len()) - 1]
}

/// Group names `g0..g<n>`.
pub fn group_names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("g{i}")).collect()
}

/// The `i`-th rule of a synthetic policy, as Contiv's wire object: a realistic mix of in-rules
/// from other groups (tcp ports), from single addresses and CIDRs, a deny-all, and out-rules to
/// CIDRs and groups. `peers` are the group names rules refer to. None of the shapes matches
/// traffic between the benchmarks' own workloads except the deny-all (priority 1).
pub fn rule_json(tenant: &str, policy: &str, i: usize, peers: &[String]) -> Value {
    let peer = |k: usize| peers[k % peers.len()].clone();
    let mut r = match i % 10 {
        0 => json!({"direction": "in", "action": "deny", "priority": 1}),
        1..=4 => json!({"direction": "in", "action": "allow", "priority": 10 + i % 40,
            "fromEndpointGroup": peer(i * 7), "protocol": "tcp", "port": 8000 + i % 1000}),
        5 | 6 => json!({"direction": "in", "action": "allow", "priority": 50,
            "fromIpAddress": format!("172.{}.{}.{}", 16 + (i >> 16) % 16, (i >> 8) & 255, i & 255),
            "protocol": "tcp", "port": 443}),
        7 => json!({"direction": "in", "action": "deny", "priority": 60,
            "fromIpAddress": format!("192.168.{}.0/24", (i / 10) % 256), "protocol": "udp", "port": 53}),
        8 => json!({"direction": "out", "action": "deny", "priority": 5,
            "toIpAddress": format!("198.18.{}.0/24", (i / 10) % 256), "protocol": "tcp", "port": 25}),
        _ => json!({"direction": "out", "action": "allow", "priority": 20,
            "toEndpointGroup": peer(i * 13), "protocol": "tcp", "port": 5432}),
    };
    r["tenantName"] = json!(tenant);
    r["policyName"] = json!(policy);
    r["ruleId"] = json!(format!("r{i}"));
    r
}

/// REST helpers over a test bed cluster.
pub struct Api<'a>(pub &'a Cluster);

impl Api<'_> {
    pub fn post(&self, path: &str, body: &Value) -> anyhow::Result<()> {
        match self.0.api("POST", path, Some(body)) {
            Ok((200 | 201, _)) => Ok(()),
            Ok((code, text)) => bail!("POST {path}: {code} {text}"),
            Err(e) => bail!("POST {path}: {e}"),
        }
    }
    pub fn delete(&self, path: &str) -> anyhow::Result<()> {
        match self.0.api("DELETE", path, None) {
            Ok((200, _)) => Ok(()),
            Ok((code, text)) => bail!("DELETE {path}: {code} {text}"),
            Err(e) => bail!("DELETE {path}: {e}"),
        }
    }
    pub fn group(
        &self,
        tenant: &str,
        name: &str,
        net: &str,
        policies: &[&str],
    ) -> anyhow::Result<()> {
        self.post(
            &format!("/api/v1/endpointGroups/{tenant}:{name}/"),
            &json!({"tenantName": tenant, "groupName": name, "networkName": net, "policies": policies}),
        )
    }
    pub fn policy(&self, tenant: &str, name: &str) -> anyhow::Result<()> {
        self.post(
            &format!("/api/v1/policys/{tenant}:{name}/"),
            &json!({"tenantName": tenant, "policyName": name}),
        )
    }
    pub fn rule(&self, body: &Value) -> anyhow::Result<()> {
        let key = format!(
            "{}:{}:{}",
            body["tenantName"].as_str().unwrap_or_default(),
            body["policyName"].as_str().unwrap_or_default(),
            body["ruleId"].as_str().unwrap_or_default()
        );
        self.post(&format!("/api/v1/rules/{key}/"), body)
    }
    /// Policy `name` with the synthetic rules `ids` ([`rule_json`]) referring to `peers`.
    pub fn synthetic_policy(
        &self,
        tenant: &str,
        name: &str,
        ids: std::ops::Range<usize>,
        peers: &[String],
    ) -> anyhow::Result<()> {
        self.policy(tenant, name)?;
        for i in ids {
            self.rule(&rule_json(tenant, name, i, peers))?;
        }
        Ok(())
    }

    /// Waits until every host reports enforcing netmaster's latest revision with `rules` rule
    /// entries installed; returns how long that took.
    pub fn wait_enforced(&self, rules: u64, timeout: Duration) -> anyhow::Result<Duration> {
        let t0 = Instant::now();
        let mut last = Value::Null;
        while t0.elapsed() < timeout {
            last = self
                .0
                .get_json("/api/v1/policyStatus/")
                .map_err(|e| anyhow!(e))?;
            let hosts = last["hosts"].as_array().cloned().unwrap_or_default();
            if !hosts.is_empty()
                && hosts.iter().all(|h| {
                    h["current"].as_bool() == Some(true) && h["rules"].as_u64() == Some(rules)
                })
            {
                return Ok(t0.elapsed());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        bail!("hosts not enforcing {rules} rules after {timeout:?}: {last}")
    }
}

/// VmRSS and VmHWM of a process, KiB.
pub fn rss_kb(pid: u32) -> anyhow::Result<(u64, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("/proc/{pid}/status"))?;
    let field = |name: &str| {
        s.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Ok((field("VmRSS:"), field("VmHWM:")))
}

pub fn main(argv: Vec<String>) -> anyhow::Result<()> {
    let args =
        PolicyArgs::parse_from(std::iter::once("contiv-bench policy".to_string()).chain(argv));
    if !is_root() {
        bail!("contiv-bench policy needs root (it creates network namespaces)");
    }
    let bins = || crate::cni::binaries_in(args.bin_dir.as_ref());
    let (mut rows, mut notes) = (Vec::new(), Vec::new());
    let all = matches!(args.cmd, Cmd::All);
    let parse = |sub: &str| vec![format!("contiv-bench policy {sub}")];
    match &args.cmd {
        Cmd::Install(a) => install::run(a, &mut rows, &mut notes)?,
        Cmd::Converge(a) => converge::run(a, &bins()?, &mut rows, &mut notes)?,
        Cmd::Cni(a) => dataplane::cni_add(a, &bins()?, &mut rows, &mut notes)?,
        Cmd::Iperf(a) => dataplane::iperf(a, &bins()?, &mut rows, &mut notes)?,
        Cmd::Rss(a) => dataplane::rss(a, &bins()?, &mut rows, &mut notes)?,
        Cmd::All => {}
    }
    if all {
        let b = bins()?;
        install::run(
            &install::Args::parse_from(parse("install")),
            &mut rows,
            &mut notes,
        )?;
        converge::run(
            &converge::Args::parse_from(parse("converge")),
            &b,
            &mut rows,
            &mut notes,
        )?;
        dataplane::cni_add(
            &dataplane::CniArgs::parse_from(parse("cni")),
            &b,
            &mut rows,
            &mut notes,
        )?;
        dataplane::iperf(
            &dataplane::IperfArgs::parse_from(parse("iperf")),
            &b,
            &mut rows,
            &mut notes,
        )?;
        dataplane::rss(
            &dataplane::RssArgs::parse_from(parse("rss")),
            &b,
            &mut rows,
            &mut notes,
        )?;
    }
    let table = render(&rows);
    println!("\n{table}");
    for n in &notes {
        println!("- {n}");
    }
    if let Some(p) = &args.markdown {
        let md = format!(
            "{table}\n{}",
            notes.iter().map(|n| format!("- {n}\n")).collect::<String>()
        );
        std::fs::write(p, md).with_context(|| p.display().to_string())?;
    }
    Ok(())
}
