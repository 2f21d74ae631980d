//! `netctl endpoint` (alias `ep`): endpoint inspection.

use std::io::Write;

use clap::Subcommand;

use super::{inspect, Ctx};
use crate::error::Result;

/// Endpoint Inspection
#[derive(Subcommand, Debug, PartialEq, Eq)]
pub enum EndpointCmd {
    /// Inspect an Endpoint
    Inspect { epid: String },
}

pub fn run(cmd: &EndpointCmd, ctx: &Ctx, out: &mut dyn Write) -> Result<()> {
    match cmd {
        EndpointCmd::Inspect { epid } => inspect(ctx, out, "endpoints", epid),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Command;
    use crate::commands::test_support::{parse, refused, run_netctl, FakeServer};

    #[test]
    fn parses_and_inspects() {
        let cli = parse(&["ep", "inspect", "abc"]);
        assert!(
            matches!(cli.command, Command::Endpoint(EndpointCmd::Inspect { epid }) if epid == "abc")
        );
        assert!(refused(&["endpoint", "inspect"]));
        let srv = FakeServer::start();
        srv.route(
            "GET",
            "/api/v1/inspect/endpoints/abc/",
            200,
            r#"{"Oper":{"endpointID":"abc"}}"#,
        );
        let (res, out) = run_netctl(&srv.url, &["endpoint", "inspect", "abc"]);
        assert!(res.is_ok(), "{res:?}");
        assert_eq!(
            out,
            "{\n  \"Oper\": {\n    \"endpointID\": \"abc\"\n  }\n}\n"
        );
        let (res, _) = run_netctl(&srv.url, &["endpoint", "inspect", "nope"]);
        assert!(res.is_err());
    }
}
