//! `netctl audit`: netmaster's audit log (`GET /api/v1/audit/`), every write and refused call,
//! oldest first, as a table or `-j` JSON.

use std::io::Write;

use clap::Args;
use serde_json::Value;

use super::policy::query_string;
use super::Ctx;
use crate::error::Result;
use crate::output::{print_json, print_table, str_field};

#[derive(Debug, Clone, Args)]
pub struct AuditArgs {
    /// Entries since a time (RFC 3339, e.g. 2026-12-05T06:00:00Z) or for a duration back from
    /// now (30s, 10m, 2h, 7d)
    #[arg(long)]
    pub since: Option<String>,
    /// Only this user (`anonymous`; `host:<name>` for agents)
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Only this tenant
    #[arg(short = 't', long)]
    pub tenant: Option<String>,
    /// The newest N entries (netmaster's default: 1000)
    #[arg(short = 'l', long)]
    pub limit: Option<u64>,
    /// Output in JSON format
    #[arg(short = 'j', long)]
    pub json: bool,
}

pub fn run(args: &AuditArgs, ctx: &Ctx, out: &mut dyn Write) -> Result<()> {
    let limit = args.limit.map(|l| l.to_string());
    let params: Vec<(&str, &str)> = [
        ("since", args.since.as_deref()),
        ("user", args.user.as_deref()),
        ("tenant", args.tenant.as_deref()),
        ("limit", limit.as_deref()),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.map(|v| (k, v)))
    .collect();
    let query = if params.is_empty() {
        String::new()
    } else {
        query_string(&params)
    };
    let entries = ctx.client()?.get_json(&format!("/api/v1/audit/{query}"))?;
    if args.json {
        return print_json(out, &entries);
    }
    let rows: Vec<Vec<String>> = entries
        .as_array()
        .map(|a| a.iter().map(row_of).collect())
        .unwrap_or_default();
    print_table(
        out,
        &[
            "Time", "User", "Source", "Request", "Object", "Tenant", "Status", "Change",
        ],
        &rows,
    )
}

/// One table row: the time to the millisecond, who, from where, what, and a one-line change.
fn row_of(e: &Value) -> Vec<String> {
    let time = str_field(e, "time");
    let time = match time.split_once('.') {
        Some((secs, frac)) => format!("{secs}.{}Z", &frac[..frac.len().min(3)]),
        None => time,
    };
    let object = format!("{} {}", str_field(e, "kind"), str_field(e, "key"));
    vec![
        time,
        str_field(e, "user"),
        str_field(e, "source"),
        format!("{} {}", str_field(e, "method"), str_field(e, "path")),
        object.trim().to_string(),
        str_field(e, "tenant"),
        e["status"]
            .as_u64()
            .map(|s| s.to_string())
            .unwrap_or_default(),
        change(e),
    ]
}

/// `created`, `deleted`, `changed: a, b`, or the error of a refused call.
fn change(e: &Value) -> String {
    if e["status"].as_u64().unwrap_or(0) >= 400 {
        return str_field(e, "error");
    }
    match (&e["before"], &e["after"]) {
        (Value::Null, Value::Object(_)) => "created".into(),
        (Value::Object(_), Value::Null) => "deleted".into(),
        (Value::Object(b), Value::Object(a)) => {
            let mut fields: Vec<&str> = a
                .iter()
                .filter(|(k, v)| b.get(*k) != Some(*v))
                .map(|(k, _)| k.as_str())
                .chain(b.keys().filter(|k| !a.contains_key(*k)).map(String::as_str))
                .collect();
            fields.sort_unstable();
            if fields.is_empty() {
                "unchanged".into()
            } else {
                format!("changed: {}", fields.join(", "))
            }
        }
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use crate::commands::test_support::{run_netctl, FakeServer};

    #[test]
    fn filters_go_to_netmaster_and_rows_say_what_changed() {
        let srv = FakeServer::start();
        srv.route(
            "GET",
            "/api/v1/audit/?since=10m&user=alice&tenant=t1",
            200,
            r#"[{"time":"2026-12-05T06:00:00.123456789Z","user":"alice","source":"127.0.0.1:5000",
                 "method":"POST","path":"/api/v1/networks/t1:n/","kind":"network","key":"t1:n",
                 "tenant":"t1","before":null,"after":{"key":"t1:n"},"status":200},
                {"time":"2026-12-05T06:00:01Z","user":"alice","source":"127.0.0.1:5000",
                 "method":"POST","path":"/api/v1/networks/t1:m/","kind":"network","key":"t1:m",
                 "tenant":"t1","status":400,"error":"bad subnet"}]"#,
        );
        let args = [
            "audit", "--since", "10m", "--user", "alice", "--tenant", "t1",
        ];
        let (res, out) = run_netctl(&srv.url, &args);
        assert!(res.is_ok(), "{res:?}");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 4, "{out}");
        assert!(lines[0].starts_with("Time"), "{out}");
        assert!(
            lines[2].starts_with("2026-12-05T06:00:00.123Z  alice"),
            "{out}"
        );
        assert!(lines[2].ends_with("200     created"), "{out}");
        assert!(lines[3].ends_with("bad subnet"), "{out}");
        let mut json_args = args.to_vec();
        json_args.push("-j");
        let (res, out) = run_netctl(&srv.url, &json_args);
        assert!(res.is_ok(), "{res:?}");
        assert!(out.contains("\"error\": \"bad subnet\""), "{out}");
    }
}
