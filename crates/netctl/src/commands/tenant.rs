//! `netctl tenant`: create, rm, ls, inspect.

use std::io::Write;

use clap::Subcommand;
use serde_json::Value;

use super::{inspect, print_list, Body, Ctx};
use crate::cli::OutputFlags;
use crate::error::Result;
use crate::output::{render_table, str_field};

const PLURAL: &str = "tenants";

/// Tenant manipulation tools
#[derive(Subcommand, Debug, PartialEq, Eq)]
pub enum TenantCmd {
    /// List tenants
    #[command(visible_alias = "list")]
    Ls {
        #[command(flatten)]
        output: OutputFlags,
    },
    /// Delete a tenant
    #[command(visible_alias = "delete")]
    Rm { tenant: String },
    /// Create a tenant
    Create { tenant: String },
    /// Inspect a tenant
    Inspect { tenant: String },
}

pub fn run(cmd: &TenantCmd, ctx: &Ctx, out: &mut dyn Write) -> Result<()> {
    match cmd {
        TenantCmd::Ls { output } => {
            let items = ctx.client()?.list(PLURAL)?;
            print_list(out, &items, output, "tenantName", table)
        }
        TenantCmd::Rm { tenant } => {
            writeln!(out, "Deleting tenant {tenant}")?;
            ctx.client()?.delete(PLURAL, tenant)
        }
        TenantCmd::Create { tenant } => {
            let body = Body::new().str("tenantName", tenant).build();
            ctx.client()?.post(PLURAL, tenant, &body)?;
            writeln!(out, "Creating tenant: {tenant}")?;
            Ok(())
        }
        TenantCmd::Inspect { tenant } => inspect(ctx, out, PLURAL, tenant),
    }
}

fn table(items: &[Value]) -> String {
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|t| vec![str_field(t, "tenantName")])
        .collect();
    render_table(&["Name"], &rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Command;
    use crate::commands::test_support::{parse, refused, run_netctl, FakeServer};
    use serde_json::json;

    fn tenant(args: &[&str]) -> TenantCmd {
        match parse(args).command {
            Command::Tenant(cmd) => cmd,
            other => panic!("not a tenant command: {other:?}"),
        }
    }

    #[test]
    fn parses() {
        assert_eq!(
            tenant(&["tenant", "create", "t1"]),
            TenantCmd::Create {
                tenant: "t1".into()
            }
        );
        assert_eq!(
            tenant(&["tenant", "delete", "t1"]),
            TenantCmd::Rm {
                tenant: "t1".into()
            }
        );
        assert_eq!(
            tenant(&["tenant", "inspect", "t1"]),
            TenantCmd::Inspect {
                tenant: "t1".into()
            }
        );
        let ls = TenantCmd::Ls {
            output: OutputFlags {
                json: true,
                quiet: false,
            },
        };
        assert_eq!(tenant(&["tenant", "list", "-j"]), ls);
        assert!(refused(&["tenant", "create"]));
        assert!(refused(&["tenant", "ls", "extra"]));
        assert!(refused(&["tenant", "ls", "-a"]));
    }

    #[test]
    fn create_posts_tenant() {
        let srv = FakeServer::start();
        srv.route("POST", "/api/v1/tenants/t1/", 200, "{}");
        let (res, out) = run_netctl(&srv.url, &["tenant", "create", "t1"]);
        assert!(res.is_ok(), "{res:?}");
        assert_eq!(out, "Creating tenant: t1\n");
        let writes = srv.writes();
        assert_eq!(
            (writes[0].method.as_str(), writes[0].path.as_str()),
            ("POST", "/api/v1/tenants/t1/")
        );
        assert_eq!(writes[0].json(), json!({"tenantName": "t1"}));
    }

    #[test]
    fn ls_table_and_quiet() {
        let srv = FakeServer::start();
        srv.route(
            "GET",
            "/api/v1/tenants/",
            200,
            r#"[{"key":"default","tenantName":"default"},{"tenantName":"blue"}]"#,
        );
        let (res, out) = run_netctl(&srv.url, &["tenant", "ls"]);
        assert!(res.is_ok(), "{res:?}");
        assert_eq!(out, "Name\n----\ndefault\nblue\n");
        let (_, out) = run_netctl(&srv.url, &["tenant", "ls", "-q"]);
        assert_eq!(out, "default\nblue\n");
    }

    #[test]
    fn server_error_is_reported() {
        let srv = FakeServer::start();
        srv.route(
            "DELETE",
            "/api/v1/tenants/t1/",
            500,
            "tenant has networks\n",
        );
        let (res, out) = run_netctl(&srv.url, &["tenant", "rm", "t1"]);
        assert_eq!(out, "Deleting tenant t1\n");
        assert_eq!(
            res.err().map(|e| e.to_string()),
            Some("tenant has networks".to_string())
        );
    }
}
