//! `netctl app-profile`: application profiles (create, update, rm, ls, group-ls).

use std::io::Write;

use clap::{Args, Subcommand};
use serde_json::Value;

use super::{key, list_per_tenant, Body, Ctx};
use crate::cli::{ListFlags, TenantFlag};
use crate::error::Result;
use crate::output::{list_field, print_json, render_table, str_field};

const PLURAL: &str = "appProfiles";

/// Application Profile manipulation tools
#[derive(Subcommand, Debug, PartialEq, Eq)]
pub enum AppProfileCmd {
    /// Create an application profile
    Create(ProfileArgs),
    /// Update an application profile
    Update(ProfileArgs),
    /// Delete an application profile
    #[command(visible_alias = "delete")]
    Rm {
        #[command(flatten)]
        tenant: TenantFlag,
        app_profile: String,
    },
    /// List Application Profiles
    #[command(visible_alias = "list")]
    Ls(ListFlags),
    /// List groups in an app-profile
    #[command(visible_alias = "group-list")]
    GroupLs {
        #[command(flatten)]
        flags: ListFlags,
        app_profile: String,
    },
}

/// `netctl app-profile create|update [options] <app-profile>`
#[derive(Args, Debug, PartialEq, Eq)]
pub struct ProfileArgs {
    #[command(flatten)]
    pub tenant: TenantFlag,
    /// Endpoint Group List (separated by commas)
    #[arg(short = 'g', long, default_value = "", hide_default_value = true)]
    pub group: String,
    pub app_profile: String,
}

pub fn run(cmd: &AppProfileCmd, ctx: &Ctx, out: &mut dyn Write) -> Result<()> {
    match cmd {
        AppProfileCmd::Create(args) => {
            post(ctx, args)?;
            writeln!(
                out,
                "Creating AppProfile {}:{}",
                args.tenant.tenant, args.app_profile
            )?;
            Ok(())
        }
        AppProfileCmd::Update(args) => post(ctx, args),
        AppProfileCmd::Rm {
            tenant,
            app_profile,
        } => ctx
            .client()?
            .delete(PLURAL, &key(&[&tenant.tenant, app_profile])),
        AppProfileCmd::Ls(flags) => {
            list_per_tenant(ctx, out, PLURAL, flags, "appProfileName", table)
        }
        AppProfileCmd::GroupLs { flags, app_profile } => {
            let profile = ctx
                .client()?
                .get(PLURAL, &key(&[&flags.tenant.tenant, app_profile]))?;
            if flags.output.json {
                print_json(out, &profile)
            } else {
                writeln!(out, "{}", list_field(&profile, "endpointGroups").join(","))?;
                Ok(())
            }
        }
    }
}

fn post(ctx: &Ctx, args: &ProfileArgs) -> Result<()> {
    let profile_key = key(&[&args.tenant.tenant, &args.app_profile]);
    ctx.client()?
        .post(PLURAL, &profile_key, &profile_body(args))
}

/// The app profile object to post; `-g a,b` is the list of endpoint groups.
pub fn profile_body(args: &ProfileArgs) -> Value {
    let groups: Vec<String> = if args.group.is_empty() {
        Vec::new()
    } else {
        args.group.split(',').map(str::to_string).collect()
    };
    Body::new()
        .str("tenantName", &args.tenant.tenant)
        .str("appProfileName", &args.app_profile)
        .list("endpointGroups", &groups)
        .build()
}

fn table(items: &[Value]) -> String {
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|p| {
            vec![
                str_field(p, "tenantName"),
                str_field(p, "appProfileName"),
                list_field(p, "endpointGroups").join(","),
            ]
        })
        .collect();
    render_table(&["Tenant", "AppProfile", "Groups"], &rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Command;
    use crate::commands::test_support::{parse, run_netctl, FakeServer};
    use serde_json::json;

    fn ap(args: &[&str]) -> AppProfileCmd {
        match parse(args).command {
            Command::AppProfile(cmd) => cmd,
            other => panic!("not an app-profile command: {other:?}"),
        }
    }

    #[test]
    fn parses() {
        let AppProfileCmd::Create(c) =
            ap(&["app-profile", "create", "-t", "t1", "-g", "web,db", "prof"])
        else {
            panic!("not create")
        };
        assert_eq!(
            profile_body(&c),
            json!({"tenantName": "t1", "appProfileName": "prof", "endpointGroups": ["web", "db"]})
        );
        assert!(
            matches!(ap(&["app-profile", "update", "--group", "web", "prof"]), AppProfileCmd::Update(u) if u.group == "web")
        );
        assert!(matches!(
            ap(&["app-profile", "delete", "prof"]),
            AppProfileCmd::Rm { .. }
        ));
        assert!(matches!(ap(&["app-profile", "list", "-a"]), AppProfileCmd::Ls(f) if f.all));
        assert!(
            matches!(ap(&["app-profile", "group-list", "-j", "prof"]), AppProfileCmd::GroupLs { flags, .. } if flags.output.json)
        );
    }

    #[test]
    fn group_ls_prints_groups() {
        let srv = FakeServer::start();
        srv.route(
            "GET",
            "/api/v1/appProfiles/default:prof/",
            200,
            r#"{"appProfileName":"prof","endpointGroups":["web","db"]}"#,
        );
        let (res, out) = run_netctl(&srv.url, &["app-profile", "group-ls", "prof"]);
        assert!(res.is_ok(), "{res:?}");
        assert_eq!(out, "web,db\n");
    }
}
