//! `contiv-bench services`: east-west service load balancing, each figure against its reference
//! measured in the same run.
//!
//! 1. **Connect latency**: a 1-host [`Cluster`], service `echo` (`80:8080:TCP`, `5201:5201:TCP`)
//!    with one provider, one client on the same host. Sequential TCP connects (connect, then
//!    close) from the client to `VIP:80` and directly to `provider:8080`, alternating blocks of
//!    `--block` so both see the same machine; p50/p99 of each and the ratio.
//! 2. **Throughput**: iperf3 (single stream, `--iperf-secs`) from the client through `VIP:5201`
//!    and directly to `provider:5201`, alternating, `--iperf-rounds` each; medians and the ratio.
//! 3. **Provider change on `--hosts` hosts**: a fresh cluster, service `web` (`80:8080:TCP`) with
//!    `--providers` providers and one client per host (so every host has the tenant's namespace
//!    and programs the service). One provider is removed and added back in turn: `--via cni`
//!    (default) by CNI DEL and ADD, `--via label` by toggling its label (`app=web` ↔ `app=off`,
//!    through `/plugin/updateEndpoint`, as a runtime would). The figure is the time from the
//!    call's return (netmaster acknowledged the write) until the last host's `ip contiv_lb` table
//!    has the new provider set. Each host's tables are watched with an nftables monitor socket
//!    (`NFNLGRP_NFTABLES`) opened in its tenant namespace: the table is replaced whole per change,
//!    so the `NEWCHAIN p_*` events of a transaction that touches `contiv_lb` count its providers,
//!    and the transaction's `NEWGEN` (sent after the commit) is the moment the host enforces it.
//!    No polling, nothing spawned per sample.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use clap::Parser;
use contiv_netplugin::testbed::{in_netns, is_root, Cluster, Workload};
use serde_json::json;

#[derive(Debug, Parser)]
#[command(name = "contiv-bench services")]
struct SvcArgs {
    /// Directory of netmaster, netplugin and contivk8s (default: next to this binary).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// Connects per target (VIP, direct).
    #[arg(long, default_value_t = 5000)]
    connects: usize,
    /// Connects per alternating block.
    #[arg(long, default_value_t = 250)]
    block: usize,
    /// iperf3 rounds per target.
    #[arg(long, default_value_t = 3)]
    iperf_rounds: usize,
    /// Seconds per iperf3 run.
    #[arg(long, default_value_t = 5)]
    iperf_secs: u32,
    /// Hosts of the provider-change test.
    #[arg(long, default_value_t = 10)]
    hosts: usize,
    /// Providers of the provider-change test's service (one of them toggles).
    #[arg(long, default_value_t = 3)]
    providers: usize,
    /// Provider changes measured.
    #[arg(long, default_value_t = 200)]
    changes: usize,
    /// Pause between changes (ms).
    #[arg(long, default_value_t = 100)]
    gap_ms: u64,
    /// How the provider changes: `cni` (DEL, then ADD again) or `label` (its labels toggled
    /// through `/plugin/updateEndpoint`).
    #[arg(long, default_value = "cni", value_parser = ["cni", "label"])]
    via: String,
    /// Which parts to run (comma list of connect, iperf, change).
    #[arg(long, value_delimiter = ',', default_values_t = ["connect".to_string(), "iperf".to_string(), "change".to_string()])]
    only: Vec<String>,
}

fn post(c: &Cluster, path: &str, body: serde_json::Value) -> anyhow::Result<()> {
    match c.api("POST", path, Some(&body)).map_err(|e| anyhow!(e))? {
        (200 | 201, _) => Ok(()),
        (code, text) => bail!("POST {path}: {code} {text}"),
    }
}

fn vip_of(c: &Cluster, svc: &str) -> anyhow::Result<Ipv4Addr> {
    let v = c
        .get_json(&format!("/api/v1/inspect/serviceLBs/default:{svc}/"))
        .map_err(|e| anyhow!(e))?;
    v["Oper"]["serviceVip"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow!("service {svc} without a VIP: {v}"))
}

fn labelled(c: &Cluster, host: usize, name: &str, app: &str) -> anyhow::Result<Workload> {
    c.add_labelled(host, name, ("default", "bench"), &[("app", app)])
        .map_err(|e| anyhow!(e))
}

fn pct_us(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[i.clamp(1, sorted.len()) - 1]
}

/// A TCP server in `ns` on `addr`: accepts and closes, until dropped.
struct Acceptor(Arc<AtomicBool>);

impl Acceptor {
    fn start(ns: &Path, addr: SocketAddr) -> anyhow::Result<Acceptor> {
        let l = in_netns(ns, || TcpListener::bind(addr))
            .map_err(|e| anyhow!(e))?
            .with_context(|| format!("bind {addr}"))?;
        l.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 16];
            while !s.load(Ordering::Relaxed) {
                match l.accept() {
                    // Wait for the client's close (so the client side closes first, as a
                    // client of a request/response service would).
                    Ok((mut c, _)) => {
                        let _ = c.set_nonblocking(false);
                        let _ = c.set_read_timeout(Some(Duration::from_secs(1)));
                        let _ = c.read(&mut buf);
                    }
                    Err(_) => std::thread::sleep(Duration::from_micros(200)),
                }
            }
        });
        Ok(Acceptor(stop))
    }
}

impl Drop for Acceptor {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// `n` sequential connects (+ close) from the calling thread's namespace; µs each.
fn connects(to: SocketAddr, n: usize) -> anyhow::Result<Vec<f64>> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let mut s = TcpStream::connect_timeout(&to, Duration::from_secs(2))
            .with_context(|| format!("connect {to}"))?;
        out.push(t.elapsed().as_secs_f64() * 1e6);
        let _ = s.write_all(b"x");
        drop(s);
    }
    Ok(out)
}

/// One iperf3 run (single stream) from `client` to `target:port`, server in `server`; Gbit/s.
fn iperf(
    server: &Path,
    client: &Path,
    target: Ipv4Addr,
    port: u16,
    secs: u32,
) -> anyhow::Result<f64> {
    crate::cni::settle();
    let mut srv = Command::new("nsenter")
        .arg(format!("--net={}", server.display()))
        .args(["iperf3", "-s", "-1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("iperf3 server (apt iperf3)")?;
    let deadline = Instant::now() + Duration::from_secs(5);
    let result = loop {
        std::thread::sleep(Duration::from_millis(200));
        let out = Command::new("nsenter")
            .arg(format!("--net={}", client.display()))
            .args(["iperf3", "-c", &target.to_string(), "-p", &port.to_string()])
            .args(["-t", &secs.to_string(), "-J"])
            .output()
            .context("iperf3 client")?;
        let v: serde_json::Value =
            serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
        if let Some(bps) = v["end"]["sum_received"]["bits_per_second"].as_f64() {
            break Ok(bps / 1e9);
        }
        if Instant::now() > deadline {
            break Err(anyhow!(
                "iperf3 to {target}:{port} failed: {}",
                String::from_utf8_lossy(&out.stdout)
            ));
        }
    };
    let _ = srv.kill();
    let _ = srv.wait();
    result
}

fn datapath(args: &SvcArgs, bins: &contiv_netplugin::testbed::Binaries) -> anyhow::Result<()> {
    let c = crate::cni::cluster(bins, 1)?;
    post(
        &c,
        "/api/v1/serviceLBs/default:echo/",
        json!({"tenantName": "default", "serviceName": "echo", "networkName": "bench",
            "selectors": ["app=echo"], "ports": ["80:8080:TCP", "5201:5201:TCP"]}),
    )?;
    let p = labelled(&c, 0, "sp0", "echo")?;
    let client = labelled(&c, 0, "scl", "client")?;
    let vip = vip_of(&c, "echo")?;
    let _acc = Acceptor::start(&p.netns, (p.ip, 8080).into())?;
    let via: SocketAddr = (vip, 80).into();
    let direct: SocketAddr = (p.ip, 8080).into();
    // Until the VIP answers (the agent programs the table asynchronously).
    let deadline = Instant::now() + Duration::from_secs(10);
    while in_netns(&client.netns, || connects(via, 1))
        .map_err(|e| anyhow!(e))?
        .is_err()
    {
        if Instant::now() > deadline {
            bail!("VIP {vip} does not answer");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    println!(
        "== services: 1 host, client and provider on it, VIP {vip}, provider {}, load {}",
        p.ip,
        crate::cni::loadavg()
    );
    if args.only.iter().any(|o| o == "connect") {
        crate::cni::settle();
        let (mut v, mut d) = (Vec::new(), Vec::new());
        let block = args.block.max(1);
        while v.len() < args.connects {
            let n = block.min(args.connects - v.len());
            v.extend(in_netns(&client.netns, || connects(via, n)).map_err(|e| anyhow!(e))??);
            d.extend(in_netns(&client.netns, || connects(direct, n)).map_err(|e| anyhow!(e))??);
        }
        for s in [&mut v, &mut d] {
            s.sort_by(f64::total_cmp);
        }
        println!(
            "\n=== TCP connect (+close), {} sequential each, alternating blocks of {block}",
            v.len()
        );
        println!("| target | p50 µs | p99 µs | max µs |");
        println!("|---|---|---|---|");
        for (who, s) in [("VIP (DNAT)", &v), ("provider directly", &d)] {
            println!(
                "| {who} | {:.0} | {:.0} | {:.0} |",
                pct_us(s, 50.0),
                pct_us(s, 99.0),
                pct_us(s, 100.0)
            );
        }
        println!(
            "| VIP / direct | {:.2}× | {:.2}× | |",
            pct_us(&v, 50.0) / pct_us(&d, 50.0),
            pct_us(&v, 99.0) / pct_us(&d, 99.0)
        );
    }
    if args.only.iter().any(|o| o == "iperf") {
        if Command::new("iperf3").arg("--version").output().is_err() {
            bail!("iperf3 not installed (apt iperf3)");
        }
        let (mut v, mut d) = (Vec::new(), Vec::new());
        for _ in 0..args.iperf_rounds.max(1) {
            v.push(iperf(&p.netns, &client.netns, vip, 5201, args.iperf_secs)?);
            d.push(iperf(&p.netns, &client.netns, p.ip, 5201, args.iperf_secs)?);
        }
        println!(
            "\n=== iperf3 single stream, {} s, {} rounds each (alternating), Gbit/s",
            args.iperf_secs,
            v.len()
        );
        println!("| target | runs | median |");
        println!("|---|---|---|");
        let (mv, md) = (crate::cni::median(v.clone()), crate::cni::median(d.clone()));
        for (who, s, m) in [("VIP (DNAT)", &v, mv), ("provider directly", &d, md)] {
            let runs: Vec<String> = s.iter().map(|x| format!("{x:.2}")).collect();
            println!("| {who} | {} | {m:.2} |", runs.join(" "));
        }
        println!("| VIP / direct | | {:.2}× |", mv / md);
    }
    drop(c);
    Ok(())
}

// ---- nftables monitor ----

const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFT_MSG_NEWCHAIN: u16 = 3;
const NFT_MSG_NEWGEN: u16 = 15;
const NFNLGRP_NFTABLES: libc::c_int = 7;
/// `NFTA_*_TABLE` (tables: `NFTA_TABLE_NAME`) is attribute 1 of every nftables object message.
const NFTA_TABLE: u16 = 1;
const NFTA_CHAIN_NAME: u16 = 3;

/// What one transaction did to table `contiv_lb`, seen in a namespace.
#[derive(Debug, Default)]
struct Txn {
    touched: bool,
    provider_chains: usize,
}

/// Attributes of an nftables message body (after nfgenmsg): (type, payload).
fn attrs(mut b: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while b.len() >= 4 {
        let len = u16::from_ne_bytes([b[0], b[1]]) as usize;
        let kind = u16::from_ne_bytes([b[2], b[3]]) & 0x3fff;
        if len < 4 || len > b.len() {
            break;
        }
        out.push((kind, &b[4..len]));
        b = &b[((len + 3) & !3).min(b.len())..];
    }
    out
}

fn c_str(b: &[u8]) -> &[u8] {
    b.split(|&x| x == 0).next().unwrap_or(b)
}

/// Feeds one datagram of events; returns the provider count of each finished transaction that
/// touched `contiv_lb`.
fn feed(buf: &[u8], txn: &mut Txn) -> Vec<usize> {
    let mut done = Vec::new();
    let mut b = buf;
    while b.len() >= 16 {
        let len = u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize;
        let ty = u16::from_ne_bytes([b[4], b[5]]);
        if len < 16 || len > b.len() {
            break;
        }
        let msg = &b[16..len];
        if ty >> 8 == NFNL_SUBSYS_NFTABLES && msg.len() >= 4 {
            let kind = ty & 0xff;
            let a = attrs(&msg[4..]);
            if kind == NFT_MSG_NEWGEN {
                if txn.touched {
                    done.push(txn.provider_chains);
                }
                *txn = Txn::default();
            } else if a
                .iter()
                .any(|(k, v)| *k == NFTA_TABLE && c_str(v) == b"contiv_lb")
            {
                txn.touched = true;
                if kind == NFT_MSG_NEWCHAIN
                    && a.iter()
                        .any(|(k, v)| *k == NFTA_CHAIN_NAME && c_str(v).starts_with(b"p_"))
                {
                    txn.provider_chains += 1;
                }
            }
        }
        b = &b[((len + 3) & !3).min(b.len())..];
    }
    done
}

/// A netlink socket in `ns` subscribed to nftables events.
fn monitor_socket(ns: &Path) -> anyhow::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    in_netns(ns, || -> anyhow::Result<std::os::fd::OwnedFd> {
        // SAFETY: plain socket calls; the fd is owned right away.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_NETFILTER,
            )
        };
        if fd < 0 {
            return Err(std::io::Error::last_os_error().into());
        }
        // SAFETY: fd is a fresh socket owned by nobody else.
        let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
        use std::os::fd::AsRawFd;
        let set = |level, opt, v: libc::c_int| -> std::io::Result<()> {
            // SAFETY: valid fd and an int option.
            let r = unsafe {
                libc::setsockopt(
                    fd.as_raw_fd(),
                    level,
                    opt,
                    &v as *const libc::c_int as *const libc::c_void,
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
            if r != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        };
        set(libc::SOL_SOCKET, libc::SO_RCVBUF, 4 << 20)?;
        // Bound first: an unbound netlink socket is not in the multicast table.
        // SAFETY: zeroed sockaddr_nl is valid (pid 0: the kernel assigns one).
        let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        sa.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        // SAFETY: valid fd and sockaddr_nl of the size given.
        let r = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                &sa as *const libc::sockaddr_nl as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if r != 0 {
            return Err(std::io::Error::last_os_error().into());
        }
        set(
            libc::SOL_NETLINK,
            libc::NETLINK_ADD_MEMBERSHIP,
            NFNLGRP_NFTABLES,
        )?;
        let tv = libc::timeval {
            tv_sec: 0,
            tv_usec: 100_000,
        };
        // SAFETY: valid fd and a timeval.
        unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                &tv as *const libc::timeval as *const libc::c_void,
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        Ok(fd)
    })
    .map_err(|e| anyhow!(e))?
}

/// Watches host `h`'s tenant namespace: sends (host, when, providers) per `contiv_lb` commit.
fn watch(
    h: usize,
    ns: &Path,
    stop: Arc<AtomicBool>,
    tx: mpsc::Sender<(usize, Instant, usize)>,
) -> anyhow::Result<std::thread::JoinHandle<()>> {
    use std::os::fd::AsRawFd;
    let fd = monitor_socket(ns)?;
    Ok(std::thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 16];
        let mut txn = Txn::default();
        while !stop.load(Ordering::Relaxed) {
            // SAFETY: buf is valid for its length.
            let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            let at = Instant::now();
            if n <= 0 {
                if std::io::Error::last_os_error().raw_os_error() == Some(libc::ENOBUFS) {
                    eprintln!("host {h}: monitor overrun (ENOBUFS)");
                    txn = Txn::default();
                }
                continue;
            }
            for providers in feed(&buf[..n as usize], &mut txn) {
                if tx.send((h, at, providers)).is_err() {
                    return;
                }
            }
        }
    }))
}

fn change(args: &SvcArgs, bins: &contiv_netplugin::testbed::Binaries) -> anyhow::Result<()> {
    let hosts = args.hosts.max(1);
    let c = crate::cni::cluster(bins, hosts)?;
    post(
        &c,
        "/api/v1/serviceLBs/default:web/",
        json!({"tenantName": "default", "serviceName": "web", "networkName": "bench",
            "selectors": ["app=web"], "ports": ["80:8080:TCP"]}),
    )?;
    let n = args.providers.max(2);
    let mut providers = Vec::new();
    for i in 0..n {
        providers.push(labelled(&c, i % hosts, &format!("wp{i}"), "web")?);
    }
    for h in 0..hosts {
        labelled(&c, h, &format!("wc{h}"), "client")?;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel();
    let mut threads = Vec::new();
    for h in 0..hosts {
        threads.push(watch(
            h,
            &c.tenant_ns(h, "default"),
            stop.clone(),
            tx.clone(),
        )?);
    }
    let toggled = providers[n - 1].clone();
    // The change, `--via cni`: CNI DEL of the last provider, then its ADD again (same namespace,
    // same labels); `--via label`: its labels toggled through `/plugin/updateEndpoint` (Contiv's
    // PascalCase field names), netmaster's answer being the acknowledgement.
    let by_label = args.via == "label";
    let flip = |present: bool| -> anyhow::Result<()> {
        if by_label {
            let app = if present { "web" } else { "off" };
            post(
                &c,
                "/plugin/updateEndpoint",
                json!({"IPAddress": toggled.ip.to_string(), "ContainerID": "",
                    "Labels": {"app": app}, "Tenant": "default", "Network": "bench",
                    "Event": "start", "EndpointID": ""}),
            )
        } else if present {
            c.attach_labelled(
                toggled.host,
                &toggled.name,
                &toggled.netns,
                ("default", "bench", None),
                &[("app", "web")],
            )
            .map(|_| ())
            .map_err(|e| anyhow!(e))
        } else {
            c.del_workload(&toggled).map_err(|e| anyhow!(e))
        }
    };
    let (what, call) = if by_label {
        ("relabelled out and back (updateEndpoint)", "updateEndpoint")
    } else {
        ("removed (CNI DEL) and added back (CNI ADD)", "CNI call")
    };
    let result = (|| -> anyhow::Result<()> {
        let wait_all = |want: usize, since: Instant| -> Option<(Duration, Duration)> {
            let mut seen: Vec<Option<Instant>> = vec![None; hosts];
            let mut counts: Vec<Option<usize>> = vec![None; hosts];
            let deadline = Instant::now() + Duration::from_secs(5);
            while seen.iter().any(Option::is_none) {
                let left = deadline.saturating_duration_since(Instant::now());
                match rx.recv_timeout(left) {
                    Ok((h, at, got)) => {
                        seen[h] = (got == want).then_some(at);
                        counts[h] = Some(got);
                    }
                    Err(_) => {
                        eprintln!(
                            "want {want} providers everywhere; last seen per host: {counts:?}"
                        );
                        return None;
                    }
                }
            }
            let times: Vec<Instant> = seen.into_iter().flatten().collect();
            let first = times.iter().min().copied().unwrap_or(since);
            let last = times.iter().max().copied().unwrap_or(since);
            Some((
                first.saturating_duration_since(since),
                last.saturating_duration_since(since),
            ))
        };
        // Every host at n providers first (a removal and re-add makes it so whatever came before).
        flip(false)?;
        let _ = wait_all(n - 1, Instant::now());
        flip(true)?;
        if wait_all(n, Instant::now()).is_none() {
            bail!(
                "not every host reached {n} providers: {}",
                c.get_json("/api/v1/inspect/serviceLBs/default:web/")
                    .unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(500));
        while rx.try_recv().is_ok() {}
        crate::cni::settle();
        println!(
            "\n=== provider change on {hosts} hosts: service with {n} providers, one {what} in turn, {} changes, {} ms apart, load {}",
            args.changes,
            args.gap_ms,
            crate::cni::loadavg()
        );
        let (mut last, mut first, mut ack) = (Vec::new(), Vec::new(), Vec::new());
        let (mut from_call, mut early) = (Vec::new(), 0);
        let mut failed = 0;
        for i in 0..args.changes {
            let (present, want) = if i % 2 == 0 {
                (false, n - 1)
            } else {
                (true, n)
            };
            let sent = Instant::now();
            flip(present)?;
            let acked = Instant::now();
            let a = acked.duration_since(sent).as_secs_f64() * 1e3;
            ack.push(a);
            match wait_all(want, sent) {
                Some((f, l)) => {
                    let (f, l) = (f.as_secs_f64() * 1e3, l.as_secs_f64() * 1e3);
                    from_call.push(l);
                    early += usize::from(l < a);
                    first.push((f - a).max(0.0));
                    last.push((l - a).max(0.0));
                }
                None => failed += 1,
            }
            std::thread::sleep(Duration::from_millis(args.gap_ms));
            while rx.try_recv().is_ok() {}
        }
        for s in [&mut last, &mut first, &mut ack, &mut from_call] {
            s.sort_by(f64::total_cmp);
        }
        println!("| ms | p50 | p99 | max |");
        println!("|---|---|---|---|");
        for (what, s) in [
            (
                format!(
                    "{call} returned (netmaster's write acknowledged) → last of the hosts enforces"
                ),
                &last,
            ),
            (format!("{call} returned → first host enforces"), &first),
            (format!("{call} start → last host enforces"), &from_call),
            (format!("{call} itself"), &ack),
        ] {
            println!(
                "| {what} | {:.1} | {:.1} | {:.1} |",
                pct_us(s, 50.0),
                pct_us(s, 99.0),
                pct_us(s, 100.0)
            );
        }
        println!(
            "| samples | {} | not on every host within 5 s: {failed} | all hosts before the {call} returned: {early} |",
            last.len()
        );
        Ok(())
    })();
    stop.store(true, Ordering::Relaxed);
    drop(tx);
    for t in threads {
        let _ = t.join();
    }
    drop(c);
    result
}

pub fn main(argv: Vec<String>) -> anyhow::Result<()> {
    let args =
        SvcArgs::parse_from(std::iter::once("contiv-bench services".to_string()).chain(argv));
    if !is_root() {
        bail!("contiv-bench services needs root (it creates network namespaces)");
    }
    let bins = crate::cni::binaries_in(args.bin_dir.as_ref())?;
    if args.only.iter().any(|o| o == "connect" || o == "iperf") {
        datapath(&args, &bins)?;
    }
    if args.only.iter().any(|o| o == "change") {
        change(&args, &bins)?;
    }
    println!("== load after: {}", crate::cni::loadavg());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nlmsg(ty: u16, attrs: &[(u16, &[u8])]) -> Vec<u8> {
        let mut body = vec![2u8, 0, 0, 0];
        for (k, v) in attrs {
            let len = 4 + v.len();
            body.extend_from_slice(&(len as u16).to_ne_bytes());
            body.extend_from_slice(&k.to_ne_bytes());
            body.extend_from_slice(v);
            while body.len() % 4 != 0 {
                body.push(0);
            }
        }
        let mut m = Vec::new();
        m.extend_from_slice(&((16 + body.len()) as u32).to_ne_bytes());
        m.extend_from_slice(&ty.to_ne_bytes());
        m.extend_from_slice(&[0u8; 10]);
        m.extend_from_slice(&body);
        m
    }

    #[test]
    fn counts_provider_chains_per_transaction() {
        let sub = NFNL_SUBSYS_NFTABLES << 8;
        let mut buf = nlmsg(sub, &[(1, b"contiv_lb\0")]);
        for name in [&b"p_ab_0\0"[..], b"p_ab_1\0", b"s_ab\0", b"prerouting\0"] {
            buf.extend(nlmsg(
                sub | NFT_MSG_NEWCHAIN,
                &[(1, b"contiv_lb\0"), (3, name)],
            ));
        }
        buf.extend(nlmsg(
            sub | NFT_MSG_NEWCHAIN,
            &[(1, b"other\0"), (3, b"p_x\0")],
        ));
        let mut txn = Txn::default();
        assert!(feed(&buf, &mut txn).is_empty());
        assert_eq!(feed(&nlmsg(sub | NFT_MSG_NEWGEN, &[]), &mut txn), vec![2]);
        // A transaction of another table only: nothing.
        let other = nlmsg(sub | NFT_MSG_NEWCHAIN, &[(1, b"pol\0"), (3, b"p_1\0")]);
        assert!(feed(&other, &mut txn).is_empty());
        assert!(feed(&nlmsg(sub | NFT_MSG_NEWGEN, &[]), &mut txn).is_empty());
        assert!(feed(&[1, 2, 3], &mut txn).is_empty(), "garbage");
    }
}
