//! `netctl policy explain` (which rule decides a new connection, and whether the hosts involved
//! enforce netmaster's latest revision) and `netctl policy status` (what each host enforces).

use std::io::Write;

use clap::Args;
use contiv_api::policy::{ExplainSide, Explanation, HostPolicyStatus, PolicyStatus};
use serde_json::Value;

use super::Ctx;
use crate::cli::TenantFlag;
use crate::error::{Error, Result};
use crate::output::{print_json, render_table};

const EXPLAIN: &str = "/api/v1/policyExplain/";
const STATUS: &str = "/api/v1/policyStatus/";

/// `netctl policy explain [-t tenant] --from X --to Y [--protocol tcp] [--port 80] [-j]`
#[derive(Args, Debug, PartialEq, Eq)]
pub struct ExplainArgs {
    #[command(flatten)]
    pub tenant: TenantFlag,
    /// Source: endpoint id, container name, container id or IPv4 address
    #[arg(long)]
    pub from: String,
    /// Destination: endpoint id, container name, container id or IPv4 address
    #[arg(long)]
    pub to: String,
    /// Protocol (tcp, udp, icmp or a protocol number)
    #[arg(long, default_value = "tcp")]
    pub protocol: String,
    /// Destination port (0: none)
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Output in JSON format
    #[arg(short = 'j', long)]
    pub json: bool,
}

/// `?k=v&...` with the values percent-encoded.
pub(crate) fn query_string(params: &[(&str, &str)]) -> String {
    let enc = |s: &str| -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    let pairs: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{k}={}", enc(v)))
        .collect();
    format!("?{}", pairs.join("&"))
}

fn decode<T: serde::de::DeserializeOwned>(path: &str, v: Value) -> Result<T> {
    serde_json::from_value(v).map_err(|e| Error::Decode {
        path: path.to_string(),
        reason: e.to_string(),
    })
}

pub fn explain(args: &ExplainArgs, ctx: &Ctx, out: &mut dyn Write) -> Result<()> {
    let port = args.port.to_string();
    let query = query_string(&[
        ("tenant", &args.tenant.tenant),
        ("from", &args.from),
        ("to", &args.to),
        ("protocol", &args.protocol),
        ("port", &port),
    ]);
    let value = ctx.client()?.get_json(&format!("{EXPLAIN}{query}"))?;
    if args.json {
        return print_json(out, &value);
    }
    let e: Explanation = decode(EXPLAIN, value)?;
    out.write_all(render_explanation(&e).as_bytes())?;
    Ok(())
}

/// Which group's rules the deciding rule belongs to.
fn deciding_side(e: &Explanation) -> String {
    let rule = e.rule.as_deref();
    let (dir, group) = if rule.is_some() && e.ingress.rule.as_deref() == rule {
        ("in", &e.ingress.group)
    } else {
        ("out", &e.egress.group)
    };
    format!("{dir}-rule of group {}", group.as_deref().unwrap_or("-"))
}

fn side_row(name: &str, s: &ExplainSide) -> Vec<String> {
    let or_dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    vec![
        name.to_string(),
        s.ip.clone(),
        or_dash(&s.endpoint),
        or_dash(&s.group),
        or_dash(&s.host),
    ]
}

fn host_row(h: &HostPolicyStatus, latest: u64) -> Vec<String> {
    let current = if h.current {
        "yes".to_string()
    } else if h.enforced_revision == 0 {
        "no (never reported)".to_string()
    } else {
        format!("no (netmaster at {latest})")
    };
    vec![h.hostname.clone(), h.enforced_revision.to_string(), current]
}

fn render_explanation(e: &Explanation) -> String {
    let flow = if e.port == 0 {
        e.protocol.clone()
    } else {
        format!("{}/{}", e.protocol, e.port)
    };
    let head = match &e.rule {
        Some(rule) => format!("{}  {flow}  by {rule} ({})", e.verdict, deciding_side(e)),
        None => format!(
            "{}  {flow}  {}",
            e.verdict,
            e.reason.as_deref().unwrap_or("no rule matched")
        ),
    };
    let sides = render_table(
        &["Side", "IP", "Endpoint", "Group", "Host"],
        &[side_row("from", &e.from), side_row("to", &e.to)],
    );
    let hosts: Vec<Vec<String>> = e.hosts.iter().map(|h| host_row(h, e.revision)).collect();
    let hosts = render_table(&["Host", "Enforced Revision", "Current"], &hosts);
    format!("{head}\n{sides}{hosts}")
}

pub fn status(json: bool, ctx: &Ctx, out: &mut dyn Write) -> Result<()> {
    let value = ctx.client()?.get_json(STATUS)?;
    if json {
        return print_json(out, &value);
    }
    let s: PolicyStatus = decode(STATUS, value)?;
    let rows: Vec<Vec<String>> = s
        .hosts
        .iter()
        .map(|h| {
            let mut row = host_row(h, s.revision);
            row.extend([h.rules.to_string(), h.elements.to_string()]);
            row
        })
        .collect();
    writeln!(out, "netmaster revision {}", s.revision)?;
    out.write_all(
        render_table(
            &["Host", "Enforced Revision", "Current", "Rules", "Elements"],
            &rows,
        )
        .as_bytes(),
    )?;
    Ok(())
}
