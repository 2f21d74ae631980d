//! `netctl version`: the client's version block and netmaster's (`GET /version`).

use std::io::Write;

use serde_json::Value;

use super::Ctx;
use crate::error::Result;

/// Git commit baked in at build time (`CONTIV_GIT_COMMIT`), "unknown" otherwise.
pub const GIT_COMMIT: &str = match option_env!("CONTIV_GIT_COMMIT") {
    Some(commit) => commit,
    None => "unknown",
};

/// Build time baked in at build time (`CONTIV_BUILD_TIME`), "unknown" otherwise.
pub const BUILD_TIME: &str = match option_env!("CONTIV_BUILD_TIME") {
    Some(time) => time,
    None => "unknown",
};

/// Contiv's version block: `Version:`, `GitCommit:`, `BuildTime:` lines.
pub fn version_block(version: &str, commit: &str, build_time: &str) -> String {
    format!("Version: {version}\nGitCommit: {commit}\nBuildTime: {build_time}\n")
}

/// This netctl's version block.
pub fn client_version_block() -> String {
    version_block(env!("CARGO_PKG_VERSION"), GIT_COMMIT, BUILD_TIME)
}

/// netmaster's version block from its `/version` answer (Contiv's `Version`/`GitCommit`/`BuildTime`,
/// or their lower-camel spellings).
pub fn server_version_block(info: &Value) -> String {
    let field = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| info.get(*n).and_then(Value::as_str))
            .unwrap_or("")
            .to_string()
    };
    version_block(
        &field(&["Version", "version"]),
        &field(&["GitCommit", "gitCommit", "git_commit"]),
        &field(&["BuildTime", "buildTime", "build_time"]),
    )
}

pub fn run(ctx: &Ctx, out: &mut dyn Write) -> Result<()> {
    let info = ctx.client()?.get_json("/version")?;
    write!(
        out,
        "Client Version:\n{}\nServer Version:\n{}",
        client_version_block(),
        server_version_block(&info)
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::commands::test_support::{run_netctl, FakeServer};

    #[test]
    fn prints_both_blocks() {
        let srv = FakeServer::start();
        srv.route(
            "GET",
            "/version",
            200,
            r#"{"Version":"1.2.3","GitCommit":"abc","BuildTime":"now"}"#,
        );
        let (res, out) = run_netctl(&srv.url, &["version"]);
        assert!(res.is_ok(), "{res:?}");
        assert!(out.starts_with("Client Version:\nVersion: "));
        assert!(out.ends_with("Server Version:\nVersion: 1.2.3\nGitCommit: abc\nBuildTime: now\n"));
    }
}
