//! `netctl netprofile`: network profiles (bandwidth, DSCP, burst): create, rm, ls, inspect.

use std::io::Write;

use clap::{Args, Subcommand};
use serde_json::Value;

use super::{inspect, key, list_per_tenant, Body, Ctx};
use crate::cli::{ListFlags, TenantFlag};
use crate::error::Result;
use crate::output::{int_field, render_table, str_field};

const PLURAL: &str = "netprofiles";

/// Network profile manipulation tools
#[derive(Subcommand, Debug, PartialEq, Eq)]
pub enum NetprofileCmd {
    /// Create a network profile
    Create(CreateArgs),
    /// Delete a network profile
    #[command(visible_alias = "delete")]
    Rm {
        #[command(flatten)]
        tenant: TenantFlag,
        netprofile: String,
    },
    /// List network profile
    #[command(visible_alias = "list")]
    Ls(ListFlags),
    /// inspect network profile
    Inspect {
        #[command(flatten)]
        tenant: TenantFlag,
        netprofile: String,
    },
}

/// `netctl netprofile create [options] <netprofile>`
#[derive(Args, Debug, PartialEq, Eq)]
pub struct CreateArgs {
    #[command(flatten)]
    pub tenant: TenantFlag,
    /// Bandwidth (e.g., 10 kbps, 100 mbps, 1gbps)
    #[arg(short = 'b', long, default_value = "", hide_default_value = true)]
    pub bandwidth: String,
    /// DSCP
    #[arg(short = 'd', long, default_value_t = 0, hide_default_value = true)]
    pub dscp: i64,
    /// burst size(Must be in kilobytes)
    #[arg(short = 's', long, default_value_t = 0, hide_default_value = true)]
    pub burst: i64,
    pub netprofile: String,
}

pub fn run(cmd: &NetprofileCmd, ctx: &Ctx, out: &mut dyn Write) -> Result<()> {
    match cmd {
        NetprofileCmd::Create(args) => {
            let tenant = &args.tenant.tenant;
            let name = &args.netprofile;
            ctx.client()?
                .post(PLURAL, &key(&[tenant, name]), &create_body(args))?;
            writeln!(out, "Creating netprofile {tenant}:{name}")?;
            Ok(())
        }
        NetprofileCmd::Rm { tenant, netprofile } => ctx
            .client()?
            .delete(PLURAL, &key(&[&tenant.tenant, netprofile])),
        NetprofileCmd::Ls(flags) => list_per_tenant(ctx, out, PLURAL, flags, "profileName", table),
        NetprofileCmd::Inspect { tenant, netprofile } => {
            inspect(ctx, out, PLURAL, &key(&[&tenant.tenant, netprofile]))
        }
    }
}

/// The netprofile object to post.
pub fn create_body(args: &CreateArgs) -> Value {
    Body::new()
        .int("burst", args.burst)
        .str("bandwidth", &args.bandwidth)
        .int("DSCP", args.dscp)
        .str("profileName", &args.netprofile)
        .str("tenantName", &args.tenant.tenant)
        .build()
}

/// Bandwidth as Contiv's list shows it: the first number and a unit (`100 mbps` -> `100Mbps`).
pub fn bandwidth_label(bandwidth: &str) -> String {
    if bandwidth.is_empty() {
        return String::new();
    }
    let digits: String = bandwidth
        .chars()
        .skip_while(|c| !c.is_ascii_digit())
        .take_while(char::is_ascii_digit)
        .collect();
    let has = |chars: &[char]| bandwidth.contains(chars);
    let unit = if has(&['g', 'G']) {
        "Gbps"
    } else if has(&['m', 'M']) {
        "Mbps"
    } else if has(&['k', 'K']) {
        "Kbps"
    } else {
        ""
    };
    format!("{digits}{unit}")
}

fn table(items: &[Value]) -> String {
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|p| {
            vec![
                str_field(p, "profileName"),
                str_field(p, "tenantName"),
                bandwidth_label(&str_field(p, "bandwidth")),
                int_field(p, "DSCP"),
                int_field(p, "burst"),
            ]
        })
        .collect();
    render_table(
        &["Name", "Tenant", "Bandwidth", "DSCP", "burst size"],
        &rows,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Command;
    use crate::commands::test_support::{parse, refused, run_netctl, FakeServer};
    use serde_json::json;

    fn np(args: &[&str]) -> NetprofileCmd {
        match parse(args).command {
            Command::Netprofile(cmd) => cmd,
            other => panic!("not a netprofile command: {other:?}"),
        }
    }

    #[test]
    fn parses() {
        let NetprofileCmd::Create(c) = np(&[
            "netprofile",
            "create",
            "-t",
            "t1",
            "-b",
            "10mbps",
            "-d",
            "5",
            "-s",
            "100",
            "np1",
        ]) else {
            panic!("not create")
        };
        assert_eq!(
            (c.bandwidth.as_str(), c.dscp, c.burst, c.netprofile.as_str()),
            ("10mbps", 5, 100, "np1")
        );
        let long = np(&[
            "netprofile",
            "create",
            "--tenant",
            "t1",
            "--bandwidth",
            "10mbps",
            "--dscp",
            "5",
            "--burst",
            "100",
            "np1",
        ]);
        assert_eq!(long, NetprofileCmd::Create(c));
        assert!(
            matches!(np(&["netprofile", "list", "-a", "-q"]), NetprofileCmd::Ls(f) if f.all && f.output.quiet)
        );
        assert!(matches!(
            np(&["netprofile", "delete", "np1"]),
            NetprofileCmd::Rm { .. }
        ));
        assert!(matches!(
            np(&["netprofile", "inspect", "np1"]),
            NetprofileCmd::Inspect { .. }
        ));
        assert!(refused(&["netprofile", "create", "-d", "high", "np1"]));
    }

    #[test]
    fn bandwidth_labels() {
        assert_eq!(bandwidth_label("100 mbps"), "100Mbps");
        assert_eq!(bandwidth_label("1gbps"), "1Gbps");
        assert_eq!(bandwidth_label("10 Kbps"), "10Kbps");
        assert_eq!(bandwidth_label(""), "");
    }

    #[test]
    fn create_and_list() {
        let srv = FakeServer::start();
        srv.route("POST", "/api/v1/netprofiles/default:np1/", 200, "{}");
        let (res, out) = run_netctl(
            &srv.url,
            &["netprofile", "create", "-b", "10 mbps", "-d", "5", "np1"],
        );
        assert!(res.is_ok(), "{res:?}");
        assert_eq!(out, "Creating netprofile default:np1\n");
        assert_eq!(
            srv.writes()[0].json(),
            json!({"bandwidth": "10 mbps", "DSCP": 5, "profileName": "np1", "tenantName": "default"})
        );
        let text = table(&[
            json!({"profileName": "np1", "tenantName": "default", "bandwidth": "10 mbps", "DSCP": 5, "burst": 3}),
        ]);
        assert_eq!(
            text.lines().nth(2),
            Some("np1   default  10Mbps     5     3")
        );
    }
}
