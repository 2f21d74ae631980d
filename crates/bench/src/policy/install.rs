//! `contiv-bench policy install`: what one host spends to enforce N rules, step by step, with no
//! agent or netmaster in the way: the pure compiler (`compile_tenant`, host scope), the renderer
//! (IR → nftables objects → the full `nft -f` batch text), and the install of that batch into a
//! fresh namespace (`nft::apply`: the same spawn + setns + stdin as the agent). Then one rule
//! changed on top of the N installed (compile, render, delta batch, apply): the per-change cost.
//!
//! Reference in the same run, same namespace kind: N flat rules, one rule per match with literal
//! addresses and ports and an anonymous counter, no sets or maps, in one base chain, loaded with
//! one `nft -f` (what a naive translator or an iptables-style ruleset gives); and the floor of
//! one `nft -f` run (a batch adding one empty table).
//!
//! Input shape: N/10 groups, each with its own policy of 10 rules ([`super::rule_json`]: in-rules
//! from other groups on tcp ports, from /32 addresses and /24s, a deny-all, out-rules to CIDRs
//! and groups), 1,000 local and 1,000 remote endpoints spread over the groups.

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::anyhow;
use contiv_datapath_linux::policy::{nft, render};
use contiv_datapath_linux::testbed::Testbed;
use contiv_policy::{compile_tenant, GroupRef, Member, NetworkRef, PolicyInput, RuleSpec, Scope};

use super::{fmt, group_names, ms, pct, rule_json, Row};

#[derive(Debug, clap::Parser)]
#[command(name = "contiv-bench policy install")]
pub struct Args {
    /// Rule counts to measure (comma list).
    #[arg(long, value_delimiter = ',', default_values_t = [1000usize, 10_000, 100_000])]
    rules: Vec<usize>,
    /// Repetitions per count below 100,000 (medians reported); 100,000 and above run once.
    #[arg(long, default_value_t = 3)]
    reps: usize,
    /// Local endpoints (on this host), and as many remote ones.
    #[arg(long, default_value_t = 1000)]
    endpoints: usize,
    /// Write each count's full batch (ours) and flat batch to this directory.
    #[arg(long)]
    dump: Option<std::path::PathBuf>,
}

const TENANT: &str = "default";
const HOST: &str = "h1";

/// The compiler input for `n` rules (see the module docs).
pub fn input(n: usize, endpoints: usize) -> PolicyInput {
    let groups = group_names((n / 10).max(1));
    let mut input = PolicyInput {
        networks: vec![NetworkRef {
            tenant: TENANT.into(),
            name: "net".into(),
            subnet: "10.0.0.0/8".parse().expect("subnet"),
        }],
        ..Default::default()
    };
    for (k, g) in groups.iter().enumerate() {
        let policy = format!("p{k}");
        input.groups.push(GroupRef {
            tenant: TENANT.into(),
            name: g.clone(),
            policies: vec![policy.clone()],
        });
        for j in 0..10.min(n - k * 10) {
            let i = k * 10 + j;
            let wire: contiv_model::Rule =
                serde_json::from_value(rule_json(TENANT, &policy, i, &groups)).expect("rule json");
            input
                .rules
                .push(RuleSpec::from_model(&wire).expect("synthetic rule is valid"));
        }
    }
    for e in 0..2 * endpoints {
        let ip = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 1, 0, 2)) + e as u32);
        input.endpoints.push(Member {
            id: format!("ep{e}"),
            tenant: TENANT.into(),
            group: groups[e % groups.len()].clone(),
            ip,
            host: if e < endpoints { HOST } else { "h2" }.into(),
        });
    }
    input
}

/// `n` flat rules: one per match, literal addresses, anonymous counters, one base chain.
fn flat_batch(n: usize) -> String {
    let mut s = String::with_capacity(n * 100);
    s.push_str("add table inet flat\n");
    s.push_str("add chain inet flat enforce { type filter hook forward priority filter; policy accept; }\n");
    for i in 0..n {
        let src = Ipv4Addr::from(u32::from(Ipv4Addr::new(172, 16, 0, 0)) + i as u32);
        let dst = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 1, 0, 2)) + (i % 1000) as u32);
        let verdict = if i % 10 == 0 { "drop" } else { "accept" };
        s.push_str(&format!(
            "add rule inet flat enforce ip saddr {src} ip daddr {dst} tcp dport {} counter {verdict}\n",
            8000 + i % 1000
        ));
    }
    s
}

struct Sample {
    compile: Duration,
    render: Duration,
    install: Duration,
    reference: Duration,
    floor: Duration,
    delta: Duration,
    batch_bytes: usize,
    objects: (usize, usize),
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let t0 = Instant::now();
    let out = f();
    (out, t0.elapsed())
}

fn one(tb: &Testbed, n: usize, endpoints: usize, tag: &str) -> anyhow::Result<Sample> {
    let mut input = input(n, endpoints);
    let (ir, compile) = timed(|| compile_tenant(&input, Scope::Host(HOST), TENANT));
    let ((rs, batch), render_t) = timed(|| {
        let rs = render::render(&ir);
        let batch = render::full_batch(&rs, &render::Seed::new());
        (rs, batch)
    });
    let ours_ns = tb.workload(&format!("nft-{tag}-o"))?;
    let flat_ns = tb.workload(&format!("nft-{tag}-f"))?;
    let floor_ns = tb.workload(&format!("nft-{tag}-z"))?;
    let apply = |ns: &Path, b: &str| -> anyhow::Result<Duration> {
        let (r, d) = timed(|| nft::apply(ns, b));
        r.map_err(|e| anyhow!("nft: {e}"))?;
        Ok(d)
    };
    let result = (|| {
        let install = apply(&ours_ns, &batch)?;
        let flat = flat_batch(n);
        let reference = apply(&flat_ns, &flat)?;
        let floor = apply(&floor_ns, "add table inet floor\n")?;
        // One rule changed on top: the first group's in-rule from another group now allows
        // port 9999 (the agent's path for one rule change).
        let (delta_batch, t1) = timed(|| {
            let r = input
                .rules
                .iter_mut()
                .find(|r| r.port != 0 && r.direction == contiv_policy::Direction::In)
                .expect("a rule with a port");
            r.port = 9999;
            let ir2 = compile_tenant(&input, Scope::Host(HOST), TENANT);
            render::delta_batch(&rs, &render::render(&ir2))
        });
        let delta = t1 + apply(&ours_ns, &delta_batch)?;
        Ok(Sample {
            compile,
            render: render_t,
            install,
            reference,
            floor,
            delta,
            batch_bytes: batch.len(),
            objects: (ir.rule_count(), ir.element_count()),
        })
    })();
    for ns in [&ours_ns, &flat_ns, &floor_ns] {
        let _ = contiv_datapath_linux::netns::delete_named(ns);
    }
    result
}

pub fn run(args: &Args, rows: &mut Vec<Row>, notes: &mut Vec<String>) -> anyhow::Result<()> {
    let tb = Testbed::new(0).map_err(|e| anyhow!("testbed: {e}"))?;
    for &n in &args.rules {
        let reps = if n >= 100_000 { 1 } else { args.reps.max(1) };
        if let Some(dir) = &args.dump {
            let ir = compile_tenant(&input(n, args.endpoints), Scope::Host(HOST), TENANT);
            let batch = render::full_batch(&render::render(&ir), &render::Seed::new());
            std::fs::write(dir.join(format!("ours-{n}.nft")), batch)?;
            std::fs::write(dir.join(format!("flat-{n}.nft")), flat_batch(n))?;
        }
        let mut samples = Vec::new();
        for rep in 0..reps {
            samples.push(one(&tb, n, args.endpoints, &format!("{n}-{rep}"))?);
        }
        let med = |f: &dyn Fn(&Sample) -> Duration| {
            pct(&samples.iter().map(|s| ms(f(s))).collect::<Vec<_>>(), 50.0)
        };
        let (c, r, i) = (med(&|s| s.compile), med(&|s| s.render), med(&|s| s.install));
        let total = med(&|s| s.compile + s.render + s.install);
        let flat = med(&|s| s.reference);
        let floor = med(&|s| s.floor);
        let label = format!("{n} rules");
        rows.push(Row::new("install", format!("{label}: compile"), "ms", c));
        rows.push(Row::new(
            "install",
            format!("{label}: render (IR → nft batch text)"),
            "ms",
            r,
        ));
        rows.push(
            Row::new(
                "install",
                format!("{label}: nft -f install, fresh namespace"),
                "ms",
                i,
            )
            .vs(format!("{n} flat rules, nft -f"), flat),
        );
        let mut total_row = Row::new(
            "install",
            format!("{label}: compile + render + install"),
            "ms",
            total,
        )
        .vs(format!("{n} flat rules, nft -f"), flat);
        if n == 10_000 {
            total_row = total_row.target("≤ 500 ms", total <= 500.0);
        }
        rows.push(total_row);
        rows.push(
            Row::new(
                "install",
                format!("{label}: one rule changed (compile + render + delta + nft -f)"),
                "ms",
                med(&|s| s.delta),
            )
            .vs("nft -f floor (one empty table)", floor),
        );
        let s = &samples[0];
        notes.push(format!(
            "install {n} rules ({reps} rep(s), medians): {} rule entries, {} set/map elements, batch {:.1} MB; raw compile/render/install/flat/floor/delta ms: {}",
            s.objects.0,
            s.objects.1,
            s.batch_bytes as f64 / 1e6,
            samples
                .iter()
                .map(|s| format!(
                    "{}/{}/{}/{}/{}/{}",
                    fmt(ms(s.compile)),
                    fmt(ms(s.render)),
                    fmt(ms(s.install)),
                    fmt(ms(s.reference)),
                    fmt(ms(s.floor)),
                    fmt(ms(s.delta))
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok(())
}
