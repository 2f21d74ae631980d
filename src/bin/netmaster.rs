//! Thin binary: parse flags, run the netmaster library, map errors to an exit code.
fn main() -> std::process::ExitCode {
    contiv_netmaster::cli_main()
}
