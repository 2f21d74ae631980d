//! `contiv-bench cni`: the CNI data-plane-setup benchmark of docs/BENCHMARKS.md (root only).
//!
//! In one run, on one machine, it measures our `contivk8s` (driving the netplugin agent of a
//! simulated host) side by side with the CNI reference plugins (`bridge` + `host-local` IPAM from
//! containernetworking-plugins), both executed the way a runtime does it: a fresh process per
//! call, `CNI_*` environment, the network config on stdin, into fresh network namespaces.
//!
//! - A 1-host [`Cluster`] (namespaces `ctvtb-<pid>-…`, netmaster + one netplugin process, see
//!   `contiv_netplugin::testbed`), network `default:bench` (10.46.0.0/16).
//! - The reference plugin runs `setns()`ed into a "host" namespace of its own (so its bridge is
//!   made there, not in the root namespace), with host-local's `dataDir` in a temp dir.
//! - Sequential: `--pods` ADDs, ours and the reference interleaved pod by pod, then as many DELs;
//!   per-call wall time (spawn to exit) → p50 / p99 / mean. A few warm-up pods first (the first ADD
//!   of each side creates its bridge / tenant namespace), not counted.
//! - Throughput: `--throughput-pods` ADDs with `--inflight` concurrent callers, pods/s (wall time
//!   of the whole batch), then the DELs the same way.
//! - iperf3 (unless `--no-iperf`): single stream, `--iperf-secs` per run, `--iperf-runs` runs,
//!   median: two of our workloads on the same host vs a bare veth pair between two namespaces;
//!   workloads on two hosts (a 2-host cluster) vs bare kernel VXLAN devices put directly in the
//!   same two host namespaces over the same underlay.
//!
//! Every namespace is created under the test bed's prefix and removed when done (also on error).

use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use clap::Parser;
use contiv_netplugin::testbed::{is_root, AgentSettings, Binaries, Cluster, Options, Security};
use serde_json::{json, Value};

#[derive(Debug, Parser)]
#[command(
    name = "contiv-bench cni",
    about = "CNI ADD/DEL latency and throughput, ours vs the reference bridge plugin; iperf3"
)]
struct CniArgs {
    /// Pods in the sequential ADD/DEL runs.
    #[arg(long, default_value_t = 200)]
    pods: usize,
    /// Pods in the concurrent ADD (and DEL) run.
    #[arg(long, default_value_t = 200)]
    throughput_pods: usize,
    /// Concurrent plugin invocations in the throughput run.
    #[arg(long, default_value_t = 16)]
    inflight: usize,
    /// Throughput runs (each: ours then the reference, fresh pods); medians reported.
    #[arg(long, default_value_t = 3)]
    throughput_runs: usize,
    /// Unmeasured warm-up pods per side before the sequential run.
    #[arg(long, default_value_t = 5)]
    warmup: usize,
    /// Directory holding netmaster, netplugin and contivk8s (default: next to this binary).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// Directory of the reference CNI plugins.
    #[arg(long, default_value = "/usr/lib/cni")]
    ref_dir: PathBuf,
    /// Skip the iperf3 part.
    #[arg(long)]
    no_iperf: bool,
    /// Skip the CNI ADD/DEL part.
    #[arg(long)]
    no_cni: bool,
    /// Seconds per iperf3 run.
    #[arg(long, default_value_t = 5)]
    iperf_secs: u32,
    /// iperf3 runs per pair (median reported), alternating ours and bare.
    #[arg(long, default_value_t = 5)]
    iperf_runs: usize,
    /// Also measure ADD with a policy of this many rules in the tenant (0: not), pods in the
    /// group the rules apply to and in a group without rules, vs the same ADDs before any
    /// policy (`contiv-bench policy cni`, --policy-pods pods per kind).
    #[arg(long, default_value_t = 0)]
    policy_rules: usize,
    /// Pods per group kind and phase for --policy-rules.
    #[arg(long, default_value_t = 60)]
    policy_pods: usize,
    /// Write the result table (Markdown) to this file.
    #[arg(long)]
    markdown: Option<PathBuf>,
}

/// One plugin under test: binary, config, and the namespace it runs in.
pub(crate) struct Plugin {
    pub(crate) bin: PathBuf,
    pub(crate) path: String,
    pub(crate) conf: String,
    /// Network namespace the plugin process enters before exec (the reference's "host").
    pub(crate) host_ns: Option<PathBuf>,
}

impl Plugin {
    /// One CNI invocation; returns its wall time (spawn to exit).
    pub(crate) fn call(&self, cmd: &str, cid: &str, netns: &Path) -> anyhow::Result<Duration> {
        let ns_file = match &self.host_ns {
            Some(p) => Some(std::fs::File::open(p).with_context(|| p.display().to_string())?),
            None => None,
        };
        let mut c = Command::new(&self.bin);
        c.env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("CNI_COMMAND", cmd)
            .env("CNI_CONTAINERID", cid)
            .env("CNI_NETNS", netns)
            .env("CNI_IFNAME", "eth0")
            .env("CNI_PATH", &self.path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(f) = &ns_file {
            let fd = f.as_raw_fd();
            // SAFETY: setns(2) is async-signal-safe; the fd stays open until exec.
            unsafe {
                c.pre_exec(move || {
                    if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let t0 = Instant::now();
        let mut child = c
            .spawn()
            .with_context(|| format!("spawn {}", self.bin.display()))?;
        child
            .stdin
            .take()
            .map(|mut s| s.write_all(self.conf.as_bytes()));
        let out = child.wait_with_output()?;
        let dt = t0.elapsed();
        if !out.status.success() {
            bail!(
                "{} {cmd} {cid}: {}\n{}{}",
                self.bin.display(),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(dt)
    }
}

fn pct(samples: &[Duration], p: f64) -> f64 {
    let mut v = samples.to_vec();
    v.sort();
    let rank = ((p / 100.0) * v.len() as f64).ceil().max(1.0) as usize;
    v[rank.min(v.len()) - 1].as_secs_f64() * 1e3
}

fn mean(samples: &[Duration]) -> f64 {
    samples.iter().map(Duration::as_secs_f64).sum::<f64>() / samples.len().max(1) as f64 * 1e3
}

/// `n` calls of `cmd` over `pods` with `inflight` workers; returns the batch wall time.
pub(crate) fn concurrent(
    p: &Plugin,
    cmd: &str,
    pods: &[(String, PathBuf)],
    inflight: usize,
) -> anyhow::Result<Duration> {
    let next = AtomicUsize::new(0);
    let err: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    let t0 = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..inflight {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some((cid, ns)) = pods.get(i) else { break };
                if let Err(e) = p.call(cmd, cid, ns) {
                    err.lock().unwrap().get_or_insert(e);
                    break;
                }
            });
        }
    });
    let dt = t0.elapsed();
    match err.into_inner().unwrap() {
        Some(e) => Err(e),
        None => Ok(dt),
    }
}

fn binaries(args: &CniArgs) -> anyhow::Result<Binaries> {
    binaries_in(args.bin_dir.as_ref())
}

/// The binaries under test in `dir` (default: next to this binary).
pub(crate) fn binaries_in(dir: Option<&PathBuf>) -> anyhow::Result<Binaries> {
    let dir = match dir {
        Some(d) => d.clone(),
        None => std::env::current_exe()?
            .parent()
            .map(Path::to_path_buf)
            .ok_or_else(|| anyhow!("no exe dir"))?,
    };
    let b = Binaries {
        netmaster: dir.join("netmaster"),
        netplugin: dir.join("netplugin"),
        contivk8s: dir.join("contivk8s"),
    };
    for p in [&b.netmaster, &b.netplugin, &b.contivk8s] {
        if !p.is_file() {
            bail!(
                "{} missing (cargo build --release --workspace, or --bin-dir)",
                p.display()
            );
        }
    }
    Ok(b)
}

pub(crate) fn cluster(bins: &Binaries, hosts: usize) -> anyhow::Result<Cluster> {
    // Plain HTTP as in the earlier runs of docs/BENCHMARKS.md; `contiv-bench auth` measures
    // what TLS and tokens cost.
    let opts = Options {
        agents: AgentSettings::Defaults,
        security: Security::Plain,
        ..Options::hosts(hosts)
    };
    let c = Cluster::start_opts(bins.clone(), &[], opts).map_err(|e| anyhow!("cluster: {e}"))?;
    c.create_network("default", "bench", "10.46.0.0/16", "10.46.0.1")
        .map_err(|e| anyhow!(e))?;
    Ok(c)
}

pub(crate) fn ours(c: &Cluster, bins: &Binaries) -> Plugin {
    let conf = json!({"cniVersion": "1.0.0", "name": "contiv", "type": "contivk8s",
        "agentSocket": c.socket(0), "pendingDeleteDir": c.pending_dir(0),
        "tenant": "default", "network": "bench"});
    Plugin {
        bin: bins.contivk8s.clone(),
        path: "/usr/lib/cni".into(),
        conf: conf.to_string(),
        host_ns: None,
    }
}

fn reference(args: &CniArgs, host_ns: PathBuf, ipam_dir: &Path) -> Plugin {
    let conf = json!({"cniVersion": "1.0.0", "name": "refnet", "type": "bridge",
        "bridge": "cniref0", "isGateway": true, "ipMasq": false,
        "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.47.0.0/16", "gateway": "10.47.0.1"}]],
                 "routes": [{"dst": "0.0.0.0/0"}], "dataDir": ipam_dir}});
    Plugin {
        bin: args.ref_dir.join("bridge"),
        path: args.ref_dir.display().to_string(),
        conf: conf.to_string(),
        host_ns: Some(host_ns),
    }
}

/// Creates `n` fresh pod namespaces named `<tag><i>`.
pub(crate) fn pods(c: &Cluster, tag: &str, n: usize) -> anyhow::Result<Vec<(String, PathBuf)>> {
    (0..n)
        .map(|i| {
            let name = format!("{tag}{i}");
            let ns =
                c.tb.workload(&name)
                    .map_err(|e| anyhow!("netns {name}: {e}"))?;
            Ok((format!("{}-{name}", c.tb.prefix), ns))
        })
        .collect()
}

pub(crate) fn drop_pods(pods: &[(String, PathBuf)]) {
    for (_, ns) in pods {
        let _ = contiv_datapath_linux::netns::delete_named(ns);
    }
}

struct Row {
    metric: String,
    unit: &'static str,
    ours: f64,
    reference: f64,
    /// "lower" or "higher" is better
    lower_better: bool,
    target: String,
    met: Option<bool>,
}

fn fmt(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn render(rows: &[Row]) -> String {
    let mut s = String::from("| metric | unit | ours | reference | ratio ours/reference | target | met |\n|---|---|---|---|---|---|---|\n");
    for r in rows {
        let ratio = r.ours / r.reference;
        let better = if r.lower_better {
            r.reference / r.ours
        } else {
            ratio
        };
        s.push_str(&format!(
            "| {} | {} | {} | {} | {:.3} ({:.1}× {}) | {} | {} |\n",
            r.metric,
            r.unit,
            fmt(r.ours),
            fmt(r.reference),
            ratio,
            better.max(1.0 / better),
            if better >= 1.0 { "better" } else { "worse" },
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

fn cni_bench(
    args: &CniArgs,
    bins: &Binaries,
    rows: &mut Vec<Row>,
    notes: &mut Vec<String>,
) -> anyhow::Result<()> {
    for b in ["bridge", "host-local"] {
        if !args.ref_dir.join(b).is_file() {
            bail!(
                "reference plugin {} missing (apt: containernetworking-plugins)",
                args.ref_dir.join(b).display()
            );
        }
    }
    let c = cluster(bins, 1)?;
    let tmp = tempfile::Builder::new().prefix("ctvbench-").tempdir()?;
    let refhost = c.tb.workload("refhost").map_err(|e| anyhow!("{e}"))?;
    let ours = ours(&c, bins);
    let refp = reference(args, refhost, &tmp.path().join("ipam"));

    // Warm-up: first ADD of each side builds its bridge (and our tenant namespace).
    let warm = pods(&c, "warm", args.warmup * 2)?;
    for (i, (cid, ns)) in warm.iter().enumerate() {
        let p = if i % 2 == 0 { &ours } else { &refp };
        p.call("ADD", cid, ns)?;
    }
    for (i, (cid, ns)) in warm.iter().enumerate() {
        let p = if i % 2 == 0 { &ours } else { &refp };
        p.call("DEL", cid, ns)?;
    }
    drop_pods(&warm);

    // Sequential, interleaved pod by pod.
    let n = args.pods;
    let po = pods(&c, "so", n)?;
    let pr = pods(&c, "sr", n)?;
    let (mut add_o, mut add_r, mut del_o, mut del_r) = (vec![], vec![], vec![], vec![]);
    let load0 = loadavg();
    for i in 0..n {
        add_o.push(ours.call("ADD", &po[i].0, &po[i].1)?);
        add_r.push(refp.call("ADD", &pr[i].0, &pr[i].1)?);
    }
    for i in 0..n {
        del_o.push(ours.call("DEL", &po[i].0, &po[i].1)?);
        del_r.push(refp.call("DEL", &pr[i].0, &pr[i].1)?);
    }
    notes.push(format!(
        "sequential ({n} pods each, interleaved): load {load0} -> {}",
        loadavg()
    ));
    drop_pods(&po);
    drop_pods(&pr);
    let seq = |m: &str, o: &[Duration], r: &[Duration], p: f64, target: Option<f64>| Row {
        metric: format!(
            "{m} {}",
            if p == 0.0 {
                "mean".to_string()
            } else {
                format!("p{p}")
            }
        ),
        unit: "ms",
        ours: if p == 0.0 { mean(o) } else { pct(o, p) },
        reference: if p == 0.0 { mean(r) } else { pct(r, p) },
        lower_better: true,
        target: target
            .map(|t| format!("≤ {t:.2}× reference"))
            .unwrap_or_default(),
        met: target.map(|t| pct(o, p) <= t * pct(r, p)),
    };
    rows.push(seq(
        "ADD, sequential,",
        &add_o,
        &add_r,
        50.0,
        Some(1.0 / 3.0),
    ));
    rows.push(seq("ADD, sequential,", &add_o, &add_r, 99.0, None));
    rows.push(seq("ADD, sequential,", &add_o, &add_r, 0.0, None));
    rows.push(seq("DEL, sequential,", &del_o, &del_r, 50.0, None));
    rows.push(seq("DEL, sequential,", &del_o, &del_r, 99.0, None));
    rows.push(seq("DEL, sequential,", &del_o, &del_r, 0.0, None));

    // Throughput: `inflight` concurrent invocations, `throughput_runs` times, ours and the
    // reference alternating with fresh pods each run (shared-machine noise: medians). The
    // machine's CPU time (/proc/stat) over each ADD batch is reported per pod, with the idle
    // and steal shares, so a run can be told apart from a noisy one.
    let m = args.throughput_pods;
    let k = args.inflight;
    let (mut add_o, mut add_r, mut del_o, mut del_r) = (vec![], vec![], vec![], vec![]);
    let (mut cpu_o, mut cpu_r) = (vec![], vec![]);
    for run in 0..args.throughput_runs.max(1) {
        let to = pods(&c, &format!("t{run}o"), m)?;
        let tr = pods(&c, &format!("t{run}r"), m)?;
        let load1 = loadavg();
        settle();
        let (a_o, s_o) = with_cpu(|| concurrent(&ours, "ADD", &to, k))?;
        settle();
        let (a_r, s_r) = with_cpu(|| concurrent(&refp, "ADD", &tr, k))?;
        settle();
        let d_o = concurrent(&ours, "DEL", &to, k)?;
        settle();
        let d_r = concurrent(&refp, "DEL", &tr, k)?;
        notes.push(format!(
            "throughput run {} ({m} pods each, {k} in flight): ADD ours {:.2}s ({}), reference {:.2}s ({}); DEL ours {:.2}s, reference {:.2}s; load {load1} -> {}",
            run + 1,
            a_o.as_secs_f64(),
            s_o.describe(m),
            a_r.as_secs_f64(),
            s_r.describe(m),
            d_o.as_secs_f64(),
            d_r.as_secs_f64(),
            loadavg()
        ));
        drop_pods(&to);
        drop_pods(&tr);
        let pps = |d: Duration| m as f64 / d.as_secs_f64();
        add_o.push(pps(a_o));
        add_r.push(pps(a_r));
        del_o.push(pps(d_o));
        del_r.push(pps(d_r));
        cpu_o.push(s_o.busy_ms() / m as f64);
        cpu_r.push(s_r.busy_ms() / m as f64);
    }
    let (add_o, add_r) = (median(add_o), median(add_r));
    let runs = args.throughput_runs.max(1);
    rows.push(Row {
        metric: format!("ADD throughput, {k} in flight (median of {runs})"),
        unit: "pods/s",
        ours: add_o,
        reference: add_r,
        lower_better: false,
        target: "≥ 5× reference".into(),
        met: Some(add_o >= 5.0 * add_r),
    });
    rows.push(Row {
        metric: format!("CPU time per pod in the ADD batches (median of {runs})"),
        unit: "ms",
        ours: median(cpu_o),
        reference: median(cpu_r),
        lower_better: true,
        target: String::new(),
        met: None,
    });
    rows.push(Row {
        metric: format!("DEL throughput, {k} in flight (median of {runs})"),
        unit: "pods/s",
        ours: median(del_o),
        reference: median(del_r),
        lower_better: false,
        target: String::new(),
        met: None,
    });
    // The endpoints are gone at netmaster again.
    let eps = c.get_json("/api/v1/endpoints/").unwrap_or(Value::Null);
    if eps.as_array().is_some_and(|a| !a.is_empty()) {
        notes.push(format!(
            "WARNING: {} endpoints left at netmaster",
            eps.as_array().map_or(0, Vec::len)
        ));
    }
    Ok(())
}

/// The machine's CPU time over an interval, from /proc/stat (all CPUs, in clock ticks).
#[derive(Debug, Clone, Copy, Default)]
struct CpuSpan {
    busy: u64,
    idle: u64,
    steal: u64,
}

impl CpuSpan {
    fn now() -> CpuSpan {
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let f: Vec<u64> = stat
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .skip(1)
            .filter_map(|x| x.parse().ok())
            .collect();
        let at = |i: usize| f.get(i).copied().unwrap_or(0);
        // user nice system idle iowait irq softirq steal
        CpuSpan {
            busy: at(0) + at(1) + at(2) + at(5) + at(6),
            idle: at(3) + at(4),
            steal: at(7),
        }
    }
    fn since(self, start: CpuSpan) -> CpuSpan {
        CpuSpan {
            busy: self.busy.saturating_sub(start.busy),
            idle: self.idle.saturating_sub(start.idle),
            steal: self.steal.saturating_sub(start.steal),
        }
    }
    fn tick_ms() -> f64 {
        1000.0 / 100.0 // USER_HZ is 100 on Linux
    }
    fn busy_ms(&self) -> f64 {
        self.busy as f64 * Self::tick_ms()
    }
    fn describe(&self, pods: usize) -> String {
        let total = (self.busy + self.idle + self.steal).max(1) as f64;
        format!(
            "CPU {:.2} ms/pod, idle {:.0}%, steal {:.0}%",
            self.busy_ms() / pods.max(1) as f64,
            100.0 * self.idle as f64 / total,
            100.0 * self.steal as f64 / total
        )
    }
}

/// Waits (up to 10 s) until the machine is quiet: the kernel finishes work of the previous batch
/// in the background (freeing deleted namespaces and devices, RCU callbacks), which would
/// otherwise be charged to whichever batch runs next.
pub(crate) fn settle() {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let start = CpuSpan::now();
        std::thread::sleep(Duration::from_millis(200));
        let d = CpuSpan::now().since(start);
        if d.busy * 100 <= 15 * (d.busy + d.idle + d.steal).max(1) {
            return;
        }
    }
}

/// Runs `f` and measures the machine's CPU time over it.
fn with_cpu<T>(f: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<(T, CpuSpan)> {
    let start = CpuSpan::now();
    let out = f()?;
    Ok((out, CpuSpan::now().since(start)))
}

pub(crate) fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split(' ').take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

pub(crate) fn ns_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default()
}

fn ip(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("ip (iproute2)")?;
    if !out.status.success() {
        bail!("ip {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

/// One iperf3 single-stream run, client in `client` to a server in `server` on `addr`; Gbit/s.
pub(crate) fn iperf(
    server: &Path,
    client: &Path,
    addr: &str,
    secs: u32,
    port: u16,
) -> anyhow::Result<f64> {
    settle();
    let mut srv = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns_name(server),
            "iperf3",
            "-s",
            "-1",
            "-B",
            addr,
            "-p",
            &port.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("iperf3 server")?;
    let deadline = Instant::now() + Duration::from_secs(5);
    let result = loop {
        std::thread::sleep(Duration::from_millis(200));
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &ns_name(client),
                "iperf3",
                "-c",
                addr,
                "-p",
                &port.to_string(),
                "-t",
                &secs.to_string(),
                "-J",
            ])
            .output()
            .context("iperf3 client")?;
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        if let Some(bps) = v["end"]["sum_received"]["bits_per_second"].as_f64() {
            break Ok(bps / 1e9);
        }
        let last = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if Instant::now() > deadline {
            break Err(anyhow!("iperf3 to {addr} failed: {last}"));
        }
    };
    let _ = srv.kill();
    let _ = srv.wait();
    result
}

pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// Runs `runs` alternating iperf3 measurements of two paths; returns (ours, bare) medians and raw.
fn iperf_pair(
    runs: usize,
    secs: u32,
    ours: (&Path, &Path, String),
    bare: (&Path, &Path, String),
) -> anyhow::Result<(f64, f64, Vec<f64>, Vec<f64>)> {
    let (mut o, mut b) = (vec![], vec![]);
    for i in 0..runs {
        o.push(iperf(ours.0, ours.1, &ours.2, secs, 5201 + i as u16)?);
        b.push(iperf(bare.0, bare.1, &bare.2, secs, 5301 + i as u16)?);
    }
    Ok((median(o.clone()), median(b.clone()), o, b))
}

fn iperf_bench(
    args: &CniArgs,
    bins: &Binaries,
    rows: &mut Vec<Row>,
    notes: &mut Vec<String>,
) -> anyhow::Result<()> {
    if Command::new("iperf3").arg("--version").output().is_err() {
        bail!("iperf3 not installed (apt: iperf3)");
    }
    let c = cluster(bins, 2)?;
    let a = c
        .add_workload(0, "ipa", "default", "bench")
        .map_err(|e| anyhow!(e))?;
    let b = c
        .add_workload(0, "ipb", "default", "bench")
        .map_err(|e| anyhow!(e))?;
    let r = c
        .add_workload(1, "ipr", "default", "bench")
        .map_err(|e| anyhow!(e))?;
    // Remote entries propagate asynchronously: wait until the paths answer.
    for (from, to) in [(&a, &b), (&a, &r)] {
        if !contiv_netplugin::testbed::eventually(Duration::from_secs(10), || {
            contiv_netplugin::testbed::ping(&from.netns, to.ip, 1)
        }) {
            bail!("{} cannot reach {}", from.name, to.ip);
        }
    }

    // Bare veth pair between two fresh namespaces.
    let va = c.tb.workload("bveth-a").map_err(|e| anyhow!("{e}"))?;
    let vb = c.tb.workload("bveth-b").map_err(|e| anyhow!("{e}"))?;
    let (na, nb) = (ns_name(&va), ns_name(&vb));
    ip(&[
        "-n", &na, "link", "add", "va", "type", "veth", "peer", "name", "vb", "netns", &nb,
    ])?;
    for (n, dev, addr) in [(&na, "va", "10.97.0.1/24"), (&nb, "vb", "10.97.0.2/24")] {
        ip(&["-n", n, "addr", "add", addr, "dev", dev])?;
        ip(&["-n", n, "link", "set", dev, "up"])?;
        ip(&["-n", n, "link", "set", "lo", "up"])?;
    }
    // Bare kernel VXLAN directly in the two host namespaces, over the same underlay.
    let hosts: Vec<String> = c.tb.hosts.iter().map(|h| ns_name(&h.netns)).collect();
    for (i, h) in hosts.iter().enumerate() {
        let local = c.tb.hosts[i].vtep.to_string();
        let remote = c.tb.hosts[1 - i].vtep.to_string();
        ip(&[
            "-n", h, "link", "add", "bvx0", "type", "vxlan", "id", "4242", "local", &local,
            "remote", &remote, "dstport", "4790", "dev", "ul0",
        ])?;
        ip(&[
            "-n",
            h,
            "addr",
            "add",
            &format!("10.95.0.{}/24", i + 1),
            "dev",
            "bvx0",
        ])?;
        ip(&["-n", h, "link", "set", "bvx0", "up"])?;
    }
    let mtu = |ns: &Path, dev: &str| -> String {
        Command::new("ip")
            .args(["-n", &ns_name(ns), "-o", "link", "show", dev])
            .output()
            .map(|o| {
                let s = String::from_utf8_lossy(&o.stdout).to_string();
                s.split_whitespace()
                    .skip_while(|w| *w != "mtu")
                    .nth(1)
                    .unwrap_or("?")
                    .to_string()
            })
            .unwrap_or_default()
    };
    notes.push(format!(
        "MTUs: our workload eth0 {}, bare veth {}, bare vxlan {}",
        mtu(&a.netns, "eth0"),
        mtu(&va, "va"),
        mtu(&c.tb.hosts[0].netns, "bvx0")
    ));
    let (h0, h1) = (&c.tb.hosts[0].netns, &c.tb.hosts[1].netns);
    let load0 = loadavg();
    let (so, sb, sor, sbr) = iperf_pair(
        args.iperf_runs,
        args.iperf_secs,
        (&b.netns, &a.netns, b.ip.to_string()),
        (&vb, &va, "10.97.0.2".into()),
    )?;
    let (xo, xb, xor, xbr) = iperf_pair(
        args.iperf_runs,
        args.iperf_secs,
        (&r.netns, &a.netns, r.ip.to_string()),
        (h1, h0, "10.95.0.2".into()),
    )?;
    notes.push(format!(
        "iperf3 ({} runs × {} s, alternating; Gbit/s): same host ours {sor:.2?} bare veth {sbr:.2?}; cross host ours {xor:.2?} bare vxlan {xbr:.2?}; load {load0} -> {}",
        args.iperf_runs,
        args.iperf_secs,
        loadavg()
    ));
    for h in &hosts {
        let _ = ip(&["-n", h, "link", "del", "bvx0"]);
    }
    rows.push(Row {
        metric: "iperf3 1 stream, same host (bare: veth pair)".into(),
        unit: "Gbit/s",
        ours: so,
        reference: sb,
        lower_better: false,
        target: "≥ 0.90× bare".into(),
        met: Some(so >= 0.9 * sb),
    });
    rows.push(Row {
        metric: "iperf3 1 stream, across hosts (bare: kernel VXLAN)".into(),
        unit: "Gbit/s",
        ours: xo,
        reference: xb,
        lower_better: false,
        target: "≥ 0.90× bare".into(),
        met: Some(xo >= 0.9 * xb),
    });
    for w in [&a, &b, &r] {
        let _ = c.del_workload(w);
    }
    Ok(())
}

pub fn main(argv: Vec<String>) -> anyhow::Result<()> {
    let args = CniArgs::parse_from(std::iter::once("contiv-bench cni".to_string()).chain(argv));
    if !is_root() {
        bail!("contiv-bench cni needs root (it creates network namespaces)");
    }
    if args.pods == 0
        || args.pods > 2000
        || args.throughput_pods == 0
        || args.throughput_pods > 2000
    {
        bail!("--pods and --throughput-pods must be 1..=2000");
    }
    if args.inflight == 0 || args.inflight > 64 {
        bail!("--inflight must be 1..=64");
    }
    let bins = binaries(&args)?;
    let (mut rows, mut notes) = (Vec::new(), Vec::new());
    if !args.no_cni {
        cni_bench(&args, &bins, &mut rows, &mut notes)?;
    }
    if !args.no_iperf {
        iperf_bench(&args, &bins, &mut rows, &mut notes)?;
    }
    if args.policy_rules > 0 {
        let pa = crate::policy::dataplane::CniArgs {
            rules: args.policy_rules,
            pods: args.policy_pods,
            peer_groups: 50,
        };
        let mut prows = Vec::new();
        crate::policy::dataplane::cni_add(&pa, &bins, &mut prows, &mut notes)?;
        rows.extend(prows.into_iter().map(|r| Row {
            metric: r.metric,
            unit: r.unit,
            ours: r.value,
            reference: r.reference.map_or(f64::NAN, |(_, v)| v),
            lower_better: true,
            target: r.target,
            met: r.met,
        }));
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
