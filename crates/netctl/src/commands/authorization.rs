//! `netctl authorization create|ls|rm` over `/api/v1/auth_proxy/authorizations/`: the role an
//! LDAP/AD group (by DN) gives its members, in one tenant or every tenant.

use std::io::Write;

use serde_json::{json, Value};

use super::Ctx;
use crate::cli::AuthorizationCmd;
use crate::error::Result;

pub fn run(cmd: &AuthorizationCmd, ctx: &Ctx, out: &mut dyn Write) -> Result<()> {
    let c = ctx.client()?;
    match cmd {
        AuthorizationCmd::Create {
            group,
            role,
            tenant,
        } => {
            let body = json!({"principalName": group, "local": false, "role": role,
                "tenantName": tenant});
            let a = c.users_call("POST", "authorizations/", Some(&body))?;
            writeln!(out, "{}", a["authzUUID"].as_str().unwrap_or_default())?;
        }
        AuthorizationCmd::Ls { json } => {
            let all = c.users_call("GET", "authorizations/", None)?;
            if *json {
                writeln!(out, "{all:#}")?;
            } else {
                write_table(&all, out)?;
            }
        }
        AuthorizationCmd::Rm { id } => {
            c.users_call("DELETE", &format!("authorizations/{id}/"), None)?;
        }
    }
    Ok(())
}

fn write_table(all: &Value, out: &mut dyn Write) -> Result<()> {
    writeln!(out, "ID\tROLE\tTENANT\tGROUP")?;
    for a in all.as_array().map(Vec::as_slice).unwrap_or_default() {
        let s = |k: &str| a[k].as_str().unwrap_or_default().to_owned();
        let tenant = a["tenantName"].as_str().unwrap_or("*");
        writeln!(
            out,
            "{}\t{}\t{tenant}\t{}",
            s("authzUUID"),
            s("role"),
            s("principalName")
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_one_line_per_authorization() {
        let all = json!([{"authzUUID": "ab", "principalName": "cn=ops,dc=x", "role": "ops"},
            {"authzUUID": "cd", "principalName": "cn=t1,dc=x", "role": "tenant-admin",
             "tenantName": "t1"}]);
        let mut buf = Vec::new();
        write_table(&all, &mut buf).unwrap();
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "ID\tROLE\tTENANT\tGROUP\nab\tops\t*\tcn=ops,dc=x\ncd\ttenant-admin\tt1\tcn=t1,dc=x\n"
        );
    }
}
