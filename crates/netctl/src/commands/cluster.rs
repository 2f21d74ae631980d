//! `netctl cluster`: who leads, which netmasters run, which agents are registered, and the store
//! (netmaster's `GET /info`, asked of whichever netmaster `--netmaster` names).

use std::io::Write;

use serde_json::Value;

use super::Ctx;
use crate::error::Result;

fn text(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

fn list(v: &Value, key: &str) -> String {
    let items: Vec<String> = v
        .get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    if items.is_empty() {
        "-".to_string()
    } else {
        items.join(", ")
    }
}

/// Renders `/info` for people.
pub fn render(info: &Value) -> String {
    let store = info.get("state-store").cloned().unwrap_or_default();
    // netmaster names etcd's endpoints but not the embedded store's file.
    let store = [text(&store, "backend"), text(&store, "location")]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let leader = text(info, "leader-ip");
    format!(
        "Leader:      {}\nThis one:    {} ({})\nNetmasters:  {}\nAgents:      {}\nStore:       {} (revision {})\n",
        if leader.is_empty() { "(election under way)".to_string() } else { leader },
        text(info, "local-ip"),
        text(info, "current-state"),
        list(info, "netmaster-nodes"),
        list(info, "netplugin-nodes"),
        store,
        text(info, "store-revision"),
    )
}

pub fn run(json: bool, ctx: &Ctx, out: &mut dyn Write) -> Result<()> {
    let info = ctx.client()?.get_json("/info")?;
    if json {
        writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&info).unwrap_or_default()
        )?;
    } else {
        write!(out, "{}", render(&info))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::commands::test_support::{run_netctl, FakeServer};

    #[test]
    fn shows_leader_members_agents_and_store() {
        let srv = FakeServer::start();
        srv.route(
            "GET",
            "/info",
            200,
            r#"{"local-ip":"http://10.0.0.2:9999","leader-ip":"http://10.0.0.1:9999","current-state":"follower",
               "netmaster-nodes":["http://10.0.0.1:9999","http://10.0.0.2:9999"],"netplugin-nodes":["h1","h2"],
               "state-store":{"backend":"etcd","location":"http://10.0.0.9:2379"},"store-revision":42}"#,
        );
        let (res, out) = run_netctl(&srv.url, &["cluster"]);
        assert!(res.is_ok(), "{res:?}");
        assert_eq!(
            out,
            "Leader:      http://10.0.0.1:9999\nThis one:    http://10.0.0.2:9999 (follower)\n\
             Netmasters:  http://10.0.0.1:9999, http://10.0.0.2:9999\nAgents:      h1, h2\n\
             Store:       etcd http://10.0.0.9:2379 (revision 42)\n"
        );
        let (res, out) = run_netctl(&srv.url, &["cluster", "-j"]);
        assert!(res.is_ok(), "{res:?}");
        assert!(
            out.contains("\"leader-ip\": \"http://10.0.0.1:9999\""),
            "{out}"
        );
    }
}
