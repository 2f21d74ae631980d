//! Several netmasters on etcd (issue 9): leader failover time and the fan-out of one change to
//! many watching agents.
//!
//! `contiv-bench failover`: a local etcd (3 members by default, real `etcd` processes started by
//! `contiv_store::testing::EtcdCluster`), 3 netmasters on it (`--etcd`, `--leader-ttl`). Per run: find
//! the leader through `GET /info`, let one client per follower write (`/plugin/allocAddress` on a
//! /16, paced) against the followers (which forward to the leader), `kill -9` the leader, and time
//! from just before the kill until the first write *sent after the kill* is accepted (HTTP 200);
//! then restart the killed netmaster on its port and wait until the cluster is stable again.
//! Failover is bounded by the lease TTL: the new leader can only take the leadership key once
//! etcd expired the dead leader's lease.
//!
//! `contiv-bench fanout`: one netmaster (on a 1-member etcd, or the embedded store with
//! `--etcd-members 0`), N simulated agents, each one TCP connection reading the
//! `GET /plugin/agentWatch` NDJSON stream (hand-written HTTP/1.1 over tokio `TcpStream`, all in one
//! current-thread tokio runtime, like Antrea's agent simulator). Then, one at a time, a change
//! (an endpoint group created) and, for every watcher, the time from the write's send (and from its
//! acknowledgement) until that watcher read the event line for it. Percentiles over all
//! watcher × change samples.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use clap::Parser;
use serde_json::Value;

use crate::load::SeqClient;
use crate::server::{self, Spawned};

/// Nearest-rank percentile of `v` (sorted in place), in ms.
fn pct_ms(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let rank = ((p / 100.0) * v.len() as f64).ceil().max(1.0) as usize;
    v[rank.min(v.len()) - 1]
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// POST with retries until HTTP 200 or `limit` (a freshly started cluster may have no leader yet).
fn post_until_ok(addr: SocketAddr, path: &str, body: &str, limit: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    let mut last = String::new();
    while Instant::now() < deadline {
        let mut c = SeqClient::new(addr);
        match c.call("POST", path, Some(body)) {
            Ok((200, _)) => return Ok(()),
            Ok((status, text)) => last = format!("HTTP {status}: {}", text.trim()),
            Err(e) => last = format!("{e:#}"),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("POST {path} on {addr}: not accepted within {limit:?}: {last}")
}

// ---------------------------------------------------------------------------------------------
// failover

#[derive(Debug, Parser)]
#[command(
    name = "contiv-bench failover",
    about = "Leader failover time of several netmasters on etcd: kill -9 the leader, time until the first write sent after the kill is accepted"
)]
struct FailoverArgs {
    /// Runs (leader kills).
    #[arg(long, default_value_t = 10)]
    runs: usize,
    /// netmaster --leader-ttl (seconds): failover is bounded by it.
    #[arg(long, default_value_t = 10)]
    leader_ttl: u64,
    /// netmasters sharing the etcd.
    #[arg(long, default_value_t = 3)]
    netmasters: usize,
    /// etcd members.
    #[arg(long, default_value_t = 3)]
    etcd_members: usize,
    /// Pause of each writer between two writes, ms (the resolution of the measurement).
    #[arg(long, default_value_t = 5)]
    interval_ms: u64,
    /// Seconds of steady writes before each kill.
    #[arg(long, default_value_t = 1.0)]
    steady: f64,
    /// netmaster binary (default: the one next to this binary).
    #[arg(long)]
    netmaster: Option<PathBuf>,
}

/// One write attempt of a failover client.
#[derive(Debug, Clone, Copy)]
struct Attempt {
    sent: Instant,
    done: Instant,
    ok: bool,
}

/// `"current-state"` of the netmaster at `addr` (`leader` / `follower`), or None if it does not
/// answer.
fn role(addr: SocketAddr) -> Option<(String, String)> {
    let mut c = SeqClient::new(addr);
    match c.call("GET", "/info", None) {
        Ok((200, body)) => {
            let v: Value = serde_json::from_str(&body).ok()?;
            Some((
                v.get("current-state")?.as_str()?.to_string(),
                v.get("leader-ip")?.as_str().unwrap_or("").to_string(),
            ))
        }
        _ => None,
    }
}

/// Waits until every running netmaster answers, exactly one leads and every other one follows a
/// known leader; returns the leader's index.
fn wait_stable(ports: &[u16], running: &[bool], limit: Duration) -> anyhow::Result<usize> {
    let deadline = Instant::now() + limit;
    loop {
        let roles: Vec<Option<(String, String)>> = ports
            .iter()
            .zip(running)
            .map(|(&p, &r)| if r { role(loopback(p)) } else { None })
            .collect();
        let leaders: Vec<usize> = roles
            .iter()
            .enumerate()
            .filter(|(_, r)| matches!(r, Some((s, _)) if s == "leader"))
            .map(|(i, _)| i)
            .collect();
        let followers_ok = roles
            .iter()
            .zip(running)
            .filter(|(_, &r)| r)
            .all(|(r, _)| match r {
                Some((s, leader)) => s == "leader" || (s == "follower" && !leader.is_empty()),
                None => false,
            });
        if leaders.len() == 1 && followers_ok {
            return Ok(leaders[0]);
        }
        if Instant::now() > deadline {
            bail!("no stable leadership within {limit:?}: {roles:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A client writing (allocAddress) to the netmaster at `addr` until `stop`, each attempt recorded.
fn writer(
    addr: SocketAddr,
    interval: Duration,
    stop: Arc<AtomicBool>,
    log: Arc<Mutex<Vec<Attempt>>>,
) {
    let body = r#"{"NetworkID":"big.default","AddressPool":"","PreferredIPv4Address":""}"#;
    let mut client = SeqClient::new(addr);
    while !stop.load(Ordering::Relaxed) {
        let sent = Instant::now();
        let ok = match client.call("POST", "/plugin/allocAddress", Some(body)) {
            Ok((status, _)) => status == 200,
            Err(_) => {
                client = SeqClient::new(addr);
                false
            }
        };
        let done = Instant::now();
        log.lock()
            .expect("attempt log")
            .push(Attempt { sent, done, ok });
        std::thread::sleep(interval);
    }
}

struct RunResult {
    killed: usize,
    new_leader: usize,
    failover: Duration,
    /// Attempts sent after the kill that were refused or failed before the first success.
    refused: usize,
    /// Last write accepted before the kill → first accepted after it (the clients' gap).
    gap: Duration,
}

pub fn failover_main(argv: Vec<String>) -> anyhow::Result<()> {
    let args =
        FailoverArgs::parse_from(std::iter::once("contiv-bench failover".to_string()).chain(argv));
    if args.runs == 0 || args.runs > 100 {
        bail!("--runs must be 1..=100");
    }
    if !(2..=8).contains(&args.netmasters) || !(1..=7).contains(&args.etcd_members) {
        bail!("--netmasters must be 2..=8 and --etcd-members 1..=7");
    }
    if !(2..=300).contains(&args.leader_ttl) {
        bail!("--leader-ttl must be 2..=300 (as netmaster's)");
    }
    let bin = args
        .netmaster
        .clone()
        .unwrap_or_else(server::default_netmaster);
    let cluster = contiv_store::testing::EtcdCluster::start(args.etcd_members)
        .context("starting the local etcd cluster")?;
    let endpoints = cluster.endpoints().join(",");
    eprintln!(
        "etcd: {} member(s) at {endpoints}; {} netmasters, --leader-ttl {}",
        cluster.len(),
        args.netmasters,
        args.leader_ttl
    );
    let nm_args = vec![
        "--etcd".to_string(),
        endpoints.clone(),
        "--leader-ttl".to_string(),
        args.leader_ttl.to_string(),
    ];
    let mut ports = Vec::new();
    let mut nms: Vec<Option<Spawned>> = Vec::new();
    for _ in 0..args.netmasters {
        let port = server::free_port()?;
        nms.push(Some(Spawned::start_at(&bin, port, &nm_args)?));
        ports.push(port);
    }
    let mut running = vec![true; args.netmasters];
    let stable_limit = Duration::from_secs(3 * args.leader_ttl + 30);
    let leader = wait_stable(&ports, &running, stable_limit)?;
    post_until_ok(
        loopback(ports[leader]),
        "/api/v1/networks/default:big/",
        &crate::network_body("big", "10.64.0.0/16"),
        Duration::from_secs(20),
    )?;

    let interval = Duration::from_millis(args.interval_ms);
    let mut results: Vec<RunResult> = Vec::new();
    for run in 1..=args.runs {
        let leader = wait_stable(&ports, &running, stable_limit)?;
        let stop = Arc::new(AtomicBool::new(false));
        let log = Arc::new(Mutex::new(Vec::new()));
        let writers: Vec<_> = (0..args.netmasters)
            .filter(|&i| i != leader)
            .map(|i| {
                let (stop, log, addr) = (stop.clone(), log.clone(), loopback(ports[i]));
                std::thread::spawn(move || writer(addr, interval, stop, log))
            })
            .collect();
        std::thread::sleep(Duration::from_secs_f64(args.steady));
        let before_ok = log.lock().expect("log").iter().filter(|a| a.ok).count();
        if before_ok == 0 {
            stop.store(true, Ordering::Relaxed);
            bail!("run {run}: no write accepted before the kill");
        }

        let killed_pid = nms[leader].as_ref().map_or(0, |s| s.pid);
        let t_kill = Instant::now();
        if let Some(s) = nms[leader].as_mut() {
            s.kill9();
        }
        running[leader] = false;

        // Wait for the first write sent after the kill to be accepted.
        let limit = Duration::from_secs(3 * args.leader_ttl + 30);
        let first = loop {
            let found = {
                let log = log.lock().expect("log");
                log.iter()
                    .filter(|a| a.ok && a.sent >= t_kill)
                    .map(|a| a.done)
                    .min()
            };
            if let Some(done) = found {
                break done;
            }
            if t_kill.elapsed() > limit {
                stop.store(true, Ordering::Relaxed);
                bail!("run {run}: no write accepted within {limit:?} of the kill");
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        stop.store(true, Ordering::Relaxed);
        for w in writers {
            let _ = w.join();
        }
        let log = log.lock().expect("log").clone();
        let refused = log
            .iter()
            .filter(|a| !a.ok && a.sent >= t_kill && a.done <= first)
            .count();
        let last_before = log
            .iter()
            .filter(|a| a.ok && a.done <= t_kill)
            .map(|a| a.done)
            .max()
            .unwrap_or(t_kill);
        let failover = first - t_kill;
        drop(nms[leader].take());

        // Which netmaster leads now (the first stable view without the killed one).
        let new_leader = wait_stable(&ports, &running, stable_limit)?;
        eprintln!(
            "run {run}: killed netmaster {leader} (pid {killed_pid}, 127.0.0.1:{}), first write accepted after {:.0} ms ({refused} attempts refused meanwhile), new leader {new_leader}",
            ports[leader],
            failover.as_secs_f64() * 1e3,
        );
        results.push(RunResult {
            killed: leader,
            new_leader,
            failover,
            refused,
            gap: first - last_before,
        });

        // Restart the killed one where it ran; it joins as a follower.
        nms[leader] = Some(Spawned::start_at(&bin, ports[leader], &nm_args)?);
        running[leader] = true;
    }
    drop(nms);
    drop(cluster);

    let mut ms: Vec<f64> = results
        .iter()
        .map(|r| r.failover.as_secs_f64() * 1e3)
        .collect();
    let mut gaps: Vec<f64> = results.iter().map(|r| r.gap.as_secs_f64() * 1e3).collect();
    println!();
    println!(
        "failover (kill -9 of the leader → first write sent after the kill accepted), {} runs, {} etcd members, {} netmasters, --leader-ttl {} s, writers every {} ms:",
        results.len(),
        args.etcd_members,
        args.netmasters,
        args.leader_ttl,
        args.interval_ms
    );
    for (i, r) in results.iter().enumerate() {
        println!(
            "  run {}: killed {} → leader {}: {:.0} ms ({} refused attempts; clients' gap {:.0} ms)",
            i + 1,
            r.killed,
            r.new_leader,
            r.failover.as_secs_f64() * 1e3,
            r.refused,
            r.gap.as_secs_f64() * 1e3
        );
    }
    let (p50, p90, max) = (
        pct_ms(&mut ms, 50.0),
        pct_ms(&mut ms, 90.0),
        pct_ms(&mut ms, 100.0),
    );
    let min = ms.first().copied().unwrap_or(f64::NAN);
    println!(
        "failover ms: p50 {p50:.0}, p90 {p90:.0}, min {min:.0}, max {max:.0} (lease TTL {} s; bound 2 × TTL = {} ms: {})",
        args.leader_ttl,
        2 * args.leader_ttl * 1000,
        if max <= (2 * args.leader_ttl * 1000) as f64 {
            "met"
        } else {
            "NOT met"
        }
    );
    println!(
        "clients' gap ms (last accepted before the kill → first accepted after): p50 {:.0}, max {:.0}",
        pct_ms(&mut gaps, 50.0),
        pct_ms(&mut gaps, 100.0)
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// fanout

#[derive(Debug, Parser)]
#[command(
    name = "contiv-bench fanout",
    about = "One change fanned out to N simulated agents watching GET /plugin/agentWatch"
)]
struct FanoutArgs {
    /// Simulated agents (one TCP connection each).
    #[arg(long, default_value_t = 1000)]
    watchers: usize,
    /// Changes, one at a time (each: an endpoint group created).
    #[arg(long, default_value_t = 20)]
    changes: usize,
    /// etcd members for the netmaster's store (0: the embedded store).
    #[arg(long, default_value_t = 1)]
    etcd_members: usize,
    /// Pause between two changes, ms.
    #[arg(long, default_value_t = 200)]
    pause_ms: u64,
    /// netmaster binary (default: the one next to this binary).
    #[arg(long)]
    netmaster: Option<PathBuf>,
    /// Extra argument for the spawned netmaster (repeatable).
    #[arg(long = "netmaster-arg", allow_hyphen_values = true)]
    netmaster_args: Vec<String>,
}

/// One event line a watcher read: (watcher, revision, when it was read).
type Seen = (usize, u64, Instant);

/// `"revision":N` of an event line.
fn revision_of(line: &[u8]) -> Option<u64> {
    let key = b"\"revision\":";
    let at = line.windows(key.len()).position(|w| w == key)? + key.len();
    let digits: Vec<u8> = line[at..]
        .iter()
        .copied()
        .take_while(u8::is_ascii_digit)
        .collect();
    std::str::from_utf8(&digits).ok()?.parse().ok()
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// De-chunks HTTP/1.1 chunked data incrementally: feed raw bytes, get body bytes out.
#[derive(Default)]
struct Dechunk {
    raw: Vec<u8>,
    /// Body bytes still to take from the current chunk (+2 for its CRLF once it is taken).
    remaining: usize,
    in_chunk: bool,
}

impl Dechunk {
    /// Appends `data` and moves every complete body byte into `out`. Err on a malformed stream,
    /// Ok(false) at the final (zero-size) chunk.
    fn feed(&mut self, data: &[u8], out: &mut Vec<u8>) -> anyhow::Result<bool> {
        self.raw.extend_from_slice(data);
        let mut pos = 0;
        loop {
            if self.in_chunk {
                let take = self.remaining.min(self.raw.len() - pos);
                out.extend_from_slice(&self.raw[pos..pos + take]);
                pos += take;
                self.remaining -= take;
                if self.remaining > 0 {
                    break;
                }
                // The chunk's trailing CRLF.
                if self.raw.len() - pos < 2 {
                    break;
                }
                pos += 2;
                self.in_chunk = false;
            }
            let Some(i) = find(&self.raw[pos..], b"\r\n") else {
                break;
            };
            let size_str = std::str::from_utf8(&self.raw[pos..pos + i])?;
            let size = usize::from_str_radix(size_str.split(';').next().unwrap_or("").trim(), 16)
                .with_context(|| format!("bad chunk size {size_str:?}"))?;
            pos += i + 2;
            if size == 0 {
                return Ok(false);
            }
            self.remaining = size;
            self.in_chunk = true;
        }
        self.raw.drain(..pos);
        Ok(true)
    }
}

/// One simulated agent: reads the watch stream on `stream` (request already sent) and reports
/// every event line with changes.
async fn watch(
    id: usize,
    mut stream: tokio::net::TcpStream,
    ready: Arc<AtomicUsize>,
    tx: tokio::sync::mpsc::UnboundedSender<Seen>,
) -> anyhow::Result<()> {
    use tokio::io::AsyncReadExt;
    let mut buf = vec![0u8; 64 * 1024];
    let mut head = Vec::new();
    // The response head.
    let body_start = loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            bail!("watcher {id}: connection closed before the response head");
        }
        head.extend_from_slice(&buf[..n]);
        if let Some(i) = find(&head, b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head_text = String::from_utf8_lossy(&head[..body_start]).to_ascii_lowercase();
    if !head_text.starts_with("http/1.1 200") || !head_text.contains("transfer-encoding: chunked") {
        bail!(
            "watcher {id}: unexpected response head: {}",
            head_text.lines().next().unwrap_or("")
        );
    }
    ready.fetch_add(1, Ordering::SeqCst);
    let mut dechunk = Dechunk::default();
    let mut body = Vec::new();
    let mut pending = head[body_start..].to_vec();
    loop {
        let at = Instant::now();
        if !dechunk.feed(&pending, &mut body)? {
            return Ok(());
        }
        while let Some(nl) = body.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = body.drain(..=nl).collect();
            if find(&line, b"\"resync\":true").is_some() {
                bail!("watcher {id}: told to resync");
            }
            if find(&line, b"\"changes\"").is_some() {
                let rev = revision_of(&line).ok_or_else(|| anyhow!("event without revision"))?;
                let _ = tx.send((id, rev, at));
            }
        }
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        pending.clear();
        pending.extend_from_slice(&buf[..n]);
    }
}

/// Raises the soft open-files limit to the hard one (1,000 watchers need > 1,024 descriptors; the
/// spawned netmaster inherits it).
fn raise_nofile(need: u64) -> anyhow::Result<()> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return Err(std::io::Error::last_os_error().into());
        }
        if lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error().into());
            }
        }
    }
    if lim.rlim_cur < need {
        bail!(
            "open files limit {} < {need} needed: raise it (ulimit -n) before running",
            lim.rlim_cur
        );
    }
    Ok(())
}

pub fn fanout_main(argv: Vec<String>) -> anyhow::Result<()> {
    let args =
        FanoutArgs::parse_from(std::iter::once("contiv-bench fanout".to_string()).chain(argv));
    if args.watchers == 0 || args.watchers > 10_000 {
        bail!("--watchers must be 1..=10000");
    }
    if args.changes == 0 || args.changes > 1000 {
        bail!("--changes must be 1..=1000");
    }
    if args.etcd_members > 7 {
        bail!("--etcd-members must be 0..=7");
    }
    raise_nofile(args.watchers as u64 + 256)?;
    let bin = args
        .netmaster
        .clone()
        .unwrap_or_else(server::default_netmaster);
    let mut nm_args = args.netmaster_args.clone();
    let cluster = if args.etcd_members > 0 {
        let c = contiv_store::testing::EtcdCluster::start(args.etcd_members)
            .context("starting the local etcd cluster")?;
        nm_args.extend(["--etcd".to_string(), c.endpoints().join(",")]);
        Some(c)
    } else {
        None
    };
    let store = match &cluster {
        Some(c) => format!("etcd, {} member(s)", c.len()),
        None => "embedded store".to_string(),
    };
    let nm = Spawned::start(&bin, &nm_args)?;
    let port: u16 = nm
        .url
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| anyhow!("no port in {}", nm.url))?;
    let addr = loopback(port);
    eprintln!(
        "netmaster {} (pid {}) on the {store}; {} watchers, {} changes",
        nm.url, nm.pid, args.watchers, args.changes
    );
    post_until_ok(
        addr,
        "/api/v1/networks/default:n0/",
        &crate::network_body("n0", "10.0.0.0/24"),
        Duration::from_secs(20),
    )?;
    let mut client = SeqClient::new(addr);
    let (status, snap) = client.call("GET", "/plugin/agentState", None)?;
    if status != 200 {
        bail!("GET /plugin/agentState: HTTP {status}");
    }
    let after = serde_json::from_str::<Value>(&snap)?
        .get("revision")
        .and_then(Value::as_u64)
        .ok_or_else(|| anyhow!("agentState without revision"))?;

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (samples, per_change, rss_kb) = rt.block_on(async {
        use tokio::io::AsyncWriteExt;
        let ready = Arc::new(AtomicUsize::new(0));
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Seen>();
        let request = format!(
            "GET /plugin/agentWatch?after={after} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: contiv-bench-fanout\r\n\r\n"
        );
        let mut tasks = tokio::task::JoinSet::new();
        for id in 0..args.watchers {
            let mut s = tokio::net::TcpStream::connect(addr)
                .await
                .with_context(|| format!("watcher {id}: connecting"))?;
            s.set_nodelay(true)?;
            s.write_all(request.as_bytes()).await?;
            tasks.spawn(watch(id, s, ready.clone(), tx.clone()));
        }
        drop(tx);
        let deadline = Instant::now() + Duration::from_secs(30);
        while ready.load(Ordering::SeqCst) < args.watchers {
            if let Some(Ok(Err(e))) = tasks.try_join_next() {
                return Err(e);
            }
            if Instant::now() > deadline {
                bail!(
                    "only {} of {} watchers got their stream within 30 s",
                    ready.load(Ordering::SeqCst),
                    args.watchers
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        eprintln!("{} watchers streaming from revision {after}", args.watchers);
        tokio::time::sleep(Duration::from_millis(500)).await;

        // (from send ms, from ack ms) per watcher × change; per change: (write ms, last watcher
        // from send ms).
        let mut samples: Vec<(f64, f64)> = Vec::new();
        let mut per_change: Vec<(f64, f64)> = Vec::new();
        let mut last_rev = after;
        let mut client = Some(SeqClient::new(addr));
        for k in 1..=args.changes {
            let mut c = client.take().expect("client");
            let (c, sent, acked, res) = tokio::task::spawn_blocking(move || {
                let name = format!("fan{k}");
                let body = format!(
                    r#"{{"tenantName":"default","groupName":"{name}","networkName":"n0"}}"#
                );
                let sent = Instant::now();
                let res = c.call(
                    "POST",
                    &format!("/api/v1/endpointGroups/default:{name}/"),
                    Some(&body),
                );
                (c, sent, Instant::now(), res)
            })
            .await?;
            client = Some(c);
            match res? {
                (200, _) => {}
                (status, text) => bail!("change {k}: HTTP {status}: {}", text.trim()),
            }
            // Every watcher's line for this change (one transaction: one revision).
            let mut got: Vec<Option<Instant>> = vec![None; args.watchers];
            let mut count = 0;
            let mut rev = None;
            let limit = Instant::now() + Duration::from_secs(30);
            while count < args.watchers {
                let seen = tokio::time::timeout_at(limit.into(), rx.recv()).await;
                let (id, r, at) = match seen {
                    Ok(Some(x)) => x,
                    Ok(None) => bail!("change {k}: every watcher ended"),
                    Err(_) => bail!(
                        "change {k}: only {count} of {} watchers saw it within 30 s",
                        args.watchers
                    ),
                };
                if r <= last_rev {
                    continue;
                }
                match rev {
                    None => rev = Some(r),
                    Some(x) if x != r => {
                        bail!("change {k}: watchers saw revisions {x} and {r} (another writer?)")
                    }
                    _ => {}
                }
                if got[id].replace(at).is_none() {
                    count += 1;
                }
            }
            last_rev = rev.unwrap_or(last_rev);
            let ms = |a: Instant, b: Instant| {
                if a >= b {
                    (a - b).as_secs_f64() * 1e3
                } else {
                    -((b - a).as_secs_f64() * 1e3)
                }
            };
            let mut last = 0.0f64;
            for at in got.into_iter().flatten() {
                let (s, a) = (ms(at, sent), ms(at, acked));
                last = last.max(s);
                samples.push((s, a));
            }
            per_change.push((ms(acked, sent), last));
            tokio::time::sleep(Duration::from_millis(args.pause_ms)).await;
        }
        let rss_kb = crate::read_rss(nm.pid).map(|r| r.rss_kb).unwrap_or(0);
        tasks.abort_all();
        Ok::<_, anyhow::Error>((samples, per_change, rss_kb))
    })?;
    drop(rt);
    drop(nm);
    drop(cluster);

    let mut from_send: Vec<f64> = samples.iter().map(|s| s.0).collect();
    let mut from_ack: Vec<f64> = samples.iter().map(|s| s.1).collect();
    let mut write_ms: Vec<f64> = per_change.iter().map(|c| c.0).collect();
    let mut last_ms: Vec<f64> = per_change.iter().map(|c| c.1).collect();
    println!();
    println!(
        "fan-out: {} watchers × {} changes = {} samples, netmaster on the {store}:",
        args.watchers,
        args.changes,
        samples.len()
    );
    let line = |name: &str, v: &mut Vec<f64>| {
        println!(
            "  {name}: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            pct_ms(v, 50.0),
            pct_ms(v, 99.0),
            pct_ms(v, 100.0)
        )
    };
    line("write send → watcher read the event", &mut from_send);
    line("write acknowledged → watcher read the event", &mut from_ack);
    line("the write itself (send → 200)", &mut write_ms);
    line(
        "write send → the last of the watchers read it",
        &mut last_ms,
    );
    let p99 = pct_ms(&mut from_send, 99.0);
    println!(
        "target p99 ≤ 200 ms (from send): {} ({p99:.2} ms); netmaster RSS with {} streams: {:.1} MiB",
        if p99 <= 200.0 { "met" } else { "NOT met" },
        args.watchers,
        rss_kb as f64 / 1024.0
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dechunk_across_reads() {
        let mut d = Dechunk::default();
        let mut out = Vec::new();
        let wire = b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
        let mut more = true;
        for b in wire.chunks(3) {
            more = d.feed(b, &mut out).unwrap();
            if !more {
                break;
            }
        }
        assert!(!more);
        assert_eq!(out, b"hello world");
    }

    #[test]
    fn revision_of_event_line() {
        assert_eq!(
            revision_of(br#"{"revision":1234,"changes":[{"key":"k","value":null}]}"#),
            Some(1234)
        );
        assert_eq!(revision_of(br#"{"changes":[]}"#), None);
    }

    #[test]
    fn percentiles_nearest_rank() {
        let mut v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(pct_ms(&mut v, 50.0), 50.0);
        assert_eq!(pct_ms(&mut v, 99.0), 99.0);
        assert_eq!(pct_ms(&mut v, 100.0), 100.0);
    }
}
