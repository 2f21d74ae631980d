//! `netctl service`: service load balancer objects (create, rm, ls, inspect).

use std::io::Write;

use clap::{Args, Subcommand};
use serde_json::Value;

use super::{inspect, key, list_per_tenant, Body, Ctx};
use crate::cli::{ListFlags, TenantFlag};
use crate::error::Result;
use crate::output::{go_list, list_field, render_table, str_field};

const PLURAL: &str = "serviceLBs";

/// service object creation (only for  docker version <= 1.12.x)
#[derive(Subcommand, Debug, PartialEq, Eq)]
pub enum ServiceCmd {
    /// List service objects
    #[command(visible_alias = "list")]
    Ls(ListFlags),
    /// Inspect a service
    Inspect {
        #[command(flatten)]
        tenant: TenantFlag,
        service: String,
    },
    /// Delete service object
    #[command(visible_alias = "delete")]
    Rm {
        /// service tenant
        #[arg(short = 't', long, default_value = "", hide_default_value = true)]
        tenant: String,
        service: String,
    },
    /// Create Service object (only for docker version <= 1.12.x)
    Create(CreateArgs),
}

/// `netctl service create [options] <servicename>`
#[derive(Args, Debug, PartialEq, Eq)]
pub struct CreateArgs {
    /// service tenant
    #[arg(short = 't', long, default_value = "", hide_default_value = true)]
    pub tenant: String,
    /// service network name
    #[arg(short = 's', long, default_value = "", hide_default_value = true)]
    pub network: String,
    /// service selector .Usage: --selector=key1=value1 --selector=key2=value2
    #[arg(short = 'l', long = "selector")]
    pub selectors: Vec<String>,
    /// service/provider Port Usage- --port=svcPort1:provPort1:protocol --port=svcPort2:provPort2:protocol
    #[arg(short = 'p', long = "port")]
    pub ports: Vec<String>,
    /// preferred ip address
    #[arg(
        long = "preferred-ip",
        visible_alias = "ip",
        default_value = "",
        hide_default_value = true
    )]
    pub preferred_ip: String,
    pub service: String,
}

/// An empty service tenant means "default" (Contiv's service commands have no flag default).
fn tenant_or_default(tenant: &str) -> &str {
    if tenant.is_empty() {
        "default"
    } else {
        tenant
    }
}

pub fn run(cmd: &ServiceCmd, ctx: &Ctx, out: &mut dyn Write) -> Result<()> {
    match cmd {
        ServiceCmd::Ls(flags) => list_per_tenant(ctx, out, PLURAL, flags, "serviceName", table),
        ServiceCmd::Inspect { tenant, service } => {
            inspect(ctx, out, PLURAL, &key(&[&tenant.tenant, service]))
        }
        ServiceCmd::Rm { tenant, service } => {
            let tenant = tenant_or_default(tenant);
            writeln!(out, "Deleting Service  {service},{tenant}")?;
            ctx.client()?.delete(PLURAL, &key(&[tenant, service]))
        }
        ServiceCmd::Create(args) => {
            let tenant = tenant_or_default(&args.tenant);
            ctx.client()?
                .post(PLURAL, &key(&[tenant, &args.service]), &create_body(args))?;
            writeln!(out, "Creating ServiceLB {tenant}:{}", args.service)?;
            Ok(())
        }
    }
}

/// The service object to post.
pub fn create_body(args: &CreateArgs) -> Value {
    Body::new()
        .str("serviceName", &args.service)
        .str("tenantName", tenant_or_default(&args.tenant))
        .str("networkName", &args.network)
        .str("ipAddress", &args.preferred_ip)
        .list("selectors", &args.selectors)
        .list("ports", &args.ports)
        .build()
}

fn table(items: &[Value]) -> String {
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|s| {
            vec![
                str_field(s, "serviceName"),
                str_field(s, "tenantName"),
                str_field(s, "networkName"),
                go_list(&list_field(s, "selectors")),
            ]
        })
        .collect();
    render_table(&["ServiceName", "Tenant", "Network", "Selectors"], &rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Command;
    use crate::commands::test_support::{parse, run_netctl, FakeServer};
    use serde_json::json;

    fn svc(args: &[&str]) -> ServiceCmd {
        match parse(args).command {
            Command::Service(cmd) => cmd,
            other => panic!("not a service command: {other:?}"),
        }
    }

    #[test]
    fn parses() {
        let ServiceCmd::Create(c) = svc(&[
            "service",
            "create",
            "-t",
            "t1",
            "-s",
            "n1",
            "-l",
            "app=web",
            "--selector=tier=fe",
            "-p",
            "80:8080:TCP",
            "-ip",
            "10.1.1.5",
            "web",
        ]) else {
            panic!("not create")
        };
        assert_eq!(c.selectors, vec!["app=web", "tier=fe"]);
        assert_eq!(c.ports, vec!["80:8080:TCP"]);
        assert_eq!(c.preferred_ip, "10.1.1.5");
        assert_eq!(
            create_body(&c),
            json!({"serviceName": "web", "tenantName": "t1", "networkName": "n1", "ipAddress": "10.1.1.5",
                   "selectors": ["app=web", "tier=fe"], "ports": ["80:8080:TCP"]})
        );
        assert!(
            matches!(svc(&["service", "delete", "web"]), ServiceCmd::Rm { tenant, .. } if tenant.is_empty())
        );
        assert!(
            matches!(svc(&["service", "list", "-a", "-j"]), ServiceCmd::Ls(f) if f.all && f.output.json)
        );
        assert!(matches!(
            svc(&["service", "inspect", "web"]),
            ServiceCmd::Inspect { .. }
        ));
    }

    #[test]
    fn create_defaults_tenant() {
        let srv = FakeServer::start();
        srv.route("POST", "/api/v1/serviceLBs/default:web/", 200, "{}");
        let (res, out) = run_netctl(
            &srv.url,
            &["service", "create", "-s", "n1", "-l", "app=web", "web"],
        );
        assert!(res.is_ok(), "{res:?}");
        assert_eq!(out, "Creating ServiceLB default:web\n");
        let text = table(&[srv.writes()[0].json()]);
        assert_eq!(
            text.lines().nth(2),
            Some("web          default  n1       [app=web]")
        );
    }
}
