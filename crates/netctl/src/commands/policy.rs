//! `netctl policy`: policies (create, rm, ls, inspect) and their rules (rule-add, rule-ls, rule-rm);
//! what is enforced (explain, status: see [`state`]).

use std::io::Write;

use clap::{Args, Subcommand};
use serde_json::Value;

use super::{ensure_tenant, inspect, key, list_per_tenant, print_list, Body, Ctx};
use crate::cli::{ListFlags, OutputFlags, TenantFlag};
use crate::error::{Error, Result};
use crate::output::{int_field, render_table, str_field};

const PLURAL: &str = "policys";
const RULES: &str = "rules";

/// Policy manipulation tools
#[derive(Subcommand, Debug, PartialEq, Eq)]
pub enum PolicyCmd {
    /// Create a new policy
    Create {
        #[command(flatten)]
        tenant: TenantFlag,
        policy: String,
    },
    /// Delete a policy
    #[command(visible_alias = "delete")]
    Rm {
        #[command(flatten)]
        tenant: TenantFlag,
        policy: String,
    },
    /// List policies
    #[command(visible_alias = "list")]
    Ls(ListFlags),
    /// Inspect a policy
    Inspect {
        #[command(flatten)]
        tenant: TenantFlag,
        policy: String,
    },
    /// List rules for a given tenant,policy
    RuleLs {
        #[command(flatten)]
        tenant: TenantFlag,
        #[command(flatten)]
        output: OutputFlags,
        policy: String,
    },
    /// Delete a rule from the policy
    RuleRm {
        #[command(flatten)]
        tenant: TenantFlag,
        policy: String,
        rule_id: String,
    },
    /// Add a new rule to the policy
    RuleAdd(Box<RuleArgs>),
    /// Explain which rule decides a new connection, and whether the hosts enforce it
    Explain(state::ExplainArgs),
    /// Show the policy revision each host enforces
    Status {
        /// Output in JSON format
        #[arg(short = 'j', long)]
        json: bool,
    },
}

/// `netctl policy rule-add [options] <policy> <rule id>`
#[derive(Args, Debug, PartialEq, Eq)]
pub struct RuleArgs {
    #[command(flatten)]
    pub tenant: TenantFlag,
    /// Priority Indicator
    #[arg(short = 'p', long, default_value_t = 1)]
    pub priority: i64,
    /// Direction of traffic (in/out)
    #[arg(short = 'd', long, default_value = "in")]
    pub direction: String,
    /// From Endpoint Group Name (Valid in incoming direction only)
    #[arg(
        short = 'g',
        long = "from-group",
        default_value = "",
        hide_default_value = true
    )]
    pub from_group: String,
    /// To Endpoint Group Name (Valid in outgoing direction only)
    #[arg(
        short = 'e',
        long = "to-group",
        default_value = "",
        hide_default_value = true
    )]
    pub to_group: String,
    /// From Network name (Valid in incoming direction only)
    #[arg(
        short = 'n',
        long = "from-network",
        default_value = "",
        hide_default_value = true
    )]
    pub from_network: String,
    /// To Network name (Valid in outgoing direction only)
    #[arg(
        short = 'o',
        long = "to-network",
        default_value = "",
        hide_default_value = true
    )]
    pub to_network: String,
    /// From IP address/CIDR (Valid in incoming direction only)
    #[arg(
        short = 'i',
        long = "from-ip-address",
        default_value = "",
        hide_default_value = true
    )]
    pub from_ip: String,
    /// To IP address/CIDR (Valid in outgoing direction only)
    #[arg(
        short = 's',
        long = "to-ip-address",
        default_value = "",
        hide_default_value = true
    )]
    pub to_ip: String,
    /// Protocol (e.g., tcp, udp, icmp)
    #[arg(short = 'l', long, default_value = "", hide_default_value = true)]
    pub protocol: String,
    /// Port
    #[arg(short = 'P', long, default_value_t = 0, hide_default_value = true)]
    pub port: i64,
    /// Action to take (allow or deny)
    #[arg(short = 'j', long, default_value = "allow")]
    pub action: String,
    pub policy: String,
    pub rule_id: String,
}

pub fn run(cmd: &PolicyCmd, ctx: &Ctx, out: &mut dyn Write) -> Result<()> {
    match cmd {
        PolicyCmd::Create { tenant, policy } => {
            let tenant = &tenant.tenant;
            let body = Body::new()
                .str("policyName", policy)
                .str("tenantName", tenant)
                .build();
            ctx.client()?.post(PLURAL, &key(&[tenant, policy]), &body)?;
            writeln!(out, "Creating policy {tenant}:{policy}")?;
            Ok(())
        }
        PolicyCmd::Rm { tenant, policy } => {
            let tenant = &tenant.tenant;
            writeln!(out, "Deleting policy {tenant}:{policy}")?;
            ctx.client()?.delete(PLURAL, &key(&[tenant, policy]))
        }
        PolicyCmd::Ls(flags) => list_per_tenant(ctx, out, PLURAL, flags, "policyName", table),
        PolicyCmd::Inspect { tenant, policy } => {
            inspect(ctx, out, PLURAL, &key(&[&tenant.tenant, policy]))
        }
        PolicyCmd::RuleLs {
            tenant,
            output,
            policy,
        } => rule_ls(ctx, out, &tenant.tenant, policy, output),
        PolicyCmd::RuleRm {
            tenant,
            policy,
            rule_id,
        } => ctx
            .client()?
            .delete(RULES, &key(&[&tenant.tenant, policy, rule_id])),
        PolicyCmd::RuleAdd(args) => {
            let body = rule_body(args)?;
            let rule_key = key(&[&args.tenant.tenant, &args.policy, &args.rule_id]);
            ctx.client()?.post(RULES, &rule_key, &body)
        }
        PolicyCmd::Explain(args) => state::explain(args, ctx, out),
        PolicyCmd::Status { json } => state::status(*json, ctx, out),
    }
}

/// The rule object to post, after Contiv's direction checks.
pub fn rule_body(args: &RuleArgs) -> Result<Value> {
    check_direction(args)?;
    Ok(Body::new()
        .str("tenantName", &args.tenant.tenant)
        .str("policyName", &args.policy)
        .str("ruleId", &args.rule_id)
        .int("priority", args.priority)
        .str("direction", &args.direction)
        .str("fromEndpointGroup", &args.from_group)
        .str("toEndpointGroup", &args.to_group)
        .str("fromNetwork", &args.from_network)
        .str("toNetwork", &args.to_network)
        .str("fromIpAddress", &args.from_ip)
        .str("toIpAddress", &args.to_ip)
        .str("protocol", &args.protocol)
        .int("port", args.port)
        .str("action", &args.action)
        .build())
}

/// Which endpoints a rule may name for its direction (Contiv's wording).
fn check_direction(args: &RuleArgs) -> Result<()> {
    let fail = |msg: &str| Err(Error::invalid(msg));
    match args.direction.as_str() {
        "in" => {
            if !args.to_group.is_empty() {
                return fail("Cant specify to-group for incoming rule");
            }
            if !args.to_network.is_empty() {
                return fail("Cant specify to-network for incoming rule");
            }
            if !args.from_group.is_empty() && !args.from_network.is_empty() {
                return fail("Can't specify both from-group argument and -from-network ");
            }
            Ok(())
        }
        "out" => {
            if !args.from_group.is_empty() {
                return fail("Cant specify from-group for outgoing rule");
            }
            if !args.from_network.is_empty() {
                return fail("Cant specify from-network for outgoing rule");
            }
            if !args.from_ip.is_empty() {
                return fail("Cant specify from-ip-address for outgoing rule");
            }
            if !args.to_group.is_empty() && !args.to_network.is_empty() {
                return fail("Can't specify both -to-group and -to-network");
            }
            Ok(())
        }
        _ => fail("Unknown direction"),
    }
}

fn rule_ls(
    ctx: &Ctx,
    out: &mut dyn Write,
    tenant: &str,
    policy: &str,
    flags: &OutputFlags,
) -> Result<()> {
    let client = ctx.client()?;
    ensure_tenant(&client, tenant)?;
    client.get(PLURAL, &key(&[tenant, policy]))?;
    let rules = sorted_rules(client.list(RULES)?, tenant, policy);
    print_list(out, &rules, flags, "ruleId", rules_table)
}

/// The rules of one policy, by ascending priority (stable within a priority).
pub fn sorted_rules(all: Vec<Value>, tenant: &str, policy: &str) -> Vec<Value> {
    let mut rules: Vec<Value> = all
        .into_iter()
        .filter(|r| str_field(r, "tenantName") == tenant && str_field(r, "policyName") == policy)
        .collect();
    rules.sort_by_key(|r| r.get("priority").and_then(Value::as_i64).unwrap_or(0));
    rules
}

/// Contiv's two rule tables, incoming then outgoing.
fn rules_table(rules: &[Value]) -> String {
    let rows = |direction: &str, fields: &[&str]| -> Vec<Vec<String>> {
        rules
            .iter()
            .filter(|r| str_field(r, "direction") == direction)
            .map(|r| rule_row(r, fields))
            .collect()
    };
    let incoming = rows(
        "in",
        &[
            "fromEndpointGroup",
            "fromNetwork",
            "fromIpAddress",
            "toIpAddress",
            "protocol",
        ],
    );
    let outgoing = rows(
        "out",
        &["toEndpointGroup", "toNetwork", "toIpAddress", "protocol"],
    );
    let in_headers = [
        "Rule",
        "Priority",
        "From EndpointGroup",
        "From Network",
        "From IpAddress",
        "To IpAddress",
        "Protocol",
        "Port",
        "Action",
    ];
    let out_headers = [
        "Rule",
        "Priority",
        "To EndpointGroup",
        "To Network",
        "To IpAddress",
        "Protocol",
        "Port",
        "Action",
    ];
    format!(
        "Incoming Rules:\n{}Outgoing Rules:\n{}",
        render_table(&in_headers, &incoming),
        render_table(&out_headers, &outgoing)
    )
}

fn rule_row(rule: &Value, middle: &[&str]) -> Vec<String> {
    let mut row = vec![str_field(rule, "ruleId"), int_field(rule, "priority")];
    row.extend(middle.iter().map(|f| str_field(rule, f)));
    row.push(int_field(rule, "port"));
    row.push(str_field(rule, "action"));
    row
}

fn table(items: &[Value]) -> String {
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|p| vec![str_field(p, "tenantName"), str_field(p, "policyName")])
        .collect();
    render_table(&["Tenant", "Policy"], &rows)
}

mod state;
pub(crate) use state::query_string;
#[cfg(test)]
mod tests;
