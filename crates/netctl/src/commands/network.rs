//! `netctl network` (alias `net`): create, rm, ls, inspect.

use std::io::Write;
use std::net::IpAddr;

use clap::{Args, Subcommand};
use serde_json::Value;

use super::{inspect, key, list_per_tenant, Body, Ctx};
use crate::cli::{ListFlags, TenantFlag};
use crate::error::{Error, Result};
use crate::output::{int_field, render_table, str_field};

const PLURAL: &str = "networks";

/// Network manipulation tools
#[derive(Subcommand, Debug, PartialEq, Eq)]
pub enum NetworkCmd {
    /// List networks
    #[command(visible_alias = "list")]
    Ls(ListFlags),
    /// Inspect a Network
    Inspect {
        #[command(flatten)]
        tenant: TenantFlag,
        network: String,
    },
    /// Delete a network
    #[command(visible_alias = "delete")]
    Rm {
        #[command(flatten)]
        tenant: TenantFlag,
        network: String,
    },
    /// Create a network
    Create(CreateArgs),
}

/// `netctl network create [options] <network>`
#[derive(Args, Debug, PartialEq, Eq)]
pub struct CreateArgs {
    #[command(flatten)]
    pub tenant: TenantFlag,
    /// Network Type (infra or data)
    #[arg(short = 'n', long = "nw-type", default_value = "data")]
    pub nw_type: String,
    /// Encap type (vlan or vxlan)
    #[arg(short = 'e', long, default_value = "vxlan")]
    pub encap: String,
    /// Packet tag (Vlan ID/VNI)
    #[arg(
        short = 'p',
        long = "pkt-tag",
        default_value_t = 0,
        hide_default_value = true
    )]
    pub pkt_tag: i64,
    /// Subnet CIDR - REQUIRED
    #[arg(short = 's', long, default_value = "", hide_default_value = true)]
    pub subnet: String,
    /// Gateway
    #[arg(short = 'g', long, default_value = "", hide_default_value = true)]
    pub gateway: String,
    /// IPv6 Subnet CIDR
    #[arg(
        long = "subnetv6",
        visible_alias = "s6",
        default_value = "",
        hide_default_value = true
    )]
    pub subnet_v6: String,
    /// IPv6 Gateway
    #[arg(
        long = "gatewayv6",
        visible_alias = "g6",
        default_value = "",
        hide_default_value = true
    )]
    pub gateway_v6: String,
    /// Configured Network Tag
    #[arg(
        long = "nw-tag",
        visible_alias = "tag",
        default_value = "",
        hide_default_value = true
    )]
    pub nw_tag: String,
    pub network: String,
}

pub fn run(cmd: &NetworkCmd, ctx: &Ctx, out: &mut dyn Write) -> Result<()> {
    match cmd {
        NetworkCmd::Ls(flags) => list_per_tenant(ctx, out, PLURAL, flags, "networkName", table),
        NetworkCmd::Inspect { tenant, network } => {
            inspect(ctx, out, PLURAL, &key(&[&tenant.tenant, network]))
        }
        NetworkCmd::Rm { tenant, network } => {
            let tenant = &tenant.tenant;
            writeln!(out, "Deleting network {tenant}:{network}")?;
            ctx.client()?.delete(PLURAL, &key(&[tenant, network]))
        }
        NetworkCmd::Create(args) => create(args, ctx, out),
    }
}

fn create(args: &CreateArgs, ctx: &Ctx, out: &mut dyn Write) -> Result<()> {
    let body = create_body(args)?;
    let tenant = &args.tenant.tenant;
    let network = &args.network;
    ctx.client()?
        .post(PLURAL, &key(&[tenant, network]), &body)?;
    writeln!(out, "Creating network {tenant}:{network}")?;
    Ok(())
}

/// The network object to post, after Contiv's client-side checks.
pub fn create_body(args: &CreateArgs) -> Result<Value> {
    if args.subnet.is_empty() {
        return Err(Error::invalid("Subnet is required"));
    }
    if !args.gateway.is_empty() && args.gateway.parse::<IpAddr>().is_err() {
        return Err(Error::invalid("Invalid gateway - Enter in A.B.C.D format"));
    }
    if !args.gateway_v6.is_empty() && args.gateway_v6.parse::<IpAddr>().is_err() {
        return Err(Error::invalid("Invalid IPv6 gateway "));
    }
    Ok(Body::new()
        .str("tenantName", &args.tenant.tenant)
        .str("networkName", &args.network)
        .str("encap", &args.encap)
        .str("subnet", &args.subnet)
        .str("gateway", &args.gateway)
        .str("ipv6Subnet", &args.subnet_v6)
        .str("ipv6Gateway", &args.gateway_v6)
        .int("pktTag", args.pkt_tag)
        .str("nwType", &args.nw_type)
        .str("cfgdTag", &args.nw_tag)
        .build())
}

fn table(items: &[Value]) -> String {
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|n| {
            vec![
                str_field(n, "tenantName"),
                str_field(n, "networkName"),
                str_field(n, "nwType"),
                str_field(n, "encap"),
                int_field(n, "pktTag"),
                str_field(n, "subnet"),
                str_field(n, "gateway"),
                str_field(n, "ipv6Subnet"),
                str_field(n, "ipv6Gateway"),
                str_field(n, "cfgdTag"),
            ]
        })
        .collect();
    let headers = [
        "Tenant",
        "Network",
        "Nw Type",
        "Encap type",
        "Packet tag",
        "Subnet",
        "Gateway",
        "IPv6Subnet",
        "IPv6Gateway",
        "Cfgd Tag",
    ];
    render_table(&headers, &rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Command;
    use crate::commands::test_support::{parse, refused, run_netctl, FakeServer};
    use serde_json::json;

    fn network(args: &[&str]) -> NetworkCmd {
        match parse(args).command {
            Command::Network(cmd) => cmd,
            other => panic!("not a network command: {other:?}"),
        }
    }

    fn create_args(args: &[&str]) -> CreateArgs {
        match network(args) {
            NetworkCmd::Create(c) => c,
            other => panic!("not create: {other:?}"),
        }
    }

    #[test]
    fn create_defaults() {
        let c = create_args(&["network", "create", "-s", "10.1.1.0/24", "n1"]);
        assert_eq!(c.tenant.tenant, "default");
        assert_eq!(c.nw_type, "data");
        assert_eq!(c.encap, "vxlan");
        assert_eq!(c.pkt_tag, 0);
        assert_eq!(c.subnet, "10.1.1.0/24");
        assert_eq!(c.network, "n1");
    }

    #[test]
    fn create_all_flags_short_long_and_go_style() {
        let c = create_args(&[
            "net",
            "create",
            "-t",
            "t1",
            "-n",
            "infra",
            "-e",
            "vlan",
            "-p",
            "100",
            "-s",
            "10.1.1.0/24",
            "-g",
            "10.1.1.1",
            "-s6",
            "2001:db8::/64",
            "-g6",
            "2001:db8::1",
            "-tag",
            "blue",
            "n1",
        ]);
        assert_eq!(
            (
                c.tenant.tenant.as_str(),
                c.nw_type.as_str(),
                c.encap.as_str(),
                c.pkt_tag
            ),
            ("t1", "infra", "vlan", 100)
        );
        assert_eq!(
            (c.subnet_v6.as_str(), c.gateway_v6.as_str()),
            ("2001:db8::/64", "2001:db8::1")
        );
        assert_eq!(c.nw_tag, "blue");
        let d = create_args(&[
            "network",
            "create",
            "--tenant=t1",
            "--nw-type",
            "infra",
            "--encap",
            "vlan",
            "--pkt-tag",
            "100",
            "--subnet",
            "10.1.1.0/24",
            "--gateway",
            "10.1.1.1",
            "--subnetv6",
            "2001:db8::/64",
            "--gatewayv6",
            "2001:db8::1",
            "--nw-tag",
            "blue",
            "n1",
        ]);
        assert_eq!(c, d);
        let e = create_args(&[
            "network",
            "create",
            "-subnet=10.1.1.0/24",
            "-tenant",
            "t1",
            "n1",
        ]);
        assert_eq!(
            (e.subnet.as_str(), e.tenant.tenant.as_str()),
            ("10.1.1.0/24", "t1")
        );
    }

    #[test]
    fn other_subcommands() {
        assert!(
            matches!(network(&["net", "ls", "-a", "-q"]), NetworkCmd::Ls(f) if f.all && f.output.quiet)
        );
        assert!(
            matches!(network(&["network", "list", "-t", "x", "-j"]), NetworkCmd::Ls(f) if f.tenant.tenant == "x" && f.output.json)
        );
        assert!(
            matches!(network(&["net", "delete", "n1"]), NetworkCmd::Rm { network, .. } if network == "n1")
        );
        assert!(
            matches!(network(&["net", "inspect", "-t", "t", "n1"]), NetworkCmd::Inspect { tenant, .. } if tenant.tenant == "t")
        );
        assert!(refused(&["net", "create"]));
        assert!(refused(&["net", "create", "-p", "x", "n"]));
        assert!(refused(&["net", "ls", "n"]));
    }

    #[test]
    fn create_validation() {
        let c = create_args(&["network", "create", "n1"]);
        assert_eq!(
            create_body(&c).err().map(|e| e.to_string()),
            Some("Subnet is required".into())
        );
        let c = create_args(&[
            "network",
            "create",
            "-s",
            "10.1.1.0/24",
            "-g",
            "10.1.1",
            "n1",
        ]);
        assert!(matches!(create_body(&c), Err(Error::Invalid(m)) if m.contains("Invalid gateway")));
        let c = create_args(&["network", "create", "-s", "10.1.1.0/24", "--g6", "zz", "n1"]);
        assert!(matches!(create_body(&c), Err(Error::Invalid(m)) if m.contains("IPv6 gateway")));
    }

    #[test]
    fn create_posts_like_contiv() {
        let srv = FakeServer::start();
        srv.route("POST", "/api/v1/networks/t1:n1/", 200, "{}");
        let (res, out) = run_netctl(
            &srv.url,
            &[
                "net",
                "create",
                "-t",
                "t1",
                "-e",
                "vlan",
                "-p",
                "10",
                "-s",
                "10.1.1.0/24",
                "-g",
                "10.1.1.1",
                "n1",
            ],
        );
        assert!(res.is_ok(), "{res:?}");
        assert_eq!(out, "Creating network t1:n1\n");
        let expected = json!({"tenantName": "t1", "networkName": "n1", "encap": "vlan", "pktTag": 10,
            "subnet": "10.1.1.0/24", "gateway": "10.1.1.1", "nwType": "data"});
        assert_eq!(srv.writes()[0].json(), expected);
    }

    #[test]
    fn ls_checks_tenant_and_filters() {
        let srv = FakeServer::start();
        srv.route("GET", "/api/v1/tenants/t1/", 200, r#"{"tenantName":"t1"}"#);
        srv.route("GET", "/api/v1/networks/", 200, r#"[
            {"tenantName":"t1","networkName":"n1","nwType":"data","encap":"vxlan","pktTag":7,"subnet":"10.1.1.0/24","gateway":"10.1.1.1"},
            {"tenantName":"t2","networkName":"n2"}]"#);
        let (res, out) = run_netctl(&srv.url, &["net", "ls", "-t", "t1"]);
        assert!(res.is_ok(), "{res:?}");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("Tenant  Network  Nw Type  Encap type  Packet tag  Subnet"));
        assert!(
            lines[2].starts_with("t1      n1       data     vxlan       7           10.1.1.0/24")
        );
        let (res, out) = run_netctl(&srv.url, &["net", "ls", "-t", "t1", "-a", "-j"]);
        assert!(res.is_ok(), "{res:?}");
        let parsed: Value = serde_json::from_str(&out).unwrap_or(Value::Null);
        assert_eq!(parsed.as_array().map(Vec::len), Some(2));
        let (res, _) = run_netctl(&srv.url, &["net", "ls", "-t", "nosuch"]);
        assert_eq!(
            res.err().map(|e| e.to_string()),
            Some("Page not found!".to_string())
        );
    }
}
