//! `netctl aci-gw`: the ACI gateway settings object `aciGw` (info, inspect, set).

use std::io::Write;

use clap::{Args, Subcommand};
use serde_json::Value;

use super::{inspect, Body, Ctx};
use crate::cli::InfoFlags;
use crate::error::Result;
use crate::output::{label_lines, print_json, str_field};

const PLURAL: &str = "aciGws";
const NAME: &str = "aciGw";

/// ACI Gateway information
#[derive(Subcommand, Debug, PartialEq, Eq)]
pub enum AciGwCmd {
    /// Show aci gateway information
    Info(InfoFlags),
    /// Inspect aci gateway operational information
    Inspect,
    /// Set aci-gw parameters
    Set(SetArgs),
}

/// `netctl aci-gw set [options]`: replaces every setting (as Contiv did).
#[derive(Args, Debug, PartialEq, Eq)]
pub struct SetArgs {
    /// Blank or  Comma separated paths of the form topology/pod-1/paths-101/pathep-[eth1/14]
    #[arg(
        short = 'p',
        long = "path-bindings",
        default_value = "",
        hide_default_value = true
    )]
    pub path_bindings: String,
    /// Blank or  Comma separated nodes of the form topology/pod-1/node-101
    #[arg(
        short = 'n',
        long = "node-bindings",
        default_value = "",
        hide_default_value = true
    )]
    pub node_bindings: String,
    /// ACI physical domain name (e.g. containerDom)
    #[arg(
        short = 'd',
        long = "phys-dom",
        default_value = "",
        hide_default_value = true
    )]
    pub phys_dom: String,
    /// Should security policies be enforced (yes,no)
    #[arg(short = 'e', long = "enforce-policies", default_value = "yes")]
    pub enforce_policies: String,
    /// Should gateway look up objects in common tenant as well(yes,no)
    #[arg(short = 'i', long = "include-common-tenant", default_value = "no")]
    pub include_common_tenant: String,
}

pub fn run(cmd: &AciGwCmd, ctx: &Ctx, out: &mut dyn Write) -> Result<()> {
    match cmd {
        AciGwCmd::Info(flags) => {
            let list = ctx.client()?.list(PLURAL)?;
            if flags.json {
                print_json(out, &Value::from(list))
            } else {
                out.write_all(info_text(&list).as_bytes())?;
                Ok(())
            }
        }
        AciGwCmd::Inspect => inspect(ctx, out, PLURAL, NAME),
        AciGwCmd::Set(args) => {
            let client = ctx.client()?;
            // Like Contiv: a missing aciGw object is created, so a failed read is not an error.
            let key = client
                .get(PLURAL, NAME)
                .map(|v| str_field(&v, "key"))
                .unwrap_or_default();
            client.post(PLURAL, NAME, &set_body(&key, args))
        }
    }
}

/// The aciGw object to post.
pub fn set_body(key: &str, args: &SetArgs) -> Value {
    Body::new()
        .str("key", key)
        .str("name", NAME)
        .str("enforcePolicies", &args.enforce_policies)
        .str("includeCommonTenant", &args.include_common_tenant)
        .str("nodeBindings", &args.node_bindings)
        .str("pathBindings", &args.path_bindings)
        .str("physicalDomain", &args.phys_dom)
        .build()
}

/// `aci-gw info` as Contiv printed it.
pub fn info_text(list: &[Value]) -> String {
    label_lines(
        list,
        &[
            ("Path bindings", "pathBindings"),
            ("Node bindings", "nodeBindings"),
            ("Physical domain", "physicalDomain"),
            ("Enforce policies", "enforcePolicies"),
            ("Include Common-Tenant", "includeCommonTenant"),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Command;
    use crate::commands::test_support::{parse, run_netctl, FakeServer};
    use serde_json::json;

    fn gw(args: &[&str]) -> AciGwCmd {
        match parse(args).command {
            Command::AciGw(cmd) => cmd,
            other => panic!("not an aci-gw command: {other:?}"),
        }
    }

    #[test]
    fn parses() {
        let AciGwCmd::Set(s) = gw(&[
            "aci-gw",
            "set",
            "-p",
            "topology/pod-1/paths-101/pathep-[eth1/14]",
            "-n",
            "topology/pod-1/node-101",
            "-d",
            "dom",
        ]) else {
            panic!("not set")
        };
        assert_eq!(
            (
                s.enforce_policies.as_str(),
                s.include_common_tenant.as_str(),
                s.phys_dom.as_str()
            ),
            ("yes", "no", "dom")
        );
        assert!(matches!(gw(&["aci-gw", "info", "-j"]), AciGwCmd::Info(f) if f.json));
        assert_eq!(gw(&["aci-gw", "inspect"]), AciGwCmd::Inspect);
    }

    #[test]
    fn set_creates_when_missing() {
        let srv = FakeServer::start();
        srv.route("POST", "/api/v1/aciGws/aciGw/", 200, "{}");
        let (res, _) = run_netctl(&srv.url, &["aci-gw", "set", "-d", "dom", "-i", "yes"]);
        assert!(res.is_ok(), "{res:?}");
        assert_eq!(
            srv.writes()[0].json(),
            json!({"name": "aciGw", "enforcePolicies": "yes", "includeCommonTenant": "yes", "physicalDomain": "dom"})
        );
    }
}
