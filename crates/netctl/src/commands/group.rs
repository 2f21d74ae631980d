//! `netctl group`: endpoint groups (create, inspect, rm, ls).

use std::io::Write;

use clap::{Args, Subcommand};
use serde_json::Value;

use super::{inspect, key, list_per_tenant, Body, Ctx};
use crate::cli::{ListFlags, TenantFlag};
use crate::error::Result;
use crate::output::{list_field, render_table, str_field};

const PLURAL: &str = "endpointGroups";

/// Endpoint Group manipulation tools
#[derive(Subcommand, Debug, PartialEq, Eq)]
pub enum GroupCmd {
    /// Create an endpoint group
    Create(CreateArgs),
    /// Inspect a EndpointGroup
    Inspect {
        #[command(flatten)]
        tenant: TenantFlag,
        group: String,
    },
    /// Delete an endpoint group
    #[command(visible_alias = "delete")]
    Rm {
        #[command(flatten)]
        tenant: TenantFlag,
        group: String,
    },
    /// List endpoint groups
    #[command(visible_alias = "list")]
    Ls(ListFlags),
}

/// `netctl group create [options] <network> <group>`
#[derive(Args, Debug, PartialEq, Eq)]
pub struct CreateArgs {
    #[command(flatten)]
    pub tenant: TenantFlag,
    /// Policy (repeat for several)
    #[arg(short = 'p', long = "policy")]
    pub policies: Vec<String>,
    /// network profile
    #[arg(
        short = 'n',
        long = "networkprofile",
        default_value = "",
        hide_default_value = true
    )]
    pub net_profile: String,
    /// External contract (repeat for several)
    #[arg(short = 'e', long = "external-contract")]
    pub external_contracts: Vec<String>,
    /// IP Address range, example 10.36.0.1-10.36.0.10
    #[arg(
        short = 'r',
        long = "ip-pool",
        default_value = "",
        hide_default_value = true
    )]
    pub ip_pool: String,
    /// Configured Group Tag
    #[arg(
        long = "epg-tag",
        visible_alias = "tag",
        default_value = "",
        hide_default_value = true
    )]
    pub epg_tag: String,
    pub network: String,
    pub group: String,
}

pub fn run(cmd: &GroupCmd, ctx: &Ctx, out: &mut dyn Write) -> Result<()> {
    match cmd {
        GroupCmd::Create(args) => {
            let tenant = &args.tenant.tenant;
            ctx.client()?
                .post(PLURAL, &key(&[tenant, &args.group]), &create_body(args))?;
            writeln!(out, "Creating EndpointGroup {tenant}:{}", args.group)?;
            Ok(())
        }
        GroupCmd::Inspect { tenant, group } => {
            inspect(ctx, out, PLURAL, &key(&[&tenant.tenant, group]))
        }
        GroupCmd::Rm { tenant, group } => {
            ctx.client()?.delete(PLURAL, &key(&[&tenant.tenant, group]))
        }
        GroupCmd::Ls(flags) => list_per_tenant(ctx, out, PLURAL, flags, "groupName", table),
    }
}

/// The endpoint group object to post.
pub fn create_body(args: &CreateArgs) -> Value {
    Body::new()
        .str("tenantName", &args.tenant.tenant)
        .str("networkName", &args.network)
        .str("groupName", &args.group)
        .str("netProfile", &args.net_profile)
        .str("ipPool", &args.ip_pool)
        .list("policies", &args.policies)
        .list("extContractsGrps", &args.external_contracts)
        .str("cfgdTag", &args.epg_tag)
        .build()
}

fn table(items: &[Value]) -> String {
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|g| {
            vec![
                str_field(g, "tenantName"),
                str_field(g, "groupName"),
                str_field(g, "networkName"),
                str_field(g, "ipPool"),
                str_field(g, "cfgdTag"),
                list_field(g, "policies").join(","),
                str_field(g, "netProfile"),
            ]
        })
        .collect();
    let headers = [
        "Tenant",
        "Group",
        "Network",
        "IP Pool",
        "CfgdTag",
        "Policies",
        "Network profile",
    ];
    render_table(&headers, &rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Command;
    use crate::commands::test_support::{parse, refused, run_netctl, FakeServer};
    use serde_json::json;

    fn group(args: &[&str]) -> GroupCmd {
        match parse(args).command {
            Command::Group(cmd) => cmd,
            other => panic!("not a group command: {other:?}"),
        }
    }

    #[test]
    fn parses_create() {
        let GroupCmd::Create(c) = group(&[
            "group",
            "create",
            "-t",
            "t1",
            "-p",
            "p1",
            "--policy",
            "p2",
            "-n",
            "np",
            "-e",
            "c1",
            "-r",
            "10.36.0.1-10.36.0.10",
            "-tag",
            "web",
            "net1",
            "g1",
        ]) else {
            panic!("not create")
        };
        assert_eq!(c.policies, vec!["p1", "p2"]);
        assert_eq!(
            (
                c.net_profile.as_str(),
                c.ip_pool.as_str(),
                c.epg_tag.as_str()
            ),
            ("np", "10.36.0.1-10.36.0.10", "web")
        );
        assert_eq!(c.external_contracts, vec!["c1"]);
        assert_eq!((c.network.as_str(), c.group.as_str()), ("net1", "g1"));
        assert!(refused(&["group", "create", "net1"]));
    }

    #[test]
    fn parses_others() {
        assert!(
            matches!(group(&["group", "ls", "-a", "-j"]), GroupCmd::Ls(f) if f.all && f.output.json)
        );
        assert!(matches!(group(&["group", "list", "-q"]), GroupCmd::Ls(f) if f.output.quiet));
        assert!(
            matches!(group(&["group", "delete", "-t", "x", "g"]), GroupCmd::Rm { tenant, group } if tenant.tenant == "x" && group == "g")
        );
        assert!(
            matches!(group(&["group", "inspect", "g"]), GroupCmd::Inspect { tenant, .. } if tenant.tenant == "default")
        );
    }

    #[test]
    fn create_body_and_table() {
        let srv = FakeServer::start();
        srv.route("POST", "/api/v1/endpointGroups/t1:g1/", 200, "{}");
        let (res, out) = run_netctl(
            &srv.url,
            &[
                "group", "create", "-t", "t1", "-p", "a", "-p", "b", "n1", "g1",
            ],
        );
        assert!(res.is_ok(), "{res:?}");
        assert_eq!(out, "Creating EndpointGroup t1:g1\n");
        assert_eq!(
            srv.writes()[0].json(),
            json!({"tenantName": "t1", "networkName": "n1", "groupName": "g1", "policies": ["a", "b"]})
        );
        let text = table(&[
            json!({"tenantName": "t1", "groupName": "g1", "networkName": "n1", "policies": ["a", "b"]}),
        ]);
        assert!(text
            .lines()
            .nth(2)
            .is_some_and(|l| l.starts_with("t1      g1     n1")));
        assert!(text.contains("a,b"));
    }
}
