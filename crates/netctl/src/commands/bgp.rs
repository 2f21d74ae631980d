//! `netctl bgp`: per-host BGP router configuration (create, rm, ls, inspect).

use std::io::Write;
use std::net::IpAddr;

use clap::{Args, Subcommand};
use serde_json::Value;

use super::{inspect, print_list, Body, Ctx};
use crate::cli::OutputFlags;
use crate::error::{Error, Result};
use crate::output::{render_table, str_field};

const PLURAL: &str = "Bgps";

/// router capability configuration
#[derive(Subcommand, Debug, PartialEq, Eq)]
pub enum BgpCmd {
    /// List BGP configuration
    #[command(visible_alias = "list")]
    Ls {
        #[command(flatten)]
        output: OutputFlags,
    },
    /// Delete BGP configuration
    #[command(visible_alias = "delete")]
    Rm { hostname: String },
    /// Add BGP configuration.
    Create(CreateArgs),
    /// Inspect Bgp
    Inspect { hostname: String },
}

/// `netctl bgp create [options] <hostname>`
#[derive(Args, Debug, PartialEq, Eq)]
pub struct CreateArgs {
    /// BGP my-router ip
    #[arg(long = "router-ip", default_value = "", hide_default_value = true)]
    pub router_ip: String,
    /// Self AS id
    #[arg(long = "as", default_value = "", hide_default_value = true)]
    pub as_id: String,
    /// BGP neighbor AS id
    #[arg(long = "neighbor-as", default_value = "", hide_default_value = true)]
    pub neighbor_as: String,
    /// BGP neighbor to be added
    #[arg(long, default_value = "", hide_default_value = true)]
    pub neighbor: String,
    pub hostname: String,
}

pub fn run(cmd: &BgpCmd, ctx: &Ctx, out: &mut dyn Write) -> Result<()> {
    match cmd {
        BgpCmd::Ls { output } => {
            let items = ctx.client()?.list(PLURAL)?;
            print_list(out, &items, output, "hostname", table)
        }
        BgpCmd::Rm { hostname } => {
            writeln!(out, "Deleting Bgp router config: {hostname}")?;
            ctx.client()?.delete(PLURAL, hostname)
        }
        BgpCmd::Create(args) => {
            let body = create_body(args)?;
            ctx.client()?.post(PLURAL, &args.hostname, &body)
        }
        BgpCmd::Inspect { hostname } => inspect(ctx, out, PLURAL, hostname),
    }
}

/// The Bgp object to post, after Contiv's checks (in Contiv's order and wording).
pub fn create_body(args: &CreateArgs) -> Result<Value> {
    if !is_cidr(&args.router_ip) {
        return Err(Error::invalid(
            "Wrong CIDR format. Enter in x.x.x.x/len format",
        ));
    }
    if args.neighbor.parse::<IpAddr>().is_err() {
        return Err(Error::invalid("Wrong IP format. Enter in x.x.x.x format"));
    }
    if args.as_id.is_empty() || args.neighbor_as.is_empty() {
        return Err(Error::invalid("Missing attributes"));
    }
    Ok(Body::new()
        .str("as", &args.as_id)
        .str("hostname", &args.hostname)
        .str("neighbor", &args.neighbor)
        .str("neighbor-as", &args.neighbor_as)
        .str("routerip", &args.router_ip)
        .build())
}

/// `a.b.c.d/len` or an IPv6 address with a prefix length.
fn is_cidr(text: &str) -> bool {
    let Some((ip, len)) = text.split_once('/') else {
        return false;
    };
    let Ok(len) = len.parse::<u8>() else {
        return false;
    };
    match ip.parse::<IpAddr>() {
        Ok(IpAddr::V4(_)) => len <= 32,
        Ok(IpAddr::V6(_)) => len <= 128,
        Err(_) => false,
    }
}

fn table(items: &[Value]) -> String {
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|b| {
            vec![
                str_field(b, "hostname"),
                str_field(b, "routerip"),
                str_field(b, "as"),
                str_field(b, "neighbor"),
                str_field(b, "neighbor-as"),
            ]
        })
        .collect();
    render_table(
        &["HostName", "RouterIP", "AS", "Neighbor", "NeighborAS"],
        &rows,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Command;
    use crate::commands::test_support::{parse, refused, run_netctl, FakeServer};
    use serde_json::json;

    fn bgp(args: &[&str]) -> BgpCmd {
        match parse(args).command {
            Command::Bgp(cmd) => cmd,
            other => panic!("not a bgp command: {other:?}"),
        }
    }

    fn create(args: &[&str]) -> CreateArgs {
        match bgp(args) {
            BgpCmd::Create(c) => c,
            other => panic!("not create: {other:?}"),
        }
    }

    #[test]
    fn parses() {
        let c = create(&[
            "bgp",
            "create",
            "--router-ip",
            "50.1.1.1/24",
            "--as",
            "65002",
            "--neighbor-as",
            "500",
            "--neighbor",
            "50.1.1.2",
            "host1",
        ]);
        assert_eq!(
            create_body(&c).ok(),
            Some(
                json!({"as": "65002", "hostname": "host1", "neighbor": "50.1.1.2", "neighbor-as": "500", "routerip": "50.1.1.1/24"})
            )
        );
        let go_style = create(&[
            "bgp",
            "create",
            "-router-ip",
            "50.1.1.1/24",
            "-as",
            "65002",
            "-neighbor-as",
            "500",
            "-neighbor",
            "50.1.1.2",
            "host1",
        ]);
        assert_eq!(c, go_style);
        assert!(matches!(bgp(&["bgp", "list", "-q"]), BgpCmd::Ls { output } if output.quiet));
        assert!(matches!(bgp(&["bgp", "delete", "h"]), BgpCmd::Rm { .. }));
        assert!(matches!(
            bgp(&["bgp", "inspect", "h"]),
            BgpCmd::Inspect { .. }
        ));
        assert!(refused(&["bgp", "ls", "-t", "x"]));
    }

    #[test]
    fn create_checks() {
        let msg = |args: &[&str]| {
            create_body(&create(args))
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        assert!(msg(&[
            "bgp",
            "create",
            "--router-ip",
            "50.1.1.1",
            "--neighbor",
            "50.1.1.2",
            "h"
        ])
        .starts_with("Wrong CIDR"));
        assert!(msg(&[
            "bgp",
            "create",
            "--router-ip",
            "50.1.1.1/24",
            "--neighbor",
            "x",
            "h"
        ])
        .starts_with("Wrong IP"));
        assert_eq!(
            msg(&[
                "bgp",
                "create",
                "--router-ip",
                "50.1.1.1/24",
                "--neighbor",
                "50.1.1.2",
                "h"
            ]),
            "Missing attributes"
        );
        assert!(is_cidr("2001:db8::1/64"));
        assert!(!is_cidr("1.2.3.4/33"));
    }

    #[test]
    fn ls_table() {
        let srv = FakeServer::start();
        srv.route("GET", "/api/v1/Bgps/", 200, r#"[{"hostname":"h1","routerip":"50.1.1.1/24","as":"65002","neighbor":"50.1.1.2","neighbor-as":"500"}]"#);
        let (res, out) = run_netctl(&srv.url, &["bgp", "ls"]);
        assert!(res.is_ok(), "{res:?}");
        assert_eq!(
            out.lines().nth(2),
            Some("h1        50.1.1.1/24  65002  50.1.1.2  500")
        );
    }
}
