//! `contiv-bench audit`: what the audit log costs per write. The same sequential writes (network
//! create, endpoint-group create) against a fresh netmaster with the audit log on (default) and
//! off (`--audit-max-size 0`), alternating which goes first each round, in one run; p50/p99 per
//! op and the on/off ratios.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;

use crate::load::SeqClient;
use crate::server::Spawned;

#[derive(Debug, Parser)]
#[command(name = "contiv-bench audit")]
struct AuditArgs {
    /// Writes of each kind per server.
    #[arg(long, default_value_t = 1000)]
    count: usize,
    /// Rounds (each round: one server with the log, one without).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Run on a fresh etcd cluster of this many members per server (0: the embedded store).
    #[arg(long, default_value_t = 0)]
    etcd_members: usize,
    /// netmaster binary (default: the one next to this binary).
    #[arg(long)]
    netmaster: Option<PathBuf>,
}

#[derive(Default)]
struct Samples {
    net: Vec<Duration>,
    epg: Vec<Duration>,
}

fn pct(v: &[Duration], p: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort();
    let rank = ((p / 100.0) * v.len() as f64).ceil().max(1.0) as usize;
    v[rank.min(v.len()) - 1].as_secs_f64() * 1e3
}

fn ok(c: &mut SeqClient, path: &str, body: &str) -> anyhow::Result<Duration> {
    let t = Instant::now();
    let (status, text) = c.call("POST", path, Some(body))?;
    let took = t.elapsed();
    if status != 200 {
        bail!("POST {path}: HTTP {status}: {}", text.trim());
    }
    Ok(took)
}

/// One fresh server: `count` network creates, then `count` group creates.
fn one_server(
    args: &AuditArgs,
    bin: &std::path::Path,
    audit: bool,
    into: &mut Samples,
) -> anyhow::Result<()> {
    let mut extra: Vec<String> = Vec::new();
    if !audit {
        extra.extend(["--audit-max-size".into(), "0".into()]);
    }
    let cluster = match args.etcd_members {
        0 => None,
        n => {
            let c = contiv_store::testing::EtcdCluster::start(n).context("starting etcd")?;
            extra.extend(["--etcd".into(), c.endpoints().join(",")]);
            Some(c)
        }
    };
    let server = Spawned::start(bin, &extra)?;
    let mut c = SeqClient::new(crate::socket_addr(&server.url)?);
    ok(
        &mut c,
        "/api/v1/networks/default:n0/",
        &crate::network_body("n0", "10.0.0.0/24"),
    )?;
    for i in 1..=args.count {
        let body = crate::network_body(&format!("n{i}"), &crate::subnet_of(i));
        into.net.push(ok(
            &mut c,
            &format!("/api/v1/networks/default:n{i}/"),
            &body,
        )?);
    }
    for i in 1..=args.count {
        let body = format!(r#"{{"tenantName":"default","groupName":"g{i}","networkName":"n0"}}"#);
        into.epg.push(ok(
            &mut c,
            &format!("/api/v1/endpointGroups/default:g{i}/"),
            &body,
        )?);
    }
    drop(server);
    drop(cluster);
    Ok(())
}

pub fn main(argv: Vec<String>) -> anyhow::Result<()> {
    let args = AuditArgs::parse_from(std::iter::once("contiv-bench audit".to_string()).chain(argv));
    if args.count == 0 || args.count > 15_000 || args.rounds == 0 {
        bail!("--count must be 1..=15000 and --rounds at least 1");
    }
    let bin = args
        .netmaster
        .clone()
        .unwrap_or_else(crate::server::default_netmaster);
    let (mut on, mut off) = (Samples::default(), Samples::default());
    for round in 0..args.rounds {
        // Alternate the order so a trend in the machine's load hits both alike.
        for audit in [round % 2 == 0, round % 2 != 0] {
            let into = if audit { &mut on } else { &mut off };
            one_server(&args, &bin, audit, into)?;
            eprintln!(
                "round {} audit {}: done",
                round + 1,
                if audit { "on" } else { "off" }
            );
        }
    }
    let store = match args.etcd_members {
        0 => "embedded store".to_string(),
        n => format!("etcd ×{n}"),
    };
    println!(
        "audit log cost per write ({store}; {} rounds × {} writes of each kind per server)",
        args.rounds, args.count
    );
    println!("| op | with audit p50 | p99 | without p50 | p99 | ratio p50 | ratio p99 |");
    println!("|---|---|---|---|---|---|---|");
    for (name, a, b) in [
        ("network create", &on.net, &off.net),
        ("endpoint-group create", &on.epg, &off.epg),
    ] {
        let (a50, a99, b50, b99) = (pct(a, 50.0), pct(a, 99.0), pct(b, 50.0), pct(b, 99.0));
        println!(
            "| {name} | {a50:.3} ms | {a99:.3} ms | {b50:.3} ms | {b99:.3} ms | {:.2}× | {:.2}× |",
            a50 / b50,
            a99 / b99
        );
    }
    Ok(())
}
