//! Thin binary: run Contiv's netctl command tree, map errors to an exit code.
fn main() -> std::process::ExitCode {
    contiv_netctl::cli_main()
}
