//! `netctl external-contracts`: external contract groups (create, rm, ls).

use std::io::Write;

use clap::{Args, Subcommand};
use serde_json::Value;

use super::{key, list_per_tenant, Body, Ctx};
use crate::cli::{ListFlags, TenantFlag};
use crate::error::{Error, Result};
use crate::output::{go_list, list_field, render_table, str_field};

const PLURAL: &str = "extContractsGroups";

/// External contracts
#[derive(Subcommand, Debug, PartialEq, Eq)]
pub enum ExtContractsCmd {
    /// List external contracts
    #[command(visible_alias = "list")]
    Ls(ListFlags),
    /// Delete external contracts
    #[command(visible_alias = "delete")]
    Rm {
        #[command(flatten)]
        tenant: TenantFlag,
        contracts_group: String,
    },
    /// Create external contracts
    Create(CreateArgs),
}

/// `netctl external-contracts create [options] <contracts group>`
#[derive(Args, Debug, PartialEq, Eq)]
pub struct CreateArgs {
    #[command(flatten)]
    pub tenant: TenantFlag,
    /// External contracts type - consumed
    #[arg(short = 'c', long)]
    pub consumed: bool,
    /// External contracts type - provided
    #[arg(short = 'p', long)]
    pub provided: bool,
    /// Contract (repeat for several)
    #[arg(short = 'a', long = "contract")]
    pub contracts: Vec<String>,
    pub contracts_group: String,
}

pub fn run(cmd: &ExtContractsCmd, ctx: &Ctx, out: &mut dyn Write) -> Result<()> {
    match cmd {
        ExtContractsCmd::Ls(flags) => {
            list_per_tenant(ctx, out, PLURAL, flags, "contractsGroupName", table)
        }
        ExtContractsCmd::Rm {
            tenant,
            contracts_group,
        } => {
            let tenant = &tenant.tenant;
            writeln!(
                out,
                "Deleting external contracts group {contracts_group} in tenant {tenant}"
            )?;
            ctx.client()?
                .delete(PLURAL, &key(&[tenant, contracts_group]))
        }
        ExtContractsCmd::Create(args) => {
            let body = create_body(args)?;
            let tenant = &args.tenant.tenant;
            ctx.client()?
                .post(PLURAL, &key(&[tenant, &args.contracts_group]), &body)?;
            writeln!(
                out,
                "Creating ExternalContracts {tenant}:{}",
                args.contracts_group
            )?;
            Ok(())
        }
    }
}

/// The contracts group to post, after Contiv's checks on type and contracts.
pub fn create_body(args: &CreateArgs) -> Result<Value> {
    let kind = match (args.provided, args.consumed) {
        (true, true) => return Err(Error::invalid("Cannot use both provided and consumed")),
        (true, false) => "provided",
        (false, true) => "consumed",
        (false, false) => {
            return Err(Error::invalid(
                "Either provided or consumed must be specified",
            ))
        }
    };
    if args.contracts.is_empty() {
        return Err(Error::invalid("Contracts not provided"));
    }
    Ok(Body::new()
        .str("tenantName", &args.tenant.tenant)
        .str("contractsGroupName", &args.contracts_group)
        .str("contractsType", kind)
        .list("contracts", &args.contracts)
        .build())
}

fn table(items: &[Value]) -> String {
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|c| {
            vec![
                str_field(c, "tenantName"),
                str_field(c, "contractsGroupName"),
                str_field(c, "contractsType"),
                go_list(&list_field(c, "contracts")),
            ]
        })
        .collect();
    render_table(&["Tenant", "Name", "Type", "Contracts"], &rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Command;
    use crate::commands::test_support::parse;
    use serde_json::json;

    fn ec(args: &[&str]) -> ExtContractsCmd {
        match parse(args).command {
            Command::ExternalContracts(cmd) => cmd,
            other => panic!("not an external-contracts command: {other:?}"),
        }
    }

    fn create(args: &[&str]) -> CreateArgs {
        match ec(args) {
            ExtContractsCmd::Create(c) => c,
            other => panic!("not create: {other:?}"),
        }
    }

    #[test]
    fn parses_and_checks() {
        let c = create(&[
            "external-contracts",
            "create",
            "-p",
            "-a",
            "uni/tn-common/brc-x",
            "-a",
            "y",
            "ext1",
        ]);
        assert_eq!(
            create_body(&c).ok(),
            Some(
                json!({"tenantName": "default", "contractsGroupName": "ext1", "contractsType": "provided",
                        "contracts": ["uni/tn-common/brc-x", "y"]})
            )
        );
        let both = create(&["external-contracts", "create", "-p", "-c", "-a", "x", "e"]);
        assert_eq!(
            create_body(&both).err().map(|e| e.to_string()).as_deref(),
            Some("Cannot use both provided and consumed")
        );
        let none = create(&["external-contracts", "create", "-a", "x", "e"]);
        assert!(matches!(create_body(&none), Err(Error::Invalid(m)) if m.starts_with("Either")));
        let empty = create(&["external-contracts", "create", "--consumed", "e"]);
        assert!(
            matches!(create_body(&empty), Err(Error::Invalid(m)) if m == "Contracts not provided")
        );
        assert!(
            matches!(ec(&["external-contracts", "list", "-a", "-q"]), ExtContractsCmd::Ls(f) if f.all && f.output.quiet)
        );
        assert!(matches!(
            ec(&["external-contracts", "delete", "-t", "t", "e"]),
            ExtContractsCmd::Rm { .. }
        ));
    }
}
