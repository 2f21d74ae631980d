//! `contiv-bench dns`: DNS queries/s and latency from one workload against the agent's DNS
//! (hickory-server on the gateway, port 53) and against dnsmasq (apt dnsmasq-base) serving the
//! same names in the same tenant namespace (gateway address, port 5353), same run.
//!
//! Set-up: a 1-host [`Cluster`] (netmaster + one netplugin process with its default settings),
//! network `default:bench` (10.46.0.0/16), group `web` with `--members` workloads, service `api`
//! (its VIP), one client workload. dnsmasq gets the same names from a hosts file
//! (`--addn-hosts`, `--no-resolv`, `--local-ttl` 5 like ours).
//!
//! Load: a closed loop from one UDP socket in the client's namespace, `--inflight` queries
//! outstanding (A, cycling over `web`, `api`, `web.default.contiv`... each server answers its
//! names), each answer checked (id, NOERROR, at least one record) and timed; a query unanswered
//! within 1 s is counted lost and replaced. Each round measures ours then dnsmasq for
//! `--seconds`; the best round of each is reported (throughput) with its p50/p99.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use clap::Parser;
use contiv_netplugin::testbed::{is_root, Cluster};
use serde_json::json;

#[derive(Debug, Parser)]
#[command(name = "contiv-bench dns")]
struct DnsArgs {
    /// Directory of netmaster, netplugin and contivk8s (default: next to this binary).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// Members of group `web` (the group answer's size).
    #[arg(long, default_value_t = 4)]
    members: usize,
    /// Queries outstanding at once (comma list: each is measured).
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 16])]
    inflight: Vec<usize>,
    /// Measured seconds per server per round.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Rounds (ours, then dnsmasq, each round).
    #[arg(long, default_value_t = 2)]
    rounds: usize,
    /// dnsmasq binary.
    #[arg(long, default_value = "dnsmasq")]
    dnsmasq: String,
}

/// One measured run.
#[derive(Debug, Clone, Copy, Default)]
struct Run {
    qps: f64,
    p50_us: f64,
    p99_us: f64,
    lost: u64,
}

/// A raw A query for `name` with id `id` (RD set, no EDNS).
fn query(id: u16, name: &str) -> Vec<u8> {
    let mut q = Vec::with_capacity(64);
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.').filter(|l| !l.is_empty()) {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    q
}

/// Whether `r` answers query `id` with NOERROR and at least one answer.
fn good_answer(r: &[u8], id: u16) -> bool {
    r.len() >= 12
        && r[..2] == id.to_be_bytes()
        && r[2] & 0x80 != 0
        && r[3] & 0x0f == 0
        && u16::from_be_bytes([r[6], r[7]]) > 0
}

fn pct(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[i.clamp(1, sorted.len()) - 1] as f64
}

/// The closed loop against `server` from the calling thread's namespace.
fn load(server: SocketAddr, names: &[String], inflight: usize, secs: f64) -> anyhow::Result<Run> {
    let sock = UdpSocket::bind("0.0.0.0:0")?;
    sock.connect(server)?;
    sock.set_read_timeout(Some(Duration::from_millis(50)))?;
    let mut sent_at: Vec<Option<Instant>> = vec![None; 65536];
    let mut next_id: u16 = 1;
    let mut lat_us: Vec<u32> = Vec::with_capacity(1 << 20);
    let mut lost = 0u64;
    let send = |sent_at: &mut Vec<Option<Instant>>, next_id: &mut u16| -> anyhow::Result<()> {
        let id = *next_id;
        *next_id = next_id.wrapping_add(1).max(1);
        let name = &names[id as usize % names.len()];
        sent_at[id as usize] = Some(Instant::now());
        sock.send(&query(id, name))?;
        Ok(())
    };
    let warm = Instant::now() + Duration::from_millis(500);
    for _ in 0..inflight {
        send(&mut sent_at, &mut next_id)?;
    }
    let mut buf = [0u8; 1500];
    let mut start = None;
    let mut last_check = Instant::now();
    loop {
        let now = Instant::now();
        if start.is_none() && now >= warm {
            start = Some(now);
            lat_us.clear();
            lost = 0;
        }
        if let Some(s) = start {
            if now.duration_since(s).as_secs_f64() >= secs {
                break;
            }
        }
        match sock.recv(&mut buf) {
            Ok(n) => {
                let id = u16::from_be_bytes([buf[0], buf[1]]);
                if let Some(t) = sent_at[id as usize].take() {
                    if !good_answer(&buf[..n], id) {
                        bail!("bad answer from {server}: {:02x?}", &buf[..n.min(32)]);
                    }
                    lat_us.push(t.elapsed().as_micros().min(u32::MAX as u128) as u32);
                    send(&mut sent_at, &mut next_id)?;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(e.into()),
        }
        // Replace queries unanswered for a second.
        if last_check.elapsed() > Duration::from_millis(200) {
            last_check = Instant::now();
            for i in 0..sent_at.len() {
                if sent_at[i].is_some_and(|t| t.elapsed() > Duration::from_secs(1)) {
                    sent_at[i] = None;
                    lost += 1;
                    send(&mut sent_at, &mut next_id)?;
                }
            }
        }
    }
    let secs_run = start.map_or(secs, |s| s.elapsed().as_secs_f64());
    lat_us.sort_unstable();
    Ok(Run {
        qps: lat_us.len() as f64 / secs_run,
        p50_us: pct(&lat_us, 50.0),
        p99_us: pct(&lat_us, 99.0),
        lost,
    })
}

/// Runs `f` on a thread inside the network namespace `ns`.
fn in_netns<T: Send>(ns: &Path, f: impl FnOnce() -> anyhow::Result<T> + Send) -> anyhow::Result<T> {
    let file = std::fs::File::open(ns).with_context(|| format!("open {}", ns.display()))?;
    std::thread::scope(|s| {
        s.spawn(|| {
            use std::os::fd::AsRawFd;
            // SAFETY: setns on this scoped thread only, with a valid namespace fd.
            if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(std::io::Error::last_os_error().into());
            }
            f()
        })
        .join()
        .map_err(|_| anyhow!("load thread panicked"))?
    })
}

/// dnsmasq in the tenant namespace on `addr`:5353, answering `hosts` only.
fn start_dnsmasq(
    bin: &str,
    tenant_ns: &Path,
    addr: Ipv4Addr,
    hosts: &Path,
) -> anyhow::Result<Child> {
    let child = Command::new("nsenter")
        .arg(format!("--net={}", tenant_ns.display()))
        .arg(bin)
        .args([
            "-k",
            "--no-resolv",
            "--no-hosts",
            "--bind-interfaces",
            "--port=5353",
        ])
        .args([
            "--user=root",
            "--pid-file=",
            "--local-ttl=5",
            "--cache-size=0",
        ])
        .arg(format!("--listen-address={addr}"))
        .arg(format!("--addn-hosts={}", hosts.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("spawn {bin} (apt dnsmasq-base)"))?;
    Ok(child)
}

/// Waits until `server` answers `name` from namespace `ns`.
fn wait_answer(ns: &Path, server: SocketAddr, name: &str) -> anyhow::Result<()> {
    let name = name.to_string();
    in_netns(ns, move || {
        let sock = UdpSocket::bind("0.0.0.0:0")?;
        sock.set_read_timeout(Some(Duration::from_millis(100)))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut buf = [0u8; 1500];
        while Instant::now() < deadline {
            sock.send_to(&query(7, &name), server)?;
            if let Ok(n) = sock.recv(&mut buf) {
                if good_answer(&buf[..n], 7) {
                    return Ok(());
                }
            }
        }
        bail!("{server} does not answer {name}")
    })
}

fn post(c: &Cluster, path: &str, body: serde_json::Value) -> anyhow::Result<()> {
    match c.api("POST", path, Some(&body)).map_err(|e| anyhow!(e))? {
        (200 | 201, _) => Ok(()),
        (code, text) => bail!("POST {path}: {code} {text}"),
    }
}

pub fn main(argv: Vec<String>) -> anyhow::Result<()> {
    let args = DnsArgs::parse_from(std::iter::once("contiv-bench dns".to_string()).chain(argv));
    if !is_root() {
        bail!("contiv-bench dns needs root (it creates network namespaces)");
    }
    let bins = crate::cni::binaries_in(args.bin_dir.as_ref())?;
    let c = crate::cni::cluster(&bins, 1)?;
    let gw = Ipv4Addr::new(10, 46, 0, 1);
    post(
        &c,
        "/api/v1/endpointGroups/default:web/",
        json!({"tenantName": "default", "groupName": "web", "networkName": "bench"}),
    )?;
    let mut members = Vec::new();
    for i in 0..args.members.max(1) {
        let w = c
            .add_workload_in_group(0, &format!("dw{i}"), "default", "bench", Some("web"))
            .map_err(|e| anyhow!(e))?;
        members.push(w.ip);
    }
    let client = c
        .add_workload(0, "dclient", "default", "bench")
        .map_err(|e| anyhow!(e))?;
    post(
        &c,
        "/api/v1/serviceLBs/default:api/",
        json!({"tenantName": "default", "serviceName": "api", "networkName": "bench",
            "selectors": ["app=api"], "ports": ["80:8080:TCP"]}),
    )?;
    let vip = c
        .get_json("/api/v1/inspect/serviceLBs/default:api/")
        .map_err(|e| anyhow!(e))?["Oper"]["serviceVip"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    // dnsmasq: the same names, from a hosts file.
    let dir = tempfile::tempdir()?;
    let hosts = dir.path().join("hosts");
    let mut f = std::fs::File::create(&hosts)?;
    for ip in &members {
        writeln!(f, "{ip} web web.default.contiv")?;
    }
    writeln!(f, "{vip} api api.default.contiv")?;
    drop(f);
    let tenant_ns = c.tenant_ns(0, "default");
    let ours: SocketAddr = (gw, 53).into();
    let theirs: SocketAddr = (gw, 5353).into();
    let names: Vec<String> = ["web", "api", "web.default.contiv", "api.default.contiv"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    wait_answer(&client.netns, ours, "api")?;
    let mut dnsmasq = start_dnsmasq(&args.dnsmasq, &tenant_ns, gw, &hosts)?;
    let result = (|| {
        wait_answer(&client.netns, theirs, "api")?;
        println!(
            "== dns: {} members in web, names {names:?}, {} s per server per round, {} rounds, load {}",
            members.len(),
            args.seconds,
            args.rounds,
            crate::cni::loadavg()
        );
        println!("| in flight | server | queries/s | p50 µs | p99 µs | lost |");
        println!("|---|---|---|---|---|---|");
        for &k in &args.inflight {
            let (mut best_ours, mut best_theirs) = (Run::default(), Run::default());
            for _ in 0..args.rounds.max(1) {
                crate::cni::settle();
                let n = names.clone();
                let o = in_netns(&client.netns, move || load(ours, &n, k, args.seconds))?;
                crate::cni::settle();
                let n = names.clone();
                let t = in_netns(&client.netns, move || load(theirs, &n, k, args.seconds))?;
                if o.qps > best_ours.qps {
                    best_ours = o;
                }
                if t.qps > best_theirs.qps {
                    best_theirs = t;
                }
            }
            for (who, r) in [
                ("ours (hickory-server)", best_ours),
                ("dnsmasq", best_theirs),
            ] {
                println!(
                    "| {k} | {who} | {:.0} | {:.0} | {:.0} | {} |",
                    r.qps, r.p50_us, r.p99_us, r.lost
                );
            }
            println!(
                "| {k} | ours / dnsmasq | {:.2}× | | {:.2}× (lower is better) | |",
                best_ours.qps / best_theirs.qps,
                best_ours.p99_us / best_theirs.p99_us
            );
        }
        println!("== load after: {}", crate::cni::loadavg());
        Ok(())
    })();
    let _ = dnsmasq.kill();
    let _ = dnsmasq.wait();
    drop(c);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_and_answers() {
        let q = query(0x1234, "web.default.contiv");
        assert_eq!(&q[..4], &[0x12, 0x34, 0x01, 0x00]);
        assert_eq!(q.len(), 12 + 20 + 4);
        let mut a = q.clone();
        a[2] |= 0x80;
        a[7] = 1;
        assert!(good_answer(&a, 0x1234));
        assert!(!good_answer(&a, 0x1235));
        a[3] = 3;
        assert!(!good_answer(&a, 0x1234), "NXDOMAIN");
        assert_eq!(pct(&[1, 2, 3, 4], 50.0), 2.0);
        assert_eq!(pct(&[1, 2, 3, 4], 99.0), 4.0);
    }
}
