//! Thin binary: parse flags, run the host agent library, map errors to an exit code.
fn main() -> std::process::ExitCode {
    contiv_netplugin::cli_main()
}
