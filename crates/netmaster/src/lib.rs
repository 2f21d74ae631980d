//! netmaster: Contiv REST API server, resource manager and state owner

/// Entry point of the thin binary (placeholder until the crate lands).
pub fn cli_main() -> std::process::ExitCode {
    std::process::ExitCode::SUCCESS
}
