//! netctl: Contiv's command line client

/// Entry point of the thin binary (placeholder until the crate lands).
pub fn cli_main() -> std::process::ExitCode {
    std::process::ExitCode::SUCCESS
}
